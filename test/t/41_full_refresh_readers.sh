#!/usr/bin/env bash
# full_refresh swaps a freshly loaded table in under the target's name.
# docs/sync.md promises readers "see the old rows until the run commits and
# the new ones after: never an empty or half-loaded table (the swap waits
# for readers of the old table; readers arriving meanwhile wait for the
# swap)", and that the new table keeps the target's constraints, indexes,
# owner and grants.  A dashboard reading the target while refreshes run
# must never see 0 or a partial count, nor an error.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DB=t_full_refresh_readers
SRC=fr_src
ROLE=t_fr_reader
N=200000
W="$ETL_WORK/fr"
PIDS=()
cleanup() {
	local -
	set +e
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	pg_psql -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	pg_psql -qc "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1
	mysql_root etl_test -e "DROP TABLE IF EXISTS $SRC" >/dev/null 2>&1
}
trap cleanup EXIT
db() { pg_psql -d "$DB" "$@"; }
mkdir -p "$W"
# wait_for FILE SECS: until FILE exists
wait_for() {
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

mysql_root etl_test <<SQL
DROP TABLE IF EXISTS $SRC;
CREATE TABLE $SRC (
  id INT NOT NULL PRIMARY KEY,
  grp INT NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  note VARCHAR(60) NOT NULL,
  update_time INT UNSIGNED NOT NULL,
  KEY (update_time)
) ENGINE=InnoDB;
INSERT INTO $SRC
SELECT seq, seq % 97, (seq % 100000) / 100, CONCAT(MD5(seq), '-', seq), 1700000000 + seq % 86400
  FROM seq_1_to_$N;
SQL

pg_psql -qc "DROP ROLE IF EXISTS $ROLE" -c "CREATE ROLE $ROLE NOLOGIN"
create_test_db "$DB"
db -q >/dev/null <<SQL
SELECT etl_stream.add_table('fr_t', server => 'src', source_table => '$SRC',
                            watermark => 'update_time', strategy => 'full_refresh');
SELECT etl_stream.create_target('fr_t');
CREATE TABLE fr_done ();
GRANT SELECT ON fr_done TO $ROLE;
SQL
first=$(db -AtF' ' -c "SELECT status, rows_inserted FROM etl_stream.sync('fr_t')")
tap_is "$first" "success $N" "the first full_refresh loads $N rows"
db -qc "GRANT SELECT ON fr_t TO $ROLE"

# What the swaps must keep: indexes and constraints by name and definition,
# owner, grants.
shape="SELECT (SELECT string_agg(c.relname || ' ' || pg_get_indexdef(x.indexrelid), '; ' ORDER BY c.relname)
                 FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = 'fr_t'::regclass)
           || ' | ' || (SELECT string_agg(conname || ' ' || contype::text, '; ' ORDER BY conname)
                          FROM pg_constraint WHERE conrelid = 'fr_t'::regclass)
           || ' | ' || (SELECT relowner::regrole || ' ' || relacl::text FROM pg_class WHERE oid = 'fr_t'::regclass)"
shape_before=$(db -Atc "$shape")
oid_before=$(db -Atc "SELECT 'fr_t'::regclass::oid")
echo "# target before: oid $oid_before, $shape_before"
has_key=no
grep -qF "fr_t_pkey CREATE UNIQUE INDEX fr_t_pkey ON public.fr_t USING btree (id)" <<<"$shape_before" &&
	grep -qF "fr_t_update_time_idx CREATE INDEX fr_t_update_time_idx ON public.fr_t USING btree (update_time)" <<<"$shape_before" &&
	grep -qF "fr_t_pkey p" <<<"$shape_before" && has_key=yes
tap_is "$has_key" yes "the target has its primary key fr_t_pkey and the watermark index fr_t_update_time_idx"

# --- a reader in one session, as the granted role, while refreshes run -----
# Each read prints the table it read (tableoid), the count, and how long it
# took (a read that waits for a swap's lock takes longer).  It stops when the
# writer is done, after at most 1000 reads.
{
	echo "SET ROLE $ROLE;"
	for ((i = 0; i < 1000; i++)); do
		cat <<-'SQL'
			SELECT 'read', min(tableoid::oid), count(*), round(extract(epoch FROM clock_timestamp() - statement_timestamp())::numeric, 3) FROM fr_t;
			SELECT EXISTS (SELECT FROM fr_done) AS stop \gset
			\if :stop
			\q
			\endif
			SELECT pg_sleep(0.01);
		SQL
	done
} >"$W/reader.sql"
db -AtF' ' -v ON_ERROR_STOP=0 -f "$W/reader.sql" >"$W/reader.out" 2>"$W/reader.err" &
READER=$!
PIDS+=("$READER")
for _ in $(seq 200); do grep -q '^read ' "$W/reader.out" && break; sleep 0.05; done

