#!/usr/bin/env bash
# Downstream transforms: a daily aggregate of a partitioned fact table,
# rebuilt after each sync for the days that sync touched only.  Over three
# rounds of updates, inserts and late rows on the MariaDB side the aggregate
# stays equal to a full recompute on the source; each run's record shows the
# literals it was given, the rows it read and wrote, and its EXPLAIN reads
# only the touched days' partitions.  It runs in sync_all (one transaction
# and in workers), sync_all_proc and a schedule's run_schedule, and by hand.
# A failed sync skips the transform, a failing transform is recorded with
# its error and rolled back (and fails its schedule), the placeholders are
# checked when the transform is added, a unix-seconds cutoff's date follows
# the session's TimeZone, and the statements run as the transform's owner.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DB=t_transforms
cleanup() {
	local -
	set +e
	pg_psql -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	pg_psql -qc "DROP ROLE IF EXISTS tf_owner" >/dev/null 2>&1
	mysql_root etl_test -e "DROP TABLE IF EXISTS tf_events, tf_events_gone, tf_unix" >/dev/null 2>&1
}
trap cleanup EXIT
cleanup
db() { pg_psql -d "$DB" "$@"; }
my() { mysql_root -N etl_test "$@"; }

# 10 days of events, 500 a day, 5 companies; each row last changed an hour
# into its own day
my -e "CREATE TABLE tf_events (event_id BIGINT PRIMARY KEY, company_id INT NOT NULL,
         event_date DATE NOT NULL, events INT NOT NULL, updated_at DATETIME(6) NOT NULL, KEY (updated_at));
       INSERT INTO tf_events SELECT seq, seq % 5 + 1, DATE '2026-11-01' + INTERVAL (seq % 10) DAY, seq % 7 + 1,
              TIMESTAMP '2026-11-01 01:00:00' + INTERVAL (seq % 10) DAY FROM seq_1_to_5000"
create_test_db "$DB"
# the target and the aggregate, partitioned by day, made by the user
db -q >/dev/null <<'SQL'
CREATE TABLE tf_events (event_id bigint, company_id integer NOT NULL, event_date date NOT NULL,
                        events integer NOT NULL, updated_at timestamp NOT NULL,
                        PRIMARY KEY (event_id, event_date)) PARTITION BY RANGE (event_date);
CREATE INDEX ON tf_events (updated_at);
CREATE TABLE tf_agg_daily (company_id integer, date date, events bigint NOT NULL,
                           PRIMARY KEY (company_id, date)) PARTITION BY RANGE (date);
SELECT format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
              t || '_' || to_char(d, 'YYYYMMDD'), t, d::date, (d + interval '1 day')::date)
  FROM generate_series(timestamp '2026-11-01', '2026-11-14', '1 day') d,
       unnest(ARRAY['tf_events', 'tf_agg_daily']) t \gexec
CREATE TABLE tf_events_default PARTITION OF tf_events DEFAULT;
CREATE TABLE tf_agg_daily_default PARTITION OF tf_agg_daily DEFAULT;
SELECT etl_stream.add_table('tf_events', server => 'src', source_table => 'tf_events',
                            watermark => 'updated_at', key_columns => ARRAY['event_id', 'event_date']);
SQL

# --- placeholders are checked when the transform is added -------------------
refused() {
	# refused SQL PATTERN DESCRIPTION
	local err
	err=$(db -Atc "$1" 2>&1 || true)
	echo "$err" | sed 's/^/# /'
	tap_ok "$3" grep -q "$2" <<<"$err"
}
refused "SELECT etl_stream.add_transform('bad', '{tf_events}', 'DELETE FROM tf_agg_daily WHERE date >= :cutof_date')" \
	'unknown placeholder ":cutof_date"' "an unknown placeholder is refused at add_transform"
refused "SELECT etl_stream.add_transform('bad', '{tf_events}', 'DELETE FROM tf_agg_daily WHERE date >= :cutoff_date.other')" \
	'unknown placeholder ":cutoff_date.other"' "so is a placeholder of a table the transform does not run after"
