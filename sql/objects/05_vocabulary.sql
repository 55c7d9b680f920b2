--
-- The words the catalog and the code share: the strategies, and the kinds
-- of watermark with everything that differs between them.  Each list is
-- written here once; the catalog's CHECK constraints, the registration and
-- the watermark arithmetic all read it.
--

CREATE OR REPLACE FUNCTION etl_stream._strategies() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['merge', 'delete_insert', 'append', 'full_refresh'];

-- What a sync does with a target row whose key MySQL no longer has
-- (a hard delete): keep it, delete it, or flag it in _deleted_at.
-- The catalog's CHECK spells the list out: the upgrade adds it before
-- this function exists.
CREATE OR REPLACE FUNCTION etl_stream._delete_policies() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['keep', 'delete', 'flag'];

-- The SQLSTATEs of failures worth another attempt: the connection lost,
-- refused or never made (MySQL 2002, 2003, 2006, 2013 and read timeouts),
-- too many connections (1040), a lock wait timeout (1205, and PostgreSQL's
-- lock_not_available), a deadlock (1213, and PostgreSQL's), a server gone
-- read-only in a failover (1290, 1836), and a serialization failure.
-- src/connection.c gives MySQL's errors these SQLSTATEs.  Never a value
-- that does not convert, a constraint, or a permission.
CREATE OR REPLACE FUNCTION etl_stream._transient_sqlstates() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY['08000', '08001', '08003', '08006', '53300', '55P03', '40P01', '40001', '25006'];

-- One row per kind of watermark.  The expressions take the value's text as
-- $1 and are run by _wm_apply() with DateStyle and IntervalStyle pinned:
--   canonical      the text stored in the catalog and shown in runs
--   pg_literal     a PostgreSQL constant of the column's type (prunable)
--   mysql_literal  the same value as a MySQL constant (TIMESTAMP is UTC)
--   lag            how far behind now the value is, or NULL
-- column_pattern matches format_type() of the columns that can be one.
CREATE OR REPLACE FUNCTION etl_stream._watermark_kinds(
    OUT kind text, OUT sql_type text, OUT lookback_type text, OUT column_pattern text,
    OUT canonical text, OUT pg_literal text, OUT mysql_literal text, OUT lag text)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
VALUES
  ('integer', 'numeric', 'numeric',
   '^(smallint|integer|bigint|numeric\(\d+,0\))$',
   '$1::numeric::text',
   '$1::numeric::text',
   '$1::numeric::text',
   -- integers are a lag only when they look like unix seconds (2000..2100)
   'CASE WHEN $1::numeric BETWEEN 946684800 AND 4102444800
         THEN now() - to_timestamp($1::double precision) END'),
  ('timestamp', 'timestamp', 'interval',
   '^timestamp(\(\d\))? without time zone$',
   $e$to_char($1::timestamp, 'YYYY-MM-DD HH24:MI:SS.US')$e$,
   $e$quote_literal($1::timestamp) || '::timestamp'$e$,
   $e$quote_literal(to_char($1::timestamp, 'YYYY-MM-DD HH24:MI:SS.US'))$e$,
   'localtimestamp - $1::timestamp'),
  ('timestamptz', 'timestamptz', 'interval',
   '^timestamp(\(\d\))? with time zone$',
   $e$to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'$e$,
   $e$quote_literal($1::timestamptz) || '::timestamptz'$e$,
   $e$quote_literal(to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'))$e$,
   'now() - $1::timestamptz'),
  ('date', 'date', 'interval',
   '^date$',
   $e$to_char($1::date, 'YYYY-MM-DD')$e$,
   $e$quote_literal($1::date) || '::date'$e$,
   $e$quote_literal(to_char($1::date, 'YYYY-MM-DD'))$e$,
   'make_interval(days => current_date - $1::date)')
$$;

CREATE OR REPLACE FUNCTION etl_stream._is_watermark_kind(name text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN EXISTS (SELECT FROM etl_stream._watermark_kinds() k WHERE k.kind = name);
