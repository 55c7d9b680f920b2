--
-- 0.4.0 -> 0.5.0, before the new catalog and the functions and views:
-- faults, bad values and many roles (issue 11).
--

-- == faults: a run cancelled or terminated is recorded afterwards as 'cancelled'
ALTER TABLE etl_stream.runs
    DROP CONSTRAINT runs_status_check,
    ADD CONSTRAINT runs_status_check
        CHECK (status IN ('success', 'failed', 'skipped', 'timed_out', 'cancelled'));

-- == bad values: on_bad_value per table, rejects (13_catalog_rejects.sql), what policies did in each run
ALTER TABLE etl_stream.tables
    ADD COLUMN on_bad_value text NOT NULL DEFAULT 'error'
        CHECK (on_bad_value IN ('error', 'skip', 'quarantine'));
ALTER TABLE etl_stream.runs
    ADD COLUMN rows_rejected bigint NOT NULL DEFAULT 0,
    ADD COLUMN values_changed jsonb,
    ADD COLUMN values_rejected jsonb;
-- text in a charset MariaDB would turn into '?' is received as bytes
ALTER TYPE etl_stream.plan ADD ATTRIBUTE raw_charsets text[];
-- add_table and alter_table take on_bad_value: the 0.4.0 signatures go
-- (IF EXISTS: the schema part drops them too)
DROP FUNCTION IF EXISTS etl_stream.add_table(text, name, text, text, anyelement, text, text[], text[], name, name,
                                             text, boolean, text[], integer, interval, interval);
DROP FUNCTION IF EXISTS etl_stream.alter_table(text, anyelement, text, boolean, text, text[], integer, interval,
                                               interval);
