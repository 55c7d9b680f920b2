--
-- The catalog: the wrapper sources are declared with, the registered
-- tables, the history of runs, and the schema staging tables live in.
-- Created once; an upgrade changes these with ALTER (sql/upgrade/).
--

-- Who may reach a source is decided by USAGE on its foreign server and by
-- the user mappings, as with postgres_fdw; who may use the schema, by
-- membership in etl_stream_user (sql/objects/95_grants.sql).

--
-- MySQL sources are foreign servers of this wrapper; credentials live in
-- user mappings.  The wrapper has no handler: it only validates options.
--
CREATE FUNCTION etl_stream.fdw_validator(options text[], catalog oid)
RETURNS void
AS 'MODULE_PATHNAME', 'etl_stream_fdw_validator'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER etl_stream
  VALIDATOR etl_stream.fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER etl_stream IS
  'MySQL/MariaDB sources for etl_stream';

-- Staging tables live here, one per registered table, UNLOGGED.
CREATE SCHEMA etl_stream_staging;

--
-- The registered tables.  pg_dump carries their definitions (and
-- watermarks) with the extension's configuration tables.
--
CREATE TABLE etl_stream.tables (
    name            text PRIMARY KEY
                    CHECK (name <> '' AND length(name) <= 48),
    server          name NOT NULL,
    source_schema   text,               -- MySQL database; NULL: the server's dbname
    source_table    text NOT NULL,
    target_schema   name NOT NULL,
    target_table    name NOT NULL,
    key_columns     text[] NOT NULL,    -- may be empty for append
    columns         text[] NOT NULL,    -- moved columns, in order
    column_types    text[] NOT NULL,    -- their natural PostgreSQL types
    watermark       text,               -- NULL: every sync pulls everything
    watermark_kind  text,               -- see etl_stream._watermark_kinds()
    lookback        text NOT NULL DEFAULT '0',  -- a number, or an interval
    strategy        text NOT NULL DEFAULT 'merge',
    enabled         boolean NOT NULL DEFAULT true,
    high_watermark  text,               -- of the last successful run
    created_at      timestamptz NOT NULL DEFAULT now(),
    depends_on      text[] NOT NULL DEFAULT '{}',  -- synced after these, by sync_all
    retries         integer NOT NULL DEFAULT 3      -- attempts after a transient failure
                    CHECK (retries BETWEEN 0 AND 100),
    retry_backoff   interval NOT NULL DEFAULT '30 s'   -- before the first retry; doubles
                    CHECK (retry_backoff > '0'),
    timeout         interval                        -- a run past it is stopped; NULL: none
                    CHECK (timeout > '0'),
    on_schema_change text NOT NULL DEFAULT 'warn'   -- (0.5.0) a column added, removed or retyped on the source
                    CONSTRAINT tables_on_schema_change_check
                    CHECK (on_schema_change IN ('warn', 'fail', 'add_columns')),
    source_columns  text[],             -- (0.5.0) every column of the source as last taken in; NULL: not yet known
    owner           name NOT NULL DEFAULT current_user,  -- (0.5.0) who may see, sync and change it
    source_names    text[],             -- (0.5.0) the MySQL name of each of columns; NULL: the same names
    on_bad_value    text NOT NULL DEFAULT 'error'   -- (0.5.0) a row with a value that does not convert
                    CONSTRAINT tables_on_bad_value_check
                    CHECK (on_bad_value IN ('error', 'skip', 'quarantine')),
    deletes         text NOT NULL DEFAULT 'keep'    -- (0.5.0) rows gone from MySQL: see _delete_policies()
                    CONSTRAINT tables_deletes_check CHECK (deletes IN ('keep', 'delete', 'flag')),
    CONSTRAINT tables_source_names_check
        CHECK (cardinality(source_names) = cardinality(columns)),
    CHECK (watermark IS NOT NULL OR strategy <> 'merge'),
    CHECK ((watermark IS NULL) = (watermark_kind IS NULL)),
    CHECK (columns <> '{}' AND cardinality(columns) = cardinality(column_types)),
    CHECK (key_columns <@ columns),
    CHECK (watermark IS NULL OR watermark = ANY (columns)),
    CHECK (cardinality(key_columns) > 0 OR strategy IN ('append', 'full_refresh')),
    CONSTRAINT tables_strategy_check CHECK (strategy = ANY (etl_stream._strategies())),
    CONSTRAINT tables_watermark_kind_check
        CHECK (watermark_kind IS NULL OR etl_stream._is_watermark_kind(watermark_kind)),
    CONSTRAINT tables_deletes_strategy_check CHECK (deletes = 'keep' OR strategy = 'merge')
);
SELECT pg_catalog.pg_extension_config_dump('etl_stream.tables', '');