refused "SELECT etl_stream.add_transform('bad', '{tf_events}', 'DELETE FROM tf_agg_daily WHERE date = ANY (:touched_dates)')" \
	'placeholders known here are :cutoff, :cutoff.tf_events, :new_watermark' "and :touched_dates without dates_from; the error lists the known ones"
refused "SELECT etl_stream.add_transform('bad', '{nope}', 'SELECT 1')" \
	'etl_stream table "nope" does not exist' "a table that is not registered is refused"
refused "SELECT etl_stream.add_transform('bad', '{tf_events}', 'DELETE FROM tf_agg_daily WHERE date >= :cutoff_date; INSERT INTO')" \
	'syntax error at end of input' "a syntax error is found at add_transform"
refused "SELECT etl_stream.add_transform('bad', '{tf_events}', 'DELETE FROM tf_agg_daily; COMMIT')" \
	'a transform cannot control transactions' "so is a COMMIT"
refused "SELECT etl_stream.add_transform('tf_events', '{tf_events}', 'SELECT 1')" \
	'a transform needs a name of its own' "a transform cannot take a table's name"
refused "SELECT etl_stream.add_transform('bad', '{tf_events}', 'SELECT 1', dates_from => 'events_x')" \
	'has a column "events_x"' "dates_from must be a column of a table it runs after"
tap_is "$(db -Atc "SELECT etl_stream._transform_bind(\$q\$SELECT ':cutoff', x::date, \"a:cutoff\" -- :cutoff
, :cutoff /* :cutoff */, :cutoff.tf_events, a[1:2], \$\$:cutoff\$\$\$q\$, '{cutoff,cutoff.tf_events}', ARRAY['X', 'Y'])")" \
	"SELECT ':cutoff', x::date, \"a:cutoff\" -- :cutoff
, X /* :cutoff */, Y, a[1:2], \$\$:cutoff\$\$" \
	"only placeholders outside strings, names, comments and casts are replaced"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.transforms")" 0 "nothing refused was added"

db -q >/dev/null <<'SQL'
SELECT etl_stream.add_transform('tf_agg', after => '{tf_events}', dates_from => 'event_date', sql => $$
    DELETE FROM tf_agg_daily WHERE date = ANY (:touched_dates);
    INSERT INTO tf_agg_daily (company_id, date, events)
    SELECT company_id, event_date, sum(events) FROM tf_events
     WHERE event_date = ANY (:touched_dates)
     GROUP BY 1, 2
$$);
-- the same aggregate from the earliest touched day on, as a range
CREATE TABLE tf_agg_from (company_id integer, date date, events bigint NOT NULL, PRIMARY KEY (company_id, date));
SELECT etl_stream.add_transform('tf_agg_from', after => '{tf_events}', dates_from => 'event_date', sql => $$
    DELETE FROM tf_agg_from WHERE date >= :touched_from;
    INSERT INTO tf_agg_from SELECT company_id, event_date, sum(events) FROM tf_events
     WHERE event_date >= :touched_from GROUP BY 1, 2
$$);
SQL

# The aggregate, by the source's own engine, and in PostgreSQL
source_agg() { my -e "SELECT company_id, event_date, SUM(events) FROM tf_events GROUP BY 1, 2 ORDER BY 1, 2" | tr '\t' '|'; }
target_agg() { db -Atc "SELECT company_id, date, events FROM ${1:-tf_agg_daily} ORDER BY 1, 2"; }
last_transform() { db -AtF' ' -c "SELECT $1 FROM etl_stream.runs WHERE kind = 'transform' AND table_name = 'tf_agg' ORDER BY run_id DESC LIMIT 1"; }

