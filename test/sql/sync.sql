--
-- sync: registering MySQL tables and syncing them incrementally, with
-- cutoffs computed at run time and written in as literals.
--
-- The sources are tables this test makes in MariaDB database etl_test.
-- Timings vary from run to run, so runs are shown through run(), which
-- leaves them out.
--
CREATE FUNCTION run(table_name text, wait boolean DEFAULT false,
                    range_from text DEFAULT NULL, range_to text DEFAULT NULL)
RETURNS TABLE (status text, path text, pulled bigint, landed bigint, inserted bigint,
               updated bigint, unchanged bigint, deleted bigint,
               cutoff text, new_watermark text, failed_phase text, error text)
LANGUAGE sql AS $$
  SELECT status, load_path, rows_pulled, rows_landed, rows_inserted, rows_updated,
         rows_unchanged, rows_deleted, cutoff, new_watermark, failed_phase, error
    FROM etl_stream.sync(table_name, wait, range_from, range_to)
$$;
CREATE FUNCTION my(sql text) RETURNS bigint LANGUAGE sql AS $$
  SELECT etl_stream.execute('etl_test', sql)
$$;

-- ---------------------------------------------------------------------
-- A composite key and a unix-seconds watermark
-- ---------------------------------------------------------------------
SELECT my('DROP TABLE IF EXISTS orders');
SELECT my('CREATE TABLE orders (
             shop_id SMALLINT NOT NULL, order_id INT UNSIGNED NOT NULL,
             amount DECIMAL(10,2), note VARCHAR(40), update_time INT UNSIGNED NOT NULL,
             PRIMARY KEY (shop_id, order_id), KEY (update_time))');
