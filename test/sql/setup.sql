--
-- setup: the extension, the sources every later test uses, and a helper
-- that shows an error with the run's MySQL port masked (ports differ
-- between runs; everything else in the message is checked).
--
\getenv mysql_host MYSQL_HOST
\getenv mysql_port MYSQL_PORT
\getenv mysql_user MYSQL_USER
\getenv mysql_password MYSQL_PASSWORD

CREATE EXTENSION etl_stream;
\dx etl_stream

-- dblink gives the tests a second session (cancel, kill mid-stream)
CREATE EXTENSION dblink;

-- what the extension installed
SELECT pg_describe_object(classid, objid, 0) AS object
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'etl_stream')
 ORDER BY 1;

CREATE SERVER shop FOREIGN DATA WRAPPER etl_stream
  OPTIONS (host :'mysql_host', port :'mysql_port', dbname 'shop');
CREATE USER MAPPING FOR CURRENT_USER SERVER shop
  OPTIONS (user :'mysql_user', password :'mysql_password');

CREATE SERVER etl_test FOREIGN DATA WRAPPER etl_stream
  OPTIONS (host :'mysql_host', port :'mysql_port', dbname 'etl_test');
CREATE USER MAPPING FOR CURRENT_USER SERVER etl_test
  OPTIONS (user :'mysql_user', password :'mysql_password');

-- later tests read the port from here to mask it
ALTER DATABASE :"DBNAME" SET etl_test.mysql_port = :'mysql_port';

CREATE FUNCTION public.show_error(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	state text;
	msg text;
	detail text;
BEGIN
	EXECUTE sql;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE,
		msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
	RETURN replace(format('%s: %s%s', state, msg,
						  CASE WHEN detail <> '' THEN E'\nDETAIL: ' || detail END),
				   ':' || current_setting('etl_test.mysql_port'), ':<port>');
END
$$;

SELECT version ~ 'MariaDB' AS is_mariadb, rtt_ms >= 0 AS has_rtt
  FROM etl_stream.ping('shop');
