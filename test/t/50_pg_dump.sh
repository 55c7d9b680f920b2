#!/usr/bin/env bash
# Registrations, watermarks and run history are configuration tables of the
# extension: pg_dump must carry them, and the restored database must go on
# syncing from the same watermark.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

SRC=t_dump_src
DST=t_dump_dst
cleanup() {
	pg_psql -qc "DROP DATABASE IF EXISTS $SRC" -c "DROP DATABASE IF EXISTS $DST" >/dev/null 2>&1 || true
	mysql_etl etl_test -e "DROP TABLE IF EXISTS dump_orders" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup

mysql_etl etl_test -e "CREATE TABLE dump_orders (id INT PRIMARY KEY, v INT, update_time INT UNSIGNED, KEY (update_time));
	INSERT INTO dump_orders SELECT seq, seq, 1000 + seq FROM seq_1_to_100"

create_test_db "$SRC"
pg_psql -d "$SRC" -q <<SQL
SELECT etl_stream.add_table('dump_orders', server => 'src', source_table => 'dump_orders',
                            watermark => 'update_time', lookback => 5);
SELECT etl_stream.create_target('dump_orders');
SELECT status FROM etl_stream.sync('dump_orders');
SQL

"$PG_BIN/pg_dump" -h 127.0.0.1 -p "$PGPORT" -U postgres -Fc -f "$ETL_WORK/dump.pgc" "$SRC"
pg_psql -qc "CREATE DATABASE $DST"
"$PG_BIN/pg_restore" -h 127.0.0.1 -p "$PGPORT" -U postgres -d "$DST" "$ETL_WORK/dump.pgc"

q() { pg_psql -d "$1" -Atc "$2"; }
tap_is "$(q "$DST" "SELECT name || ' ' || lookback || ' ' || high_watermark FROM etl_stream.tables")" \
	"dump_orders 5 1100" "the registration and its watermark are restored"
tap_is "$(q "$DST" "SELECT count(*) || ' ' || min(status) FROM etl_stream.runs")" \
	"1 success" "the run history is restored"
tap_is "$(q "$DST" "SELECT count(*) FROM dump_orders")" 100 "the target's rows are restored"

# the restored copy goes on from the restored watermark: cutoff 1100 - 5
mysql_etl etl_test -e "INSERT INTO dump_orders VALUES (101, 101, 1101)"
tap_is "$(q "$DST" "SELECT status || ' ' || cutoff || ' ' || rows_pulled || ' ' || rows_inserted FROM etl_stream.sync('dump_orders')")" \
	"success 1095 7 1" "the restored database syncs on from the same watermark"
tap_is "$(q "$DST" "SELECT nextval('etl_stream.runs_run_id_seq') > 1")" t \
	"the run id sequence is restored past the restored runs"
