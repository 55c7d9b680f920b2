#!/usr/bin/env bash
# A frozen source (MariaDB stopped with SIGSTOP, by its pid) in the middle
# of a pull, with the default settings: the sync ends with an error that
# names how long no data came, not a silent wait for ever; a cancel and a
# statement_timeout answer in well under a second while MariaDB is frozen;
# a cancelled run and a terminated one are recorded afterwards, with the
# rows they had pulled; once MariaDB runs again the next sync converges.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DB=t_frozen
N=600000
# The server's pid from its pid file: an earlier test may have restarted it
# since check.sh exported MYSQL_PID.
MYSQL_PID="$(live_pid_from "$ETL_MYSQL_DIR/mysqld.pid" "$ETL_MYSQL_DIR/data")" ||
	die "no live MariaDB pid in $ETL_MYSQL_DIR/mysqld.pid"
cleanup() {
	local -
	set +e
	kill -CONT "$MYSQL_PID" 2>/dev/null
	pg_psql -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	mysql_root etl_test -e "DROP TABLE IF EXISTS fz_big" >/dev/null 2>&1
}
trap cleanup EXIT
cleanup
db() { pg_psql -d "$DB" "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

mysql_root etl_test <<SQL
CREATE TABLE fz_big (id INT PRIMARY KEY, note VARCHAR(200), update_time INT NOT NULL);
INSERT INTO fz_big SELECT seq, CONCAT('row ', seq, ' ', MD5(seq), MD5(seq + 1), MD5(seq + 2)), seq FROM seq_1_to_$N;
SQL
create_test_db "$DB"
# the default server options: no read_timeout, connect_timeout 10 s
tap_is "$(db -Atc "SELECT coalesce(array_to_string(srvoptions, ','), '') FROM pg_foreign_server WHERE srvname = 'src'" | grep -c timeout || true)" \
	0 "the server 'src' has no timeout options: the defaults apply"
db -q >/dev/null <<'SQL'
SELECT etl_stream.add_table('fz_big', server => 'src', source_table => 'fz_big',
                            watermark => 'update_time', strategy => 'delete_insert');
SELECT etl_stream.create_target('fz_big');
SQL

# wait_pulling: until a run of fz_big has pulled some rows (and is still at it)
wait_pulling() {
	db -Atq >/dev/null <<'SQL'
DO $$
BEGIN
  FOR i IN 1..3000 LOOP
    EXIT WHEN EXISTS (SELECT FROM etl_stream.progress WHERE table_name = 'fz_big' AND rows_pulled > 20000);
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
SQL
}
sync_pid() { db -Atc "SELECT pid FROM etl_stream.progress WHERE table_name = 'fz_big'"; }

# --- 1. frozen mid-pull, default settings: a clear error, not for ever -----
db -Atc "SELECT status FROM etl_stream.sync('fz_big')" >"$ETL_WORK/fz1.out" 2>&1 &
caller=$!
wait_pulling
kill -STOP "$MYSQL_PID"
t0=$(now_ms)
wait "$caller" || true
t1=$(now_ms)
kill -CONT "$MYSQL_PID"
elapsed=$(( (t1 - t0) / 1000 ))
echo "# the frozen pull failed after $elapsed s"
tap_is "$(tail -1 "$ETL_WORK/fz1.out")" "failed" "sync() returns a failed run"
tap_ok "its WARNING names the silence: no data from MySQL server for N s" \
	grep -q 'no data from MySQL server "src" at .* for [0-9]* s' "$ETL_WORK/fz1.out"
detail=$(db -Atc "SELECT detail FROM etl_stream.runs WHERE table_name = 'fz_big' ORDER BY run_id DESC LIMIT 1")
tap_ok "and says the server did not answer a new connection either" \
	grep -q 'did not answer a new connection within connect_timeout (10 s)' <<<"$detail"
tap_ok "it ended within 20 s of silence plus the 10 s connect_timeout, and a margin ($elapsed s)" \
	test "$elapsed" -le 40
tap_is "$(db -AtF' ' -c "SELECT status, sqlstate, failed_phase, rows_pulled > 0 FROM etl_stream.runs WHERE table_name = 'fz_big' ORDER BY run_id DESC LIMIT 1")" \
	"failed 08006 pull t" "the run is failed (08006, transient), in the pull, with the rows it had pulled"
tap_is "$(db -Atc "SELECT count(*) FROM fz_big")" 0 "nothing was written"

# --- 2. a cancel while MariaDB is frozen answers at once --------------------
db -Atc "SELECT status FROM etl_stream.sync('fz_big')" >"$ETL_WORK/fz2.out" 2>&1 &
caller=$!
wait_pulling
pid=$(sync_pid)
kill -STOP "$MYSQL_PID"
sleep 2
t0=$(now_ms)
db -Atc "SELECT pg_cancel_backend($pid)" >/dev/null
wait "$caller" || true
t1=$(now_ms)
echo "# the cancel took $((t1 - t0)) ms"
tap_ok "the cancel answered in under 1 s against the frozen source ($((t1 - t0)) ms)" \
	test $((t1 - t0)) -lt 1000
tap_ok "the statement was cancelled" grep -q "canceling statement due to user request" "$ETL_WORK/fz2.out"
tap_ok "the MySQL KILL that could not be sent is a warning" \
	grep -q 'could not cancel the query running on MySQL server "src"' "$ETL_WORK/fz2.out"

# --- 3. statement_timeout too ----------------------------------------------
(PGOPTIONS="-c statement_timeout=4s" db -Atc "SELECT status FROM etl_stream.sync('fz_big')" >"$ETL_WORK/fz3.out" 2>&1 || true) &
caller=$!
kill -CONT "$MYSQL_PID"
wait_pulling
kill -STOP "$MYSQL_PID"
t0=$(now_ms)
wait "$caller" || true
t1=$(now_ms)
echo "# statement_timeout ended the frozen sync $((t1 - t0)) ms after the freeze"
tap_ok "statement_timeout (4 s) ended it within 4 s of the freeze plus 1 s" test $((t1 - t0)) -lt 5000
tap_ok "with the timeout's own message" grep -q "canceling statement due to statement timeout" "$ETL_WORK/fz3.out"

# --- 4. a terminated backend -----------------------------------------------
kill -CONT "$MYSQL_PID"
db -Atc "SELECT status FROM etl_stream.sync('fz_big')" >"$ETL_WORK/fz4.out" 2>&1 &
caller=$!
wait_pulling
pid=$(sync_pid)
db -Atc "SELECT pg_terminate_backend($pid)" >/dev/null
wait "$caller" || true

# --- 5. MariaDB runs again: the next sync converges and records the others -
res=$(db -AtF' ' -c "SELECT status, rows_inserted FROM etl_stream.sync('fz_big')")
tap_is "$res" "success $N" "the next sync converges: every row"
tap_is "$(db -Atc "SELECT count(*) FROM fz_big")" "$(mysql_root -N etl_test -e 'SELECT COUNT(*) FROM fz_big')" \
	"the target equals the source"
tap_is "$(db -AtF' ' -c "SELECT status, sqlstate, failed_phase, rows_pulled > 0, message FROM etl_stream.runs
                           WHERE table_name = 'fz_big' AND message LIKE 'canceling%user request' ORDER BY run_id")" \
	"cancelled 57014 pull t canceling statement due to user request" \
	"the cancelled run is recorded afterwards: cancelled, in the pull, with its rows"
tap_is "$(db -AtF' ' -c "SELECT status, sqlstate FROM etl_stream.runs
                           WHERE table_name = 'fz_big' AND message LIKE 'canceling%statement timeout'")" \
	"cancelled 57014" "the run ended by statement_timeout too"
tap_is "$(db -AtF' ' -c "SELECT status, sqlstate, rows_pulled > 0 FROM etl_stream.runs
                           WHERE table_name = 'fz_big' AND message LIKE 'the backend running it (pid $pid) was terminated'")" \
	"cancelled 57P01 t" "and the terminated one, with the rows it had pulled"
tap_is "$(db -Atc "SELECT string_agg(status, ',' ORDER BY started_at) FROM etl_stream.runs WHERE table_name = 'fz_big'")" \
	"failed,cancelled,cancelled,cancelled,success" "five runs, in the order they started"
tap_is "$(db -AtF' ' -c "SELECT last_status, last_error LIKE '%terminated%' FROM etl_stream.status WHERE name = 'fz_big'")" \
	"success t" "etl_stream.status shows the last error: the terminated run"

