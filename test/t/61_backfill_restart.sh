#!/usr/bin/env bash
# A PostgreSQL server stopped in immediate mode in the middle of a backfill
# and started again: the slices that committed stay done, the ones that
# were running are rolled back, nothing runs them until job_resume, and
# job_resume completes the job with the target equal to the source.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DIR="$ETL_WORK/restart_pg"
PORT=$((PGPORT + 9))
SRC=bf_restart
DB=t_restart
cleanup() {
	local -
	set +e
	stop_postgres "$DIR"
	rm -rf "$DIR"
	mysql_root etl_test -e "DROP TABLE IF EXISTS $SRC" >/dev/null 2>&1
}
trap cleanup EXIT

mysql_root etl_test <<SQL
DROP TABLE IF EXISTS $SRC;
CREATE TABLE $SRC (id INT NOT NULL PRIMARY KEY, note VARCHAR(100), changed_at DATETIME NOT NULL, KEY (changed_at));
INSERT INTO $SRC SELECT seq, CONCAT('event ', MD5(seq), MD5(seq + 1)),
                        TIMESTAMP('2024-01-01') + INTERVAL (seq % 24) DAY + INTERVAL (seq % 86400) SECOND
  FROM seq_1_to_480000;
SQL

# a private cluster, since this test stops it (start_postgres points PG* at it)
start_postgres "$DIR" "$PORT"
pg_ctl_as() { runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 "$@" >/dev/null; }
create_test_db "$DB"
db() { pg_psql -d "$DB" "$@"; }
db -q >/dev/null <<SQL
SELECT FROM etl_stream.add_table('bfr', server => 'src', source_table => '$SRC', watermark => 'changed_at');
SELECT etl_stream.create_target('bfr');
SQL

job=$(db -Atc "SELECT etl_stream.backfill('bfr', range_from => '2024-01-01', range_to => '2024-01-25', slice => '1 day', workers => 2)")
db -qAt >/dev/null <<SQL
DO \$\$
BEGIN
  FOR i IN 1..3000 LOOP
    EXIT WHEN (SELECT tasks_done FROM etl_stream.jobs WHERE job_id = $job) >= 4
          AND EXISTS (SELECT FROM etl_stream.progress WHERE job_id = $job AND rows_pulled > 1000);
    PERFORM pg_sleep(0.01);
  END LOOP;
END \$\$;
SQL
pg_ctl_as -m immediate stop
tap_ok "the server was stopped in immediate mode" bash -c "! runuser -u postgres -- $PG_BIN/pg_ctl -D $DIR/data status >/dev/null"
pg_ctl_as start
tap_ok "and started again" db -Atc "SELECT 1"

state=$(db -AtF' ' -c "SELECT state, tasks_done FROM etl_stream.jobs WHERE job_id = $job")
echo "# after the restart: job $state; tasks: $(db -Atc "SELECT string_agg(state || ' ' || n, ', ') FROM (SELECT state, count(*) n FROM etl_stream.tasks WHERE job_id = $job GROUP BY state) s")"
done_before=$(db -Atc "SELECT count(*) FROM etl_stream.tasks WHERE job_id = $job AND state = 'done'")
done_ids=$(db -Atc "SELECT string_agg(task_id::text, ',') FROM etl_stream.tasks WHERE job_id = $job AND state = 'done'")
running_ids=$(db -Atc "SELECT string_agg(task_id::text, ',') FROM etl_stream.tasks WHERE job_id = $job AND state = 'running'")
tap_ok "the slices committed before the stop are done ($done_before)" test "$done_before" -ge 4
tap_is "$(db -Atc "SELECT count(*) FROM bfr")" "$(db -Atc "SELECT sum(rows_merged) FROM etl_stream.tasks WHERE job_id = $job AND state = 'done'")" \
	"the target holds exactly their rows: the running slices rolled back"
tap_is "$(db -Atc "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'etl_stream worker'")" 0 "no worker runs after the restart"
out=$(db -Atc "SELECT state FROM etl_stream.job_wait($job, interval '30 s')" 2>&1)
tap_ok "job_wait says no worker works on the job, and returns ($(tr '\n' ' ' <<<"$out"))" grep -q 'NOTICE:  no worker is working on etl_stream job' <<<"$out"

db -qc "SELECT etl_stream.job_resume($job)" >/dev/null
tap_is "$(db -Atc "SELECT state FROM etl_stream.job_wait($job, interval '120 s')")" done "job_resume completes the job"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.tasks t WHERE task_id IN ($done_ids) AND attempts = 1
                     AND (SELECT count(*) FROM etl_stream.runs r WHERE r.task_id = t.task_id) = 1")" "$done_before" \
	"the slices done before the stop were not run again (one attempt, one run each)"
tap_is "$(db -Atc "SELECT string_agg(DISTINCT attempts::text, ',') FROM etl_stream.tasks WHERE task_id IN ($running_ids)")" 2 \
	"the slices running at the stop ran again"
tap_is "$(db -Atc "SELECT count(*) = count(DISTINCT id) FROM bfr")/$(db -Atc "SELECT count(*) FROM bfr")" \
	"t/$(mysql_root -N etl_test -e "SELECT COUNT(*) FROM $SRC WHERE changed_at < '2024-01-25'")" "every row once, as many as the source has"
tap_is "$(db -Atc "SELECT md5(string_agg(id || '|' || note || '|' || changed_at, ',' ORDER BY id)) FROM bfr")" \
	"$(db -Atc "SELECT md5(string_agg(id || '|' || note || '|' || changed_at, ',' ORDER BY id))
	             FROM etl_stream.query('src', 'SELECT id, note, changed_at FROM $SRC') AS s(id int, note varchar(100), changed_at timestamp)")" \
	"the target equals the source, row by row"
