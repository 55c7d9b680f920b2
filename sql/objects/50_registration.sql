--
-- Registration: add_table reads a MySQL table's columns, natural types and
-- key; alter, enable, disable and drop a registration.  create_target (with
-- _deleted_at for deletes => 'flag') and
-- the check of the source's columns at each run are in 52_source_schema.sql.
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

-- What a run does when the source's columns changed (docs/sync.md)
CREATE OR REPLACE FUNCTION etl_stream._check_on_schema_change(value text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF value IS NULL OR value <> ALL (ARRAY['warn', 'fail', 'add_columns']) THEN
        RAISE EXCEPTION 'invalid on_schema_change "%"', value
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid values are: warn, fail, add_columns.';
    END IF;
END
$$;

--
-- deletes: what a sync does with a target row whose key MySQL no longer
-- has.  Only merge keeps rows a sync did not bring: delete_insert and
-- full_refresh replace what they read, so a row gone from the source is
-- gone from the target already, and append keeps every row it loaded.
--
CREATE OR REPLACE FUNCTION etl_stream._check_deletes(t etl_stream.tables) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF t.deletes IS NULL OR t.deletes <> ALL (etl_stream._delete_policies()) THEN
        RAISE EXCEPTION 'invalid deletes "%"', coalesce(t.deletes, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Valid values are: %s.', array_to_string(etl_stream._delete_policies(), ', '));
    END IF;
    IF t.deletes <> 'keep' AND t.strategy <> 'merge' THEN
        RAISE EXCEPTION 'deletes => ''%'' needs strategy merge, and etl_stream table "%" has strategy %',
                t.deletes, t.name, t.strategy
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = CASE t.strategy
                      WHEN 'append' THEN 'append keeps every row it has loaded: rows are never deleted or flagged.'
                      ELSE format('%s replaces the rows of each run''s range, so a row gone from MySQL leaves the target already.', t.strategy) END,
                  HINT = 'Use deletes => ''keep'' with this strategy, or strategy merge.';
    END IF;
    IF t.deletes = 'flag' AND '_deleted_at' = ANY (t.columns) THEN
        RAISE EXCEPTION 'deletes => ''flag'' needs a column _deleted_at of its own, and etl_stream table "%" moves one', t.name
            USING ERRCODE = 'duplicate_column',
                  HINT = 'Leave _deleted_at out of columns, or use deletes => ''delete''.';
    END IF;
END
$$;

-- on_bad_value: what a run does with a row whose value does not convert
CREATE OR REPLACE FUNCTION etl_stream._check_bad_value_policy(policy text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF policy NOT IN ('error', 'skip', 'quarantine') THEN
        RAISE EXCEPTION 'invalid on_bad_value "%"', policy
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Valid values are: error, skip, quarantine.';
    END IF;
    RETURN policy;
END
$$;

-- deletes => 'flag': the target gets its _deleted_at column (NULL: live)
CREATE OR REPLACE FUNCTION etl_stream._add_deleted_at(t etl_stream.tables) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF t.deletes = 'flag' AND to_regclass(etl_stream._target_name(t)) IS NOT NULL THEN
        EXECUTE format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS _deleted_at timestamptz',
                       etl_stream._target_name(t));
    END IF;
END
$$;

-- Registration names are one namespace in the database (they name staging
-- tables and the runs of etl_stream.runs, a transform's too), whoever owns
-- them; whether a name is taken, seen through every role's rows
CREATE OR REPLACE FUNCTION etl_stream._registration_exists(name text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT FROM etl_stream.tables t WHERE t.name = _registration_exists.name)
    OR EXISTS (SELECT FROM etl_stream.transforms x WHERE x.name = _registration_exists.name);

-- A new table or transform (kind) needs a name that no table or transform
-- has: one of the caller's own kind, one of the other kind, or one of
-- another role's, each said as such
CREATE OR REPLACE FUNCTION etl_stream._check_name_free(name text, kind text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    other text := CASE kind WHEN 'table' THEN 'transform' ELSE 'table' END;
    mine boolean := EXISTS (SELECT FROM etl_stream.tables x WHERE x.name = _check_name_free.name);
    theirs boolean := EXISTS (SELECT FROM etl_stream.transforms x WHERE x.name = _check_name_free.name);
BEGIN
    IF kind = 'transform' THEN
        SELECT theirs, mine INTO mine, theirs;
    END IF;
    IF mine THEN
        RAISE EXCEPTION 'etl_stream % "%" already exists', kind, name
            USING ERRCODE = 'duplicate_object',
                  HINT = format('Use etl_stream.alter_%1$s to change it, or etl_stream.drop_%1$s first.', kind);
    ELSIF theirs THEN
        RAISE EXCEPTION 'etl_stream % "%" exists: a % needs a name of its own', other, name, kind
            USING ERRCODE = 'duplicate_object',
                  DETAIL = 'Transforms and tables share the names of etl_stream.runs.';
    ELSIF etl_stream._registration_exists(name) THEN
        RAISE EXCEPTION 'etl_stream % "%" already exists', kind, name
            USING ERRCODE = 'duplicate_object',
                  DETAIL = 'A table or transform of that name belongs to a role whose privileges you do not have.',
                  HINT = 'Names are shared by all roles in the database: choose another.';
    END IF;
END
$$;

--
-- column_map renames MySQL columns for PostgreSQL ({"mysql name": "pg
-- name"}); every other argument names columns as PostgreSQL will.
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
    enabled boolean DEFAULT true,
    depends_on text[] DEFAULT NULL,
    retries integer DEFAULT 3,
    retry_backoff interval DEFAULT '30 s',
    timeout interval DEFAULT NULL,
    on_schema_change text DEFAULT 'warn',
    column_map jsonb DEFAULT NULL,
    on_bad_value text DEFAULT 'error',
    deletes text DEFAULT 'keep')
RETURNS etl_stream.tables
LANGUAGE plpgsql AS $$
DECLARE
    t etl_stream.tables;
    src text;
    where_db text;
    all_src text[];
    all_cols text[];
    all_types text[];
    wm_type text;
    missing text[];
    twice text;
BEGIN
    PERFORM etl_stream._check_name_free(add_table.name, 'table');
    IF column_map IS NOT NULL AND (jsonb_typeof(column_map) <> 'object' OR EXISTS (
           SELECT FROM jsonb_each(column_map) m WHERE jsonb_typeof(m.value) <> 'string')) THEN
        RAISE EXCEPTION 'column_map must be a JSON object of strings'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example: column_map => ''{"mysql column": "pg_column"}''.';
    END IF;
    PERFORM etl_stream._check_strategy(strategy);
    PERFORM etl_stream._check_on_schema_change(add_table.on_schema_change);

    t.name := add_table.name;
    t.server := add_table.server;
    t.source_schema := add_table.source_schema;
    t.source_table := add_table.source_table;
    t.target_schema := add_table.target_schema;
    -- the target is named after the registration unless named: in full
    IF add_table.target_table IS NULL AND octet_length(add_table.name) > 63 THEN
        RAISE EXCEPTION 'etl_stream table name "%" is too long for the name of its target', add_table.name
            USING ERRCODE = 'name_too_long',
                  DETAIL = format('The name has %s bytes; PostgreSQL keeps 63.', octet_length(add_table.name)),
                  HINT = 'Name the target with target_table.';
    END IF;
    t.target_table := coalesce(add_table.target_table, add_table.name);
    t.strategy := add_table.strategy;
    t.enabled := add_table.enabled;
    t.watermark := add_table.watermark;
    src := etl_stream._source_name(t);
    where_db := CASE WHEN t.source_schema IS NULL THEN 'DATABASE()'
                     ELSE etl_stream.mysql_literal(t.source_schema) END;

    -- every column of the source, with its natural type, in table order;
    -- all_cols names them as PostgreSQL will (column_map applied)
    SELECT array_agg(d.name ORDER BY d.position), array_agg(d.natural_type ORDER BY d.position),
           array_agg(coalesce(column_map ->> d.name, d.name) ORDER BY d.position)
      INTO all_src, all_types, all_cols
      FROM etl_stream.describe(t.server, format('SELECT * FROM %s LIMIT 0', src)) d;
    SELECT array_agg(k) INTO missing FROM jsonb_object_keys(column_map) k WHERE k <> ALL (all_src);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'column_map names column % of %, which is not on server "%"',
                array_to_string(missing, ', '), src, t.server
            USING ERRCODE = 'undefined_column';
    END IF;
    SELECT min(c) INTO twice FROM unnest(all_cols) c GROUP BY c HAVING count(*) > 1;
    IF twice IS NOT NULL THEN
        RAISE EXCEPTION 'column_map gives two columns of % the name "%"', src, twice
            USING ERRCODE = 'duplicate_column';
    END IF;

    -- what the source has now (MySQL's names): a later run compares the
    -- source with it
    t.source_columns := all_src;
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
        SELECT coalesce(array_agg(all_cols[array_position(all_src, k.col)] ORDER BY k.seq), '{}')
          INTO t.key_columns
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
    t.on_schema_change := add_table.on_schema_change;
    t.on_bad_value := etl_stream._check_bad_value_policy(coalesce(add_table.on_bad_value, 'error'));
    PERFORM etl_stream._check_retry_settings(t);
    t.owner := current_user;
    -- the MySQL names, kept only where column_map changed one
    IF column_map IS NOT NULL THEN
        SELECT array_agg(all_src[array_position(all_cols, c)] ORDER BY o) INTO t.source_names
          FROM unnest(t.columns) WITH ORDINALITY u(c, o);
        IF t.source_names = t.columns THEN
            t.source_names := NULL;
        END IF;
    END IF;
    PERFORM etl_stream._check_column_names(t);
    t.deletes := coalesce(add_table.deletes, 'keep');
    PERFORM etl_stream._check_deletes(t);
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
    timeout interval DEFAULT NULL,
    on_schema_change text DEFAULT NULL,
    on_bad_value text DEFAULT NULL,
    deletes text DEFAULT NULL)
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
    IF on_schema_change IS NOT NULL THEN
        PERFORM etl_stream._check_on_schema_change(on_schema_change);
        t.on_schema_change := on_schema_change;
    END IF;
    IF on_bad_value IS NOT NULL THEN
        t.on_bad_value := etl_stream._check_bad_value_policy(on_bad_value);
    END IF;
    PERFORM etl_stream._check_retry_settings(t);
    t.deletes := coalesce(deletes, t.deletes);
    PERFORM etl_stream._check_deletes(t);
    -- leaving 'flag' keeps the column and its values: they are the user's now
    PERFORM etl_stream._add_deleted_at(t);
    UPDATE etl_stream.tables x SET strategy = t.strategy, lookback = t.lookback,
           enabled = t.enabled, high_watermark = t.high_watermark, depends_on = t.depends_on,
           retries = t.retries, retry_backoff = t.retry_backoff, timeout = t.timeout,
           on_schema_change = t.on_schema_change, on_bad_value = t.on_bad_value,
           deletes = t.deletes
     WHERE x.name = t.name;
    RETURN t;
END
$$;

-- What runs as a job of its own (backfill, repair, sweep_deletes) refuses a
-- disabled table
CREATE OR REPLACE FUNCTION etl_stream._check_enabled(t etl_stream.tables) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT t.enabled THEN
        RAISE EXCEPTION 'etl_stream table "%" is disabled', t.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Enable it with SELECT etl_stream.enable_table(%L).', t.name);
    END IF;
END
$$;

-- What runs slice by slice (backfill, repair) refuses a disabled table,
-- and a full_refresh one: each slice's run would replace the whole target
CREATE OR REPLACE FUNCTION etl_stream._check_sliceable(t etl_stream.tables, doing text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM etl_stream._check_enabled(t);
    IF t.strategy = 'full_refresh' THEN
        RAISE EXCEPTION 'etl_stream table "%" cannot be %: its strategy is full_refresh', t.name, doing
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'A full_refresh run replaces the whole target, so slices cannot add up.',
                  HINT = format('Sync it with SELECT etl_stream.sync(%L), or register it with strategy delete_insert or merge.', t.name);
    END IF;
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
