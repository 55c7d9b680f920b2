--
-- types: every MySQL type arrives as its natural PostgreSQL type, the
-- other accepted target types convert exactly, and values that cannot be
-- represented are errors naming the column, the row and the value.
-- Fixture: test/fixtures/etl_test_types.sql (database etl_test).
--
\getenv mysql_host MYSQL_HOST
\getenv mysql_port MYSQL_PORT
\getenv mysql_user MYSQL_USER
\getenv mysql_password MYSQL_PASSWORD

-- pg_regress runs with PST8PDT and Postgres-style dates: be explicit
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
\pset null '(null)'

--
-- Integers: min and max of every type, signed and unsigned
--
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, t, tu, b, s, su, m, mu FROM types_int ORDER BY id')
  AS t(id int, t smallint, tu smallint, b boolean, s smallint, su integer,
       m integer, mu integer);
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, i, iu, bi, bu, z FROM types_int ORDER BY id')
  AS t(id int, i integer, iu bigint, bi bigint, bu numeric(20,0), z bigint);

-- wider targets
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, t, m, i, i, bi, bu, b FROM types_int ORDER BY id')
  AS t(id int, t numeric, m real, i bigint, i_f float8, bi numeric,
       bu float8, b smallint);

-- narrower integer targets: fine while the values fit...
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, bi, iu, m FROM types_int WHERE id IN (3, 4) ORDER BY id')
  AS t(id smallint, bi smallint, iu integer, m smallint);
-- ...and an error naming the value when one does not
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, i FROM types_int ORDER BY id') AS t(id int, i smallint);
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, bu FROM types_int ORDER BY id') AS t(id int, bu bigint);

-- a BOOL holding 2 is not a boolean; a smallint target takes it as it is
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, b FROM types_bad_bool ORDER BY id') AS t(id int, b boolean);
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, b FROM types_bad_bool ORDER BY id') AS t(id int, b smallint);

--
-- Exact and approximate numbers
--
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, d, d2, d0 FROM types_num ORDER BY id')
  AS t(id int, d numeric(65,30), d2 numeric(10,2), d0 numeric(20,0));
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, f, dbl, f, f FROM types_num ORDER BY id')
  AS t(id int, f real, dbl double precision, f8 double precision, n numeric);
-- other numeric typmods apply PostgreSQL's rounding and scale
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, d2, d2, t FROM types_num JOIN types_int USING (id) ORDER BY id')
  AS t(id int, d2 numeric, d2_4 numeric(12,4), t numeric(5,2));
-- DECIMAL(p,0) into an integer type, checked per value
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, d0 FROM types_num WHERE id > 2 ORDER BY id') AS t(id int, d0 bigint);
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, d0 FROM types_num ORDER BY id') AS t(id int, d0 bigint);
-- a narrower numeric: PostgreSQL's own check, with our context line
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, d2 FROM types_num ORDER BY id') AS t(id int, d2 numeric(5,2));

--
-- BIT: BIT(1) is a boolean, wider ones bit strings (or integers)
--
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, b1, b12, b64 FROM types_bit ORDER BY id')
  AS t(id int, b1 boolean, b12 bit(12), b64 bit(64));
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, b1, b12, b12, b64 FROM types_bit ORDER BY id')
  AS t(id int, b1 bit(1), b12 varbit, b12_int integer, b64 numeric);
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, b64 FROM types_bit ORDER BY id') AS t(id int, b64 bigint);

--
-- Text: utf8mb4, escapes, 'NULL' versus NULL.  to_json() shows every
-- character unambiguously.
--
SELECT id, to_json(c) AS c, length(c) AS c_len, octet_length(c) AS c_bytes,
       to_json(vc) AS vc, to_json(tx) AS tx
  FROM etl_stream.query('etl_test', 'SELECT id, c, vc, tx FROM types_text ORDER BY id')
  AS t(id int, c varchar(10), vc varchar(20), tx text);
