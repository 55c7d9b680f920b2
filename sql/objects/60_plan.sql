--
-- The plan of a run: the statements it executes, with the cutoff (and an
-- optional upper bound) written in as literal constants on both sides.
--

--
-- The caller must have what the strategy does to the target, checked
-- without a lock: a role that may not write the table must never wait in
-- the queue of its locks, nor hold one that others wait behind.  The
-- statements check the rest (SELECT for a merge's comparisons) themselves.
--
CREATE OR REPLACE FUNCTION etl_stream._check_target_privileges(t etl_stream.tables) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    target regclass := to_regclass(etl_stream._target_name(t));
    -- (what each strategy cannot do without; a merge of key columns only
    -- inserts what is missing)
    wanted text[] := CASE WHEN t.strategy = 'merge' AND NOT t.columns <@ t.key_columns THEN '{INSERT,UPDATE}'
                          WHEN t.strategy = 'delete_insert' THEN '{INSERT,DELETE}'
                          ELSE '{INSERT}' END;
    lacking text[];
BEGIN
    IF target IS NULL THEN
        RETURN;                     -- said later, with the hint to create it
    END IF;
    -- (column grants count: the statements themselves check them in full)
    SELECT array_agg(w) INTO lacking FROM unnest(wanted) w
     WHERE NOT CASE w WHEN 'DELETE' THEN has_table_privilege(target, w)
                      ELSE has_any_column_privilege(target, w) END;
    IF lacking IS NOT NULL THEN
        RAISE EXCEPTION 'permission denied for table %', target
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('etl_stream table "%s" (strategy %s) needs %s on its target; role "%s" lacks %s.',
                                  t.name, t.strategy, array_to_string(wanted, ', '), current_user,
                                  array_to_string(lacking, ', '));
    END IF;
    -- full_refresh drops the target and renames a new table to its name
    IF t.strategy = 'full_refresh' AND NOT pg_has_role(current_user,
            (SELECT c.relowner FROM pg_class c WHERE c.oid = target), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', target
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('etl_stream table "%s" (strategy full_refresh) replaces its target, which only its owner may do.', t.name);
    END IF;
END
$$;

--
-- The moved columns whose text MariaDB cannot be trusted to convert to the
-- connection's charset: a character with no Unicode mapping (a gbk byte
-- pair outside the table, say) would arrive as '?', silently.  Such a
-- column is selected as bytes (CAST(c AS BINARY)) and converted by
-- PostgreSQL from its own charset, where such a character is an error (or
-- on_bad_value).  One element per column of t.columns: the MySQL charset,
-- or NULL for a column received as the server sends it (numbers, dates,
-- binary strings, and text in a Unicode charset or latin1, whose 256 bytes
-- all map).  The charsets are those options.c's charset list receives.
--
CREATE OR REPLACE FUNCTION etl_stream._raw_charsets(t etl_stream.tables) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    result text[];
BEGIN
    SELECT array_agg(m.charset ORDER BY o) INTO result
      FROM unnest(t.columns) WITH ORDINALITY u(c, o)
      LEFT JOIN etl_stream.query(t.server, format(
             'SELECT COLUMN_NAME, CHARACTER_SET_NAME FROM information_schema.COLUMNS'
             ' WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s'
             '   AND DATA_TYPE IN (''char'', ''varchar'', ''tinytext'', ''text'', ''mediumtext'', ''longtext'')'
             '   AND CHARACTER_SET_NAME IN (''ascii'', ''latin2'', ''latin5'', ''latin7'', ''cp1250'', ''cp1251'','
             '       ''cp1256'', ''cp1257'', ''cp866'', ''greek'', ''hebrew'', ''koi8r'', ''koi8u'', ''euckr'','
             '       ''ujis'', ''sjis'', ''gbk'', ''gb2312'', ''big5'')',
             CASE WHEN t.source_schema IS NULL THEN 'DATABASE()' ELSE etl_stream.mysql_literal(t.source_schema) END,
             etl_stream.mysql_literal(t.source_table))) AS m(name text, charset text)
        ON lower(m.name) = lower(etl_stream._source_column(t, u.c));
    RETURN CASE WHEN array_remove(result, NULL) = '{}' THEN NULL ELSE result END;
END
$$;

--
-- The plan with the source's raw charsets: its remote query selects those
-- columns as bytes.  Asked of MySQL when the run has connected (the plan
-- itself is made before, without MySQL, so that a source that cannot be
-- reached fails the run, recorded, rather than the call).
--
CREATE OR REPLACE FUNCTION etl_stream._raw_plan(t etl_stream.tables, p etl_stream.plan)
RETURNS etl_stream.plan
LANGUAGE plpgsql STABLE AS $$
BEGIN
    p.raw_charsets := etl_stream._raw_charsets(t);
    IF p.raw_charsets IS NOT NULL THEN
        p.remote_sql := 'SELECT ' || (SELECT string_agg(etl_stream._remote_column(t, c, p.raw_charsets[o]), ', ' ORDER BY o)
                                        FROM unnest(t.columns) WITH ORDINALITY u(c, o))
                        || p.remote_from;
    END IF;
    RETURN p;
END
$$;

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
    written text := 'RETURNING (t.xmax = 0) AS inserted';
    inserted text := 'inserted';
BEGIN
    -- a registration changed by hand must still name columns PostgreSQL keeps
    PERFORM etl_stream._check_column_names(t);
    PERFORM etl_stream._check_target_privileges(t);
    IF range_on IS NOT NULL AND range_on IS DISTINCT FROM t.watermark THEN
        r.watermark := range_on;
        r.watermark_kind := 'integer';
    END IF;
    p.cutoff := coalesce(etl_stream._canonical(r, range_from),
                         CASE WHEN r.watermark IS NOT DISTINCT FROM t.watermark THEN etl_stream._cutoff(t) END);
    p.upper_bound := etl_stream._canonical(r, range_to);
    p.target := target;
    p.staging := staging;

    SELECT string_agg(etl_stream._remote_column(t, c), ', '), string_agg(format('%I', c), ', '),
           string_agg(format('s.%I', c), ', ')
      INTO remote_cols, cols, src_cols
      FROM unnest(t.columns) c;
    SELECT string_agg(format('%I', k), ', ') INTO keys FROM unnest(t.key_columns) k;
    SELECT array_agg(c) INTO nonkey FROM unnest(t.columns) c WHERE c <> ALL (t.key_columns);

    IF p.cutoff IS NOT NULL THEN
        remote_conds := remote_conds || format('%s >= %s', etl_stream.mysql_ident(etl_stream._source_column(r, r.watermark)),
                                               etl_stream._mysql_value(r, p.cutoff));
        conds := conds || format('%I >= %s', r.watermark, etl_stream._typed_literal(r, p.cutoff));
    END IF;
    IF p.upper_bound IS NOT NULL THEN
        remote_conds := remote_conds || format('%s < %s', etl_stream.mysql_ident(etl_stream._source_column(r, r.watermark)),
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

    -- a row's xmax tells an insert from an update, but a partitioned target
    -- cannot return system columns: there, a written key that the target
    -- had before the statement (its snapshot) was updated
    IF t.strategy = 'merge' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(target)) = 'p' THEN
        written := format('RETURNING %s', (SELECT string_agg(format('t.%I', k), ', ') FROM unnest(t.key_columns) k));
        inserted := format('NOT EXISTS (SELECT FROM %s o WHERE %s)', target,
                           (SELECT string_agg(format('o.%1$I = w.%1$I', k), ' AND ') FROM unnest(t.key_columns) k));
    END IF;

    IF t.strategy = 'merge' THEN
        -- deletes => 'flag': a row that comes back is live again (its
        -- _deleted_at cleared), even when its values did not change
        p.merge_sql := format(
            'WITH batch AS (%s), '
            'written AS (INSERT INTO %s AS t (%s) SELECT * FROM batch ON CONFLICT (%s) %s %s) '
            'SELECT count(*) FILTER (WHERE %s), count(*) FILTER (WHERE NOT %s), (SELECT count(*) FROM batch) FROM written w',
            src, target, cols, keys,
            CASE WHEN nonkey IS NULL AND t.deletes = 'flag'
                 THEN 'DO UPDATE SET _deleted_at = NULL WHERE t._deleted_at IS NOT NULL'
                 WHEN nonkey IS NULL THEN 'DO NOTHING'
                 ELSE format('DO UPDATE SET (%s%s) = ROW(%s%s) WHERE ((%s) IS DISTINCT FROM (%s)%s)%s',
                             (SELECT string_agg(format('%I', c), ', ') FROM unnest(nonkey) c),
                             CASE WHEN t.deletes = 'flag' THEN ', _deleted_at' ELSE '' END,
                             (SELECT string_agg(format('EXCLUDED.%I', c), ', ') FROM unnest(nonkey) c),
                             CASE WHEN t.deletes = 'flag' THEN ', NULL' ELSE '' END,
                             (SELECT string_agg(format('t.%I', c), ', ') FROM unnest(nonkey) c),
                             (SELECT string_agg(format('EXCLUDED.%I', c), ', ') FROM unnest(nonkey) c),
                             CASE WHEN t.deletes = 'flag' THEN ' OR t._deleted_at IS NOT NULL' ELSE '' END,
                             CASE WHEN newer_wins AND t.watermark IS NOT NULL
                                  THEN format(' AND (t.%1$I IS NULL OR t.%1$I <= EXCLUDED.%1$I)', t.watermark)
                                  ELSE '' END)
            END, written, inserted, inserted);
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

--
-- The plan of retry_rejects: the rows of the table's rejects, fetched again
-- by key (the value a reject keeps is only as shown), merged by key
-- whatever the table's strategy (a delete_insert or full_refresh plan would
-- replace rows the retry did not read).  No cutoff: the watermark stays.
--
CREATE OR REPLACE FUNCTION etl_stream._retry_plan(t etl_stream.tables)
RETURNS etl_stream.plan
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p etl_stream.plan;
    by_key etl_stream.tables := t;
    keys text;
