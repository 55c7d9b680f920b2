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
    written text := 'RETURNING (t.xmax = 0) AS inserted';
    inserted text := 'inserted';
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

    -- a row's xmax tells an insert from an update, but a partitioned target
    -- cannot return system columns: there, a written key that the target
    -- had before the statement (its snapshot) was updated
    IF t.strategy = 'merge' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(target)) = 'p' THEN
        written := format('RETURNING %s', (SELECT string_agg(format('t.%I', k), ', ') FROM unnest(t.key_columns) k));
        inserted := format('NOT EXISTS (SELECT FROM %s o WHERE %s)', target,
                           (SELECT string_agg(format('o.%1$I = w.%1$I', k), ' AND ') FROM unnest(t.key_columns) k));
    END IF;

    IF t.strategy = 'merge' THEN
        p.merge_sql := format(
            'WITH batch AS (%s), '
            'written AS (INSERT INTO %s AS t (%s) SELECT * FROM batch ON CONFLICT (%s) %s %s) '
            'SELECT count(*) FILTER (WHERE %s), count(*) FILTER (WHERE NOT %s), (SELECT count(*) FROM batch) FROM written w',
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
