--
-- direct: an initial load goes straight from MySQL into the empty target
-- (full_refresh: into its fresh table), through the bulk path with the
-- target's indexes and constraints, and through staging whenever that
-- could not keep the target's rules or the batch's semantics.
--
-- run() and my() come from sync.sql.
--
SELECT my('DROP TABLE IF EXISTS dl_src');
SELECT my('CREATE TABLE dl_src (
             id INT NOT NULL PRIMARY KEY, code VARCHAR(20) COLLATE utf8mb4_bin NOT NULL,
             qty INT, note VARCHAR(40), update_time INT UNSIGNED NOT NULL)');
SELECT my('INSERT INTO dl_src SELECT seq, CONCAT(''c'', seq), seq % 7, CONCAT(''Note '', seq), 1000 + seq
             FROM seq_1_to_2000');

-- ---------------------------------------------------------------------
-- The target's indexes, expression and partial ones too, get their entries
-- ---------------------------------------------------------------------
SELECT FROM etl_stream.add_table('dl_idx', server => 'etl_test', source_table => 'dl_src',
                                 watermark => 'update_time', lookback => 0);
SELECT etl_stream.create_target('dl_idx');
CREATE UNIQUE INDEX dl_idx_code ON dl_idx (code);
CREATE INDEX dl_idx_lower_note ON dl_idx (lower(note));
CREATE INDEX dl_idx_qty0 ON dl_idx (id) WHERE qty = 0;
SELECT * FROM run('dl_idx');
SET enable_seqscan = off;
SET enable_bitmapscan = off;
-- each answered from its index alone
SELECT count(*) FROM dl_idx WHERE code > 'c';
SELECT count(*) FROM dl_idx WHERE lower(note) > 'note';
SELECT count(*) FROM dl_idx WHERE qty = 0;
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT count(*) FROM dl_idx WHERE qty = 0;
SELECT * FROM dl_idx WHERE id IN (1, 2000) ORDER BY id;
-- and the target was analyzed (by a worker, after the run committed)
SELECT wait_analyzed('dl_idx') AS analyzed;
-- the next run merges through staging
SELECT my('UPDATE dl_src SET qty = 100, update_time = 5000 WHERE id <= 3');
SELECT * FROM run('dl_idx');
-- staging keeps rows whole in their page and never compresses them
SELECT c.reloptions, array_agg(a.attname::text || ' ' || a.attstorage::text ORDER BY a.attnum) AS storage
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE c.oid = 'etl_stream_staging.dl_idx'::regclass
 GROUP BY c.reloptions;

-- ---------------------------------------------------------------------
-- CHECK and NOT NULL constraints hold row by row; a violation fails the
-- run and leaves the empty target and the watermark as they were
-- ---------------------------------------------------------------------
SELECT FROM etl_stream.add_table('dl_check', server => 'etl_test', source_table => 'dl_src',
                                 watermark => 'update_time');
SELECT etl_stream.create_target('dl_check');
ALTER TABLE dl_check ADD CONSTRAINT dl_check_qty CHECK (qty < 6);
SELECT * FROM run('dl_check');
SELECT count(*), (SELECT high_watermark FROM etl_stream.tables WHERE name = 'dl_check') FROM dl_check;
ALTER TABLE dl_check DROP CONSTRAINT dl_check_qty, ALTER COLUMN qty SET NOT NULL;
SELECT my('UPDATE dl_src SET qty = NULL WHERE id = 1500');
SELECT * FROM run('dl_check');
SELECT count(*) FROM dl_check;
SELECT my('UPDATE dl_src SET qty = 1500 % 7 WHERE id = 1500');
SELECT * FROM run('dl_check');
SELECT count(*) FROM dl_check;

-- ---------------------------------------------------------------------
-- Columns in another order, and a dropped column, are still direct;
-- a column more (with its default) goes through staging
-- ---------------------------------------------------------------------
SELECT FROM etl_stream.add_table('dl_order', server => 'etl_test', source_table => 'dl_src',
                                 watermark => 'update_time');
CREATE TABLE dl_order (gone int, note varchar(40), update_time bigint, qty integer,
                       code varchar(20) NOT NULL, id integer PRIMARY KEY);
ALTER TABLE dl_order DROP COLUMN gone;
SELECT * FROM run('dl_order');
SELECT * FROM dl_order WHERE id = 7;

SELECT FROM etl_stream.add_table('dl_extra', server => 'etl_test', source_table => 'dl_src',
                                 watermark => 'update_time');
SELECT etl_stream.create_target('dl_extra');
ALTER TABLE dl_extra ADD COLUMN loaded_by text DEFAULT 'etl_stream';
SELECT * FROM run('dl_extra');
SELECT count(*) FILTER (WHERE loaded_by = 'etl_stream') FROM dl_extra;

-- ---------------------------------------------------------------------
-- An insert trigger must fire: staging, and the merge's INSERT
-- ---------------------------------------------------------------------
SELECT FROM etl_stream.add_table('dl_trig', server => 'etl_test', source_table => 'dl_src',
                                 watermark => 'update_time');
SELECT etl_stream.create_target('dl_trig');
CREATE TABLE dl_trig_seen (n bigint);
CREATE FUNCTION dl_trig_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dl_trig_seen SELECT count(*) FROM new_rows;
    RETURN NULL;
END $$;
CREATE TRIGGER dl_trig_count AFTER INSERT ON dl_trig
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dl_trig_count();
SELECT * FROM run('dl_trig');
SELECT * FROM dl_trig_seen;
-- and land() itself says why it refuses such a table
SELECT * FROM etl_stream.land('etl_test', 'SELECT * FROM dl_src', 'dl_trig');

-- ---------------------------------------------------------------------
-- Keys MySQL tells apart that the target's collation does not: the direct
-- load meets the primary key, and the run goes through staging instead,
-- which keeps the newest row of the key
-- ---------------------------------------------------------------------
CREATE COLLATION dl_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
SELECT my('DROP TABLE IF EXISTS dl_codes');
SELECT my('CREATE TABLE dl_codes (code VARCHAR(10) COLLATE utf8mb4_bin PRIMARY KEY,
             label VARCHAR(10), update_time INT NOT NULL)');
SELECT my('INSERT INTO dl_codes VALUES (''abc'', ''older'', 1), (''ABC'', ''newer'', 2), (''xyz'', ''only'', 1)');
SELECT FROM etl_stream.add_table('dl_codes', server => 'etl_test', source_table => 'dl_codes',
                                 watermark => 'update_time');
CREATE TABLE dl_codes (code varchar(10) COLLATE dl_ci PRIMARY KEY, label varchar(10), update_time integer);
SELECT * FROM run('dl_codes');
SELECT * FROM dl_codes ORDER BY update_time;

-- a unique index that is not the key: staging fails on it too, and the run
-- fails with nothing written
SELECT FROM etl_stream.add_table('dl_uniq', server => 'etl_test', source_table => 'dl_src',
                                 watermark => 'update_time');
SELECT etl_stream.create_target('dl_uniq');
CREATE UNIQUE INDEX dl_uniq_qty ON dl_uniq (qty);
SELECT status, path, pulled, inserted, failed_phase, split_part(error, E'\n', 1) AS error
  FROM run('dl_uniq');
SELECT count(*) FROM dl_uniq;

-- ---------------------------------------------------------------------
-- full_refresh loads every run's fresh table directly, then builds the
-- target's indexes on it
-- ---------------------------------------------------------------------
SELECT FROM etl_stream.add_table('dl_full', server => 'etl_test', source_table => 'dl_src',
                                 strategy => 'full_refresh');
SELECT etl_stream.create_target('dl_full');
CREATE INDEX dl_full_note ON dl_full (note);
SELECT * FROM run('dl_full');
SELECT * FROM run('dl_full');
SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'dl_full'::regclass ORDER BY 1;
SELECT count(*), sum(id) FROM dl_full;

-- delete_insert and append load an empty target directly, too
SELECT FROM etl_stream.add_table('dl_append', server => 'etl_test', source_table => 'dl_src',
                                 watermark => 'update_time', strategy => 'append');
SELECT etl_stream.create_target('dl_append');
-- with etl_stream.analyze_threshold = -1, statistics are left to autovacuum
SET etl_stream.analyze_threshold = -1;
SELECT * FROM run('dl_append');
RESET etl_stream.analyze_threshold;
SELECT last_analyze IS NOT NULL AS analyzed FROM pg_stat_user_tables WHERE relname = 'dl_append';
SELECT FROM etl_stream.add_table('dl_reload', server => 'etl_test', source_table => 'dl_src',
                                 watermark => 'update_time', strategy => 'delete_insert');
SELECT etl_stream.create_target('dl_reload');
SELECT * FROM run('dl_reload');

SELECT my('DROP TABLE dl_src');
SELECT my('DROP TABLE dl_codes');
