--
-- Hard deletes: target rows whose key MySQL no longer has are deleted, or
-- flagged in _deleted_at, by the table's deletes policy.  A sync looks at
-- the rows of its look-back window; sweep_deletes looks at the whole table,
-- a range of the key at a time, in background workers.
--
-- Either way a row is removed only once MySQL has been asked for its key
-- and did not have it: a key missing from the rows a sync pulled may have
-- moved (its watermark went back), and a key missing from a range of the
-- source may sort elsewhere in MySQL's collation than in PostgreSQL's.
-- MySQL is only ever asked for key columns, by key or by a range of the
-- primary key with literal bounds.  See docs/sync.md, "Hard deletes".
--

-- A key value (text, as PostgreSQL prints it) as a MySQL constant of a
-- column of natural type type
CREATE OR REPLACE FUNCTION etl_stream._key_mysql_literal(type text, value text) RETURNS text
LANGUAGE sql STABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
    SELECT CASE
        WHEN type ~ '^(smallint|integer|bigint|numeric)' THEN value::numeric::text
        WHEN type = 'bytea' THEN 'X''' || encode(value::bytea, 'hex') || ''''
        WHEN type = 'boolean' THEN CASE WHEN value::boolean THEN '1' ELSE '0' END
        WHEN type ~ '^timestamp(\(\d\))? with time zone$'
             THEN quote_literal(to_char(value::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'))
        ELSE etl_stream.mysql_literal(value) END
$$;

-- The pieces of SQL the key takes: the columns on each side, their
-- definitions for etl_stream.query(), and the expressions that render a
-- key of the relation alias c as a MySQL tuple and a PostgreSQL row
CREATE OR REPLACE FUNCTION etl_stream._key_sql(t etl_stream.tables,
    OUT my_cols text, OUT pg_cols text, OUT col_defs text, OUT match text,
    OUT my_expr text, OUT pg_expr text)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(etl_stream.mysql_ident(etl_stream._source_column(t, k)), ', ' ORDER BY o),
           string_agg(format('%I', k), ', ' ORDER BY o),
           string_agg(format('%I %s', k, ty), ', ' ORDER BY o),
           string_agg(format('t.%1$I = g.%1$I', k), ' AND ' ORDER BY o),
           CASE WHEN count(*) = 1 THEN min(format('etl_stream._key_mysql_literal(%L, c.%I::text)', ty, k))
                ELSE '''('' || ' || string_agg(format('etl_stream._key_mysql_literal(%L, c.%I::text)', ty, k),
                                               ' || '', '' || ' ORDER BY o) || ' || '')''' END,
           '''('' || ' || string_agg(format('format(''%%L::%%s'', c.%I::text, %L)', k, ty),
                                      ' || '', '' || ' ORDER BY o) || ' || '')'''
      FROM unnest(t.key_columns) WITH ORDINALITY u(k, o)
      CROSS JOIN LATERAL (SELECT t.column_types[array_position(t.columns, k)] AS ty) y
$$;

--
-- _remove_missing: of the candidate keys (as MySQL tuples and as
-- PostgreSQL rows, in the same order), ask MySQL which it has, batch keys
-- at a time, and delete (or flag) the target rows of the others.  Returns
-- how many rows it deleted or flagged.  The caller holds the target's
-- merge lock.
--
CREATE OR REPLACE FUNCTION etl_stream._remove_missing(t etl_stream.tables, my_keys text[], pg_keys text[],
                                                     batch integer DEFAULT 1000)
RETURNS bigint
LANGUAGE plpgsql
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    q record := etl_stream._key_sql(t);
    n bigint := 0;
    got bigint;
    remote text;