SELECT id, to_json(tt) AS tt, to_json(mt) AS mt, to_json(lt) AS lt,
       lt IS NULL AS lt_is_null
  FROM etl_stream.query('etl_test', 'SELECT id, tt, mt, lt FROM types_text ORDER BY id')
  AS t(id int, tt text, mt text, lt text);

-- ENUM is text, SET a text array ('' is the empty set)
SELECT id, en, st, cardinality(st) AS n
  FROM etl_stream.query('etl_test', 'SELECT id, en, st FROM types_text ORDER BY id')
  AS t(id int, en text, st text[]);
-- or a PostgreSQL enum, and SET as plain text
CREATE TYPE size_enum AS ENUM ('small', 'medium', 'large');
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, en, st FROM types_text ORDER BY id') AS t(id int, en size_enum, st text);

-- char(n) pads like PostgreSQL; varchar(n) takes values up to n characters
SELECT id, format('[%s]', c) AS c, octet_length(c) AS c_bytes, vc
  FROM etl_stream.query('etl_test',
    'SELECT id, c, vc FROM types_text WHERE id IN (1, 2, 6) ORDER BY id')
  AS t(id int, c char(3), vc varchar(8));
-- past n only trailing spaces may go (PostgreSQL's rule for varchar(n))
SELECT id, to_json(vc) AS vc
  FROM etl_stream.query('etl_test', 'SELECT id, vc FROM types_text WHERE id = 6')
  AS t(id int, vc varchar(6));
-- and a longer value is an error, never truncated
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, vc FROM types_text WHERE id IN (1, 2) ORDER BY id') AS t(id int, vc varchar(7));

-- long values are cut to 60 bytes in messages
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, tx FROM types_text WHERE id = 7') AS t(id int, tx varchar(50));
-- latin1 columns arrive as UTF-8 (the server converts) and stay intact
SELECT id, c, vc, tx, length(tx) AS tx_len, octet_length(tx) AS tx_bytes
  FROM etl_stream.query('etl_test', 'SELECT id, c, vc, tx FROM types_latin1 ORDER BY id')
  AS t(id int, c varchar(10), vc varchar(20), tx text);

-- over a latin1 connection the wire text is cp1252 (WIN1252), converted to
-- the database encoding once per value
CREATE SERVER etl_test_latin1 FOREIGN DATA WRAPPER etl_stream
  OPTIONS (host :'mysql_host', port :'mysql_port', dbname 'etl_test',
           charset 'latin1');
CREATE USER MAPPING FOR CURRENT_USER SERVER etl_test_latin1
  OPTIONS (user :'mysql_user', password :'mysql_password');
SELECT id, c, vc, tx, length(tx) AS tx_len, octet_length(tx) AS tx_bytes
  FROM etl_stream.query('etl_test_latin1', 'SELECT id, c, vc, tx FROM types_latin1 ORDER BY id')
  AS t(id int, c varchar(10), vc varchar(20), tx text);
SELECT * FROM etl_stream.query('etl_test_latin1',
  'SELECT id, vc FROM types_latin1 ORDER BY id') AS t(id int, vc varchar(4));

--
-- Binary strings: bytea, every byte kept, NUL included
--
SELECT id, bn, vb, bl, octet_length(bn) AS bn_bytes
  FROM etl_stream.query('etl_test', 'SELECT id, bn, vb, bl FROM types_binary ORDER BY id')
  AS t(id int, bn bytea, vb bytea, bl bytea);
-- into text only when the bytes are valid text
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, bl FROM types_binary WHERE id IN (2, 3, 4) ORDER BY id') AS t(id int, bl text);
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, v FROM types_bad_text WHERE id IN (1, 2) ORDER BY id') AS t(id int, v text);
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, v FROM types_bad_text WHERE id IN (1, 3) ORDER BY id') AS t(id int, v text);

--
-- JSON: jsonb (MariaDB's JSON is LONGTEXT marked as JSON)
--
SELECT id, j, jsonb_typeof(j) AS type
  FROM etl_stream.query('etl_test', 'SELECT id, j FROM types_json ORDER BY id')
  AS t(id int, j jsonb);
-- json and text targets keep the text exactly as MySQL holds it
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, j, j FROM types_json ORDER BY id') AS t(id int, j json, jt text);
-- text that is not JSON: jsonb_in's error, with our context line
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, vc FROM types_text ORDER BY id') AS t(id int, vc jsonb);

--
-- Geometry: WKB without MySQL's 4-byte SRID prefix; ask for the SRID
--
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, g, ST_SRID(g), p, ST_AsText(p) FROM types_geometry ORDER BY id')
  AS t(id int, g bytea, srid int, p bytea, p_text text);

--
-- Dates and times
--
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, d, dt, dt6, ts, ts3 FROM types_datetime ORDER BY id')
  AS t(id int, d date, dt timestamp(0), dt6 timestamp(6), ts timestamptz(0),
       ts3 timestamptz(3));
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, tm, tm6, y FROM types_datetime ORDER BY id')
  AS t(id int, tm interval, tm6 interval, y smallint);

-- DATE into timestamps; fewer fractional digits round like PostgreSQL
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, d, d, dt6, ts3 FROM types_datetime ORDER BY id')
  AS t(id int, d_ts timestamp, d_tstz timestamptz, dt6 timestamp(0),
       ts3 timestamptz(1));
-- between local and zoned time the session's TimeZone applies, as it does
-- in PostgreSQL's casts
SET TimeZone = 'America/New_York';
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, d, dt, ts, ts FROM types_datetime WHERE id IN (1, 4) ORDER BY id')
  AS t(id int, d timestamptz, dt timestamptz, ts timestamp, ts_tz timestamptz);
SET TimeZone = 'UTC';

-- TIME into time: only 00:00:00 to 23:59:59.999999
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, tm, tm6 FROM types_datetime WHERE id IN (1, 5) ORDER BY id')
  AS t(id int, tm time, tm6 time(3));
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, tm FROM types_datetime WHERE id = 4') AS t(id int, tm time);
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, tm6 FROM types_datetime WHERE id = 4') AS t(id int, tm6 time);

-- zero and impossible dates: NULL under the default policy...
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, d, dt, ts FROM types_bad_dates ORDER BY id')
  AS t(id int, d date, dt timestamp, ts timestamptz);
-- ...text as MySQL shows it...
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, d, dt FROM types_bad_dates ORDER BY id') AS t(id int, d text, dt text);
-- ...and an error under invalid_dates 'error'
CREATE SERVER etl_test_strict FOREIGN DATA WRAPPER etl_stream
  OPTIONS (host :'mysql_host', port :'mysql_port', dbname 'etl_test',
           invalid_dates 'error');
CREATE USER MAPPING FOR CURRENT_USER SERVER etl_test_strict
  OPTIONS (user :'mysql_user', password :'mysql_password');
SELECT * FROM etl_stream.query('etl_test_strict',
  'SELECT id, d FROM types_bad_dates WHERE id IN (1, 6) ORDER BY id') AS t(id int, d date);
SELECT * FROM etl_stream.query('etl_test_strict',
  'SELECT id, d FROM types_bad_dates ORDER BY id') AS t(id int, d date);
SELECT * FROM etl_stream.query('etl_test_strict',
  'SELECT id, dt FROM types_bad_dates WHERE id = 5') AS t(id int, dt timestamp);
SELECT * FROM etl_stream.query('etl_test_strict',
  'SELECT id, ts FROM types_bad_dates WHERE id = 2') AS t(id int, ts timestamptz);
-- ...and -infinity under invalid_dates '-infinity', whatever the date or
-- time target (each conversion path: DATE into date, timestamp and
-- timestamptz, DATETIME and TIMESTAMP into both), counted in a WARNING
CREATE SERVER etl_test_neg_inf FOREIGN DATA WRAPPER etl_stream
  OPTIONS (host :'mysql_host', port :'mysql_port', dbname 'etl_test',
           invalid_dates '-infinity');
CREATE USER MAPPING FOR CURRENT_USER SERVER etl_test_neg_inf
  OPTIONS (user :'mysql_user', password :'mysql_password');
SELECT * FROM etl_stream.query('etl_test_neg_inf',
  'SELECT id, d, d, d, dt, dt, ts, ts FROM types_bad_dates ORDER BY id')
  AS t(id int, d date, d_ts timestamp, d_tstz timestamptz, dt timestamp, dt_tstz timestamptz,
       ts timestamptz, ts_ts timestamp);
DROP USER MAPPING FOR CURRENT_USER SERVER etl_test_neg_inf;
DROP SERVER etl_test_neg_inf;

--
-- SELECT NULL fits any type
--
SELECT * FROM etl_stream.query('etl_test', 'SELECT NULL, NULL, NULL, NULL')
  AS t(a int, b date, c jsonb, d text[]);

--
-- Domains: converted to the base type, then checked
--
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
CREATE DOMAIN required_text AS varchar(20) NOT NULL;
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, vc FROM types_text WHERE id < 8 ORDER BY id') AS t(id positive_int, vc required_text);
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, i FROM types_int ORDER BY id') AS t(id int, i positive_int);
SELECT * FROM etl_stream.query('etl_test',
  'SELECT id, vc FROM types_text ORDER BY id') AS t(id int, vc required_text);

--
-- Types that do not fit are refused before any row is read
--
SELECT * FROM etl_stream.query('etl_test', 'SELECT d FROM types_datetime') AS t(d integer);
SELECT * FROM etl_stream.query('etl_test', 'SELECT i AS n FROM types_int') AS t(i date);
SELECT * FROM etl_stream.query('etl_test', 'SELECT bi FROM types_int') AS t(bi boolean);
SELECT * FROM etl_stream.query('etl_test', 'SELECT bl FROM types_binary') AS t(bl jsonb);
SELECT * FROM etl_stream.query('etl_test', 'SELECT bi FROM types_int') AS t(bi real);
SELECT * FROM etl_stream.query('etl_test', 'SELECT dt FROM types_datetime') AS t(dt date);
SELECT * FROM etl_stream.query('etl_test', 'SELECT b12 FROM types_bit') AS t(b12 bit(8));
SELECT * FROM etl_stream.query('etl_test', 'SELECT g FROM types_geometry') AS t(g text);
SELECT * FROM etl_stream.query('etl_test', 'SELECT st FROM types_text') AS t(st varchar[]);
SELECT * FROM etl_stream.query('etl_test', 'SELECT id, d FROM types_num') AS t(id int);


-- The natural type of every fixture column, as the mismatch hint names it
-- (point fits no MySQL type, so every column is refused)
CREATE FUNCTION natural_type(tbl text, col text, OUT mysql_type text, OUT natural_type text)
LANGUAGE plpgsql AS $$
DECLARE
	hint text;
BEGIN
	EXECUTE format('SELECT * FROM etl_stream.query(%L, %L) AS t(x point)', 'etl_test',
				   format('SELECT `%s` FROM `%s` LIMIT 0', col, tbl));
EXCEPTION WHEN datatype_mismatch THEN
	GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
	natural_type := substring(hint FROM '^Declare the column as (.*), the natural type');
	mysql_type := substring(hint FROM 'the natural type for MySQL (.*)\.$');
END
$$;
SELECT c.table_name, c.column_name, c.column_type, n.*
  FROM etl_stream.query('etl_test',
    'SELECT table_name, column_name, column_type FROM information_schema.columns
      WHERE table_schema = ''etl_test'' AND table_name LIKE ''types\_%''
        AND column_name <> ''id''
      ORDER BY table_name, ordinal_position')
    AS c(table_name text, column_name text, column_type text),
  LATERAL natural_type(c.table_name, c.column_name) AS n;
DROP FUNCTION natural_type;

DROP USER MAPPING FOR CURRENT_USER SERVER etl_test_strict;
DROP SERVER etl_test_strict;
DROP USER MAPPING FOR CURRENT_USER SERVER etl_test_latin1;
DROP SERVER etl_test_latin1;
DROP DOMAIN positive_int, required_text;
DROP TYPE size_enum;
