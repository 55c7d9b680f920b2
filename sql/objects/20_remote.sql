--
-- Remote access: statements on a source, its result's metadata, and landing
-- a remote query's rows into a table by the bulk path.  The C functions
-- are in src/query.c and src/land.c.
--

CREATE OR REPLACE FUNCTION etl_stream.query(server name, sql text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'etl_stream_query'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION etl_stream.query(name, text) IS
  'run a query on a MySQL server and stream its rows; needs a column definition list';

CREATE OR REPLACE FUNCTION etl_stream.execute(server name, sql text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_stream_execute'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION etl_stream.execute(name, text) IS
  'run a statement on a MySQL server; returns the rows it affected or returned';

CREATE OR REPLACE FUNCTION etl_stream.ping(server name,
                                OUT version text,
                                OUT rtt_ms double precision)
RETURNS record
AS 'MODULE_PATHNAME', 'etl_stream_ping'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION etl_stream.ping(name) IS
  'connect to a MySQL server (or reuse the connection) and time a round trip';

CREATE OR REPLACE FUNCTION etl_stream.disconnect(server name DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'etl_stream_disconnect'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION etl_stream.disconnect(name) IS
  'close this session''s cached connections to a server, or to all servers';

CREATE OR REPLACE FUNCTION etl_stream.describe(server name, sql text,
                                    OUT "position" integer, OUT name text,
                                    OUT mysql_type text, OUT natural_type text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'etl_stream_describe'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION etl_stream.describe(name, text) IS
  'columns of a remote query''s result, their MySQL types and natural PostgreSQL types';

CREATE OR REPLACE FUNCTION etl_stream.land(server name, sql text, target regclass,
                                key_columns text[] DEFAULT NULL,
                                label text DEFAULT NULL,
                                progress_for regclass DEFAULT NULL,
                                OUT rows_pulled bigint, OUT rows_landed bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'etl_stream_land'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION etl_stream.land(name, text, regclass, text[], text, regclass) IS
  'stream a remote query into a plain table by the bulk-insert path, with its indexes and constraints';

CREATE OR REPLACE FUNCTION etl_stream._land_refusal(target regclass) RETURNS text
AS 'MODULE_PATHNAME', 'etl_stream_land_refusal'
LANGUAGE C STABLE STRICT;

COMMENT ON FUNCTION etl_stream._land_refusal(regclass) IS
  'why etl_stream.land() would refuse the table, or NULL';

