#!/usr/bin/env bash
# etl_stream.progress, from the slots in shared memory: rows rising during
# a long pull, phase 'merge' during a long merge, runs shown only to roles
# with the privileges of the run's role, and no slot left behind after 100
# syncs (some failing, some skipped) or a backend terminated mid-pull.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DB=t_progress
SRC=prog_src
N=600000
ROLES="t_prog_plain t_prog_stats t_prog_member"
cleanup() {
	local -
	set +e
	[ -n "${BG_PID:-}" ] && kill "$BG_PID" 2>/dev/null
	pg_psql -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	for r in $ROLES; do pg_psql -qc "DROP ROLE IF EXISTS $r" >/dev/null 2>&1; done
	mysql_root etl_test -e "DROP TABLE IF EXISTS $SRC, prog_small" >/dev/null 2>&1
}
trap cleanup EXIT
db() { pg_psql -d "$DB" "$@"; }

t0=$SECONDS
mysql_root etl_test <<SQL
DROP TABLE IF EXISTS $SRC, prog_small;
CREATE TABLE $SRC (id INT NOT NULL PRIMARY KEY, note VARCHAR(120) NOT NULL,
                   update_time INT UNSIGNED NOT NULL, KEY (update_time));
INSERT INTO $SRC SELECT seq, CONCAT(MD5(seq), MD5(seq + 1), MD5(seq + 2)), 1700000000 + seq FROM seq_1_to_$N;
ANALYZE TABLE $SRC;
CREATE TABLE prog_small (id INT NOT NULL PRIMARY KEY, v VARCHAR(20), update_time INT NOT NULL);
INSERT INTO prog_small SELECT seq, CONCAT('v', seq), seq FROM seq_1_to_50;
SQL
echo "# sources loaded in $((SECONDS - t0)) s"

create_test_db "$DB"
for r in $ROLES; do pg_psql -qc "DROP ROLE IF EXISTS $r" -c "CREATE ROLE $r LOGIN"; done
pg_psql -qc "GRANT pg_read_all_stats TO t_prog_stats" -c "GRANT postgres TO t_prog_member"
# etl_stream is for the members of etl_stream_user (docs/operations.md)
pg_psql -qc "GRANT etl_stream_user TO t_prog_plain, t_prog_stats, t_prog_member"
db -q >/dev/null <<SQL
CREATE EXTENSION dblink;
SELECT FROM etl_stream.add_table('prog', server => 'src', source_table => '$SRC', watermark => 'update_time');
SELECT FROM etl_stream.create_target('prog');
SELECT FROM etl_stream.add_table('small', server => 'src', source_table => 'prog_small', watermark => 'update_time');
SELECT FROM etl_stream.create_target('small');
-- the same source into a target whose column is too narrow: every run fails
SELECT FROM etl_stream.add_table('small_bad', server => 'src', source_table => 'prog_small',
                                 watermark => 'update_time', target_table => 'small_bad');
CREATE TABLE small_bad (id integer PRIMARY KEY, v varchar(2), update_time integer);
-- samples of the view, taken by sample_progress below
CREATE TABLE samples (n int, at timestamptz, pid int, role name, table_name text, phase text,
                      rows_pulled bigint, rows_landed bigint, bytes_pulled bigint,
                      rows_per_s double precision, rows_estimate bigint, eta interval,
                      rows_merged bigint);
CREATE FUNCTION take_sample(k int) RETURNS bigint LANGUAGE sql AS \$\$
  WITH s AS (INSERT INTO samples
             SELECT k, clock_timestamp(), pid, role, table_name, phase, rows_pulled, rows_landed,
                    bytes_pulled, rows_per_s, rows_estimate, eta, rows_merged
               FROM etl_stream.progress RETURNING 1)
  SELECT count(*) FROM s \$\$;
SQL

# sample_progress TABLE SECONDS: sample the view every 10 ms until the run of
# TABLE has been seen and is gone again, or SECONDS pass.
sample_progress() {
	db -qAtc "
DO \$\$
DECLARE seen boolean := false; t0 timestamptz := clock_timestamp(); k int := 0; got bigint;
BEGIN
  LOOP
    k := k + 1;
    got := take_sample(k);
    seen := seen OR EXISTS (SELECT FROM samples WHERE n = k AND table_name = '$1');
    EXIT WHEN (seen AND got = 0) OR clock_timestamp() - t0 > interval '$2 s';
    PERFORM pg_sleep(0.01);
  END LOOP;
END \$\$"
}

