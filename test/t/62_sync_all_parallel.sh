#!/usr/bin/env bash
# sync_all in dependency order: over A -> {B, C}, C -> D (and E on its own)
# sync_all(parallel => 3) runs every table in a worker of its own, each after
# what it depends on, and returns the runs; with A failing, B, C and D are
# skipped with the reason, E still runs.  The serial forms keep the order
# too, and registration refuses a cycle.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DB=t_sync_all_parallel
ROWS=150000
cleanup() {
	local -
	set +e
	pg_psql -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	mysql_root etl_test -e "DROP TABLE IF EXISTS sa_a, sa_a_gone, sa_b, sa_c, sa_d, sa_e" >/dev/null 2>&1
}
trap cleanup EXIT
cleanup
db() { pg_psql -d "$DB" "$@"; }

for t in a b c d e; do
	mysql_root etl_test -e "CREATE TABLE sa_$t (id INT PRIMARY KEY, note VARCHAR(60), update_time INT NOT NULL);
		INSERT INTO sa_$t SELECT seq, CONCAT('$t ', MD5(seq)), seq FROM seq_1_to_$ROWS"
done
create_test_db "$DB"
db -q >/dev/null <<'SQL'
SELECT (etl_stream.add_table('sa_' || n, server => 'src', source_table => 'sa_' || n,
                             watermark => 'update_time')).name
  FROM unnest(ARRAY['a', 'b', 'c', 'd', 'e']) n;
SELECT etl_stream.create_target('sa_' || n) FROM unnest(ARRAY['a', 'b', 'c', 'd', 'e']) n;
SELECT FROM etl_stream.alter_table('sa_b', depends_on => ARRAY['sa_a']);
SELECT FROM etl_stream.alter_table('sa_c', depends_on => ARRAY['sa_a']);
SELECT FROM etl_stream.alter_table('sa_d', depends_on => ARRAY['sa_c']);
SQL

# --- registration refuses cycles and unknown tables ---------------------
err=$(db -Atc "SELECT etl_stream.alter_table('sa_a', depends_on => ARRAY['sa_d'])" 2>&1 || true)
echo "$err" | sed 's/^/# /'
tap_ok "a dependency that closes a cycle is refused" grep -q 'dependencies of etl_stream table "sa_a" would form a cycle' <<<"$err"
tap_ok "the error shows the cycle" grep -q 'DETAIL:  sa_a -> sa_d -> sa_c -> sa_a' <<<"$err"
err=$(db -Atc "SELECT etl_stream.alter_table('sa_e', depends_on => ARRAY['sa_e'])" 2>&1 || true)
tap_ok "a table cannot depend on itself" grep -q 'dependencies of etl_stream table "sa_e" would form a cycle' <<<"$err"
err=$(db -Atc "SELECT etl_stream.alter_table('sa_e', depends_on => ARRAY['nope'])" 2>&1 || true)
tap_ok "nor on a table that is not registered" grep -q 'etl_stream table nope does not exist' <<<"$err"
tap_is "$(db -Atc "SELECT string_agg(name || ':' || position || ':' || depends_on::text, ' ' ORDER BY position)
                   FROM etl_stream._sync_order(ARRAY['sa_a', 'sa_b', 'sa_c', 'sa_d', 'sa_e'])")" \
	"sa_a:1:{} sa_e:2:{} sa_b:3:{1} sa_c:4:{1} sa_d:5:{4}" "the order: each table after what it depends on, then by name"

# --- sync_all(parallel => 3) ----------------------------------------------
# (the first runs load the empty targets directly; the statuses and times
# of the runs show the order)
runs=$(db -AtF' ' -c "SELECT table_name, status, rows_pulled, job_id IS NOT NULL FROM etl_stream.sync_all(parallel => 3) ORDER BY table_name")
echo "$runs" | sed 's/^/# /'
tap_is "$(echo "$runs" | tr '\n' ',')" "sa_a success $ROWS t,sa_b success $ROWS t,sa_c success $ROWS t,sa_d success $ROWS t,sa_e success $ROWS t," \
	"sync_all(parallel => 3) returns a successful run of every table, from its job"
