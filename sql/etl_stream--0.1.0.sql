/* etl_stream--0.1.0.sql: the first release's objects */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION etl_stream" to load this file. \quit

-- Who may reach a source is decided by USAGE on its foreign server and by
-- the user mappings, as with postgres_fdw; the schema itself is open.
GRANT USAGE ON SCHEMA etl_stream TO PUBLIC;

--
-- MySQL sources are foreign servers of this wrapper; credentials live in
-- user mappings.  The wrapper has no handler: it only validates options.
--
CREATE FUNCTION etl_stream.fdw_validator(options text[], catalog oid)
RETURNS void
AS 'MODULE_PATHNAME', 'etl_stream_fdw_validator'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER etl_stream
  VALIDATOR etl_stream.fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER etl_stream IS
  'MySQL/MariaDB sources for etl_stream';

--
-- Remote access
--
CREATE FUNCTION etl_stream.query(server name, sql text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'etl_stream_query'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION etl_stream.query(name, text) IS
  'run a query on a MySQL server and stream its rows; needs a column definition list';

CREATE FUNCTION etl_stream.execute(server name, sql text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_stream_execute'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION etl_stream.execute(name, text) IS
  'run a statement on a MySQL server; returns the rows it affected or returned';

CREATE FUNCTION etl_stream.ping(server name,
                                OUT version text,
                                OUT rtt_ms double precision)
RETURNS record
AS 'MODULE_PATHNAME', 'etl_stream_ping'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION etl_stream.ping(name) IS
  'connect to a MySQL server (or reuse the connection) and time a round trip';

CREATE FUNCTION etl_stream.disconnect(server name DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'etl_stream_disconnect'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION etl_stream.disconnect(name) IS
  'close this session''s cached connections to a server, or to all servers';
