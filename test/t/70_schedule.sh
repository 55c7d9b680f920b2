#!/usr/bin/env bash
# Schedules with a real pg_cron (1.4, minute granularity): a schedule
# '* * * * *' syncs its table within 75 s and etl_stream.schedules shows
# it, with its pg_cron job, last outcome and next due time; a conversion
# error is not retried (one attempt) and cron.job_run_details says failed;
# outside cron.database_name a schedule is refused with the reason.
# pg_cron keeps its jobs in database postgres (test/lib.sh), so this test
# works there and removes both extensions at the end.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

OTHER=t_schedule_other
cleanup() {
	local -
	set +e
	pg_psql -q >/dev/null 2>&1 <<-SQL
		SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'etl_stream.%';
		DROP EXTENSION IF EXISTS etl_stream CASCADE;
		DROP EXTENSION IF EXISTS pg_cron CASCADE;
		DROP TABLE IF EXISTS public.sched_ok, public.sched_bad;
	SQL
	pg_psql -qc "DROP DATABASE IF EXISTS $OTHER WITH (FORCE)" >/dev/null 2>&1
	mysql_root etl_test -e "DROP TABLE IF EXISTS sched_ok, sched_bad" >/dev/null 2>&1
}
trap cleanup EXIT
cleanup
db() { pg_psql -d postgres "$@"; }

# --- outside cron.database_name: refused, saying where --------------------
create_test_db "$OTHER"
err=$(pg_psql -d "$OTHER" -Atc "SELECT etl_stream.schedule('x', '* * * * *')" 2>&1 || true)
tap_ok "a schedule outside pg_cron's database is refused" \
	grep -q 'ERROR:  pg_cron is not installed in database "t_schedule_other"' <<<"$err"
tap_ok "the reason names cron.database_name" \
	grep -q 'DETAIL:  pg_cron keeps its jobs in database "postgres" (cron.database_name)' <<<"$err"

# --- in it: the extension, a source, two tables ---------------------------
mysql_root etl_test <<'SQL'
CREATE TABLE sched_ok (id INT PRIMARY KEY, note VARCHAR(40), update_time INT NOT NULL);
INSERT INTO sched_ok SELECT seq, CONCAT('row ', seq), seq FROM seq_1_to_5000;
CREATE TABLE sched_bad (id INT PRIMARY KEY, n INT NOT NULL, update_time INT NOT NULL);
INSERT INTO sched_bad SELECT seq, seq * 1000, seq FROM seq_1_to_100;
SQL
db -q >/dev/null <<SQL
CREATE EXTENSION pg_cron;
CREATE EXTENSION etl_stream;
CREATE SERVER src FOREIGN DATA WRAPPER etl_stream
  OPTIONS (host '127.0.0.1', port '$MYSQL_PORT', dbname 'etl_test');
CREATE USER MAPPING FOR CURRENT_USER SERVER src
  OPTIONS (user '$ETL_MYSQL_USER', password '$ETL_MYSQL_PASSWORD');
SELECT etl_stream.add_table('sched_ok', server => 'src', source_table => 'sched_ok',
                            watermark => 'update_time');
SELECT etl_stream.create_target('sched_ok');
-- n * 1000 does not fit the smallint the target is given: a value error
SELECT etl_stream.add_table('sched_bad', server => 'src', source_table => 'sched_bad',
                            watermark => 'update_time');
SELECT etl_stream.create_target('sched_bad');
ALTER TABLE sched_bad ALTER COLUMN n TYPE smallint;
SQL

err=$(db -Atc "SELECT etl_stream.schedule('x', '* * * * *', ARRAY['sched_ok', 'no_such'])" 2>&1 || true)
tap_ok "a schedule naming a table that is not registered is refused" \
	grep -q 'etl_stream table no_such does not exist' <<<"$err"
err=$(db -Atc "SELECT etl_stream.schedule('x', 'every minute')" 2>&1 || true)
tap_ok "pg_cron refuses an expression it cannot read, and no schedule is left" \
	test "$(grep -c 'invalid schedule' <<<"$err")/$(db -Atc "SELECT count(*) FROM etl_stream.schedule_defs")" = 1/0

t0=$(date +%s)
job_ok=$(db -Atc "SELECT etl_stream.schedule('minutely', '* * * * *', ARRAY['sched_ok'])")
job_bad=$(db -Atc "SELECT etl_stream.schedule('bad', '* * * * *', ARRAY['sched_bad'])")
tap_is "$(db -Atc "SELECT count(*) FROM cron.job WHERE jobid IN ($job_ok, $job_bad)
                    AND command LIKE 'CALL etl_stream.run_schedule(%'")" 2 \
	"schedule() made a pg_cron job for each, which CALLs run_schedule"
tap_is "$(db -AtF' ' -c "SELECT name, cron, tables::text, cron_job_id = $job_ok,
                                next_due > now() AND next_due <= date_trunc('minute', now()) + interval '1 minute'
                           FROM etl_stream.schedules WHERE name = 'minutely'")" \
	"minutely * * * * * {sched_ok} t t" "etl_stream.schedules shows it, with its job and the next minute as next due"
tap_is "$(db -Atc "SELECT etl_stream._cron_next('30 4 1,15 * 5', '2026-12-02 10:00+00') AT TIME ZONE 'UTC'")" \
	"2026-12-04 04:30:00" "next due: day of month or day of week, as cron reads them"
tap_is "$(db -Atc "SELECT etl_stream._cron_next('*/20 9-17 * jan mon-fri', '2026-12-31 23:59+00') AT TIME ZONE 'UTC'")" \
	"2027-01-01 09:00:00" "next due: steps, ranges and names"

