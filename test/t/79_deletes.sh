#!/usr/bin/env bash
# Hard deletes (issue 12): deletes => 'keep' leaves a row deleted on MySQL
# in the target; 'delete' removes it at the next sync when it is inside the
# look-back window, counted in rows_deleted; 'flag' sets its _deleted_at,
# counted in rows_flagged, and a row that comes back is live again.  A row
# whose watermark moved is not taken for deleted.  A row deleted outside
# the window is found only by sweep_deletes, which also works on a
# composite text key.  On a 2,000,000-row table with a few hundred
# scattered deletes, sweep_deletes leaves the target equal to the source,
# and every query it sends MySQL (sampled from the processlist every 0.2 s,
# and all of them from the general log) reads key columns only, with
# literal bounds or a list of keys.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DB=t_deletes
BIG=2000000
cleanup() {
	local -
	set +e
	mysql_root -e "SET GLOBAL general_log = 0" >/dev/null 2>&1
	pg_psql -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	mysql_root etl_test -e "DROP TABLE IF EXISTS del_src, del_pair, del_big" >/dev/null 2>&1
}
trap cleanup EXIT
cleanup
db() { pg_psql -d "$DB" "$@"; }
q() { db -AtF' ' -c "$1"; }
my() { mysql_root -N etl_test -e "$1"; }

# --- the three policies on one source ------------------------------------
# ver is the watermark: row id has ver id, look-back 100, so after the
# first sync (watermark 1000) the window is ver >= 900
my "CREATE TABLE del_src (id INT PRIMARY KEY, v VARCHAR(20), ver INT NOT NULL, KEY (ver));
    INSERT INTO del_src SELECT seq, CONCAT('v', seq), seq FROM seq_1_to_1000"
create_test_db "$DB"
db -q >/dev/null <<'SQL'
SELECT etl_stream.add_table('d_' || p, server => 'src', source_table => 'del_src',
                            watermark => 'ver', lookback => 100, deletes => p)
  FROM unnest(ARRAY['keep', 'delete', 'flag']) p;
SELECT etl_stream.create_target('d_' || p) FROM unnest(ARRAY['keep', 'delete', 'flag']) p;
SELECT etl_stream.sync('d_' || p) FROM unnest(ARRAY['keep', 'delete', 'flag']) p;
SQL
tap_is "$(q "SELECT string_agg(name || '=' || deletes, ' ' ORDER BY name) FROM etl_stream.tables")" \
	"d_delete=delete d_flag=flag d_keep=keep" "add_table records each policy"
tap_is "$(q "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'd_flag'::regclass AND attname = '_deleted_at'")/$(q "SELECT count(*) FROM pg_attribute WHERE attrelid = 'd_delete'::regclass AND attname = '_deleted_at'")" \
	"timestamp with time zone/0" "create_target adds _deleted_at (timestamptz) for flag only"

# 950 is deleted inside the window, 10 outside it; 960 moves forward and
# 970 back out of the window: both are still on MySQL
my "DELETE FROM del_src WHERE id IN (950, 10);
    UPDATE del_src SET ver = 1001, v = 'moved on' WHERE id = 960;
    UPDATE del_src SET ver = 5, v = 'moved back' WHERE id = 970"
db -q >/dev/null -c "SELECT etl_stream.sync('d_' || p) FROM unnest(ARRAY['keep', 'delete', 'flag']) p"
last() { q "SELECT rows_pulled, rows_inserted, rows_updated, rows_deleted, rows_flagged, status FROM etl_stream.runs WHERE table_name = '$1' ORDER BY run_id DESC LIMIT 1"; }
tap_is "$(last d_keep)" "99 0 1 0 0 success" "keep: the run deletes nothing"
tap_is "$(q "SELECT count(*), count(*) FILTER (WHERE id IN (950, 10)) FROM d_keep")" "1000 2" \
	"keep: the rows deleted on MySQL stay in the target"
tap_is "$(last d_delete)" "99 0 1 1 0 success" "delete: the run counts the one row deleted inside the window"
tap_is "$(q "SELECT count(*), string_agg(id::text, ',' ORDER BY id) FILTER (WHERE id IN (950, 10, 960, 970)) FROM d_delete")" \
	"999 10,960,970" "delete: 950 is gone; 10 (outside the window) and the moved rows 960 and 970 stay"
tap_is "$(q "SELECT v || '/' || ver FROM d_delete WHERE id = 970")" "v970/970" \
	"a row whose watermark went back is not pulled (the target keeps its old version), and not taken for deleted"