# --- the first sync: everything, and so is the transform --------------------
db -q -c "CALL etl_stream.sync_all_proc()"
tap_is "$(db -Atc "SELECT count(*) FROM tf_events")" 5000 "a sync into a partitioned target loads every row (through staging)"
tap_is "$(last_transform "status, strategy, bindings->>'cutoff', bindings->>'cutoff_date', cutoff IS NULL")" \
	"success transform '-infinity'::timestamp '-infinity'::date t" \
	"after the first sync (no cutoff) the transform ran with literals meaning everything"
tap_is "$(target_agg)" "$(source_agg)" "the aggregate equals the source's full recompute after the first sync"

# --- three rounds of updates, inserts and late rows --------------------------
round() {
	# round N MYSQL_CHANGES
	local n="$1" changes="$2" cutoff touched expected fact_rows agg_rows wm_rows read
	db -qc "DROP TABLE IF EXISTS agg_before; CREATE TABLE agg_before AS TABLE tf_agg_daily"
	my -e "$changes"
	db -q -c "CALL etl_stream.sync_all_proc()"
	cutoff=$(db -Atc "SELECT cutoff FROM etl_stream.runs WHERE table_name = 'tf_events' ORDER BY run_id DESC LIMIT 1")
	# the days of the rows this sync pulled, as the source has them
	expected=$(my -e "SELECT CONCAT('{', GROUP_CONCAT(DISTINCT event_date ORDER BY event_date), '}')
	                    FROM tf_events WHERE updated_at >= '$cutoff'")
	touched=$(last_transform "bindings->>'touched_dates'")
	echo "# round $n: cutoff $cutoff, days $expected, binding $touched"
	tap_is "$touched" "'$expected'::date[]" "round $n: :touched_dates are the days of the rows the sync pulled"
	tap_is "$(last_transform "status, bindings->>'cutoff', bindings->>'cutoff_date', cutoff")" \
		"success $(db -Atc "SELECT quote_literal('$cutoff'::timestamp)")::timestamp '${cutoff%% *}'::date $cutoff" \
		"round $n: the run records the sync's cutoff and its literals"
	tap_is "$(target_agg)" "$(source_agg)" "round $n: the aggregate equals the source's full recompute"
	tap_is "$(db -Atc "SELECT bindings->>'touched_from' FROM etl_stream.runs WHERE table_name = 'tf_agg_from' ORDER BY run_id DESC LIMIT 1") $(target_agg tf_agg_from)" \
		"'$(sed 's/^{\([^,}]*\).*/\1/' <<<"$expected")'::date $(source_agg)" \
		"round $n: so does the one rebuilt from :touched_from, the earliest of those days"
	tap_is "$(last_transform "rows_deleted || ' ' || rows_inserted")" \
		"$(db -Atc "SELECT (SELECT count(*) FROM agg_before WHERE date = ANY ('$expected'))
		            || ' ' || (SELECT count(*) FROM tf_agg_daily WHERE date = ANY ('$expected'))")" \
		"round $n: it deleted and inserted the aggregate rows of those days only"
	# rows read: the touched days' partitions of the facts (by the INSERT's
	# SELECT) and the aggregate's rows of those days (by the DELETE); the
	# days themselves come from the sync's batch, still in staging
	fact_rows=$(db -Atc "SELECT count(*) FROM tf_events WHERE event_date = ANY ('$expected')")
	agg_rows=$(db -Atc "SELECT count(*) FROM agg_before WHERE date = ANY ('$expected')")
	all_rows=$(db -Atc "SELECT count(*) FROM tf_events")
	read=$(last_transform rows_pulled)
	echo "# round $n: read $read; facts of those days $fact_rows, aggregate rows $agg_rows, facts in all $all_rows"
	tap_is "$read" $((fact_rows + agg_rows)) "round $n: it read those days' facts and aggregate rows, not the table ($all_rows rows)"
}
round 1 "UPDATE tf_events SET events = events + 10, updated_at = '2026-11-11 02:00' WHERE event_date = '2026-11-10' AND event_id % 50 = 0;
         INSERT INTO tf_events SELECT 5000 + seq, seq % 5 + 1, '2026-11-11', 3, '2026-11-11 02:00' FROM seq_1_to_300;
         INSERT INTO tf_events SELECT 5300 + seq, seq % 5 + 1, '2026-11-03', 100, '2026-11-11 02:00' FROM seq_1_to_20"
round 2 "UPDATE tf_events SET events = events * 2, updated_at = '2026-11-12 03:00' WHERE event_date = '2026-11-11' AND event_id % 30 = 0;
         UPDATE tf_events SET events = 1, updated_at = '2026-11-12 03:00:00.5' WHERE event_date = '2026-11-05' AND event_id % 100 = 0;
         INSERT INTO tf_events SELECT 5400 + seq, seq % 5 + 1, '2026-11-12', 2, '2026-11-12 03:00' FROM seq_1_to_200"
round 3 "INSERT INTO tf_events SELECT 5700 + seq, seq % 3 + 1, DATE '2026-11-01' + INTERVAL (seq % 2) DAY, 50, '2026-11-13 04:00' FROM seq_1_to_20;
         UPDATE tf_events SET events = events + 1, updated_at = '2026-11-13 04:00' WHERE event_date = '2026-11-12' AND event_id % 7 = 0;
         INSERT INTO tf_events SELECT 5800 + seq, seq % 5 + 1, '2026-11-13', 4, '2026-11-13 04:00' FROM seq_1_to_100"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.runs WHERE kind = 'transform' AND status = 'success'")" 8 \
	"one successful run of each transform per sync"

