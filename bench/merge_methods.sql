-- bench/merge_methods.sql: the incremental merge written three ways, timed
-- on the same change.  bench/merge_methods runs it with ROWS replaced by the
-- target's size.  The batch is the benchmark's change: 4,000 updates spread
-- over the target, 1,000 new keys, and one row that did not change.
SET client_min_messages = warning;
DROP PROCEDURE IF EXISTS run(text, int); DROP FUNCTION IF EXISTS fill_stg(int); DROP TABLE IF EXISTS tgt, stg, timings;
CREATE TABLE tgt (tracking_id bigint PRIMARY KEY, order_id bigint, event_type smallint, status text,
                  location text, note text, event_time timestamp, update_time bigint);
CREATE INDEX ON tgt (update_time);
INSERT INTO tgt SELECT g, g / 3, g % 7, 'status ' || g % 11, 'city ' || g % 1000, md5(g::text),
       timestamp '2024-01-01' + g * interval '1 s', 1700000000 + g FROM generate_series(1, ROWS) g;
VACUUM ANALYZE tgt;
CREATE UNLOGGED TABLE stg (LIKE tgt);
CREATE FUNCTION fill_stg(round int) RETURNS void LANGUAGE sql AS $$
  TRUNCATE stg;
  INSERT INTO stg SELECT g * (ROWS / 4000), g / 3, g % 7, 'changed ' || round, 'city', md5(g::text || round),
         now(), 1800000000 + round * 10000 + g FROM generate_series(1, 4000) g;
  INSERT INTO stg SELECT ROWS + round * 1000 + g, g, 1, 'new', 'city', 'n', now(), 1800000000 + round * 10000 + g
    FROM generate_series(1, 1000) g;
  INSERT INTO stg SELECT * FROM tgt WHERE tracking_id = 1;
$$;
CREATE TABLE timings (method text, round int, ms double precision);
CREATE PROCEDURE run(method text, round int) LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; n bigint;
BEGIN
  PERFORM fill_stg(round);
  COMMIT;
  t0 := clock_timestamp();
  IF method = 'on_conflict' THEN
    WITH batch AS (SELECT DISTINCT ON (tracking_id) * FROM stg s ORDER BY tracking_id, s.ctid DESC)
    INSERT INTO tgt AS t SELECT * FROM batch
    ON CONFLICT (tracking_id) DO UPDATE SET (order_id, event_type, status, location, note, event_time, update_time)
       = ROW(EXCLUDED.order_id, EXCLUDED.event_type, EXCLUDED.status, EXCLUDED.location, EXCLUDED.note, EXCLUDED.event_time, EXCLUDED.update_time)
     WHERE (t.order_id, t.event_type, t.status, t.location, t.note, t.event_time, t.update_time)
           IS DISTINCT FROM (EXCLUDED.order_id, EXCLUDED.event_type, EXCLUDED.status, EXCLUDED.location, EXCLUDED.note, EXCLUDED.event_time, EXCLUDED.update_time);
  ELSIF method = 'merge' THEN
    MERGE INTO tgt t
    USING (SELECT DISTINCT ON (tracking_id) * FROM stg s ORDER BY tracking_id, s.ctid DESC) b
       ON t.tracking_id = b.tracking_id
     WHEN MATCHED AND (t.order_id, t.event_type, t.status, t.location, t.note, t.event_time, t.update_time)
           IS DISTINCT FROM (b.order_id, b.event_type, b.status, b.location, b.note, b.event_time, b.update_time) THEN
       UPDATE SET order_id = b.order_id, event_type = b.event_type, status = b.status, location = b.location,
                  note = b.note, event_time = b.event_time, update_time = b.update_time
     WHEN NOT MATCHED THEN INSERT VALUES (b.tracking_id, b.order_id, b.event_type, b.status, b.location, b.note, b.event_time, b.update_time);
  ELSE
    DELETE FROM tgt t USING stg s WHERE t.tracking_id = s.tracking_id;
    INSERT INTO tgt SELECT DISTINCT ON (tracking_id) * FROM stg s ORDER BY tracking_id, s.ctid DESC;
  END IF;
  INSERT INTO timings VALUES (method, round, extract(epoch FROM clock_timestamp() - t0) * 1000);
  COMMIT;
END $$;
