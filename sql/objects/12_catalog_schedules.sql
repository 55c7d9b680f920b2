--
-- Schedules (added in 0.4.0): a named pg_cron job that syncs a set of
-- tables (NULL: every enabled one) in dependency order, with retries.  The
-- pg_cron job is found by its name, etl_stream.<name>, and its owner, so
-- that a dump and restore of both extensions (pg_cron dumps cron.job)
-- leaves them joined whatever job id the restore gives.
--
-- A role sees and changes only its own schedules (row level security, as
-- for jobs); pg_cron runs the schedule as its owner.
--
CREATE TABLE etl_stream.schedule_defs (
    name            text PRIMARY KEY
                    CHECK (name ~ '^[A-Za-z0-9_.-]{1,48}$'),
    cron            text NOT NULL,
    tables          text[],             -- NULL: every enabled table when it runs
    parallel        integer NOT NULL DEFAULT 1 CHECK (parallel >= 1),
    owner           name NOT NULL DEFAULT current_user,
    created_at      timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('etl_stream.schedule_defs', '');

ALTER TABLE etl_stream.schedule_defs ENABLE ROW LEVEL SECURITY;
CREATE POLICY schedules_of_owner ON etl_stream.schedule_defs
    USING (owner IN (SELECT r.rolname FROM pg_catalog.pg_roles r
                      WHERE pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')));
-- (the grants: sql/objects/95_grants.sql)
