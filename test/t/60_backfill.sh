#!/usr/bin/env bash
# Backfills in background workers: 4 workers over 24 daily slices without a
# deadlock, the target equal to the source day by day; a worker terminated
# mid-slice loses nothing and job_resume finishes only what is not done; a
# cancelled job stops; etl_stream.max_workers bounds the workers (tasks
# wait, they do not fail); an older slice never overwrites a newer row; a
# sync of the table meanwhile is skipped; and a non-superuser's job runs as
# that role, out of other roles' reach.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DB=t_backfill
SRC=bf_events
DAYS=24
PER_DAY=25000
N=$((DAYS * PER_DAY))
LOG="$ETL_PG_DIR/postgres.log"
cleanup() {
	local -
	set +e
	pg_psql -qc "ALTER SYSTEM RESET etl_stream.max_workers" -c "SELECT pg_reload_conf()" >/dev/null 2>&1
	pg_psql -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	for r in t_bf_user t_bf_other t_bf_nologin; do pg_psql -qc "DROP ROLE IF EXISTS $r" >/dev/null 2>&1; done
	mysql_root etl_test -e "DROP TABLE IF EXISTS $SRC" >/dev/null 2>&1
}
trap cleanup EXIT
cleanup
db() { pg_psql -d "$DB" "$@"; }
log_lines_before=$(wc -l <"$LOG")

t0=$SECONDS
mysql_root etl_test <<SQL
CREATE TABLE $SRC (id INT NOT NULL PRIMARY KEY, amount DECIMAL(10,2) NOT NULL, note VARCHAR(100),
                   changed_at DATETIME NOT NULL, KEY (changed_at));
INSERT INTO $SRC SELECT seq, (seq % 10000) / 100, CONCAT('event ', seq, ' ', MD5(seq)),
                        TIMESTAMP('2024-01-01') + INTERVAL (seq % $DAYS) DAY + INTERVAL (seq % 86400) SECOND
  FROM seq_1_to_$N;
SQL
echo "# source of $N rows over $DAYS days loaded in $((SECONDS - t0)) s"

create_test_db "$DB"
db -q >/dev/null <<SQL
CREATE EXTENSION dblink;
SELECT (etl_stream.add_table(n, server => 'src', source_table => '$SRC', watermark => 'changed_at',
                             target_table => n)).name
  FROM unnest(ARRAY['bf', 'bf_kill', 'bf_cancel', 'bf_one']) n;
SELECT etl_stream.create_target(n) FROM unnest(ARRAY['bf', 'bf_kill', 'bf_cancel', 'bf_one']) n;
-- the target against the source: count and an order-independent checksum per day
CREATE FUNCTION pg_days(t regclass) RETURNS TABLE (day date, n bigint, h numeric) LANGUAGE plpgsql AS \$\$
BEGIN
  RETURN QUERY EXECUTE format(
    'SELECT changed_at::date, count(*), sum((''x'' || lpad(left(md5(concat_ws(''|'', id, amount, note,
            to_char(changed_at, ''YYYY-MM-DD HH24:MI:SS''))), 15), 16, ''0''))::bit(64)::bigint)
       FROM %s GROUP BY 1 ORDER BY 1', t);
END \$\$;
CREATE FUNCTION my_days() RETURNS TABLE (day date, n bigint, h numeric) LANGUAGE sql AS \$\$
  SELECT * FROM etl_stream.query('src',
    'SELECT DATE(changed_at), COUNT(*), SUM(CAST(CONV(LEFT(MD5(CONCAT_WS(''|'', id, amount, note,
            DATE_FORMAT(changed_at, ''%Y-%m-%d %H:%i:%s''))), 15), 16, 10) AS UNSIGNED))
       FROM $SRC GROUP BY 1 ORDER BY 1') AS m(day date, n bigint, h numeric) \$\$;
CREATE FUNCTION same_as_source(t regclass) RETURNS boolean LANGUAGE sql AS \$\$
  SELECT NOT EXISTS ((SELECT * FROM pg_days(t) EXCEPT SELECT * FROM my_days())
                     UNION ALL (SELECT * FROM my_days() EXCEPT SELECT * FROM pg_days(t))) \$\$;
-- the view, sampled while a job runs
CREATE TABLE samples (at timestamptz, pid int, role name, job_id bigint, task_id bigint,
                      slice text, phase text, rows_pulled bigint, job_eta interval);
CREATE TABLE worker_counts (at timestamptz, n bigint);
SQL

