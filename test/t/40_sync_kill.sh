#!/usr/bin/env bash
# A MariaDB KILL of the connection a sync is pulling on, mid-way through a
# large pull (a failover, a DBA killing a long query), must leave the target
# and the watermark exactly as they were, report the run as failed in the
# pull phase, and the next sync must complete and make the target equal to
# MySQL again.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DB=t_sync_kill
SRC=kill_src
N=1000000
cleanup() {
	local -
	set +e
	[ -n "${SYNC_PID:-}" ] && kill "$SYNC_PID" 2>/dev/null
	pg_psql -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	mysql_root etl_test -e "DROP TABLE IF EXISTS $SRC" >/dev/null 2>&1
}
trap cleanup EXIT
db() { pg_psql -d "$DB" "$@"; }

# --- the source: 1M rows, ~100-byte text, update_time over one hour ------
t0=$SECONDS
mysql_root etl_test <<SQL
DROP TABLE IF EXISTS $SRC;
CREATE TABLE $SRC (
  id INT NOT NULL PRIMARY KEY,
  grp INT NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  note VARCHAR(120) NOT NULL,
  update_time INT UNSIGNED NOT NULL,
  KEY (update_time)
) ENGINE=InnoDB;
INSERT INTO $SRC
SELECT seq, seq % 97, (seq % 100000) / 100,
       CONCAT(MD5(seq), MD5(seq + 1), MD5(seq + 2), LPAD(seq % 10000, 4, '0')),
       1700000000 + seq % 3600
  FROM seq_1_to_$N;
SQL
echo "# source loaded in $((SECONDS - t0)) s"

create_test_db "$DB"
db -q >/dev/null <<SQL
SELECT FROM etl_stream.add_table('kill_t', server => 'src', source_table => '$SRC',
                                 watermark => 'update_time', lookback => 1800, strategy => 'merge');
SELECT FROM etl_stream.create_target('kill_t');
-- one row's content as text both sides render alike, hashed to 60 bits;
-- the sum over all rows changes if any row does
CREATE FUNCTION pg_sum() RETURNS TABLE (n bigint, h numeric) LANGUAGE sql AS \$\$
  SELECT count(*), sum(('x' || lpad(left(md5(concat_ws('|', id, grp, amount, note, update_time)), 15), 16, '0'))::bit(64)::bigint)
    FROM public.kill_t \$\$;
CREATE FUNCTION my_sum() RETURNS TABLE (n bigint, h numeric) LANGUAGE sql AS \$\$
  SELECT * FROM etl_stream.query('src',
    'SELECT COUNT(*), SUM(CAST(CONV(LEFT(MD5(CONCAT_WS(''|'', id, grp, amount, note, update_time)), 15), 16, 10) AS UNSIGNED)) FROM $SRC')
    AS m(n bigint, h numeric) \$\$;
-- the whole target, in key order
CREATE FUNCTION pg_md5() RETURNS text LANGUAGE sql AS \$\$
  SELECT md5(string_agg(t::text, E'\n' ORDER BY id)) FROM public.kill_t t \$\$;
SQL

# rows_landed_when MIN: wait (up to 60 s) until etl_stream.progress shows the
# running sync of kill_t with at least MIN rows landed; prints that count, or
# -1 if it never did.  A PL/pgSQL loop: the moments to catch are too short
# to aim at from the shell.
rows_landed_when() {
	db -qAtc "
DO \$\$
DECLARE n bigint; t0 timestamptz := clock_timestamp();
BEGIN
  LOOP
    PERFORM pg_stat_clear_snapshot();   -- else the activity snapshot is the transaction's first
    -- staging made in the sync's transaction: the view finds it anyway
    SELECT p.rows_landed INTO n FROM etl_stream.progress p WHERE p.table_name = 'kill_t';
    EXIT WHEN n >= $1 OR clock_timestamp() - t0 > interval '60 s';
    PERFORM pg_sleep(0.005);
  END LOOP;
  PERFORM set_config('kill.landed', coalesce(n, -1)::text, false);
END \$\$;
SELECT current_setting('kill.landed')"
}

t0=$SECONDS
db -AtF' ' -c "SELECT status, rows_pulled, rows_inserted, load_path, round(pull_s::numeric, 2) FROM etl_stream.sync('kill_t')" \
	>"$ETL_WORK/kill_first.out" 2>&1 &
