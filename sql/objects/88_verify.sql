--
-- verify and repair: does the copy match the source, slice by slice, and
-- reload only the slices that do not.  Each side counts and checksums its
-- own rows with one GROUP BY query (MySQL aggregates its rows itself: no
-- row is pulled to compare), over the registered columns rendered to the
-- same canonical text on both sides.  docs/sync.md, "Verifying a copy",
-- says what is compared and how each type is normalized.
--

--
-- One row per registered column: its MySQL type, the target's type, and
-- the expression that renders it canonically on each side (NULL stays
-- NULL).  compared is 'value', or 'null' when only whether the value is
-- NULL can be compared (floats, jsonb: see docs/sync.md).
--
CREATE OR REPLACE FUNCTION etl_stream._verify_columns(t etl_stream.tables)
RETURNS TABLE (name text, mysql_type text, target_type text,
               mysql_expr text, pg_expr text, compared text)
LANGUAGE plpgsql AS $$
DECLARE
    target regclass := etl_stream._target_name(t)::regclass;
    c record;
    m text;
    p text;
    invalid text;
BEGIN
    FOR c IN
        SELECT u.c AS col, upper(d.mysql_type) AS my, format_type(a.atttypid, a.atttypmod) AS pg
          FROM unnest(t.columns) WITH ORDINALITY u(c, o)
          JOIN etl_stream.describe(t.server,
                   format('SELECT %s FROM %s LIMIT 0',
                          (SELECT string_agg(etl_stream._remote_column(t, x), ', ') FROM unnest(t.columns) x),
                          etl_stream._source_name(t))) d ON d.position = u.o
          JOIN pg_attribute a ON a.attrelid = target AND a.attname = u.c AND NOT a.attisdropped
         ORDER BY u.o
    LOOP
        name := c.col;
        mysql_type := c.my;
        target_type := c.pg;
        m := etl_stream.mysql_ident(etl_stream._source_column(t, c.col));
        p := format('%I', c.col);
        compared := 'value';
        -- MySQL's zero and impossible dates arrive as NULL (invalid_dates
        -- 'null'; with 'error' no such row is ever in the target)
        invalid := format('YEAR(%1$s) = 0 OR MONTH(%1$s) = 0 OR DAYOFMONTH(%1$s) = 0 OR LAST_DAY(%1$s) IS NULL'
                          ' OR DAYOFMONTH(%1$s) > DAYOFMONTH(LAST_DAY(%1$s))', m);
        IF c.pg IN ('real', 'double precision') THEN
            compared := 'null';
            mysql_expr := format('CASE WHEN %s IS NOT NULL THEN ''f'' END', m);
            pg_expr := format('CASE WHEN %s IS NOT NULL THEN ''f'' END', p);
        ELSIF c.pg = 'jsonb' THEN
            compared := 'null';
            mysql_expr := format('CASE WHEN %s IS NOT NULL THEN ''j'' END', m);
            pg_expr := format('CASE WHEN %s IS NOT NULL THEN ''j'' END', p);
        ELSIF c.pg = 'boolean' THEN
            mysql_expr := format('(%s + 0)', m);
            pg_expr := format('%s::int::text', p);
        ELSIF c.pg IN ('smallint', 'integer', 'bigint') THEN
            mysql_expr := format('(%s + 0)', m);
            pg_expr := format('%s::text', p);
        ELSIF c.pg ~ '^numeric' THEN
            -- trailing zeros of the scale dropped on both sides
            mysql_expr := CASE WHEN c.my ~ '^DECIMAL\(\d+,[1-9]\d*\)'
                               THEN format('TRIM(TRAILING ''.'' FROM TRIM(TRAILING ''0'' FROM CAST(%s AS CHAR)))', m)
                               ELSE format('(%s + 0)', m) END;
            pg_expr := format('trim_scale(%s)::text', p);
        ELSIF c.pg ~ '^bit' THEN
            -- as the unsigned integer the bits make
            mysql_expr := format('(%s + 0)', m);
            pg_expr := format('(%1$s::bigint::numeric + CASE WHEN %1$s::bigint < 0 THEN 18446744073709551616 ELSE 0 END)::text', p);
        ELSIF c.pg = 'date' THEN
            mysql_expr := format('CASE WHEN %s THEN NULL ELSE DATE_FORMAT(%s, ''%%Y-%%m-%%d'') END', invalid, m);
            pg_expr := format('to_char(%s, ''YYYY-MM-DD'')', p);
        ELSIF c.pg ~ '^timestamp' THEN
            mysql_expr := format('CASE WHEN %s THEN NULL ELSE DATE_FORMAT(%s, ''%%Y-%%m-%%d %%H:%%i:%%s.%%f'') END', invalid, m);
            pg_expr := format('to_char(%s%s, ''YYYY-MM-DD HH24:MI:SS.US'')', p,
                              CASE WHEN c.pg ~ 'with time zone' THEN ' AT TIME ZONE ''UTC''' ELSE '' END);
        ELSIF c.pg ~ '^interval' THEN
            mysql_expr := format('TIME_FORMAT(%s, ''%%H:%%i:%%s.%%f'')', m);
            pg_expr := format('CASE WHEN %1$s < interval ''0'' THEN ''-'' || to_char(-%1$s, ''HH24:MI:SS.US'')'
                              ' ELSE to_char(%1$s, ''HH24:MI:SS.US'') END', p);
        ELSIF c.pg ~ '^time' THEN
            mysql_expr := format('TIME_FORMAT(%s, ''%%H:%%i:%%s.%%f'')', m);
            pg_expr := format('to_char(%s, ''HH24:MI:SS.US'')', p);
        ELSIF c.pg = 'bytea' THEN
            -- a geometry's value is its SRID (4 bytes), then the WKB kept
            mysql_expr := CASE WHEN c.my ~ '^(GEOMETRY|POINT|LINESTRING|POLYGON|MULTIPOINT|MULTILINESTRING|MULTIPOLYGON|GEOMETRYCOLLECTION)'
                               THEN format('LOWER(HEX(SUBSTRING(%s, 5)))', m)
                               ELSE format('LOWER(HEX(%s))', m) END;
            pg_expr := format('encode(%s, ''hex'')', p);
        ELSIF c.pg = 'text[]' THEN
            mysql_expr := format('CONVERT(%s USING utf8mb4)', m);
            pg_expr := format('array_to_string(%s, '','')', p);
        ELSE
            -- text, varchar, char, json, enums: the text as MySQL sends it
            mysql_expr := format('CONVERT(%s USING utf8mb4)', m);
            pg_expr := format('%s::text', p);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

