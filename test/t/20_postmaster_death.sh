#!/usr/bin/env bash
# A backend waiting on MySQL must notice the postmaster's death and exit,
# not sit in SLEEP(30) as an orphan.  Uses a private PostgreSQL cluster: the
# shared one must survive.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DIR="$ETL_WORK/pmdeath_pg"
PORT=$((PGPORT + 71))
(
	start_postgres "$DIR" "$PORT" >/dev/null
	echo "$PG_PID" >"$ETL_WORK/pmdeath.pid"
)
PM_PID=$(cat "$ETL_WORK/pmdeath.pid")
trap 'kill -9 "$PM_PID" 2>/dev/null || true' EXIT
psql_private() { "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }

psql_private -q <<SQL
CREATE EXTENSION etl_stream;
CREATE SERVER shop FOREIGN DATA WRAPPER etl_stream
  OPTIONS (host '$MYSQL_HOST', port '$MYSQL_PORT', dbname 'shop');
CREATE USER MAPPING FOR CURRENT_USER SERVER shop
  OPTIONS (user '$MYSQL_USER', password '$MYSQL_PASSWORD');
SQL

psql_private -Atc "SELECT * FROM etl_stream.query('shop', 'SELECT SLEEP(30)') AS t(x int)" \
	>"$ETL_WORK/pmdeath.out" 2>&1 &
for _ in $(seq 50); do
	n=$(mysql_etl -N -e "SELECT count(*) FROM information_schema.processlist WHERE info = 'SELECT SLEEP(30)'")
	[ "$n" -gt 0 ] && break
	sleep 0.1
done
BACKEND_PID=$(psql_private -Atc "SELECT pid FROM pg_stat_activity WHERE query LIKE '%SLEEP(30)%' AND pid <> pg_backend_pid()")
echo "# postmaster $PM_PID, waiting backend $BACKEND_PID"

kill -9 "$PM_PID"
start=$(date +%s%N)
# an orphan that exited stays a zombie until PID 1 reaps it: count that
exited() {
	local state
	state=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null || true)
	[ -z "$state" ] || [ "$state" = Z ]
}
gone=no
for _ in $(seq 100); do
	if exited "$BACKEND_PID"; then gone=yes; break; fi
	sleep 0.05
done
ms=$(( ($(date +%s%N) - start) / 1000000 ))
tap_is "$gone" yes "the waiting backend exits after the postmaster dies (${ms} ms)"
tap_ok "it exits within a second (${ms} ms)" test "$ms" -lt 1000
# exiting aborts the transaction, and the abort kills the remote statement
n=1
for _ in $(seq 20); do
	n=$(mysql_etl -N -e "SELECT count(*) FROM information_schema.processlist WHERE info = 'SELECT SLEEP(30)'")
	[ "$n" -eq 0 ] && break
	sleep 0.1
done
tap_is "$n" 0 "the remote SLEEP(30) is gone from MariaDB's processlist"