tap_is "$(last d_flag)" "99 0 1 0 1 success" "flag: the run counts one row flagged"
tap_is "$(q "SELECT count(*), count(_deleted_at), string_agg(id::text, ',') FILTER (WHERE _deleted_at IS NOT NULL) FROM d_flag")" \
	"1000 1 950" "flag: 950 stays, with _deleted_at set; the other rows are live"
tap_is "$(q "SELECT _deleted_at <= r.started_at AND _deleted_at > p.finished_at FROM d_flag,
               (SELECT * FROM etl_stream.runs WHERE table_name = 'd_flag' ORDER BY run_id DESC LIMIT 1) r,
               (SELECT * FROM etl_stream.runs WHERE table_name = 'd_flag' ORDER BY run_id DESC OFFSET 1 LIMIT 1) p
              WHERE id = 950")" \
	t "flag: _deleted_at is the start of the transaction of the run that found the row gone"
db -q >/dev/null -c "SELECT etl_stream.sync('d_flag')"
tap_is "$(last d_flag)" "98 0 0 0 0 success" "flag: a flagged row is not counted again by the next sync"

# 950 comes back with a newer watermark
my "INSERT INTO del_src VALUES (950, 'v950', 1002)"
db -q >/dev/null -c "SELECT etl_stream.sync('d_flag')"
tap_is "$(last d_flag)" "99 0 1 0 0 success" "flag: the row that came back (newer watermark) is counted as updated"
tap_is "$(q "SELECT count(_deleted_at) FROM d_flag")" 0 "flag: its _deleted_at is cleared"
my "DELETE FROM del_src WHERE id = 950"
db -q >/dev/null -c "SELECT etl_stream.sync('d_flag')"
tap_is "$(q "SELECT count(_deleted_at) FROM d_flag WHERE id = 950")" 1 "flag: deleted again, flagged again"
# back as it was when it was flagged: same values, same watermark
my "INSERT INTO del_src VALUES (950, 'v950', 1002)"
db -q >/dev/null -c "SELECT etl_stream.sync('d_flag')"
tap_is "$(q "SELECT count(_deleted_at) FROM d_flag")" 0 \
	"flag: a row back with the same values and watermark is live again too"

# --- sweep_deletes finds what the window cannot ----------------------------
job=$(q "SELECT etl_stream.sweep_deletes('d_delete', chunk => 300, workers => 2)")
tap_is "$(q "SELECT state, tasks_total, tasks_done, rows_merged FROM etl_stream.job_wait($job, '60 s')")" \
	"done 4 4 1" "sweep_deletes: a job of 4 ranges of 300 keys, which removed one row"
tap_is "$(q "SELECT count(*), count(*) FILTER (WHERE id = 10) FROM d_delete")" "998 0" \
	"sweep_deletes: the row deleted outside the window is gone (and 950, back on MySQL, waits for a sync)"
tap_is "$(q "SELECT string_agg(coalesce(range_from, '-') || '..' || coalesce(range_to, '-'), ' ' ORDER BY position) FROM etl_stream.tasks WHERE job_id = $job")" \
	"-..301 301..601 601..901 901..-" "the ranges are cut at every 300th key of the target, the ends open"
tap_is "$(q "SELECT count(*), sum(rows_deleted), min(strategy), count(*) FILTER (WHERE status = 'success') FROM etl_stream.runs WHERE job_id = $job")" \
	"4 1 sweep_deletes 4" "each range is recorded as a run of its own"
tap_is "$(q "SELECT last_success < (SELECT min(started_at) FROM etl_stream.runs WHERE job_id = $job) FROM etl_stream.status WHERE name = 'd_delete'")" \
	t "status: the last success is still the last sync, not a range of the sweep"
job=$(q "SELECT etl_stream.sweep_deletes('d_flag', workers => 1)")
tap_is "$(q "SELECT state, tasks_total FROM etl_stream.job_wait($job, '60 s')")/$(q "SELECT string_agg(id::text, ',') FROM d_flag WHERE _deleted_at IS NOT NULL")" \
	"done 1/10" "sweep_deletes on a flag table flags the row (one range: the table is smaller than a chunk)"

