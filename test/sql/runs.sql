--
-- runs: what a run records when it fails (the rows it had pulled, and the
-- error's facts as columns), and the two ways of syncing every table: in
-- the caller's one transaction (sync_all) or each table in a transaction of
-- its own (CALL sync_all_proc).
--
-- run() and my() come from sync.sql.
--
\getenv mysql_host MYSQL_HOST
\getenv mysql_port MYSQL_PORT
\getenv mysql_user MYSQL_USER
\getenv mysql_password MYSQL_PASSWORD

CREATE FUNCTION last_run(name text) RETURNS SETOF etl_stream.runs LANGUAGE sql AS $$
  SELECT * FROM etl_stream.runs WHERE table_name = name ORDER BY run_id DESC LIMIT 1
$$;

SELECT my('DROP TABLE IF EXISTS rr_src');
SELECT my('CREATE TABLE rr_src (id INT PRIMARY KEY, price DECIMAL(10,2) NOT NULL,
             label VARCHAR(30), update_time INT NOT NULL)');
SELECT my('INSERT INTO rr_src SELECT seq, seq / 100, CONCAT(''label '', seq), seq FROM seq_1_to_3000');
SELECT FROM etl_stream.add_table('rr', server => 'etl_test', source_table => 'rr_src',
                                 watermark => 'update_time');

-- ---------------------------------------------------------------------
-- A value PostgreSQL's own input function refuses (numeric_in): the
-- target's column is narrower than MySQL's, and row 2500 does not fit
-- ---------------------------------------------------------------------
CREATE TABLE rr (id integer PRIMARY KEY, price numeric(4,2) NOT NULL, label varchar(30),
                 update_time integer);
SELECT my('UPDATE rr_src SET price = 12345.67 WHERE id = 2500');
\x on
SELECT status, failed_phase, error FROM run('rr');
-- the rows pulled before it (2,500) and landed (two batches of 1,000), and
-- the facts, each in its column
SELECT status, failed_phase, load_path, rows_pulled, rows_landed, rows_inserted,
       sqlstate, message, detail, hint,
       error_column, error_mysql_type, error_key, error_value,
       attempt, job_id, task_id, new_watermark
  FROM last_run('rr');

-- ---------------------------------------------------------------------
-- A value conversion itself refuses: too long for the column
-- ---------------------------------------------------------------------
ALTER TABLE rr ALTER price TYPE numeric(10,2), ALTER label TYPE varchar(8);
SELECT status, failed_phase FROM run('rr');
SELECT rows_pulled, rows_landed, sqlstate, message, detail,
       error_column, error_mysql_type, error_key, error_value
  FROM last_run('rr');

-- ---------------------------------------------------------------------
-- Not a value: a constraint of the target fails the merge
-- ---------------------------------------------------------------------
ALTER TABLE rr ALTER label TYPE varchar(30);
SELECT status, path, pulled, inserted FROM run('rr');
ALTER TABLE rr ADD CONSTRAINT rr_labelled CHECK (label <> 'unlabelled');
SELECT my('UPDATE rr_src SET label = ''unlabelled'', update_time = 5000 WHERE id = 2500');
SELECT status, failed_phase FROM run('rr');
SELECT rows_pulled, rows_landed, sqlstate, message, detail, error_column, error_key, error_value
  FROM last_run('rr');
\x off
ALTER TABLE rr DROP CONSTRAINT rr_labelled;
SELECT status, updated FROM run('rr');

-- ---------------------------------------------------------------------
-- Every table: sync_all() in one transaction, sync_all_proc() committing
-- each table's run before the next
-- ---------------------------------------------------------------------
-- five tables of their own: the others are set aside (and put back below)
CREATE TEMP TABLE set_aside AS SELECT name FROM etl_stream.tables WHERE enabled;
UPDATE etl_stream.tables SET enabled = false;
SELECT my('DROP TABLE IF EXISTS rr_small');
SELECT my('DROP TABLE IF EXISTS rr_locked');
SELECT my('CREATE TABLE rr_small (id INT PRIMARY KEY, update_time INT NOT NULL)');
SELECT my('INSERT INTO rr_small SELECT seq, seq FROM seq_1_to_100');
SELECT my('CREATE TABLE rr_locked (id INT PRIMARY KEY, update_time INT NOT NULL)');
SELECT my('INSERT INTO rr_locked SELECT seq, seq FROM seq_1_to_100');
SELECT (etl_stream.add_table(n, server => 'etl_test',
                             source_table => CASE n WHEN 'p3' THEN 'rr_locked' ELSE 'rr_small' END,
                             watermark => 'update_time')).source_table
  FROM unnest(ARRAY['p1', 'p2', 'p3', 'p4', 'p5']) n;
SELECT etl_stream.create_target(n) FROM unnest(ARRAY['p1', 'p2', 'p3', 'p4', 'p5']) n;

-- the procedure commits, so it cannot run inside a transaction block
BEGIN;
CALL etl_stream.sync_all_proc();
ROLLBACK;

-- sync_all() is one transaction: rolled back, nothing of it remains
BEGIN;
SELECT table_name, status, rows_inserted FROM etl_stream.sync_all() ORDER BY table_name;
ROLLBACK;
SELECT count(*) AS runs, (SELECT count(*) FROM p1) AS p1_rows FROM etl_stream.runs
 WHERE table_name IN ('p1', 'p2', 'p3', 'p4', 'p5');

-- Another MySQL session holds p3's source locked, so the third run waits
-- on MySQL; a second session CALLs the procedure and is cancelled there
CREATE SERVER etl_lock FOREIGN DATA WRAPPER etl_stream
  OPTIONS (host :'mysql_host', port :'mysql_port', dbname 'etl_test');
CREATE USER MAPPING FOR CURRENT_USER SERVER etl_lock
  OPTIONS (user :'mysql_user', password :'mysql_password');
SELECT etl_stream.execute('etl_lock', 'LOCK TABLES rr_locked WRITE');
SELECT dblink_connect('caller', format('host=127.0.0.1 port=%s dbname=%s user=%s',
    current_setting('port'), current_database(), current_user));
SELECT dblink_send_query('caller', 'CALL etl_stream.sync_all_proc()');
DO $$
BEGIN
    FOR i IN 1..400 LOOP
        EXIT WHEN EXISTS (SELECT FROM etl_stream.progress WHERE table_name = 'p3');
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;
SELECT table_name FROM etl_stream.progress;
SELECT pg_cancel_backend(pid) FROM etl_stream.progress WHERE table_name = 'p3';
-- (where the cancel lands inside the run is not the point)
\set SHOW_CONTEXT never
SELECT * FROM dblink_get_result('caller') AS t(x text);
\set SHOW_CONTEXT errors
SELECT dblink_disconnect('caller');
-- the cancelled statement does not go on waiting on MySQL
SELECT count(*) AS still_on_mysql FROM etl_stream.query('etl_test',
    'SELECT id FROM information_schema.processlist
      WHERE info LIKE ''%rr_locked%'' AND info NOT LIKE ''%processlist%''') AS t(id bigint);
SELECT etl_stream.execute('etl_lock', 'UNLOCK TABLES');

-- the two tables before it are synced and committed; nothing else is
SELECT table_name, status, rows_inserted FROM etl_stream.runs
 WHERE table_name IN ('p1', 'p2', 'p3', 'p4', 'p5') ORDER BY run_id;
SELECT name, high_watermark FROM etl_stream.tables WHERE name LIKE 'p_' ORDER BY name;
SELECT (SELECT count(*) FROM p1) AS p1, (SELECT count(*) FROM p2) AS p2,
       (SELECT count(*) FROM p3) AS p3, (SELECT count(*) FROM p5) AS p5;
SELECT count(*) AS runs_in_progress FROM etl_stream.progress;

-- the next CALL first records the cancelled run of p3 (its record was
-- rolled back with it; it pulled nothing, MySQL held the table locked),
-- then does the rest (p1 and p2 find nothing new)
CALL etl_stream.sync_all_proc();
SELECT table_name, status, rows_pulled, rows_inserted, rows_unchanged FROM etl_stream.runs
 WHERE table_name IN ('p1', 'p2', 'p3', 'p4', 'p5') ORDER BY run_id;

SELECT etl_stream.drop_table(n, drop_target => true) FROM unnest(ARRAY['p1', 'p2', 'p3', 'p4', 'p5']) n;
UPDATE etl_stream.tables SET enabled = true WHERE name IN (SELECT name FROM set_aside);
DROP SERVER etl_lock CASCADE;
SELECT my('DROP TABLE rr_src');
SELECT my('DROP TABLE rr_small');
SELECT my('DROP TABLE rr_locked');
