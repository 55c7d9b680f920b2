--
-- cancel: a cancel or statement_timeout while MySQL is busy returns at
-- once, kills the statement on MySQL, and leaks no connection.
--
\getenv mysql_port MYSQL_PORT

-- the remote statements of ours still running on MySQL
CREATE FUNCTION remote_sleepers() RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM etl_stream.query('shop',
    'SELECT id FROM information_schema.processlist
      WHERE info LIKE ''SELECT SLEEP(30)%''') AS t(id bigint)
$$;
-- the same once MySQL has ended what was killed: KILL QUERY only marks the
-- statement, which ends a moment later; one that was not killed would go
-- on for its 30 s (waits up to 2 s)
CREATE FUNCTION remote_sleepers_after_kill() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..40 LOOP
		EXIT WHEN remote_sleepers() = 0;
		PERFORM pg_sleep(0.05);
	END LOOP;
	RETURN remote_sleepers();
END
$$;
-- our connections on MySQL (user etl; PROCESS lets it see all of its own)
CREATE FUNCTION remote_connections() RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM etl_stream.query('shop',
    'SELECT id FROM information_schema.processlist WHERE user = ''etl''') AS t(id bigint)
$$;

SELECT remote_connections() AS connections_before;

-- statement_timeout during SLEEP(30): caught here to time it
SET statement_timeout = '300ms';
DO $$
DECLARE
	started timestamptz := clock_timestamp();
BEGIN
	PERFORM * FROM etl_stream.query('shop', 'SELECT SLEEP(30)') AS t(x int);
	RAISE NOTICE 'not cancelled';
EXCEPTION WHEN query_canceled THEN
	RAISE NOTICE 'cancelled: % within a second: %', SQLERRM,
		clock_timestamp() - started < interval '1 second';
END
$$;
RESET statement_timeout;
SELECT remote_sleepers_after_kill() AS still_sleeping;

-- the same without catching it: the error, and the next call works
SET statement_timeout = '300ms';
SELECT * FROM etl_stream.query('shop', 'SELECT SLEEP(30)') AS t(x int);
RESET statement_timeout;
SELECT remote_sleepers_after_kill() AS still_sleeping;

-- pg_cancel_backend from another session, while this one waits on MySQL
SELECT dblink_connect('other', format('host=127.0.0.1 port=%s dbname=%s user=%s',
	current_setting('port'), current_database(), current_user));
SELECT dblink_send_query('other',
	$$SELECT * FROM etl_stream.query('shop', 'SELECT SLEEP(30)') AS t(x int)$$);
-- wait until the statement runs on MySQL
DO $$
BEGIN
	FOR i IN 1..100 LOOP
		EXIT WHEN remote_sleepers() > 0;
		PERFORM pg_sleep(0.05);
	END LOOP;
END
$$;
SELECT remote_sleepers() AS sleeping_before_cancel;
CREATE TEMP TABLE cancel_time AS SELECT clock_timestamp() AS at;
SELECT pg_cancel_backend(pid) FROM pg_stat_activity
 WHERE query LIKE '%SLEEP(30)%' AND pid <> pg_backend_pid() AND backend_type = 'client backend';
SELECT * FROM dblink_get_result('other', false) AS t(x int);
SELECT * FROM dblink_get_result('other') AS t(x int);  -- the end of that result
SELECT clock_timestamp() - at < interval '1 second' AS returned_within_a_second
  FROM cancel_time;
-- (the other session tells its client before its abort kills the remote
-- statement: allow it a moment)
SELECT remote_sleepers_after_kill() AS still_sleeping;
-- the cancelled session can use the source again
SELECT * FROM dblink('other',
	$$SELECT * FROM etl_stream.query('shop', 'SELECT 7') AS t(x int)$$) AS t(x int);
SELECT dblink_disconnect('other');

-- a cancel while rows stream in: nothing half-read is left behind
SET statement_timeout = '500ms';
SELECT count(*) FROM etl_stream.query('shop',
	'SELECT a.seq FROM seq_1_to_100000 a, seq_1_to_100000 b') AS t(x bigint);
RESET statement_timeout;
SELECT count(*) AS still_streaming FROM etl_stream.query('shop',
	'SELECT id FROM information_schema.processlist WHERE info LIKE ''%seq_1_to_100000 a%''
	   AND info NOT LIKE ''%processlist%''') AS t(id bigint);

-- a subtransaction that catches the cancel cleans up the same way
SET statement_timeout = '300ms';
DO $$
BEGIN
	BEGIN
		PERFORM * FROM etl_stream.query('shop', 'SELECT SLEEP(30)') AS t(x int);
	EXCEPTION WHEN query_canceled THEN
		RAISE NOTICE 'caught in a subtransaction';
	END;
END
$$;
RESET statement_timeout;
SELECT remote_sleepers_after_kill() AS still_sleeping;

-- after all this: no more connections than before (the cached one, plus
-- the dblink session's, now closed)
SELECT remote_connections() <= (SELECT 1) AS no_leaked_connections;