# --- EXPLAIN: the literals in place, the other days' partitions pruned -------
explain=$(db -Atc "SELECT * FROM etl_stream.explain('tf_agg', costs => false)")
echo "$explain" | sed 's/^/# /'
days=$(db -Atc "SELECT (bindings->>'touched_dates') FROM etl_stream.runs WHERE table_name = 'tf_agg' ORDER BY run_id DESC LIMIT 1")
want=$(db -Atc "SELECT string_agg(p, ' ' ORDER BY p) FROM (SELECT DISTINCT t || '_' || to_char(d, 'YYYYMMDD') AS p
                  FROM unnest($days) d, unnest(ARRAY['tf_events', 'tf_agg_daily']) t) x")
tap_ok "explain shows the transform's statements with the literals in place" \
	grep -qF "statement 1: DELETE FROM tf_agg_daily WHERE date = ANY ($days)" <<<"$explain"
tap_is "$(grep -oE 'on tf_(events|agg_daily)_[0-9]+' <<<"$explain" | sed 's/^on //' | sort -u | tr '\n' ' ' | sed 's/ $//')" \
	"$want" "its plans read only the partitions of the touched days ($days)"
tap_ok "explain_transform says the same" test "$explain" = "$(db -Atc "SELECT * FROM etl_stream.explain_transform('tf_agg', costs => false)")"

# --- by hand: the last successful sync's literals -----------------------------
tap_is "$(db -AtF' ' -c "SELECT status, bindings = (SELECT bindings FROM etl_stream.runs WHERE table_name = 'tf_agg' AND run_id < r.run_id ORDER BY run_id DESC LIMIT 1)
                        FROM etl_stream.run_transform('tf_agg') r")" "success t" \
	"run_transform runs it by hand with the literals of the last successful sync"

# --- a failed sync skips it ----------------------------------------------------
my -e "RENAME TABLE tf_events TO tf_events_gone"
runs=$(db -AtF' ' -c "SELECT kind, table_name, status, error FROM etl_stream.sync_all()" 2>/dev/null)
echo "$runs" | sed 's/^/# /'
tap_ok "sync_all: the table's sync failed" grep -q '^sync tf_events failed ' <<<"$runs"
tap_ok "and the transforms after it are recorded as skipped, saying why" \
	grep -q '^transform tf_agg skipped etl_stream table "tf_events", which it runs after, did not succeed (failed)$' <<<"$runs"
my -e "RENAME TABLE tf_events_gone TO tf_events"

