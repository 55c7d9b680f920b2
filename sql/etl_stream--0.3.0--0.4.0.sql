/* etl_stream--0.3.0--0.4.0.sql: the upgrade to 0.4.0, as shipped (built from sql/objects and sql/upgrade at bfcf1a0) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION etl_stream UPDATE TO '0.4.0'" to load this file. \quit

-- ==== sql/upgrade/0.3.0--0.4.0.sql

--
-- 0.3.0 -> 0.4.0, before the new catalog and the functions and views:
-- schedules with pg_cron, retries with backoff, run timeouts.
--

ALTER TABLE etl_stream.tables
    ADD COLUMN retries integer NOT NULL DEFAULT 3 CHECK (retries BETWEEN 0 AND 100),
    ADD COLUMN retry_backoff interval NOT NULL DEFAULT '30 s' CHECK (retry_backoff > '0'),
    ADD COLUMN timeout interval CHECK (timeout > '0');

ALTER TABLE etl_stream.runs
    DROP CONSTRAINT runs_status_check,
    ADD CONSTRAINT runs_status_check
        CHECK (status IN ('success', 'failed', 'skipped', 'timed_out'));

-- functions whose arguments change: CREATE OR REPLACE cannot do that
DROP FUNCTION etl_stream.add_table(text, name, text, text, anyelement, text, text[], text[],
                                   name, name, text, boolean, text[]);
DROP FUNCTION etl_stream.alter_table(text, anyelement, text, boolean, text, text[]);
-- the status view gains columns before its last ones
DROP VIEW etl_stream.status;

-- ==== sql/objects/12_catalog_schedules.sql

--
-- Schedules (added in 0.4.0): a named pg_cron job that syncs a set of
-- tables (NULL: every enabled one) in dependency order, with retries.  The
-- pg_cron job is found by its name, etl_stream.<name>, and its owner, so
-- that a dump and restore of both extensions (pg_cron dumps cron.job)
-- leaves them joined whatever job id the restore gives.
--
-- A role sees and changes only its own schedules (row level security, as
-- for jobs); pg_cron runs the schedule as its owner.
--
CREATE TABLE etl_stream.schedule_defs (
    name            text PRIMARY KEY
                    CHECK (name ~ '^[A-Za-z0-9_.-]{1,48}$'),
    cron            text NOT NULL,
    tables          text[],             -- NULL: every enabled table when it runs
    parallel        integer NOT NULL DEFAULT 1 CHECK (parallel >= 1),
    owner           name NOT NULL DEFAULT current_user,
    created_at      timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('etl_stream.schedule_defs', '');

ALTER TABLE etl_stream.schedule_defs ENABLE ROW LEVEL SECURITY;
CREATE POLICY schedules_of_owner ON etl_stream.schedule_defs
    USING (owner IN (SELECT r.rolname FROM pg_catalog.pg_roles r
                      WHERE pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')));
GRANT SELECT, INSERT, UPDATE, DELETE ON etl_stream.schedule_defs TO PUBLIC;

-- ==== sql/objects/05_vocabulary.sql

--
-- The words the catalog and the code share: the strategies, and the kinds
-- of watermark with everything that differs between them.  Each list is
-- written here once; the catalog's CHECK constraints, the registration and
-- the watermark arithmetic all read it.
--

CREATE OR REPLACE FUNCTION etl_stream._strategies() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['merge', 'delete_insert', 'append', 'full_refresh'];

-- The SQLSTATEs of failures worth another attempt: the connection lost,
-- refused or never made (MySQL 2002, 2003, 2006, 2013 and read timeouts),
-- too many connections (1040), a lock wait timeout (1205, and PostgreSQL's
-- lock_not_available), a deadlock (1213, and PostgreSQL's), a server gone
-- read-only in a failover (1290, 1836), and a serialization failure.
-- src/connection.c gives MySQL's errors these SQLSTATEs.  Never a value
-- that does not convert, a constraint, or a permission.
CREATE OR REPLACE FUNCTION etl_stream._transient_sqlstates() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['08000', '08001', '08003', '08006', '53300', '55P03', '40P01', '40001', '25006'];

-- One row per kind of watermark.  The expressions take the value's text as
-- $1 and are run by _wm_apply() with DateStyle and IntervalStyle pinned:
--   canonical      the text stored in the catalog and shown in runs
--   pg_literal     a PostgreSQL constant of the column's type (prunable)
--   mysql_literal  the same value as a MySQL constant (TIMESTAMP is UTC)
--   lag            how far behind now the value is, or NULL
-- column_pattern matches format_type() of the columns that can be one.
CREATE OR REPLACE FUNCTION etl_stream._watermark_kinds(
    OUT kind text, OUT sql_type text, OUT lookback_type text, OUT column_pattern text,
    OUT canonical text, OUT pg_literal text, OUT mysql_literal text, OUT lag text)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
VALUES
  ('integer', 'numeric', 'numeric',
   '^(smallint|integer|bigint|numeric\(\d+,0\))$',
   '$1::numeric::text',
   '$1::numeric::text',
   '$1::numeric::text',
   -- integers are a lag only when they look like unix seconds (2000..2100)
   'CASE WHEN $1::numeric BETWEEN 946684800 AND 4102444800
         THEN now() - to_timestamp($1::double precision) END'),
  ('timestamp', 'timestamp', 'interval',
   '^timestamp(\(\d\))? without time zone$',
   $e$to_char($1::timestamp, 'YYYY-MM-DD HH24:MI:SS.US')$e$,
   $e$quote_literal($1::timestamp) || '::timestamp'$e$,
   $e$quote_literal(to_char($1::timestamp, 'YYYY-MM-DD HH24:MI:SS.US'))$e$,
   'localtimestamp - $1::timestamp'),
  ('timestamptz', 'timestamptz', 'interval',
   '^timestamp(\(\d\))? with time zone$',
   $e$to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'$e$,
   $e$quote_literal($1::timestamptz) || '::timestamptz'$e$,
   $e$quote_literal(to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'))$e$,
   'now() - $1::timestamptz'),
  ('date', 'date', 'interval',
   '^date$',
   $e$to_char($1::date, 'YYYY-MM-DD')$e$,
   $e$quote_literal($1::date) || '::date'$e$,
   $e$quote_literal(to_char($1::date, 'YYYY-MM-DD'))$e$,
   'make_interval(days => current_date - $1::date)')
$$;

CREATE OR REPLACE FUNCTION etl_stream._is_watermark_kind(name text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN EXISTS (SELECT FROM etl_stream._watermark_kinds() k WHERE k.kind = name);

-- ==== sql/objects/20_remote.sql

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


-- ==== sql/objects/30_names.sql

--
-- Names: quoting for MySQL, and the one place each name a registration
-- implies is spelled (the source table, the target, the staging table).
--

-- MySQL identifiers in backticks, strings as literals that do not depend
-- on the session's sql_mode (NO_BACKSLASH_ESCAPES).
CREATE OR REPLACE FUNCTION etl_stream.mysql_ident(name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN '`' || replace(name, '`', '``') || '`';

CREATE OR REPLACE FUNCTION etl_stream.mysql_literal(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN value ~ '[\\''"]' OR value ~ '[^ -~]'
            THEN 'CONVERT(X''' || encode(convert_to(value, 'UTF8'), 'hex') || ''' USING utf8mb4)'
            ELSE '''' || value || '''' END;

-- The MySQL table as it is named in queries
CREATE OR REPLACE FUNCTION etl_stream._source_name(t etl_stream.tables) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN t.source_schema IS NULL THEN ''
                ELSE etl_stream.mysql_ident(t.source_schema) || '.' END
           || etl_stream.mysql_ident(t.source_table)
$$;

-- The target, qualified and quoted for PostgreSQL
CREATE OR REPLACE FUNCTION etl_stream._target_name(t etl_stream.tables) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT format('%I.%I', t.target_schema, t.target_table)
$$;

-- The table's staging table (registration names fit in an identifier)
CREATE OR REPLACE FUNCTION etl_stream._staging_name(t etl_stream.tables) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT format('etl_stream_staging.%I', t.name)
$$;

CREATE OR REPLACE FUNCTION etl_stream._get(table_name text) RETURNS etl_stream.tables
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t etl_stream.tables;
BEGIN
    SELECT * INTO t FROM etl_stream.tables WHERE name = table_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'etl_stream table "%" does not exist', table_name
            USING ERRCODE = 'undefined_object',
                  HINT = 'Registered tables are listed in etl_stream.tables.';
    END IF;
    RETURN t;
END
$$;

-- ==== sql/objects/40_watermark.sql

--
-- Watermark arithmetic.  Watermarks and look-backs are kept as text; what
-- a value of each kind means is in etl_stream._watermark_kinds(), and
-- _wm_apply() runs its expressions with DateStyle and IntervalStyle pinned,
-- so a session's settings (DMY dates, say) never change what a stored value
-- means.
--

CREATE OR REPLACE FUNCTION etl_stream._wm_apply(expr text, value text, arg text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    result text;
BEGIN
    IF expr IS NULL OR value IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT (' || expr || ')::text' INTO result USING value, arg;
    RETURN result;
END
$$;

-- The canonical text of a watermark value
CREATE OR REPLACE FUNCTION etl_stream._canonical(t etl_stream.tables, value text) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT etl_stream._wm_apply((SELECT k.canonical FROM etl_stream._watermark_kinds() k
                                  WHERE k.kind = t.watermark_kind), value)
$$;

-- A value of the watermark's type as a PostgreSQL constant (prunable)
CREATE OR REPLACE FUNCTION etl_stream._typed_literal(t etl_stream.tables, value text) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT etl_stream._wm_apply((SELECT k.pg_literal FROM etl_stream._watermark_kinds() k
                                  WHERE k.kind = t.watermark_kind), value)
$$;

-- The same value as a MySQL constant (TIMESTAMP values are read in UTC)
CREATE OR REPLACE FUNCTION etl_stream._mysql_value(t etl_stream.tables, value text) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT etl_stream._wm_apply((SELECT k.mysql_literal FROM etl_stream._watermark_kinds() k
                                  WHERE k.kind = t.watermark_kind), value)
$$;

-- The cutoff of the next run: last high watermark minus the look-back,
-- computed now, as canonical text.  NULL: pull everything.
CREATE OR REPLACE FUNCTION etl_stream._cutoff(t etl_stream.tables) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN t.strategy <> 'full_refresh' THEN
        etl_stream._canonical(t, etl_stream._wm_apply(
            (SELECT format('$1::%s - $2::%s', k.sql_type, k.lookback_type)
               FROM etl_stream._watermark_kinds() k WHERE k.kind = t.watermark_kind),
            t.high_watermark, t.lookback)) END
$$;

-- The later of two watermark values (either may be NULL)
CREATE OR REPLACE FUNCTION etl_stream._later(t etl_stream.tables, a text, b text) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT etl_stream._canonical(t, CASE WHEN a IS NULL OR b IS NULL THEN coalesce(a, b) ELSE
        etl_stream._wm_apply((SELECT format('greatest($1::%1$s, $2::%1$s)', k.sql_type)
                                FROM etl_stream._watermark_kinds() k WHERE k.kind = t.watermark_kind),
                             a, b) END)
$$;

-- How far behind now a watermark value is, where that means something
CREATE OR REPLACE FUNCTION etl_stream._watermark_lag(kind text, value text) RETURNS interval
LANGUAGE sql STABLE
RETURN etl_stream._wm_apply((SELECT k.lag FROM etl_stream._watermark_kinds() k
                              WHERE k.kind = _watermark_lag.kind), value)::interval;

-- A look-back in the watermark's units: a number for integer watermarks,
-- an interval for time ones (a number there means seconds).
CREATE OR REPLACE FUNCTION etl_stream._normalize_lookback(kind text, value text, value_type text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    units text := (SELECT k.lookback_type FROM etl_stream._watermark_kinds() k WHERE k.kind = $1);
    is_number boolean := value_type IN ('smallint', 'integer', 'bigint', 'numeric',
                                        'real', 'double precision');
BEGIN
    IF value IS NULL OR units IS NULL THEN
        RETURN '0';             -- no watermark: nothing to look back on
    ELSIF units = 'numeric' THEN
        IF NOT is_number OR value::numeric < 0 OR value::numeric <> trunc(value::numeric) THEN
            RAISE EXCEPTION 'invalid lookback "%" for an integer watermark', value
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Give a non-negative whole number in the watermark column''s own units, such as 1800 for half an hour of unix seconds.';
        END IF;
        RETURN value::numeric::text;
    ELSE
        IF is_number THEN
            RETURN make_interval(secs => value::double precision)::text;
        ELSIF value_type <> 'interval' THEN
            RAISE EXCEPTION 'invalid lookback of type % for a % watermark', value_type, kind
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Give an interval, such as interval ''30 minutes'', or a number of seconds.';
        ELSIF value::interval < interval '0' THEN
            RAISE EXCEPTION 'lookback must not be negative'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN value::interval::text;
    END IF;
END
$$;

-- ==== sql/objects/50_registration.sql

--
-- Registration: add_table reads a MySQL table's columns, natural types and
-- key; alter, enable, disable and drop a registration; create_target makes
-- the target from it.
--

CREATE OR REPLACE FUNCTION etl_stream._check_strategy(strategy text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF strategy <> ALL (etl_stream._strategies()) THEN
        RAISE EXCEPTION 'invalid strategy "%"', strategy
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Valid strategies are: %s.', array_to_string(etl_stream._strategies(), ', '));
    END IF;
END
$$;

--
-- The tables a table depends on (sync_all syncs it after them): each must
-- be registered, and none may lead back to the table itself.
--
CREATE OR REPLACE FUNCTION etl_stream._check_dependencies(name text, depends_on text[])
RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    missing text[];
    path text[];
BEGIN
    IF depends_on IS NULL OR depends_on = '{}' THEN
        RETURN '{}';
    END IF;
    SELECT array_agg(d) INTO missing FROM unnest(depends_on) d
     WHERE NOT EXISTS (SELECT FROM etl_stream.tables x WHERE x.name = d)
       AND d <> _check_dependencies.name;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'etl_stream table % does not exist', array_to_string(missing, ', ')
            USING ERRCODE = 'undefined_object',
                  HINT = 'A table can depend only on registered tables; register them first.';
    END IF;
    -- walk the dependencies from the new ones; reaching the table is a cycle
    WITH RECURSIVE walk(at, path) AS (
        SELECT d, ARRAY[_check_dependencies.name, d] FROM unnest(depends_on) d
        UNION ALL
        SELECT n, w.path || n
          FROM walk w
          JOIN etl_stream.tables x ON x.name = w.at
          CROSS JOIN LATERAL unnest(x.depends_on) n
         WHERE w.at <> _check_dependencies.name AND n <> ALL (w.path[2:])
    )
    SELECT w.path INTO path FROM walk w WHERE w.at = _check_dependencies.name LIMIT 1;
    IF path IS NOT NULL THEN
        RAISE EXCEPTION 'dependencies of etl_stream table "%" would form a cycle', name
            USING ERRCODE = 'invalid_object_definition',
                  DETAIL = format('%s', array_to_string(path, ' -> ')),
                  HINT = 'Remove one of the dependencies on the way.';
    END IF;
    RETURN (SELECT array_agg(DISTINCT d ORDER BY d) FROM unnest(depends_on) d);
END
$$;

--
-- add_table: register a MySQL table.  Columns, their types and the key
-- come from the source's own metadata unless given.
--
-- retries, retry_backoff and timeout, in the words of their parameters
CREATE OR REPLACE FUNCTION etl_stream._check_retry_settings(t etl_stream.tables) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF t.retries NOT BETWEEN 0 AND 100 THEN
        RAISE EXCEPTION 'retries must be between 0 and 100, not %', t.retries
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF t.retry_backoff <= interval '0' THEN
        RAISE EXCEPTION 'retry_backoff must be positive, not %', t.retry_backoff
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF t.timeout < interval '0' THEN
        RAISE EXCEPTION 'timeout must be positive, not %', t.timeout
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'alter_table(name, timeout => interval ''0'') removes a timeout.';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION etl_stream.add_table(
    name text,
    server name,
    source_table text,
    watermark text DEFAULT NULL,
    lookback anyelement DEFAULT 0,
    strategy text DEFAULT 'merge',
    key_columns text[] DEFAULT NULL,
    columns text[] DEFAULT NULL,
    target_schema name DEFAULT 'public',
    target_table name DEFAULT NULL,
    source_schema text DEFAULT NULL,
    enabled boolean DEFAULT true,
    depends_on text[] DEFAULT NULL,
    retries integer DEFAULT 3,
    retry_backoff interval DEFAULT '30 s',
    timeout interval DEFAULT NULL)
RETURNS etl_stream.tables
LANGUAGE plpgsql AS $$
DECLARE
    t etl_stream.tables;
    src text;
    where_db text;
    all_cols text[];
    all_types text[];
    wm_type text;
    missing text[];
BEGIN
    IF EXISTS (SELECT FROM etl_stream.tables x WHERE x.name = add_table.name) THEN
        RAISE EXCEPTION 'etl_stream table "%" already exists', add_table.name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Use etl_stream.alter_table to change it, or etl_stream.drop_table first.';
    END IF;
    PERFORM etl_stream._check_strategy(strategy);

    t.name := add_table.name;
    t.server := add_table.server;
    t.source_schema := add_table.source_schema;
    t.source_table := add_table.source_table;
    t.target_schema := add_table.target_schema;
    t.target_table := coalesce(add_table.target_table, add_table.name);
    t.strategy := add_table.strategy;
    t.enabled := add_table.enabled;
    t.watermark := add_table.watermark;
    src := etl_stream._source_name(t);
    where_db := CASE WHEN t.source_schema IS NULL THEN 'DATABASE()'
                     ELSE etl_stream.mysql_literal(t.source_schema) END;

    -- every column of the source, with its natural type, in table order
    SELECT array_agg(d.name ORDER BY d.position), array_agg(d.natural_type ORDER BY d.position)
      INTO all_cols, all_types
      FROM etl_stream.describe(t.server, format('SELECT * FROM %s LIMIT 0', src)) d;

    IF add_table.columns IS NULL THEN
        t.columns := all_cols;
        t.column_types := all_types;
    ELSE
        SELECT array_agg(c) INTO missing
          FROM unnest(add_table.columns) c WHERE c <> ALL (all_cols);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'column % of % not found on server "%"',
                    array_to_string(missing, ', '), src, t.server
                USING ERRCODE = 'undefined_column';
        END IF;
        t.columns := add_table.columns;
        SELECT array_agg(all_types[array_position(all_cols, c)] ORDER BY o)
          INTO t.column_types
          FROM unnest(add_table.columns) WITH ORDINALITY u(c, o);
    END IF;

    -- the key: given, or MySQL's primary key
    IF add_table.key_columns IS NOT NULL THEN
        t.key_columns := add_table.key_columns;
    ELSE
        SELECT coalesce(array_agg(k.col ORDER BY k.seq), '{}') INTO t.key_columns
          FROM etl_stream.query(t.server, format(
                 'SELECT COLUMN_NAME, SEQ_IN_INDEX FROM information_schema.STATISTICS
                   WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND INDEX_NAME = ''PRIMARY''',
                 where_db, etl_stream.mysql_literal(t.source_table)))
               AS k(col text, seq int);
        IF t.key_columns = '{}' AND t.strategy IN ('merge', 'delete_insert') THEN
            RAISE EXCEPTION 'MySQL table % has no primary key', src
                USING ERRCODE = 'invalid_table_definition',
                      HINT = 'Name the columns that identify a row with key_columns.';
        END IF;
    END IF;
    SELECT array_agg(k) INTO missing FROM unnest(t.key_columns) k WHERE k <> ALL (t.columns);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'key column % is not among the moved columns', array_to_string(missing, ', ')
            USING ERRCODE = 'invalid_column_reference';
    END IF;

    -- the watermark's kind decides the units of the look-back
    IF t.watermark IS NOT NULL THEN
        IF t.watermark <> ALL (t.columns) THEN
            RAISE EXCEPTION 'watermark column "%" is not among the moved columns', t.watermark
                USING ERRCODE = 'invalid_column_reference';
        END IF;
        wm_type := t.column_types[array_position(t.columns, t.watermark)];
        t.watermark_kind := (SELECT k.kind FROM etl_stream._watermark_kinds() k
                              WHERE wm_type ~ k.column_pattern);
        IF t.watermark_kind IS NULL THEN
            RAISE EXCEPTION 'watermark column "%" has type %, which cannot be a watermark', t.watermark, wm_type
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'Use an integer column (such as unix seconds), DATE, DATETIME or TIMESTAMP.';
        END IF;
    ELSIF t.strategy = 'merge' THEN
        RAISE EXCEPTION 'strategy "%" needs a watermark column', t.strategy
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Without one, use full_refresh or delete_insert (everything, every time) or append.';
    END IF;

    t.lookback := etl_stream._normalize_lookback(t.watermark_kind, lookback::text,
                                                 pg_typeof(lookback)::text);
    t.created_at := now();
    t.depends_on := etl_stream._check_dependencies(t.name, add_table.depends_on);
    t.retries := coalesce(add_table.retries, 3);
    t.retry_backoff := coalesce(add_table.retry_backoff, interval '30 s');
    t.timeout := nullif(add_table.timeout, interval '0');
    PERFORM etl_stream._check_retry_settings(t);
    INSERT INTO etl_stream.tables SELECT t.*;
    RETURN t;
END
$$;

CREATE OR REPLACE FUNCTION etl_stream.alter_table(
    name text,
    lookback anyelement DEFAULT NULL::integer,
    strategy text DEFAULT NULL,
    enabled boolean DEFAULT NULL,
    high_watermark text DEFAULT NULL,
    depends_on text[] DEFAULT NULL,
    retries integer DEFAULT NULL,
    retry_backoff interval DEFAULT NULL,
    timeout interval DEFAULT NULL)
RETURNS etl_stream.tables
LANGUAGE plpgsql AS $$
DECLARE
    t etl_stream.tables := etl_stream._get(name);
BEGIN
    IF strategy IS NOT NULL THEN
        PERFORM etl_stream._check_strategy(strategy);
        t.strategy := strategy;
    END IF;
    IF lookback IS NOT NULL THEN
        t.lookback := etl_stream._normalize_lookback(t.watermark_kind, lookback::text,
                                                     pg_typeof(lookback)::text);
    END IF;
    t.enabled := coalesce(enabled, t.enabled);
    IF high_watermark IS NOT NULL THEN
        -- setting it by hand replays or skips history: check its form
        PERFORM etl_stream._typed_literal(t, high_watermark);
        t.high_watermark := high_watermark;
    END IF;
    IF depends_on IS NOT NULL THEN
        t.depends_on := etl_stream._check_dependencies(t.name, depends_on);
    END IF;
    t.retries := coalesce(retries, t.retries);
    t.retry_backoff := coalesce(retry_backoff, t.retry_backoff);
    -- interval '0' removes the timeout
    IF timeout IS NOT NULL THEN
        t.timeout := nullif(timeout, interval '0');
    END IF;
    PERFORM etl_stream._check_retry_settings(t);
    UPDATE etl_stream.tables x SET strategy = t.strategy, lookback = t.lookback,
           enabled = t.enabled, high_watermark = t.high_watermark, depends_on = t.depends_on,
           retries = t.retries, retry_backoff = t.retry_backoff, timeout = t.timeout
     WHERE x.name = t.name;
    RETURN t;
END
$$;

CREATE OR REPLACE FUNCTION etl_stream.disable_table(name text) RETURNS etl_stream.tables
LANGUAGE sql
AS $$ SELECT etl_stream.alter_table(name, enabled => false) $$;

CREATE OR REPLACE FUNCTION etl_stream.enable_table(name text) RETURNS etl_stream.tables
LANGUAGE sql
AS $$ SELECT etl_stream.alter_table(name, enabled => true) $$;

CREATE OR REPLACE FUNCTION etl_stream.drop_table(name text, drop_target boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t etl_stream.tables := etl_stream._get(name);
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS %s', etl_stream._staging_name(t));
    IF drop_target THEN
        EXECUTE format('DROP TABLE IF EXISTS %s', etl_stream._target_name(t));
    END IF;
    DELETE FROM etl_stream.tables x WHERE x.name = t.name;
END
$$;

--
-- create_target: the target table from the source's definition: natural
-- types, the key as primary key, an index on the watermark.  Rows are kept
-- whole in their page while they fit (toast_tuple_target = 8160): a row
-- over PostgreSQL's 2 kB threshold is otherwise compressed column by column
-- on every write, which costs a wide table's load twice its time and, for
-- rows that do not compress much, saves no space (docs/benchmark.md);
-- compress => true keeps PostgreSQL's default.
--
CREATE OR REPLACE FUNCTION etl_stream.create_target(name text, compress boolean DEFAULT false)
RETURNS regclass
LANGUAGE plpgsql AS $$
DECLARE
    t etl_stream.tables := etl_stream._get(name);
    target text := etl_stream._target_name(t);
    cols text;
BEGIN
    SELECT string_agg(format('%I %s', c, ty), ', ' ORDER BY o) INTO cols
      FROM unnest(t.columns, t.column_types) WITH ORDINALITY u(c, ty, o);
    IF cardinality(t.key_columns) > 0 THEN
        cols := cols || format(', PRIMARY KEY (%s)',
                               (SELECT string_agg(format('%I', k), ', ') FROM unnest(t.key_columns) k));
    END IF;
    EXECUTE format('CREATE TABLE %s (%s)%s', target, cols,
                   CASE WHEN compress THEN '' ELSE ' WITH (toast_tuple_target = 8160)' END);
    IF t.watermark IS NOT NULL AND t.watermark <> ALL (t.key_columns[1:1]) THEN
        EXECUTE format('CREATE INDEX ON %s (%I)', target, t.watermark);
    END IF;
    RETURN target::regclass;
END
$$;

-- ==== sql/objects/60_plan.sql

--
-- The plan of a run: the statements it executes, with the cutoff (and an
-- optional upper bound) written in as literal constants on both sides.
--

--
-- A range is on the watermark, or, for a backfill of a table without one,
-- on its integer key (range_on).  into_table is the table merged into
-- (full_refresh's fresh one), staging_table the batch's (a task's own);
-- newer_wins keeps a target row whose watermark is newer than the batch's
-- (a backfill slice must not undo what an incremental sync merged).
--
CREATE OR REPLACE FUNCTION etl_stream._plan(t etl_stream.tables, range_from text, range_to text,
                                 into_table text DEFAULT NULL, staging_table text DEFAULT NULL,
                                 range_on text DEFAULT NULL, newer_wins boolean DEFAULT false)
RETURNS etl_stream.plan
LANGUAGE plpgsql STABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    p etl_stream.plan;
    target text := coalesce(into_table, etl_stream._target_name(t));
    staging text := coalesce(staging_table, etl_stream._staging_name(t));
    -- the column of the range, as a registration whose watermark it is
    r etl_stream.tables := t;
    remote_cols text;
    cols text;
    src_cols text;
    keys text;
    nonkey text[];
    src text;
    conds text[] := '{}';
    remote_conds text[] := '{}';
BEGIN
    IF range_on IS NOT NULL AND range_on IS DISTINCT FROM t.watermark THEN
        r.watermark := range_on;
        r.watermark_kind := 'integer';
    END IF;
    p.cutoff := coalesce(etl_stream._canonical(r, range_from),
                         CASE WHEN r.watermark IS NOT DISTINCT FROM t.watermark THEN etl_stream._cutoff(t) END);
    p.upper_bound := etl_stream._canonical(r, range_to);
    p.target := target;
    p.staging := staging;

    SELECT string_agg(etl_stream.mysql_ident(c), ', '), string_agg(format('%I', c), ', '),
           string_agg(format('s.%I', c), ', ')
      INTO remote_cols, cols, src_cols
      FROM unnest(t.columns) c;
    SELECT string_agg(format('%I', k), ', ') INTO keys FROM unnest(t.key_columns) k;
    SELECT array_agg(c) INTO nonkey FROM unnest(t.columns) c WHERE c <> ALL (t.key_columns);

    IF p.cutoff IS NOT NULL THEN
        remote_conds := remote_conds || format('%s >= %s', etl_stream.mysql_ident(r.watermark),
                                               etl_stream._mysql_value(r, p.cutoff));
        conds := conds || format('%I >= %s', r.watermark, etl_stream._typed_literal(r, p.cutoff));
    END IF;
    IF p.upper_bound IS NOT NULL THEN
        remote_conds := remote_conds || format('%s < %s', etl_stream.mysql_ident(r.watermark),
                                               etl_stream._mysql_value(r, p.upper_bound));
        conds := conds || format('%I < %s', r.watermark, etl_stream._typed_literal(r, p.upper_bound));
    END IF;
    p.remote_from := ' FROM ' || etl_stream._source_name(t);
    IF remote_conds <> '{}' THEN
        p.remote_from := p.remote_from || ' WHERE ' || array_to_string(remote_conds, ' AND ');
    END IF;
    p.remote_sql := 'SELECT ' || remote_cols || p.remote_from;

    -- the batch: one row per key, the newest by watermark (ties: the last
    -- pulled, staging being written in the order rows came).  The newest
    -- are found by sorting only the key, the watermark and the row's place,
    -- then fetched by place: sorting whole wide rows would spill to disk.
    IF cardinality(t.key_columns) > 0 THEN
        src := format('SELECT %s FROM %s s WHERE s.ctid = ANY (ARRAY('
                      'SELECT DISTINCT ON (%s) n.ctid FROM %s n ORDER BY %s%s, n.ctid DESC))',
                      src_cols, staging, keys, staging,
                      (SELECT string_agg(format('n.%I', k), ', ') FROM unnest(t.key_columns) k),
                      CASE WHEN t.watermark IS NOT NULL
                           THEN format(', n.%I DESC NULLS LAST', t.watermark) ELSE '' END);
    ELSE
        src := format('SELECT %s FROM %s s', src_cols, staging);
    END IF;

    IF t.strategy = 'merge' THEN
        p.merge_sql := format(
            'WITH batch AS (%s), '
            'written AS (INSERT INTO %s AS t (%s) SELECT * FROM batch ON CONFLICT (%s) %s RETURNING (t.xmax = 0) AS inserted) '
            'SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted), (SELECT count(*) FROM batch) FROM written',
            src, target, cols, keys,
            CASE WHEN nonkey IS NULL THEN 'DO NOTHING'
                 ELSE format('DO UPDATE SET (%s) = ROW(%s) WHERE (%s) IS DISTINCT FROM (%s)%s',
                             (SELECT string_agg(format('%I', c), ', ') FROM unnest(nonkey) c),
                             (SELECT string_agg(format('EXCLUDED.%I', c), ', ') FROM unnest(nonkey) c),
                             (SELECT string_agg(format('t.%I', c), ', ') FROM unnest(nonkey) c),
                             (SELECT string_agg(format('EXCLUDED.%I', c), ', ') FROM unnest(nonkey) c),
                             CASE WHEN newer_wins AND t.watermark IS NOT NULL
                                  THEN format(' AND (t.%1$I IS NULL OR t.%1$I <= EXCLUDED.%1$I)', t.watermark)
                                  ELSE '' END)
            END);
    ELSIF t.strategy = 'append' THEN
        p.merge_sql := format(
            'WITH batch AS (%s), written AS (INSERT INTO %s AS t (%s) SELECT * FROM batch %s RETURNING 1) '
            'SELECT count(*), 0::bigint, (SELECT count(*) FROM batch) FROM written',
            src, target, cols,
            CASE WHEN keys IS NOT NULL THEN format('ON CONFLICT (%s) DO NOTHING', keys) ELSE '' END);
    ELSE
        -- delete_insert and full_refresh: the rows of the range are replaced
        IF t.strategy = 'delete_insert' THEN
            p.delete_sql := format('DELETE FROM %s', target);
            IF conds <> '{}' THEN
                p.delete_sql := p.delete_sql || ' WHERE ' || array_to_string(conds, ' AND ');
            END IF;
        END IF;
        p.merge_sql := format(
            'WITH batch AS (%s), written AS (INSERT INTO %s (%s) SELECT * FROM batch RETURNING 1) '
            'SELECT count(*), 0::bigint, (SELECT count(*) FROM batch) FROM written',
            src, target, cols);
    END IF;
    RETURN p;
END
$$;

-- ==== sql/objects/70_staging.sql

--
-- Staging and swapping: the UNLOGGED table a batch lands in, the fresh
-- table a full_refresh loads and swaps in, and whether a run can load its
-- target directly instead.
--

-- The staging table: UNLOGGED, no indexes or constraints, the target's
-- column types; re-made only when they change.
-- A column as CREATE TABLE spells it: name, type, and its collation when
-- it is not the type's own
CREATE OR REPLACE FUNCTION etl_stream._column_def(a pg_attribute) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod))
         || CASE WHEN a.attcollation <> 0 AND a.attcollation <> y.typcollation
                 THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END
    FROM pg_type y WHERE y.oid = a.atttypid
$$;

-- (staging_table: another table to make so, such as a task's own)
CREATE OR REPLACE FUNCTION etl_stream._prepare_staging(t etl_stream.tables,
                                                      staging_table text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    target regclass := etl_stream._target_name(t)::regclass;
    staging text := coalesce(staging_table, etl_stream._staging_name(t));
    wanted text;
    have text;
    missing text[];
BEGIN
    SELECT array_agg(c) INTO missing FROM unnest(t.columns) c
     WHERE NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = target
                         AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'target table % has no column %', target, array_to_string(missing, ', ')
            USING ERRCODE = 'undefined_column',
                  HINT = 'Add the column, or register the table with the columns you want.';
    END IF;
    -- the target's types and collations: the batch's keys must be equal
    -- where the target's are (DISTINCT ON, ON CONFLICT)
    SELECT string_agg(etl_stream._column_def(a), ', ' ORDER BY o)
      INTO wanted
      FROM unnest(t.columns) WITH ORDINALITY u(c, o)
      JOIN pg_attribute a ON a.attrelid = target AND a.attname = c AND NOT a.attisdropped;
    SELECT string_agg(etl_stream._column_def(a), ', ' ORDER BY a.attnum)
      INTO have
      FROM pg_attribute a
     WHERE a.attrelid = to_regclass(staging) AND a.attnum > 0 AND NOT a.attisdropped;
    IF have IS DISTINCT FROM wanted OR
       NOT coalesce((SELECT reloptions FROM pg_class WHERE oid = to_regclass(staging)) @> '{toast_tuple_target=8160}', false) THEN
        IF have IS NOT NULL THEN
            EXECUTE format('DROP TABLE %s', staging);
        END IF;
        -- Staging is written once and read once: a row is kept whole in its
        -- page while it fits, and no value is compressed, which would cost
        -- more than the write (docs/benchmark.md)
        EXECUTE format('CREATE UNLOGGED TABLE %s (%s) WITH (autovacuum_enabled = off, toast_tuple_target = 8160)',
                       staging, wanted);
        SELECT string_agg(format('ALTER COLUMN %I SET STORAGE EXTERNAL', a.attname), ', ')
          INTO have
          FROM pg_attribute a
         WHERE a.attrelid = staging::regclass AND a.attnum > 0 AND a.attstorage IN ('x', 'm');
        IF have IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %s %s', staging, have);
        END IF;
    ELSE
        EXECUTE format('TRUNCATE %s', staging);
    END IF;
END
$$;

--
-- full_refresh: the batch is loaded into a fresh table without indexes; the
-- target's constraints and indexes are built on it after the load, then it
-- replaces the target under the target's name, owner and grants, in the
-- run's transaction.  Readers see the old rows until it commits, then the
-- new ones: never an empty or half-loaded table.
--
CREATE OR REPLACE FUNCTION etl_stream._fresh_table(t etl_stream.tables) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    target regclass := etl_stream._target_name(t)::regclass;
    fresh text := format('%I.%I', t.target_schema, left(t.target_table, 50) || '_etl_fresh');
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = target) <> 'r' THEN
        RAISE EXCEPTION 'full_refresh needs a plain table, and % is not one', target
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF to_regclass(fresh) IS NOT NULL THEN
        EXECUTE format('DROP TABLE %s', fresh);     -- left by a crashed run
    END IF;
    EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING ALL EXCLUDING INDEXES)', fresh, target);
    RETURN fresh;
END
$$;

-- A relation name free in the schema, for an index built before the swap
CREATE OR REPLACE FUNCTION etl_stream._unused_name(schema name, base name) RETURNS name
LANGUAGE plpgsql AS $$
DECLARE
    candidate name;
BEGIN
    FOR n IN 1..1000 LOOP
        candidate := left(base, 50) || '_etl' || n;
        IF NOT EXISTS (SELECT FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
                        WHERE s.nspname = schema AND c.relname = candidate) THEN
            RETURN candidate;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'no free name for a copy of "%" in schema "%"', base, schema;
END
$$;

CREATE OR REPLACE FUNCTION etl_stream._swap_in(t etl_stream.tables, fresh text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    target_name text := etl_stream._target_name(t);
    target regclass := target_name::regclass;
    owner name;
    i record;
    tmp text;
    renames text[] := '{}';
BEGIN
    IF EXISTS (SELECT FROM pg_depend d JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                WHERE d.refobjid = target AND r.ev_class <> target) THEN
        RAISE EXCEPTION 'cannot replace % because views depend on it', target
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'full_refresh swaps in a new table; use delete_insert or merge for targets with views.';
    END IF;
    -- constraints with indexes, then the other indexes, built after the load
    FOR i IN SELECT c.conname, pg_get_constraintdef(c.oid) AS def
               FROM pg_constraint c
              WHERE c.conrelid = target AND c.contype IN ('p', 'u', 'x')
    LOOP
        tmp := etl_stream._unused_name(t.target_schema, i.conname);
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', fresh, tmp, i.def);
        renames := renames || format('ALTER TABLE %s RENAME CONSTRAINT %I TO %I', target_name, tmp, i.conname);
    END LOOP;
    FOR i IN SELECT c.relname, pg_get_indexdef(x.indexrelid) AS def
               FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
              WHERE x.indrelid = target
                AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = x.indexrelid AND k.conrelid = target)
    LOOP
        tmp := etl_stream._unused_name(t.target_schema, i.relname);
        EXECUTE replace(i.def, format(' INDEX %I ON %s ', i.relname, target_name),
                        format(' INDEX %I ON %s ', tmp, fresh));
        renames := renames || format('ALTER INDEX %I.%I RENAME TO %I', t.target_schema, tmp, i.relname);
    END LOOP;

    SELECT r.rolname INTO owner FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE c.oid = target;
    EXECUTE format('ALTER TABLE %s OWNER TO %I', fresh, owner);
    FOR i IN SELECT g.grantee, g.privilege_type, g.is_grantable
               FROM pg_class c, aclexplode(c.relacl) g
              WHERE c.oid = target AND g.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT %s ON %s TO %s%s', i.privilege_type, fresh,
                       CASE WHEN i.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(i.grantee)) END,
                       CASE WHEN i.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;

    EXECUTE format('DROP TABLE %s', target_name);
    EXECUTE format('ALTER TABLE %s RENAME TO %I', fresh, t.target_table);
    FOR i IN SELECT unnest(renames) AS sql LOOP
        EXECUTE i.sql;
    END LOOP;
END
$$;

-- The highest watermark of the batch just landed, as text: in staging, or
-- in the table it was loaded into directly (which was empty before)
CREATE OR REPLACE FUNCTION etl_stream._batch_watermark(t etl_stream.tables, landed_in text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    result text;
BEGIN
    EXECUTE format('SELECT max(%I)::text FROM %s', t.watermark,
                   coalesce(landed_in, etl_stream._staging_name(t)))
       INTO result;
    RETURN etl_stream._canonical(t, result);
END
$$;

--
-- _direct_sql: the remote query that loads the rows straight into dest,
-- with no staging, or NULL when they must go through staging.  That is when
-- the bulk path cannot keep dest's rules, when dest does not have exactly
-- the registered columns, when the rows of a key could meet no unique index
-- (staging keeps the newest of them), or, except for full_refresh's fresh
-- table, when dest has rows already: only an initial load is direct.
-- into_rows: a backfill's slice, loaded beside the other slices, may
-- be loaded into a target with rows when the strategy only adds or updates
-- rows (merge, append): a key the target has fails the load at its unique
-- index, and the slice then goes through staging, where the newer row wins.
--
CREATE OR REPLACE FUNCTION etl_stream._direct_sql(t etl_stream.tables, dest regclass, p etl_stream.plan,
                                                  into_rows boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    target regclass := etl_stream._target_name(t)::regclass;
    live text[];
    has_rows boolean;
BEGIN
    IF etl_stream._land_refusal(dest) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(a.attname::text ORDER BY a.attnum) INTO live
      FROM pg_attribute a
     WHERE a.attrelid = dest AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT (live @> t.columns AND live <@ t.columns AND cardinality(live) = cardinality(t.columns)) THEN
        RETURN NULL;
    END IF;
    IF cardinality(t.key_columns) > 0 AND NOT EXISTS (
           SELECT FROM pg_index x
            WHERE x.indrelid = target AND x.indisunique AND x.indimmediate
              AND x.indpred IS NULL AND x.indexprs IS NULL
              AND ARRAY(SELECT a.attname::text FROM pg_attribute a
                         WHERE a.attrelid = target AND a.attnum = ANY (x.indkey::int2[])
                         ORDER BY 1)
                  = ARRAY(SELECT k FROM unnest(t.key_columns) k ORDER BY 1)) THEN
        RETURN NULL;
    END IF;
    IF t.strategy <> 'full_refresh' AND NOT (into_rows AND t.strategy IN ('merge', 'append')) THEN
        EXECUTE format('SELECT EXISTS (SELECT FROM %s)', dest) INTO has_rows;
        IF has_rows THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN 'SELECT ' || (SELECT string_agg(etl_stream.mysql_ident(c), ', ' ORDER BY o)
                           FROM unnest(live) WITH ORDINALITY u(c, o))
                     || p.remote_from;
END
$$;

-- ==== sql/objects/80_sync.sql

--
-- The sync: one run of one table, in C (src/run.c): lock the registration,
-- compute the cutoff, pull, merge by strategy, advance the watermark,
-- record the run.  In the foreground a run is atomic with the caller's
-- transaction; a failure is rolled back (target and watermark stay as they
-- were), recorded as a failed run with what it had done and the error's
-- facts, and returned with a WARNING.  A cancel or statement_timeout aborts
-- the caller's statement as usual.
--
CREATE OR REPLACE FUNCTION etl_stream.sync(name text, wait boolean DEFAULT false,
                                range_from text DEFAULT NULL, range_to text DEFAULT NULL)
RETURNS etl_stream.runs
AS 'MODULE_PATHNAME', 'etl_stream_sync'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION etl_stream.sync(text, boolean, text, text) IS
  'pull, merge and advance the watermark of one registered table; returns the run';

-- The order tables are synced in by sync_all: each after the tables it
-- depends on (registration refuses cycles), then by name.  Positions from
-- 1; depends_on gives the positions of the dependencies among names.
CREATE OR REPLACE FUNCTION etl_stream._sync_order(names text[])
RETURNS TABLE (name text, "position" integer, depends_on integer[])
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE t AS (
        SELECT x.name, ARRAY(SELECT d FROM unnest(x.depends_on) d WHERE d = ANY (names)) AS deps
          FROM etl_stream.tables x WHERE x.name = ANY (names)),
    depth(name, level) AS (
        SELECT t.name, 0 FROM t
        UNION ALL
        SELECT t.name, depth.level + 1 FROM depth JOIN t ON depth.name = ANY (t.deps)),
    ordered AS (
        SELECT depth.name, row_number() OVER (ORDER BY max(depth.level), depth.name)::integer AS pos
          FROM depth GROUP BY depth.name)
    SELECT o.name, o.pos,
           ARRAY(SELECT d.pos FROM ordered d WHERE d.name = ANY (t.deps) ORDER BY d.pos)
      FROM ordered o JOIN t USING (name)
     ORDER BY o.pos
$$;

-- sync_all(): every enabled table in dependency order, one after the other
-- in the caller's one transaction; with parallel > 1, in that many workers,
-- each table in a transaction of its own (src/sync_all.c).
CREATE OR REPLACE FUNCTION etl_stream.sync_all(wait boolean DEFAULT false,
                                               parallel integer DEFAULT 1)
RETURNS SETOF etl_stream.runs
AS 'MODULE_PATHNAME', 'etl_stream_sync_all'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION etl_stream.sync_all(boolean, integer) IS
  'sync every enabled table in dependency order: in the caller''s transaction, or in parallel workers; returns a run each';

-- sync_all_proc(): every enabled table, each in a transaction of its own,
-- committed before the next starts.  A procedure, so it can commit: CALL it
-- outside a transaction block.
CREATE OR REPLACE PROCEDURE etl_stream.sync_all_proc(wait boolean DEFAULT false)
AS 'MODULE_PATHNAME', 'etl_stream_sync_all_proc'
LANGUAGE C;

COMMENT ON PROCEDURE etl_stream.sync_all_proc(boolean) IS
  'sync every enabled table, committing each run before the next begins';

--
-- After an attempt that did not succeed: how long to wait before the next,
-- or NULL when there is to be none (it failed for good, or had its
-- retries).  A timed-out run is retried like a transient failure.  The
-- wait doubles from the table's retry_backoff, up to 10 minutes (or
-- retry_backoff, if that is longer), plus up to a quarter more at random
-- so that tables that failed together do not come back together.
--
CREATE OR REPLACE FUNCTION etl_stream._retry_delay(r etl_stream.runs) RETURNS interval
LANGUAGE sql VOLATILE AS $$
SELECT least(t.retry_backoff * 2 ^ (r.attempt - 1),
             greatest(t.retry_backoff, interval '10 minutes')) * (1 + random() / 4)
  FROM etl_stream.tables t
 WHERE t.name = r.table_name
   AND r.attempt <= t.retries
   AND (r.status = 'timed_out'
        OR (r.status = 'failed' AND r.sqlstate = ANY (etl_stream._transient_sqlstates())))
$$;

--
-- explain: what the next sync would run, with its literal cutoff, and the
-- plans of the statements that touch the target.
--
CREATE OR REPLACE FUNCTION etl_stream.explain(name text, range_from text DEFAULT NULL,
                                   range_to text DEFAULT NULL, costs boolean DEFAULT true)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    t etl_stream.tables := etl_stream._get(name);
    p etl_stream.plan := etl_stream._plan(t, range_from, range_to);
    line text;
BEGIN
    IF to_regclass(p.staging) IS NULL THEN
        PERFORM etl_stream._prepare_staging(t);
    END IF;
    RETURN NEXT format('cutoff: %s', coalesce(p.cutoff, '(none: every row)'))
             || CASE WHEN p.upper_bound IS NOT NULL THEN format(', upper bound: %s', p.upper_bound) ELSE '' END;
    RETURN NEXT 'on MySQL: ' || p.remote_sql;
    IF p.delete_sql IS NOT NULL THEN
        RETURN NEXT 'delete: ' || p.delete_sql;
        FOR line IN EXECUTE format('EXPLAIN (COSTS %s) %s', CASE WHEN costs THEN 'ON' ELSE 'OFF' END, p.delete_sql) LOOP
            RETURN NEXT '  ' || line;
        END LOOP;
    END IF;
    RETURN NEXT 'merge: ' || p.merge_sql;
    IF t.strategy <> 'full_refresh' THEN
        FOR line IN EXECUTE format('EXPLAIN (COSTS %s) %s', CASE WHEN costs THEN 'ON' ELSE 'OFF' END, p.merge_sql) LOOP
            RETURN NEXT '  ' || line;
        END LOOP;
    END IF;
END
$$;

COMMENT ON FUNCTION etl_stream.explain(text, text, text, boolean) IS
  'the SQL and plans the next sync of a table would run, with its literal cutoff';

-- ==== sql/objects/85_jobs.sql

--
-- Background jobs: a backfill cut into slices that workers run in parallel,
-- each slice in a transaction of its own; waiting for, cancelling and
-- resuming a job.  The workers themselves are C (src/workers.c); these
-- functions make the jobs and tasks they claim, and tidy up after them.
--

-- C: start workers for a job when the calling transaction commits (as its
-- owner); stop a job's workers when it commits; whether a worker lives;
-- how many workers a job has or is waiting for
CREATE OR REPLACE FUNCTION etl_stream._start_workers(job bigint, workers integer, owner name)
RETURNS void
AS 'MODULE_PATHNAME', 'etl_stream_start_workers'
LANGUAGE C STRICT VOLATILE;

CREATE OR REPLACE FUNCTION etl_stream._cancel_workers(job bigint) RETURNS void
AS 'MODULE_PATHNAME', 'etl_stream_cancel_workers'
LANGUAGE C STRICT VOLATILE;

CREATE OR REPLACE FUNCTION etl_stream._worker_alive(pid integer) RETURNS boolean
AS 'MODULE_PATHNAME', 'etl_stream_worker_alive'
LANGUAGE C STRICT VOLATILE;

-- workers of a job at work or starting; with_waiting: and those it waits a
-- free slot for
CREATE OR REPLACE FUNCTION etl_stream._job_workers(job bigint, with_waiting boolean DEFAULT true)
RETURNS integer
AS 'MODULE_PATHNAME', 'etl_stream_job_workers'
LANGUAGE C STRICT VOLATILE;

-- C: a skipped run in etl_stream.runs, with the reason
CREATE OR REPLACE FUNCTION etl_stream._record_skipped(name text, reason text,
                                                     job bigint DEFAULT NULL, task bigint DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_stream_record_skipped'
LANGUAGE C VOLATILE;

-- The job of a backfill of the table that is queued or running, seen
-- whoever owns it: a sync of the table waits for it or is skipped
CREATE OR REPLACE FUNCTION etl_stream._backfill_running(name text) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN (SELECT min(j.job_id) FROM etl_stream.jobs j
         WHERE j.kind = 'backfill' AND j.state IN ('queued', 'running') AND name = ANY (j.tables));

-- A worker runs as the job's owner; PostgreSQL 15 lets a background
-- worker connect only as a role that may log in
CREATE OR REPLACE FUNCTION etl_stream._check_worker_role(role name) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = role) THEN
        RAISE EXCEPTION 'role "%" cannot run background workers', role
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'A worker connects as the role that started the job, and PostgreSQL 15 lets only roles with LOGIN connect.',
                  HINT = format('ALTER ROLE %I LOGIN, or start the job as a role that has it.', role);
    END IF;
END
$$;

--
-- The slices of a backfill, in order: [lo, hi) pairs of canonical text,
-- from start in steps of step, up to stop (exclusive), or, when stop is
-- NULL, up to the last value there is (last), the last slice open.  kind
-- is the slice column's kind of watermark ('integer' for a key).
--
CREATE OR REPLACE FUNCTION etl_stream._slices(kind text, start text, stop text, last text, step text)
RETURNS TABLE (lo text, hi text)
LANGUAGE plpgsql STABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' SET timezone = 'UTC' AS $$
DECLARE
    k record;
    r etl_stream.tables;
BEGIN
    SELECT * INTO STRICT k FROM etl_stream._watermark_kinds() w WHERE w.kind = _slices.kind;
    r.watermark_kind := kind;
    IF start IS NOT NULL THEN
        -- dates step as timestamps: generate_series has no form for date
        RETURN QUERY EXECUTE format(
            'SELECT etl_stream._canonical($5, v::text),
                    coalesce(etl_stream._canonical($5, (lead(v) OVER (ORDER BY v))::text), $2)
               FROM generate_series($1::%1$s::%3$s, coalesce($2, $4)::%1$s::%3$s, $3::%2$s) v
              WHERE $2 IS NULL OR v < $2::%1$s::%3$s
              ORDER BY v',
            k.sql_type, k.lookback_type, CASE k.sql_type WHEN 'date' THEN 'timestamp' ELSE k.sql_type END)
          USING start, stop, step, last, r;
    END IF;
    IF NOT FOUND OR start IS NULL THEN
        RETURN QUERY SELECT start, stop;        -- nothing to cut: one slice
    END IF;
END
$$;

--
-- backfill: cut the table into slices of its watermark (or of its integer
-- key when it has none; one slice otherwise) and have workers sync them in
-- parallel.  Returns the job at once; the workers start when the calling
-- transaction commits.  See docs/workers.md.
--
CREATE OR REPLACE FUNCTION etl_stream.backfill(name text, range_from text DEFAULT NULL,
                                               range_to text DEFAULT NULL, slice text DEFAULT NULL,
                                               workers integer DEFAULT 2)
RETURNS bigint
LANGUAGE plpgsql
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    t etl_stream.tables := etl_stream._get(name);
    by_watermark boolean := t.watermark IS NOT NULL;
    k record;
    on_col text;
    on_type text;
    lo text;
    hi text;
    first text;
    step text := slice;
    positive boolean;
    job bigint;
    n integer;
BEGIN
    IF NOT t.enabled THEN
        RAISE EXCEPTION 'etl_stream table "%" is disabled', t.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Enable it with SELECT etl_stream.enable_table(%L).', t.name);
    END IF;
    IF workers IS NULL OR workers < 1 THEN
        RAISE EXCEPTION 'workers must be at least 1, not %', coalesce(workers::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- each slice of a full_refresh table would replace the whole target
    IF t.strategy = 'full_refresh' THEN
        RAISE EXCEPTION 'etl_stream table "%" cannot be backfilled: its strategy is full_refresh', t.name
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'A full_refresh run replaces the whole target, so slices cannot add up.',
                  HINT = format('Sync it with SELECT etl_stream.sync(%L), or register it with strategy delete_insert or merge.', t.name);
    END IF;
    PERFORM etl_stream._check_worker_role(current_user);

    -- the column the slices are of: the watermark, else an integer key;
    -- t becomes a registration whose watermark it is, for the literals
    IF by_watermark THEN
        on_col := t.watermark;
    ELSIF cardinality(t.key_columns) = 1 AND
          t.column_types[array_position(t.columns, t.key_columns[1])] IN ('smallint', 'integer', 'bigint') THEN
        on_col := t.key_columns[1];
        t.watermark := on_col;
        t.watermark_kind := 'integer';
    ELSIF range_from IS NOT NULL OR range_to IS NOT NULL OR slice IS NOT NULL THEN
        RAISE EXCEPTION 'etl_stream table "%" has no watermark or integer key to slice', t.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Call backfill(name) without bounds or slice: it syncs the table as one slice.';
    END IF;

    IF on_col IS NOT NULL THEN
        SELECT * INTO STRICT k FROM etl_stream._watermark_kinds() w WHERE w.kind = t.watermark_kind;
        -- the bounds: as given, or the source's MIN and MAX, read now
        on_type := t.column_types[array_position(t.columns, on_col)];
        EXECUTE format('SELECT lo::text, hi::text FROM etl_stream.query($1, $2) AS b(lo %1$s, hi %1$s)', on_type)
           INTO lo, hi
          USING t.server, format('SELECT MIN(%1$s), MAX(%1$s) FROM %2$s',
                                 etl_stream.mysql_ident(on_col), etl_stream._source_name(t));
        first := etl_stream._canonical(t, coalesce(range_from, lo));
        hi := etl_stream._canonical(t, hi);
        range_to := etl_stream._canonical(t, range_to);
        -- the step: as given, else a month of time, or about 8 slices a worker
        IF step IS NULL THEN
            step := CASE WHEN k.lookback_type = 'interval' THEN '1 month'
                         WHEN first IS NOT NULL THEN
                              greatest(ceil((coalesce(range_to, hi)::numeric - first::numeric + 1) / (workers * 8)), 1)::text
                         ELSE '1' END;
        END IF;
        BEGIN
            EXECUTE format('SELECT $1::%1$s > %2$s::%1$s', k.lookback_type, quote_literal('0'))
               INTO positive USING step;
        EXCEPTION WHEN invalid_datetime_format OR invalid_text_representation THEN
            positive := false;
        END;
        IF NOT positive THEN
            RAISE EXCEPTION 'invalid slice "%" for a % column', step, t.watermark_kind
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = CASE k.lookback_type WHEN 'interval' THEN 'Give an interval, such as ''1 day'' or ''1 month''.'
                                  ELSE 'Give a positive whole number: the width of a slice in the column''s units.' END;
        END IF;
    END IF;

    -- with an open end, the table's watermark moves to the MAX read now when
    -- the job is done: rows changed meanwhile are the next sync's
    INSERT INTO etl_stream.jobs (kind, tables, workers, range_from, range_to, slice, watermark_after)
    VALUES ('backfill', ARRAY[t.name], workers, first, range_to, step,
            CASE WHEN by_watermark AND range_to IS NULL THEN hi END)
    RETURNING job_id INTO job;
    INSERT INTO etl_stream.tasks (job_id, position, table_name, range_on, range_from, range_to, resume_from)
    SELECT job, s.n, t.name, on_col, s.lo, s.hi, s.lo
      FROM etl_stream._slices(t.watermark_kind, first, range_to, hi, step) WITH ORDINALITY s(lo, hi, n)
     WHERE on_col IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        -- nothing to slice by: the whole table is one slice
        INSERT INTO etl_stream.tasks (job_id, position, table_name) VALUES (job, 1, t.name);
        n := 1;
    END IF;
    UPDATE etl_stream.jobs x SET tasks_total = n WHERE x.job_id = job;
    PERFORM etl_stream._start_workers(job, workers, current_user);
    RETURN job;
END
$$;

COMMENT ON FUNCTION etl_stream.backfill(text, text, text, text, integer) IS
  'sync a table slice by slice in background workers; returns the job';

--
-- job_wait: the job once it is done, failed or cancelled, or when timeout
-- passes, whichever comes first.  A job that no worker is working on or
-- waiting to work on (the server restarted, say) is returned as it is.
--
CREATE OR REPLACE FUNCTION etl_stream.job_wait(job bigint, timeout interval DEFAULT NULL)
RETURNS etl_stream.jobs
LANGUAGE plpgsql AS $$
DECLARE
    j etl_stream.jobs;
    started timestamptz := clock_timestamp();
    idle_since timestamptz;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'etl_stream.job_wait() needs the READ COMMITTED isolation level'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Its snapshot would never see the workers'' progress.';
    END IF;
    IF (SELECT x.xmin FROM etl_stream.jobs x WHERE x.job_id = job) = pg_current_xact_id_if_assigned()::xid THEN
        RAISE EXCEPTION 'etl_stream job % was made or resumed in this transaction', job
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Its workers start when this transaction commits.',
                  HINT = 'Commit first, then wait for the job.';
    END IF;
    LOOP
        SELECT * INTO j FROM etl_stream.jobs x WHERE x.job_id = job;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'etl_stream job % does not exist', job
                USING ERRCODE = 'undefined_object',
                      HINT = 'Your jobs are listed in etl_stream.jobs.';
        END IF;
        EXIT WHEN j.state IN ('done', 'failed', 'cancelled');
        EXIT WHEN timeout IS NOT NULL AND clock_timestamp() - started >= timeout;
        IF etl_stream._job_workers(job) = 0 THEN
            idle_since := coalesce(idle_since, clock_timestamp());
            IF clock_timestamp() - idle_since > interval '2 s' THEN
                RAISE NOTICE 'no worker is working on etl_stream job %', job
                    USING HINT = format('SELECT etl_stream.job_resume(%s) runs its tasks that are not done.', job);
                EXIT;
            END IF;
        ELSE
            idle_since := NULL;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN j;
END
$$;

COMMENT ON FUNCTION etl_stream.job_wait(bigint, interval) IS
  'wait for a job to end (or the timeout to pass); returns the job';

--
-- job_cancel: no task of the job starts any more, and the running ones are
-- stopped (their slices roll back) once the calling transaction commits.
-- False if the job had ended already.
--
CREATE OR REPLACE FUNCTION etl_stream.job_cancel(job bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM etl_stream.jobs x WHERE x.job_id = job;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'etl_stream job % does not exist', job
            USING ERRCODE = 'undefined_object',
                  HINT = 'Your jobs are listed in etl_stream.jobs.';
    END IF;
    UPDATE etl_stream.jobs x SET state = 'cancelled'
     WHERE x.job_id = job AND x.state IN ('queued', 'running');
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE etl_stream.tasks x SET state = 'cancelled', finished_at = now()
     WHERE x.job_id = job AND x.state = 'pending';
    -- a job no worker has started on is finished here (the workers it waits
    -- for are forgotten at commit); otherwise its last worker finishes it
    IF etl_stream._job_workers(job, false) = 0 THEN
        PERFORM etl_stream._finish_job(job);
    END IF;
    PERFORM etl_stream._cancel_workers(job);
    RETURN true;
END
$$;

COMMENT ON FUNCTION etl_stream.job_cancel(bigint) IS
  'stop a job: no task starts any more, the running ones are rolled back';

--
-- job_resume: the job's tasks that are not done (failed, cancelled,
-- skipped, or left running by a worker that ended) run again, and only
-- those.  Returns the job.
--
CREATE OR REPLACE FUNCTION etl_stream.job_resume(job bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    j etl_stream.jobs;
BEGIN
    SELECT * INTO j FROM etl_stream.jobs x WHERE x.job_id = job FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'etl_stream job % does not exist', job
            USING ERRCODE = 'undefined_object',
                  HINT = 'Your jobs are listed in etl_stream.jobs.';
    END IF;
    PERFORM etl_stream._check_worker_role(j.owner);
    IF j.state = 'done' THEN
        RETURN job;                 -- nothing is left to do
    END IF;
    UPDATE etl_stream.tasks x SET state = 'pending', worker_pid = NULL, finished_at = NULL
     WHERE x.job_id = job
       AND (x.state IN ('failed', 'cancelled', 'skipped')
            OR (x.state = 'running' AND NOT etl_stream._worker_alive(x.worker_pid)));
    UPDATE etl_stream.jobs x SET state = 'queued', finished_at = NULL, last_error = NULL
     WHERE x.job_id = job;
    PERFORM etl_stream._start_workers(job, j.workers, j.owner);
    RETURN job;
END
$$;

COMMENT ON FUNCTION etl_stream.job_resume(bigint) IS
  'run the tasks of a job that are not done, and only those';

--
-- A task ended (src/workers.c): with a run, it takes the run's outcome;
-- without one (the run was cancelled, or failed before it could record
-- itself), the state and error given.  The tasks of the job that depend on
-- one that did not succeed are skipped, and the job's counts follow.
--
CREATE OR REPLACE FUNCTION etl_stream._task_finished(task bigint, run bigint,
        state text DEFAULT NULL, sqlstate text DEFAULT NULL, message text DEFAULT NULL,
        detail text DEFAULT NULL, hint text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    k etl_stream.tasks;
    d record;
    why text;
BEGIN
    IF run IS NOT NULL THEN
        UPDATE etl_stream.tasks x
           SET state = CASE r.status WHEN 'success' THEN 'done' WHEN 'failed' THEN 'failed' WHEN 'timed_out' THEN 'failed' ELSE 'skipped' END,
               finished_at = r.finished_at,
               seconds = extract(epoch FROM r.finished_at - x.started_at),
               rows_pulled = r.rows_pulled, rows_landed = r.rows_landed,
               rows_merged = r.rows_inserted + r.rows_updated + r.rows_deleted,
               run_id = r.run_id,
               resume_from = CASE WHEN r.status = 'success' THEN NULL ELSE x.range_from END,
               sqlstate = r.sqlstate, message = coalesce(r.message, r.error), detail = r.detail, hint = r.hint,
               error_column = r.error_column, error_mysql_type = r.error_mysql_type,
               error_key = r.error_key, error_value = r.error_value
          FROM etl_stream.runs r
         WHERE r.run_id = run AND x.task_id = task
        RETURNING x.* INTO k;
    ELSE
        UPDATE etl_stream.tasks x
           SET state = _task_finished.state, finished_at = now(),
               seconds = extract(epoch FROM now() - x.started_at),
               resume_from = x.range_from,
               sqlstate = _task_finished.sqlstate, message = _task_finished.message,
               detail = _task_finished.detail, hint = _task_finished.hint
         WHERE x.task_id = task AND x.state = 'running'
        RETURNING x.* INTO k;
    END IF;
    IF k.task_id IS NULL THEN
        RETURN NULL;
    END IF;
    IF k.state <> 'done' THEN
        -- what depends on it, directly or not, cannot run in this job
        why := format('etl_stream table "%s", which it depends on, did not succeed (%s)',
                      k.table_name, k.state);
        FOR d IN
            WITH RECURSIVE dep(position) AS (
                SELECT x.position FROM etl_stream.tasks x
                 WHERE x.job_id = k.job_id AND k.position = ANY (x.depends_on)
                UNION
                SELECT x.position FROM etl_stream.tasks x JOIN dep ON dep.position = ANY (x.depends_on)
                 WHERE x.job_id = k.job_id)
            SELECT x.task_id, x.table_name FROM etl_stream.tasks x JOIN dep USING (position)
             WHERE x.job_id = k.job_id AND x.state = 'pending' ORDER BY x.position
        LOOP
            UPDATE etl_stream.tasks x
               SET state = 'skipped', finished_at = now(), message = 'skipped: ' || why,
                   run_id = etl_stream._record_skipped(d.table_name, why, k.job_id, d.task_id)
             WHERE x.task_id = d.task_id;
        END LOOP;
    END IF;
    UPDATE etl_stream.jobs j
       SET tasks_done = s.done, rows_pulled = s.pulled, rows_merged = s.merged
      FROM (SELECT count(*) FILTER (WHERE x.state = 'done') AS done,
                   coalesce(sum(x.rows_pulled), 0) AS pulled, coalesce(sum(x.rows_merged), 0) AS merged
              FROM etl_stream.tasks x WHERE x.job_id = k.job_id) s
     WHERE j.job_id = k.job_id;
    RETURN k.state;
END
$$;

--
-- The end of a job, by the last of its workers: tasks a worker left
-- running when it ended are failed, the job takes its final state, and a
-- backfill with an open end moves the table's watermark to the MAX read
-- when it began (so the next incremental sync starts there).  Returns the
-- target to ANALYZE, or NULL; nothing when other workers are still at it.
--
CREATE OR REPLACE FUNCTION etl_stream._finish_job(job bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    j etl_stream.jobs;
    t etl_stream.tables;
    busy boolean;
BEGIN
    SELECT * INTO j FROM etl_stream.jobs x WHERE x.job_id = job FOR UPDATE;
    IF NOT FOUND OR j.finished_at IS NOT NULL THEN
        RETURN NULL;
    END IF;
    SELECT EXISTS (SELECT FROM etl_stream.tasks x WHERE x.job_id = job
                     AND (x.state = 'pending' AND j.state <> 'cancelled'
                          OR x.state = 'running' AND x.worker_pid IS DISTINCT FROM pg_backend_pid()
                             AND etl_stream._worker_alive(x.worker_pid)))
      INTO busy;
    IF busy THEN
        RETURN NULL;
    END IF;
    UPDATE etl_stream.tasks x
       SET state = 'failed', finished_at = now(), sqlstate = '57P01',
           message = format('the worker (pid %s) ended before the task was done', x.worker_pid)
     WHERE x.job_id = job AND x.state = 'running';
    UPDATE etl_stream.tasks x SET state = 'skipped', finished_at = now(),
           message = 'skipped: a task it depends on did not succeed'
     WHERE x.job_id = job AND x.state = 'pending';
    UPDATE etl_stream.jobs x
       SET state = CASE WHEN j.state = 'cancelled' THEN 'cancelled'
                        WHEN s.done = s.total THEN 'done' ELSE 'failed' END,
           finished_at = now(), tasks_done = s.done, rows_pulled = s.pulled, rows_merged = s.merged,
           last_error = s.last_error
      FROM (SELECT count(*) AS total, count(*) FILTER (WHERE k.state = 'done') AS done,
                   coalesce(sum(k.rows_pulled), 0) AS pulled, coalesce(sum(k.rows_merged), 0) AS merged,
                   (SELECT format('task %s (%s): %s', e.position, e.table_name, e.message)
                      FROM etl_stream.tasks e
                     WHERE e.job_id = job AND e.state IN ('failed', 'skipped') AND e.message IS NOT NULL
                     ORDER BY e.finished_at DESC NULLS LAST LIMIT 1) AS last_error
              FROM etl_stream.tasks k WHERE k.job_id = job) s
     WHERE x.job_id = job
    RETURNING x.* INTO j;
    IF j.kind = 'backfill' AND j.state = 'done' THEN
        SELECT * INTO t FROM etl_stream.tables x WHERE x.name = j.tables[1] FOR NO KEY UPDATE;
        IF j.watermark_after IS NOT NULL THEN
            UPDATE etl_stream.tables x SET high_watermark = etl_stream._later(t, t.high_watermark, j.watermark_after)
             WHERE x.name = t.name;
        END IF;
        IF j.rows_merged > 0 THEN
            RETURN etl_stream._target_name(t);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

-- ==== sql/objects/87_schedules.sql

--
-- Schedules: a pg_cron job per schedule that CALLs run_schedule(name),
-- which syncs the schedule's tables in dependency order, with each table's
-- retries, and fails (so cron.job_run_details says failed) when a table
-- failed in the end.  pg_cron is the clock; etl_stream adds the retries,
-- the timeouts, the order and the view.  pg_cron keeps its jobs in one
-- database (cron.database_name): schedules are made in that database.
--

CREATE OR REPLACE PROCEDURE etl_stream.run_schedule(name text)
AS 'MODULE_PATHNAME', 'etl_stream_run_schedule'
LANGUAGE C;

COMMENT ON PROCEDURE etl_stream.run_schedule(text) IS
  'what a schedule''s pg_cron job runs: its tables in dependency order, with retries; fails if one failed';

-- The name of a schedule's job in cron.job
CREATE OR REPLACE FUNCTION etl_stream._cron_job_name(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'etl_stream.' || name;

-- pg_cron in this database, or a clear error saying why not
CREATE OR REPLACE FUNCTION etl_stream._require_pg_cron() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cron_db text := current_setting('cron.database_name', true);
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RETURN;
    END IF;
    IF cron_db IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'pg_cron is not loaded in this server.',
                  HINT = 'Add pg_cron to shared_preload_libraries, restart, and CREATE EXTENSION pg_cron in the database cron.database_name names.';
    ELSIF cron_db <> current_database() THEN
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('pg_cron keeps its jobs in database "%s" (cron.database_name), and runs etl_stream''s schedules there.', cron_db),
                  HINT = format('Make the schedules in database "%s", with etl_stream installed there.', cron_db);
    ELSE
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'CREATE EXTENSION pg_cron;';
    END IF;
END
$$;

--
-- schedule: make (or replace) a schedule and its pg_cron job; the job id.
-- tables NULL: every table enabled when it runs.  parallel > 1: in that
-- many background workers, as sync_all(parallel => n).
--
CREATE OR REPLACE FUNCTION etl_stream.schedule(name text, cron text, tables text[] DEFAULT NULL,
                                               parallel integer DEFAULT 1)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    missing text[];
    job bigint;
BEGIN
    PERFORM etl_stream._require_pg_cron();
    IF name IS NULL OR name !~ '^[A-Za-z0-9_.-]{1,48}$' THEN
        RAISE EXCEPTION 'invalid etl_stream schedule name "%"', name
            USING ERRCODE = 'invalid_name',
                  HINT = 'Use 1 to 48 letters, digits, "_", "." or "-".';
    END IF;
    IF parallel IS NULL OR parallel < 1 THEN
        RAISE EXCEPTION 'parallel must be at least 1, not %', parallel
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(n ORDER BY n) INTO missing
      FROM unnest(tables) n WHERE NOT EXISTS (SELECT FROM etl_stream.tables t WHERE t.name = n);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'etl_stream table % does not exist', array_to_string(missing, ', ')
            USING ERRCODE = 'undefined_object',
                  HINT = 'Registered tables are listed in etl_stream.tables.';
    END IF;
    IF parallel > 1 THEN
        PERFORM etl_stream._check_worker_role(current_user);
    END IF;
    IF EXISTS (SELECT FROM etl_stream.schedule_defs s WHERE s.name = schedule.name) THEN
        UPDATE etl_stream.schedule_defs s
           SET cron = schedule.cron, tables = schedule.tables, parallel = schedule.parallel
         WHERE s.name = schedule.name;
    ELSE
        INSERT INTO etl_stream.schedule_defs (name, cron, tables, parallel)
        VALUES (schedule.name, schedule.cron, schedule.tables, schedule.parallel);
    END IF;
    -- pg_cron checks the expression; the same name replaces its job
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job
      USING etl_stream._cron_job_name(name), cron,
            format('CALL etl_stream.run_schedule(%L)', name);
    RETURN job;
END
$$;

COMMENT ON FUNCTION etl_stream.schedule(text, text, text[], integer) IS
  'sync tables (NULL: every enabled one) in dependency order on a pg_cron schedule, with retries';

-- unschedule: the schedule and its pg_cron job are gone
CREATE OR REPLACE FUNCTION etl_stream.unschedule(name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    job bigint;
BEGIN
    DELETE FROM etl_stream.schedule_defs s WHERE s.name = unschedule.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'etl_stream schedule "%" does not exist', name
            USING ERRCODE = 'undefined_object',
                  HINT = 'Your schedules are listed in etl_stream.schedules.';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        EXECUTE 'SELECT jobid FROM cron.job WHERE jobname = $1 AND username = current_user'
           INTO job USING etl_stream._cron_job_name(name);
        IF job IS NOT NULL THEN
            EXECUTE 'SELECT cron.unschedule($1)' USING job;
        END IF;
    END IF;
END
$$;

--
-- The values one field of a cron expression allows, between lo and hi
-- (names of months and days too), or NULL when it is not understood.
--
CREATE OR REPLACE FUNCTION etl_stream._cron_field(field text, lo integer, hi integer)
RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    names text[] := CASE hi WHEN 12 THEN ARRAY['jan','feb','mar','apr','may','jun',
                                               'jul','aug','sep','oct','nov','dec']
                            WHEN 7 THEN ARRAY['sun','mon','tue','wed','thu','fri','sat'] END;
    part text;
    m text[];
    a integer;
    b integer;
    step integer;
    vals integer[] := '{}';
    f text := lower(field);
BEGIN
    FOR i IN 1 .. coalesce(cardinality(names), 0) LOOP
        f := replace(f, names[i], (i - 1 + CASE hi WHEN 12 THEN 1 ELSE 0 END)::text);
    END LOOP;
    FOREACH part IN ARRAY string_to_array(f, ',') LOOP
        m := regexp_match(part, '^(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?$');
        IF m IS NULL THEN
            RETURN NULL;
        END IF;
        IF m[1] = '*' THEN
            a := lo; b := hi;
        ELSE
            a := m[2]::integer;
            b := coalesce(m[3]::integer, CASE WHEN m[4] IS NULL THEN a ELSE hi END);
        END IF;
        step := coalesce(m[4]::integer, 1);
        IF a < lo OR b > hi OR a > b OR step < 1 THEN
            RETURN NULL;
        END IF;
        vals := vals || ARRAY(SELECT generate_series(a, b, step));
    END LOOP;
    RETURN ARRAY(SELECT DISTINCT v FROM unnest(vals) v ORDER BY v);
END
$$;

--
-- When pg_cron will next start a job with this schedule after a moment
-- (pg_cron 1.4 reads schedules in UTC), or NULL when that cannot be told.
-- Day of month and day of week as cron has them: when both are
-- restricted, either one matching is enough.
--
CREATE OR REPLACE FUNCTION etl_stream._cron_next(cron text, after timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    expr text := CASE lower(btrim(cron))
                   WHEN '@yearly' THEN '0 0 1 1 *' WHEN '@annually' THEN '0 0 1 1 *'
                   WHEN '@monthly' THEN '0 0 1 * *' WHEN '@weekly' THEN '0 0 * * 0'
                   WHEN '@daily' THEN '0 0 * * *' WHEN '@midnight' THEN '0 0 * * *'
                   WHEN '@hourly' THEN '0 * * * *' ELSE btrim(cron) END;
    f text[] := regexp_split_to_array(expr, '\s+');
    minutes integer[];
    hours integer[];
    doms integer[];
    months integer[];
    dows integer[];
    start timestamp := date_trunc('minute', after AT TIME ZONE 'UTC') + interval '1 minute';
    d date;
    t timestamp;
    h integer;
    m integer;
BEGIN
    IF cardinality(f) <> 5 THEN
        RETURN NULL;            -- @reboot, or not a schedule we read
    END IF;
    minutes := etl_stream._cron_field(f[1], 0, 59);
    hours := etl_stream._cron_field(f[2], 0, 23);
    doms := etl_stream._cron_field(f[3], 1, 31);
    months := etl_stream._cron_field(f[4], 1, 12);
    dows := ARRAY(SELECT DISTINCT v % 7 FROM unnest(etl_stream._cron_field(f[5], 0, 7)) v ORDER BY 1);
    IF minutes IS NULL OR hours IS NULL OR doms IS NULL OR months IS NULL OR dows IS NULL THEN
        RETURN NULL;
    END IF;
    FOR i IN 0 .. 366 * 4 LOOP
        d := start::date + i;
        CONTINUE WHEN extract(month FROM d)::integer <> ALL (months);
        CONTINUE WHEN NOT CASE
            WHEN f[3] LIKE '*%' AND f[5] LIKE '*%' THEN true
            WHEN f[3] LIKE '*%' THEN extract(dow FROM d)::integer = ANY (dows)
            WHEN f[5] LIKE '*%' THEN extract(day FROM d)::integer = ANY (doms)
            ELSE extract(day FROM d)::integer = ANY (doms) OR extract(dow FROM d)::integer = ANY (dows)
        END;
        FOREACH h IN ARRAY hours LOOP
            FOREACH m IN ARRAY minutes LOOP
                t := d + make_interval(hours => h, mins => m);
                IF t >= start THEN
                    RETURN t AT TIME ZONE 'UTC';
                END IF;
            END LOOP;
        END LOOP;
    END LOOP;
    RETURN NULL;
END
$$;

-- The caller's pg_cron jobs of schedules, with their last run, if pg_cron is here
CREATE OR REPLACE FUNCTION etl_stream._cron_jobs(
    OUT jobname text, OUT jobid bigint, OUT active boolean, OUT last_start timestamptz,
    OUT last_end timestamptz, OUT last_status text, OUT last_message text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT j.jobname::text, j.jobid, j.active, d.start_time, d.end_time, d.status, d.return_message
           FROM cron.job j
           LEFT JOIN LATERAL (SELECT * FROM cron.job_run_details r WHERE r.jobid = j.jobid
                               ORDER BY r.runid DESC LIMIT 1) d ON true
          WHERE j.jobname LIKE ''etl\_stream.%'' AND j.username = current_user';
END
$$;

-- schedules: one row per schedule of the roles whose privileges you have
CREATE OR REPLACE VIEW etl_stream.schedules AS
SELECT s.name, s.cron, s.tables, s.parallel, s.owner,
       j.jobid AS cron_job_id, j.active,
       j.last_start, j.last_end, j.last_status AS last_outcome, j.last_message,
       CASE WHEN coalesce(j.active, true) THEN etl_stream._cron_next(s.cron, now()) END AS next_due
  FROM etl_stream.schedule_defs s
  LEFT JOIN etl_stream._cron_jobs() j ON j.jobname = etl_stream._cron_job_name(s.name);

COMMENT ON VIEW etl_stream.schedules IS
  'each schedule with its pg_cron job, the last start and outcome, and when it is next due';
GRANT SELECT ON etl_stream.schedules TO PUBLIC;

-- ==== sql/objects/90_views.sql

--
-- Views for people: the state of each registered table, and the runs going
-- on right now.
--

-- status: one row per registered table
CREATE OR REPLACE VIEW etl_stream.status AS
SELECT t.name,
       t.enabled,
       t.strategy,
       t.watermark,
       t.high_watermark AS current_watermark,
       etl_stream._watermark_lag(t.watermark_kind, t.high_watermark) AS watermark_lag,
       ok.finished_at AS last_success,
       now() - ok.finished_at AS since_last_success,
       last.status AS last_status,
       last.rows_pulled AS last_rows_pulled,
       last.rows_inserted + last.rows_updated + last.rows_deleted AS last_rows_changed,
       last.finished_at - last.started_at AS last_duration,
       last.attempt AS last_attempt,
       retried.error AS retry_error,
       bad.finished_at AS last_failure,
       bad.error AS last_error
  FROM etl_stream.tables t
  LEFT JOIN LATERAL (SELECT * FROM etl_stream.runs r WHERE r.table_name = t.name
                      ORDER BY r.finished_at DESC LIMIT 1) last ON true
  LEFT JOIN LATERAL (SELECT * FROM etl_stream.runs r WHERE r.table_name = t.name AND r.status = 'success'
                      ORDER BY r.finished_at DESC LIMIT 1) ok ON true
  LEFT JOIN LATERAL (SELECT * FROM etl_stream.runs r WHERE r.table_name = t.name
                        AND r.status IN ('failed', 'timed_out')
                      ORDER BY r.finished_at DESC LIMIT 1) bad ON true
  -- the last run was a retry: the error of the first attempt, which caused it
  LEFT JOIN LATERAL (SELECT * FROM etl_stream.runs r WHERE r.table_name = t.name
                        AND last.attempt > 1 AND r.run_id < last.run_id AND r.attempt = 1
                      ORDER BY r.run_id DESC LIMIT 1) retried ON true;

COMMENT ON VIEW etl_stream.status IS
  'per registered table: watermark, how far behind, last success, last run and its attempt, the error retried, last error';

--
-- progress: every run going on in this database, from the slots in shared
-- memory each run updates as it goes (src/progress.c): its phase, the rows
-- pulled, landed and merged so far, the rate and the time left.  Runs of
-- roles whose privileges the caller does not have are not shown.  Needs
-- etl_stream in shared_preload_libraries.
--
CREATE OR REPLACE FUNCTION etl_stream._progress(
    OUT pid integer, OUT role name, OUT table_name text, OUT phase text,
    OUT rows_pulled bigint, OUT bytes_pulled bigint, OUT rows_per_s double precision,
    OUT started_at timestamptz, OUT phase_started_at timestamptz,
    OUT rows_estimate bigint, OUT eta interval,
    OUT rows_landed bigint, OUT rows_merged bigint, OUT running_for interval,
    OUT job_id bigint, OUT task_id bigint, OUT slice text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'etl_stream_progress'
LANGUAGE C VOLATILE;

-- (job_eta: the job's time left, at the pace of its tasks done so far)
CREATE OR REPLACE VIEW etl_stream.progress AS
SELECT p.*,
       CASE WHEN j.tasks_done > 0 AND j.tasks_total > j.tasks_done
            THEN (now() - j.started_at) / j.tasks_done * (j.tasks_total - j.tasks_done) END AS job_eta
  FROM etl_stream._progress() p
  LEFT JOIN etl_stream.jobs j ON j.job_id = p.job_id;

-- like pg_stat_activity: anyone may look, and sees what their role may see
GRANT SELECT ON etl_stream.progress TO PUBLIC;

COMMENT ON VIEW etl_stream.progress IS
  'runs going on right now: phase, rows pulled and landed so far, rate and time left';

-- ==== sql/upgrade/0.3.0--0.4.0-after.sql

--
-- 0.3.0 -> 0.4.0, after the functions are (re)defined: nothing more.
--
