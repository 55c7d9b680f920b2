#!/usr/bin/env bash
# Without etl_stream in shared_preload_libraries there is no shared memory
# for progress: CREATE EXTENSION and every foreground function still work,
# and etl_stream.progress answers with a clear error naming the setting.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DIR="$ETL_WORK/nopreload_pg"
PORT=$((PGPORT + 7))
cleanup() {
	local -
	set +e
	stop_postgres "$DIR"
	rm -rf "$DIR"
	mysql_root etl_test -e "DROP TABLE IF EXISTS np_src" >/dev/null 2>&1
}
trap cleanup EXIT

# A private cluster: the same settings, the preload list emptied (a later
# line of postgresql.conf wins).
ETL_PG_EXTRA_CONF="shared_preload_libraries = ''" start_postgres "$DIR" "$PORT"
tap_is "$(pg_psql -Atc 'SHOW shared_preload_libraries')" "" "the private cluster preloads nothing"

mysql_root etl_test -e "DROP TABLE IF EXISTS np_src;
	CREATE TABLE np_src (id INT PRIMARY KEY, v VARCHAR(10), update_time INT NOT NULL);
	INSERT INTO np_src SELECT seq, CONCAT('v', seq), seq FROM seq_1_to_1000"

create_test_db t_np
db() { pg_psql -d t_np "$@"; }
tap_is "$(db -Atc "SELECT extversion FROM pg_extension WHERE extname = 'etl_stream'")" \
	"$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$ETL_ROOT/etl_stream.control")" "CREATE EXTENSION etl_stream works"
tap_is "$(db -Atc "SELECT version ~ 'MariaDB' FROM etl_stream.ping('src')")" t "ping works"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.query('src', 'SELECT id FROM np_src') AS t(id int)")" 1000 \
	"query works"
db -q >/dev/null <<'SQL'
SELECT FROM etl_stream.add_table('np', server => 'src', source_table => 'np_src', watermark => 'update_time');
SELECT FROM etl_stream.create_target('np');
CREATE TABLE np_landed (id int, v text, update_time int);
SQL
tap_is "$(db -Atc "SELECT status, rows_pulled, load_path FROM etl_stream.sync('np')")" "success|1000|direct" \
	"a first sync works"
mysql_root etl_test -e "UPDATE np_src SET v = 'changed', update_time = 5000 WHERE id = 7"
tap_is "$(db -Atc "SELECT status, rows_updated FROM etl_stream.sync('np')")" "success|1" "an incremental sync works"
tap_ok "CALL sync_all_proc() works" db -qc "CALL etl_stream.sync_all_proc()"
tap_is "$(db -Atc "SELECT rows_landed FROM etl_stream.land('src', 'SELECT * FROM np_src', 'np_landed')")" 1000 \
	"land() works"
tap_is "$(db -Atc "SELECT last_status FROM etl_stream.status WHERE name = 'np'")" success "the status view works"
tap_is "$(db -Atc "SELECT statistics FROM etl_stream.runs WHERE table_name = 'np' ORDER BY run_id LIMIT 1")" in_run \
	"without workers, a sync ANALYZEs before it commits"
err=$(db -Atc "SELECT etl_stream.backfill('np')" 2>&1) || true
tap_ok "a backfill says what it needs" grep -q "background workers need etl_stream to be loaded at server start" <<<"$err"

err=$(db -Atc "SELECT * FROM etl_stream.progress" 2>&1) && rc=0 || rc=$?
echo "$err" | sed 's/^/# /'
tap_ok "etl_stream.progress is an error" test "$rc" -ne 0
tap_ok "it says progress needs the library loaded at server start" \
	grep -q 'ERROR:  etl_stream.progress needs etl_stream to be loaded at server start' <<<"$err"
tap_ok "its hint names the setting" \
	grep -q 'HINT:  Add etl_stream to shared_preload_libraries in postgresql.conf and restart the server.' <<<"$err"
