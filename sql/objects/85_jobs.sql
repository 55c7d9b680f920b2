--
-- Background jobs: a backfill cut into slices that workers run in parallel,
-- each slice in a transaction of its own; waiting for, cancelling and
-- resuming a job.  The workers themselves are C (src/workers.c); these
-- functions make the jobs and tasks they claim, and tidy up after them.
--

-- C: start workers for a job when the calling transaction commits (as its
-- owner); stop a job's workers when it commits; whether a worker lives;
-- how many workers a job has or is waiting for
CREATE OR REPLACE FUNCTION etl_stream._start_workers(job bigint, workers integer, owner name)
RETURNS void
AS 'MODULE_PATHNAME', 'etl_stream_start_workers'
LANGUAGE C STRICT VOLATILE;

CREATE OR REPLACE FUNCTION etl_stream._cancel_workers(job bigint) RETURNS void
AS 'MODULE_PATHNAME', 'etl_stream_cancel_workers'
LANGUAGE C STRICT VOLATILE;

CREATE OR REPLACE FUNCTION etl_stream._worker_alive(pid integer) RETURNS boolean
AS 'MODULE_PATHNAME', 'etl_stream_worker_alive'
LANGUAGE C STRICT VOLATILE;

-- workers of a job at work or starting; with_waiting: and those it waits a
-- free slot for
CREATE OR REPLACE FUNCTION etl_stream._job_workers(job bigint, with_waiting boolean DEFAULT true)
RETURNS integer
AS 'MODULE_PATHNAME', 'etl_stream_job_workers'
LANGUAGE C STRICT VOLATILE;

-- C: a skipped run in etl_stream.runs, with the reason
CREATE OR REPLACE FUNCTION etl_stream._record_skipped(name text, reason text,
                                                     job bigint DEFAULT NULL, task bigint DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'etl_stream_record_skipped'
LANGUAGE C VOLATILE;

-- The job of a backfill of the table that is queued or running, seen
-- whoever owns it: a sync of the table waits for it or is skipped
CREATE OR REPLACE FUNCTION etl_stream._backfill_running(name text) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN (SELECT min(j.job_id) FROM etl_stream.jobs j
         WHERE j.kind = 'backfill' AND j.state IN ('queued', 'running') AND name = ANY (j.tables));

-- A worker runs as the job's owner; PostgreSQL 15 lets a background
-- worker connect only as a role that may log in
CREATE OR REPLACE FUNCTION etl_stream._check_worker_role(role name) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = role) THEN
        RAISE EXCEPTION 'role "%" cannot run background workers', role
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'A worker connects as the role that started the job, and PostgreSQL 15 lets only roles with LOGIN connect.',
                  HINT = format('ALTER ROLE %I LOGIN, or start the job as a role that has it.', role);
    END IF;
END
$$;

--
-- The slices of a backfill, in order: [lo, hi) pairs of canonical text,
-- from start in steps of step, up to stop (exclusive), or, when stop is
-- NULL, up to the last value there is (last), the last slice open.  kind
-- is the slice column's kind of watermark ('integer' for a key).
--
CREATE OR REPLACE FUNCTION etl_stream._slices(kind text, start text, stop text, last text, step text)
RETURNS TABLE (lo text, hi text)
LANGUAGE plpgsql STABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' SET timezone = 'UTC' AS $$
DECLARE
    k record;
    r etl_stream.tables;
BEGIN
    SELECT * INTO STRICT k FROM etl_stream._watermark_kinds() w WHERE w.kind = _slices.kind;
    r.watermark_kind := kind;
    IF start IS NOT NULL THEN
        -- dates step as timestamps: generate_series has no form for date
        RETURN QUERY EXECUTE format(
            'SELECT etl_stream._canonical($5, v::text),
                    coalesce(etl_stream._canonical($5, (lead(v) OVER (ORDER BY v))::text), $2)
               FROM generate_series($1::%1$s::%3$s, coalesce($2, $4)::%1$s::%3$s, $3::%2$s) v
              WHERE $2 IS NULL OR v < $2::%1$s::%3$s
              ORDER BY v',
            k.sql_type, k.lookback_type, CASE k.sql_type WHEN 'date' THEN 'timestamp' ELSE k.sql_type END)
          USING start, stop, step, last, r;
    END IF;
    IF NOT FOUND OR start IS NULL THEN
        RETURN QUERY SELECT start, stop;        -- nothing to cut: one slice
    END IF;