# pg_cron starts both at the next minute; wait for their runs
for ((i = 0; i < 150; i++)); do
	n=$(db -Atc "SELECT count(*) FROM cron.job_run_details WHERE jobid IN ($job_ok, $job_bad) AND end_time IS NOT NULL")
	[ "$n" -ge 2 ] && break
	sleep 0.5
done
took=$(($(date +%s) - t0))
echo "# both schedules ran once within $took s"
tap_ok "pg_cron ran the schedules within 75 s ($took s)" test "$took" -le 75
tap_is "$(db -AtF' ' -c "SELECT status, rows_inserted, attempt FROM etl_stream.runs WHERE table_name = 'sched_ok'")" \
	"success 5000 1" "the scheduled run synced the table"
tap_is "$(db -Atc "SELECT count(*) FROM sched_ok")" 5000 "the target has every row"
tap_is "$(db -AtF' ' -c "SELECT status FROM cron.job_run_details WHERE jobid = $job_ok")" succeeded \
	"cron.job_run_details says succeeded"
tap_is "$(db -AtF' ' -c "SELECT last_outcome, last_start IS NOT NULL FROM etl_stream.schedules WHERE name = 'minutely'")" \
	"succeeded t" "and so does etl_stream.schedules"

tap_is "$(db -AtF' ' -c "SELECT count(*), min(status), min(sqlstate), max(attempt) FROM etl_stream.runs WHERE table_name = 'sched_bad'")" \
	"1 failed 22003 1" "a conversion error is not retried: one attempt, failed"
tap_is "$(db -Atc "SELECT status FROM cron.job_run_details WHERE jobid = $job_bad")" failed \
	"cron.job_run_details says failed"
tap_ok "its message names the schedule and the table" \
	grep -q 'etl_stream schedule "bad": 1 table did not sync' <<<"$(db -Atc "SELECT return_message FROM cron.job_run_details WHERE jobid = $job_bad")"
tap_is "$(db -AtF' ' -c "SELECT last_outcome FROM etl_stream.schedules WHERE name = 'bad'")" failed \
	"etl_stream.schedules shows the failure"

# --- pg_dump and restore keep the schedules and their jobs -----------------
db -qc "UPDATE cron.job SET active = false WHERE jobname LIKE 'etl_stream.%'" >/dev/null
runuser -u postgres -- "$PG_BIN/pg_dump" -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres >"$ETL_WORK/sched.dump"
db -q >/dev/null 2>&1 <<'SQL'
DROP EXTENSION etl_stream CASCADE;
DROP EXTENSION pg_cron CASCADE;
DROP TABLE sched_ok, sched_bad;
SQL
tap_is "$(db -Atc "SELECT count(*) FROM pg_extension WHERE extname IN ('etl_stream', 'pg_cron')")" 0 "both extensions dropped"
db -q -v ON_ERROR_STOP=0 -f "$ETL_WORK/sched.dump" >"$ETL_WORK/sched.restore" 2>&1 || true
tap_is "$(db -AtF' ' -c "SELECT string_agg(s.name || ':' || (s.cron_job_id IS NOT NULL) || ':' || j.command, ' ' ORDER BY s.name)
                           FROM etl_stream.schedules s JOIN cron.job j ON j.jobid = s.cron_job_id")" \
	"bad:true:CALL etl_stream.run_schedule('bad') minutely:true:CALL etl_stream.run_schedule('minutely')" \
	"after pg_dump and restore the schedules are back, joined to their pg_cron jobs"

# --- unschedule ------------------------------------------------------------
db -qc "SELECT etl_stream.unschedule('minutely')" -c "SELECT etl_stream.unschedule('bad')" >/dev/null
tap_is "$(db -Atc "SELECT (SELECT count(*) FROM cron.job) || ' ' || (SELECT count(*) FROM etl_stream.schedules)")" \
	"0 0" "unschedule removes the schedule and its pg_cron job"
err=$(db -Atc "SELECT etl_stream.unschedule('minutely')" 2>&1 || true)
tap_ok "unscheduling it again says it does not exist" grep -q 'etl_stream schedule "minutely" does not exist' <<<"$err"

# --- by hand: a schedule in workers, and one that finds its table busy ----
db -qc "SELECT etl_stream.schedule('par', '0 0 1 1 *', ARRAY['sched_ok'], parallel => 2)" >/dev/null
db -qc "CALL etl_stream.run_schedule('par')"
tap_is "$(db -AtF' ' -c "SELECT status, job_id IS NOT NULL FROM etl_stream.runs WHERE table_name = 'sched_ok' ORDER BY run_id DESC LIMIT 1")" \
	"success t" "a schedule with parallel => 2 runs its tables as a job of workers"
# another session holds the table's registration while the schedule runs
db -q >/dev/null <<'SQL' &
BEGIN;
SELECT FROM etl_stream.tables WHERE name = 'sched_ok' FOR UPDATE;
SELECT pg_sleep(4);
COMMIT;
SQL
holder=$!
sleep 1
db -qc "SELECT etl_stream.schedule('busy', '0 0 1 1 *', ARRAY['sched_ok'])" >/dev/null
tap_ok "run_schedule succeeds when the table's previous run is still going" db -qc "CALL etl_stream.run_schedule('busy')"
tap_is "$(db -AtF'|' -c "SELECT status, error FROM etl_stream.runs WHERE table_name = 'sched_ok' ORDER BY run_id DESC LIMIT 1")" \
	"skipped|another sync of this table is running" "and records the table as skipped, with the reason"
wait "$holder" || true
db -qc "SELECT etl_stream.unschedule('par')" -c "SELECT etl_stream.unschedule('busy')" >/dev/null