# sample JOB: sample etl_stream.progress every 10 ms until the job ends
sample() {
	db -qAtc "
DO \$\$
BEGIN
  LOOP
    INSERT INTO samples SELECT clock_timestamp(), pid, role, job_id, task_id, slice, phase, rows_pulled, job_eta
                          FROM etl_stream.progress WHERE job_id = $1;
    EXIT WHEN (SELECT state FROM etl_stream.jobs WHERE job_id = $1) IN ('done', 'failed', 'cancelled');
    COMMIT;
    PERFORM pg_sleep(0.01);
  END LOOP;
END \$\$"
}
job_state() { db -Atc "SELECT state FROM etl_stream.jobs WHERE job_id = $1"; }
wait_job() { db -Atc "SELECT state FROM etl_stream.job_wait($1, interval '120 s')"; }
max_at_source=$(mysql_root -N etl_test -e "SELECT DATE_FORMAT(MAX(changed_at), '%Y-%m-%d %H:%i:%s') FROM $SRC")

# --- 1. 4 workers over 24 daily slices ---------------------------------
t0=$SECONDS
job=$(db -Atc "SELECT etl_stream.backfill('bf', range_from => '2024-01-01', slice => '1 day', workers => 4)")
sample "$job" &
SAMPLER=$!
# meanwhile: a sync of the table is skipped, saying why
sleep 0.5
skipped=$(db -AtF'|' -c "SELECT status, error FROM etl_stream.sync('bf')")
# and rows change at the source: moved to today, past what the backfill read
mysql_root etl_test -e "UPDATE $SRC SET note = 'changed during the backfill', changed_at = NOW() WHERE id % 5000 = 7"
changed=$(mysql_root -N etl_test -e "SELECT COUNT(*) FROM $SRC WHERE note = 'changed during the backfill'")
wait "$SAMPLER"
state=$(wait_job "$job")
echo "# backfill job $job: $state in $((SECONDS - t0)) s"
db -Atc "SELECT state || ' ' || count(*) FROM etl_stream.tasks WHERE job_id = $job GROUP BY state" | sed 's/^/# tasks: /'
tap_is "$state" done "the 4-worker backfill of 24 daily slices is done"
tap_is "$(db -Atc "SELECT tasks_total || ' ' || tasks_done FROM etl_stream.jobs WHERE job_id = $job")" "24 24" \
	"it had 24 slices, one a day, all done"
tap_is "$(db -Atc "SELECT min(range_from) || ' / ' || max(range_from) || ' / ' || count(*) FILTER (WHERE range_to IS NULL)
                   FROM etl_stream.tasks WHERE job_id = $job")" \
	"2024-01-01 00:00:00.000000 / 2024-01-24 00:00:00.000000 / 1" "the slices are the 24 days, the last one open-ended"
tap_is "$skipped" "skipped|a backfill of this table is running (job $job)" \
	"a sync of the table during its backfill is skipped, with the reason"
tap_is "$(grep -c 'deadlock detected' <(tail -n +"$log_lines_before" "$LOG") || true)" 0 "no deadlock detected in the server log"
tap_is "$(db -Atc "SELECT count(DISTINCT pid) FROM samples WHERE job_id = $job")" 4 "4 workers showed in etl_stream.progress"
tap_ok "each worker's slice showed with rows rising ($(db -Atc "SELECT count(*) FROM (SELECT task_id FROM samples WHERE job_id = $job GROUP BY task_id HAVING count(DISTINCT rows_pulled) > 1) s") slices seen rising)" \
	test "$(db -Atc "SELECT count(*) FROM (SELECT task_id FROM samples WHERE job_id = $job GROUP BY task_id HAVING count(DISTINCT rows_pulled) > 1) s")" -ge 12
tap_ok "the view showed the slice and the job's ETA" \
	test "$(db -Atc "SELECT count(*) FROM samples WHERE job_id = $job AND slice LIKE '[2024-01-%' AND job_eta IS NOT NULL")" -gt 0
left=$(etl_workers_left)
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.progress")/$left/$(db -Atc "SELECT count(*) FROM pg_tables WHERE schemaname = 'etl_stream_tasks'")" \
	"0/0/0" "after the job: no progress slot, no worker, no slice staging table left"
tap_is "$(db -Atc "SELECT count(*) || ' ' || count(DISTINCT task_id) FROM etl_stream.runs WHERE job_id = $job AND status = 'success'")" \
	"24 24" "each slice's run is in etl_stream.runs, tied to the job and its task"