# --- 1. a long pull: rows rise -------------------------------------------
db -Atc "SELECT pg_backend_pid(), status, rows_pulled FROM etl_stream.sync('prog')" >"$ETL_WORK/prog_first.out" 2>&1 &
BG_PID=$!
sample_progress prog 60
wait "$BG_PID" || true
BG_PID=""
first=$(cat "$ETL_WORK/prog_first.out")
echo "# first sync: $first"
sync_pid=${first%%|*}
tap_is "${first#*|}" "success|$N" "the first sync pulls all $N rows"
db -Atc "SELECT phase, count(*), count(DISTINCT rows_pulled), min(rows_pulled), max(rows_pulled),
                min(rows_estimate), max(rows_estimate), count(eta), round(max(rows_per_s))
           FROM samples WHERE table_name = 'prog' GROUP BY phase ORDER BY min(at)" | sed 's/^/# phase|samples|distinct|min|max|est min|est max|eta|rate: /'
pull_values=$(db -Atc "SELECT count(DISTINCT rows_pulled) FROM samples
                        WHERE table_name = 'prog' AND phase = 'pull' AND rows_pulled > 0")
tap_ok "during the pull the view showed the rows rising ($pull_values distinct counts)" test "$pull_values" -ge 3
tap_is "$(db -Atc "SELECT count(*) FROM (SELECT rows_pulled < lag(rows_pulled) OVER (ORDER BY n) AS fell
                                          FROM samples WHERE table_name = 'prog' AND phase = 'pull') s WHERE fell")" 0 \
	"the rows pulled never went down"
tap_is "$(db -Atc "SELECT count(*) FROM samples WHERE table_name = 'prog' AND rows_landed > rows_pulled")" 0 \
	"rows landed never exceeded rows pulled"
tap_is "$(db -Atc "SELECT string_agg(DISTINCT format('%s %s', pid, role), ',') FROM samples WHERE table_name = 'prog'")" \
	"$sync_pid postgres" "the run showed with its backend's pid and its role"
est=$(db -Atc "SELECT max(rows_estimate) FROM samples WHERE table_name = 'prog'")
tap_ok "rows_estimate is MySQL's estimate of the pull ($est for $N rows)" test "${est:-0}" -ge $((N / 2)) -a "${est:-0}" -le $((N * 2))
tap_ok "an ETA was shown during the pull" test "$(db -Atc "SELECT count(eta) FROM samples WHERE table_name = 'prog' AND phase = 'pull'")" -gt 0
tap_ok "bytes_pulled rose with the rows" test "$(db -Atc "SELECT max(bytes_pulled) / $N FROM samples WHERE table_name = 'prog'")" -ge 50

# --- 2. 100 syncs, some failing, some skipped: no slot is left -----------
db -qAt >/dev/null 2>&1 <<SQL
DO \$\$
BEGIN
  FOR i IN 1..80 LOOP
    PERFORM etl_stream.sync(CASE WHEN i % 4 = 0 THEN 'small_bad' ELSE 'small' END);
  END LOOP;
END \$\$;
SQL
# and 20 at once: most of these find the table locked and are skipped
for i in $(seq 1 20); do db -qAtc "SELECT etl_stream.sync('small')" >/dev/null 2>&1 & done
wait
echo "# runs: $(db -Atc "SELECT string_agg(table_name || ' ' || status || ' ' || n, ', ') FROM (SELECT table_name, status, count(*) n FROM etl_stream.runs WHERE table_name LIKE 'small%' GROUP BY 1, 2) s")"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.runs WHERE table_name LIKE 'small%'")" 100 "100 runs of the small tables are recorded"
tap_is "$(db -Atc "SELECT count(*) FILTER (WHERE status = 'failed') FROM etl_stream.runs WHERE table_name = 'small_bad'")" 20 \
	"the 20 runs of small_bad failed"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.progress")" 0 "after 100 syncs no run shows in etl_stream.progress"

# --- 3. a long merge: phase 'merge', and who may see it -----------------
# Another session holds a row of the target locked; the merge waits on it.
mysql_root etl_test -e "UPDATE $SRC SET note = 'changed', update_time = update_time + $N WHERE id = 1"
merge=$(db -qAt <<'SQL'
SELECT dblink_connect('locker', format('dbname=%s user=postgres host=127.0.0.1 port=%s', current_database(), current_setting('port')));
SELECT dblink_exec('locker', 'BEGIN');
SELECT * FROM dblink('locker', 'SELECT id FROM prog WHERE id = 1 FOR UPDATE') AS t(id int);
SELECT dblink_connect('syncer', format('dbname=%s user=postgres host=127.0.0.1 port=%s', current_database(), current_setting('port')));
SELECT dblink_send_query('syncer', 'SELECT status, rows_pulled, rows_updated FROM etl_stream.sync(''prog'')');
DO $$
BEGIN
  FOR i IN 1..600 LOOP
    EXIT WHEN EXISTS (SELECT FROM etl_stream.progress WHERE table_name = 'prog' AND phase = 'merge'
                        AND phase_started_at < clock_timestamp() - interval '300 ms');
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
SELECT 'seen', phase, rows_pulled, rows_landed, rows_merged IS NULL FROM etl_stream.progress WHERE table_name = 'prog';
-- who sees it: only roles with the privileges of the run's role
SELECT 'plain', n FROM dblink(format('dbname=%s user=t_prog_plain host=127.0.0.1 port=%s', current_database(), current_setting('port')),
                               'SELECT count(*) FROM etl_stream.progress') AS t(n bigint);
SELECT 'stats', n FROM dblink(format('dbname=%s user=t_prog_stats host=127.0.0.1 port=%s', current_database(), current_setting('port')),
                               'SELECT count(*) FROM etl_stream.progress') AS t(n bigint);
SELECT 'member', n FROM dblink(format('dbname=%s user=t_prog_member host=127.0.0.1 port=%s', current_database(), current_setting('port')),
                                'SELECT count(*) FROM etl_stream.progress') AS t(n bigint);
SELECT dblink_exec('locker', 'COMMIT');
SELECT 'result', * FROM dblink_get_result('syncer') AS t(status text, pulled bigint, updated bigint);
SELECT 'after', count(*) FROM etl_stream.progress;
SQL
) || true
echo "$merge" | sed 's/^/# /'
tap_is "$(grep '^seen|' <<<"$merge")" "seen|merge|2|2|t" \
	"while the merge waits on a locked row, the run shows in phase merge with its 2 rows"
tap_is "$(grep '^plain|' <<<"$merge")" "plain|0" "a role without the run role's privileges sees no run"
tap_is "$(grep '^stats|' <<<"$merge")" "stats|1" "a member of pg_read_all_stats sees it"
tap_is "$(grep '^member|' <<<"$merge")" "member|1" "a member of the run's role sees it"
tap_is "$(grep '^result|' <<<"$merge")" "result|success|2|1" "the merge goes on when the row is released"
tap_is "$(grep '^after|' <<<"$merge")" "after|0" "and the run is gone from the view"

# --- 4. a backend terminated mid-pull leaves no slot --------------------
db -Atc "SELECT status FROM etl_stream.sync('prog', range_from => '0')" >"$ETL_WORK/prog_term.out" 2>&1 &
BG_PID=$!
term=$(db -qAt <<'SQL'
DO $$
BEGIN
  FOR i IN 1..3000 LOOP
    EXIT WHEN EXISTS (SELECT FROM etl_stream.progress WHERE table_name = 'prog' AND rows_pulled > 20000);
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
SELECT 'pulling', phase, rows_pulled > 20000 FROM etl_stream.progress WHERE table_name = 'prog';
SELECT 'terminated', pg_terminate_backend(pid, 5000) FROM etl_stream.progress WHERE table_name = 'prog';
SELECT 'left', count(*) FROM etl_stream.progress;
SQL
) || true
wait "$BG_PID" || true
BG_PID=""
echo "$term" | sed 's/^/# /'
sed 's/^/# terminated session: /' "$ETL_WORK/prog_term.out"
tap_is "$(grep '^pulling|' <<<"$term")" "pulling|pull|t" "the range sync showed in phase pull with rows rising"
tap_is "$(grep '^terminated|' <<<"$term")" "terminated|t" "its backend was terminated (and exited within 5 s)"
tap_is "$(grep '^left|' <<<"$term")" "left|0" "no slot is left by the terminated backend"
tap_is "$(db -Atc "SELECT status FROM etl_stream.sync('small')")" success "the next sync runs as usual"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.progress")" 0 "and the view is empty again"