BEGIN
    IF coalesce(cardinality(my_keys), 0) = 0 THEN
        RETURN 0;
    END IF;
    FOR i IN 0 .. (cardinality(my_keys) - 1) / batch LOOP
        remote := format('SELECT %s FROM %s WHERE %s IN (%s)', q.my_cols, etl_stream._source_name(t),
                         CASE WHEN cardinality(t.key_columns) = 1 THEN q.my_cols ELSE '(' || q.my_cols || ')' END,
                         array_to_string(my_keys[i * batch + 1 : (i + 1) * batch], ', '));
        EXECUTE format(
            'WITH gone AS (SELECT * FROM (VALUES %s) v(%s) EXCEPT SELECT * FROM etl_stream.query($1, $2) AS r(%s)) %s',
            array_to_string(pg_keys[i * batch + 1 : (i + 1) * batch], ', '), q.pg_cols, q.col_defs,
            CASE WHEN t.deletes = 'flag'
                 THEN format('UPDATE %s t SET _deleted_at = now() FROM gone g WHERE %s AND t._deleted_at IS NULL',
                             etl_stream._target_name(t), q.match)
                 ELSE format('DELETE FROM %s t USING gone g WHERE %s', etl_stream._target_name(t), q.match) END)
          USING t.server, remote;
        GET DIAGNOSTICS got = ROW_COUNT;
        n := n + got;
    END LOOP;
    RETURN n;
END
$$;

-- The merge lock of a run (src/run.c, lock_target_for_merge), exclusive
CREATE OR REPLACE FUNCTION etl_stream._lock_target_for_merge(t etl_stream.tables) RETURNS void
LANGUAGE sql
AS $$ SELECT pg_advisory_xact_lock((1163152467::bigint << 32) | etl_stream._target_name(t)::regclass::oid::bigint) $$;

--
-- The query of a sync's candidates: the target rows of the plan's window
-- (watermark at or past the cutoff, below the upper bound, as literals)
-- whose key is not in the batch, and not flagged already; their keys as
-- MySQL tuples and PostgreSQL rows, in key order.  explain() shows it.
--
CREATE OR REPLACE FUNCTION etl_stream._deletes_candidates_sql(t etl_stream.tables, p etl_stream.plan)
RETURNS text
LANGUAGE plpgsql STABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    q record := etl_stream._key_sql(t);
    conds text[] := '{}';
BEGIN
    IF p.cutoff IS NOT NULL THEN
        conds := conds || format('t.%I >= %s', t.watermark, etl_stream._typed_literal(t, p.cutoff));
    END IF;
    IF p.upper_bound IS NOT NULL THEN
        conds := conds || format('t.%I < %s', t.watermark, etl_stream._typed_literal(t, p.upper_bound));
    END IF;
    IF t.deletes = 'flag' THEN
        conds := conds || 't._deleted_at IS NULL'::text;
    END IF;
    RETURN format('SELECT array_agg(%1$s ORDER BY %3$s), array_agg(%2$s ORDER BY %3$s) FROM (SELECT %3$s FROM %4$s t WHERE %5$sNOT EXISTS '
                  '(SELECT FROM %6$s g WHERE %7$s)) c',
                  q.my_expr, q.pg_expr, q.pg_cols, p.target,
                  (SELECT string_agg(x || ' AND ', '') FROM unnest(conds) x),
                  p.staging, q.match);
END
$$;

--
-- _follow_deletes: after a sync's merge (src/run.c), the target rows of the
-- plan's window (watermark at or past the cutoff, below the upper bound)
-- whose key is not in the batch, removed by the policy if MySQL does not
-- have them.  A row whose key moved forward is in the batch; one that
-- moved back is still on MySQL and stays.  Returns what it deleted and
-- what it flagged.
--
CREATE OR REPLACE FUNCTION etl_stream._follow_deletes(t etl_stream.tables, p etl_stream.plan,
                                                     OUT deleted bigint, OUT flagged bigint)
LANGUAGE plpgsql
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    my_keys text[];
    pg_keys text[];
    n bigint;
BEGIN
    deleted := 0;
    flagged := 0;
    IF t.deletes = 'keep' OR t.strategy <> 'merge' THEN
        RETURN;
    END IF;
    EXECUTE etl_stream._deletes_candidates_sql(t, p) INTO my_keys, pg_keys;
    n := etl_stream._remove_missing(t, my_keys, pg_keys);
    IF t.deletes = 'flag' THEN
        flagged := n;
    ELSE
        deleted := n;
    END IF;
