#!/usr/bin/env bash
# Many users: two non-superusers, team_a and team_b, each a member of
# etl_stream_user with the grants docs/operations.md lists, each register
# and sync a table of their own.  Neither reads, changes (alter_table, a
# direct UPDATE of etl_stream.tables, its owner), syncs, drops or sees the
# runs, status and progress of the other's; a superuser sees everything,
# and a run of team_a's table by a superuser or a worker is team_a's.  A
# role without privileges on a table is refused by land(), _land_refusal()
# and a sync before it takes a lock: it does not wait behind another
# session's lock.  A staging table another role made first is never used.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DB=t_roles
ROLES="t_team_a t_team_b"
cleanup() {
	local -
	set +e
	pg_psql -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	for r in $ROLES; do pg_psql -qc "DROP ROLE IF EXISTS $r" >/dev/null 2>&1; done
	mysql_root etl_test -e "DROP TABLE IF EXISTS ro_a, ro_b, ro_bad" >/dev/null 2>&1
	if [ -n "${LOCKER:-}" ]; then kill "$LOCKER" 2>/dev/null; wait "$LOCKER" 2>/dev/null; fi
}
trap cleanup EXIT
cleanup
db() { pg_psql -d "$DB" "$@"; }
# psql as a role; errors in the output, never fatal
as() { "$PG_BIN/psql" -X -h 127.0.0.1 -p "$PGPORT" -U "$1" -d "$DB" -v VERBOSITY=verbose "${@:2}" 2>&1 || true; }

mysql_root etl_test <<SQL
CREATE TABLE ro_a (id INT PRIMARY KEY, v VARCHAR(20), changed_at DATETIME NOT NULL, KEY (changed_at));
CREATE TABLE ro_b LIKE ro_a;
INSERT INTO ro_a SELECT seq, CONCAT('a', seq), '2024-01-01' + INTERVAL seq MINUTE FROM seq_1_to_100;
INSERT INTO ro_b SELECT seq, CONCAT('b', seq), '2024-01-01' + INTERVAL seq MINUTE FROM seq_1_to_50;
SQL
create_test_db $DB
# the grant recipe of docs/operations.md, for two teams
for r in $ROLES; do
	pg_psql -qc "CREATE ROLE $r LOGIN"
	db -q <<-SQL
		GRANT etl_stream_user TO $r;
		GRANT USAGE ON FOREIGN SERVER src TO $r;
		CREATE USER MAPPING FOR $r SERVER src OPTIONS (user '$ETL_MYSQL_USER', password '$ETL_MYSQL_PASSWORD');
		CREATE SCHEMA $r AUTHORIZATION $r;
	SQL
done

# --- 1. each team registers and syncs its own -----------------------------
for t in a b; do
	out=$(as t_team_$t -Atc "SELECT FROM etl_stream.add_table('ro_$t', server => 'src', source_table => 'ro_$t',
	                             watermark => 'changed_at', target_schema => 't_team_$t')" \
		-c "SELECT etl_stream.create_target('ro_$t')" \
		-c "SELECT status || ' ' || rows_pulled FROM etl_stream.sync('ro_$t')")
	echo "$out" | sed 's/^/# /'
	tap_is "$(tail -n 1 <<<"$out")" "success $([ $t = a ] && echo 100 || echo 50)" "t_team_$t registers and syncs its own table"
done
tap_is "$(db -AtF' ' -c "SELECT name, owner FROM etl_stream.tables ORDER BY 1" | tr '\n' ',')" \
	"ro_a t_team_a,ro_b t_team_b," "each registration is owned by the role that made it"
tap_is "$(db -AtF' ' -c "SELECT table_name, owner FROM etl_stream.runs ORDER BY 1" | tr '\n' ',')" \
	"ro_a t_team_a,ro_b t_team_b," "and so is each run"

# --- 2. team_b cannot read team_a's ---------------------------------------
tap_is "$(as t_team_b -Atc "SELECT string_agg(name, ',') FROM etl_stream.tables")" ro_b \
	"t_team_b sees only its registration in etl_stream.tables"