REFRESHES=10
t0=$SECONDS
for ((i = 0; i < REFRESHES; i++)); do
	echo "SELECT status, rows_deleted, rows_inserted, round(merge_s::numeric, 2), coalesce(error, '-') FROM etl_stream.sync('fr_t');"
done | db -AtF' ' >"$W/writer.out" 2>&1 || true
writer_s=$((SECONDS - t0))
db -qc "INSERT INTO fr_done DEFAULT VALUES"
wait "$READER" || true
sed 's/^/# writer: /' "$W/writer.out"

reads=$(grep -c '^read ' "$W/reader.out" || true)
full=$(awk '$1 == "read" && $3 == '"$N"'' "$W/reader.out" | wc -l)
tables=$(awk '$1 == "read" {print $2}' "$W/reader.out" | sort -u | wc -l)
slowest=$(awk '$1 == "read" {print $4}' "$W/reader.out" | sort -n | tail -n 1)
echo "# $REFRESHES refreshes in ${writer_s} s; $reads reads of $tables table versions, slowest ${slowest} s"
awk '$1 == "read" && $3 != '"$N"' {print "# read " $3 " rows from table " $2}' "$W/reader.out" | sort | uniq -c | head -n 20
sed 's/^/# reader error: /' "$W/reader.err" | head -n 20

tap_is "$(grep -c '^success '"$N"' '"$N"' ' "$W/writer.out" || true)" "$REFRESHES" \
	"all $REFRESHES refreshes succeed, each replacing $N rows with $N"
tap_ok "the reader read the target at least 50 times while they ran ($reads)" test "$reads" -ge 50
tap_ok "its reads spanned the swaps (saw $tables table versions, at least 3)" test "$tables" -ge 3
tap_is "$full" "$reads" "every read counted all $N rows: never 0, never partial"
tap_ok "no read failed (the reader's stderr is empty)" test ! -s "$W/reader.err"

shape_after=$(db -Atc "$shape")
echo "# target after: oid $(db -Atc "SELECT 'fr_t'::regclass::oid"), $shape_after"
tap_is "$shape_after" "$shape_before" "indexes and constraints (names and definitions), owner and grants are unchanged"
tap_ok "the table really was replaced (its oid changed)" test "$(db -Atc "SELECT 'fr_t'::regclass::oid")" != "$oid_before"
tap_is "$(db -Atc "SELECT has_table_privilege('$ROLE', 'fr_t', 'SELECT')")" t "$ROLE may still read the target"
tap_is "$(db -Atc "SELECT string_agg(relname, ' ') FROM pg_class WHERE relname LIKE '%etl_fresh%' OR relname LIKE 'etl_tmp%' OR relname ~ '_etl[0-9]+$'")" "" \
	"no fresh table or temporary index names are left behind"

# --- a reader inside a transaction that read the old table ---------------
# Its second read must see the same table; the swap waits for it, and a
# reader arriving meanwhile waits for the swap and then reads the new table.
rm -f "$W"/old_*
cat >"$W/old.sql" <<SQL
BEGIN;
SELECT 'first', min(tableoid::oid), count(*) FROM fr_t;
\! touch $W/old_ready; for i in \$(seq 600); do [ -e $W/old_go ] && break; sleep 0.05; done
SELECT 'second', min(tableoid::oid), count(*) FROM fr_t;
COMMIT;
SQL
db -AtF' ' -v ON_ERROR_STOP=0 -f "$W/old.sql" >"$W/old.out" 2>&1 &
OLD=$!
PIDS+=("$OLD")
wait_for "$W/old_ready" 30 || echo "# the old reader did not start"
db -AtF' ' -c "SELECT status, coalesce(error, '-') FROM etl_stream.sync('fr_t')" >"$W/old_sync.out" 2>&1 &
SYNC=$!
PIDS+=("$SYNC")
# wait until the sync waits for the old reader's lock on the target
waiting=""
for _ in $(seq 300); do
	waiting=$(db -Atc "SELECT count(*) FROM pg_locks WHERE relation = 'fr_t'::regclass AND mode = 'AccessExclusiveLock' AND NOT granted")
	[ "$waiting" = 1 ] && break
	sleep 0.05
