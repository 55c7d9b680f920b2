--
-- Watermark arithmetic.  Watermarks and look-backs are kept as text; what
-- a value of each kind means is in etl_stream._watermark_kinds(), and
-- _wm_apply() runs its expressions with DateStyle and IntervalStyle pinned,
-- so a session's settings (DMY dates, say) never change what a stored value
-- means.
--

CREATE OR REPLACE FUNCTION etl_stream._wm_apply(expr text, value text, arg text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    result text;
BEGIN
    IF expr IS NULL OR value IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT (' || expr || ')::text' INTO result USING value, arg;
    RETURN result;
END
$$;

-- The canonical text of a watermark value
CREATE OR REPLACE FUNCTION etl_stream._canonical(t etl_stream.tables, value text) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT etl_stream._wm_apply((SELECT k.canonical FROM etl_stream._watermark_kinds() k
                                  WHERE k.kind = t.watermark_kind), value)
$$;

-- A value of the watermark's type as a PostgreSQL constant (prunable)
CREATE OR REPLACE FUNCTION etl_stream._typed_literal(t etl_stream.tables, value text) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT etl_stream._wm_apply((SELECT k.pg_literal FROM etl_stream._watermark_kinds() k
                                  WHERE k.kind = t.watermark_kind), value)
$$;

-- The same value as a MySQL constant (TIMESTAMP values are read in UTC)
CREATE OR REPLACE FUNCTION etl_stream._mysql_value(t etl_stream.tables, value text) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT etl_stream._wm_apply((SELECT k.mysql_literal FROM etl_stream._watermark_kinds() k
                                  WHERE k.kind = t.watermark_kind), value)
$$;

-- The cutoff of the next run: last high watermark minus the look-back,
-- computed now, as canonical text.  NULL: pull everything.
CREATE OR REPLACE FUNCTION etl_stream._cutoff(t etl_stream.tables) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN t.strategy <> 'full_refresh' THEN
        etl_stream._canonical(t, etl_stream._wm_apply(
            (SELECT format('$1::%s - $2::%s', k.sql_type, k.lookback_type)
               FROM etl_stream._watermark_kinds() k WHERE k.kind = t.watermark_kind),
            t.high_watermark, t.lookback)) END
$$;

-- The later of two watermark values (either may be NULL)
CREATE OR REPLACE FUNCTION etl_stream._later(t etl_stream.tables, a text, b text) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT etl_stream._canonical(t, CASE WHEN a IS NULL OR b IS NULL THEN coalesce(a, b) ELSE
        etl_stream._wm_apply((SELECT format('greatest($1::%1$s, $2::%1$s)', k.sql_type)
                                FROM etl_stream._watermark_kinds() k WHERE k.kind = t.watermark_kind),
                             a, b) END)
$$;

-- How far behind now a watermark value is, where that means something
CREATE OR REPLACE FUNCTION etl_stream._watermark_lag(kind text, value text) RETURNS interval
LANGUAGE sql STABLE
RETURN etl_stream._wm_apply((SELECT k.lag FROM etl_stream._watermark_kinds() k
                              WHERE k.kind = _watermark_lag.kind), value)::interval;

-- A look-back in the watermark's units: a number for integer watermarks,
-- an interval for time ones (a number there means seconds).
CREATE OR REPLACE FUNCTION etl_stream._normalize_lookback(kind text, value text, value_type text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    units text := (SELECT k.lookback_type FROM etl_stream._watermark_kinds() k WHERE k.kind = $1);
    is_number boolean := value_type IN ('smallint', 'integer', 'bigint', 'numeric',
                                        'real', 'double precision');
BEGIN
    IF value IS NULL OR units IS NULL THEN
        RETURN '0';             -- no watermark: nothing to look back on
    ELSIF units = 'numeric' THEN
        IF NOT is_number OR value::numeric < 0 OR value::numeric <> trunc(value::numeric) THEN
            RAISE EXCEPTION 'invalid lookback "%" for an integer watermark', value
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Give a non-negative whole number in the watermark column''s own units, such as 1800 for half an hour of unix seconds.';
        END IF;
        RETURN value::numeric::text;
    ELSE
        IF is_number THEN
            RETURN make_interval(secs => value::double precision)::text;
        ELSIF value_type <> 'interval' THEN
            RAISE EXCEPTION 'invalid lookback of type % for a % watermark', value_type, kind
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Give an interval, such as interval ''30 minutes'', or a number of seconds.';
        ELSIF value::interval < interval '0' THEN
            RAISE EXCEPTION 'lookback must not be negative'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN value::interval::text;
    END IF;
END
$$;