tap_is "$(as t_team_b -Atc "SELECT count(*) FROM etl_stream.runs WHERE table_name = 'ro_a'")/$(as t_team_b -Atc "SELECT count(*) FROM etl_stream.status WHERE name = 'ro_a'")" \
	"0/0" "nor team_a's runs, nor its row of etl_stream.status"
tap_is "$(as t_team_b -Atc "SELECT string_agg(name, ',') FROM etl_stream.status")" ro_b \
	"its own status row is there"
tap_ok "nor the rows of team_a's target" \
	grep -q 'permission denied for schema t_team_a' <<<"$(as t_team_b -Atc "SELECT count(*) FROM t_team_a.ro_a")"

# --- 3. ... nor change, sync or drop them -----------------------------------
wm_before=$(db -Atc "SELECT high_watermark FROM etl_stream.tables WHERE name = 'ro_a'")
out=$(as t_team_b -Atc "SELECT etl_stream.alter_table('ro_a', high_watermark => '2000-01-01 00:00:00')")
echo "# $out"
tap_ok "alter_table of team_a's table: it does not exist for t_team_b" grep -q 'etl_stream table "ro_a" does not exist' <<<"$out"
tap_is "$(as t_team_b -Atc "UPDATE etl_stream.tables SET high_watermark = NULL WHERE name = 'ro_a'")" "UPDATE 0" \
	"a direct UPDATE of etl_stream.tables reaches none of team_a's rows"
tap_is "$(as t_team_b -Atc "DELETE FROM etl_stream.runs WHERE table_name = 'ro_a'")" "DELETE 0" \
	"nor does a DELETE of its runs"
out=$(as t_team_b -Atc "SELECT etl_stream.sync('ro_a')")
tap_ok "sync of team_a's table: it does not exist for t_team_b" grep -q 'etl_stream table "ro_a" does not exist' <<<"$out"
out=$(as t_team_b -Atc "SELECT etl_stream.drop_table('ro_a')")
tap_ok "drop_table likewise" grep -q 'etl_stream table "ro_a" does not exist' <<<"$out"
out=$(as t_team_b -Atc "SELECT etl_stream.backfill('ro_a')")
tap_ok "backfill likewise" grep -q 'etl_stream table "ro_a" does not exist' <<<"$out"
tap_is "$(db -Atc "SELECT high_watermark FROM etl_stream.tables WHERE name = 'ro_a'")/$(db -Atc "SELECT count(*) FROM etl_stream.runs WHERE table_name = 'ro_a'")" \
	"$wm_before/1" "team_a's watermark and runs are as they were"
out=$(as t_team_b -Atc "SELECT etl_stream.add_table('ro_a', server => 'src', source_table => 'ro_b', watermark => 'changed_at')")
echo "# $out"
tap_ok "t_team_b cannot take the name: it exists, belonging to another role" \
	grep -q 'A table or transform of that name belongs to a role whose privileges you do not have' <<<"$out"
out=$(as t_team_b -Atc "UPDATE etl_stream.tables SET owner = 't_team_a' WHERE name = 'ro_b'")
echo "# $out"
tap_ok "nor give its own registration to team_a (row level security)" \
	grep -q '42501: new row violates row-level security policy for table "tables"' <<<"$out"
as t_team_b -qc "INSERT INTO etl_stream.runs (table_name, started_at, finished_at, status, error)
                 VALUES ('ro_a', now(), now(), 'failed', 'forged')" >/dev/null
tap_is "$(db -Atc "SELECT last_status || ' ' || coalesce(last_error, '-') FROM etl_stream.status WHERE name = 'ro_a'")/$(as t_team_a -Atc "SELECT count(*) FROM etl_stream.runs WHERE error = 'forged'")" \
	"success -/0" "a run row t_team_b writes under ro_a's name is its own: not ro_a's in the superuser's status, unseen by t_team_a"
out=$(as t_team_b -Atc "SELECT count(*) FROM etl_stream.sync_all()")
tap_is "$out" 1 "sync_all as t_team_b syncs its own table only"