done
tap_is "$waiting" 1 "the swap waits for a transaction that has read the old table"
db -qAtF' ' -c "SET ROLE $ROLE; SELECT 'late', min(tableoid::oid), count(*) FROM fr_t" >"$W/late.out" 2>&1 &
LATE=$!
PIDS+=("$LATE")
sleep 0.5
old_oid=$(db -Atc "SELECT 'fr_t'::regclass::oid")
touch "$W/old_go"
wait "$OLD" || true
wait "$SYNC" || true
wait "$LATE" || true
new_oid=$(db -Atc "SELECT 'fr_t'::regclass::oid")
sed 's/^/# /' "$W/old.out" "$W/old_sync.out" "$W/late.out"
tap_is "$(grep -E '^(first|second) ' "$W/old.out" | tr '\n' ' ')" "first $old_oid $N second $old_oid $N " \
	"the transaction reads the old table twice, all $N rows, without an error"
tap_is "$(cat "$W/old_sync.out")" "success -" "the refresh then completes"
tap_is "$(cat "$W/late.out")" "late $new_oid $N" "a reader that arrived during the wait reads the new table, all $N rows"

# --- REPEATABLE READ readers whose snapshot predates the run --------------
# The swapped-in table's rows were written by the refresh's transaction,
# which is in progress in such a snapshot: the reader finds the new table by
# name but none of its rows, as after TRUNCATE.  docs/sync.md documents this
# limit of full_refresh and names the remedy: delete_insert without a
# watermark, which replaces the rows in place.  Both are checked here.
# rr_read TABLE: a REPEATABLE READ transaction takes its snapshot, a sync
# of TABLE runs and commits, then the transaction counts TABLE.
rr_read() {
	rm -f "$W"/rr_*
	cat >"$W/rr.sql" <<-SQL
		BEGIN ISOLATION LEVEL REPEATABLE READ;
		SELECT 'snapshot', count(*) FROM fr_done;
		\! touch $W/rr_ready; for i in \$(seq 600); do [ -e $W/rr_go ] && break; sleep 0.05; done
		SELECT 'rr', count(*) FROM $1;
		COMMIT;
	SQL
	db -AtF' ' -v ON_ERROR_STOP=0 -f "$W/rr.sql" >"$W/rr.out" 2>&1 &
	RR=$!
	PIDS+=("$RR")
	wait_for "$W/rr_ready" 30 || echo "# the repeatable read reader did not start"
	rr_sync=$(db -AtF' ' -c "SELECT status, coalesce(error, '-') FROM etl_stream.sync('$1')" 2>&1) || true
	touch "$W/rr_go"
	wait "$RR" || true
	sed 's/^/# /' "$W/rr.out"
	rr_count=$(grep '^rr ' "$W/rr.out" || echo "no rr line")
}
rr_read fr_t
tap_is "$rr_sync" "success -" "a full_refresh completes while a REPEATABLE READ transaction is open"
tap_is "$rr_count" "rr 0" \
	"as documented, that transaction (snapshot before the swap) then finds the target empty"

db -q >/dev/null <<SQL
SELECT etl_stream.add_table('fr_inplace', server => 'src', source_table => '$SRC', strategy => 'delete_insert');
SELECT etl_stream.create_target('fr_inplace');
SQL
tap_is "$(db -AtF' ' -c "SELECT status, rows_inserted FROM etl_stream.sync('fr_inplace')")" "success $N" \
	"delete_insert without a watermark loads $N rows"
rr_read fr_inplace
tap_is "$rr_sync" "success -" "an in-place full reload completes while a REPEATABLE READ transaction is open"
tap_is "$rr_count" "rr $N" "that transaction still sees all $N rows: the in-place reload is MVCC-safe"
tap_is "$(db -AtF' ' -c "SELECT rows_deleted, rows_inserted FROM etl_stream.runs WHERE table_name = 'fr_inplace' ORDER BY run_id DESC LIMIT 1")" \
	"$N $N" "it replaced all $N rows"

# --- the swap's temporary names ------------------------------------------
# The constraints and indexes are built on the fresh table under temporary
# names in the target's schema and renamed after the swap.  User relations
# named like them (the fixed etl_tmp_1 of the first version, the
# <name>_etl1 candidates of the current one) must not make a refresh fail.
db -qc "CREATE TABLE etl_tmp_1 (x int)" -c "CREATE TABLE fr_t_pkey_etl1 (x int)" -c "CREATE TABLE fr_t_update_time_idx_etl1 (x int)"
got=$(db -AtF'|' -c "SELECT status, coalesce(error, '-') FROM etl_stream.sync('fr_t')" 2>/dev/null) || true
echo "# with tables etl_tmp_1, fr_t_pkey_etl1, fr_t_update_time_idx_etl1 in public: $got"
tap_is "$got" "success|-" "a full_refresh succeeds when relations in the schema have the temporary names"
tap_is "$(db -Atc "$shape")" "$shape_before" "and the target keeps its index and constraint names"
