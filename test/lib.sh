# test/lib.sh - shared shell functions for test/check.sh, test/demo.sh and
# the scripted tests in test/t/.
#
# Source it; it sets no shell options of its own.  Everything here runs as
# root on Debian 12 and starts throwaway servers in directories we own: the
# system MariaDB/PostgreSQL services are never used, and every process we
# stop is stopped by the pid we recorded, never by name.

# ETL_PG_BIN: another PostgreSQL 15 tree (a relocated copy, e.g. for two
# work trees side by side); the default is Debian's.
PG_BIN="${ETL_PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_CONFIG="$PG_BIN/pg_config"
export PG_CONFIG

# The repository root, whichever script sourced us.
ETL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The fixed credentials of the throwaway MariaDB (never a real system).
ETL_MYSQL_USER=etl
ETL_MYSQL_PASSWORD=secret

# Server settings for every throwaway PostgreSQL cluster, one per line of
# postgresql.conf.  Later work adds here (e.g. etl_stream itself to
# shared_preload_libraries); ETL_PG_EXTRA_CONF (newline-separated) adds more
# from the environment.  fsync is off: these clusters are thrown away.
PG_SETTINGS=(
	"shared_preload_libraries = 'pg_cron,etl_stream'"
	"cron.database_name = 'postgres'"
	"fsync = off"
	"max_connections = 50"
	"log_line_prefix = '%m [%p] %q%a '"
)

# Everything the build, the tests and the demo need.  Recommends are not
# installed: none of them is needed to build, start or test (mariadb-server
# recommends only compression plugins and pv; postgresql-15 only sysstat).
DEPS=(
	postgresql-15
	postgresql-server-dev-15
	postgresql-15-cron
	postgresql-15-mysql-fdw
	libmariadb-dev
	mariadb-server
	mariadb-client
	pgloader
	libipc-run-perl
	procps
	perl
	openssl
)

log() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

require_root() {
	[ "$(id -u)" -eq 0 ] || die "run as root (the servers run as the mysql and postgres users via runuser)"
}

# Install what is missing.  A machine that already has everything skips
# apt entirely, so repeated runs cost nothing.
install_deps() {
	local missing=() p
	for p in "${DEPS[@]}"; do
		if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
			missing+=("$p")
		fi
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		return 0
	fi
	require_root
	log "installing: ${missing[*]}"
	# Keep the packages' own system services from starting during install:
	# we never use them and they would hold ports 3306/5432.  Only if no
	# policy is in place already, and removed again afterwards.
	local policy=/usr/sbin/policy-rc.d made_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		made_policy=1
	fi
	local rc=0 attempt
	for attempt in 1 2 3; do
		rc=0
		apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
			>/tmp/etl_stream_apt.log 2>&1 || rc=$?
		[ "$rc" -eq 0 ] && break
		log "apt-get failed (attempt $attempt, exit $rc); retrying"
		sleep $((attempt * 5))
	done
	if [ "$made_policy" -eq 1 ]; then
		rm -f "$policy"
	fi
	if [ "$rc" -ne 0 ]; then
		tail -n 40 /tmp/etl_stream_apt.log >&2 || true
		die "could not install: ${missing[*]}"
	fi
}

# Build and install the extension.  Quiet when it works (compiler warnings
# are still shown: they matter); the full compiler output when it fails.
build_install() {
	local out rc=0
	out="$(mktemp)"
	(cd "$ETL_ROOT" && make -j"$(nproc)" PG_CONFIG="$PG_CONFIG" && make install PG_CONFIG="$PG_CONFIG") >"$out" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		log "build failed (make exit $rc):"
		cat "$out" >&2
		rm -f "$out"
		return 1
	fi
	if grep -q 'warning:' "$out"; then
		log "build: ok, with compiler warnings:"
		grep 'warning:' "$out" | head -n 20 >&2
	else
		log "build: ok"
	fi
	rm -f "$out"
}