--
-- How a table is cut into slices for verify (and repair): the column, the
-- first slice's start, the width, how many, and the expression giving a
-- row's slice number on each side.  On the watermark: a day by default for
-- time, about 100 slices for integers; a table without one, by its integer
-- key; otherwise the whole table is one slice.
--
CREATE OR REPLACE FUNCTION etl_stream._verify_slicing(t etl_stream.tables, range_from text, range_to text,
                                                      grain text,
                                                      OUT on_col text, OUT kind text, OUT start text,
                                                      OUT stop text, OUT width text, OUT months integer,
                                                      OUT slices bigint,
                                                      OUT mysql_slice text, OUT pg_slice text,
                                                      OUT mysql_where text, OUT pg_where text)
LANGUAGE plpgsql
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' SET timezone = 'UTC' AS $$
DECLARE
    r etl_stream.tables := t;
    on_type text;
    lo text;
    hi text;
    tlo text;
    thi text;
    g interval;
    us numeric;
    unit text;
    pg_t text;
    last_ix numeric;
    m text;
    p text;
    conds text[] := '{}';
    mconds text[] := '{}';
BEGIN
    IF t.watermark IS NOT NULL THEN
        on_col := t.watermark;
        kind := t.watermark_kind;
    ELSIF cardinality(t.key_columns) = 1 AND
          t.column_types[array_position(t.columns, t.key_columns[1])] ~ '^(smallint|integer|bigint|numeric\(\d+,0\))$' THEN
        on_col := t.key_columns[1];
        kind := 'integer';
        r.watermark := on_col;
        r.watermark_kind := kind;
    ELSE
        IF range_from IS NOT NULL OR range_to IS NOT NULL OR grain IS NOT NULL THEN
            RAISE EXCEPTION 'etl_stream table "%" has no watermark or integer key to slice', t.name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Call verify(name) without bounds or grain: the whole table is one slice.';
        END IF;
        slices := 1;
        mysql_slice := '0';
        pg_slice := '0';
        RETURN;
    END IF;
    m := etl_stream.mysql_ident(etl_stream._source_column(t, on_col));
    p := format('%I', on_col);
    on_type := t.column_types[array_position(t.columns, on_col)];
    start := etl_stream._canonical(r, range_from);
    stop := etl_stream._canonical(r, range_to);

    -- the bounds not given: the lowest and highest value on either side
    IF start IS NULL OR stop IS NULL THEN
        EXECUTE format('SELECT lo::text, hi::text FROM etl_stream.query($1, $2) AS b(lo %1$s, hi %1$s)', on_type)
           INTO lo, hi
          USING t.server, format('SELECT MIN(%1$s), MAX(%1$s) FROM %2$s%3$s', m, etl_stream._source_name(t),
                                 CASE WHEN kind <> 'integer' THEN format(' WHERE %s >= ''1000-01-01''', m) ELSE '' END);
        EXECUTE format('SELECT min(%1$s)::text, max(%1$s)::text FROM %2$s', p, etl_stream._target_name(t))
           INTO tlo, thi;
        lo := etl_stream._canonical(r, CASE WHEN lo IS NULL OR tlo IS NULL THEN coalesce(lo, tlo)
                                            ELSE etl_stream._wm_apply(format('least($1::%1$s, $2::%1$s)',
                                                     (SELECT k.sql_type FROM etl_stream._watermark_kinds() k WHERE k.kind = r.watermark_kind)), lo, tlo) END);
        hi := etl_stream._later(r, hi, thi);
    END IF;

    IF kind = 'integer' THEN
        start := coalesce(start, lo, '0');
        width := coalesce(grain, greatest(ceil((coalesce(stop, hi, start)::numeric - start::numeric + 1) / 100), 1)::text);
        IF width !~ '^\s*\d+\s*$' OR width::numeric <= 0 THEN
            RAISE EXCEPTION 'invalid grain "%" for an integer column', grain
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Give a positive whole number: the width of a slice in the column''s units.';
        END IF;
        width := width::numeric::text;
        mysql_slice := format('((%s - %s) DIV %s)', m, start, width);
        pg_t := format('div(%%1$s::numeric - %s, %s)', start, width);
        last_ix := CASE WHEN stop IS NOT NULL THEN ceil((stop::numeric - start::numeric) / width::numeric) - 1
                        WHEN hi IS NOT NULL THEN div(hi::numeric - start::numeric, width::numeric) END;
    ELSE
        BEGIN
            g := coalesce(grain, '1 day')::interval;
        EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR syntax_error THEN
            g := NULL;
        END;
        months := extract(year FROM g)::integer * 12 + extract(month FROM g)::integer;
        us := extract(day FROM g)::numeric * 86400000000
              + (extract(epoch FROM g) - extract(epoch FROM date_trunc('day', g))) * 1000000;
        us := round(us);
        IF g IS NULL OR g <= interval '0' OR (months > 0 AND us <> 0) OR months < 0 OR us < 0
           OR (kind = 'date' AND us % 86400000000 <> 0) THEN
            RAISE EXCEPTION 'invalid grain "%" for a % column', grain, kind
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = CASE WHEN kind = 'date' THEN 'Give whole days or months, such as ''1 day'' or ''1 month''.'
                                  ELSE 'Give an interval of months, or of days and time, such as ''1 day'' or ''1 hour''.' END;
        END IF;
        unit := CASE WHEN months > 0 THEN 'month' WHEN us % 86400000000 = 0 THEN 'day'
                     WHEN us % 3600000000 = 0 THEN 'hour' WHEN us % 60000000 = 0 THEN 'minute' ELSE 'second' END;
        width := g::text;
        IF start IS NULL THEN
            -- (no row with a value on either side: any start will do)
            start := etl_stream._canonical(r, date_trunc(unit, coalesce(lo, '2000-01-01')::timestamp)::text
                                           || CASE kind WHEN 'timestamptz' THEN '+00' ELSE '' END);
        END IF;
        -- months are counted as MySQL's TIMESTAMPDIFF counts whole ones:
        -- the same on both sides only from the start of a month
        IF months > 0 AND date_trunc('month', start::timestamp) <> start::timestamp THEN
            RAISE EXCEPTION 'range_from % does not begin a month, as a grain of months needs', range_from
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Start the range on the first of a month at midnight, or give a grain of days.';
        END IF;
        IF months > 0 THEN
            mysql_slice := format('(TIMESTAMPDIFF(MONTH, %s, %s) DIV %s)', etl_stream._mysql_value(r, start), m, months);
            pg_t := format('div((extract(year FROM %1$s) - %2$s) * 12 + extract(month FROM %1$s) - %3$s, %4$s)',
                           CASE kind WHEN 'timestamptz' THEN '(%1$s AT TIME ZONE ''UTC'')' ELSE '%1$s' END,
                           extract(year FROM start::timestamp), extract(month FROM start::timestamp), months);
        ELSIF kind = 'date' THEN
            mysql_slice := format('(DATEDIFF(%s, %s) DIV %s)', m, etl_stream._mysql_value(r, start), us / 86400000000);
            pg_t := format('div(%%1$s - %s, %s)', etl_stream._typed_literal(r, start), us / 86400000000);
        ELSE
            mysql_slice := format('(TIMESTAMPDIFF(MICROSECOND, %s, %s) DIV %s)', etl_stream._mysql_value(r, start), m, us);
            pg_t := format('div(extract(epoch FROM %%1$s - %s) * 1000000, %s)', etl_stream._typed_literal(r, start), us);
        END IF;
        -- the number of the slice the last value is in
        IF coalesce(stop, hi) IS NOT NULL THEN
            EXECUTE 'SELECT ' || format(pg_t, '$1::' || (SELECT k.sql_type FROM etl_stream._watermark_kinds() k WHERE k.kind = r.watermark_kind))
               INTO last_ix USING coalesce(stop, hi);
            IF stop IS NOT NULL AND etl_stream._canonical(r, etl_stream._slice_bound(kind, start, width, months, last_ix)) = stop THEN
                last_ix := last_ix - 1;
            END IF;
        END IF;
    END IF;
    pg_slice := format(pg_t, p);
    slices := CASE WHEN last_ix IS NULL OR last_ix < 0 THEN 0 ELSE last_ix + 1 END;

    IF start IS NOT NULL THEN
        mconds := mconds || format('%s >= %s', m, etl_stream._mysql_value(r, start));
        conds := conds || format('%s >= %s', p, etl_stream._typed_literal(r, start));
    END IF;
    IF stop IS NOT NULL THEN
        mconds := mconds || format('%s < %s', m, etl_stream._mysql_value(r, stop));
        conds := conds || format('%s < %s', p, etl_stream._typed_literal(r, stop));
    END IF;
    -- with no bound given, the rows without a value (NULL, or a MySQL zero
    -- date) are a slice of their own
    IF range_from IS NOT NULL OR range_to IS NOT NULL THEN
        mysql_where := array_to_string(mconds, ' AND ');
        pg_where := array_to_string(conds, ' AND ');
    ELSE
        mysql_slice := format('CASE WHEN %s >= %s THEN %s END', m, etl_stream._mysql_value(r, start), mysql_slice);
    END IF;
