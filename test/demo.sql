-- test/demo.sql - what test/demo.sh runs in PostgreSQL (psql -e echoes each
-- statement).  psql variable mysql_port is the throwaway MariaDB's port.

\echo
\echo '== 1. The extension, and a server for the MariaDB shop database'
CREATE EXTENSION etl_stream;
CREATE SERVER shop FOREIGN DATA WRAPPER etl_stream
    OPTIONS (host '127.0.0.1', port :'mysql_port', dbname 'shop');
CREATE USER MAPPING FOR CURRENT_USER SERVER shop
    OPTIONS (user 'etl', password 'secret');

\echo
\echo '== 2. Is the source reachable?'
SELECT * FROM etl_stream.ping('shop');

\echo
\echo '== 3. Any MySQL query streams as rows'
SELECT count(*) AS orders, sum(order_amount) AS amount
  FROM etl_stream.query('shop', 'SELECT order_id, order_amount FROM ecs_order_info')
       AS t(order_id bigint, order_amount numeric(10,2));

\echo
\echo '== 4. Register two tables: columns, types and keys come from MariaDB'
SELECT name, key_columns, watermark, watermark_kind, lookback, strategy,
       cardinality(columns) AS columns
  FROM etl_stream.add_table('ecs_order_info', server => 'shop',
         source_table => 'ecs_order_info', watermark => 'update_time',
         lookback => 1800, strategy => 'merge');
SELECT name, key_columns, watermark, lookback, columns
  FROM etl_stream.add_table('ecs_tracking', server => 'shop',
         source_table => 'ecs_tracking', watermark => 'update_time', lookback => 600,
         columns => ARRAY['id', 'order_id', 'status', 'event_time', 'update_time']);
SELECT etl_stream.create_target('ecs_order_info'), etl_stream.create_target('ecs_tracking');

\echo
\echo '== 5. The first sync of every table: a full load, straight into the empty targets'
SELECT table_name, status, load_path, rows_pulled, rows_inserted, cutoff, new_watermark,
       round(pull_s::numeric, 3) AS pull_s, round(merge_s::numeric, 3) AS merge_s
  FROM etl_stream.sync_all();

