--
-- query: streaming any remote query as rows; result shape checks; errors
-- in the middle of a stream always raise; memory does not grow with rows.
--

-- rows and NULLs arrive in order
SELECT * FROM etl_stream.query('shop',
  'SELECT seq, IF(seq % 2 = 0, NULL, CONCAT(''row '', seq)) FROM seq_1_to_5')
  AS t(n int, label text);

-- an empty result
SELECT count(*) FROM etl_stream.query('shop', 'SELECT seq FROM seq_1_to_5 WHERE seq > 5')
  AS t(n int);

-- a million rows: all of them, exactly once
SELECT count(*), sum(n), min(n), max(n)
  FROM etl_stream.query('shop', 'SELECT seq FROM seq_1_to_1000000') AS t(n bigint);

-- the column definition list must be there and must match
SELECT etl_stream.query('shop', 'SELECT 1');
SELECT * FROM etl_stream.query('shop', 'SELECT 1');
SELECT * FROM etl_stream.query('shop', 'SELECT 1, 2') AS t(a int);
SELECT * FROM etl_stream.query('shop', 'SELECT 1') AS t(a int, b int);

-- one statement per call: no multi-statement strings
SELECT show_error($$SELECT * FROM etl_stream.query('shop', 'SELECT 1; SELECT 2') AS t(a int)$$);

-- an error raised by MySQL after rows were already sent is an error here
-- too, never a shorter result (the row with seq = 50000 fails)
SELECT show_error($$
  SELECT count(*) FROM etl_stream.query('shop',
    'SELECT seq, IF(seq = 50000, (SELECT 1 UNION SELECT 2), 0) FROM seq_1_to_100000')
    AS t(n bigint, x int)$$);
-- and the connection stays usable afterwards
SELECT * FROM etl_stream.query('shop', 'SELECT ''still here''') AS t(s text);

-- the pulling connection is killed on MySQL mid-stream: an error, not a
-- short result
SELECT dblink_connect('puller', format('host=127.0.0.1 port=%s dbname=%s user=%s',
	current_setting('port'), current_database(), current_user));
SELECT dblink_send_query('puller', $$
  SELECT count(*) FROM etl_stream.query('shop',
    'SELECT a.seq FROM seq_1_to_100000 a, seq_1_to_100000 b') AS t(n bigint)$$);
CREATE FUNCTION puller_ids() RETURNS SETOF bigint LANGUAGE sql AS $$
  SELECT id FROM etl_stream.query('shop',
    'SELECT id FROM information_schema.processlist
      WHERE info LIKE ''%seq_1_to_100000 a, seq_1_to_100000 b%''
        AND info NOT LIKE ''%processlist%''') AS t(id bigint)
$$;
DO $$
BEGIN
	FOR i IN 1..100 LOOP
		EXIT WHEN EXISTS (SELECT FROM puller_ids());
		PERFORM pg_sleep(0.05);
	END LOOP;
	PERFORM pg_sleep(0.3);		-- let rows flow for a while
END
$$;
SELECT etl_stream.execute('shop', 'KILL CONNECTION ' || id) AS killed FROM puller_ids() AS id;
SELECT show_error($$SELECT * FROM dblink_get_result('puller') AS t(n bigint)$$);
SELECT dblink_disconnect('puller');

-- memory: ten times the rows, about the same peak (the backend's VmHWM);
-- nothing is buffered whole, neither by the MySQL client nor by us
CREATE FUNCTION backend_peak_kb() RETURNS bigint LANGUAGE sql AS $$
  SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1]::bigint
$$;
SELECT count(*) FROM etl_stream.query('shop',
  'SELECT seq, REPEAT(''x'', 200) FROM seq_1_to_100000') AS t(n bigint, pad text);
SELECT backend_peak_kb() AS peak_100k \gset
SELECT count(*) FROM etl_stream.query('shop',
  'SELECT seq, REPEAT(''x'', 200) FROM seq_1_to_1000000') AS t(n bigint, pad text);
-- 1,000,000 rows of ~210 bytes are 200 MB; the peak grows by less than 8 MB
SELECT backend_peak_kb() - :peak_100k < 8 * 1024 AS peak_flat;

-- the same for landing into a table through the bulk path (what a sync
-- does): 2,000,000 rows after 200,000, about the same peak
CREATE UNLOGGED TABLE landed (n bigint, pad text);
SELECT * FROM etl_stream.land('shop',
  'SELECT seq, REPEAT(''x'', 200) FROM seq_1_to_200000', 'landed');
SELECT backend_peak_kb() AS peak_200k \gset
TRUNCATE landed;
SELECT * FROM etl_stream.land('shop',
  'SELECT seq, REPEAT(''x'', 200) FROM seq_1_to_2000000', 'landed');
SELECT backend_peak_kb() - :peak_200k < 8 * 1024 AS landing_peak_flat;
