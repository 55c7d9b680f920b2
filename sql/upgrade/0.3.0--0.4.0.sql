--
-- 0.3.0 -> 0.4.0, before the new catalog and the functions and views:
-- schedules with pg_cron, retries with backoff, run timeouts.
--

ALTER TABLE etl_stream.tables
    ADD COLUMN retries integer NOT NULL DEFAULT 3 CHECK (retries BETWEEN 0 AND 100),
    ADD COLUMN retry_backoff interval NOT NULL DEFAULT '30 s' CHECK (retry_backoff > '0'),
    ADD COLUMN timeout interval CHECK (timeout > '0');

ALTER TABLE etl_stream.runs
    DROP CONSTRAINT runs_status_check,
    ADD CONSTRAINT runs_status_check
        CHECK (status IN ('success', 'failed', 'skipped', 'timed_out'));

-- functions whose arguments change: CREATE OR REPLACE cannot do that
DROP FUNCTION etl_stream.add_table(text, name, text, text, anyelement, text, text[], text[],
                                   name, name, text, boolean, text[]);
DROP FUNCTION etl_stream.alter_table(text, anyelement, text, boolean, text, text[]);
-- the status view gains columns before its last ones
DROP VIEW etl_stream.status;
