--
-- deletes: what a sync does with rows deleted on MySQL (deletes =>
-- 'keep' | 'delete' | 'flag'), the statements it runs for them, and what
-- is refused.  sweep_deletes runs in workers: test/t/79_deletes.sh.
--
\set VERBOSITY terse
CREATE FUNCTION my_del(sql text) RETURNS bigint LANGUAGE sql AS $$
  SELECT etl_stream.execute('etl_test', sql)
$$;
SELECT my_del('DROP TABLE IF EXISTS del_lines');
SELECT my_del('CREATE TABLE del_lines (
             order_id INT NOT NULL, line VARCHAR(8) NOT NULL, qty INT,
             update_time INT UNSIGNED NOT NULL,
             PRIMARY KEY (order_id, line), KEY (update_time))');
-- 30 lines of 10 orders, update_time 1001 .. 1030
SELECT my_del('INSERT INTO del_lines
               SELECT seq DIV 3, CONCAT(''l'', seq MOD 3), seq, 1000 + seq FROM seq_1_to_30');
SELECT (etl_stream.add_table('del_lines', server => 'etl_test', source_table => 'del_lines',
                             watermark => 'update_time', lookback => 10, deletes => 'flag')).deletes;
-- the target has _deleted_at, NULL for live rows
SELECT etl_stream.create_target('del_lines');
\d del_lines
SELECT status, load_path, rows_pulled, rows_inserted, rows_deleted, rows_flagged
  FROM etl_stream.sync('del_lines');

-- The next sync (cutoff 1030 - 10): the merge clears _deleted_at of a row
-- that comes back, even unchanged; the window's target rows the batch did
-- not bring are the candidates, found through the watermark's index with
-- the cutoff as a literal (seqscan off: whether the index can be used, not
-- whether a 30-row table wants it), then looked up on MySQL by key
SET enable_seqscan = off;
SELECT regexp_replace(line, '^(deletes \(flag\): )SELECT .* FROM \(', '\1... FROM (') AS line
  FROM etl_stream.explain('del_lines', costs => false) AS line
 WHERE line ~ '^(deletes|  then)|Conflict Filter|Index Cond';
RESET enable_seqscan;

-- two lines deleted inside the window, one outside it
SELECT my_del('DELETE FROM del_lines WHERE update_time IN (1025, 1028, 1003)');
SELECT status, rows_pulled, rows_updated, rows_deleted, rows_flagged FROM etl_stream.sync('del_lines');
SELECT order_id, line, update_time, _deleted_at IS NOT NULL AS flagged
  FROM del_lines WHERE _deleted_at IS NOT NULL OR update_time = 1003 ORDER BY 1, 2;
-- a line comes back: live again, counted as updated
SELECT my_del('INSERT INTO del_lines VALUES (8, ''l1'', 25, 1031)');
SELECT status, rows_pulled, rows_updated, rows_flagged FROM etl_stream.sync('del_lines');
SELECT order_id, line FROM del_lines WHERE _deleted_at IS NOT NULL;

-- A range of the key as a sweep writes it: column by column on MySQL (a
-- range of its primary key), a row comparison on PostgreSQL
SELECT etl_stream._mysql_key_cond(t, '>=', ARRAY['4', 'l2']) AS mysql,
       etl_stream._pg_key_cond(t, '<', ARRAY['7', 'l0']) AS pg
  FROM etl_stream.tables t WHERE name = 'del_lines';
-- key values as MySQL constants
SELECT ty, etl_stream._key_mysql_literal(ty, v)
  FROM (VALUES ('bigint', '42'), ('numeric(20,0)', '18446744073709551615'),
               ('character varying(8)', 'it''s'), ('bytea', '\x00ff'),
               ('timestamp with time zone', '2024-01-01 12:00:00+02'),
               ('date', '2024-02-29')) x(ty, v);

-- refused: other strategies, unknown policies, sweeping a keep table
SELECT etl_stream.alter_table('del_lines', strategy => 'append');
SELECT etl_stream.add_table('del_x', server => 'etl_test', source_table => 'del_lines',
                            strategy => 'full_refresh', deletes => 'delete');
SELECT etl_stream.alter_table('del_lines', deletes => 'never');
SELECT (etl_stream.alter_table('del_lines', deletes => 'keep')).deletes;
SELECT etl_stream.sweep_deletes('del_lines');

SELECT etl_stream.drop_table('del_lines', drop_target => true);
SELECT my_del('DROP TABLE del_lines');
DROP FUNCTION my_del(text);