# --- in workers: sync_all(parallel => 2) runs it after the job ---------------
my -e "INSERT INTO tf_events VALUES (9001, 1, '2026-11-02', 1000, '2026-11-14 00:00')"
tap_is "$(db -AtF' ' -c "SELECT kind, table_name, status FROM etl_stream.sync_all(parallel => 2) ORDER BY kind, table_name")" \
	"sync tf_events success
transform tf_agg success
transform tf_agg_from success" "sync_all(parallel => 2) runs the transform once the job's syncs committed"
tap_is "$(target_agg)" "$(source_agg)" "and the late row's day is right in the aggregate"

# --- in a schedule: after its tables, each committed ---------------------------
# (the row schedule() would make; pg_cron is not needed to CALL it)
db -qc "INSERT INTO etl_stream.schedule_defs (name, cron, tables) VALUES ('tf', '0 * * * *', '{tf_events}')"
my -e "INSERT INTO tf_events VALUES (9002, 2, '2026-11-04', 7, '2026-11-14 01:00')"
db -qc "CALL etl_stream.run_schedule('tf')"
tap_is "$(db -Atc "SELECT string_agg(kind || ' ' || table_name || ' ' || status, ', ' ORDER BY run_id)
                   FROM etl_stream.runs WHERE run_id > (SELECT max(run_id) FROM etl_stream.runs WHERE kind = 'sync') - 1")" \
	"sync tf_events success, transform tf_agg success, transform tf_agg_from success" \
	"run_schedule runs the transforms after the schedule's tables"
tap_is "$(target_agg)" "$(source_agg)" "and the aggregate follows"

# --- a failing transform is recorded, and rolled back --------------------------
before=$(target_agg)
db -q -c "SELECT etl_stream.alter_transform('tf_agg', sql => 'DELETE FROM tf_agg_daily WHERE date = ANY (:touched_dates); SELECT 1 / 0')" >/dev/null
out=$(db -c "CALL etl_stream.run_schedule('tf')" 2>&1 || true)
echo "$out" | sed 's/^/# /'
tap_ok "a schedule whose transform failed fails, naming it" \
	grep -q 'ERROR:  etl_stream schedule "tf": 1 transform failed' <<<"$out"
tap_is "$(db -Atc "SELECT status || ' ' || sqlstate FROM etl_stream.runs WHERE table_name = 'tf_agg' ORDER BY run_id DESC LIMIT 1")" \
	"failed 22012" "after its failed run was recorded and committed"
out=$(db -AtF' ' -c "SELECT status, sqlstate, message, failed_phase FROM etl_stream.run_transform('tf_agg')" 2>&1)
echo "$out" | sed 's/^/# /'
tap_ok "a failing transform is recorded as failed with its error" grep -q '^failed 22012 division by zero merge$' <<<"$out"
tap_ok "with a WARNING" grep -q 'WARNING:  etl_stream transform "tf_agg" failed: division by zero' <<<"$out"
tap_is "$(target_agg)" "$before" "what its statements did before the error is rolled back"
db -q -c "SELECT etl_stream.alter_transform('tf_agg', enabled => false)" >/dev/null
tap_is "$(db -AtF' ' -c "SELECT table_name, status FROM etl_stream.sync_all() WHERE kind = 'transform'")" "tf_agg_from success" \
	"a disabled transform does not run; the other one does, in sync_all's one transaction"
tap_is "$(target_agg tf_agg_from)" "$(source_agg)" "which is right too"

# --- a unix-seconds watermark: :cutoff a number, :cutoff_date in the session's TimeZone
my -e "CREATE TABLE tf_unix (id INT PRIMARY KEY, update_time INT NOT NULL);
       INSERT INTO tf_unix VALUES (1, 1762300800), (2, 1762300800)"   # 2025-11-05 00:00 UTC