# schedules (pg_cron is not in this database: the definitions alone)
as t_team_a -qc "INSERT INTO etl_stream.schedule_defs (name, cron, tables) VALUES ('sched_a', '*/5 * * * *', '{ro_a}')" >/dev/null
tap_is "$(as t_team_a -Atc "SELECT name || ' ' || owner FROM etl_stream.schedules")/$(as t_team_b -Atc "SELECT count(*) FROM etl_stream.schedules")/$(as t_team_b -Atc "SELECT count(*) FROM etl_stream.schedule_defs")/$(db -Atc "SELECT count(*) FROM etl_stream.schedules")" \
	"sched_a t_team_a/0/0/1" "a schedule is its owner's: t_team_b sees it neither in the view nor in the table, a superuser does"

# --- 4. progress: a run going on is seen by its owner and superusers -------
mysql_root etl_test -e "INSERT INTO ro_a VALUES (101, 'late', '2025-01-01')"
(mysql_root etl_test -e "LOCK TABLES ro_a WRITE; SELECT SLEEP(4)" >/dev/null 2>&1) &
LOCKER=$!
sleep 0.5
as t_team_a -Atc "SELECT status FROM etl_stream.sync('ro_a')" >"$ETL_WORK/roles_sync.out" &
syncer=$!
for _ in $(seq 1 60); do
	[ "$(db -Atc "SELECT count(*) FROM etl_stream.progress WHERE table_name = 'ro_a'")" = 1 ] && break
	sleep 0.05
done
seen="$(db -Atc "SELECT count(*) FROM etl_stream.progress WHERE table_name = 'ro_a'")/$(as t_team_a -Atc "SELECT count(*) FROM etl_stream.progress WHERE table_name = 'ro_a'")/$(as t_team_b -Atc "SELECT count(*) FROM etl_stream.progress")"
tap_is "$seen" "1/1/0" "a run of ro_a in progress: the superuser and t_team_a see it, t_team_b sees no run"
wait "$syncer"
wait "$LOCKER" || true
LOCKER=""
tap_is "$(cat "$ETL_WORK/roles_sync.out")" success "the run then ends"

# --- 5. runs by a superuser and by a worker belong to the table's owner ----
db -qc "SELECT FROM etl_stream.sync('ro_a')"
job=$(as t_team_a -Atc "SELECT etl_stream.backfill('ro_a', workers => 1)")
tap_is "$(as t_team_a -Atc "SELECT state FROM etl_stream.job_wait($job, interval '60 s')")" done "t_team_a's backfill is done"
tap_is "$(db -AtF' ' -c "SELECT count(*) FILTER (WHERE job_id IS NULL), count(*) FILTER (WHERE job_id = $job) > 0, string_agg(DISTINCT owner, ',') FROM etl_stream.runs WHERE table_name = 'ro_a' AND error IS DISTINCT FROM 'forged'")" \
	"3 t t_team_a" "the superuser's sync and the worker's runs of ro_a are t_team_a's"
tap_is "$(as t_team_a -Atc "SELECT count(*) > 0 FROM etl_stream.runs WHERE table_name = 'ro_a' AND job_id = $job")/$(as t_team_b -Atc "SELECT count(*) FROM etl_stream.jobs")/$(as t_team_b -Atc "SELECT count(*) FROM etl_stream.runs WHERE job_id = $job")" \
	"t/0/0" "t_team_a sees its worker's runs; t_team_b sees neither the job nor its runs"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.status")/$(db -Atc "SELECT count(DISTINCT owner) FROM etl_stream.runs")" \
	"2/2" "a superuser sees both teams' tables and runs"

# --- 6. no privilege on a table: refused before any lock ---------------------
db -qc "CREATE TABLE public.ro_locked (id int PRIMARY KEY, v text, changed_at timestamp)" \
	-c "GRANT SELECT ON public.ro_locked TO t_team_b"
