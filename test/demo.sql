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
\echo '== 3. Stream 10,000 orders from MariaDB into a local table'
\timing on
CREATE TABLE ecs_order_info AS
SELECT * FROM etl_stream.query('shop',
    'SELECT order_id, order_sn, order_amount, add_time, update_time FROM ecs_order_info')
    AS t(order_id bigint, order_sn text, order_amount numeric(10,2), add_time bigint, update_time bigint);
\timing off

\echo
\echo '== 4. Counts on both sides'
SELECT (SELECT n FROM etl_stream.query('shop', 'SELECT count(*) FROM ecs_order_info') AS r(n bigint))
           AS mariadb_rows,
       (SELECT count(*) FROM ecs_order_info) AS postgres_rows;

\echo
\echo '== 5. A few of the rows that arrived'
SELECT order_id, order_sn, order_amount, to_timestamp(add_time) AS added, to_timestamp(update_time) AS updated
FROM ecs_order_info
ORDER BY order_id
LIMIT 5;

-- ====================================================================
-- LATER (sync issue): define ecs_order_info / ecs_tracking as synced
-- tables, run SELECT etl_stream.sync('ecs_order_info'), change rows in
-- MariaDB, sync again, and print the progress and run-history views
-- (etl_stream.runs ...).  Add those steps here.
-- ====================================================================