END
$$;

-- A bound of a key range, as stored in a task: the value of a one-column
-- key, a text[] of the values of a wider one
CREATE OR REPLACE FUNCTION etl_stream._key_bound(t etl_stream.tables, bound text) RETURNS text[]
LANGUAGE sql STABLE
RETURN CASE WHEN bound IS NULL THEN NULL
            WHEN cardinality(t.key_columns) = 1 THEN ARRAY[bound]
            ELSE bound::text[] END;

-- The MySQL condition "key op bound" (op: >=, < or <=), written out column
-- by column so that MySQL reads it as a range of the primary key:
-- (a, b) >= (1, 2) is a > 1 OR (a = 1 AND b >= 2)
CREATE OR REPLACE FUNCTION etl_stream._mysql_key_cond(t etl_stream.tables, op text, bound text[],
                                                     i integer DEFAULT 1)
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN i = cardinality(t.key_columns) THEN format('%s %s %s', c, op, v)
                ELSE format('(%s %s %s OR (%s = %s AND %s))', c, left(op, 1), v, c, v,
                            etl_stream._mysql_key_cond(t, op, bound, i + 1)) END
      FROM (SELECT etl_stream.mysql_ident(etl_stream._source_column(t, t.key_columns[i])) AS c,
                   etl_stream._key_mysql_literal(t.column_types[array_position(t.columns, t.key_columns[i])],
                                                 bound[i]) AS v) x
$$;

-- The same on PostgreSQL's side, a row comparison on the target's alias t
CREATE OR REPLACE FUNCTION etl_stream._pg_key_cond(t etl_stream.tables, op text, bound text[]) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format('(%s) %s (%s)', string_agg(format('t.%I', k), ', ' ORDER BY o), op,
                  string_agg(format('%L::%s', bound[o], t.column_types[array_position(t.columns, k)]), ', ' ORDER BY o))
      FROM unnest(t.key_columns) WITH ORDINALITY u(k, o)
$$;

-- The target's first (or last) key, as a bound
CREATE OR REPLACE FUNCTION etl_stream._target_end_key(t etl_stream.tables, last boolean) RETURNS text[]
LANGUAGE plpgsql STABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    result text[];
BEGIN
    EXECUTE format('SELECT ARRAY[%s] FROM %s ORDER BY %s LIMIT 1',
                   (SELECT string_agg(format('%I::text', k), ', ') FROM unnest(t.key_columns) k),
                   etl_stream._target_name(t),
                   (SELECT string_agg(format('%I%s', k, CASE WHEN last THEN ' DESC' ELSE '' END), ', ')
                      FROM unnest(t.key_columns) k))
       INTO result;
    RETURN result;
END
$$;

--
-- _sweep_chunk: one task of a sweep_deletes job, run by a worker
-- (src/workers.c) in a transaction of its own: the source's keys of the
-- task's range, the target's keys of the same range that are not among
-- them, and of those the ones MySQL does not have, deleted or flagged.  An
-- open end of the range is the target's first or last key, read now.
-- The comparison needs no lock (a row a sync merges meanwhile is only
-- ever a candidate MySQL confirms); the target's merge lock is taken for
-- the confirmation and the removal.  Records the chunk as a run (strategy
-- 'sweep_deletes') and returns it; a failure is recorded as a failed run
-- (a cancel is raised on).
--
CREATE OR REPLACE FUNCTION etl_stream._sweep_chunk(task bigint, attempt integer DEFAULT 1)
RETURNS etl_stream.runs
LANGUAGE plpgsql
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    k etl_stream.tasks;
    t etl_stream.tables;
    r etl_stream.runs;
    q record;
    lo text[];
    hi text[];
    hi_op text := '<';
    remote text;
    my_keys text[];
    pg_keys text[];
    n bigint;
    phase_at timestamptz;
    e_state text;
    e_message text;
    e_detail text;
    e_hint text;