paths=$(db -Atc "SELECT string_agg(load_path || ' ' || n, ', ' ORDER BY load_path)
                   FROM (SELECT load_path, count(*) n FROM etl_stream.runs WHERE job_id = $job GROUP BY 1) s")
echo "# load paths of the slices: $paths"
tap_ok "the slices were loaded into the target directly, side by side ($paths)" grep -q 'direct' <<<"$paths"
tap_is "$(db -Atc "SELECT high_watermark FROM etl_stream.tables WHERE name = 'bf'")" "$max_at_source.000000" \
	"the table's watermark is the MAX read when the job was made"
db -Atc "SELECT count(*) FROM bf" | sed 's/^/# rows in bf after the backfill: /'
# the rows changed meanwhile come with the next sync, and the target equals the source
next=$(db -AtF' ' -c "SELECT status, rows_pulled >= $changed FROM etl_stream.sync('bf')")
tap_is "$next" "success t" "the next sync pulls the $changed rows changed during the backfill"
tap_is "$(db -Atc "SELECT same_as_source('bf')")" t "then bf equals the source: count and checksum per day"
tap_is "$(db -Atc "SELECT count(*) FROM bf WHERE note = 'changed during the backfill'")" "$changed" \
	"the changed rows have their new values"
tap_is "$(db -Atc "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relid = 'public.bf'::regclass")" t \
	"the job ANALYZEd the target when it was done"

# --- 2. an older slice never overwrites a newer row ---------------------
# bf holds every row now; one of 2024-01-05 is made newer in the target, as
# an incremental sync would have merged it; a backfill of that day keeps it.
db -qc "UPDATE bf SET note = 'newer in the target', changed_at = '2024-01-20' WHERE id = (SELECT min(id) FROM bf WHERE changed_at::date = '2024-01-05')"
kept_id=$(db -Atc "SELECT id FROM bf WHERE note = 'newer in the target'")
job=$(db -Atc "SELECT etl_stream.backfill('bf', range_from => '2024-01-05', range_to => '2024-01-06', workers => 1)")
tap_is "$(wait_job "$job")" done "a backfill of one day is done"
tap_is "$(db -Atc "SELECT load_path FROM etl_stream.runs WHERE job_id = $job")" staging \
	"its rows met the target's keys, so the slice went through staging"
tap_is "$(db -Atc "SELECT note || ' ' || changed_at FROM bf WHERE id = $kept_id")" "newer in the target 2024-01-20 00:00:00" \
	"it did not overwrite the target's newer version of a row (newer watermark wins)"
tap_is "$(db -Atc "SELECT rows_pulled FROM etl_stream.jobs WHERE job_id = $job")" "$(mysql_root -N etl_test -e "SELECT COUNT(*) FROM $SRC WHERE DATE(changed_at) = '2024-01-05'")" \
	"it pulled that day's rows"
db -qc "UPDATE bf b SET note = s.note, changed_at = s.changed_at
          FROM etl_stream.query('src', 'SELECT id, note, changed_at FROM $SRC WHERE id = $kept_id')
               AS s(id int, note varchar(100), changed_at timestamp) WHERE b.id = s.id"

# --- 3. a worker terminated mid-slice ----------------------------------
job=$(db -Atc "SELECT etl_stream.backfill('bf_kill', range_from => '2024-01-01', range_to => '2024-01-25', slice => '1 day', workers => 2)")
victim=$(db -qAt <<SQL
DO \$\$
BEGIN
  FOR i IN 1..3000 LOOP
    EXIT WHEN EXISTS (SELECT FROM etl_stream.progress p JOIN etl_stream.tasks t USING (task_id)
                       WHERE p.job_id = $job AND p.phase = 'pull' AND p.rows_pulled >= 5000 AND t.position > 2);
    PERFORM pg_sleep(0.01);
  END LOOP;
END \$\$;
SELECT p.task_id || ' ' || p.pid || ' ' || pg_terminate_backend(p.pid, 5000)
  FROM etl_stream.progress p JOIN etl_stream.tasks t USING (task_id)
 WHERE p.job_id = $job AND p.phase = 'pull' AND t.position > 2 LIMIT 1;
SQL
)
read -r victim_task victim_pid terminated <<<"$victim"
echo "# terminated the worker $victim_pid of task $victim_task: $terminated"
tap_is "$terminated" true "a worker was terminated in the middle of a slice"
state=$(wait_job "$job")
tap_is "$state" failed "the job ends failed: the terminated slice is not done"
tap_is "$(db -Atc "SELECT state || ': ' || message FROM etl_stream.tasks WHERE task_id = $victim_task")" \
	"failed: the worker (pid $victim_pid) ended before the task was done" "the slice is kept, failed, with why"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.tasks WHERE job_id = $job AND state = 'done'")" 23 "the other 23 slices are done"
tap_is "$(db -AtF' ' -c "SELECT status, sqlstate, job_id = $job, rows_inserted FROM etl_stream.runs WHERE task_id = $victim_task")" \
	"cancelled 57P01 t 0" "the terminated run is recorded afterwards, by a later run: cancelled, 57P01, nothing written"
db -qc "SELECT etl_stream.job_resume($job)"
tap_is "$(wait_job "$job")" done "job_resume finishes the job"
tap_is "$(db -Atc "SELECT string_agg(DISTINCT attempts::text, ',') FROM etl_stream.tasks WHERE job_id = $job AND task_id <> $victim_task")/$(db -Atc "SELECT attempts FROM etl_stream.tasks WHERE task_id = $victim_task")" \
	"1/2" "only the terminated slice ran again: the finished ones were not pulled again"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.runs WHERE job_id = $job AND status = 'success'")/$(db -Atc "SELECT count(*) FROM etl_stream.runs WHERE job_id = $job")" \
	"24/25" "one successful run per slice in all, and the terminated one"
tap_is "$(db -Atc "SELECT count(*) = count(DISTINCT id) FROM bf_kill")" t "no key twice in the target"
db -qc "SELECT etl_stream.sync('bf_kill')" >/dev/null
tap_is "$(db -Atc "SELECT same_as_source('bf_kill')")" t "bf_kill equals the source (after the next sync)"

# --- 4. job_cancel ---------------------------------------------------------
job=$(db -Atc "SELECT etl_stream.backfill('bf_cancel', range_from => '2024-01-01', range_to => '2024-01-25', slice => '1 day', workers => 2)")
db -qAt >/dev/null <<SQL
DO \$\$
BEGIN
  FOR i IN 1..3000 LOOP
    EXIT WHEN (SELECT tasks_done FROM etl_stream.jobs WHERE job_id = $job) >= 3;
    PERFORM pg_sleep(0.01);
  END LOOP;
END \$\$;
SQL
tap_is "$(db -Atc "SELECT etl_stream.job_cancel($job)")" t "job_cancel stops a running job"
tap_is "$(wait_job "$job")" cancelled "the job ends cancelled"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.tasks WHERE job_id = $job AND state NOT IN ('done', 'cancelled')")" 0 \
	"each task is done or cancelled"
tap_is "$(etl_workers_left)/$(db -Atc "SELECT count(*) FROM pg_tables WHERE schemaname = 'etl_stream_tasks'")" \
	"0/0" "no worker and no slice staging left"
tap_is "$(db -Atc "SELECT count(*) FROM bf_cancel")" "$(db -Atc "SELECT sum(rows_merged) FROM etl_stream.tasks WHERE job_id = $job AND state = 'done'")" \
	"the target holds exactly the rows of the slices done"
db -qc "SELECT etl_stream.job_resume($job)"
tap_is "$(wait_job "$job")" done "job_resume finishes a cancelled job"
tap_is "$(db -Atc "SELECT count(*) FROM bf_cancel")" "$(db -Atc "SELECT rows_pulled FROM etl_stream.jobs WHERE job_id = $job")" \
	"the target then holds every row the job pulled"
tap_is "$(db -Atc "SELECT count(*) FROM bf_cancel")" "$(mysql_root -N etl_test -e "SELECT COUNT(*) FROM $SRC WHERE changed_at < '2024-01-25'")" \
	"which are the source's rows of the range"

# --- 5. etl_stream.max_workers = 1: four asked for, one at a time --------
pg_psql -qc "ALTER SYSTEM SET etl_stream.max_workers = 1" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
job=$(db -Atc "SELECT etl_stream.backfill('bf_one', range_from => '2024-01-01', range_to => '2024-01-25', slice => '2 days', workers => 4)")
# a second job waits for the one slot; cancelled while it waits, it is over at once
job2=$(db -Atc "SELECT etl_stream.backfill('bf_cancel', range_from => '2024-01-25', range_to => '2024-01-27', workers => 1)")
db -qc "SELECT etl_stream.job_cancel($job2)" >/dev/null
tap_is "$(db -Atc "SELECT state, finished_at IS NOT NULL, (SELECT count(*) FROM etl_stream.tasks WHERE job_id = $job2 AND state <> 'cancelled')
                     FROM etl_stream.jobs WHERE job_id = $job2")" "cancelled|t|0" \
	"a job cancelled while it waits for a worker is finished then, its tasks cancelled"
db -qAt >/dev/null <<SQL
DO \$\$
BEGIN
  LOOP
    INSERT INTO samples SELECT clock_timestamp(), pid, role, job_id, task_id, slice, phase, rows_pulled, NULL
                          FROM etl_stream.progress WHERE job_id = $job;
    INSERT INTO worker_counts SELECT clock_timestamp(), count(*) FROM pg_stat_activity
                               WHERE backend_type = 'etl_stream worker';
    EXIT WHEN (SELECT state FROM etl_stream.jobs WHERE job_id = $job) IN ('done', 'failed', 'cancelled');
    COMMIT;
    PERFORM pg_sleep(0.01);
  END LOOP;
END \$\$;
SQL
tap_is "$(wait_job "$job")" done "with max_workers = 1 the job still finishes: its tasks waited"
tap_is "$(db -Atc "SELECT max(n) FROM worker_counts")" 1 "never more than one worker ran"
tap_is "$(db -Atc "SELECT count(*) FILTER (WHERE state = 'done') || '/' || count(*) FROM etl_stream.tasks WHERE job_id = $job")" \
	"12/12" "every task is done, none failed"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.tasks WHERE job_id = $job2 AND state <> 'cancelled'")" 0 \
	"and no worker ran a task of it later"

# still one slot: a job waits for it; the worker holding it is terminated, and the waiting job starts
db -qc "TRUNCATE bf_one" >/dev/null
jobA=$(db -Atc "SELECT etl_stream.backfill('bf_one', range_from => '2024-01-01', range_to => '2024-01-25', slice => '1 day', workers => 1)")
jobB=$(db -Atc "SELECT etl_stream.backfill('bf_cancel', range_from => '2024-01-25', range_to => '2024-01-26', workers => 1)")
victim=$(db -Atq <<SQL
DO \$\$
BEGIN
  FOR i IN 1..3000 LOOP
    EXIT WHEN EXISTS (SELECT FROM etl_stream.progress WHERE job_id = $jobA AND phase = 'pull');
    PERFORM pg_sleep(0.01);
  END LOOP;
END \$\$;
SELECT pg_terminate_backend(pid, 5000) FROM etl_stream.progress WHERE job_id = $jobA LIMIT 1;
SQL
)
tap_is "$victim" t "the worker of the job holding the one slot is terminated"
tap_is "$(wait_job "$jobB")" done "the job that waited for the slot then runs to the end"
db -qc "SELECT etl_stream.job_resume($jobA)" >/dev/null
tap_is "$(wait_job "$jobA")" done "and job_resume finishes the job whose worker was terminated"

# --- 5b. etl_stream.max_workers = 0: no job is made to wait for ever ------
pg_psql -qc "ALTER SYSTEM SET etl_stream.max_workers = 0" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
out=$(db -Atc "SELECT etl_stream.backfill('bf_one', range_from => '2024-01-01', range_to => '2024-01-03')" 2>&1 || true)
tap_ok "with max_workers = 0 a backfill is refused, with the reason" grep -qF "etl_stream.max_workers is 0, so no background worker may run" <<<"$out"
out=$(db -Atc "SELECT count(*) FROM etl_stream.sync_all(parallel => 2)" 2>&1 || true)
tap_ok "and so is sync_all(parallel => 2)" grep -qF "etl_stream.max_workers is 0" <<<"$out"
# the deferred ANALYZE finds no slot either: the sync ANALYZEs in the run, and says so
db -q >/dev/null <<SQL
SELECT etl_stream.add_table('bf_stats', server => 'src', source_table => '$SRC', watermark => 'changed_at',
                            target_table => 'bf_stats');
SELECT etl_stream.create_target('bf_stats');
SQL
tap_is "$(db -Atc "SELECT statistics FROM etl_stream.sync('bf_stats')")" in_run \
	"with no worker slot free, a sync's ANALYZE is done in the run (statistics = in_run)"
tap_is "$(db -Atc "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'bf_stats'")" t \
	"and the target has been analyzed when the sync returns"
pg_psql -qc "ALTER SYSTEM RESET etl_stream.max_workers" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
db -qc "TRUNCATE bf_stats" -c "UPDATE etl_stream.tables SET high_watermark = NULL WHERE name = 'bf_stats'" >/dev/null
tap_is "$(db -Atc "SELECT statistics FROM etl_stream.sync('bf_stats')")" deferred \
	"with a slot free, it is deferred to a worker"

# --- 6. a non-superuser's job: its role, out of other roles' reach --------
pg_psql -q >/dev/null <<SQL
CREATE ROLE t_bf_user LOGIN;
CREATE ROLE t_bf_other LOGIN;
CREATE ROLE t_bf_nologin;
SQL
db -q >/dev/null <<SQL
GRANT USAGE ON FOREIGN SERVER src TO t_bf_user, t_bf_nologin;
CREATE USER MAPPING FOR t_bf_user SERVER src OPTIONS (user '$ETL_MYSQL_USER', password '$ETL_MYSQL_PASSWORD');
CREATE USER MAPPING FOR t_bf_nologin SERVER src OPTIONS (user '$ETL_MYSQL_USER', password '$ETL_MYSQL_PASSWORD');
-- what a role needs to sync its own tables (docs/operations.md)
GRANT etl_stream_user TO t_bf_user, t_bf_other, t_bf_nologin;
SELECT FROM etl_stream.add_table('bf_user', server => 'src', source_table => '$SRC', watermark => 'changed_at');
SELECT etl_stream.create_target('bf_user');
ALTER TABLE bf_user OWNER TO t_bf_user;
-- a superuser hands the registration over (t_bf_nologin acts as t_bf_user below)
UPDATE etl_stream.tables SET owner = 't_bf_user' WHERE name = 'bf_user';
GRANT t_bf_user TO t_bf_nologin;
SQL
as_user() { "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U "$1" -d "$DB" "${@:2}"; }
job=$(as_user t_bf_user -Atc "SELECT etl_stream.backfill('bf_user', range_from => '2024-01-01', slice => '4 days', workers => 2)")
roles=$(db -qAt <<SQL
DO \$\$
BEGIN
  FOR i IN 1..3000 LOOP
    EXIT WHEN EXISTS (SELECT FROM etl_stream.progress WHERE job_id = $job);
    PERFORM pg_sleep(0.01);
  END LOOP;
END \$\$;
SELECT string_agg(DISTINCT a.usename, ',') FROM etl_stream.progress p JOIN pg_stat_activity a USING (pid)
 WHERE p.job_id = $job;
SQL
)
tap_is "$roles" t_bf_user "the job's workers run as the role that made it"
tap_is "$(as_user t_bf_other -Atc "SELECT count(*) FROM etl_stream.jobs WHERE job_id = $job")/$(as_user t_bf_other -Atc "SELECT count(*) FROM etl_stream.tasks WHERE job_id = $job")" \
	"0/0" "another role does not see the job or its tasks"
tap_ok "another role cannot cancel it" bash -c "! $PG_BIN/psql -X -h 127.0.0.1 -p $PGPORT -U t_bf_other -d $DB -Atc 'SELECT etl_stream.job_cancel($job)' 2>&1 | grep -q '^t$'"
tap_ok "another role cannot resume it" bash -c "! $PG_BIN/psql -X -h 127.0.0.1 -p $PGPORT -U t_bf_other -d $DB -Atc 'SELECT etl_stream.job_resume($job)' >/dev/null 2>&1"
tap_is "$(as_user t_bf_user -Atc "SELECT state FROM etl_stream.job_wait($job, interval '120 s')")" done "the owner waits for it: done"
tap_is "$(db -Atc "SELECT owner FROM etl_stream.jobs WHERE job_id = $job")" t_bf_user "its owner is recorded"
err=$(db -Atc "SET ROLE t_bf_nologin" -c "SELECT etl_stream.backfill('bf_user')" 2>&1 || true)
echo "# $err"
tap_ok "a role without LOGIN is refused when it asks, with the reason" \
	grep -q 'role "t_bf_nologin" cannot run background workers' <<<"$err"
db -qc "SELECT FROM etl_stream.add_table('bf_refresh', server => 'src', source_table => '$SRC', strategy => 'full_refresh')"
err=$(db -Atc "SELECT etl_stream.backfill('bf_refresh')" 2>&1 || true)
tap_ok "a full_refresh table is refused: each slice would replace the target" \
	grep -q 'etl_stream table "bf_refresh" cannot be backfilled: its strategy is full_refresh' <<<"$err"
