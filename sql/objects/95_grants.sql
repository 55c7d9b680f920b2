--
-- Who may use etl_stream: the members of the group role etl_stream_user,
-- not PUBLIC.  Each member sees and changes only the rows of its own
-- roles (row level security on the catalog, sql/objects/10_catalog.sql);
-- reaching a source still needs USAGE on its foreign server and a user
-- mapping, and loading a target the privileges on it.  Run by the install
-- and by every upgrade, after the objects are (re)defined, so that what a
-- new function gets by default (EXECUTE for PUBLIC) is taken back here.
--
-- The role is cluster-wide and outlives the extension; it is made only
-- when it is missing, so one role serves every database.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'etl_stream_user') THEN
        CREATE ROLE etl_stream_user NOLOGIN;
    END IF;
END
$$;

REVOKE ALL ON SCHEMA etl_stream FROM PUBLIC;
GRANT USAGE ON SCHEMA etl_stream TO etl_stream_user;

REVOKE ALL ON ALL ROUTINES IN SCHEMA etl_stream FROM PUBLIC;
GRANT EXECUTE ON ALL ROUTINES IN SCHEMA etl_stream TO etl_stream_user;

-- the catalog: rows confined to their owner by the policies
REVOKE ALL ON etl_stream.tables, etl_stream.runs, etl_stream.rejects, etl_stream.jobs,
              etl_stream.tasks, etl_stream.schedule_defs, etl_stream.transforms FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON etl_stream.tables, etl_stream.schedule_defs,
                                        etl_stream.transforms TO etl_stream_user;
-- a run's record is written and pruned by the run, never changed
-- afterwards; its rejects are written by the run, deleted by a retry
GRANT SELECT, INSERT, DELETE ON etl_stream.runs, etl_stream.rejects TO etl_stream_user;
GRANT SELECT, INSERT, UPDATE ON etl_stream.jobs, etl_stream.tasks TO etl_stream_user;
REVOKE ALL ON SEQUENCE etl_stream.runs_run_id_seq, etl_stream.rejects_reject_id_seq,
                       etl_stream.jobs_job_id_seq, etl_stream.tasks_task_id_seq FROM PUBLIC;
GRANT USAGE ON SEQUENCE etl_stream.runs_run_id_seq, etl_stream.rejects_reject_id_seq,
                        etl_stream.jobs_job_id_seq, etl_stream.tasks_task_id_seq TO etl_stream_user;

-- the views read the catalog as the caller (security_invoker): own rows only
REVOKE ALL ON etl_stream.status, etl_stream.progress, etl_stream.schedules FROM PUBLIC;
GRANT SELECT ON etl_stream.status, etl_stream.progress, etl_stream.schedules TO etl_stream_user;

-- Staging tables are made by the run, as the caller, and handed to the
-- registration's owner; one already there that another role owns is never
-- used (etl_stream._prepare_staging)
REVOKE ALL ON SCHEMA etl_stream_staging, etl_stream_tasks FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA etl_stream_staging, etl_stream_tasks TO etl_stream_user;