FIRST_PID=$!
# while it loads the target directly, etl_stream.progress shows it
seen=$(rows_landed_when 1)
wait "$FIRST_PID" || true
first=$(cat "$ETL_WORK/kill_first.out")
echo "# first sync ($((SECONDS - t0)) s): $first"
tap_is "$(cut -d' ' -f1-4 <<<"$first")" "success $N $N direct" "the first sync loads all $N rows straight into the empty target"
tap_ok "the direct load showed in etl_stream.progress with rows landed ($seen)" test "$seen" -gt 0 -a "$seen" -le "$N"

# --- change half the rows, past the watermark ---------------------------
t0=$SECONDS
mysql_root etl_test -e "UPDATE $SRC SET update_time = update_time + 3600, grp = grp + 1000,
                               note = CONCAT(MD5(id * 7), MD5(id * 7 + 1), MD5(id * 7 + 2), 'chg!')
                         WHERE id % 2 = 0"
echo "# $((N / 2)) rows changed in MySQL in $((SECONDS - t0)) s"

md5_before=$(db -Atc "SELECT pg_md5()")
sum_before=$(db -AtF' ' -c "SELECT * FROM pg_sum()")
wm_before=$(db -Atc "SELECT high_watermark FROM etl_stream.tables WHERE name = 'kill_t'")
echo "# before: watermark $wm_before, target $sum_before, md5 $md5_before"
tap_is "$wm_before" 1700003599 "the watermark after the first sync is the source's max update_time"

# --- the sync to kill ---------------------------------------------------
# In the background.  The pull of ~750k rows takes about a second, too short
# to aim at by sleeping: rows_landed_when watches etl_stream.progress until
# staging holds 50,000 rows, then one MariaDB compound statement finds the
# SELECT in the processlist and kills its connection as root.
db -AtF'|' -c "SELECT status, failed_phase, error FROM etl_stream.sync('kill_t')" \
	>"$ETL_WORK/sync_kill.out" 2>"$ETL_WORK/sync_kill.err" &
SYNC_PID=$!

# Wait (up to 60 s) until at least 50,000 rows are in staging.
landed=$(rows_landed_when 50000)
# Find the pull in MariaDB's processlist and kill that connection, at once.
killed=$(mysql_root -N etl_test <<SQL
DELIMITER //
BEGIN NOT ATOMIC
  DECLARE v_id BIGINT;          -- not named like a column: a variable
  DECLARE v_what TEXT;          -- would shadow it in the WHERE clause
  SELECT ID, CONCAT(COMMAND, ' ', TIME_MS, ' ms: ', LEFT(INFO, 200)) INTO v_id, v_what
    FROM information_schema.PROCESSLIST
   WHERE USER = '$MYSQL_USER' AND COMMAND = 'Query' AND INFO LIKE 'SELECT % FROM \`$SRC\`%'
   LIMIT 1;
  IF v_id IS NOT NULL THEN
    KILL CONNECTION v_id;
  END IF;
  SELECT CONCAT_WS(' ', v_id, v_what);
END//
DELIMITER ;
SQL
) || true
echo "# staging had $landed rows when the kill was sent; killed: $killed"
rc=0
wait "$SYNC_PID" || rc=$?
SYNC_PID=""
echo "# the killed sync returned (psql exit $rc): $(cat "$ETL_WORK/sync_kill.out")"
sed 's/^/# stderr: /' "$ETL_WORK/sync_kill.err"

tap_ok "the pull showed in etl_stream.progress with rows landed ($landed)" test "$landed" -ge 50000 -a "$landed" -lt "$N"
tap_ok "the pull showed in MariaDB's processlist as a SELECT from $SRC, and was killed" grep -qE "^[0-9]+ Query .*FROM \`$SRC\`" <<<"$killed"
IFS='|' read -r st phase err <"$ETL_WORK/sync_kill.out" || true
tap_is "$rc" 0 "the killed sync does not raise (psql exit status)"
tap_is "$st/$phase" "failed/pull" "the killed sync returns status 'failed', failed_phase 'pull'"
tap_ok "its error names the lost connection (got: $(tr '\n' ' ' <"$ETL_WORK/sync_kill.out"))" \
	grep -qiE "lost connection|connection was killed|server has gone away" "$ETL_WORK/sync_kill.out"
