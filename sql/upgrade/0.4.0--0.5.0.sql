--
-- 0.4.0 -> 0.5.0, before the new catalog and the functions and views:
-- faults, bad values and many roles (issue 11).
--

-- == faults: a run cancelled or terminated is recorded afterwards as 'cancelled'
ALTER TABLE etl_stream.runs
    DROP CONSTRAINT runs_status_check,
    ADD CONSTRAINT runs_status_check
        CHECK (status IN ('success', 'failed', 'skipped', 'timed_out', 'cancelled'));

-- == transforms: a run of etl_stream.runs is a table's sync or a transform's,
-- and a transform's records the literals its placeholders were given
-- (the catalog table etl_stream.transforms is sql/objects/13_catalog_transforms.sql)
ALTER TABLE etl_stream.runs
    ADD COLUMN kind text NOT NULL DEFAULT 'sync'
        CONSTRAINT runs_kind_check CHECK (kind IN ('sync', 'transform')),
    ADD COLUMN bindings jsonb;