order() {
	db -Atc "WITH r AS (SELECT table_name, started_at, finished_at FROM etl_stream.runs WHERE job_id = $1)
	         SELECT (SELECT finished_at FROM r WHERE table_name = 'sa_a') <= (SELECT started_at FROM r WHERE table_name = 'sa_b')
	            AND (SELECT finished_at FROM r WHERE table_name = 'sa_a') <= (SELECT started_at FROM r WHERE table_name = 'sa_c')
	            AND (SELECT finished_at FROM r WHERE table_name = 'sa_c') <= (SELECT started_at FROM r WHERE table_name = 'sa_d')"
}
job=$(db -Atc "SELECT max(job_id) FROM etl_stream.jobs")
tap_is "$(order "$job")" t "B and C started after A finished, D after C"
overlaps=$(db -Atc "SELECT count(*) FROM etl_stream.runs r1 JOIN etl_stream.runs r2
                     ON r1.job_id = r2.job_id AND r1.run_id < r2.run_id
                    AND r1.started_at < r2.finished_at AND r2.started_at < r1.finished_at
                  WHERE r1.job_id = $job")
tap_ok "runs overlapped in time: the workers ran side by side ($overlaps pairs)" test "$overlaps" -gt 0
tap_is "$(db -Atc "SELECT kind || ' ' || state || ' ' || workers || ' ' || tasks_total || ' ' || tasks_done FROM etl_stream.jobs WHERE job_id = $job")" \
	"sync_all done 3 5 5" "it ran as a sync_all job of 5 tasks in 3 workers"
tap_is "$(db -Atc "SELECT count(DISTINCT t.worker_pid) > 1 FROM etl_stream.tasks t WHERE job_id = $job")" t \
	"more than one worker ran its tasks"
tap_is "$(etl_workers_left)" 0 "no worker is left"

# --- A fails: its dependants are skipped with the reason -----------------
mysql_root etl_test -e "RENAME TABLE sa_a TO sa_a_gone"
mysql_root etl_test -e "UPDATE sa_e SET note = 'changed', update_time = update_time + $ROWS WHERE id <= 10"
runs=$(db -AtF'|' -c "SELECT table_name, status, coalesce(error, '') FROM etl_stream.sync_all(parallel => 3) ORDER BY table_name" 2>/dev/null)
echo "$runs" | sed 's/^/# /'
why='etl_stream table "sa_a", which it depends on, did not succeed (failed)'
tap_ok "A fails" grep -q '^sa_a|failed|' <<<"$runs"
tap_is "$(grep -E '^sa_[bcd]\|' <<<"$runs" | tr '\n' ',')" "sa_b|skipped|$why,sa_c|skipped|$why,sa_d|skipped|$why," \
	"B, C and D are skipped, each with the reason"
tap_ok "E, which depends on nothing, still runs" grep -q '^sa_e|success|' <<<"$runs"
job=$(db -Atc "SELECT max(job_id) FROM etl_stream.jobs")
tap_is "$(db -Atc "SELECT state FROM etl_stream.jobs WHERE job_id = $job")" failed "the job is failed"
tap_is "$(db -Atc "SELECT string_agg(table_name || ' ' || state, ', ' ORDER BY position) FROM etl_stream.tasks WHERE job_id = $job")" \
	"sa_a failed, sa_e done, sa_b skipped, sa_c skipped, sa_d skipped" "its tasks say the same"

# --- the serial forms: the same order, the same skipping ------------------
runs=$(db -AtF'|' -c "SELECT table_name, status, coalesce(split_part(error, E'\n', 1), '') FROM etl_stream.sync_all()" 2>/dev/null)
tap_is "$(cut -d'|' -f1,2 <<<"$runs" | tr '\n' ',')" "sa_a|failed,sa_e|success,sa_b|skipped,sa_c|skipped,sa_d|skipped," \
	"sync_all() runs them in dependency order, in one transaction, skipping the same"
tap_ok "D is skipped because C was" grep -q '^sa_d|skipped|etl_stream table "sa_c", which it depends on, did not succeed (skipped)$' <<<"$runs"
mysql_root etl_test -e "RENAME TABLE sa_a_gone TO sa_a"
before=$(db -Atc "SELECT max(run_id) FROM etl_stream.runs")
db -qc "CALL etl_stream.sync_all_proc()" 2>/dev/null
tap_is "$(db -Atc "SELECT string_agg(table_name || ' ' || status, ', ' ORDER BY run_id) FROM etl_stream.runs WHERE run_id > $before")" \
	"sa_a success, sa_e success, sa_b success, sa_c success, sa_d success" "CALL sync_all_proc() too, once A is back"