tap_ok "it says so in a WARNING" grep -q "WARNING:  sync of etl_stream table \"kill_t\" failed while pulling" "$ETL_WORK/sync_kill.err"
# The connection is gone with its thread.  The KILL QUERY the extension
# sends after a lost connection may find no thread (MySQL error 1094,
# depending on how fast MariaDB removed it): that is the outcome it wants,
# and must not be reported as "could not cancel the query".
tap_ok "no spurious 'could not cancel the query' WARNING for the already-killed thread" \
	bash -c '! grep -q "could not cancel the query" "$1"' _ "$ETL_WORK/sync_kill.err"

run=$(db -AtF' ' -c "SELECT status, failed_phase, rows_inserted + rows_updated + rows_deleted, new_watermark
                       FROM etl_stream.runs WHERE table_name = 'kill_t' ORDER BY run_id DESC LIMIT 1")
tap_is "$run" "failed pull 0 $wm_before" "the failed run is recorded: phase pull, nothing written, watermark kept"
tap_is "$(db -Atc "SELECT high_watermark FROM etl_stream.tables WHERE name = 'kill_t'")" "$wm_before" \
	"the watermark is unchanged after the killed sync"
# The record keeps how far the run got and the error's facts apart.
IFS='|' read -r r_state r_msg r_detail r_pulled r_landed < <(db -AtF'|' -c "
	SELECT sqlstate, message, replace(detail, E'\n', ' '), rows_pulled, rows_landed
	  FROM etl_stream.runs WHERE table_name = 'kill_t' ORDER BY run_id DESC LIMIT 1") || true
echo "# recorded: sqlstate $r_state, message $r_msg, detail $r_detail, pulled $r_pulled, landed $r_landed"
tap_is "$r_state" 08006 "the record has the lost connection's SQLSTATE (connection_failure)"
tap_ok "the record's message names the server and what it was doing" \
	grep -qE '^MySQL server "src" at 127\.0\.0\.1:[0-9]+ failed while reading rows$' <<<"$r_msg"
tap_ok "the record's detail has MySQL's error apart (got: $r_detail)" \
	grep -qE '^MySQL error (2013|2006|2026|1927) ' <<<"$r_detail"
tap_ok "the record keeps the rows pulled ($r_pulled) and landed ($r_landed) before the kill, at least the $landed seen" \
	test "$r_pulled" -ge "$r_landed" -a "$r_landed" -ge "$landed" -a "$r_pulled" -lt "$N"

tap_is "$(db -AtF' ' -c "SELECT * FROM pg_sum()")" "$sum_before" "the target's count and checksum are unchanged"
tap_is "$(db -Atc "SELECT pg_md5()")" "$md5_before" "the target's content, row by row in key order, is unchanged"
tap_is "$(mysql_root -N -e "SELECT count(*) FROM information_schema.PROCESSLIST
                            WHERE USER = '$MYSQL_USER' AND INFO LIKE 'SELECT % FROM \`$SRC\`%'")" 0 \
	"nothing of the killed pull still runs on MariaDB"

# --- the next sync ------------------------------------------------------
# It pulls everything at or past the cutoff (watermark - look-back): all the
# changed rows and the unchanged ones in the last 1800 s of the old range.
expect_pulled=$(mysql_root -N etl_test -e "SELECT COUNT(*) FROM $SRC WHERE update_time >= $((wm_before - 1800))")
t0=$SECONDS
next=$(db -AtF' ' -c "SELECT status, rows_pulled, rows_landed, rows_inserted, rows_updated, rows_unchanged, new_watermark,
                             round(pull_s::numeric, 2), round(merge_s::numeric, 2), coalesce(error, '-')
                        FROM etl_stream.sync('kill_t')" 2>&1) || true
echo "# next sync ($((SECONDS - t0)) s): $next"
read -r st pulled landed_n ins upd unch nwm _ <<<"$next" || true
tap_is "$st" success "the next sync succeeds"
tap_is "$pulled/$landed_n" "$expect_pulled/$expect_pulled" \
	"it pulls and lands exactly the rows at or past the cutoff (no staging leftovers)"
tap_is "$ins/$upd/$unch" "0/$((N / 2))/$((expect_pulled - N / 2))" \
	"it updates the $((N / 2)) changed rows and leaves the rest unchanged"
tap_is "$nwm" "$(mysql_root -N etl_test -e "SELECT MAX(update_time) FROM $SRC")" "the watermark advances to MySQL's max"
my=$(db -AtF' ' -c "SELECT * FROM my_sum()")
pg=$(db -AtF' ' -c "SELECT * FROM pg_sum()")
echo "# MySQL: $my, target: $pg"
tap_is "$pg" "$my" "the target then equals MySQL (count and row checksum)"
