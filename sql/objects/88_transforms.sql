--
-- Transforms: SQL run in PostgreSQL after the syncs of the tables it names
-- ("after"), in the same sync_all, sync_all_proc or schedule, with those
-- runs' cutoffs written into it as literal constants, so that the planner
-- prunes partitions and uses indexes on them (docs/sync.md, "Downstream
-- transforms").  The run itself is C (src/transform.c); what a placeholder
-- means is decided here.
--
-- Placeholders, for the first table of after, or for any of them as
-- :name.table (:name."Table" for a name that needs quotes):
--   :cutoff         the run's cutoff, a constant of the watermark's type
--   :new_watermark  the watermark after the run
--   :cutoff_date    the cutoff as a date
--   :touched_dates  the distinct dates of the column dates_from of the rows
--                   the sync pulled, as a date[] constant
--   :touched_from   the earliest of them, as a date ('infinity': none)
--

-- The placeholders' text as written, the literals they get: C, using
-- PostgreSQL's own lexer, so that nothing inside a string, a quoted name, a
-- comment or a cast (::) is taken for one.  A placeholder not among keys is
-- an error that lists the valid ones.
CREATE OR REPLACE FUNCTION etl_stream._transform_bind(sql text, keys text[], literals text[])
RETURNS text
AS 'MODULE_PATHNAME', 'etl_stream_transform_bind'
LANGUAGE C STRICT STABLE;

-- The statements of a (bound) SQL text, each as written; a syntax error is
-- raised as PostgreSQL's parser raises it.
CREATE OR REPLACE FUNCTION etl_stream._transform_statements(sql text)
RETURNS text[]
AS 'MODULE_PATHNAME', 'etl_stream_transform_statements'
LANGUAGE C STRICT STABLE;

-- An expression's date: unix seconds for integers, else a cast (in the
-- session's TimeZone for timestamptz and unix seconds)
CREATE OR REPLACE FUNCTION etl_stream._date_of(sql_type text, expr text) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN CASE WHEN sql_type ~ '^(smallint|integer|bigint|numeric)'
            THEN format('to_timestamp((%s)::double precision)::date', expr)
            ELSE format('(%s)::date', expr) END;

-- Whether a column of that type has a date (what dates_from may name)
CREATE OR REPLACE FUNCTION etl_stream._has_date(sql_type text) RETURNS boolean
LANGUAGE sql IMMUTABLE
RETURN sql_type ~ '^(smallint|integer|bigint|numeric|date|timestamp)';

-- The placeholders one table gives, with an example literal each (NULL),
-- for checking a transform's SQL: :touched_dates only if the table has the
-- column dates_from.
CREATE OR REPLACE FUNCTION etl_stream._table_placeholders(t etl_stream.tables, dates_from text)
RETURNS text[]
LANGUAGE sql STABLE
RETURN ARRAY['cutoff', 'new_watermark', 'cutoff_date']
       || CASE WHEN dates_from = ANY (t.columns) THEN ARRAY['touched_dates', 'touched_from'] ELSE '{}' END;

--
-- The rows run r of table t pulled, as a FROM item: its batch, while the
-- staging table still holds it (r went through staging, is the table's last
-- successful run, and no run of the table is going on: the registration
-- row is locked, FOR SHARE, to the end of the transaction), which costs
-- what the batch does; otherwise the target's rows at or past its cutoff
-- (a few more, which only costs their days' work), found through an index
-- on the watermark where the target has one.
--
CREATE OR REPLACE FUNCTION etl_stream._rows_of_run(t etl_stream.tables, r etl_stream.runs)
RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    staging text := etl_stream._staging_name(t);
    n bigint;
BEGIN
    IF r.cutoff IS NOT NULL AND r.load_path = 'staging' AND to_regclass(staging) IS NOT NULL
       AND r.run_id = (SELECT max(x.run_id) FROM etl_stream.runs x
                        WHERE x.table_name = t.name AND x.kind = 'sync' AND x.status = 'success') THEN
        BEGIN
            PERFORM FROM etl_stream.tables x WHERE x.name = t.name FOR SHARE NOWAIT;
            EXECUTE format('SELECT count(*) FROM %s', staging) INTO n;
            IF n = r.rows_landed THEN
                RETURN staging;
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            NULL;               -- a run of the table is going on: its staging is not ours
        END;
    END IF;
    IF r.cutoff IS NULL OR t.watermark IS NULL THEN
        RETURN etl_stream._target_name(t);
    END IF;
    RETURN format('%s WHERE %I >= %s', etl_stream._target_name(t), t.watermark,
                  etl_stream._typed_literal(t, r.cutoff));
END
$$;

--
-- The literals of one table's run r.  A run with no cutoff (the first
-- sync, a full_refresh, a table without watermark) read everything, so its
-- literals mean everything: -infinity for :cutoff and :cutoff_date,
-- infinity for a NULL :new_watermark, every date of the target for
-- :touched_dates.  Without a watermark :cutoff and :new_watermark are NULL.
--
CREATE OR REPLACE FUNCTION etl_stream._table_bindings(t etl_stream.tables, r etl_stream.runs,
                                                       dates_from text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    k record;
    b jsonb;
    target text := etl_stream._target_name(t);
    col_type text;
    dates date[];
    cutoff_date date;
BEGIN
    SELECT * INTO k FROM etl_stream._watermark_kinds() x WHERE x.kind = t.watermark_kind;
    IF r.cutoff IS NOT NULL THEN
        EXECUTE 'SELECT ' || etl_stream._date_of(k.sql_type, format('%L::%s', r.cutoff, k.sql_type))
           INTO cutoff_date;
    END IF;
    b := jsonb_build_object(
        'cutoff', CASE WHEN t.watermark IS NULL THEN 'NULL'
                       WHEN r.cutoff IS NULL THEN format('%L::%s', '-infinity', k.sql_type)
                       ELSE etl_stream._typed_literal(t, r.cutoff) END,
        'new_watermark', CASE WHEN t.watermark IS NULL THEN 'NULL'
                              WHEN r.new_watermark IS NULL THEN format('%L::%s', 'infinity', k.sql_type)
                              ELSE etl_stream._typed_literal(t, r.new_watermark) END,
        'cutoff_date', format('%L::date', coalesce(cutoff_date::text, '-infinity')));
    IF dates_from = ANY (t.columns) THEN
        SELECT format_type(a.atttypid, a.atttypmod) INTO col_type
          FROM pg_attribute a
         WHERE a.attrelid = target::regclass AND a.attname = dates_from AND NOT a.attisdropped;
        IF col_type IS NULL OR NOT etl_stream._has_date(col_type) THEN
            RAISE EXCEPTION 'the target % of etl_stream table "%" has no column "%" with a date',
                            target, t.name, dates_from
                USING ERRCODE = 'undefined_column',
                      HINT = ':touched_dates lists the dates of the transform''s dates_from column, which must be a date, timestamp or unix-seconds integer column of the target.';
        END IF;
        EXECUTE format('SELECT coalesce(array_agg(d ORDER BY d), ''{}'') FROM (SELECT DISTINCT %s AS d FROM %s) s',
                       etl_stream._date_of(col_type, quote_ident(dates_from)),
                       etl_stream._rows_of_run(t, r))
           INTO dates;
        b := b || jsonb_build_object('touched_dates', format('%L::date[]', dates::text),
                                     'touched_from', format('%L::date', coalesce(dates[1]::text, 'infinity')));
    END IF;
    RETURN b;
END
$$;

--
-- The literals of a transform's run: from the runs given (those of the
-- call that triggers it), or, with NULL, from the last successful sync of
-- each table it runs after.  Unqualified placeholders are the first
-- table's; cutoff and new_watermark are the first table's, as text, for
-- the record.
--
CREATE OR REPLACE FUNCTION etl_stream._transform_bindings(tr etl_stream.transforms,
                                                           run_ids bigint[] DEFAULT NULL,
                                                           OUT bindings jsonb, OUT cutoff text,
                                                           OUT new_watermark text, OUT runs bigint[])
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    a text;
    first boolean := true;
    t etl_stream.tables;
    r etl_stream.runs;
    one jsonb;
BEGIN
    bindings := '{}';
    runs := '{}';
    FOREACH a IN ARRAY tr.after LOOP
        t := etl_stream._get(a);
        SELECT * INTO r FROM etl_stream.runs x
         WHERE x.table_name = a AND x.kind = 'sync' AND x.status = 'success'
           AND (run_ids IS NULL OR x.run_id = ANY (run_ids))
         ORDER BY x.finished_at DESC, x.run_id DESC LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'etl_stream table "%", which transform "%" runs after, has no successful run',
                            a, tr.name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = format('Sync it first: SELECT etl_stream.sync(%L).', a);
        END IF;
        one := etl_stream._table_bindings(t, r, tr.dates_from);
        bindings := bindings || (SELECT jsonb_object_agg(key || '.' || quote_ident(a), value)
                                   FROM jsonb_each(one));
        IF first THEN
            bindings := bindings || one;
            cutoff := r.cutoff;
            new_watermark := r.new_watermark;
            first := false;
        END IF;
        runs := runs || r.run_id;
    END LOOP;
END
$$;

-- A transform's definition, checked: its tables registered, dates_from a
-- date of one of them, every placeholder known, the SQL parsed.
CREATE OR REPLACE FUNCTION etl_stream._check_transform(tr etl_stream.transforms)
RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    a text;
    t etl_stream.tables;
    keys text[] := '{}';
    p text;
    with_dates boolean := false;
    stmts text[];
BEGIN
    IF tr.after IS NULL OR cardinality(tr.after) = 0 THEN
        RAISE EXCEPTION 'a transform must run after at least one table'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (SELECT count(DISTINCT x) FROM unnest(tr.after) x) <> cardinality(tr.after) THEN
        RAISE EXCEPTION 'transform "%" names a table twice in after', tr.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH a IN ARRAY tr.after LOOP
        t := etl_stream._get(a);
        FOREACH p IN ARRAY etl_stream._table_placeholders(t, tr.dates_from) LOOP
            IF a = tr.after[1] THEN
                keys := keys || p;
            END IF;
            keys := keys || (p || '.' || quote_ident(a));
        END LOOP;
        IF tr.dates_from = ANY (t.columns) THEN
            with_dates := true;
            IF NOT etl_stream._has_date(t.column_types[array_position(t.columns, tr.dates_from)]) THEN
                RAISE EXCEPTION 'column "%" of etl_stream table "%" has no date', tr.dates_from, a
                    USING ERRCODE = 'datatype_mismatch',
                          DETAIL = format('It is of type %s.', t.column_types[array_position(t.columns, tr.dates_from)]),
                          HINT = 'dates_from names a date, timestamp or unix-seconds integer column.';
            END IF;
        END IF;
    END LOOP;
    IF tr.dates_from IS NOT NULL AND NOT with_dates THEN
        RAISE EXCEPTION 'none of the tables transform "%" runs after has a column "%"', tr.name, tr.dates_from
            USING ERRCODE = 'undefined_column';
    END IF;
    -- unknown placeholders and syntax errors are found now, not at 3 a.m.
    stmts := etl_stream._transform_statements(
                 etl_stream._transform_bind(tr.sql, keys, array_fill('NULL'::text, ARRAY[cardinality(keys)])));
    IF cardinality(stmts) = 0 THEN
        RAISE EXCEPTION 'the SQL of transform "%" has no statement', tr.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

--
-- add_transform: SQL to run after the syncs of the tables in after, with
-- their cutoffs as literals.  dates_from names the column whose dates
-- :touched_dates lists.
--
CREATE OR REPLACE FUNCTION etl_stream.add_transform(name text, after text[], sql text,
                                                    dates_from text DEFAULT NULL,
                                                    enabled boolean DEFAULT true)
RETURNS etl_stream.transforms
LANGUAGE plpgsql AS $$
DECLARE
    tr etl_stream.transforms;
BEGIN
    -- (runs are recorded under the name: no table may have it either)
    PERFORM etl_stream._check_name_free(add_transform.name, 'transform');
    -- (a definition that fails the check is rolled back with the error)
    INSERT INTO etl_stream.transforms (name, after, sql, dates_from, enabled)
    VALUES (add_transform.name, add_transform.after, add_transform.sql, add_transform.dates_from,
            coalesce(add_transform.enabled, true))
    RETURNING * INTO tr;
    PERFORM etl_stream._check_transform(tr);
    RETURN tr;
END
$$;

COMMENT ON FUNCTION etl_stream.add_transform(text, text[], text, text, boolean) IS
  'SQL to run after the syncs of the named tables, with their cutoffs as literals (:cutoff, :new_watermark, :cutoff_date, :touched_dates, :touched_from)';

-- alter_transform: what is given changes (dates_from => '' removes it)
CREATE OR REPLACE FUNCTION etl_stream.alter_transform(name text, after text[] DEFAULT NULL,
                                                      sql text DEFAULT NULL,
                                                      dates_from text DEFAULT NULL,
                                                      enabled boolean DEFAULT NULL)
RETURNS etl_stream.transforms
LANGUAGE plpgsql AS $$
DECLARE
    tr etl_stream.transforms;
BEGIN
    SELECT * INTO tr FROM etl_stream.transforms x WHERE x.name = alter_transform.name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'etl_stream transform "%" does not exist', alter_transform.name
            USING ERRCODE = 'undefined_object',
                  HINT = 'Your transforms are listed in etl_stream.transforms.';
    END IF;
    tr.after := coalesce(alter_transform.after, tr.after);
    tr.sql := coalesce(alter_transform.sql, tr.sql);
    tr.dates_from := CASE WHEN alter_transform.dates_from = '' THEN NULL
                          ELSE coalesce(alter_transform.dates_from, tr.dates_from) END;
    tr.enabled := coalesce(alter_transform.enabled, tr.enabled);
    PERFORM etl_stream._check_transform(tr);
    UPDATE etl_stream.transforms x
       SET after = tr.after, sql = tr.sql, dates_from = tr.dates_from, enabled = tr.enabled
     WHERE x.name = tr.name
    RETURNING * INTO tr;
    RETURN tr;
END
$$;

COMMENT ON FUNCTION etl_stream.alter_transform(text, text[], text, text, boolean) IS
  'change a transform: its tables, SQL, dates_from (''''  removes it) or whether it runs';

CREATE OR REPLACE FUNCTION etl_stream.drop_transform(name text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM etl_stream.transforms x WHERE x.name = drop_transform.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'etl_stream transform "%" does not exist', drop_transform.name
            USING ERRCODE = 'undefined_object',
                  HINT = 'Your transforms are listed in etl_stream.transforms.';
    END IF;
END
$$;

COMMENT ON FUNCTION etl_stream.drop_transform(text) IS
  'drop a transform (its runs stay in etl_stream.runs)';

-- run_transform: by hand, with the literals of the last successful sync of
-- each table it runs after; recorded in etl_stream.runs like a sync.
CREATE OR REPLACE FUNCTION etl_stream.run_transform(name text)
RETURNS etl_stream.runs
AS 'MODULE_PATHNAME', 'etl_stream_run_transform'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION etl_stream.run_transform(text) IS
  'run a transform now, with the cutoffs of the last successful syncs of its tables; returns the run';

--
-- explain_transform: the statements the transform would run now (with the
-- literals of the last successful syncs, as run_transform), each with its
-- plan: the partitions it reads are the ones that the plan shows.
--
CREATE OR REPLACE FUNCTION etl_stream.explain_transform(name text, costs boolean DEFAULT true)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    tr etl_stream.transforms;
    b record;
    s text;
    n integer := 0;
    line text;
    kv record;
BEGIN
    SELECT * INTO tr FROM etl_stream.transforms x WHERE x.name = explain_transform.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'etl_stream transform "%" does not exist', explain_transform.name
            USING ERRCODE = 'undefined_object',
                  HINT = 'Your transforms are listed in etl_stream.transforms.';
    END IF;
    b := etl_stream._transform_bindings(tr, NULL);
    RETURN NEXT format('transform %s after %s, with the literals of run %s', quote_ident(tr.name),
                       array_to_string(tr.after, ', '), array_to_string(b.runs, ', '));
    FOR kv IN SELECT key, value FROM jsonb_each_text(b.bindings) WHERE key NOT LIKE '%.%' ORDER BY key LOOP
        RETURN NEXT format('  :%s = %s', kv.key, kv.value);
    END LOOP;
    FOREACH s IN ARRAY etl_stream._transform_statements(
            etl_stream._transform_bind(tr.sql, ARRAY(SELECT key FROM jsonb_each_text(b.bindings) ORDER BY key),
                                       ARRAY(SELECT value FROM jsonb_each_text(b.bindings) ORDER BY key))) LOOP
        n := n + 1;
        RETURN NEXT format('statement %s: %s', n, s);
        FOR line IN EXECUTE format('EXPLAIN (COSTS %s) %s', CASE WHEN costs THEN 'ON' ELSE 'OFF' END, s) LOOP
            RETURN NEXT '  ' || line;
        END LOOP;
    END LOOP;
END
$$;

COMMENT ON FUNCTION etl_stream.explain_transform(text, boolean) IS
  'the statements a transform would run now, with its literals in place, and their plans';