SELECT my('INSERT INTO orders SELECT seq % 3, seq, seq * 1.5, CONCAT(''note '', seq), 1000 + seq
             FROM seq_1_to_100');

-- key, columns and types come from MySQL
SELECT name, server, key_columns, columns, column_types, watermark, watermark_kind,
       lookback, strategy, target_schema, target_table, high_watermark
  FROM etl_stream.add_table('orders', server => 'etl_test', source_table => 'orders',
                            watermark => 'update_time', lookback => 10);
SELECT etl_stream.create_target('orders');
\d orders
-- its rows are kept whole in their page, never compressed column by column
SELECT reloptions FROM pg_class WHERE oid = 'orders'::regclass;

-- the target against MySQL, row by row: 0 means equal
CREATE FUNCTION orders_diff() RETURNS bigint LANGUAGE sql AS $$
  WITH src AS (SELECT * FROM etl_stream.query('etl_test',
                 'SELECT shop_id, order_id, amount, note, update_time FROM orders')
                 AS s(shop_id smallint, order_id bigint, amount numeric(10,2),
                      note varchar(40), update_time bigint))
  SELECT count(*) FROM ((SELECT * FROM orders EXCEPT ALL SELECT * FROM src)
                        UNION ALL
                        (SELECT * FROM src EXCEPT ALL SELECT * FROM orders)) d
$$;
-- where every row of the target physically is: unchanged means not rewritten
CREATE FUNCTION orders_places() RETURNS text LANGUAGE sql AS $$
  SELECT md5(string_agg(ctid::text, ',' ORDER BY ctid)) FROM orders
$$;

-- the first run pulls everything: no cutoff yet
SELECT * FROM run('orders');
SELECT orders_diff() AS differences;
-- a large change is followed by ANALYZE: in a worker, right after the run
-- commits (etl_stream.deferred_analyze), so the run does not wait for it
CREATE FUNCTION wait_analyzed(t regclass) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..400 LOOP
        IF (SELECT reltuples >= 0 FROM pg_class WHERE oid = t) THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN false;
END $$;
SELECT statistics FROM etl_stream.runs WHERE table_name = 'orders' ORDER BY run_id DESC LIMIT 1;
SELECT wait_analyzed('orders') AS analyzed;
SELECT reltuples AS analyzed_rows FROM pg_class WHERE oid = 'orders'::regclass;
-- or, with deferred_analyze off, before it commits
SELECT my('DROP TABLE IF EXISTS orders_now');
SELECT my('CREATE TABLE orders_now AS SELECT * FROM orders');
SELECT my('ALTER TABLE orders_now ADD PRIMARY KEY (shop_id, order_id)');
SELECT FROM etl_stream.add_table('orders_now', server => 'etl_test', source_table => 'orders_now',
                                 watermark => 'update_time');
SELECT etl_stream.create_target('orders_now');
SET etl_stream.deferred_analyze = off;
BEGIN;
SELECT status FROM run('orders_now');
SELECT statistics, reltuples AS analyzed_rows
  FROM etl_stream.runs, pg_class WHERE table_name = 'orders_now' AND oid = 'orders_now'::regclass;
COMMIT;
RESET etl_stream.deferred_analyze;
SELECT etl_stream.drop_table('orders_now', drop_target => true);
SELECT my('DROP TABLE orders_now');

-- no change at the source: the look-back re-reads the last 10 seconds,
-- and nothing is written
SELECT orders_places() AS places_before \gset
SELECT * FROM run('orders');
SELECT orders_places() = :'places_before' AS nothing_rewritten, orders_diff() AS differences;
SELECT * FROM run('orders');
SELECT orders_places() = :'places_before' AS nothing_rewritten;

-- inserts, an update, a late row inside the look-back (update_time 1095 is
-- past the cutoff 1100 - 10), and one too late for it (1050)
SELECT my('INSERT INTO orders SELECT 1, 100 + seq, 7, ''new'', 1100 + seq FROM seq_1_to_5');
SELECT my('UPDATE orders SET amount = 0, note = ''changed'', update_time = 1106 WHERE order_id = 50');
SELECT my('INSERT INTO orders VALUES (2, 200, 1, ''late'', 1095), (2, 201, 1, ''too late'', 1050)');
SELECT * FROM run('orders');
SELECT shop_id, order_id, amount, note, update_time FROM orders
 WHERE order_id IN (50, 101, 105, 200, 201) ORDER BY order_id;
-- the too-late row is the only difference; a sync from scratch catches it
SELECT orders_diff() AS differences;

-- the cutoff is the last watermark minus the look-back, as a literal on
-- both sides
SELECT * FROM etl_stream.explain('orders', costs => false) WITH ORDINALITY AS e(line, n)
 WHERE n <= 2;

-- ---------------------------------------------------------------------
-- Rows that share the boundary value are never lost
-- ---------------------------------------------------------------------
SELECT lookback FROM etl_stream.alter_table('orders', lookback => 0);
SELECT my('INSERT INTO orders SELECT 0, 300 + seq, 3, ''boundary'', 2000 FROM seq_1_to_3');
SELECT * FROM run('orders');
-- two more rows with the same watermark arrive after that run
SELECT my('INSERT INTO orders SELECT 0, 310 + seq, 3, ''boundary'', 2000 FROM seq_1_to_2');
SELECT * FROM run('orders');
SELECT count(*) AS boundary_rows FROM orders WHERE update_time = 2000;

-- ---------------------------------------------------------------------
-- A failure anywhere leaves target and watermark as they were
-- ---------------------------------------------------------------------
SELECT high_watermark AS watermark_before FROM etl_stream.tables WHERE name = 'orders' \gset
SELECT orders_places() AS places_before \gset
-- a value that does not fit the target (the source column was widened,
-- the target was not): fails the pull, naming table, column, key and value
SELECT my('ALTER TABLE orders MODIFY note VARCHAR(60)');
SELECT my('UPDATE orders SET note = REPEAT(''long '', 10), update_time = 2001 WHERE order_id = 301');
SELECT my('UPDATE orders SET amount = 4, update_time = 2001 WHERE order_id = 302');
SELECT status, failed_phase, error FROM run('orders');
SELECT high_watermark = :'watermark_before' AS watermark_kept,
       orders_places() = :'places_before' AS target_kept
  FROM etl_stream.tables WHERE name = 'orders';
ALTER TABLE orders ALTER note TYPE varchar(60);
-- a constraint of the target fails the merge
ALTER TABLE orders ADD CONSTRAINT amount_not_negative CHECK (amount >= 0);
SELECT my('UPDATE orders SET amount = -1, update_time = 2002 WHERE order_id = 303');
SELECT status, failed_phase, error FROM run('orders');
SELECT high_watermark = :'watermark_before' AS watermark_kept,
       (SELECT amount FROM orders WHERE order_id = 302) AS amount_302_unchanged
  FROM etl_stream.tables WHERE name = 'orders';
ALTER TABLE orders DROP CONSTRAINT amount_not_negative;
-- and the next run does it all
SELECT * FROM run('orders');
SELECT shop_id, order_id, amount, note, update_time FROM orders WHERE order_id IN (301, 302, 303) ORDER BY order_id;
-- failed runs are in the history with their phase
SELECT status, failed_phase, rows_inserted, cutoff, new_watermark
  FROM etl_stream.runs WHERE table_name = 'orders' ORDER BY run_id;

-- ---------------------------------------------------------------------
-- One run per table at a time
-- ---------------------------------------------------------------------
SELECT name FROM etl_stream.add_table('orders_copy', server => 'etl_test',
    source_table => 'orders', watermark => 'update_time',
    target_table => 'orders_copy');
SELECT etl_stream.create_target('orders_copy');
SELECT dblink_connect('other', format('host=127.0.0.1 port=%s dbname=%s user=%s',
    current_setting('port'), current_database(), current_user));
SELECT dblink_exec('other', 'BEGIN');
SELECT * FROM dblink('other', $$SELECT status FROM etl_stream.sync('orders')$$) AS t(status text);
-- while that transaction is open, a second sync is skipped at once
SELECT status, error FROM run('orders');
-- other tables sync as usual meanwhile
SELECT status FROM run('orders_copy');
-- or waits, here no longer than lock_timeout, and is then skipped
SET lock_timeout = '200ms';
SELECT status, error FROM run('orders', wait => true);
RESET lock_timeout;
SELECT dblink_exec('other', 'COMMIT');
SELECT dblink_disconnect('other');
SELECT status, pulled FROM run('orders', wait => true);

-- ---------------------------------------------------------------------
-- Duplicates of a key in one batch collapse to the newest by watermark;
-- only the columns asked for move
-- ---------------------------------------------------------------------
SELECT my('DROP TABLE IF EXISTS order_events');
SELECT my('CREATE TABLE order_events (
             event_id INT AUTO_INCREMENT PRIMARY KEY, order_id INT NOT NULL,
             status VARCHAR(20) NOT NULL, payload TEXT, changed_at DATETIME(3) NOT NULL)');
SELECT my('INSERT INTO order_events (order_id, status, payload, changed_at) VALUES
             (1, ''created'', REPEAT(''x'', 1000), ''2024-05-01 10:00:00''),
             (1, ''paid'',    REPEAT(''x'', 1000), ''2024-05-01 10:05:00''),
             (2, ''created'', REPEAT(''x'', 1000), ''2024-05-01 10:01:00''),
             (1, ''shipped'', REPEAT(''x'', 1000), ''2024-05-01 10:07:00.5''),
             (3, ''created'', REPEAT(''x'', 1000), ''2024-05-01 10:02:00''),
             (3, ''cancelled'', REPEAT(''x'', 1000), ''2024-05-01 10:02:00'')');
SELECT key_columns, columns, column_types, watermark_kind, lookback
  FROM etl_stream.add_table('order_state', server => 'etl_test', source_table => 'order_events',
                            key_columns => ARRAY['order_id'],
                            columns => ARRAY['order_id', 'status', 'changed_at'],
                            watermark => 'changed_at', lookback => interval '5 minutes');
SELECT etl_stream.create_target('order_state');
-- the target is empty, but this first run cannot load it directly: several
-- rows share an order_id and meet its primary key, so the run goes through
-- staging, which keeps the newest of them
SELECT * FROM run('order_state');
-- order 3's two rows tie on the watermark: the one pulled last wins
SELECT * FROM order_state ORDER BY order_id;
-- a DATETIME watermark: the look-back is an interval, the literal a timestamp
SELECT my('INSERT INTO order_events (order_id, status, changed_at) VALUES (2, ''paid'', ''2024-05-01 10:03:00'')');
SELECT * FROM run('order_state');
SELECT * FROM order_state ORDER BY order_id;
SELECT line FROM etl_stream.explain('order_state') AS line LIMIT 2;

-- ---------------------------------------------------------------------
-- delete_insert: a date slice reloaded twice gives the same result, and a
-- target partitioned by the watermark is pruned by the literal cutoff
-- ---------------------------------------------------------------------
SELECT my('DROP TABLE IF EXISTS daily_sales');
SELECT my('CREATE TABLE daily_sales (id INT PRIMARY KEY, sale_date DATE NOT NULL, amount INT NOT NULL, KEY (sale_date))');
SELECT my('INSERT INTO daily_sales SELECT seq, ''2024-01-01'' + INTERVAL (seq % 90) DAY, seq FROM seq_1_to_900');
CREATE TABLE daily_sales (id integer NOT NULL, sale_date date NOT NULL, amount integer NOT NULL,
                          PRIMARY KEY (id, sale_date)) PARTITION BY RANGE (sale_date);
CREATE TABLE daily_sales_2024_01 PARTITION OF daily_sales FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE daily_sales_2024_02 PARTITION OF daily_sales FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
CREATE TABLE daily_sales_2024_03 PARTITION OF daily_sales FOR VALUES FROM ('2024-03-01') TO ('2024-04-01');
SELECT key_columns, watermark_kind, lookback
  FROM etl_stream.add_table('daily_sales', server => 'etl_test', source_table => 'daily_sales',
                            watermark => 'sale_date', lookback => interval '2 days',
                            strategy => 'delete_insert');
SELECT * FROM run('daily_sales');
-- the next run replaces the last two days only: the plan touches only the
-- March partition, through the literal
SELECT line FROM etl_stream.explain('daily_sales', costs => false) AS line WHERE line NOT LIKE 'merge:%';
-- one slice, twice: same rows, and the watermark does not move
CREATE FUNCTION sales_digest() RETURNS text LANGUAGE sql AS $$
  SELECT md5(string_agg(d::text, ',' ORDER BY id)) FROM daily_sales d
$$;
SELECT sales_digest() AS before_slices \gset
SELECT my('UPDATE daily_sales SET amount = -amount WHERE sale_date = ''2024-02-10''');
SELECT * FROM run('daily_sales', range_from => '2024-02-01', range_to => '2024-03-01');
SELECT sales_digest() AS after_first \gset
SELECT * FROM run('daily_sales', range_from => '2024-02-01', range_to => '2024-03-01');
SELECT sales_digest() = :'after_first' AS same_after_second,
       :'after_first' <> :'before_slices' AS slice_changed,
       (SELECT sum(amount) FROM daily_sales WHERE sale_date = '2024-02-10') AS feb_10,
       (SELECT high_watermark FROM etl_stream.tables WHERE name = 'daily_sales') AS watermark;

-- ---------------------------------------------------------------------
-- append and full_refresh
-- ---------------------------------------------------------------------
SELECT strategy, key_columns FROM etl_stream.add_table('events', server => 'etl_test',
    source_table => 'order_events', columns => ARRAY['event_id', 'order_id', 'status', 'changed_at'],
    watermark => 'changed_at', strategy => 'append');
-- (compress => true keeps PostgreSQL's default storage)
SELECT etl_stream.create_target('events', compress => true);
SELECT reloptions FROM pg_class WHERE oid = 'events'::regclass;
SELECT * FROM run('events');
-- the boundary rows come again and are skipped by key
SELECT * FROM run('events');
SELECT strategy, watermark FROM etl_stream.add_table('sales_copy', server => 'etl_test',
    source_table => 'daily_sales', strategy => 'full_refresh');
SELECT etl_stream.create_target('sales_copy');
CREATE INDEX sales_copy_by_date ON sales_copy (sale_date) WHERE amount > 0;
GRANT SELECT ON sales_copy TO PUBLIC;
SELECT * FROM run('sales_copy');
SELECT * FROM run('sales_copy');
-- without a watermark, delete_insert replaces everything in place: every
-- reader's snapshot sees the old rows or the new ones (see docs/sync.md)
SELECT strategy, watermark FROM etl_stream.add_table('sales_in_place', server => 'etl_test',
    source_table => 'daily_sales', strategy => 'delete_insert');
SELECT etl_stream.create_target('sales_in_place');
SELECT * FROM run('sales_in_place');
SELECT * FROM run('sales_in_place');
SELECT count(*), sum(amount) FROM sales_in_place;
-- a new table under the old name, with its key, index and grants
SELECT count(*), sum(amount) FROM sales_copy;
\d sales_copy
SELECT relacl FROM pg_class WHERE oid = 'sales_copy'::regclass;

-- ---------------------------------------------------------------------
-- status, sync_all, disable, errors of registration, history
-- ---------------------------------------------------------------------
SELECT name, enabled, strategy, current_watermark, last_status, last_rows_pulled,
       last_success IS NOT NULL AS has_success, last_error IS NOT NULL AS has_error
  FROM etl_stream.status ORDER BY name;
-- maintenance: size, dead rows, last vacuum and analyze of the target
VACUUM ANALYZE sales_in_place;
UPDATE sales_in_place SET amount = amount;   -- every row leaves a dead version
SELECT pg_stat_force_next_flush();
SELECT name, target_size = pg_total_relation_size(name::regclass) AS size_ok,
       target_dead_share, target_last_vacuum IS NOT NULL AS vacuumed,
       target_last_analyze IS NOT NULL AS analyzed, staging_size > 0 AS staged
  FROM etl_stream.status WHERE name IN ('sales_in_place', 'sales_copy') ORDER BY name;
VACUUM sales_in_place;
SELECT pg_stat_force_next_flush();
SELECT target_dead_share FROM etl_stream.status WHERE name = 'sales_in_place';
-- a partitioned target: its partitions added up; the oldest vacuum is NULL
-- while one partition was never vacuumed
SELECT name FROM etl_stream.add_table('sales_parts', server => 'etl_test',
    source_table => 'daily_sales', strategy => 'delete_insert');
CREATE TABLE sales_parts (n int, amount numeric) PARTITION BY RANGE (n);
CREATE TABLE sales_parts_1 PARTITION OF sales_parts FOR VALUES FROM (0) TO (100);
CREATE TABLE sales_parts_2 PARTITION OF sales_parts FOR VALUES FROM (100) TO (200);
INSERT INTO sales_parts SELECT n, n FROM generate_series(0, 199) n;
SELECT pg_stat_force_next_flush();
VACUUM sales_parts_1;
DELETE FROM sales_parts WHERE n % 4 = 0;
SELECT pg_stat_force_next_flush();
SELECT target_size = pg_total_relation_size('sales_parts_1') + pg_total_relation_size('sales_parts_2') AS size_ok,
       target_dead_share, target_last_vacuum
  FROM etl_stream.status WHERE name = 'sales_parts';
SELECT etl_stream.drop_table('sales_parts', drop_target => true);
SELECT to_regclass('sales_parts') AS dropped;
SELECT enabled FROM etl_stream.disable_table('events');
SELECT etl_stream.sync('events');
SELECT table_name, status FROM etl_stream.sync_all() ORDER BY table_name;
SELECT enabled FROM etl_stream.enable_table('events');

SELECT etl_stream.add_table('orders', server => 'etl_test', source_table => 'orders', watermark => 'update_time');
SELECT etl_stream.add_table('x', server => 'etl_test', source_table => 'orders', watermark => 'no_such_column');
SELECT etl_stream.add_table('x', server => 'etl_test', source_table => 'orders', watermark => 'note');
SELECT etl_stream.add_table('x', server => 'etl_test', source_table => 'orders', columns => ARRAY['amount', 'nope']);
SELECT etl_stream.add_table('x', server => 'etl_test', source_table => 'orders', watermark => 'update_time', strategy => 'upsert');
SELECT etl_stream.add_table('x', server => 'etl_test', source_table => 'orders', watermark => 'update_time', lookback => -5);
SELECT etl_stream.add_table('x', server => 'etl_test', source_table => 'orders', watermark => 'update_time', lookback => interval '1 hour');
SELECT etl_stream.add_table('x', server => 'etl_test', source_table => 'orders');
SELECT show_error($$SELECT etl_stream.add_table('x', server => 'etl_test', source_table => 'no_such_table', watermark => 'update_time')$$);
SELECT etl_stream.sync('no_such_table');

-- history older than etl_stream.history_days goes when a run finishes
INSERT INTO etl_stream.runs (table_name, started_at, finished_at, status)
VALUES ('orders', now() - interval '40 days', now() - interval '40 days', 'success');
SET etl_stream.history_days = 30;
SELECT status FROM run('orders');
SELECT count(*) AS old_runs FROM etl_stream.runs WHERE finished_at < now() - interval '30 days';

SELECT etl_stream.drop_table('events', drop_target => true);
SELECT to_regclass('events') AS target, to_regclass('etl_stream_staging.events') AS staging;