END
$$;

-- The start of slice ix (canonical text of the slice column's kind)
CREATE OR REPLACE FUNCTION etl_stream._slice_bound(kind text, start text, width text, months integer, ix numeric)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' SET timezone = 'UTC' AS $$
DECLARE
    r etl_stream.tables;
BEGIN
    r.watermark_kind := kind;
    IF start IS NULL OR ix IS NULL THEN
        RETURN NULL;
    ELSIF kind = 'integer' THEN
        RETURN (start::numeric + ix * width::numeric)::text;
    ELSIF months > 0 THEN
        RETURN etl_stream._canonical(r, (start::timestamp + make_interval(months => (ix * months)::integer))::text
                                        || CASE kind WHEN 'timestamptz' THEN '+00' ELSE '' END);
    ELSE
        RETURN etl_stream._canonical(r, (start::timestamp + ix * width::interval)::text
                                        || CASE kind WHEN 'timestamptz' THEN '+00' ELSE '' END);
    END IF;
END
$$;

--
-- verify: per slice, the rows and the checksum on each side.  The checksum
-- of a slice is the sum, as an exact number, of the first 60 bits of the
-- MD5 of each row's canonical text: the same on both engines, and
-- independent of the order of the rows.
--
CREATE OR REPLACE FUNCTION etl_stream.verify(name text, range_from text DEFAULT NULL,
                                             range_to text DEFAULT NULL, grain text DEFAULT NULL)
RETURNS TABLE (slice_from text, slice_to text, source_rows bigint, target_rows bigint,
               source_checksum text, target_checksum text, ok boolean)
LANGUAGE plpgsql
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    t etl_stream.tables := etl_stream._get(name);
    s record;
    mysql_row text;
    pg_row text;
    remote_sql text;
    local_sql text;
BEGIN
    IF to_regclass(etl_stream._target_name(t)) IS NULL THEN
        RAISE EXCEPTION 'target table % of etl_stream table "%" does not exist', etl_stream._target_name(t), t.name
            USING ERRCODE = 'undefined_table',
                  HINT = format('Create it with SELECT etl_stream.create_target(%L), and sync it.', t.name);
    END IF;
    s := etl_stream._verify_slicing(t, range_from, range_to, grain);
    -- each value marked (\x1f) so that no text can look like a NULL (\x1e)
    SELECT 'CONCAT(' || string_agg(format('IFNULL(CONCAT(_utf8mb4 X''1F'', %s), _utf8mb4 X''1E'')', c.mysql_expr), ', ') || ')',
           string_agg(format('coalesce(chr(31) || %s, chr(30))', c.pg_expr), ' || ')
      INTO mysql_row, pg_row
      FROM etl_stream._verify_columns(t) c;
    remote_sql := format('SELECT %s AS slice, COUNT(*), CAST(SUM(CAST(CONV(SUBSTRING(MD5(%s), 1, 15), 16, 10) AS UNSIGNED)) AS CHAR)'
                         ' FROM %s%s GROUP BY 1',
                         s.mysql_slice, mysql_row, etl_stream._source_name(t),
                         CASE WHEN s.mysql_where <> '' THEN ' WHERE ' || s.mysql_where ELSE '' END);
    local_sql := format('SELECT %s AS slice, count(*) AS n, sum((''x'' || substr(md5(%s), 1, 15))::bit(60)::bigint)::text AS sum'
                        ' FROM %s%s GROUP BY 1',
                        s.pg_slice, pg_row, etl_stream._target_name(t),
                        CASE WHEN s.pg_where <> '' THEN ' WHERE ' || s.pg_where ELSE '' END);
    RETURN QUERY EXECUTE format(
        'WITH src AS (SELECT * FROM etl_stream.query($1, $2) AS r(slice numeric, n bigint, sum text)),
              tgt AS (%s),
              ix AS (SELECT generate_series(0, $3 - 1)::numeric AS slice
                     UNION SELECT slice FROM src UNION SELECT slice FROM tgt)
         SELECT CASE WHEN ix.slice IS NOT NULL THEN etl_stream._slice_bound($4, $5, $6, $7, ix.slice) END,
                CASE WHEN ix.slice IS NULL THEN NULL WHEN $8 IS NOT NULL AND ix.slice >= $3 - 1 THEN $8
                     ELSE etl_stream._slice_bound($4, $5, $6, $7, ix.slice + 1) END,
                coalesce(src.n, 0), coalesce(tgt.n, 0), coalesce(src.sum, ''0''), coalesce(tgt.sum, ''0''),
                coalesce(src.n, 0) = coalesce(tgt.n, 0) AND coalesce(src.sum, ''0'') = coalesce(tgt.sum, ''0'')
           FROM ix LEFT JOIN src ON src.slice IS NOT DISTINCT FROM ix.slice
                   LEFT JOIN tgt ON tgt.slice IS NOT DISTINCT FROM ix.slice
          ORDER BY ix.slice NULLS LAST', local_sql)
      USING t.server, remote_sql, s.slices, s.kind, s.start, s.width, s.months, s.stop;
END
$$;

COMMENT ON FUNCTION etl_stream.verify(text, text, text, text) IS
  'per slice of the watermark, rows and checksum of the source and of the target, computed by each engine';

--
-- The plan of a repair run: the rows of the slice in the target are
-- deleted, and the source's rows of the slice inserted, as delete_insert
-- does; with a key, inserted as a merge does, so that a row that moved into
-- the slice from another (its watermark changed, unseen by syncs) replaces
-- its old version instead of meeting the primary key.
--
CREATE OR REPLACE FUNCTION etl_stream._repair_plan(t etl_stream.tables, range_from text, range_to text,
                                                  staging_table text DEFAULT NULL, range_on text DEFAULT NULL)
RETURNS etl_stream.plan
LANGUAGE plpgsql STABLE AS $$
DECLARE
    p etl_stream.plan;
    m etl_stream.plan;
BEGIN
    t.strategy := 'delete_insert';
    p := etl_stream._plan(t, range_from, range_to, NULL, staging_table, range_on, false);
    IF cardinality(t.key_columns) > 0 THEN
        t.strategy := 'merge';
        m := etl_stream._plan(t, range_from, range_to, NULL, staging_table, range_on, false);
        p.merge_sql := m.merge_sql;
    END IF;
    -- without a bound, the plan would take the table's cutoff: a whole-table
    -- slice replaces every row
    IF range_from IS NULL AND range_to IS NULL THEN
        p.cutoff := NULL;
        p.delete_sql := format('DELETE FROM %s', p.target);
        p.remote_sql := 'SELECT ' || (SELECT string_agg(etl_stream._remote_column(t, c), ', ') FROM unnest(t.columns) c)
                        || ' FROM ' || etl_stream._source_name(t);
        p.remote_from := ' FROM ' || etl_stream._source_name(t);
    END IF;
    RETURN p;
END
$$;

-- C: one repair run of a slice, in the caller's transaction
CREATE OR REPLACE FUNCTION etl_stream._repair_slice(name text, range_from text, range_to text,
                                                   range_on text DEFAULT NULL)
RETURNS etl_stream.runs
AS 'MODULE_PATHNAME', 'etl_stream_repair_slice'
LANGUAGE C VOLATILE;

--
-- repair: verify, then reload the slices that differ, each as a run of its
-- own (etl_stream.runs: cutoff and upper_bound are the slice).  The
-- watermark is not moved.  parallel = 0: one after the other in the
-- caller's transaction, the runs returned; parallel > 0: a job of that
-- many workers, started when the calling transaction commits, each slice
-- committed on its own (wait with job_wait(job_id)).
--
CREATE OR REPLACE FUNCTION etl_stream.repair(name text, range_from text DEFAULT NULL,
                                             range_to text DEFAULT NULL, grain text DEFAULT NULL,
                                             parallel integer DEFAULT 0)
RETURNS TABLE (slice_from text, slice_to text, source_rows bigint, target_rows bigint,
               run_id bigint, status text, job_id bigint)
LANGUAGE plpgsql
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres' AS $$
DECLARE
    t etl_stream.tables := etl_stream._get(name);
    on_col text;
    bad record;
    r etl_stream.runs;
    job bigint;
    n integer := 0;
BEGIN
    PERFORM etl_stream._check_sliceable(t, 'repaired slice by slice');
    IF parallel IS NULL OR parallel < 0 THEN
        RAISE EXCEPTION 'parallel must be 0 or more, not %', coalesce(parallel::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    on_col := (etl_stream._verify_slicing(t, range_from, range_to, grain)).on_col;
    IF parallel > 0 THEN
        PERFORM etl_stream._check_worker_role(current_user);
        INSERT INTO etl_stream.jobs (kind, tables, workers, range_from, range_to, slice)
        VALUES ('repair', ARRAY[t.name], parallel, range_from, range_to, grain)
        RETURNING jobs.job_id INTO job;
    END IF;
    FOR bad IN SELECT v.* FROM etl_stream.verify(name, range_from, range_to, grain) v WHERE NOT v.ok LOOP
        IF bad.slice_from IS NULL AND on_col IS NOT NULL THEN
            -- rows whose watermark is NULL (or a MySQL zero date): no range holds them
            RAISE WARNING 'rows of etl_stream table "%" without a watermark value differ, and are not repaired', t.name
                USING DETAIL = format('The source has %s such rows, the target %s.', bad.source_rows, bad.target_rows),
                      HINT = 'A full reload (delete_insert without a range) reloads them.';
            CONTINUE;
        END IF;
        slice_from := bad.slice_from;
        slice_to := bad.slice_to;
        source_rows := bad.source_rows;
        target_rows := bad.target_rows;
        n := n + 1;
        IF parallel > 0 THEN
            INSERT INTO etl_stream.tasks (job_id, position, table_name, range_on, range_from, range_to, resume_from)
            VALUES (job, n, t.name, on_col, bad.slice_from, bad.slice_to, bad.slice_from);
            repair.job_id := job;
            run_id := NULL;
            status := 'queued';
        ELSE
            r := etl_stream._repair_slice(t.name, bad.slice_from, bad.slice_to,
                                          CASE WHEN on_col IS DISTINCT FROM t.watermark THEN on_col END);
            run_id := r.run_id;
            status := r.status;
            repair.job_id := NULL;
        END IF;
        RETURN NEXT;
    END LOOP;
    IF parallel > 0 THEN
        IF n = 0 THEN
            DELETE FROM etl_stream.jobs x WHERE x.job_id = job;    -- nothing to repair
        ELSE
            UPDATE etl_stream.jobs x SET tasks_total = n WHERE x.job_id = job;
            PERFORM etl_stream._start_workers(job, least(parallel, n), current_user);
        END IF;
    END IF;
END
$$;

COMMENT ON FUNCTION etl_stream.repair(text, text, text, text, integer) IS
  'verify a table, then reload (delete_insert) only the slices that differ; returns them with their runs or job';