BEGIN
    SELECT * INTO STRICT k FROM etl_stream.tasks x WHERE x.task_id = task;
    t := etl_stream._get(k.table_name);
    r.table_name := t.name;
    r.strategy := 'sweep_deletes';
    r.started_at := clock_timestamp();
    r.attempt := coalesce(attempt, 1);
    r.job_id := k.job_id;
    r.task_id := k.task_id;
    r.cutoff := k.range_from;
    r.new_watermark := t.high_watermark;
    r.rows_pulled := 0;
    r.rows_deleted := 0;
    r.rows_flagged := 0;
    BEGIN
        IF t.deletes = 'keep' THEN
            RAISE EXCEPTION 'etl_stream table "%" keeps rows deleted on MySQL', t.name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'Its deletes policy was changed to keep after the sweep began.';
        END IF;
        q := etl_stream._key_sql(t);
        phase_at := clock_timestamp();
        lo := coalesce(etl_stream._key_bound(t, k.range_from), etl_stream._target_end_key(t, false));
        hi := etl_stream._key_bound(t, k.range_to);
        IF hi IS NULL THEN
            hi := etl_stream._target_end_key(t, true);
            hi_op := '<=';
        END IF;
        IF lo IS NOT NULL AND hi IS NOT NULL THEN
            remote := format('SELECT %s FROM %s WHERE %s AND %s ORDER BY %s', q.my_cols, etl_stream._source_name(t),
                             etl_stream._mysql_key_cond(t, '>=', lo), etl_stream._mysql_key_cond(t, hi_op, hi),
                             q.my_cols);
            EXECUTE format(
                'WITH src AS MATERIALIZED (SELECT * FROM etl_stream.query($1, $2) AS r(%s)), '
                'missing AS (SELECT %s FROM %s t WHERE %s AND %s%s EXCEPT SELECT * FROM src) '
                'SELECT (SELECT count(*) FROM src), array_agg(%7$s ORDER BY %2$s), array_agg(%8$s ORDER BY %2$s) FROM missing c',
                q.col_defs, q.pg_cols, etl_stream._target_name(t),
                etl_stream._pg_key_cond(t, '>=', lo), etl_stream._pg_key_cond(t, hi_op, hi),
                CASE WHEN t.deletes = 'flag' THEN ' AND t._deleted_at IS NULL' ELSE '' END,
                q.my_expr, q.pg_expr)
               INTO r.rows_pulled, my_keys, pg_keys
              USING t.server, remote;
            r.pull_s := extract(epoch FROM clock_timestamp() - phase_at);
            phase_at := clock_timestamp();
            -- from the confirmation to the commit no merge brings a key
            -- back: the ranges compare side by side, and remove in turn
            IF my_keys IS NOT NULL THEN
                PERFORM etl_stream._lock_target_for_merge(t);
            END IF;
            n := etl_stream._remove_missing(t, my_keys, pg_keys);
            r.merge_s := extract(epoch FROM clock_timestamp() - phase_at);
            IF t.deletes = 'flag' THEN
                r.rows_flagged := n;
            ELSE
                r.rows_deleted := n;
            END IF;
        END IF;
        r.status := 'success';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                                e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
        r.sqlstate := e_state;
        r.message := e_message;
        r.detail := nullif(e_detail, '');
        r.hint := nullif(e_hint, '');
        r.status := 'failed';
        r.failed_phase := CASE WHEN r.pull_s IS NULL THEN 'pull' ELSE 'merge' END;
        r.error := concat_ws(E'\n', r.message, r.detail);
        r.rows_deleted := 0;
        r.rows_flagged := 0;
    END;
    r.finished_at := clock_timestamp();
    INSERT INTO etl_stream.runs (table_name, started_at, finished_at, status, strategy, rows_pulled,
                                 rows_deleted, rows_flagged, cutoff, new_watermark, pull_s, merge_s,
                                 failed_phase, error, sqlstate, message, detail, hint, attempt,
                                 job_id, task_id, owner)
    VALUES (r.table_name, r.started_at, r.finished_at, r.status, r.strategy, r.rows_pulled,
            r.rows_deleted, r.rows_flagged, r.cutoff, r.new_watermark, r.pull_s, r.merge_s,
            r.failed_phase, r.error, r.sqlstate, r.message, r.detail, r.hint, r.attempt,
            r.job_id, r.task_id, t.owner)
    RETURNING * INTO r;
    RETURN r;
