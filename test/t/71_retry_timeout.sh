#!/usr/bin/env bash
# Retries and run timeouts.  MariaDB is stopped in the middle of a pull and
# started again within the backoff: attempt 1 is failed (a transient lost
# connection), attempt 2 succeeds, the target equals the source, and the
# wait between them is at least the table's retry_backoff.  A 2 s timeout
# against a source that sleeps 30 s: timed_out within 3 s, nothing written,
# the query gone from MariaDB; a timed-out run is retried like a transient
# failure; a read timeout is named as one.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DB=t_retry
N=600000
cleanup() {
	local -
	set +e
	pg_psql -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	mysql_root etl_test -e "DROP TABLE IF EXISTS rt_big; DROP VIEW IF EXISTS rt_slow; DROP TABLE IF EXISTS rt_small" >/dev/null 2>&1
}
trap cleanup EXIT
cleanup
db() { pg_psql -d "$DB" "$@"; }

mysql_root etl_test <<SQL
CREATE TABLE rt_big (id INT PRIMARY KEY, note VARCHAR(100), update_time INT NOT NULL);
INSERT INTO rt_big SELECT seq, CONCAT('row ', seq, ' ', MD5(seq)), seq FROM seq_1_to_$N;
CREATE TABLE rt_small (id INT PRIMARY KEY, update_time INT NOT NULL);
INSERT INTO rt_small SELECT seq, seq FROM seq_1_to_3;
-- three rows, ten seconds each
CREATE VIEW rt_slow AS SELECT id, update_time, SLEEP(10) AS z FROM rt_small;
SQL
create_test_db "$DB"
db -q >/dev/null <<'SQL'
SELECT etl_stream.add_table('rt_big', server => 'src', source_table => 'rt_big',
                            watermark => 'update_time', retries => 3, retry_backoff => '8 s');
SELECT etl_stream.create_target('rt_big');
SQL

# --- 1. MariaDB goes away mid-pull and comes back within the backoff -------
db -qc "CALL etl_stream.sync_all_proc()" >"$ETL_WORK/retry_call.out" 2>&1 &
caller=$!
db -Atq >/dev/null <<'SQL'
DO $$
BEGIN
  FOR i IN 1..3000 LOOP
    EXIT WHEN EXISTS (SELECT FROM etl_stream.progress WHERE table_name = 'rt_big' AND rows_pulled > 20000);
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
SQL
stop_mariadb "$ETL_MYSQL_DIR"
stopped=$(date +%s.%N)
sleep 1
restart_mariadb "$ETL_MYSQL_DIR" "$MYSQL_PORT"
back=$(date +%s.%N)
echo "# MariaDB was away for $(awk -v a="$stopped" -v b="$back" 'BEGIN { printf "%.1f", b - a }') s"
wait "$caller" || true
tap_is "$(db -AtF' ' -c "SELECT attempt, status, left(sqlstate, 2) FROM etl_stream.runs WHERE table_name = 'rt_big' ORDER BY run_id" | tr '\n' ',')" \
	"1 failed 08,2 success ," "attempt 1 failed with a lost connection (08xxx), attempt 2 succeeded"
tap_ok "attempt 1 had pulled rows before it failed" \
	test "$(db -Atc "SELECT rows_pulled FROM etl_stream.runs WHERE table_name = 'rt_big' AND attempt = 1")" -gt 0
wait_s=$(db -Atc "SELECT extract(epoch FROM b.started_at - a.finished_at)
                    FROM etl_stream.runs a, etl_stream.runs b
                   WHERE a.table_name = 'rt_big' AND b.table_name = 'rt_big' AND a.attempt = 1 AND b.attempt = 2")
echo "# waited $wait_s s between the attempts (retry_backoff 8 s)"
tap_ok "the wait between the attempts was at least retry_backoff ($wait_s s)" \
	awk -v w="$wait_s" 'BEGIN { exit !(w >= 8) }'
tap_is "$(db -Atc "SELECT count(*) FROM rt_big")" "$N" "the target has every row of the source"
tap_is "$(db -AtF' ' -c "SELECT last_status, last_attempt, retry_error LIKE '%MySQL%' FROM etl_stream.status WHERE name = 'rt_big'")" \
	"success 2 t" "etl_stream.status shows the last attempt and the error that was retried"

# --- 2. a run timeout against a source that sleeps -------------------------
db -q >/dev/null <<'SQL'
SELECT etl_stream.add_table('rt_slow', server => 'src', source_table => 'rt_slow',
                            watermark => 'update_time', key_columns => ARRAY['id'],
                            timeout => '2 s', retries => 0);
SELECT etl_stream.create_target('rt_slow');
SQL
t0=$(date +%s%N)
res=$(db -AtF' ' -c "SELECT status, sqlstate, rows_inserted FROM etl_stream.sync('rt_slow')" 2>/dev/null)
ms=$((($(date +%s%N) - t0) / 1000000))
echo "# the timed-out sync returned after $ms ms"
tap_is "$res" "timed_out 57014 0" "a run past its 2 s timeout is recorded as timed_out"
tap_ok "it returned within 3 s ($ms ms)" test "$ms" -lt 3000
tap_ok "its error says so" \
	grep -q 'the run of etl_stream table "rt_slow" timed out after 00:00:02' <<<"$(db -Atc "SELECT message FROM etl_stream.runs WHERE table_name = 'rt_slow'")"
tap_is "$(db -Atc "SELECT count(*) FROM rt_slow")" 0 "nothing was written"
sleep 0.5
tap_is "$(mysql_root -N -e "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE '%rt_slow%' AND info NOT LIKE '%processlist%'")" 0 \
	"the query is gone from MariaDB's processlist"

# a timeout is retried like a transient failure: two attempts, then the CALL says failed
db -qc "SELECT etl_stream.alter_table('rt_slow', retries => 1, retry_backoff => '1 s')" \
	-c "SELECT etl_stream.disable_table('rt_big')" >/dev/null
out=$(db -qc "CALL etl_stream.sync_all_proc()" 2>&1 || true)
tap_is "$(db -AtF' ' -c "SELECT string_agg(attempt || ':' || status, ' ' ORDER BY run_id) FROM etl_stream.runs WHERE table_name = 'rt_slow'")" \
	"1:timed_out 1:timed_out 2:timed_out" "CALL sync_all_proc() retried the timed-out run once"

# --- 3. a read timeout is named as one --------------------------------------
db -q >/dev/null <<SQL
CREATE SERVER slow FOREIGN DATA WRAPPER etl_stream
  OPTIONS (host '127.0.0.1', port '$MYSQL_PORT', dbname 'etl_test', read_timeout '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER slow
  OPTIONS (user '$ETL_MYSQL_USER', password '$ETL_MYSQL_PASSWORD');
SQL
err=$(db -Atc "SELECT * FROM etl_stream.query('slow', 'SELECT SLEEP(5)') AS t(x int)" 2>&1 || true)
tap_ok "a read timeout says no data came for that long" \
	grep -q 'ERROR:  no data from MySQL server "slow" at 127.0.0.1:[0-9]* for 1 s while running a query' <<<"$err"
