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
