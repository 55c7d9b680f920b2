/* etl_stream--0.1.0--0.2.0.sql: the upgrade to 0.2.0, as shipped (built from sql/objects and sql/upgrade at 2e27364) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION etl_stream UPDATE TO '0.2.0'" to load this file. \quit

-- ==== sql/upgrade/0.1.0--0.2.0.sql

--
-- 0.1.0 -> 0.2.0, before the functions and views are (re)defined: the run
-- became C (src/run.c) and records its failures' facts as columns, the
-- progress view reads shared memory, and the strategy and watermark-kind
-- lists live in one function each (sql/objects/05_vocabulary.sql).
--

-- the progress view changes its columns; CREATE OR REPLACE cannot do that
DROP VIEW etl_stream.progress;

-- the constraints are made again on the vocabulary, after it exists
ALTER TABLE etl_stream.tables
    DROP CONSTRAINT tables_strategy_check,
    DROP CONSTRAINT tables_watermark_kind_check;

ALTER TABLE etl_stream.runs
    ADD COLUMN sqlstate text,
    ADD COLUMN message text,
    ADD COLUMN detail text,
    ADD COLUMN hint text,
    ADD COLUMN error_column text,
    ADD COLUMN error_mysql_type text,
    ADD COLUMN error_key text,
    ADD COLUMN error_value text,
    ADD COLUMN attempt integer NOT NULL DEFAULT 1,
    ADD COLUMN job_id bigint,
    ADD COLUMN task_id bigint;

ALTER TYPE etl_stream.plan
    ADD ATTRIBUTE target text,
    ADD ATTRIBUTE staging text;

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
RETURN CASE WHEN t.source_schema IS NULL THEN ''
            ELSE etl_stream.mysql_ident(t.source_schema) || '.' END
       || etl_stream.mysql_ident(t.source_table);

-- The target, qualified and quoted for PostgreSQL
CREATE OR REPLACE FUNCTION etl_stream._target_name(t etl_stream.tables) RETURNS text
LANGUAGE sql STABLE
RETURN format('%I.%I', t.target_schema, t.target_table);

-- The table's staging table (registration names fit in an identifier)
CREATE OR REPLACE FUNCTION etl_stream._staging_name(t etl_stream.tables) RETURNS text
LANGUAGE sql STABLE
RETURN format('etl_stream_staging.%I', t.name);

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
RETURN etl_stream._wm_apply((SELECT k.canonical FROM etl_stream._watermark_kinds() k
                              WHERE k.kind = t.watermark_kind), value);

-- A value of the watermark's type as a PostgreSQL constant (prunable)
CREATE OR REPLACE FUNCTION etl_stream._typed_literal(t etl_stream.tables, value text) RETURNS text
LANGUAGE sql STABLE
RETURN etl_stream._wm_apply((SELECT k.pg_literal FROM etl_stream._watermark_kinds() k
                              WHERE k.kind = t.watermark_kind), value);

-- The same value as a MySQL constant (TIMESTAMP values are read in UTC)
CREATE OR REPLACE FUNCTION etl_stream._mysql_value(t etl_stream.tables, value text) RETURNS text
LANGUAGE sql STABLE
RETURN etl_stream._wm_apply((SELECT k.mysql_literal FROM etl_stream._watermark_kinds() k
                              WHERE k.kind = t.watermark_kind), value);

-- The cutoff of the next run: last high watermark minus the look-back,
-- computed now, as canonical text.  NULL: pull everything.
CREATE OR REPLACE FUNCTION etl_stream._cutoff(t etl_stream.tables) RETURNS text
LANGUAGE sql STABLE
RETURN CASE WHEN t.strategy <> 'full_refresh' THEN
    etl_stream._canonical(t, etl_stream._wm_apply(
        (SELECT format('$1::%s - $2::%s', k.sql_type, k.lookback_type)
           FROM etl_stream._watermark_kinds() k WHERE k.kind = t.watermark_kind),
        t.high_watermark, t.lookback)) END;

-- The later of two watermark values (either may be NULL)
CREATE OR REPLACE FUNCTION etl_stream._later(t etl_stream.tables, a text, b text) RETURNS text
LANGUAGE sql STABLE
RETURN etl_stream._canonical(t, CASE WHEN a IS NULL OR b IS NULL THEN coalesce(a, b) ELSE
    etl_stream._wm_apply((SELECT format('greatest($1::%1$s, $2::%1$s)', k.sql_type)
                            FROM etl_stream._watermark_kinds() k WHERE k.kind = t.watermark_kind),
                         a, b) END);

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
-- add_table: register a MySQL table.  Columns, their types and the key
-- come from the source's own metadata unless given.
--
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
    INSERT INTO etl_stream.tables SELECT t.*;
    RETURN t;
END
$$;

CREATE OR REPLACE FUNCTION etl_stream.alter_table(
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
    UPDATE etl_stream.tables x SET strategy = t.strategy, lookback = t.lookback,
           enabled = t.enabled, high_watermark = t.high_watermark
     WHERE x.name = t.name;
    RETURN t;
END
$$;

CREATE OR REPLACE FUNCTION etl_stream.disable_table(name text) RETURNS etl_stream.tables
LANGUAGE sql
RETURN etl_stream.alter_table(name, enabled => false);

CREATE OR REPLACE FUNCTION etl_stream.enable_table(name text) RETURNS etl_stream.tables
LANGUAGE sql
RETURN etl_stream.alter_table(name, enabled => true);

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
-- types, the key as primary key, an index on the watermark.
--
CREATE OR REPLACE FUNCTION etl_stream.create_target(name text) RETURNS regclass
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
    EXECUTE format('CREATE TABLE %s (%s)', target, cols);
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

CREATE OR REPLACE FUNCTION etl_stream._plan(t etl_stream.tables, range_from text, range_to text,
                                 into_table text DEFAULT NULL)
RETURNS etl_stream.plan
LANGUAGE plpgsql STABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    p etl_stream.plan;
    target text := coalesce(into_table, etl_stream._target_name(t));
    staging text := etl_stream._staging_name(t);
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
    p.target := target;
    p.staging := staging;

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

CREATE OR REPLACE FUNCTION etl_stream._prepare_staging(t etl_stream.tables) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    target regclass := etl_stream._target_name(t)::regclass;
    staging text := etl_stream._staging_name(t);
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
--
CREATE OR REPLACE FUNCTION etl_stream._direct_sql(t etl_stream.tables, dest regclass, p etl_stream.plan)
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

-- sync_all(): every enabled table in one transaction, the caller's.
CREATE OR REPLACE FUNCTION etl_stream.sync_all(wait boolean DEFAULT false)
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
  'sync every enabled table, one after the other, in the caller''s transaction; returns a run each';


-- sync_all_proc(): every enabled table, each in a transaction of its own,
-- committed before the next starts.  A procedure, so it can commit: CALL it
-- outside a transaction block.
CREATE OR REPLACE PROCEDURE etl_stream.sync_all_proc(wait boolean DEFAULT false)
AS 'MODULE_PATHNAME', 'etl_stream_sync_all_proc'
LANGUAGE C;

COMMENT ON PROCEDURE etl_stream.sync_all_proc(boolean) IS
  'sync every enabled table, committing each run before the next begins';

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
    OUT job_id bigint, OUT task_id bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'etl_stream_progress'
LANGUAGE C VOLATILE;

CREATE OR REPLACE VIEW etl_stream.progress AS
SELECT * FROM etl_stream._progress();

-- like pg_stat_activity: anyone may look, and sees what their role may see
GRANT SELECT ON etl_stream.progress TO PUBLIC;

COMMENT ON VIEW etl_stream.progress IS
  'runs going on right now: phase, rows pulled and landed so far, rate and time left';

-- ==== sql/upgrade/0.1.0--0.2.0-after.sql

--
-- 0.1.0 -> 0.2.0, after the functions are (re)defined
--
ALTER TABLE etl_stream.tables
    ADD CONSTRAINT tables_strategy_check CHECK (strategy = ANY (etl_stream._strategies())),
    ADD CONSTRAINT tables_watermark_kind_check
        CHECK (watermark_kind IS NULL OR etl_stream._is_watermark_kind(watermark_kind));
