#!/usr/bin/env bash
# The unix_socket borrow: MariaDB authenticates a Unix-socket client as the
# OS user it runs as, whatever password it sends.  PostgreSQL runs as OS
# user postgres, so with a MariaDB account 'postgres'@'localhost'
# IDENTIFIED VIA unix_socket, a mapping (user 'postgres', password
# 'anything') on a socket server would give any role that session.  A
# superuser may (and does get it: the borrow is real); a non-superuser is
# refused, through unix_socket or host 'localhost', unless a superuser set
# password_required 'false' on the mapping, which the role cannot set
# itself; over TCP the role still connects with its password.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DB=t_unix_socket
ROLE=t_sock_user
cleanup() {
	local -
	set +e
	pg_psql -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	pg_psql -qc "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1
	mysql_root -e "DROP USER IF EXISTS 'postgres'@'localhost'" >/dev/null 2>&1
}
trap cleanup EXIT
cleanup
db() { pg_psql -d "$DB" "$@"; }
as_role() { "$PG_BIN/psql" -X -h 127.0.0.1 -p "$PGPORT" -U $ROLE -d "$DB" -v VERBOSITY=verbose "$@" 2>&1 || true; }
WHO="SELECT * FROM etl_stream.query('sock', 'SELECT CURRENT_USER()') AS t(who text)"

mysql_root <<SQL
CREATE USER 'postgres'@'localhost' IDENTIFIED VIA unix_socket;
GRANT SELECT ON etl_test.* TO 'postgres'@'localhost';
SQL
tap_is "$(ps -o user= -p "$PG_PID" | tr -d ' ')" postgres "PostgreSQL runs as OS user postgres"

create_test_db $DB
pg_psql -qc "CREATE ROLE $ROLE LOGIN"
db -q <<SQL
CREATE SERVER sock FOREIGN DATA WRAPPER etl_stream OPTIONS (unix_socket '$MYSQL_SOCKET', dbname 'etl_test');
CREATE SERVER sock_localhost FOREIGN DATA WRAPPER etl_stream OPTIONS (host 'localhost', dbname 'etl_test');
CREATE USER MAPPING FOR CURRENT_USER SERVER sock OPTIONS (user 'postgres', password 'anything');
GRANT etl_stream_user TO $ROLE;
GRANT USAGE ON FOREIGN SERVER sock, sock_localhost, src TO $ROLE;
CREATE USER MAPPING FOR $ROLE SERVER sock OPTIONS (user 'postgres', password 'anything');
CREATE USER MAPPING FOR $ROLE SERVER sock_localhost OPTIONS (user 'postgres', password 'anything');
CREATE USER MAPPING FOR $ROLE SERVER src OPTIONS (user '$ETL_MYSQL_USER', password '$ETL_MYSQL_PASSWORD');
SQL

tap_is "$(db -Atc "$WHO")" "postgres@localhost" \
	"a superuser's mapping with any password gets the OS user's MariaDB session: the borrow is real"

out=$(as_role -Atc "$WHO")
echo "$out" | sed 's/^/# /'
tap_ok "a non-superuser is refused on the socket server: 42501 password is required" \
	grep -q '^ERROR:  42501: password is required' <<<"$out"
tap_ok "the detail names the server, the socket and unix_socket" \
	grep -q "Non-superusers cannot connect to server \"sock\" through a Unix socket ($MYSQL_SOCKET)" <<<"$out"
tap_ok "the hint says what to do" grep -q "or have a superuser set password_required 'false'" <<<"$out"
out=$(as_role -Atc "SELECT * FROM etl_stream.ping('sock_localhost')")
tap_ok "host 'localhost' (a socket to Connector/C) is refused likewise" \
	grep -q 'Non-superusers cannot connect to server "sock_localhost" through a Unix socket' <<<"$out"
out=$(as_role -Atc "SELECT count(*) FROM etl_stream.query('sock', 'SELECT 1') AS t(x int)" -c "SELECT 'still here'")
tap_ok "every call is refused, not only the first" bash -c "grep -q 'password is required' <<<\"\$1\" && grep -q 'still here' <<<\"\$1\"" _ "$out"

out=$(as_role -Atc "ALTER USER MAPPING FOR $ROLE SERVER sock OPTIONS (ADD password_required 'false')")
echo "# $out"
tap_ok "the role cannot waive the check on its own mapping" grep -q 'password_required=false is superuser-only' <<<"$out"
tap_is "$(as_role -Atc "SELECT count(*) FROM etl_stream.query('src', 'SELECT CURRENT_USER()') AS t(who text)")" 1 \
	"over TCP the role connects with its own password"

db -qc "ALTER USER MAPPING FOR $ROLE SERVER sock OPTIONS (ADD password_required 'false')"
tap_is "$(as_role -Atc "$WHO")" "postgres@localhost" \
	"with password_required 'false' set by a superuser, the role may use the socket"
