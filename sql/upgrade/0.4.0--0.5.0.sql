--
-- 0.4.0 -> 0.5.0, before the new catalog and the functions and views:
-- faults, bad values and many roles (issue 11).
--

-- == faults: a run cancelled or terminated is recorded afterwards as 'cancelled'
ALTER TABLE etl_stream.runs
    DROP CONSTRAINT runs_status_check,
    ADD CONSTRAINT runs_status_check
        CHECK (status IN ('success', 'failed', 'skipped', 'timed_out', 'cancelled'));

-- == deletes: hard deletes followed per table, counted in runs, swept by a job
ALTER TABLE etl_stream.tables
    ADD COLUMN deletes text NOT NULL DEFAULT 'keep'
        CONSTRAINT tables_deletes_check CHECK (deletes IN ('keep', 'delete', 'flag')),
    ADD CONSTRAINT tables_deletes_strategy_check CHECK (deletes = 'keep' OR strategy = 'merge');
ALTER TABLE etl_stream.runs ADD COLUMN rows_flagged bigint NOT NULL DEFAULT 0;
ALTER TABLE etl_stream.jobs
    DROP CONSTRAINT jobs_kind_check,
    ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('backfill', 'sync_all', 'sweep_deletes'));
-- add_table and alter_table gain deletes: CREATE OR REPLACE cannot do that
-- (IF EXISTS: another part of this release may have dropped them already)
DROP FUNCTION IF EXISTS etl_stream.add_table(text, name, text, text, anyelement, text, text[], text[],
                                             name, name, text, boolean, text[], integer, interval, interval);
DROP FUNCTION IF EXISTS etl_stream.alter_table(text, anyelement, text, boolean, text, text[],
                                               integer, interval, interval);
