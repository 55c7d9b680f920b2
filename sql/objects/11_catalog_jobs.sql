--
-- The catalog of background work (added in 0.3.0): jobs, and the tasks
-- workers claim from them.  A backfill is a job whose tasks are slices of
-- one table; a parallel sync_all is a job whose tasks are tables, in
-- dependency order; a sweep_deletes job's tasks are ranges of one table's
-- key.  pg_dump carries both, as configuration tables.
--
-- A role sees and changes only its own jobs and their tasks (row level
-- security, as pg_cron does for cron.job); workers run as the job's owner.
--

-- Task staging tables live here, one per running slice: named after the
-- task, so that no registration name can ever meet one.
CREATE SCHEMA etl_stream_tasks;

CREATE TABLE etl_stream.jobs (
    job_id          bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('backfill', 'sync_all', 'repair', 'sweep_deletes')),
    tables          text[] NOT NULL,
    owner           name NOT NULL DEFAULT current_user,
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    workers         integer NOT NULL CHECK (workers > 0),
    wait            boolean NOT NULL DEFAULT false,  -- its runs wait for a run of their table
    range_from      text,               -- backfill: the bounds and slice it was made with
    range_to        text,
    slice           text,
    watermark_after text,               -- backfill with an open end: the watermark the table
                                        -- gets when the job is done (the source's MAX at creation)
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    tasks_total     integer NOT NULL DEFAULT 0,
    tasks_done      integer NOT NULL DEFAULT 0,
    rows_pulled     bigint NOT NULL DEFAULT 0,
    rows_merged     bigint NOT NULL DEFAULT 0,
    last_error      text
);
CREATE INDEX jobs_state_idx ON etl_stream.jobs (state) WHERE state IN ('queued', 'running');
SELECT pg_catalog.pg_extension_config_dump('etl_stream.jobs', '');
SELECT pg_catalog.pg_extension_config_dump('etl_stream.jobs_job_id_seq', '');

CREATE TABLE etl_stream.tasks (
    task_id         bigserial PRIMARY KEY,
    job_id          bigint NOT NULL REFERENCES etl_stream.jobs ON DELETE CASCADE,
    position        integer NOT NULL,
    table_name      text NOT NULL,
    range_on        text,               -- the column sliced: the watermark, or an integer key
    range_from      text,               -- the slice, [range_from, range_to), as literals
    range_to        text,               -- of that column; NULL: open
    depends_on      integer[] NOT NULL DEFAULT '{}',   -- positions in the job
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'running', 'done', 'failed', 'cancelled', 'skipped')),
    attempts        integer NOT NULL DEFAULT 0,
    worker_pid      integer,
    started_at      timestamptz,
    finished_at     timestamptz,
    seconds         double precision,
    rows_pulled     bigint NOT NULL DEFAULT 0,
    rows_landed     bigint NOT NULL DEFAULT 0,
    rows_merged     bigint NOT NULL DEFAULT 0,
    run_id          bigint,             -- its last run in etl_stream.runs
    resume_from     text,               -- where its next attempt starts: a slice commits whole,
                                        -- so its lower bound until it is done
    sqlstate        text,               -- the last error, as in etl_stream.runs
    message         text,
    detail          text,
    hint            text,
    error_column    text,
    error_mysql_type text,
    error_key       text,
    error_value     text,
    UNIQUE (job_id, position)
);
CREATE INDEX tasks_pending_idx ON etl_stream.tasks (job_id, position) WHERE state = 'pending';
SELECT pg_catalog.pg_extension_config_dump('etl_stream.tasks', '');
SELECT pg_catalog.pg_extension_config_dump('etl_stream.tasks_task_id_seq', '');

ALTER TABLE etl_stream.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE etl_stream.tasks ENABLE ROW LEVEL SECURITY;
-- (roles looked up in pg_roles: a dropped owner must not break the table)
CREATE POLICY jobs_of_owner ON etl_stream.jobs
    USING (owner IN (SELECT r.rolname FROM pg_catalog.pg_roles r
                      WHERE pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')));
CREATE POLICY tasks_of_owner ON etl_stream.tasks
    USING (EXISTS (SELECT FROM etl_stream.jobs j WHERE j.job_id = tasks.job_id));
-- (the grants: sql/objects/95_grants.sql)