END
$$;

--
-- sweep_deletes: compare the whole table's keys with the source's, a range
-- of chunk keys at a time in key order, in background workers, and delete
-- or flag (by the table's policy) the target rows MySQL no longer has.
-- The ranges are cut at every chunk-th key of the target, read now; each
-- is a task that commits on its own.  Returns the job at once; the workers
-- start when the calling transaction commits.  See docs/workers.md.
--
CREATE OR REPLACE FUNCTION etl_stream.sweep_deletes(name text, chunk bigint DEFAULT 100000,
                                                    workers integer DEFAULT 2)
RETURNS bigint
LANGUAGE plpgsql
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    t etl_stream.tables := etl_stream._get(name);
    bounds text[];
    job bigint;
    n integer;
BEGIN
    PERFORM etl_stream._check_enabled(t);
    IF t.deletes = 'keep' THEN
        RAISE EXCEPTION 'etl_stream table "%" keeps rows deleted on MySQL', t.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'sweep_deletes deletes or flags rows by the table''s deletes policy, which is keep.',
                  HINT = format('Choose one first: SELECT etl_stream.alter_table(%L, deletes => ''delete'') (or ''flag'').', t.name);
    END IF;
    IF chunk IS NULL OR chunk < 1 THEN
        RAISE EXCEPTION 'chunk must be at least 1, not %', coalesce(chunk::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF workers IS NULL OR workers < 1 THEN
        RAISE EXCEPTION 'workers must be at least 1, not %', coalesce(workers::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM etl_stream._check_worker_role(current_user);

    -- every chunk-th key of the target but the first: the ranges' bounds
    EXECUTE format('SELECT array_agg(b ORDER BY n) FROM (SELECT %s AS b, row_number() OVER (ORDER BY %s) AS n FROM %s) x '
                   'WHERE n %% $1 = 1 AND n > 1',
                   CASE WHEN cardinality(t.key_columns) = 1 THEN format('%I::text', t.key_columns[1])
                        ELSE format('ARRAY[%s]::text', (SELECT string_agg(format('%I::text', k), ', ')
                                                           FROM unnest(t.key_columns) k)) END,
                   (SELECT string_agg(format('%I', k), ', ') FROM unnest(t.key_columns) k),
                   etl_stream._target_name(t))
       INTO bounds USING chunk;
    INSERT INTO etl_stream.jobs (kind, tables, workers, slice)
    VALUES ('sweep_deletes', ARRAY[t.name], workers, chunk::text)
    RETURNING job_id INTO job;
    -- [NULL, b1), [b1, b2), ..., [bn, NULL]: the open ends are the target's
    -- first and last key when the task runs
    INSERT INTO etl_stream.tasks (job_id, position, table_name, range_on, range_from, range_to, resume_from)
    SELECT job, s.n, t.name, array_to_string(t.key_columns, ', '), s.lo, s.hi, s.lo
      FROM (SELECT o AS n, lag(b) OVER (ORDER BY o) AS lo, b AS hi
              FROM unnest(coalesce(bounds, '{}') || NULL::text) WITH ORDINALITY u(b, o)) s;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE etl_stream.jobs x SET tasks_total = n WHERE x.job_id = job;
    PERFORM etl_stream._start_workers(job, workers, current_user);
    RETURN job;
END
$$;

COMMENT ON FUNCTION etl_stream.sweep_deletes(text, bigint, integer) IS
  'compare the whole table''s keys with MySQL''s, a range at a time, in background workers, and delete or flag the rows gone; returns the job';