END
$$;

--
-- backfill: cut the table into slices of its watermark (or of its integer
-- key when it has none; one slice otherwise) and have workers sync them in
-- parallel.  Returns the job at once; the workers start when the calling
-- transaction commits.  See docs/workers.md.
--
CREATE OR REPLACE FUNCTION etl_stream.backfill(name text, range_from text DEFAULT NULL,
                                               range_to text DEFAULT NULL, slice text DEFAULT NULL,
                                               workers integer DEFAULT 2)
RETURNS bigint
LANGUAGE plpgsql
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    t etl_stream.tables := etl_stream._get(name);
    by_watermark boolean := t.watermark IS NOT NULL;
    k record;
    on_col text;
    on_type text;
    lo text;
    hi text;
    first text;
    step text := slice;
    positive boolean;
    job bigint;
    n integer;
BEGIN
    PERFORM etl_stream._check_sliceable(t, 'backfilled');
    IF workers IS NULL OR workers < 1 THEN
        RAISE EXCEPTION 'workers must be at least 1, not %', coalesce(workers::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM etl_stream._check_worker_role(current_user);

    -- the column the slices are of: the watermark, else an integer key;
    -- t becomes a registration whose watermark it is, for the literals
    IF by_watermark THEN
        on_col := t.watermark;
    ELSIF cardinality(t.key_columns) = 1 AND
          t.column_types[array_position(t.columns, t.key_columns[1])] IN ('smallint', 'integer', 'bigint') THEN
        on_col := t.key_columns[1];
        t.watermark := on_col;
        t.watermark_kind := 'integer';
    ELSIF range_from IS NOT NULL OR range_to IS NOT NULL OR slice IS NOT NULL THEN
        RAISE EXCEPTION 'etl_stream table "%" has no watermark or integer key to slice', t.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Call backfill(name) without bounds or slice: it syncs the table as one slice.';
    END IF;

    IF on_col IS NOT NULL THEN
        SELECT * INTO STRICT k FROM etl_stream._watermark_kinds() w WHERE w.kind = t.watermark_kind;
        -- the bounds: as given, or the source's MIN and MAX, read now
        on_type := t.column_types[array_position(t.columns, on_col)];
        EXECUTE format('SELECT lo::text, hi::text FROM etl_stream.query($1, $2) AS b(lo %1$s, hi %1$s)', on_type)
           INTO lo, hi
          USING t.server, format('SELECT MIN(%1$s), MAX(%1$s) FROM %2$s',
                                 etl_stream.mysql_ident(etl_stream._source_column(t, on_col)),
                                 etl_stream._source_name(t));
        first := etl_stream._canonical(t, coalesce(range_from, lo));
        hi := etl_stream._canonical(t, hi);
        range_to := etl_stream._canonical(t, range_to);
        -- the step: as given, else a month of time, or about 8 slices a worker
        IF step IS NULL THEN
            step := CASE WHEN k.lookback_type = 'interval' THEN '1 month'
                         WHEN first IS NOT NULL THEN
                              greatest(ceil((coalesce(range_to, hi)::numeric - first::numeric + 1) / (workers * 8)), 1)::text
                         ELSE '1' END;
        END IF;
        BEGIN
            EXECUTE format('SELECT $1::%1$s > %2$s::%1$s', k.lookback_type, quote_literal('0'))
               INTO positive USING step;
        EXCEPTION WHEN invalid_datetime_format OR invalid_text_representation THEN
            positive := false;
        END;
        IF NOT positive THEN
            RAISE EXCEPTION 'invalid slice "%" for a % column', step, t.watermark_kind
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = CASE k.lookback_type WHEN 'interval' THEN 'Give an interval, such as ''1 day'' or ''1 month''.'
                                  ELSE 'Give a positive whole number: the width of a slice in the column''s units.' END;
        END IF;
    END IF;

    -- with an open end, the table's watermark moves to the MAX read now when
    -- the job is done: rows changed meanwhile are the next sync's
    INSERT INTO etl_stream.jobs (kind, tables, workers, range_from, range_to, slice, watermark_after)
    VALUES ('backfill', ARRAY[t.name], workers, first, range_to, step,
            CASE WHEN by_watermark AND range_to IS NULL THEN hi END)
    RETURNING job_id INTO job;
    INSERT INTO etl_stream.tasks (job_id, position, table_name, range_on, range_from, range_to, resume_from)
    SELECT job, s.n, t.name, on_col, s.lo, s.hi, s.lo
      FROM etl_stream._slices(t.watermark_kind, first, range_to, hi, step) WITH ORDINALITY s(lo, hi, n)
     WHERE on_col IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        -- nothing to slice by: the whole table is one slice
        INSERT INTO etl_stream.tasks (job_id, position, table_name) VALUES (job, 1, t.name);
        n := 1;
    END IF;
    UPDATE etl_stream.jobs x SET tasks_total = n WHERE x.job_id = job;
    PERFORM etl_stream._start_workers(job, workers, current_user);
    RETURN job;
END
$$;

COMMENT ON FUNCTION etl_stream.backfill(text, text, text, text, integer) IS
  'sync a table slice by slice in background workers; returns the job';

--
-- job_wait: the job once it is done, failed or cancelled, or when timeout
-- passes, whichever comes first.  A job that no worker is working on or
-- waiting to work on (the server restarted, say) is returned as it is.
--
CREATE OR REPLACE FUNCTION etl_stream.job_wait(job bigint, timeout interval DEFAULT NULL)
RETURNS etl_stream.jobs
LANGUAGE plpgsql AS $$
DECLARE
    j etl_stream.jobs;
    started timestamptz := clock_timestamp();
    idle_since timestamptz;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'etl_stream.job_wait() needs the READ COMMITTED isolation level'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Its snapshot would never see the workers'' progress.';
    END IF;
    IF (SELECT x.xmin FROM etl_stream.jobs x WHERE x.job_id = job) = pg_current_xact_id_if_assigned()::xid THEN
        RAISE EXCEPTION 'etl_stream job % was made or resumed in this transaction', job
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Its workers start when this transaction commits.',
                  HINT = 'Commit first, then wait for the job.';
    END IF;
    LOOP
        SELECT * INTO j FROM etl_stream.jobs x WHERE x.job_id = job;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'etl_stream job % does not exist', job
                USING ERRCODE = 'undefined_object',
                      HINT = 'Your jobs are listed in etl_stream.jobs.';
        END IF;
        EXIT WHEN j.state IN ('done', 'failed', 'cancelled');
        EXIT WHEN timeout IS NOT NULL AND clock_timestamp() - started >= timeout;
        IF etl_stream._job_workers(job) = 0 THEN
            idle_since := coalesce(idle_since, clock_timestamp());
            IF clock_timestamp() - idle_since > interval '2 s' THEN
                RAISE NOTICE 'no worker is working on etl_stream job %', job
                    USING HINT = format('SELECT etl_stream.job_resume(%s) runs its tasks that are not done.', job);
                EXIT;
            END IF;
        ELSE
            idle_since := NULL;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN j;
END
$$;

COMMENT ON FUNCTION etl_stream.job_wait(bigint, interval) IS
  'wait for a job to end (or the timeout to pass); returns the job';

--
-- job_cancel: no task of the job starts any more, and the running ones are
-- stopped (their slices roll back) once the calling transaction commits.
-- False if the job had ended already.
--
CREATE OR REPLACE FUNCTION etl_stream.job_cancel(job bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM etl_stream.jobs x WHERE x.job_id = job;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'etl_stream job % does not exist', job
            USING ERRCODE = 'undefined_object',
                  HINT = 'Your jobs are listed in etl_stream.jobs.';
    END IF;
    UPDATE etl_stream.jobs x SET state = 'cancelled'
     WHERE x.job_id = job AND x.state IN ('queued', 'running');
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE etl_stream.tasks x SET state = 'cancelled', finished_at = now()
     WHERE x.job_id = job AND x.state = 'pending';
    -- a job no worker has started on is finished here (the workers it waits
    -- for are forgotten at commit); otherwise its last worker finishes it
    IF etl_stream._job_workers(job, false) = 0 THEN
        PERFORM etl_stream._finish_job(job);
    END IF;
    PERFORM etl_stream._cancel_workers(job);
    RETURN true;
END
$$;

COMMENT ON FUNCTION etl_stream.job_cancel(bigint) IS
  'stop a job: no task starts any more, the running ones are rolled back';

--
-- job_resume: the job's tasks that are not done (failed, cancelled,
-- skipped, or left running by a worker that ended) run again, and only
-- those.  Returns the job.
--
CREATE OR REPLACE FUNCTION etl_stream.job_resume(job bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    j etl_stream.jobs;
BEGIN
    SELECT * INTO j FROM etl_stream.jobs x WHERE x.job_id = job FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'etl_stream job % does not exist', job
            USING ERRCODE = 'undefined_object',
                  HINT = 'Your jobs are listed in etl_stream.jobs.';
    END IF;
    PERFORM etl_stream._check_worker_role(j.owner);
    IF j.state = 'done' THEN
        RETURN job;                 -- nothing is left to do
    END IF;
    UPDATE etl_stream.tasks x SET state = 'pending', worker_pid = NULL, finished_at = NULL
     WHERE x.job_id = job
       AND (x.state IN ('failed', 'cancelled', 'skipped')
            OR (x.state = 'running' AND NOT etl_stream._worker_alive(x.worker_pid)));
    UPDATE etl_stream.jobs x SET state = 'queued', finished_at = NULL, last_error = NULL
     WHERE x.job_id = job;
    PERFORM etl_stream._start_workers(job, j.workers, j.owner);
    RETURN job;
END
$$;

COMMENT ON FUNCTION etl_stream.job_resume(bigint) IS
  'run the tasks of a job that are not done, and only those';

--
-- A task ended (src/workers.c): with a run, it takes the run's outcome;
-- without one (the run was cancelled, or failed before it could record
-- itself), the state and error given.  The tasks of the job that depend on
-- one that did not succeed are skipped, and the job's counts follow.
--
CREATE OR REPLACE FUNCTION etl_stream._task_finished(task bigint, run bigint,
        state text DEFAULT NULL, sqlstate text DEFAULT NULL, message text DEFAULT NULL,
        detail text DEFAULT NULL, hint text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    k etl_stream.tasks;
    d record;
    why text;
BEGIN
    IF run IS NOT NULL THEN
        UPDATE etl_stream.tasks x
           SET state = CASE r.status WHEN 'success' THEN 'done' WHEN 'failed' THEN 'failed' WHEN 'timed_out' THEN 'failed' ELSE 'skipped' END,
               finished_at = r.finished_at,
               seconds = extract(epoch FROM r.finished_at - x.started_at),
               rows_pulled = r.rows_pulled, rows_landed = r.rows_landed,
               rows_merged = r.rows_inserted + r.rows_updated + r.rows_deleted + r.rows_flagged,
               run_id = r.run_id,
               resume_from = CASE WHEN r.status = 'success' THEN NULL ELSE x.range_from END,
               sqlstate = r.sqlstate, message = coalesce(r.message, r.error), detail = r.detail, hint = r.hint,
               error_column = r.error_column, error_mysql_type = r.error_mysql_type,
               error_key = r.error_key, error_value = r.error_value
          FROM etl_stream.runs r
         WHERE r.run_id = run AND x.task_id = task
        RETURNING x.* INTO k;
    ELSE
        UPDATE etl_stream.tasks x
           SET state = _task_finished.state, finished_at = now(),
               seconds = extract(epoch FROM now() - x.started_at),
               resume_from = x.range_from,
               sqlstate = _task_finished.sqlstate, message = _task_finished.message,
               detail = _task_finished.detail, hint = _task_finished.hint
         WHERE x.task_id = task AND x.state = 'running'
        RETURNING x.* INTO k;
    END IF;
    IF k.task_id IS NULL THEN
        RETURN NULL;
    END IF;
    IF k.state <> 'done' THEN
        -- what depends on it, directly or not, cannot run in this job
        why := format('etl_stream table "%s", which it depends on, did not succeed (%s)',
                      k.table_name, k.state);
        FOR d IN
            WITH RECURSIVE dep(position) AS (
                SELECT x.position FROM etl_stream.tasks x
                 WHERE x.job_id = k.job_id AND k.position = ANY (x.depends_on)
                UNION
                SELECT x.position FROM etl_stream.tasks x JOIN dep ON dep.position = ANY (x.depends_on)
                 WHERE x.job_id = k.job_id)
            SELECT x.task_id, x.table_name FROM etl_stream.tasks x JOIN dep USING (position)
             WHERE x.job_id = k.job_id AND x.state = 'pending' ORDER BY x.position
        LOOP
            UPDATE etl_stream.tasks x
               SET state = 'skipped', finished_at = now(), message = 'skipped: ' || why,
                   run_id = etl_stream._record_skipped(d.table_name, why, k.job_id, d.task_id)
             WHERE x.task_id = d.task_id;
        END LOOP;
    END IF;
    UPDATE etl_stream.jobs j
       SET tasks_done = s.done, rows_pulled = s.pulled, rows_merged = s.merged
      FROM (SELECT count(*) FILTER (WHERE x.state = 'done') AS done,
                   coalesce(sum(x.rows_pulled), 0) AS pulled, coalesce(sum(x.rows_merged), 0) AS merged
              FROM etl_stream.tasks x WHERE x.job_id = k.job_id) s
     WHERE j.job_id = k.job_id;
    RETURN k.state;
END
$$;

--
-- The end of a job, by the last of its workers: tasks a worker left
-- running when it ended are failed, the job takes its final state, and a
-- backfill with an open end moves the table's watermark to the MAX read
-- when it began (so the next incremental sync starts there).  Returns the
-- target to ANALYZE, or NULL; nothing when other workers are still at it.
--
CREATE OR REPLACE FUNCTION etl_stream._finish_job(job bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    j etl_stream.jobs;
    t etl_stream.tables;
    busy boolean;
BEGIN
    SELECT * INTO j FROM etl_stream.jobs x WHERE x.job_id = job FOR UPDATE;
    IF NOT FOUND OR j.finished_at IS NOT NULL THEN
        RETURN NULL;
    END IF;
    SELECT EXISTS (SELECT FROM etl_stream.tasks x WHERE x.job_id = job
                     AND (x.state = 'pending' AND j.state <> 'cancelled'
                          OR x.state = 'running' AND x.worker_pid IS DISTINCT FROM pg_backend_pid()
                             AND etl_stream._worker_alive(x.worker_pid)))
      INTO busy;
    IF busy THEN
        RETURN NULL;
    END IF;
    UPDATE etl_stream.tasks x
       SET state = 'failed', finished_at = now(), sqlstate = '57P01',
           message = format('the worker (pid %s) ended before the task was done', x.worker_pid)
     WHERE x.job_id = job AND x.state = 'running';
    UPDATE etl_stream.tasks x SET state = 'skipped', finished_at = now(),
           message = 'skipped: a task it depends on did not succeed'
     WHERE x.job_id = job AND x.state = 'pending';
    UPDATE etl_stream.jobs x
       SET state = CASE WHEN j.state = 'cancelled' THEN 'cancelled'
                        WHEN s.done = s.total THEN 'done' ELSE 'failed' END,
           finished_at = now(), tasks_done = s.done, rows_pulled = s.pulled, rows_merged = s.merged,
           last_error = s.last_error
      FROM (SELECT count(*) AS total, count(*) FILTER (WHERE k.state = 'done') AS done,
                   coalesce(sum(k.rows_pulled), 0) AS pulled, coalesce(sum(k.rows_merged), 0) AS merged,
                   (SELECT format('task %s (%s): %s', e.position, e.table_name, e.message)
                      FROM etl_stream.tasks e
                     WHERE e.job_id = job AND e.state IN ('failed', 'skipped') AND e.message IS NOT NULL
                     ORDER BY e.finished_at DESC NULLS LAST LIMIT 1) AS last_error
              FROM etl_stream.tasks k WHERE k.job_id = job) s
     WHERE x.job_id = job
    RETURNING x.* INTO j;
    IF j.kind = 'backfill' AND j.state = 'done' THEN
        SELECT * INTO t FROM etl_stream.tables x WHERE x.name = j.tables[1] FOR NO KEY UPDATE;
        IF j.watermark_after IS NOT NULL THEN
            UPDATE etl_stream.tables x SET high_watermark = etl_stream._later(t, t.high_watermark, j.watermark_after)
             WHERE x.name = t.name;
        END IF;
        IF j.rows_merged > 0 THEN
            RETURN etl_stream._target_name(t);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
