#!/usr/bin/env bash
# test/check.sh - the whole test suite, run as root on Debian 12.
#
# Installs what is missing, builds and installs the extension, starts a
# throwaway MariaDB and PostgreSQL in a temp dir, loads test/fixtures, runs
# the pg_regress suite (make installcheck) and then every scripted test in
# test/t/*.sh.  The last line is always
#
#   etl_stream: N passed, M failed
#
# and the exit status is non-zero when M > 0.  KEEP=1 leaves the servers
# running and prints how to reach and stop them.  Ports: ETL_MYSQL_PORT
# (default 13306) and ETL_PG_PORT (default 15432).
set -euo pipefail
# One ordered stream, so the summary really is the last line whoever captures it.
exec 2>&1

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ETL_ROOT"

MYSQL_PORT_WANTED="${ETL_MYSQL_PORT:-13306}"
PG_PORT_WANTED="${ETL_PG_PORT:-15432}"
SCRIPT_TIMEOUT="${ETL_TEST_TIMEOUT:-300}"
# A hung regression test must not hang CI: the whole suite gets 10 minutes.
REGRESS_TIMEOUT=600

PASSED=0
FAILED=0
PHASE="start"
COMPLETED=0
WORK=""
TEST_PID=""

# Runs on every exit, including a set-up step that died: stop our servers
# (by pid), then print the one summary line.  A set-up failure counts as a
# failed test so the line never claims success.
finish() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [ -n "$TEST_PID" ]; then
		# Interrupted while a scripted test ran: timeout passes it on.
		kill -TERM "$TEST_PID" 2>/dev/null
		wait "$TEST_PID" 2>/dev/null
	fi
	if [ "$COMPLETED" -eq 0 ]; then
		log "set-up failed during: $PHASE"
		FAILED=$((FAILED + 1))
	fi
	if [ -n "$WORK" ]; then
		if [ "${KEEP:-0}" = 1 ]; then
			cat >&2 <<-EOF
				KEEP=1: servers left running in $WORK
				  psql:    $PG_BIN/psql -h 127.0.0.1 -p $PG_PORT_WANTED -U postgres
				  mariadb: mariadb --no-defaults -S $WORK/mysql/mysqld.sock -u root shop
				  stop:    bash -c '. $ETL_ROOT/test/lib.sh; stop_postgres $WORK/pg; stop_mariadb $WORK/mysql' && rm -rf $WORK
			EOF
		else
			stop_postgres "$WORK/pg"
			stop_mariadb "$WORK/mysql"
			rm -rf "$WORK"
		fi
	fi
	echo "etl_stream: $PASSED passed, $FAILED failed"
	if [ "$FAILED" -gt 0 ] || [ "$rc" -ne 0 ]; then
		exit 1
	fi
	exit 0
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

elapsed() { echo "$((SECONDS - $1))s"; }

require_root
t_setup=$SECONDS

PHASE="installing packages"
install_deps

PHASE="build"
build_install || die "build failed"

PHASE="starting servers"
WORK="$(mktemp -d /tmp/etl_stream_check.XXXXXX)"
chmod 755 "$WORK"
start_mariadb "$WORK/mysql" "$MYSQL_PORT_WANTED"
start_postgres "$WORK/pg" "$PG_PORT_WANTED"

PHASE="loading fixtures"
load_fixtures

# What the regression SQL (psql \getenv) and the scripted tests read.
export MYSQL_HOST=127.0.0.1 MYSQL_PORT MYSQL_SOCKET
export MYSQL_USER="$ETL_MYSQL_USER" MYSQL_PASSWORD="$ETL_MYSQL_PASSWORD"
export ETL_WORK="$WORK" ETL_MYSQL_DIR="$WORK/mysql" ETL_PG_DIR="$WORK/pg"
log "set-up: $(elapsed "$t_setup") (MariaDB on $MYSQL_PORT, PostgreSQL on $PGPORT, in $WORK)"

# --- pg_regress ---------------------------------------------------------
PHASE="make installcheck"
log "== pg_regress (make installcheck)"
t0=$SECONDS
# Show each test's result line as it comes; keep the whole output.
set +e
timeout -k 10 "$REGRESS_TIMEOUT" make installcheck PG_CONFIG="$PG_CONFIG" 2>&1 | tee "$WORK/installcheck.out" |
	grep --line-buffered -E ' \.\.\. |^make: \*\*\*' >&2
rc=${PIPESTATUS[0]}
set -e
reg_ok=$(grep -cE ' \.\.\. (ok|failed \(ignored\))' "$WORK/installcheck.out" || true)
reg_failed=$(grep -cE ' \.\.\. FAILED' "$WORK/installcheck.out" || true)
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	log "make installcheck timed out after ${REGRESS_TIMEOUT}s"
	reg_failed=$((reg_failed + 1))
elif [ "$rc" -ne 0 ] && [ "$reg_failed" -eq 0 ]; then
	# pg_regress itself failed (could not connect, missing file, ...).
	log "make installcheck failed before reporting any test (exit $rc):"
	tail -n 30 "$WORK/installcheck.out" >&2
	reg_failed=1
fi
PASSED=$((PASSED + reg_ok))
FAILED=$((FAILED + reg_failed))
log "pg_regress: $reg_ok passed, $reg_failed failed ($(elapsed "$t0"))"
if [ "$reg_failed" -gt 0 ] && [ -s regression.diffs ]; then
	log "--- regression.diffs (first 300 lines; whole file: $ETL_ROOT/regression.diffs)"
	head -n 300 regression.diffs >&2
	log "---"
fi

# --- scripted tests -----------------------------------------------------
PHASE="scripted tests"
shopt -s nullglob
for t in test/t/*.sh; do
	name="$(basename "$t" .sh)"
	log "== $t"
	t0=$SECONDS
	out="$WORK/t_$name.out"
	rc=0
	: >"$out" # exists before tail opens it
	timeout -k 10 "$SCRIPT_TIMEOUT" bash "$t" >"$out" 2>&1 &
	TEST_PID=$!
	# Echo the result lines while the script runs.
	tail -n +1 -f --pid="$TEST_PID" "$out" 2>/dev/null |
		grep --line-buffered -E '^(not )?ok( |$)' >&2 || true
	wait "$TEST_PID" || rc=$?
	TEST_PID=""
	n_ok=$(grep -cE '^ok( |$)' "$out" || true)
	n_not=$(grep -cE '^not ok( |$)' "$out" || true)
	extra=""
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		extra="timed out after ${SCRIPT_TIMEOUT}s"
	elif [ "$rc" -ne 0 ]; then
		extra="exited with status $rc"
	elif [ "$n_ok" -eq 0 ] && [ "$n_not" -eq 0 ]; then
		extra="reported no results"
	fi
	if [ -n "$extra" ] && [ "$n_not" -eq 0 ]; then
		# A script that fails without saying "not ok" still fails once.
		n_not=1
	fi
	PASSED=$((PASSED + n_ok))
	FAILED=$((FAILED + n_not))
	log "$name: $n_ok passed, $n_not failed ($(elapsed "$t0"))${extra:+; $extra}"
	if [ "$n_not" -gt 0 ]; then
		log "--- output of $t (last 60 lines)"
		tail -n 60 "$out" >&2
		log "---"
	fi
done

COMPLETED=1
