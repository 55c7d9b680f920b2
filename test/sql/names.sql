--
-- names: a MySQL column name PostgreSQL cannot hold whole (63 bytes) is
-- refused at registration with the way to map it, column_map maps it, a
-- registration changed by hand to such a name is refused at run time, and
-- two long registration names sharing their first 63 bytes get staging
-- tables of their own, synced side by side.
--
-- run() and my() come from sync.sql.
--
SELECT my('DROP TABLE IF EXISTS nm_src');
-- 30 CJK characters (90 bytes) and 64 ASCII ones, both legal in MariaDB
SELECT my(format('CREATE TABLE nm_src (id INT PRIMARY KEY, %s VARCHAR(10), %s INT,
                  update_time INT UNSIGNED NOT NULL)',
                 etl_stream.mysql_ident(repeat('顧客の住所', 6)), etl_stream.mysql_ident(repeat('c', 64))));
SELECT my('INSERT INTO nm_src SELECT seq, CONCAT(''addr '', seq), seq * 2, 1000 + seq FROM seq_1_to_20');

-- refused, with the hint to map it
SELECT etl_stream.add_table('nm', server => 'etl_test', source_table => 'nm_src', watermark => 'update_time');
-- mapped; the other long one left out with columns
SELECT name, columns, source_names
  FROM etl_stream.add_table('nm', server => 'etl_test', source_table => 'nm_src', watermark => 'update_time',
                            column_map => jsonb_build_object(repeat('顧客の住所', 6), 'address'),
                            columns => ARRAY['id', 'address', 'update_time']);
SELECT etl_stream.create_target('nm');
SELECT status, path, pulled, inserted FROM run('nm');
SELECT * FROM nm ORDER BY id LIMIT 2;
-- through staging too
SELECT my('UPDATE nm_src SET update_time = 2000, id = id + 100 WHERE id <= 3');
SELECT status, path, pulled, inserted FROM run('nm');
SELECT count(*), max(address) FROM nm;
-- both long ones mapped, the key and watermark named as in PostgreSQL
SELECT name, key_columns, watermark, columns, source_names
  FROM etl_stream.add_table('nm_all', server => 'etl_test', source_table => 'nm_src', watermark => 'ts',
                            column_map => jsonb_build_object(repeat('顧客の住所', 6), 'address',
                                                             repeat('c', 64), 'c64', 'update_time', 'ts',
                                                             'id', 'nm_id'));
SELECT etl_stream.create_target('nm_all');
SELECT status, pulled FROM run('nm_all');
SELECT * FROM nm_all ORDER BY nm_id LIMIT 1;

-- what column_map must be
SELECT etl_stream.add_table('nm_x', server => 'etl_test', source_table => 'nm_src', watermark => 'update_time',
                            column_map => '["id"]');
SELECT etl_stream.add_table('nm_x', server => 'etl_test', source_table => 'nm_src', watermark => 'update_time',
                            column_map => '{"nope": "x"}');
SELECT etl_stream.add_table('nm_x', server => 'etl_test', source_table => 'nm_src', watermark => 'update_time',
                            column_map => '{"id": "update_time"}');

-- a registration changed by hand to a long name is refused when it runs
UPDATE etl_stream.tables SET columns[2] = repeat('顧客の住所', 6), source_names = NULL WHERE name = 'nm';
SELECT status FROM run('nm');
SELECT etl_stream.create_target('nm');
SELECT etl_stream.drop_table('nm', drop_target => true);

-- two registration names of 26 characters (78 bytes) sharing 75 bytes
SELECT etl_stream.add_table(repeat('表', 25) || '一', server => 'etl_test', source_table => 'nm_src',
                            watermark => 'update_time', columns => ARRAY['id', 'update_time']);
SELECT i, (etl_stream.add_table(repeat('表', 25) || n, server => 'etl_test', source_table => 'nm_src',
                                watermark => 'update_time', target_table => 'nm_long_' || i,
                                column_map => jsonb_build_object(repeat('顧客の住所', 6), 'address'),
                                columns => CASE i WHEN 1 THEN ARRAY['id', 'update_time']
                                                  ELSE ARRAY['id', 'address', 'update_time'] END)).columns
  FROM (VALUES (1, '一'), (2, '二')) v(i, n);
SELECT i, octet_length((parse_ident(s))[2]) AS bytes, s = lag(s) OVER (ORDER BY i) AS same
  FROM (SELECT i, etl_stream._staging_name(t) AS s
          FROM etl_stream.tables t, (VALUES (1, '一'), (2, '二')) v(i, n)
         WHERE t.name = repeat('表', 25) || n) x ORDER BY i;
SELECT etl_stream.create_target(repeat('表', 25) || n) FROM (VALUES ('一'), ('二')) v(n);
-- (the other tests' registrations sit this out)
CREATE TEMP TABLE nm_others AS
  SELECT name FROM etl_stream.tables WHERE enabled AND name NOT LIKE '表%' AND name <> 'nm_all';
UPDATE etl_stream.tables SET enabled = false WHERE name IN (SELECT name FROM nm_others) OR name = 'nm_all';
SELECT status, count(*) FROM etl_stream.sync_all() GROUP BY 1;
SELECT my('UPDATE nm_src SET update_time = 3000 WHERE id > 10');
-- side by side, in two workers
SELECT table_name = repeat('表', 25) || '一' AS first, status, load_path, rows_pulled, rows_updated
  FROM etl_stream.sync_all(parallel => 2) ORDER BY 1;
SELECT (SELECT count(*) FROM nm_long_1 WHERE update_time = 3000) AS long_1,
       (SELECT count(*) FROM nm_long_2 WHERE update_time = 3000 AND address LIKE 'addr%') AS long_2;
-- each staging table has its own columns
SELECT c.relname = etl_stream._fit_identifier(repeat('表', 25) || '二') AS second, count(*) AS columns
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE c.relnamespace = 'etl_stream_staging'::regnamespace AND c.relname LIKE '表%'
 GROUP BY c.relname ORDER BY 1;

UPDATE etl_stream.tables SET enabled = true WHERE name IN (SELECT name FROM nm_others);
SELECT etl_stream.drop_table(name, drop_target => true) FROM etl_stream.tables
 WHERE name = 'nm_all' OR name LIKE '表%' ORDER BY name;
SELECT my('DROP TABLE nm_src');
