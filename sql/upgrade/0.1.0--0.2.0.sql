--
-- 0.1.0 -> 0.2.0, before the functions and views are (re)defined: the run
-- became C (src/run.c) and records its failures' facts as columns, the
-- progress view reads shared memory, and the strategy and watermark-kind
-- lists live in one function each (sql/objects/05_vocabulary.sql).
--

-- the progress view changes its columns; CREATE OR REPLACE cannot do that
DROP VIEW etl_stream.progress;

-- the constraints are made again on the vocabulary, after it exists
ALTER TABLE etl_stream.tables
    DROP CONSTRAINT tables_strategy_check,
    DROP CONSTRAINT tables_watermark_kind_check;

ALTER TABLE etl_stream.runs
    ADD COLUMN sqlstate text,
    ADD COLUMN message text,
    ADD COLUMN detail text,
    ADD COLUMN hint text,
    ADD COLUMN error_column text,
    ADD COLUMN error_mysql_type text,
    ADD COLUMN error_key text,
    ADD COLUMN error_value text,
    ADD COLUMN attempt integer NOT NULL DEFAULT 1,
    ADD COLUMN job_id bigint,
    ADD COLUMN task_id bigint;

ALTER TYPE etl_stream.plan
    ADD ATTRIBUTE target text,
    ADD ATTRIBUTE staging text;