\echo
\echo '== 6. Change the source: 300 updated orders, 50 new ones'
SELECT etl_stream.execute('shop',
  'UPDATE ecs_order_info SET order_status = 5, update_time = UNIX_TIMESTAMP()
    WHERE order_id % 33 = 0 LIMIT 300') AS updated;
SELECT etl_stream.execute('shop',
  'INSERT INTO ecs_order_info (order_sn, user_id, order_amount, add_time, update_time)
   SELECT CONCAT(''NEW'', seq), seq, seq * 10, UNIX_TIMESTAMP(), UNIX_TIMESTAMP()
     FROM seq_1_to_50') AS inserted;

\echo
\echo '== 7. What the next sync will run: the cutoff is a literal, computed now'
SELECT line FROM etl_stream.explain('ecs_order_info') AS line LIMIT 2;

\echo
\echo '== 8. The incremental sync: only the changed rows move'
SELECT status, rows_pulled, rows_inserted, rows_updated, rows_unchanged, cutoff,
       new_watermark, round(pull_s::numeric, 3) AS pull_s, round(merge_s::numeric, 3) AS merge_s
  FROM etl_stream.sync('ecs_order_info');
SELECT (SELECT n FROM etl_stream.query('shop', 'SELECT count(*) FROM ecs_order_info') AS r(n bigint))
           AS mariadb_rows,
       (SELECT count(*) FROM ecs_order_info) AS postgres_rows;

\echo
\echo '== 9. Status per table, and the run history'
SELECT name, strategy, current_watermark, date_trunc('second', watermark_lag) AS watermark_lag,
       last_status, last_rows_pulled, last_rows_changed, last_duration, last_error
  FROM etl_stream.status ORDER BY name;
SELECT run_id, table_name, status, load_path, rows_pulled, rows_inserted, rows_updated, rows_unchanged,
       round(connect_s::numeric, 3) AS connect_s, round(pull_s::numeric, 3) AS pull_s,
       round(merge_s::numeric, 3) AS merge_s, round(finish_s::numeric, 3) AS finish_s
  FROM etl_stream.runs ORDER BY run_id;

\echo
\echo '== 10. Every table again, each committed before the next (a procedure: CALL it)'
CALL etl_stream.sync_all_proc();
SELECT table_name, status, rows_pulled, rows_inserted, rows_updated, rows_unchanged
  FROM etl_stream.runs ORDER BY run_id DESC LIMIT 2;

\echo
\echo '== 11. Does the copy match the source? Counts and checksums per slice, each engine computing its own: no row is pulled'
-- a change MariaDB makes without moving the watermark: no sync can see it
SELECT etl_stream.execute('shop',
  'UPDATE ecs_order_info SET order_amount = order_amount + 1 WHERE order_id = 42') AS changed_quietly;
SELECT count(*) AS slices, count(*) FILTER (WHERE ok) AS equal FROM etl_stream.verify('ecs_order_info');
SELECT slice_from, slice_to, source_rows, target_rows, ok
  FROM etl_stream.verify('ecs_order_info') WHERE NOT ok;
-- repair reloads only that slice (delete_insert of its range), as a run
SELECT slice_from, slice_to, status, run_id FROM etl_stream.repair('ecs_order_info');
SELECT count(*) FILTER (WHERE NOT ok) AS slices_differing FROM etl_stream.verify('ecs_order_info');

\echo
\echo '== 12. Live progress: a 1,000,000-row history table loads in another session'
SELECT etl_stream.execute('shop',
  'CREATE TABLE ecs_tracking_history AS
   SELECT seq AS id, 1 + seq DIV 5 AS order_id, ELT(1 + seq % 4, ''created'', ''paid'', ''shipped'', ''delivered'') AS status,
          FROM_UNIXTIME(1704067200 + seq) AS event_time, 1704067200 + seq AS update_time
     FROM seq_1_to_1000000') AS generated;
SELECT etl_stream.execute('shop', 'ALTER TABLE ecs_tracking_history ADD PRIMARY KEY (id), ADD KEY (update_time)');
SELECT name FROM etl_stream.add_table('ecs_tracking_history', server => 'shop',
         source_table => 'ecs_tracking_history', watermark => 'update_time');
SELECT etl_stream.create_target('ecs_tracking_history');
CREATE EXTENSION dblink;
SELECT dblink_connect('loader', format('host=127.0.0.1 port=%s dbname=%s user=%s',
                                       current_setting('port'), current_database(), current_user));
SELECT dblink_send_query('loader', $$SELECT status, rows_pulled FROM etl_stream.sync('ecs_tracking_history')$$);
SELECT pg_sleep(0.4);
SELECT pid, role, table_name, phase, rows_pulled, rows_estimate, round(rows_per_s) AS rows_per_s,
       date_trunc('second', eta) AS eta, date_trunc('second', running_for) AS running_for
  FROM etl_stream.progress;
SELECT pg_sleep(0.4);
SELECT pid, table_name, phase, rows_pulled, rows_estimate, round(rows_per_s) AS rows_per_s,
       date_trunc('second', eta) AS eta
  FROM etl_stream.progress;
SELECT * FROM dblink_get_result('loader') AS t(status text, rows_pulled bigint);
SELECT dblink_disconnect('loader');
SELECT count(*) AS rows_in_progress_now FROM etl_stream.progress;
SELECT table_name, status, load_path, rows_pulled, round(pull_s::numeric, 2) AS pull_s,
       round(finish_s::numeric, 2) AS finish_s
  FROM etl_stream.runs ORDER BY run_id DESC LIMIT 1;

\echo
\echo '== 13. A backfill by 2 background workers: the same history sliced by update_time, each slice committed on its own'
SELECT name FROM etl_stream.add_table('tracking_backfill', server => 'shop',
         source_table => 'ecs_tracking_history', watermark => 'update_time');
SELECT etl_stream.create_target('tracking_backfill');
SELECT etl_stream.backfill('tracking_backfill', slice => '100000', workers => 2) AS job \gset
SELECT pg_sleep(1);
SELECT pid, job_id, slice, phase, rows_pulled, date_trunc('second', job_eta) AS job_eta
  FROM etl_stream.progress WHERE job_id = :job ORDER BY pid;
SELECT job_id, kind, state, workers, tasks_done, tasks_total, rows_merged,
       date_trunc('second', finished_at - started_at) AS took
  FROM etl_stream.job_wait(:job);
SELECT state, count(*) AS slices, sum(rows_merged) AS rows_merged, count(DISTINCT worker_pid) AS workers
  FROM etl_stream.tasks WHERE job_id = :job GROUP BY state;

\echo
\echo '== 14. Downstream: tracking events in a table partitioned by day, and a daily aggregate per carrier rebuilt from the earliest day a sync touched'
CREATE TABLE tracking_events (id bigint, order_id bigint, carrier text, status text,
                              event_time timestamp NOT NULL, update_time bigint NOT NULL,
                              PRIMARY KEY (id, event_time)) PARTITION BY RANGE (event_time);
DO $$
DECLARE
    d timestamp;
BEGIN
    FOR d IN SELECT generate_series(timestamp '2024-01-01', '2024-12-31', '1 day') LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF tracking_events FOR VALUES FROM (%L) TO (%L)',
                       'tracking_events_' || to_char(d, 'YYYYMMDD'), d, d + interval '1 day');
    END LOOP;
END
$$;
CREATE INDEX ON tracking_events (update_time);
CREATE TABLE agg_carrier_daily (carrier text, date date, events bigint NOT NULL, PRIMARY KEY (carrier, date));
SELECT name, key_columns FROM etl_stream.add_table('tracking_events', server => 'shop',
         source_table => 'ecs_tracking', watermark => 'update_time', lookback => 600,
         key_columns => ARRAY['id', 'event_time'],
         columns => ARRAY['id', 'order_id', 'carrier', 'status', 'event_time', 'update_time']);
SELECT name, after, dates_from FROM etl_stream.add_transform('agg_carrier_daily',
         after => '{tracking_events}', dates_from => 'event_time', sql => $$
    DELETE FROM agg_carrier_daily WHERE date >= :touched_from;
    INSERT INTO agg_carrier_daily
    SELECT carrier, event_time::date, count(*) FROM tracking_events
     WHERE event_time >= :touched_from GROUP BY 1, 2
$$);
-- the first sync loads every day, and the transform aggregates them all
SELECT kind, table_name, status, rows_pulled, rows_inserted, bindings->>'touched_from' AS touched_from
  FROM etl_stream.sync_all() WHERE table_name IN ('tracking_events', 'agg_carrier_daily');
-- new events on the last day, late ones three days back, statuses changed
SELECT etl_stream.execute('shop',
  'INSERT INTO ecs_tracking (order_id, carrier, tracking_no, status, event_time, update_time)
   SELECT seq, ELT(1 + seq % 3, ''SF'', ''YTO'', ''ZTO''), CONCAT(''LATE'', seq), ''in_transit'',
          IF(seq <= 5, ''2024-10-31 12:00:00'', ''2024-11-03 22:00:00''), UNIX_TIMESTAMP()
     FROM seq_1_to_105') AS inserted;
SELECT etl_stream.execute('shop',
  'UPDATE ecs_tracking SET status = ''delivered'', update_time = UNIX_TIMESTAMP()
    WHERE event_time >= ''2024-11-03'' AND id % 10 = 0') AS updated;
-- the sync moves the changed rows; the transform after it reads the days from 2024-10-31 on
SELECT kind, table_name, status, rows_pulled, rows_inserted, rows_updated, rows_deleted,
       bindings->>'touched_from' AS touched_from, round(merge_s::numeric, 3) AS merge_s
  FROM etl_stream.sync_all() WHERE table_name IN ('tracking_events', 'agg_carrier_daily');
-- (a transform's rows_pulled are the rows it read; its plans, with those literals)
SELECT line FROM etl_stream.explain('agg_carrier_daily', costs => false) AS line
 WHERE line !~ 'Filter|Index Cond' LIMIT 14;
-- equal to a full recompute
SELECT count(*) AS differences_from_a_full_recompute FROM (
    (SELECT carrier, event_time::date, count(*) FROM tracking_events GROUP BY 1, 2
     EXCEPT TABLE agg_carrier_daily)
    UNION ALL
    (TABLE agg_carrier_daily
     EXCEPT SELECT carrier, event_time::date, count(*) FROM tracking_events GROUP BY 1, 2)) d;

\echo
\echo '== 15. A schedule with pg_cron: both tables every 15 minutes, in dependency order, each retried after a transient failure'
CREATE EXTENSION pg_cron;
SELECT name, retries, retry_backoff, timeout
  FROM etl_stream.alter_table('ecs_order_info', retries => 3, retry_backoff => '30 s', timeout => '10 min');
SELECT etl_stream.schedule('shop_every_15_min', '*/15 * * * *', ARRAY['ecs_order_info', 'ecs_tracking']) AS cron_job_id;
SELECT name, cron, tables, cron_job_id, active, last_outcome, next_due FROM etl_stream.schedules;
SELECT jobid, jobname, schedule, command FROM cron.job;

\echo
\echo '== 16. Status per table at the end'
SELECT name, strategy, current_watermark, last_status, last_rows_pulled, last_rows_changed,
       date_trunc('second', since_last_success) AS since_last_success, last_error
  FROM etl_stream.status ORDER BY name;