# True when something already listens on 127.0.0.1:PORT.  Uses bash's
# /dev/tcp so it needs no extra package.
port_in_use() {
	timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

check_port_free() {
	if port_in_use "$1"; then
		die "port $1 is already in use on 127.0.0.1 (another server?); pick another with $2=<port>"
	fi
}

# The pid in FILE, but only if that process is alive and its command line
# mentions WORD (the data directory): a stale pid file after a reboot must
# never make us signal an unrelated process.
live_pid_from() {
	local file="$1" word="$2" pid
	[ -s "$file" ] || return 1
	pid="$(head -n 1 "$file" | tr -dc '0-9')"
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$word" || return 1
	printf '%s\n' "$pid"
}

# Signal PID with SIG, wait up to SECS for it to go, then SIGKILL it.
stop_pid() {
	local pid="$1" sig="$2" secs="$3" what="$4" i
	kill "-$sig" "$pid" 2>/dev/null || return 0
	for ((i = 0; i < secs * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	log "$what (pid $pid) did not stop within ${secs}s; killing it"
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
}

# Host and protocol always explicit: the client would otherwise follow
# MYSQL_HOST from the environment (check.sh exports it for the tests) to
# TCP port 3306 instead of using -S.
mysql_root() {
	mariadb --no-defaults --default-character-set=utf8mb4 --protocol=socket \
		-h localhost -S "$MYSQL_SOCKET" -u root "$@"
}

# mariadb as the etl user over TCP, as the extension connects.
mysql_etl() {
	MYSQL_PWD="$ETL_MYSQL_PASSWORD" mariadb --no-defaults --default-character-set=utf8mb4 \
		--protocol=tcp -h 127.0.0.1 -P "$MYSQL_PORT" -u "$ETL_MYSQL_USER" "$@"
}

# psql against the throwaway cluster: no ~/.psqlrc, stop at the first error.
pg_psql() {
	"$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres "$@"
}

# run_mariadbd DIR PORT [ARGS...]: start mariadbd on the datadir in DIR and
# wait until it answers; sets MYSQL_PORT, MYSQL_SOCKET and MYSQL_PID.
# start_mariadb makes the datadir first; restart_mariadb uses it again.
run_mariadbd() {
	local dir="$1" port="$2" i pid
	shift 2
	# utf8mb4 explicitly: --no-defaults would leave the server on latin1.
	mariadbd --no-defaults --user=mysql --datadir="$dir/data" \
		--socket="$dir/mysqld.sock" --port="$port" --bind-address=127.0.0.1 \
		--pid-file="$dir/mysqld.pid" --log-error="$dir/mysqld.log" \
		--skip-name-resolve --max-connections=100 \
		--innodb-buffer-pool-size=128M --innodb-flush-log-at-trx-commit=2 \
		--character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
		"$@" </dev/null >/dev/null 2>&1 &
	local launcher=$!
	MYSQL_SOCKET="$dir/mysqld.sock"
	MYSQL_PORT="$port"
	for ((i = 0; i < 600; i++)); do
		if [ -S "$MYSQL_SOCKET" ] &&
			mariadb-admin --no-defaults --protocol=socket -h localhost -S "$MYSQL_SOCKET" -u root ping >/dev/null 2>&1; then
			break
		fi
		if ! kill -0 "$launcher" 2>/dev/null; then
			tail -n 30 "$dir/mysqld.log" >&2 || true
			die "mariadbd exited during start-up (log: $dir/mysqld.log)"
		fi
		sleep 0.1
	done
	pid="$(live_pid_from "$dir/mysqld.pid" "$dir/data")" || {
		tail -n 30 "$dir/mysqld.log" >&2 || true
		stop_pid "$launcher" TERM 30 mariadbd
		die "mariadbd did not answer within 60s (log: $dir/mysqld.log)"
	}
	MYSQL_PID="$pid"
	export MYSQL_PORT MYSQL_SOCKET MYSQL_PID
}

# restart_mariadb DIR PORT [ARGS...]: start again, on its data, a server
# start_mariadb made and stop_mariadb stopped (a test of a source going
# away and coming back).
restart_mariadb() {
	check_port_free "$2" ETL_MYSQL_PORT
	run_mariadbd "$@"
}

# start_mariadb DIR PORT [MARIADBD_ARG...]: a throwaway MariaDB owned by the
# mysql user, with database shop (and etl_test for fixtures) and the etl
# user.  Extra arguments go to mariadbd after ours, so they can override
# them (a test's TLS certificates, another bind address).
start_mariadb() {
	local dir="$1" port="$2"
	shift 2
	check_port_free "$port" ETL_MYSQL_PORT
	mkdir -p "$dir"
	chown mysql:mysql "$dir"
	chmod 755 "$dir"
	if ! mariadb-install-db --no-defaults --user=mysql --datadir="$dir/data" \
		--auth-root-authentication-method=socket --skip-test-db \
		--skip-name-resolve >"$dir/install-db.log" 2>&1; then
		cat "$dir/install-db.log" >&2
		die "mariadb-install-db failed"
	fi
	run_mariadbd "$dir" "$port" "$@"
	# On failure stop the server we just started: a caller without a trap
	# must not be left with a stray mariadbd.
	if ! mysql_root <<-SQL
		CREATE DATABASE shop;
		CREATE DATABASE etl_test;
		CREATE USER '$ETL_MYSQL_USER'@'127.0.0.1' IDENTIFIED BY '$ETL_MYSQL_PASSWORD';
		CREATE USER '$ETL_MYSQL_USER'@'localhost' IDENTIFIED BY '$ETL_MYSQL_PASSWORD';
		GRANT ALL ON shop.* TO '$ETL_MYSQL_USER'@'127.0.0.1', '$ETL_MYSQL_USER'@'localhost';
		GRANT ALL ON etl_test.* TO '$ETL_MYSQL_USER'@'127.0.0.1', '$ETL_MYSQL_USER'@'localhost';
		GRANT PROCESS ON *.* TO '$ETL_MYSQL_USER'@'127.0.0.1', '$ETL_MYSQL_USER'@'localhost';
	SQL
	then
		stop_mariadb "$dir"
		die "could not create the databases and the etl user in MariaDB"
	fi
}

# stop_from_pidfile FILE WORD SIG WHAT: stop the server named by FILE if
# it is ours (see live_pid_from).  Says so when the pid is alive but cannot
# be confirmed as ours (say, /proc is not mounted): never a silent no-op.
stop_from_pidfile() {
	local file="$1" word="$2" sig="$3" what="$4" pid
	if pid="$(live_pid_from "$file" "$word")"; then
		stop_pid "$pid" "$sig" 60 "$what"
		return 0
	fi
	pid="$(head -n 1 "$file" 2>/dev/null | tr -dc '0-9')" || true
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		log "warning: $file names pid $pid, which is not recognisably our $what; left alone"
	fi
}

# stop_mariadb DIR: stop the server whose pid file is in DIR.
stop_mariadb() {
	stop_from_pidfile "$1/mysqld.pid" "$1/data" TERM mariadbd
}

# start_postgres DIR PORT: a throwaway PostgreSQL 15 cluster run by the
# postgres user, listening on 127.0.0.1:PORT and a socket in DIR.
start_postgres() {
	local dir="$1" port="$2" s
	check_port_free "$port" ETL_PG_PORT
	mkdir -p "$dir"
	chown postgres:postgres "$dir"
	chmod 755 "$dir"
	if ! runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/data" -U postgres \
		--auth=trust -E UTF8 --locale=C.UTF-8 -N >"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log" >&2
		die "initdb failed"
	fi
	{
		echo "# added by test/lib.sh start_postgres"
		echo "port = $port"
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$dir'"
		# pg_cron connects to run a job: through the socket, as local users
		echo "cron.host = '$dir'"
		for s in "${PG_SETTINGS[@]}"; do
			echo "$s"
		done
		if [ -n "${ETL_PG_EXTRA_CONF:-}" ]; then
			printf '%s\n' "$ETL_PG_EXTRA_CONF"
		fi
	} >>"$dir/data/postgresql.conf"
	if ! runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" \
		-w -t 60 start >/dev/null 2>&1; then
		tail -n 30 "$dir/postgres.log" >&2 || true
		die "postgres did not start (log: $dir/postgres.log)"
	fi
	PG_PID="$(live_pid_from "$dir/data/postmaster.pid" "$dir/data")" ||
		die "postgres started but its pid file is unreadable"
	PGHOST=127.0.0.1
	PGPORT="$port"
	PGUSER=postgres
	export PGHOST PGPORT PGUSER PG_PID
}

# stop_postgres DIR: a fast shutdown (SIGINT) of the postmaster whose pid
# file is in DIR/data.
stop_postgres() {
	stop_from_pidfile "$1/data/postmaster.pid" "$1/data" INT postgres
}

# Load test/fixtures into a running MariaDB: shop.sql into shop, every
# etl_test_*.sql into etl_test.
load_fixtures() {
	local f
	mysql_root shop <"$ETL_ROOT/test/fixtures/shop.sql" || die "loading fixture shop.sql failed"
	for f in "$ETL_ROOT"/test/fixtures/etl_test_*.sql; do
		[ -e "$f" ] || continue
		mysql_root etl_test <"$f" || die "loading fixture $(basename "$f") failed"
	done
}

# create_test_db DB: a fresh database with the extension, server src on the
# MariaDB database etl_test, and a user mapping for the etl user: what a
# scripted test starts from.
create_test_db() {
	pg_psql -qc "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
	pg_psql -d "$1" -q <<-SQL
		CREATE EXTENSION etl_stream;
		CREATE SERVER src FOREIGN DATA WRAPPER etl_stream
		  OPTIONS (host '127.0.0.1', port '$MYSQL_PORT', dbname 'etl_test');
		CREATE USER MAPPING FOR CURRENT_USER SERVER src
		  OPTIONS (user '$ETL_MYSQL_USER', password '$ETL_MYSQL_PASSWORD');
	SQL
}

# etl_workers_left [SECONDS]: wait up to SECONDS (default 60) for every
# etl_stream worker of the cluster to exit, then print how many are left.
# A job is done before its last worker has ANALYZEd the target and exited,
# and a sync's deferred ANALYZE runs in a worker of its own.
etl_workers_left() {
	local i n tries=$((${1:-60} * 10))
	for ((i = 0; i < tries; i++)); do
		n=$(pg_psql -Atc "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'etl_stream worker'")
		[ "$n" = 0 ] && break
		sleep 0.1
	done
	echo "$n"
}

# TAP-like helpers for scripted tests (test/t/README.md).
tap_ok() {
	# tap_ok DESCRIPTION COMMAND...: ok when the command succeeds.
	local desc="$1"
	shift
	if "$@"; then
		echo "ok - $desc"
	else
		echo "not ok - $desc"
	fi
}

tap_is() {
	# tap_is GOT EXPECTED DESCRIPTION
	if [ "$1" = "$2" ]; then
		echo "ok - $3"
	else
		echo "not ok - $3"
		printf '#   got:      %s\n#   expected: %s\n' "$1" "$2"
	fi
}
