--
-- 0.4.0 -> 0.5.0, before the new catalog and the functions and views:
-- faults, bad values and many roles (issue 11).
--

-- == faults: a run cancelled or terminated is recorded afterwards as 'cancelled'
ALTER TABLE etl_stream.runs
    DROP CONSTRAINT runs_status_check,
    ADD CONSTRAINT runs_status_check
        CHECK (status IN ('success', 'failed', 'skipped', 'timed_out', 'cancelled'));

-- == schema: create_target keeps what the source declares; schema drift (on_schema_change)
ALTER TABLE etl_stream.tables
    ADD COLUMN on_schema_change text NOT NULL DEFAULT 'warn'
        CONSTRAINT tables_on_schema_change_check
        CHECK (on_schema_change IN ('warn', 'fail', 'add_columns')),
    ADD COLUMN source_columns text[];
ALTER TABLE etl_stream.runs
    ADD COLUMN schema_changes text;
-- add_table and alter_table gain on_schema_change: CREATE OR REPLACE cannot add it
DROP FUNCTION etl_stream.add_table(text, name, text, text, anyelement, text, text[], text[],
                                   name, name, text, boolean, text[], integer, interval, interval);
DROP FUNCTION etl_stream.alter_table(text, anyelement, text, boolean, text, text[],
                                     integer, interval, interval);

-- == roles: registrations and runs get an owner and are confined to it
-- (row level security); the grants to etl_stream_user replace PUBLIC's in
-- sql/objects/95_grants.sql.  Existing rows belong to the role that
-- updates the extension, which had them all.  add_table gains column_map
-- (its old signature went above).
ALTER TABLE etl_stream.tables
    ADD COLUMN owner name NOT NULL DEFAULT current_user,
    ADD COLUMN source_names text[],
    ADD CONSTRAINT tables_source_names_check
        CHECK (cardinality(source_names) = cardinality(columns));
ALTER TABLE etl_stream.runs
    ADD COLUMN owner name NOT NULL DEFAULT current_user;
ALTER TABLE etl_stream.tables ENABLE ROW LEVEL SECURITY;
ALTER TABLE etl_stream.runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tables_of_owner ON etl_stream.tables
    USING (owner IN (SELECT r.rolname FROM pg_catalog.pg_roles r
                      WHERE pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')));
CREATE POLICY runs_of_owner ON etl_stream.runs
    USING (owner IN (SELECT r.rolname FROM pg_catalog.pg_roles r
                      WHERE pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')));

-- == bad values: on_bad_value per table, rejects (13_catalog_rejects.sql), what policies did in each run
ALTER TABLE etl_stream.tables
    ADD COLUMN on_bad_value text NOT NULL DEFAULT 'error'
        CONSTRAINT tables_on_bad_value_check
        CHECK (on_bad_value IN ('error', 'skip', 'quarantine'));
ALTER TABLE etl_stream.runs
    ADD COLUMN rows_rejected bigint NOT NULL DEFAULT 0,
    ADD COLUMN values_changed jsonb,
    ADD COLUMN values_rejected jsonb;
-- text in a charset MariaDB would turn into '?' is received as bytes
ALTER TYPE etl_stream.plan ADD ATTRIBUTE raw_charsets text[];
-- add_table and alter_table gain on_bad_value (their 0.4.0 signatures went above)

-- == verify: a ranged run records its upper bound; repair is a kind of job
ALTER TABLE etl_stream.runs ADD COLUMN upper_bound text;
-- (the jobs' kinds: below, with sweep_deletes)

-- == deletes: hard deletes followed per table, counted in runs, swept by a job;
-- the kinds of job of verify (repair) and deletes (sweep_deletes)
ALTER TABLE etl_stream.tables
    ADD COLUMN deletes text NOT NULL DEFAULT 'keep'
        CONSTRAINT tables_deletes_check CHECK (deletes IN ('keep', 'delete', 'flag')),
    ADD CONSTRAINT tables_deletes_strategy_check CHECK (deletes = 'keep' OR strategy = 'merge');
ALTER TABLE etl_stream.runs ADD COLUMN rows_flagged bigint NOT NULL DEFAULT 0;
ALTER TABLE etl_stream.jobs
    DROP CONSTRAINT jobs_kind_check,
    ADD CONSTRAINT jobs_kind_check CHECK (kind IN ('backfill', 'sync_all', 'repair', 'sweep_deletes'));
-- add_table and alter_table gain deletes (their 0.4.0 signatures went above)

-- == transforms: a run of etl_stream.runs is a table's sync or a transform's,
-- and a transform's records the literals its placeholders were given
-- (the catalog table etl_stream.transforms is sql/objects/13_catalog_transforms.sql)
ALTER TABLE etl_stream.runs
    ADD COLUMN kind text NOT NULL DEFAULT 'sync'
        CONSTRAINT runs_kind_check CHECK (kind IN ('sync', 'transform')),
    ADD COLUMN bindings jsonb;
