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

CREATE FUNCTION etl_stream.describe(server name, sql text,
                                    OUT "position" integer, OUT name text,
                                    OUT mysql_type text, OUT natural_type text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'etl_stream_describe'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION etl_stream.describe(name, text) IS
  'columns of a remote query''s result, their MySQL types and natural PostgreSQL types';

--
-- Landing: a remote query's rows into a table, by the bulk path
--
CREATE FUNCTION etl_stream.land(server name, sql text, target regclass,
                                key_columns text[] DEFAULT NULL,
                                label text DEFAULT NULL,
                                progress_for regclass DEFAULT NULL,
                                OUT rows_pulled bigint, OUT rows_landed bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'etl_stream_land'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION etl_stream.land(name, text, regclass, text[], text, regclass) IS
  'stream a remote query into a plain table by the bulk-insert path, with its indexes and constraints';

CREATE FUNCTION etl_stream._land_refusal(target regclass) RETURNS text
AS 'MODULE_PATHNAME', 'etl_stream_land_refusal'
LANGUAGE C STABLE STRICT;

COMMENT ON FUNCTION etl_stream._land_refusal(regclass) IS
  'why etl_stream.land() would refuse the table, or NULL';

-- ======================================================================
-- Incremental sync
-- ======================================================================

-- Staging tables live here, one per registered table, UNLOGGED.
CREATE SCHEMA etl_stream_staging;

--
-- The registered tables.  pg_dump carries their definitions (and
-- watermarks) with the extension's configuration tables.
--
CREATE TABLE etl_stream.tables (
    name            text PRIMARY KEY
                    CHECK (name <> '' AND length(name) <= 48),
    server          name NOT NULL,
    source_schema   text,               -- MySQL database; NULL: the server's dbname
    source_table    text NOT NULL,
    target_schema   name NOT NULL,
    target_table    name NOT NULL,
    key_columns     text[] NOT NULL,    -- may be empty for append
    columns         text[] NOT NULL,    -- moved columns, in order
    column_types    text[] NOT NULL,    -- their natural PostgreSQL types
    watermark       text,               -- NULL: every sync pulls everything
    watermark_kind  text CHECK (watermark_kind IN ('integer', 'timestamp', 'timestamptz', 'date')),
    lookback        text NOT NULL DEFAULT '0',  -- a number, or an interval
    strategy        text NOT NULL DEFAULT 'merge'
                    CHECK (strategy IN ('merge', 'delete_insert', 'append', 'full_refresh')),
    enabled         boolean NOT NULL DEFAULT true,
    high_watermark  text,               -- of the last successful run
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (watermark IS NOT NULL OR strategy <> 'merge'),
    CHECK ((watermark IS NULL) = (watermark_kind IS NULL)),
    CHECK (columns <> '{}' AND cardinality(columns) = cardinality(column_types)),
    CHECK (key_columns <@ columns),
    CHECK (watermark IS NULL OR watermark = ANY (columns)),
    CHECK (cardinality(key_columns) > 0 OR strategy IN ('append', 'full_refresh'))
);
SELECT pg_catalog.pg_extension_config_dump('etl_stream.tables', '');

--
-- One row per run: successful, failed or skipped.
--
CREATE TABLE etl_stream.runs (
    run_id          bigserial PRIMARY KEY,
    table_name      text NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    status          text NOT NULL CHECK (status IN ('success', 'failed', 'skipped')),
    strategy        text,
    rows_pulled     bigint NOT NULL DEFAULT 0,  -- read from MySQL
    rows_landed     bigint NOT NULL DEFAULT 0,  -- written to staging (or the target, loaded directly)
    rows_inserted   bigint NOT NULL DEFAULT 0,
    rows_updated    bigint NOT NULL DEFAULT 0,
    rows_unchanged  bigint NOT NULL DEFAULT 0,
    rows_deleted    bigint NOT NULL DEFAULT 0,
    cutoff          text,               -- lower bound used, NULL: everything
    new_watermark   text,
    connect_s       double precision,
    pull_s          double precision,
    merge_s         double precision,
    finish_s        double precision,
    failed_phase    text,
    error           text,
    load_path       text CHECK (load_path IN ('staging', 'direct'))
);
CREATE INDEX runs_table_name_finished_at_idx ON etl_stream.runs (table_name, finished_at);
CREATE INDEX runs_finished_at_idx ON etl_stream.runs (finished_at);
SELECT pg_catalog.pg_extension_config_dump('etl_stream.runs', '');
SELECT pg_catalog.pg_extension_config_dump('etl_stream.runs_run_id_seq', '');

--
-- Quoting for MySQL: identifiers in backticks, strings as literals that do
-- not depend on the session's sql_mode (NO_BACKSLASH_ESCAPES).
--
CREATE FUNCTION etl_stream.mysql_ident(name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN '`' || replace(name, '`', '``') || '`';

CREATE FUNCTION etl_stream.mysql_literal(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN value ~ '[\\''"]' OR value ~ '[^ -~]'
            THEN 'CONVERT(X''' || encode(convert_to(value, 'UTF8'), 'hex') || ''' USING utf8mb4)'
            ELSE '''' || value || '''' END;

-- The MySQL table as it is named in queries
CREATE FUNCTION etl_stream._source_name(t etl_stream.tables) RETURNS text
LANGUAGE sql STABLE
RETURN CASE WHEN t.source_schema IS NULL THEN ''
            ELSE etl_stream.mysql_ident(t.source_schema) || '.' END
       || etl_stream.mysql_ident(t.source_table);

CREATE FUNCTION etl_stream._get(table_name text) RETURNS etl_stream.tables
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

--
-- add_table: register a MySQL table.  Columns, their types and the key
-- come from the source's own metadata unless given.
--
CREATE FUNCTION etl_stream.add_table(
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
    enabled boolean DEFAULT true)
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
    IF strategy NOT IN ('merge', 'delete_insert', 'append', 'full_refresh') THEN
        RAISE EXCEPTION 'invalid strategy "%"', strategy
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid strategies are: merge, delete_insert, append, full_refresh.';
    END IF;

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
        t.watermark_kind := CASE
            WHEN wm_type IN ('smallint', 'integer', 'bigint') OR wm_type LIKE 'numeric(%,0)' THEN 'integer'
            WHEN wm_type LIKE 'timestamp%with time zone' THEN 'timestamptz'
            WHEN wm_type LIKE 'timestamp%' THEN 'timestamp'
            WHEN wm_type = 'date' THEN 'date'
        END;
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
    INSERT INTO etl_stream.tables SELECT t.*;
    RETURN t;
END
$$;

-- A look-back in the watermark's units: a number for integer watermarks,
-- an interval for time ones (a number there means seconds).
CREATE FUNCTION etl_stream._normalize_lookback(kind text, value text, value_type text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    is_number boolean := value_type IN ('smallint', 'integer', 'bigint', 'numeric',
                                        'real', 'double precision');
BEGIN
    IF value IS NULL THEN
        RETURN '0';
    ELSIF kind IS NULL THEN
        RETURN '0';             -- no watermark: nothing to look back on
    ELSIF kind = 'integer' THEN
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

CREATE FUNCTION etl_stream.alter_table(
    name text,
    lookback anyelement DEFAULT NULL::integer,
    strategy text DEFAULT NULL,
    enabled boolean DEFAULT NULL,
    high_watermark text DEFAULT NULL)
RETURNS etl_stream.tables
LANGUAGE plpgsql AS $$
DECLARE
    t etl_stream.tables := etl_stream._get(name);
BEGIN
    IF strategy IS NOT NULL THEN
        IF strategy NOT IN ('merge', 'delete_insert', 'append', 'full_refresh') THEN
            RAISE EXCEPTION 'invalid strategy "%"', strategy
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Valid strategies are: merge, delete_insert, append, full_refresh.';
        END IF;
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
    UPDATE etl_stream.tables x SET strategy = t.strategy, lookback = t.lookback,
           enabled = t.enabled, high_watermark = t.high_watermark
     WHERE x.name = t.name;
    RETURN t;
END
$$;

CREATE FUNCTION etl_stream.disable_table(name text) RETURNS etl_stream.tables
LANGUAGE sql
RETURN etl_stream.alter_table(name, enabled => false);

CREATE FUNCTION etl_stream.enable_table(name text) RETURNS etl_stream.tables
LANGUAGE sql
RETURN etl_stream.alter_table(name, enabled => true);

CREATE FUNCTION etl_stream.drop_table(name text, drop_target boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t etl_stream.tables := etl_stream._get(name);
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS etl_stream_staging.%I', t.name);
    IF drop_target THEN
        EXECUTE format('DROP TABLE IF EXISTS %I.%I', t.target_schema, t.target_table);
    END IF;
    DELETE FROM etl_stream.tables x WHERE x.name = t.name;
END
$$;

--
-- create_target: the target table from the source's definition: natural
-- types, the key as primary key, an index on the watermark.
--
CREATE FUNCTION etl_stream.create_target(name text) RETURNS regclass
LANGUAGE plpgsql AS $$
DECLARE
    t etl_stream.tables := etl_stream._get(name);
    target text := format('%I.%I', t.target_schema, t.target_table);
    cols text;
BEGIN
    SELECT string_agg(format('%I %s', c, ty), ', ' ORDER BY o) INTO cols
      FROM unnest(t.columns, t.column_types) WITH ORDINALITY u(c, ty, o);
    IF cardinality(t.key_columns) > 0 THEN
        cols := cols || format(', PRIMARY KEY (%s)',
                               (SELECT string_agg(format('%I', k), ', ') FROM unnest(t.key_columns) k));
    END IF;
    EXECUTE format('CREATE TABLE %s (%s)', target, cols);
    IF t.watermark IS NOT NULL AND t.watermark <> ALL (t.key_columns[1:1]) THEN
        EXECUTE format('CREATE INDEX ON %s (%I)', target, t.watermark);
    END IF;
    RETURN target::regclass;
END
$$;

-- Watermarks and look-backs are kept as text.  The functions that turn
-- them into values and back pin DateStyle and IntervalStyle, so a session's
-- settings (DMY dates, say) can never change what a stored value means.

-- A value of the watermark's type as a PostgreSQL constant (prunable)
CREATE FUNCTION etl_stream._typed_literal(t etl_stream.tables, value text) RETURNS text
LANGUAGE plpgsql STABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
BEGIN
    RETURN CASE t.watermark_kind
        WHEN 'integer' THEN value::numeric::text
        WHEN 'timestamp' THEN quote_literal(value::timestamp) || '::timestamp'
        WHEN 'timestamptz' THEN quote_literal(value::timestamptz) || '::timestamptz'
        WHEN 'date' THEN quote_literal(value::date) || '::date'
    END;
END
$$;

-- The same value as a MySQL constant (TIMESTAMP values are read in UTC)
CREATE FUNCTION etl_stream._mysql_value(t etl_stream.tables, value text) RETURNS text
LANGUAGE plpgsql STABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
BEGIN
    RETURN CASE t.watermark_kind
        WHEN 'integer' THEN value::numeric::text
        WHEN 'timestamp' THEN quote_literal(to_char(value::timestamp, 'YYYY-MM-DD HH24:MI:SS.US'))
        WHEN 'timestamptz' THEN quote_literal(to_char(value::timestamptz AT TIME ZONE 'UTC',
                                                      'YYYY-MM-DD HH24:MI:SS.US'))
        WHEN 'date' THEN quote_literal(to_char(value::date, 'YYYY-MM-DD'))
    END;
END
$$;

-- The canonical text of a watermark value
CREATE FUNCTION etl_stream._canonical(t etl_stream.tables, value text) RETURNS text
LANGUAGE plpgsql STABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
BEGIN
    RETURN CASE t.watermark_kind
        WHEN 'integer' THEN value::numeric::text
        WHEN 'timestamp' THEN to_char(value::timestamp, 'YYYY-MM-DD HH24:MI:SS.US')
        WHEN 'timestamptz' THEN to_char(value::timestamptz AT TIME ZONE 'UTC',
                                        'YYYY-MM-DD HH24:MI:SS.US') || '+00'
        WHEN 'date' THEN to_char(value::date, 'YYYY-MM-DD')
    END;
END
$$;

-- The cutoff of the next run: last high watermark minus the look-back,
-- computed now, as canonical text.  NULL: pull everything.
CREATE FUNCTION etl_stream._cutoff(t etl_stream.tables) RETURNS text
LANGUAGE plpgsql STABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
BEGIN
    IF t.high_watermark IS NULL OR t.strategy = 'full_refresh' OR t.watermark IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN etl_stream._canonical(t, CASE t.watermark_kind
        WHEN 'integer' THEN (t.high_watermark::numeric - t.lookback::numeric)::text
        WHEN 'timestamp' THEN (t.high_watermark::timestamp - t.lookback::interval)::text
        WHEN 'timestamptz' THEN (t.high_watermark::timestamptz - t.lookback::interval)::text
        WHEN 'date' THEN (t.high_watermark::date - t.lookback::interval)::date::text
    END);
END
$$;

--
-- The statements a run executes, with the cutoff (and an optional upper
-- bound) written in as literal constants.
--
CREATE TYPE etl_stream.plan AS (
    cutoff      text,       -- lower bound, inclusive; NULL: none
    upper_bound text,       -- upper bound, exclusive; NULL: none
    remote_sql  text,       -- runs on MySQL
    remote_from text,       -- its FROM and WHERE, for another column order
    delete_sql  text,       -- delete_insert: the target rows being replaced
    merge_sql   text        -- staging -> target; returns (inserted, updated, batch)
);

CREATE FUNCTION etl_stream._plan(t etl_stream.tables, range_from text, range_to text,
                                 into_table text DEFAULT NULL)
RETURNS etl_stream.plan
LANGUAGE plpgsql STABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    p etl_stream.plan;
    target text := coalesce(into_table, format('%I.%I', t.target_schema, t.target_table));
    staging text := format('etl_stream_staging.%I', t.name);
    remote_cols text;
    cols text;
    src_cols text;
    keys text;
    nonkey text[];
    src text;
    conds text[] := '{}';
    remote_conds text[] := '{}';
BEGIN
    p.cutoff := coalesce(etl_stream._canonical(t, range_from), etl_stream._cutoff(t));
    p.upper_bound := etl_stream._canonical(t, range_to);

    SELECT string_agg(etl_stream.mysql_ident(c), ', '), string_agg(format('%I', c), ', '),
           string_agg(format('s.%I', c), ', ')
      INTO remote_cols, cols, src_cols
      FROM unnest(t.columns) c;
    SELECT string_agg(format('%I', k), ', ') INTO keys FROM unnest(t.key_columns) k;
    SELECT array_agg(c) INTO nonkey FROM unnest(t.columns) c WHERE c <> ALL (t.key_columns);

    IF p.cutoff IS NOT NULL THEN
        remote_conds := remote_conds || format('%s >= %s', etl_stream.mysql_ident(t.watermark),
                                               etl_stream._mysql_value(t, p.cutoff));
        conds := conds || format('%I >= %s', t.watermark, etl_stream._typed_literal(t, p.cutoff));
    END IF;
    IF p.upper_bound IS NOT NULL THEN
        remote_conds := remote_conds || format('%s < %s', etl_stream.mysql_ident(t.watermark),
                                               etl_stream._mysql_value(t, p.upper_bound));
        conds := conds || format('%I < %s', t.watermark, etl_stream._typed_literal(t, p.upper_bound));
    END IF;
    p.remote_from := ' FROM ' || etl_stream._source_name(t);
    IF remote_conds <> '{}' THEN
        p.remote_from := p.remote_from || ' WHERE ' || array_to_string(remote_conds, ' AND ');
    END IF;
    p.remote_sql := 'SELECT ' || remote_cols || p.remote_from;

    -- the batch: one row per key, the newest by watermark (ties: the last pulled)
    IF cardinality(t.key_columns) > 0 THEN
        src := format('SELECT DISTINCT ON (%s) %s FROM %s s ORDER BY %s%s, s.ctid DESC',
                      keys, src_cols, staging, keys,
                      CASE WHEN t.watermark IS NOT NULL
                           THEN format(', s.%I DESC NULLS LAST', t.watermark) ELSE '' END);
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
                 ELSE format('DO UPDATE SET (%s) = ROW(%s) WHERE (%s) IS DISTINCT FROM (%s)',
                             (SELECT string_agg(format('%I', c), ', ') FROM unnest(nonkey) c),
                             (SELECT string_agg(format('EXCLUDED.%I', c), ', ') FROM unnest(nonkey) c),
                             (SELECT string_agg(format('t.%I', c), ', ') FROM unnest(nonkey) c),
                             (SELECT string_agg(format('EXCLUDED.%I', c), ', ') FROM unnest(nonkey) c))
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

-- The staging table: UNLOGGED, no indexes or constraints, the target's
-- column types; re-made only when they change.
-- A column as CREATE TABLE spells it: name, type, and its collation when
-- it is not the type's own
CREATE FUNCTION etl_stream._column_def(a pg_attribute) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod))
         || CASE WHEN a.attcollation <> 0 AND a.attcollation <> y.typcollation
                 THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END
    FROM pg_type y WHERE y.oid = a.atttypid
$$;

CREATE FUNCTION etl_stream._prepare_staging(t etl_stream.tables) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    target regclass := format('%I.%I', t.target_schema, t.target_table)::regclass;
    staging text := format('etl_stream_staging.%I', t.name);
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
CREATE FUNCTION etl_stream._fresh_table(t etl_stream.tables) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    target regclass := format('%I.%I', t.target_schema, t.target_table)::regclass;
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
CREATE FUNCTION etl_stream._unused_name(schema name, base name) RETURNS name
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

CREATE FUNCTION etl_stream._swap_in(t etl_stream.tables, fresh text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    target_name text := format('%I.%I', t.target_schema, t.target_table);
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
CREATE FUNCTION etl_stream._batch_watermark(t etl_stream.tables, landed_in text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    result text;
BEGIN
    EXECUTE format('SELECT max(%I)::text FROM %s', t.watermark,
                   coalesce(landed_in, format('etl_stream_staging.%I', t.name)))
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
--
CREATE FUNCTION etl_stream._direct_sql(t etl_stream.tables, dest regclass, p etl_stream.plan)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    target regclass := format('%I.%I', t.target_schema, t.target_table)::regclass;
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
    IF t.strategy <> 'full_refresh' THEN
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

-- The later of two watermark values (either may be NULL)
CREATE FUNCTION etl_stream._later(t etl_stream.tables, a text, b text) RETURNS text
LANGUAGE plpgsql STABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
BEGIN
    IF a IS NULL OR b IS NULL THEN
        RETURN etl_stream._canonical(t, coalesce(a, b));
    END IF;
    RETURN etl_stream._canonical(t, CASE t.watermark_kind
        WHEN 'integer' THEN greatest(a::numeric, b::numeric)::text
        WHEN 'timestamp' THEN greatest(a::timestamp, b::timestamp)::text
        WHEN 'timestamptz' THEN greatest(a::timestamptz, b::timestamptz)::text
        WHEN 'date' THEN greatest(a::date, b::date)::text
    END);
END
$$;

--
-- sync: one run of one table.  Pull the rows at or past the cutoff into
-- staging, merge them by the table's strategy, advance the watermark, and
-- record the run.  Pull, merge and watermark commit together with the
-- caller's transaction or not at all; a failure is rolled back (target and
-- watermark stay as they were), recorded as a 'failed' run and returned,
-- with a WARNING.  A cancel or statement_timeout is not caught: it aborts
-- the caller's statement as usual.
--
CREATE FUNCTION etl_stream.sync(name text, wait boolean DEFAULT false,
                                range_from text DEFAULT NULL, range_to text DEFAULT NULL)
RETURNS etl_stream.runs
LANGUAGE plpgsql AS $$
DECLARE
    t etl_stream.tables := etl_stream._get(name);
    r etl_stream.runs;
    p etl_stream.plan;
    phase text;
    t0 timestamptz;
    landed record;
    staged bigint;
    batch bigint;
    target text := format('%I.%I', t.target_schema, t.target_table);
    staging text := format('etl_stream_staging.%I', t.name);
    fresh text;
    dest text;
    remote text;
    label text;
    live real;
    threshold real;
    detail text;
    context text;
    days int;
BEGIN
    r.table_name := t.name;
    r.started_at := clock_timestamp();
    r.strategy := t.strategy;
    r.rows_pulled := 0; r.rows_landed := 0; r.rows_inserted := 0;
    r.rows_updated := 0; r.rows_unchanged := 0; r.rows_deleted := 0;

    IF NOT t.enabled THEN
        RAISE EXCEPTION 'etl_stream table "%" is disabled', t.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Enable it with SELECT etl_stream.enable_table(%L).', t.name);
    END IF;
    IF (range_from IS NOT NULL OR range_to IS NOT NULL) AND t.watermark IS NULL THEN
        RAISE EXCEPTION 'etl_stream table "%" has no watermark to take a range of', t.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- one run per table at a time: the catalog row is the lock
    BEGIN
        IF wait THEN
            SELECT * INTO t FROM etl_stream.tables x WHERE x.name = t.name FOR NO KEY UPDATE;
        ELSE
            SELECT * INTO t FROM etl_stream.tables x WHERE x.name = t.name FOR NO KEY UPDATE NOWAIT;
        END IF;
    EXCEPTION WHEN lock_not_available THEN
        r.status := 'skipped';
        r.error := 'another sync of this table is running';
    END;

    IF r.status IS NULL THEN
        -- the cutoff is computed now, from the watermark just locked
        p := etl_stream._plan(t, range_from, range_to);
        r.cutoff := p.cutoff;
        BEGIN
            phase := 'connect';
            t0 := clock_timestamp();
            PERFORM etl_stream.ping(t.server);
            r.connect_s := extract(epoch FROM clock_timestamp() - t0);

            -- an initial load goes straight into the target (full_refresh:
            -- into the fresh table) when it can; see _direct_sql
            phase := 'pull';
            t0 := clock_timestamp();
            label := format('table "%s" (MySQL %s)', t.name, etl_stream._source_name(t));
            BEGIN
                IF t.strategy = 'full_refresh' THEN
                    fresh := etl_stream._fresh_table(t);
                END IF;
                dest := coalesce(fresh, target);
                remote := etl_stream._direct_sql(t, dest::regclass, p);
                IF remote IS NOT NULL THEN
                    r.load_path := 'direct';
                    SELECT * INTO landed
                      FROM etl_stream.land(t.server, remote, dest::regclass, t.key_columns, label, target::regclass);
                    EXECUTE format('SELECT count(*) FROM %s', dest) INTO staged;
                    r.pull_s := extract(epoch FROM clock_timestamp() - t0);
                    phase := 'merge';
                    t0 := clock_timestamp();
                    IF fresh IS NOT NULL THEN
                        EXECUTE format('SELECT count(*) FROM %s', target) INTO r.rows_deleted;
                        PERFORM etl_stream._swap_in(t, fresh);
                    END IF;
                END IF;
            EXCEPTION WHEN unique_violation THEN
                -- rows that are one key to PostgreSQL though not to MySQL
                -- (a nondeterministic collation, say): staging keeps the
                -- newest of them
                RAISE LOG 'etl_stream: table "%" is loaded through staging: %', t.name, SQLERRM;
                fresh := NULL;
                r.load_path := NULL;
                r.rows_deleted := 0;
                phase := 'pull';
                t0 := clock_timestamp();
            END;

            IF r.load_path IS NULL THEN
                r.load_path := 'staging';
                PERFORM etl_stream._prepare_staging(t);
                SELECT * INTO landed
                  FROM etl_stream.land(t.server, p.remote_sql, staging::regclass, t.key_columns, label,
                                       target::regclass);
                EXECUTE format('SELECT count(*) FROM %s', staging) INTO staged;
            END IF;
            r.rows_pulled := landed.rows_pulled;
            r.rows_landed := landed.rows_landed;
            IF landed.rows_pulled <> landed.rows_landed OR staged <> landed.rows_landed THEN
                RAISE EXCEPTION 'rows pulled and rows landed disagree for table "%"', t.name
                    USING ERRCODE = 'data_exception',
                          DETAIL = format('%s rows were read from MySQL, %s written to %s, %s found there.',
                                          landed.rows_pulled, landed.rows_landed,
                                          CASE r.load_path WHEN 'direct' THEN dest ELSE staging END, staged);
            END IF;

            IF r.load_path = 'direct' THEN
                r.rows_inserted := landed.rows_landed;
                r.merge_s := extract(epoch FROM clock_timestamp() - t0);
            ELSE
                r.pull_s := extract(epoch FROM clock_timestamp() - t0);
                phase := 'merge';
                t0 := clock_timestamp();
                IF t.strategy = 'full_refresh' THEN
                    fresh := coalesce(fresh, etl_stream._fresh_table(t));
                    p := etl_stream._plan(t, range_from, range_to, fresh);
                    EXECUTE format('SELECT count(*) FROM %s', target) INTO r.rows_deleted;
                END IF;
                IF p.delete_sql IS NOT NULL THEN
                    EXECUTE p.delete_sql;
                    GET DIAGNOSTICS r.rows_deleted = ROW_COUNT;
                END IF;
                EXECUTE p.merge_sql INTO r.rows_inserted, r.rows_updated, batch;
                r.rows_unchanged := batch - r.rows_inserted - r.rows_updated;
                IF fresh IS NOT NULL THEN
                    PERFORM etl_stream._swap_in(t, fresh);
                END IF;
                r.merge_s := extract(epoch FROM clock_timestamp() - t0);
            END IF;

            phase := 'finish';
            t0 := clock_timestamp();
            r.new_watermark := t.high_watermark;
            IF t.watermark IS NOT NULL AND range_from IS NULL AND range_to IS NULL THEN
                r.new_watermark := etl_stream._later(t, t.high_watermark,
                                                     etl_stream._batch_watermark(t,
                                                         CASE r.load_path WHEN 'direct' THEN target END));
                UPDATE etl_stream.tables x SET high_watermark = r.new_watermark WHERE x.name = t.name;
            END IF;
            -- keep the planner's statistics in step after a large change
            -- (etl_stream.analyze_threshold; -1 leaves it to autovacuum)
            SELECT reltuples INTO live FROM pg_class WHERE oid = target::regclass;
            threshold := coalesce(nullif(current_setting('etl_stream.analyze_threshold', true), ''), '0.1')::real;
            IF threshold >= 0 AND r.rows_inserted + r.rows_updated + r.rows_deleted > 0 AND
               (live < 0 OR fresh IS NOT NULL OR
                r.rows_inserted + r.rows_updated + r.rows_deleted > threshold * live) THEN
                EXECUTE format('ANALYZE %s', target);
            END IF;
            r.finish_s := extract(epoch FROM clock_timestamp() - t0);
            r.status := 'success';
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS r.error = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL,
                                    context = PG_EXCEPTION_CONTEXT;
            IF detail <> '' THEN
                r.error := r.error || E'\n' || detail;
            END IF;
            -- keep what conversion said about the row (column, key, value),
            -- not the PL/pgSQL call stack
            SELECT r.error || coalesce(E'\n' || string_agg(l, E'\n'), '') INTO r.error
              FROM regexp_split_to_table(context, E'\n') l
             WHERE l ~ '^column "';
            r.status := 'failed';
            r.failed_phase := phase;
            r.rows_inserted := 0; r.rows_updated := 0; r.rows_unchanged := 0; r.rows_deleted := 0;
            r.new_watermark := t.high_watermark;
            RAISE WARNING 'sync of etl_stream table "%" failed while %: %', t.name,
                CASE phase WHEN 'connect' THEN 'connecting' WHEN 'pull' THEN 'pulling'
                           WHEN 'merge' THEN 'merging' ELSE 'finishing' END, r.error;
        END;
    END IF;

    r.finished_at := clock_timestamp();
    INSERT INTO etl_stream.runs (table_name, started_at, finished_at, status, strategy,
                                 rows_pulled, rows_landed, rows_inserted, rows_updated,
                                 rows_unchanged, rows_deleted, cutoff, new_watermark,
                                 connect_s, pull_s, merge_s, finish_s, failed_phase, error, load_path)
    VALUES (r.table_name, r.started_at, r.finished_at, r.status, r.strategy,
            r.rows_pulled, r.rows_landed, r.rows_inserted, r.rows_updated,
            r.rows_unchanged, r.rows_deleted, r.cutoff, r.new_watermark,
            r.connect_s, r.pull_s, r.merge_s, r.finish_s, r.failed_phase, r.error, r.load_path)
    RETURNING * INTO r;

    -- history is kept for etl_stream.history_days, not for ever
    days := coalesce(nullif(current_setting('etl_stream.history_days', true), ''), '30')::int;
    IF days > 0 THEN
        DELETE FROM etl_stream.runs x
         WHERE x.table_name = t.name AND x.finished_at < now() - make_interval(days => days);
    END IF;
    RETURN r;
END
$$;

COMMENT ON FUNCTION etl_stream.sync(text, boolean, text, text) IS
  'pull, merge and advance the watermark of one registered table; returns the run';

CREATE FUNCTION etl_stream.sync_all(wait boolean DEFAULT false)
RETURNS SETOF etl_stream.runs
LANGUAGE plpgsql AS $$
DECLARE
    n text;
BEGIN
    FOR n IN SELECT name FROM etl_stream.tables WHERE enabled ORDER BY name LOOP
        RETURN NEXT etl_stream.sync(n, wait);
    END LOOP;
END
$$;

COMMENT ON FUNCTION etl_stream.sync_all(boolean) IS
  'sync every enabled table, one after the other; returns a run each';

--
-- explain: what the next sync would run, with its literal cutoff, and the
-- plans of the statements that touch the target.
--
CREATE FUNCTION etl_stream.explain(name text, range_from text DEFAULT NULL,
                                   range_to text DEFAULT NULL, costs boolean DEFAULT true)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    t etl_stream.tables := etl_stream._get(name);
    p etl_stream.plan := etl_stream._plan(t, range_from, range_to);
    line text;
BEGIN
    IF to_regclass(format('etl_stream_staging.%I', t.name)) IS NULL THEN
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

--
-- status: one row per registered table
--
CREATE VIEW etl_stream.status AS
SELECT t.name,
       t.enabled,
       t.strategy,
       t.watermark,
       t.high_watermark AS current_watermark,
       CASE t.watermark_kind
           WHEN 'integer' THEN
               CASE WHEN t.high_watermark::numeric BETWEEN 946684800 AND 4102444800
                    THEN now() - to_timestamp(t.high_watermark::double precision) END
           WHEN 'timestamp' THEN localtimestamp - t.high_watermark::timestamp
           WHEN 'timestamptz' THEN now() - t.high_watermark::timestamptz
           WHEN 'date' THEN make_interval(days => current_date - t.high_watermark::date)
       END AS watermark_lag,
       ok.finished_at AS last_success,
       now() - ok.finished_at AS since_last_success,
       last.status AS last_status,
       last.rows_pulled AS last_rows_pulled,
       last.rows_inserted + last.rows_updated + last.rows_deleted AS last_rows_changed,
       last.finished_at - last.started_at AS last_duration,
       bad.finished_at AS last_failure,
       bad.error AS last_error
  FROM etl_stream.tables t
  LEFT JOIN LATERAL (SELECT * FROM etl_stream.runs r WHERE r.table_name = t.name
                      ORDER BY r.finished_at DESC LIMIT 1) last ON true
  LEFT JOIN LATERAL (SELECT * FROM etl_stream.runs r WHERE r.table_name = t.name AND r.status = 'success'
                      ORDER BY r.finished_at DESC LIMIT 1) ok ON true
  LEFT JOIN LATERAL (SELECT * FROM etl_stream.runs r WHERE r.table_name = t.name AND r.status = 'failed'
                      ORDER BY r.finished_at DESC LIMIT 1) bad ON true;

COMMENT ON VIEW etl_stream.status IS
  'per registered table: watermark, how far behind, last success, last run, last error';

--
-- progress: syncs pulling right now, with rows landed so far.  The landing
-- reports through PostgreSQL's COPY progress counters (it is a bulk load
-- into staging, or into the target), with the target's oid in a counter
-- COPY leaves unused: staging made in the running transaction has no name
-- other sessions can see.  The phases after the pull are not shown yet.
--
CREATE VIEW etl_stream.progress AS
SELECT p.pid,
       t.name AS table_name,
       'pull'::text AS phase,
       p.param3 AS rows_landed,
       p.param1 AS bytes_landed,
       a.xact_start AS started_at,
       now() - a.xact_start AS running_for
  FROM pg_stat_get_progress_info('COPY') p
  JOIN etl_stream.tables t
    ON p.param20 <> 0
   AND p.param20 = to_regclass(format('%I.%I', t.target_schema, t.target_table))::oid
  LEFT JOIN pg_stat_activity a ON a.pid = p.pid
 WHERE p.datid = (SELECT oid FROM pg_database WHERE datname = current_database());

COMMENT ON VIEW etl_stream.progress IS
  'syncs pulling right now: table, rows and bytes landed so far';