--
-- One row per run: successful, failed or skipped.  A failed run keeps what
-- it had done before it failed (rows pulled and landed) and the error's
-- facts as columns; for a value that did not convert, its column, MySQL
-- type, row key and value as shown.
--
CREATE TABLE etl_stream.runs (
    run_id          bigserial PRIMARY KEY,
    table_name      text NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    status          text NOT NULL
                    CONSTRAINT runs_status_check
                    CHECK (status IN ('success', 'failed', 'skipped', 'timed_out', 'cancelled')),
    strategy        text,
    rows_pulled     bigint NOT NULL DEFAULT 0,  -- read from MySQL
    rows_landed     bigint NOT NULL DEFAULT 0,  -- written to staging (or the target, loaded directly)
    rows_inserted   bigint NOT NULL DEFAULT 0,
    rows_updated    bigint NOT NULL DEFAULT 0,
    rows_unchanged  bigint NOT NULL DEFAULT 0,
    rows_deleted    bigint NOT NULL DEFAULT 0,  -- replaced (delete_insert, full_refresh), or gone from MySQL (merge)
    cutoff          text,               -- lower bound used, NULL: everything
    new_watermark   text,
    connect_s       double precision,
    pull_s          double precision,
    merge_s         double precision,
    finish_s        double precision,
    failed_phase    text,
    error           text,               -- message, detail and the value's facts, as one text
    load_path       text CHECK (load_path IN ('staging', 'direct')),
    sqlstate        text,
    message         text,
    detail          text,
    hint            text,
    error_column    text,               -- a value error: the target column,
    error_mysql_type text,              -- the MySQL type it came from,
    error_key       text,               -- the row, as (key columns)=(values)
    error_value     text,               -- and the value, as shown in the message
    attempt         integer NOT NULL DEFAULT 1,
    job_id          bigint,
    task_id         bigint,
    statistics      text CHECK (statistics IN ('in_run', 'deferred')),  -- how the run ANALYZEd, if it did
    schema_changes  text,               -- (0.5.0) what changed on the source since the registration, and what the run did
    owner           name NOT NULL DEFAULT current_user,  -- (0.5.0) the registration's owner
    rows_rejected   bigint NOT NULL DEFAULT 0,  -- (0.5.0) left out by on_bad_value (skip, quarantine)
    values_changed  jsonb,              -- (0.5.0) per column: values invalid_dates changed (a success)
    values_rejected jsonb,              -- (0.5.0) per column: rows left out for one of its values
    upper_bound     text,               -- (0.5.0) a ranged run (a backfill slice, a repair): its end, exclusive
    rows_flagged    bigint NOT NULL DEFAULT 0,  -- (0.5.0) deletes => 'flag': rows given a _deleted_at
    kind            text NOT NULL DEFAULT 'sync'    -- (0.5.0) a table's sync, or a transform's run
                    CONSTRAINT runs_kind_check CHECK (kind IN ('sync', 'transform')),
    bindings        jsonb               -- (0.5.0) a transform: each :placeholder and the literal it was given
);
CREATE INDEX runs_table_name_finished_at_idx ON etl_stream.runs (table_name, finished_at);
CREATE INDEX runs_finished_at_idx ON etl_stream.runs (finished_at);
SELECT pg_catalog.pg_extension_config_dump('etl_stream.runs', '');
SELECT pg_catalog.pg_extension_config_dump('etl_stream.runs_run_id_seq', '');

-- (0.5.0) A role sees and changes only the registrations and runs of the
-- roles whose privileges it has (row level security, as pg_cron does for
-- cron.job); superusers and the extension's owner see all.  The grants are
-- in sql/objects/95_grants.sql.
ALTER TABLE etl_stream.tables ENABLE ROW LEVEL SECURITY;
ALTER TABLE etl_stream.runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tables_of_owner ON etl_stream.tables
    USING (owner IN (SELECT r.rolname FROM pg_catalog.pg_roles r
                      WHERE pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')));
CREATE POLICY runs_of_owner ON etl_stream.runs
    USING (owner IN (SELECT r.rolname FROM pg_catalog.pg_roles r
                      WHERE pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')));

--
-- The statements a run executes, with the cutoff (and an optional upper
-- bound) written in as literal constants; etl_stream._plan() makes one.
--
CREATE TYPE etl_stream.plan AS (
    cutoff      text,       -- lower bound, inclusive; NULL: none
    upper_bound text,       -- upper bound, exclusive; NULL: none
    remote_sql  text,       -- runs on MySQL
    remote_from text,       -- its FROM and WHERE, for another column order
    delete_sql  text,       -- delete_insert: the target rows being replaced
    merge_sql   text,       -- staging -> target; returns (inserted, updated, batch)
    target      text,       -- the target, qualified and quoted
    staging     text,       -- the staging table, qualified and quoted
    raw_charsets text[]     -- per column: the charset it is received in as bytes, or NULL
);
