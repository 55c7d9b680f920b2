#!/usr/bin/env bash
# The TLS options against a MariaDB that really speaks TLS: the shared test
# server has none, so pg_regress can only show that 'required' refuses it.
# Here a private MariaDB gets certificates from a CA made on the spot, and
# each ssl_mode is judged by what the session itself reports (Ssl_cipher),
# not by whether the connect merely succeeded.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

PLAIN_PORT="$MYSQL_PORT"		# the shared server, without TLS
TLS_PORT="${TLS_PORT:-$((MYSQL_PORT + 30))}"
TLS_DIR="$ETL_WORK/tls"
TLS_MYSQL="$ETL_WORK/tls_mysql"
check_port_free "$TLS_PORT" TLS_PORT

trap 'stop_mariadb "$TLS_MYSQL"; pg_psql -qc "DROP DATABASE IF EXISTS t_tls" >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- certificates -------------------------------------------------------
# EC keys: quick to make, and both OpenSSL ends accept them.
rm -rf "$TLS_DIR" "$TLS_MYSQL"	# left by an earlier run with KEEP=1
mkdir -p "$TLS_DIR"
chmod 755 "$TLS_DIR"
newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
make_ca() {	# make_ca NAME CN
	openssl req -x509 "${newkey[@]}" -keyout "$1.key" -out "$1.pem" -days 2 \
		-subj "/CN=$2"
}
sign() {	# sign NAME CN CA EXTENSIONS
	openssl req "${newkey[@]}" -keyout "$1.key" -out "$1.csr" -subj "/CN=$2"
	printf '%s\n' "$4" >"$1.ext"
	openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial \
		-days 2 -extfile "$1.ext" -out "$1.pem"
}
(
	cd "$TLS_DIR"
	make_ca ca "etl_stream test CA"
	make_ca wrong_ca "etl_stream unrelated CA"
	sign server "etl_stream test server" ca \
		$'subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth'
	sign client "etl" ca "extendedKeyUsage = clientAuth"
	# ssl_capath wants a directory of <hash>.0 links
	mkdir -p capath
	cp ca.pem capath/
	openssl rehash capath
	# mariadbd reads its key as mysql, the backend reads the client key as postgres
	chmod 644 ./*.pem
	chmod 600 ./*.key
	chown mysql server.key
	chown postgres client.key
)

# --- a MariaDB with TLS -------------------------------------------------
# It also listens on 127.0.0.2, a name its certificate does not carry; the
# connection still comes from 127.0.0.1, so the same accounts apply.
start_mariadb "$TLS_MYSQL" "$TLS_PORT" \
	--ssl-ca="$TLS_DIR/ca.pem" --ssl-cert="$TLS_DIR/server.pem" --ssl-key="$TLS_DIR/server.key" \
	--bind-address=127.0.0.1,127.0.0.2
tap_is "$(mysql_root -N -e "SELECT @@have_ssl")" YES "the private MariaDB has TLS (have_ssl)"
# start_mariadb made etl@127.0.0.1 (ALL on shop); this one also needs a
# client certificate signed by our CA
mysql_root -e "CREATE USER 'etl_x509'@'127.0.0.1' IDENTIFIED BY 'secret' REQUIRE X509;
	GRANT ALL ON shop.* TO 'etl_x509'@'127.0.0.1';"

# --- PostgreSQL ---------------------------------------------------------
pg_psql -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS t_tls" -c "CREATE DATABASE t_tls"
db() { pg_psql -d t_tls "$@"; }
db -qc "CREATE EXTENSION etl_stream"

# server NAME HOST PORT USER [OPTION VALUE]...: a server (database shop)
# and our user mapping to USER, password secret
server() {
	local name="$1" host="$2" port="$3" user="$4" opts=""
	shift 4
	while [ "$#" -gt 0 ]; do
		opts+=", $1 '$2'"
		shift 2
	done
	db -q <<-SQL
		CREATE SERVER $name FOREIGN DATA WRAPPER etl_stream
		  OPTIONS (host '$host', port '$port', dbname 'shop'$opts);
		CREATE USER MAPPING FOR CURRENT_USER SERVER $name
		  OPTIONS (user '$user', password 'secret');
	SQL
}

# The session's Ssl_cipher: empty when it is not encrypted.
CIPHER_SQL="SELECT value FROM etl_stream.query(:'srv', 'SHOW SESSION STATUS LIKE ''Ssl_cipher''') AS t(name text, value text)"

# cipher SERVER: Ssl_cipher on a new connection to SERVER (each call is a
# new backend), or psql's error with its DETAIL
cipher() {
	db -At -v srv="$1" 2>&1 <<<"$CIPHER_SQL" || true
}
# fails SERVER: like cipher, for a connect that must fail; every such output
# goes to $ERRORS for the password check at the end
ERRORS="$TLS_DIR/errors.out"
: >"$ERRORS"
fails() {
	echo "== $1" >>"$ERRORS"
	cipher "$1" | tee -a "$ERRORS"
}
# check DESCRIPTION OUTPUT COMMAND...: tap_ok COMMAND with OUTPUT on its
# stdin, and OUTPUT as a comment
check() {
	local desc="$1" out="$2"
	shift 2
	printf '%s\n' "$out" | sed 's/^/#   /'
	tap_ok "$desc" "$@" <<<"$out"
}
# predicates for check: one cipher name and no error; a failed connect
# whose detail comes from the TLS library
is_encrypted() { grep -qxE '[A-Za-z0-9_-]+'; }
is_tls_error() {
	local out
	out=$(cat)
	grep -q '^ERROR:  could not connect to MySQL server' <<<"$out" &&
		grep -q '^DETAIL:  MySQL error 2026: TLS/SSL error: ' <<<"$out"
}

# --- the modes against a TLS server ----------------------------------------
server tls_disable 127.0.0.1 "$TLS_PORT" etl ssl_mode disable
tap_is "$(cipher tls_disable)" "" "ssl_mode 'disable' connects without TLS (Ssl_cipher empty)"

server tls_default 127.0.0.1 "$TLS_PORT" etl
check "the default ssl_mode (preferred) encrypts when the server offers TLS" \
	"$(cipher tls_default)" is_encrypted

server tls_required 127.0.0.1 "$TLS_PORT" etl ssl_mode required
check "ssl_mode 'required' encrypts" "$(cipher tls_required)" is_encrypted

server tls_identity 127.0.0.1 "$TLS_PORT" etl ssl_mode verify_identity ssl_ca "$TLS_DIR/ca.pem"
check "ssl_mode 'verify_identity' with the right ssl_ca and host 127.0.0.1 encrypts" \
	"$(cipher tls_identity)" is_encrypted

server tls_capath 127.0.0.1 "$TLS_PORT" etl ssl_mode verify_identity ssl_capath "$TLS_DIR/capath"
check "ssl_mode 'verify_identity' with the CA in ssl_capath encrypts" \
	"$(cipher tls_capath)" is_encrypted

server tls_wrong_ca 127.0.0.1 "$TLS_PORT" etl ssl_mode verify_identity ssl_ca "$TLS_DIR/wrong_ca.pem"
out=$(fails tls_wrong_ca)
check "ssl_mode 'verify_identity' with the wrong CA fails to connect" "$out" \
	grep -qx "ERROR:  could not connect to MySQL server \"tls_wrong_ca\" at 127.0.0.1:$TLS_PORT"
check "its detail is the certificate error from the TLS library" "$out" is_tls_error

server tls_no_ca 127.0.0.1 "$TLS_PORT" etl ssl_mode verify_identity
check "ssl_mode 'verify_identity' without ssl_ca fails: the system CAs do not know ours" \
	"$(fails tls_no_ca)" is_tls_error

server tls_other_name 127.0.0.2 "$TLS_PORT" etl ssl_mode verify_identity ssl_ca "$TLS_DIR/ca.pem"
check "ssl_mode 'verify_identity' refuses 127.0.0.2, a host the certificate does not name" \
	"$(fails tls_other_name)" grep -q "TLS/SSL error: Validation of SSL server certificate failed"

# verify_ca: Connector/C 3.3 has one switch, MYSQL_OPT_SSL_VERIFY_SERVER_CERT,
# and it checks the host name as well as the chain, so 'verify_ca' behaves
# exactly like 'verify_identity': it accepts our CA at 127.0.0.1 and
# refuses the same server at 127.0.0.2.
server tls_verify_ca 127.0.0.1 "$TLS_PORT" etl ssl_mode verify_ca ssl_ca "$TLS_DIR/ca.pem"
check "ssl_mode 'verify_ca' with the right CA encrypts" "$(cipher tls_verify_ca)" is_encrypted
server tls_verify_ca_other 127.0.0.2 "$TLS_PORT" etl ssl_mode verify_ca ssl_ca "$TLS_DIR/ca.pem"
check "ssl_mode 'verify_ca' checks the host name too (Connector/C 3.3): 127.0.0.2 is refused" \
	"$(fails tls_verify_ca_other)" grep -q "TLS/SSL error: Validation of SSL server certificate failed"

# A chain check without the host name is what ssl_ca gives in the other
# modes: Connector/C verifies the chain whenever it has a CA, so 'required'
# (and even 'preferred') with ssl_ca refuses a server our CA did not sign,
# but does not look at the name.
server tls_required_ca_other 127.0.0.2 "$TLS_PORT" etl ssl_mode required ssl_ca "$TLS_DIR/ca.pem"
check "ssl_mode 'required' with ssl_ca accepts the right CA at a host the certificate does not name" \
	"$(cipher tls_required_ca_other)" is_encrypted
server tls_preferred_wrong_ca 127.0.0.1 "$TLS_PORT" etl ssl_mode preferred ssl_ca "$TLS_DIR/wrong_ca.pem"
check "ssl_mode 'preferred' with the wrong ssl_ca fails rather than falling back to plain TCP" \
	"$(fails tls_preferred_wrong_ca)" is_tls_error

# --- ssl_cipher ---------------------------------------------------------------
server tls_cipher13 127.0.0.1 "$TLS_PORT" etl ssl_cipher TLS_AES_128_GCM_SHA256
tap_is "$(cipher tls_cipher13)" TLS_AES_128_GCM_SHA256 \
	"ssl_cipher picks a TLS 1.3 suite (the default would be TLS_AES_256_GCM_SHA384)"
# Connector/C gives ssl_cipher to OpenSSL as TLS 1.3 suites or, when that
# fails, as the TLS 1.2 cipher list; TLS 1.3 stays on either way, so TLS 1.2
# names alone restrict nothing against a TLS 1.3 server.
server tls_cipher12 127.0.0.1 "$TLS_PORT" etl ssl_cipher ECDHE-ECDSA-AES128-GCM-SHA256
check "ssl_cipher with only TLS 1.2 names still ends in TLS 1.3 (Connector/C 3.3)" \
	"$(cipher tls_cipher12)" grep -qx 'TLS_AES_[A-Z0-9_]*'

# --- client certificates -----------------------------------------------------
server tls_x509 127.0.0.1 "$TLS_PORT" etl_x509 ssl_mode verify_identity ssl_ca "$TLS_DIR/ca.pem"
check "an account with REQUIRE X509 is refused without a client certificate" \
	"$(fails tls_x509)" grep -q "^DETAIL:  MySQL error 1045: Access denied for user 'etl_x509'@'127.0.0.1'"
db -qc "ALTER USER MAPPING FOR CURRENT_USER SERVER tls_x509
          OPTIONS (ADD ssl_cert '$TLS_DIR/client.pem', ADD ssl_key '$TLS_DIR/client.key')"
check "with ssl_cert and ssl_key in the user mapping it connects" "$(cipher tls_x509)" is_encrypted

# The user mapping's certificate wins over the server's: here files that do
# not exist, which fail the connect whenever they are used.
server tls_x509_override 127.0.0.1 "$TLS_PORT" etl_x509 ssl_mode verify_identity \
	ssl_ca "$TLS_DIR/ca.pem" ssl_cert "$TLS_DIR/missing.pem" ssl_key "$TLS_DIR/missing.key"
check "the server's ssl_cert and ssl_key are used when the user mapping has none" \
	"$(fails tls_x509_override)" grep -q "TLS/SSL error: No such file or directory"
db -qc "ALTER USER MAPPING FOR CURRENT_USER SERVER tls_x509_override
          OPTIONS (ADD ssl_cert '$TLS_DIR/client.pem', ADD ssl_key '$TLS_DIR/client.key')"
check "the user mapping's ssl_cert and ssl_key override the server's" \
	"$(cipher tls_x509_override)" is_encrypted

# --- changing ssl_mode within a session ----------------------------------------
# The cached plain connection must not survive the ALTER: the second query
# has to come over a new, encrypted one.
out=$(db -At -v srv=tls_disable 2>&1 <<SQL || true
$CIPHER_SQL;
ALTER SERVER tls_disable OPTIONS (SET ssl_mode 'required');
SELECT 'after: ' || value FROM ($CIPHER_SQL) s;
SQL
)
plain_then_tls() {
	local lines
	lines=$(cat)
	[ "$(head -n 1 <<<"$lines")" = "" ] && grep -qxE 'after: [A-Za-z0-9_-]+' <<<"$lines"
}
check "in one session, ALTER SERVER ... SET ssl_mode 'required' reconnects with TLS" \
	"$out" plain_then_tls

# --- an idle TLS connection is reused ------------------------------------------
# Before reuse, an idle cached connection is checked with a poll() of its
# socket: anything readable means MySQL closed it.  TLS 1.3 servers send
# session tickets after the handshake; had they been left unread, every call
# would reconnect.  Three calls, a pause, two more: one connection.
out=$(db -At -v srv=tls_required 2>&1 <<SQL || true
CREATE TEMP TABLE ids AS
  SELECT * FROM etl_stream.query(:'srv', 'SELECT CONNECTION_ID()') AS t(id bigint);
INSERT INTO ids SELECT * FROM etl_stream.query(:'srv', 'SELECT CONNECTION_ID()') AS t(id bigint);
INSERT INTO ids SELECT * FROM etl_stream.query(:'srv', 'SELECT CONNECTION_ID()') AS t(id bigint);
SELECT pg_sleep(1);
INSERT INTO ids SELECT * FROM etl_stream.query(:'srv', 'SELECT CONNECTION_ID()') AS t(id bigint);
INSERT INTO ids SELECT * FROM etl_stream.query(:'srv', 'SELECT CONNECTION_ID()') AS t(id bigint);
SELECT 'connections: ' || count(DISTINCT id) || ' of ' || count(*) FROM ids;
SQL
)
check "an idle TLS connection is reused, not re-made (one MySQL connection for five calls)" \
	"$out" grep -qxF 'connections: 1 of 5'

# --- the shared server has no TLS -------------------------------------------
server plain_required 127.0.0.1 "$PLAIN_PORT" etl ssl_mode required
check "ssl_mode 'required' refuses the shared server, which has no TLS" "$(fails plain_required)" \
	grep -qxF 'DETAIL:  ssl_mode is "required", but the server does not support TLS.'

# --- no secrets in errors --------------------------------------------------------
# (and there were errors to look at: each failing check added one)
n=$(grep -c '^== ' "$ERRORS" || true)
n_err=$(grep -c '^ERROR:  could not connect' "$ERRORS" || true)
n_secret=$(grep -ci secret "$ERRORS" || true)
echo "# $n_err connect errors from $n failing connects; lines with 'secret': $n_secret"
tap_ok "no connect error shows the password ($n_err errors checked)" \
	test "$n_err" -gt 0 -a "$n_err" -eq "$n" -a "$n_secret" -eq 0