(db -qc "BEGIN" -c "LOCK TABLE public.ro_locked IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(6)" -c "COMMIT" >/dev/null 2>&1) &
LOCKER=$!
for _ in $(seq 1 50); do
	[ "$(db -Atc "SELECT count(*) FROM pg_locks WHERE relation = 'public.ro_locked'::regclass AND mode = 'AccessExclusiveLock' AND granted")" = 1 ] && break
	sleep 0.1
done
t0=$(date +%s%N)
out=$(as t_team_b -Atc "SET statement_timeout = '4s'" \
	-c "SELECT * FROM etl_stream.land('src', 'SELECT id, v, changed_at FROM ro_b', 'public.ro_locked')")
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# land: $out (${ms} ms)"
tap_ok "land() without INSERT: 42501 naming the table" grep -q '42501: permission denied for table public.ro_locked' <<<"$out"
tap_ok "at once, not behind the other session's lock (${ms} ms < 1500 ms)" test "$ms" -lt 1500
t0=$(date +%s%N)
out=$(as t_team_b -Atc "SET statement_timeout = '4s'" -c "SELECT etl_stream._land_refusal('public.ro_locked')")
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# _land_refusal: $out (${ms} ms)"
tap_ok "_land_refusal() likewise, at once (${ms} ms)" \
	bash -c "grep -q '42501: permission denied for table public.ro_locked' <<<\"\$1\" && [ $ms -lt 1500 ]" _ "$out"
# a registration of team_b whose target is that table
as t_team_b -qc "SELECT FROM etl_stream.add_table('ro_evil', server => 'src', source_table => 'ro_b',
                   watermark => 'changed_at', target_schema => 'public', target_table => 'ro_locked')" >/dev/null
t0=$(date +%s%N)
out=$(as t_team_b -Atc "SET statement_timeout = '4s'" -c "SELECT status, sqlstate, message FROM etl_stream.sync('ro_evil')")
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# sync: $out (${ms} ms)"
tap_ok "a sync into it fails with 42501 naming the table, at once (${ms} ms)" \
	bash -c "grep -q '42501: permission denied for table ro_locked' <<<\"\$1\" && [ $ms -lt 1500 ]" _ "$out"
wait "$LOCKER" || true
LOCKER=""

# --- 7. a staging table made first by another role is never used -----------
as t_team_b -qc "CREATE TABLE etl_stream_staging.ro_a2 (id int, v text, changed_at timestamp)" >/dev/null
out=$(as t_team_a -Atc "SELECT FROM etl_stream.add_table('ro_a2', server => 'src', source_table => 'ro_a',
                           watermark => 'changed_at', target_schema => 't_team_a')" \
	-c "SELECT etl_stream.create_target('ro_a2')" \
	-c "INSERT INTO t_team_a.ro_a2 VALUES (1, 'x', '2024-01-01')" \
	-c "SELECT status, sqlstate FROM etl_stream.sync('ro_a2')")
echo "$out" | sed 's/^/# /'
tap_ok "t_team_a's sync refuses the staging table t_team_b made under its name (42501)" \
	grep -q '^failed|42501' <<<"$out"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream_staging.ro_a2")" 0 "and wrote nothing into it"
db -qc "DROP TABLE etl_stream_staging.ro_a2"
tap_is "$(as t_team_a -Atc "SELECT status FROM etl_stream.sync('ro_a2')")/$(db -Atc "SELECT relowner::regrole FROM pg_class WHERE oid = 'etl_stream_staging.ro_a2'::regclass")" \
	"success/t_team_a" "once it is gone the sync makes its own, owned by t_team_a"

# --- 8. rejects: the quarantined rows of team_a's table are team_a's --------
mysql_root etl_test -e "CREATE TABLE ro_bad (id INT PRIMARY KEY, n INT, changed_at DATETIME NOT NULL);
	INSERT INTO ro_bad VALUES (1, 5, '2024-01-01'), (2, 70000, '2024-01-01'), (3, 7, '2024-01-01')"