# a composite key, with text: ranges written out column by column on MySQL
my "CREATE TABLE del_pair (a INT, b VARCHAR(10), ver INT NOT NULL, PRIMARY KEY (a, b), KEY (ver));
    INSERT INTO del_pair SELECT seq DIV 5, CONCAT(CHAR(65 + seq % 5), IF(seq % 2, 'x', 'Y')), seq FROM seq_1_to_60"
db -q >/dev/null -c "SELECT etl_stream.add_table('d_pair', server => 'src', source_table => 'del_pair', watermark => 'ver', deletes => 'delete')" \
	-c "SELECT etl_stream.create_target('d_pair')" -c "SELECT etl_stream.sync('d_pair')"
my "DELETE FROM del_pair WHERE ver IN (3, 17, 31, 44, 59)"
job=$(q "SELECT etl_stream.sweep_deletes('d_pair', chunk => 7, workers => 3)")
tap_is "$(q "SELECT state, tasks_total, rows_merged FROM etl_stream.job_wait($job, '60 s')")" "done 9 5" \
	"sweep_deletes on a two-column key with text: 9 ranges, 5 rows removed"
tap_is "$(q "SELECT string_agg(a || b, ',' ORDER BY a, b) FROM d_pair")" \
	"$(my "SELECT GROUP_CONCAT(CONCAT(a, b) ORDER BY a, BINARY b) FROM del_pair")" "the target has exactly the source's keys"

# resumable: a job whose ranges after the first failed (as if its worker
# had been killed) runs only those again on job_resume
my "DELETE FROM del_pair WHERE ver = 52"
job=$(db -qAt <<'SQL'
BEGIN;
SELECT etl_stream.sweep_deletes('d_pair', chunk => 7, workers => 2);
UPDATE etl_stream.tasks SET state = 'failed', message = 'as if killed'
 WHERE job_id = (SELECT max(job_id) FROM etl_stream.jobs) AND position > 1;
COMMIT;
SQL
)
tap_is "$(q "SELECT state, tasks_done FROM etl_stream.job_wait($job, '60 s')")/$(q "SELECT count(*) FROM d_pair")" \
	"failed 1/55" "a sweep with failed ranges ends failed, the row in them still there"
q "SELECT etl_stream.job_resume($job)" >/dev/null
tap_is "$(q "SELECT state, tasks_done, rows_merged FROM etl_stream.job_wait($job, '60 s')")/$(q "SELECT count(*) FROM d_pair")" \
	"done 8 1/54" "job_resume runs the failed ranges (8 of 7 keys for 55 rows) and removes the row"
tap_is "$(q "SELECT count(*), count(DISTINCT task_id) FROM etl_stream.runs WHERE job_id = $job")" "8 8" \
	"each range ran once: the one done before is not run again"

# --- what is refused ------------------------------------------------------
err() { db -Atc "$1" 2>&1 >/dev/null | sed -n 's/^ERROR:  //p' | head -n 1; }
tap_is "$(err "SELECT etl_stream.add_table('x', server => 'src', source_table => 'del_src', strategy => 'append', deletes => 'delete')")" \
	"deletes => 'delete' needs strategy merge, and etl_stream table \"x\" has strategy append" "append refuses deletes"
tap_is "$(err "SELECT etl_stream.alter_table('d_delete', strategy => 'delete_insert')")" \
	"deletes => 'delete' needs strategy merge, and etl_stream table \"d_delete\" has strategy delete_insert" \
	"a table that follows deletes cannot become delete_insert"
tap_is "$(err "SELECT etl_stream.alter_table('d_keep', deletes => 'sometimes')")" 'invalid deletes "sometimes"' \
	"an unknown policy is refused"
tap_is "$(err "SELECT etl_stream.sweep_deletes('d_keep')")" 'etl_stream table "d_keep" keeps rows deleted on MySQL' \
	"sweep_deletes refuses a keep table"
db -q >/dev/null -c "SELECT etl_stream.alter_table('d_keep', deletes => 'flag')"
tap_is "$(q "SELECT count(*) FROM pg_attribute WHERE attrelid = 'd_keep'::regclass AND attname = '_deleted_at'")" 1 \
	"alter_table(deletes => 'flag') adds _deleted_at to the target"

# --- 2,000,000 rows, a few hundred deleted, swept --------------------------
t0=$SECONDS
my "CREATE TABLE del_big (id INT PRIMARY KEY, ver INT NOT NULL, note CHAR(20) NOT NULL DEFAULT 'not a key column');
    INSERT INTO del_big (id, ver) SELECT seq, seq FROM seq_1_to_$BIG"