BEGIN
    IF cardinality(t.key_columns) = 0 THEN
        RAISE EXCEPTION 'etl_stream table "%" has no key to fetch its rejected rows by', t.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Register the table with key_columns, or load such rows by hand.';
    END IF;
    by_key.strategy := 'merge';
    p := etl_stream._plan(by_key, NULL, NULL);
    -- a key value that was not text is {"hex": "..."}: X'...' on MySQL
    SELECT string_agg(DISTINCT '(' || (SELECT string_agg(CASE jsonb_typeof(r.key -> k)
                                                             WHEN 'object' THEN CASE WHEN r.key -> k ->> 'hex' ~ '^([0-9a-f]{2})+$'
                                                                                     THEN format('X''%s''', r.key -> k ->> 'hex')
                                                                                     ELSE 'NULL' END
                                                             ELSE coalesce(etl_stream.mysql_literal(r.key ->> k), 'NULL') END,
                                                         ', ' ORDER BY o)
                                         FROM unnest(t.key_columns) WITH ORDINALITY u(k, o)) || ')', ', ')
      INTO keys
      FROM etl_stream.rejects r
     WHERE r.table_name = t.name AND r.owner = t.owner AND r.key IS NOT NULL;
    p.remote_sql := left(p.remote_sql, length(p.remote_sql) - length(p.remote_from));
    p.remote_from := ' FROM ' || etl_stream._source_name(t) || ' WHERE '
        || CASE WHEN keys IS NULL THEN 'FALSE'
                ELSE format('(%s) IN (%s)',
                            (SELECT string_agg(etl_stream.mysql_ident(k), ', ') FROM unnest(t.key_columns) k),
                            keys) END;
    p.remote_sql := p.remote_sql || p.remote_from;
    p.cutoff := NULL;
    p.upper_bound := NULL;
    p.delete_sql := NULL;
    RETURN p;
END
$$;
