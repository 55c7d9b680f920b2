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

-- A staging table is written with the rows of a registration, so it must
-- be one its owner owns: another member of etl_stream_user may create
-- tables in the staging schemas and could have made one under the name
-- first.  A table left by a role whose privileges the caller has (a
-- superuser's sync of the table, a release before owners) is handed over.
CREATE OR REPLACE FUNCTION etl_stream._check_staging_owner(t etl_stream.tables, staging text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    holder oid := (SELECT c.relowner FROM pg_class c WHERE c.oid = to_regclass(staging));
BEGIN
    IF holder IS NULL OR holder = (SELECT r.oid FROM pg_roles r WHERE r.rolname = t.owner) THEN
        RETURN;
    END IF;
    IF pg_has_role(current_user, holder, 'USAGE') THEN
        EXECUTE format('ALTER TABLE %s OWNER TO %I', staging, t.owner);
        RETURN;
    END IF;
    RAISE EXCEPTION 'staging table % belongs to role "%", not to "%", the owner of etl_stream table "%"',
                    staging, pg_get_userbyid(holder), t.owner, t.name
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'A run writes its rows only into a staging table of the registration''s owner.',
              HINT = format('Have role "%s" or a superuser drop it: DROP TABLE %s;', pg_get_userbyid(holder), staging);
END
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
    PERFORM etl_stream._check_staging_owner(t, staging);
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
        -- the registration's owner keeps it, whoever ran the sync that made it
        IF (SELECT c.relowner::regrole::text FROM pg_class c WHERE c.oid = staging::regclass)
           IS DISTINCT FROM quote_ident(t.owner) THEN
            EXECUTE format('ALTER TABLE %s OWNER TO %I', staging, t.owner);
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
    fresh text := format('%I.%I', t.target_schema, etl_stream._fit_identifier(t.target_table, '_etl_fresh'));
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
        candidate := etl_stream._fit_identifier(base, '_etl' || n);
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
    RETURN 'SELECT ' || (SELECT string_agg(etl_stream._remote_column(t, c, p.raw_charsets[array_position(t.columns, c)]),
                                           ', ' ORDER BY o)
                           FROM unnest(live) WITH ORDINALITY u(c, o))
                     || p.remote_from;
END
$$;
