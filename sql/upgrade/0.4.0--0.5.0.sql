--
-- 0.4.0 -> 0.5.0, before the new catalog and the functions and views:
-- faults, bad values and many roles (issue 11).
--

-- == faults: a run cancelled or terminated is recorded afterwards as 'cancelled'
ALTER TABLE etl_stream.runs
    DROP CONSTRAINT runs_status_check,
    ADD CONSTRAINT runs_status_check
        CHECK (status IN ('success', 'failed', 'skipped', 'timed_out', 'cancelled'));

-- == verify: a ranged run records its upper bound; repair is a kind of job
ALTER TABLE etl_stream.runs ADD COLUMN upper_bound text;
ALTER TABLE etl_stream.jobs
    DROP CONSTRAINT jobs_kind_check,
    ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('backfill', 'sync_all', 'repair'));
