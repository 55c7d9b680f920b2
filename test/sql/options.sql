--
-- options: the wrapper's validator accepts what a connection uses and
-- rejects anything else with the list of what is valid.
--

-- unknown options name the valid ones for their context
CREATE SERVER bad FOREIGN DATA WRAPPER etl_stream OPTIONS (hostname 'x');
CREATE SERVER bad FOREIGN DATA WRAPPER etl_stream OPTIONS (user 'etl');
CREATE USER MAPPING FOR PUBLIC SERVER shop OPTIONS (host 'x');
ALTER USER MAPPING FOR CURRENT_USER SERVER shop OPTIONS (ADD dbname 'x');
ALTER FOREIGN DATA WRAPPER etl_stream OPTIONS (ADD host 'x');

-- malformed values
CREATE SERVER bad FOREIGN DATA WRAPPER etl_stream OPTIONS (port 'x');
CREATE SERVER bad FOREIGN DATA WRAPPER etl_stream OPTIONS (port '0');
CREATE SERVER bad FOREIGN DATA WRAPPER etl_stream OPTIONS (port '65536');
CREATE SERVER bad FOREIGN DATA WRAPPER etl_stream OPTIONS (port '3306 ');
CREATE SERVER bad FOREIGN DATA WRAPPER etl_stream OPTIONS (connect_timeout '0');
CREATE SERVER bad FOREIGN DATA WRAPPER etl_stream OPTIONS (read_timeout '-1');
CREATE SERVER bad FOREIGN DATA WRAPPER etl_stream OPTIONS (write_timeout 'soon');
CREATE SERVER bad FOREIGN DATA WRAPPER etl_stream OPTIONS (ssl_mode 'on');
CREATE SERVER bad FOREIGN DATA WRAPPER etl_stream OPTIONS (charset 'utf16');
CREATE SERVER bad FOREIGN DATA WRAPPER etl_stream OPTIONS (invalid_dates 'zero');
CREATE SERVER bad FOREIGN DATA WRAPPER etl_stream OPTIONS (host '');
CREATE SERVER bad FOREIGN DATA WRAPPER etl_stream OPTIONS (unix_socket '');

-- every valid option at once
CREATE SERVER good FOREIGN DATA WRAPPER etl_stream OPTIONS (
  host 'db.example', port '3307', dbname 'shop', unix_socket '/run/mysqld/mysqld.sock',
  connect_timeout '5', read_timeout '600', write_timeout '60',
  ssl_mode 'verify_identity', ssl_ca '/etc/ssl/ca.pem', ssl_capath '/etc/ssl/certs',
  ssl_cert '/etc/ssl/client.pem', ssl_key '/etc/ssl/client.key', ssl_cipher 'ECDHE-RSA-AES256-GCM-SHA384',
  charset 'latin1', init_command 'SET SESSION sql_mode = ''''', invalid_dates 'error');
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (
  user 'etl', password 'secret', ssl_cert '/home/etl/cert.pem', ssl_key '/home/etl/key.pem');
SELECT srvname, srvoptions FROM pg_foreign_server WHERE srvname = 'good';

-- ALTER is validated too
ALTER SERVER good OPTIONS (SET port 'x');
ALTER SERVER good OPTIONS (SET ssl_mode 'disable', DROP unix_socket);
-- character set names are case-insensitive, like MySQL's
ALTER SERVER good OPTIONS (SET charset 'UTF8MB4');

-- only servers of this wrapper can be used
CREATE FOREIGN DATA WRAPPER other_fdw;
CREATE SERVER other FOREIGN DATA WRAPPER other_fdw;
SELECT * FROM etl_stream.ping('other');
SELECT * FROM etl_stream.ping('no_such_server');
DROP SERVER other;
DROP FOREIGN DATA WRAPPER other_fdw;

-- the password never shows: not in the catalog views a non-superuser can
-- read, not in error messages
CREATE ROLE etl_reader LOGIN;
GRANT USAGE ON FOREIGN SERVER good TO etl_reader;
SET ROLE etl_reader;
SELECT srvname, umoptions FROM pg_user_mappings WHERE srvname = 'good';
-- etl_stream is for the members of etl_stream_user, not PUBLIC
SELECT * FROM etl_stream.ping('good');
RESET ROLE;
GRANT etl_stream_user TO etl_reader;
SET ROLE etl_reader;
-- a non-superuser without a user mapping, then without a password
SELECT * FROM etl_stream.ping('good');
RESET ROLE;
CREATE USER MAPPING FOR etl_reader SERVER good OPTIONS (user 'etl');
SET ROLE etl_reader;
SELECT * FROM etl_stream.ping('good');
-- and without USAGE on the server
SELECT * FROM etl_stream.ping('shop');
RESET ROLE;
-- password_required 'false' (the password checks waived) is a superuser's
-- to write, as in postgres_fdw; its value is a boolean
SET ROLE etl_reader;
ALTER USER MAPPING FOR etl_reader SERVER good OPTIONS (ADD password 'secret', password_required 'false');
ALTER USER MAPPING FOR etl_reader SERVER good OPTIONS (ADD password_required 'true');
RESET ROLE;
ALTER USER MAPPING FOR etl_reader SERVER good OPTIONS (SET password_required 'maybe');
ALTER USER MAPPING FOR etl_reader SERVER good OPTIONS (SET password_required 'false');
-- and once set, only a superuser may alter the mapping
SET ROLE etl_reader;
ALTER USER MAPPING FOR etl_reader SERVER good OPTIONS (ADD password 'other');
RESET ROLE;

DROP SERVER good CASCADE;
REVOKE etl_stream_user FROM etl_reader;
DROP ROLE etl_reader;