db -q >/dev/null <<'SQL'
SELECT etl_stream.add_table('tf_unix', server => 'src', source_table => 'tf_unix', watermark => 'update_time');
SELECT etl_stream.create_target('tf_unix');
SELECT etl_stream.sync('tf_unix');
SELECT etl_stream.sync('tf_unix');
SELECT etl_stream.add_transform('tf_unix_t', '{tf_unix}', 'SELECT :cutoff, :cutoff_date');
SQL
tap_is "$(db -Atq -c "SET TimeZone = 'UTC'" -c "SELECT bindings->>'cutoff' || ' ' || (bindings->>'cutoff_date') FROM etl_stream.run_transform('tf_unix_t')")" \
	"1762300800 '2025-11-05'::date" "a unix-seconds cutoff is a number, and its date in UTC is 2025-11-05"
tap_is "$(db -Atq -c "SET TimeZone = 'America/New_York'" -c "SELECT bindings->>'cutoff_date' FROM etl_stream.run_transform('tf_unix_t')")" \
	"'2025-11-04'::date" "and in New York, 2025-11-04: the session's TimeZone decides"
db -q -c "SELECT etl_stream.drop_transform('tf_unix_t')" >/dev/null

# --- after two tables: :name.table, and both must sync in the call ------------
db -q -c "SELECT etl_stream.add_transform('tf_two', '{tf_events,tf_unix}', 'SELECT :cutoff.tf_unix, :cutoff_date.tf_events, :cutoff')" >/dev/null
db -q -c "CALL etl_stream.run_schedule('tf')"
tap_is "$(db -Atc "SELECT status || ': ' || error FROM etl_stream.runs WHERE table_name = 'tf_two' ORDER BY run_id DESC LIMIT 1")" \
	'skipped: etl_stream table "tf_unix", which it runs after, was not synced in this call' \
	"a transform after two tables is skipped by a schedule that syncs one of them"
db -q -c "CALL etl_stream.sync_all_proc()"
tap_is "$(db -AtF' ' -c "SELECT status, bindings->>'cutoff.tf_unix', bindings->>'cutoff' = bindings->>'cutoff.tf_events'
                        FROM etl_stream.runs WHERE table_name = 'tf_two' ORDER BY run_id DESC LIMIT 1")" \
	"success 1762300800 t" "and runs after both synced: :cutoff.tf_unix is the second's, :cutoff the first's"
db -q -c "SELECT etl_stream.drop_transform('tf_two')" >/dev/null

# --- it runs as its owner ---------------------------------------------------
db -q >/dev/null <<'SQL'
CREATE ROLE tf_owner;
GRANT etl_stream_user TO tf_owner;
CREATE TABLE tf_who (who name, at_cutoff text);
GRANT INSERT ON tf_who TO tf_owner;
-- a role adds transforms after its own tables only: tf_events becomes its
UPDATE etl_stream.tables SET owner = 'tf_owner' WHERE name = 'tf_events';
SET ROLE tf_owner;
SELECT etl_stream.add_transform('tf_who', '{tf_events}', 'INSERT INTO tf_who SELECT current_user, :cutoff');
RESET ROLE;
SQL
db -q -c "CALL etl_stream.sync_all_proc()"
tap_is "$(db -AtF' ' -c "SELECT who, at_cutoff FROM tf_who")" "tf_owner $(db -Atc "SELECT cutoff::timestamp FROM etl_stream.runs WHERE table_name = 'tf_events' ORDER BY run_id DESC LIMIT 1")" \
	"a transform's statements run as its owner, whoever runs the sync"
tap_is "$(db -Atc "SELECT owner FROM etl_stream.runs WHERE kind = 'transform' AND table_name = 'tf_who'")" tf_owner \
	"and its run belongs to its owner"
tap_is "$(db -Atq -c "SET ROLE tf_owner" -c "SELECT string_agg(name, ',') FROM etl_stream.transforms")" "tf_who" \
	"and its owner sees only its own transforms"
db -q -c "SELECT etl_stream.drop_transform('tf_who')" >/dev/null
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.transforms WHERE name = 'tf_who'")" 0 "drop_transform drops it"
