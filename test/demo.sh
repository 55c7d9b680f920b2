#!/usr/bin/env bash
# test/demo.sh - the main job, end to end, as root on Debian 12.
#
# Installs what is missing, builds and installs etl_stream, starts a
# throwaway MariaDB (port ETL_MYSQL_PORT, default 23306) and PostgreSQL
# (ETL_PG_PORT, default 25432) in /tmp/etl_stream_demo, loads the sample shop
# and runs test/demo.sql: rows flow from MariaDB into PostgreSQL.
#
#   bash test/demo.sh          run, then stop both servers
#   bash test/demo.sh --keep   run and leave both servers running
#   bash test/demo.sh --stop   stop servers left by --keep
#
# ETL_DEMO_DIR moves the demo elsewhere (for two demos side by side).
set -euo pipefail
# One ordered stream: errors appear where they happen.
exec 2>&1

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ETL_ROOT"

DEMO_DIR="${ETL_DEMO_DIR:-/tmp/etl_stream_demo}"
MYSQL_PORT_WANTED="${ETL_MYSQL_PORT:-23306}"
PG_PORT_WANTED="${ETL_PG_PORT:-25432}"

# Stop whatever a previous demo left behind, by its pid files.
stop_demo() {
	stop_postgres "$DEMO_DIR/pg"
	stop_mariadb "$DEMO_DIR/mysql"
	rm -rf "$DEMO_DIR"
}

# One demo per directory at a time: a second run would stop the first
# one's servers and delete its files under it.
exec 9>"$DEMO_DIR.lock"
if ! flock -n 9; then
	die "another test/demo.sh is using $DEMO_DIR; wait for it, or set ETL_DEMO_DIR (and the ports) for a second demo"
fi

keep=0
case "${1:-}" in
	"") ;;
	--keep) keep=1 ;;
	--stop)
		require_root
		stop_demo
		echo "demo servers stopped"
		exit 0
		;;
	*) die "usage: bash test/demo.sh [--keep | --stop]" ;;
esac

require_root
step() { printf '\n### %s\n' "$*"; }

step "Installing missing packages (if any)"
install_deps

step "Building and installing etl_stream"
build_install

step "Starting MariaDB on port $MYSQL_PORT_WANTED and PostgreSQL on port $PG_PORT_WANTED in $DEMO_DIR"
if [ -e "$DEMO_DIR" ]; then
	echo "(stopping the previous demo first)"
	stop_demo
fi
mkdir -p "$DEMO_DIR"
chmod 755 "$DEMO_DIR"
# Unless --keep, stop both servers however the script ends.
if [ "$keep" -eq 0 ]; then
	trap 'rc=$?; stop_demo; [ "$rc" -eq 0 ] || echo "demo FAILED (exit $rc); servers stopped" >&2' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
else
	trap 'rc=$?; [ "$rc" -eq 0 ] || echo "demo FAILED (exit $rc); servers left running: bash test/demo.sh --stop" >&2' EXIT
fi
# 9>&-: the servers must not inherit the lock, or a kept demo would hold it.
start_mariadb "$DEMO_DIR/mysql" "$MYSQL_PORT_WANTED" 9>&-
start_postgres "$DEMO_DIR/pg" "$PG_PORT_WANTED" 9>&-
echo "MariaDB pid $MYSQL_PID, PostgreSQL pid $PG_PID"

step "Loading the sample shop into MariaDB (test/fixtures/shop.sql)"
load_fixtures
mysql_root -t shop -e "SELECT 'ecs_order_info' AS table_name, count(*) AS table_rows FROM ecs_order_info
	UNION ALL SELECT 'ecs_tracking', count(*) FROM ecs_tracking"

step "Running test/demo.sql in PostgreSQL"
pg_psql -e -v mysql_port="$MYSQL_PORT" -f test/demo.sql

if [ "$keep" -eq 1 ]; then
	step "Servers left running (--keep)"
	cat <<-MSG
		PostgreSQL: $PG_BIN/psql -h 127.0.0.1 -p $PGPORT -U postgres
		MariaDB:    mariadb --no-defaults -S $MYSQL_SOCKET -u root shop
		Stop both:  ${ETL_DEMO_DIR:+ETL_DEMO_DIR=$DEMO_DIR }bash test/demo.sh --stop
	MSG
else
	step "Stopping both servers"
	stop_demo
	trap - EXIT
	echo "MariaDB and PostgreSQL stopped; run with --keep to leave them running"
fi
