#!/usr/bin/env bash
# A MySQL host that accepts TCP but never answers (a hung server, a
# half-dead load balancer) must fail within connect_timeout, and a cancel
# while connecting must return at once.  Ports refuse at once on loopback,
# so the silent host is a listener that accepts and never speaks.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

HOLE_PORT=$((MYSQL_PORT + 93))
check_port_free "$HOLE_PORT" HOLE_PORT
perl -MIO::Socket::INET -e '
	my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[0],
	                              Listen => 16, ReuseAddr => 1) or die "listen: $!";
	my @held;
	local $SIG{ALRM} = sub { exit 0 };
	alarm 120;			# never outlive the test
	while (my $c = $s->accept) { push @held, $c }' "$HOLE_PORT" &
HOLE_PID=$!
trap 'kill "$HOLE_PID" 2>/dev/null || true; pg_psql -qc "DROP DATABASE IF EXISTS t_connect_timeout" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 50); do port_in_use "$HOLE_PORT" && break; sleep 0.1; done

pg_psql -qc "DROP DATABASE IF EXISTS t_connect_timeout" -c "CREATE DATABASE t_connect_timeout"
db() { pg_psql -d t_connect_timeout "$@"; }
db -q <<SQL
CREATE EXTENSION etl_stream;
CREATE SERVER hole FOREIGN DATA WRAPPER etl_stream
  OPTIONS (host '127.0.0.1', port '$HOLE_PORT', connect_timeout '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER hole OPTIONS (user 'etl', password 'secret');
SQL

# connect_timeout covers the whole connect, handshake included
start=$(date +%s%N)
out=$(db -Atc "SELECT * FROM etl_stream.ping('hole')" 2>&1 || true)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "# ping took ${ms} ms: $out"
tap_ok "a silent host fails with the connect_timeout message" \
	grep -q "could not connect to MySQL server \"hole\" at 127.0.0.1:$HOLE_PORT" <<<"$out"
tap_ok "the detail names connect_timeout" grep -q "within connect_timeout (2 s)" <<<"$out"
tap_ok "it fails after 2 s and before 4 s (took ${ms} ms)" test "$ms" -ge 1900 -a "$ms" -lt 4000

# cancel while waiting for the handshake: raise connect_timeout so only the
# cancel can end the wait
db -qc "ALTER SERVER hole OPTIONS (SET connect_timeout '60')"
db -Atc "SELECT * FROM etl_stream.ping('hole')" >"$ETL_WORK/connect_cancel.out" 2>&1 &
PSQL_PID=$!
for _ in $(seq 50); do
	n=$(pg_psql -Atc "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%ping(''hole'')%' AND pid <> pg_backend_pid()")
	[ "$n" -gt 0 ] && break
	sleep 0.1
done
sleep 0.3
start=$(date +%s%N)
pg_psql -Atc "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%ping(''hole'')%' AND pid <> pg_backend_pid()" >/dev/null
wait "$PSQL_PID" || true
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "# cancel returned after ${ms} ms: $(cat "$ETL_WORK/connect_cancel.out")"
tap_ok "a cancel during connect is honoured" grep -q "canceling statement due to user request" "$ETL_WORK/connect_cancel.out"
tap_ok "a cancel during connect returns within a second (took ${ms} ms)" test "$ms" -lt 1000