out=$(as t_team_a -Atc "SELECT FROM etl_stream.add_table('ro_bad', server => 'src', source_table => 'ro_bad',
                           watermark => 'changed_at', target_schema => 't_team_a', on_bad_value => 'quarantine')" \
	-c "CREATE TABLE t_team_a.ro_bad (id int PRIMARY KEY, n smallint, changed_at timestamp)" \
	-c "SELECT status || ' ' || rows_landed || ' ' || rows_rejected FROM etl_stream.sync('ro_bad')")
echo "$out" | sed 's/^/# /'
tap_is "$(tail -n 1 <<<"$out")" "success 2 1" "t_team_a's quarantine run lands 2 rows and rejects 1"
tap_is "$(as t_team_a -Atc "SELECT owner || ' ' || key_text FROM etl_stream.rejects")" "t_team_a (id)=(2)" \
	"the reject belongs to t_team_a, who sees it"
tap_is "$(as t_team_b -Atc "SELECT count(*) FROM etl_stream.rejects")/$(as t_team_b -Atc "DELETE FROM etl_stream.rejects")" \
	"0/DELETE 0" "t_team_b neither sees nor deletes it"
out=$(as t_team_b -Atc "SELECT status FROM etl_stream.retry_rejects('ro_bad')")
tap_ok "nor retries it: the table does not exist for t_team_b" grep -q 'etl_stream table "ro_bad" does not exist' <<<"$out"
tap_is "$(as t_team_a -Atc "ALTER TABLE t_team_a.ro_bad ALTER COLUMN n TYPE integer" \
	-c "SELECT status || ' ' || rows_landed FROM etl_stream.retry_rejects('ro_bad')" \
	-c "SELECT count(*) FROM etl_stream.rejects" | tail -n 2 | tr '\n' ' ')" "success 1 0 " \
	"t_team_a widens the column and retries: the row lands, the reject is gone"
mysql_root etl_test -e "DROP TABLE ro_bad"

# --- 9. deletes: a sweep of team_a's table runs as team_a, for team_a -------
mysql_root etl_test -e "DELETE FROM ro_a WHERE id IN (10, 11)"
as t_team_a -qc "SELECT FROM etl_stream.alter_table('ro_a', deletes => 'delete')" >/dev/null
job=$(as t_team_a -Atc "SELECT etl_stream.sweep_deletes('ro_a', chunk => 40, workers => 2)")
tap_is "$(as t_team_a -Atc "SELECT state FROM etl_stream.job_wait($job, interval '60 s')")/$(db -Atc "SELECT count(*) FROM t_team_a.ro_a WHERE id IN (10, 11)")" \
	"done/0" "t_team_a sweeps its table in workers: the rows deleted on MySQL are gone"
tap_is "$(db -Atc "SELECT string_agg(DISTINCT owner, ',') || ' ' || sum(rows_deleted) FROM etl_stream.runs WHERE job_id = $job")" \
	"t_team_a 2" "the sweep's runs are t_team_a's"
out=$(as t_team_b -Atc "SELECT etl_stream.sweep_deletes('ro_a')")
tap_ok "t_team_b cannot sweep it: the table does not exist for t_team_b" grep -q 'etl_stream table "ro_a" does not exist' <<<"$out"

# --- 10. transforms: after one's own tables, under a name nobody holds ------
out=$(as t_team_b -Atc "SELECT etl_stream.add_transform('ro_b_agg', '{ro_a}', 'SELECT 1')")
tap_ok "t_team_b cannot add a transform after team_a's table: it does not exist for t_team_b" \
	grep -q 'etl_stream table "ro_a" does not exist' <<<"$out"
out=$(as t_team_b -Atc "SELECT etl_stream.add_transform('ro_a', '{ro_b}', 'SELECT 1')")
echo "# $out"
tap_ok "nor take the name of team_a's table for one (42710)" grep -q '42710' <<<"$out"
tap_is "$(as t_team_b -Atc "SELECT name FROM etl_stream.add_transform('ro_b_agg', '{ro_b}', 'SELECT 1')")/$(as t_team_a -Atc "SELECT count(*) FROM etl_stream.transforms")" \
	"ro_b_agg/0" "after its own table it can, and team_a does not see it"
