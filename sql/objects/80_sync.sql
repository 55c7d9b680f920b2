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

-- retry_rejects: one run that fetches again from MySQL, by key, the rows of
-- the table in etl_stream.rejects (after the target was widened, say),
-- merges those that now convert by key, and deletes their rejects; a row
-- still bad is kept again under the new run.  The watermark does not move.
CREATE OR REPLACE FUNCTION etl_stream.retry_rejects(name text)
RETURNS etl_stream.runs
AS 'MODULE_PATHNAME', 'etl_stream_retry_rejects'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION etl_stream.retry_rejects(text) IS
  'fetch again the rejected rows of a table by key, land those that convert now, delete their rejects; returns the run';

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
-- plans of the statements that touch the target; for the name of a
-- transform, what explain_transform() shows.
--
CREATE OR REPLACE FUNCTION etl_stream.explain(name text, range_from text DEFAULT NULL,
                                   range_to text DEFAULT NULL, costs boolean DEFAULT true)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    t etl_stream.tables;
    p etl_stream.plan;
    line text;
BEGIN
    IF NOT EXISTS (SELECT FROM etl_stream.tables x WHERE x.name = explain.name)
       AND EXISTS (SELECT FROM etl_stream.transforms x WHERE x.name = explain.name) THEN
        RETURN QUERY SELECT * FROM etl_stream.explain_transform(name, costs);
        RETURN;
    END IF;
    t := etl_stream._get(name);
    p := etl_stream._raw_plan(t, etl_stream._plan(t, range_from, range_to));
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
    -- deletes => 'delete' | 'flag': the window's rows the batch did not bring
    IF t.deletes <> 'keep' AND t.strategy = 'merge' THEN
        line := etl_stream._deletes_candidates_sql(t, p);
        RETURN NEXT format('deletes (%s): %s', t.deletes, line);
        FOR line IN EXECUTE format('EXPLAIN (COSTS %s) %s', CASE WHEN costs THEN 'ON' ELSE 'OFF' END, line) LOOP
            RETURN NEXT '  ' || line;
        END LOOP;
        RETURN NEXT format('  then on MySQL, for those keys, 1000 at a time: SELECT %s FROM %s WHERE %s IN (...)',
                           (etl_stream._key_sql(t)).my_cols, etl_stream._source_name(t),
                           CASE WHEN cardinality(t.key_columns) = 1 THEN (etl_stream._key_sql(t)).my_cols
                                ELSE '(' || (etl_stream._key_sql(t)).my_cols || ')' END);
    END IF;
END
$$;

COMMENT ON FUNCTION etl_stream.explain(text, text, text, boolean) IS
  'the SQL and plans the next sync of a table (or run of a transform) would run, with its literal cutoff';
