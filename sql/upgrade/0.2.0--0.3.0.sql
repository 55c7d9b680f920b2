--
-- 0.2.0 -> 0.3.0, before the new catalog and the functions and views:
-- background workers (jobs and tasks, sql/objects/11_catalog_jobs.sql),
-- dependencies between tables, deferred statistics.
--

-- 0.2.0's functions of a registration had SQL-standard bodies, which keep
-- the table's row type from changing; they come back with string bodies
DROP FUNCTION etl_stream._cutoff(etl_stream.tables);
DROP FUNCTION etl_stream._later(etl_stream.tables, text, text);
DROP FUNCTION etl_stream._canonical(etl_stream.tables, text);
DROP FUNCTION etl_stream._typed_literal(etl_stream.tables, text);
DROP FUNCTION etl_stream._mysql_value(etl_stream.tables, text);
DROP FUNCTION etl_stream._source_name(etl_stream.tables);
DROP FUNCTION etl_stream._target_name(etl_stream.tables);
DROP FUNCTION etl_stream._staging_name(etl_stream.tables);

ALTER TABLE etl_stream.tables
    ADD COLUMN depends_on text[] NOT NULL DEFAULT '{}';

ALTER TABLE etl_stream.runs
    ADD COLUMN statistics text CHECK (statistics IN ('in_run', 'deferred'));

-- functions whose arguments change: CREATE OR REPLACE cannot do that
DROP FUNCTION etl_stream.add_table(text, name, text, text, anyelement, text, text[], text[],
                                   name, name, text, boolean);
DROP FUNCTION etl_stream.disable_table(text);    -- SQL-standard bodies calling alter_table
DROP FUNCTION etl_stream.enable_table(text);
DROP FUNCTION etl_stream.alter_table(text, anyelement, text, boolean, text);
DROP FUNCTION etl_stream.sync_all(boolean);
DROP FUNCTION etl_stream.create_target(text);
DROP FUNCTION etl_stream._plan(etl_stream.tables, text, text, text);
DROP FUNCTION etl_stream._prepare_staging(etl_stream.tables);
DROP FUNCTION etl_stream._direct_sql(etl_stream.tables, regclass, etl_stream.plan);
-- the progress view gains columns before its last ones
DROP VIEW etl_stream.progress;
DROP FUNCTION etl_stream._progress();