db -q >/dev/null -c "SELECT etl_stream.add_table('d_big', server => 'src', source_table => 'del_big', watermark => 'ver', deletes => 'delete')" \
	-c "SELECT etl_stream.create_target('d_big')" -c "SELECT etl_stream.sync('d_big')"
my "DELETE FROM del_big WHERE id % 6661 = 17"
gone=$(( (BIG - 17) / 6661 + 1 ))
echo "# $BIG rows on both sides, $gone deleted on MySQL, in $((SECONDS - t0)) s"
my "TRUNCATE mysql.general_log; SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 1"
t0=$SECONDS
job=$(q "SELECT etl_stream.sweep_deletes('d_big', chunk => 50000, workers => 3)")
: >"$ETL_WORK/del_processlist"
: >"$ETL_WORK/del_progress"
while [ "$(q "SELECT state FROM etl_stream.jobs WHERE job_id = $job")" != done ] && [ $((SECONDS - t0)) -lt 120 ]; do
	my "SELECT TIME_MS, REPLACE(INFO, '\n', ' ') FROM information_schema.processlist
	     WHERE USER = 'etl' AND COMMAND = 'Query' AND INFO IS NOT NULL AND INFO NOT LIKE 'SET %'" |
		tr '\t' ' ' >>"$ETL_WORK/del_processlist"
	q "SELECT phase, slice FROM etl_stream.progress WHERE job_id = $job" >>"$ETL_WORK/del_progress"
	sleep 0.2
done
my "SET GLOBAL general_log = 0"
echo "# sweep_deletes over $BIG rows: $((SECONDS - t0)) s"
tap_is "$(q "SELECT state, tasks_total, rows_merged FROM etl_stream.jobs WHERE job_id = $job")" "done 40 $gone" \
	"sweep_deletes over $BIG rows in 40 ranges removed the $gone rows deleted on MySQL"
tap_is "$(q "SELECT count(*), sum(id) FROM d_big")" "$(my "SELECT COUNT(*), SUM(id) FROM del_big" | tr '\t' ' ')" \
	"the target matches the source afterwards (count and sum of keys)"
tap_is "$(q "SELECT count(*) FROM d_big WHERE id % 6661 = 17")" 0 "none of the deleted rows is left"
echo "# etl_stream.progress while it ran: $(sort -u "$ETL_WORK/del_progress" | head -n 3 | tr '\n' ';')"
tap_ok "etl_stream.progress showed its ranges as they ran (phase pull, the keys as the slice)" \
	grep -qE '^pull keys \[[0-9]+, [0-9]+\)$' "$ETL_WORK/del_progress"

# every etl query: keys only, a range with literal bounds, or keys by value
KEYS_ONLY='^SELECT `id` FROM `del_big` WHERE (`id` >= [0-9]+ AND `id` <=? [0-9]+ ORDER BY `id`|`id` IN \([0-9]+(, [0-9]+)*\))$'
seen=$(sed 's/^[0-9.]* //' "$ETL_WORK/del_processlist" | sort -u)
echo "# processlist samples of the sweep's queries (time in ms, query):"
sed 's/^/#   /' "$ETL_WORK/del_processlist" | cut -c1-160
echo "# longest sampled: $(sort -n "$ETL_WORK/del_processlist" | tail -n 1 | cut -d' ' -f1) ms"
tap_ok "the processlist showed the sweep's queries while it ran" test -n "$seen"
tap_is "$(grep -cvE "$KEYS_ONLY" <<<"$seen" || true)" 0 \
	"every query sampled selects only the key, by literal bounds or by value"
logged=$(my "SELECT REPLACE(argument, '\n', ' ') FROM mysql.general_log WHERE command_type = 'Query' AND argument LIKE '%del_big%'")
echo "# the general log has $(wc -l <<<"$logged") queries on del_big; those that are not a range:"
grep -vE '^SELECT `id` FROM `del_big` WHERE `id` >= [0-9]+ AND' <<<"$logged" | cut -c1-160 | sed 's/^/#   /' || true
tap_is "$(grep -cE '^SELECT `id` FROM `del_big` WHERE `id` >= [0-9]+ AND `id` <=? [0-9]+ ORDER BY `id`$' <<<"$logged")" 40 \
	"the general log has one bounded range query per chunk, 40 in all"
tap_is "$(grep -cvE "$KEYS_ONLY" <<<"$logged" || true)" 0 \
	"and every query of the sweep in the general log is keys only, bounded"
