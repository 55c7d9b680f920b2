--
-- Names: quoting for MySQL, and the one place each name a registration
-- implies is spelled (the source table, the target, the staging table).
--

-- MySQL identifiers in backticks, strings as literals that do not depend
-- on the session's sql_mode (NO_BACKSLASH_ESCAPES).
CREATE OR REPLACE FUNCTION etl_stream.mysql_ident(name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN '`' || replace(name, '`', '``') || '`';

CREATE OR REPLACE FUNCTION etl_stream.mysql_literal(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN value ~ '[\\''"]' OR value ~ '[^ -~]'
            THEN 'CONVERT(X''' || encode(convert_to(value, 'UTF8'), 'hex') || ''' USING utf8mb4)'
            ELSE '''' || value || '''' END;

-- The MySQL table as it is named in queries
CREATE OR REPLACE FUNCTION etl_stream._source_name(t etl_stream.tables) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN t.source_schema IS NULL THEN ''
                ELSE etl_stream.mysql_ident(t.source_schema) || '.' END
           || etl_stream.mysql_ident(t.source_table)
$$;

-- The target, qualified and quoted for PostgreSQL
CREATE OR REPLACE FUNCTION etl_stream._target_name(t etl_stream.tables) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT format('%I.%I', t.target_schema, t.target_table)
$$;

-- An identifier made of base and suffix that PostgreSQL keeps whole (63
-- bytes): when base || suffix is longer, base is cut at a character
-- boundary and 8 hex digits of its hash are put before the suffix, so two
-- bases that share their first 54 bytes still give two names
CREATE OR REPLACE FUNCTION etl_stream._fit_identifier(base text, suffix text DEFAULT '')
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE WHEN octet_length(base || suffix) <= 63 THEN base || suffix
                ELSE (SELECT left(base, max(n)) FROM generate_series(0, length(base)) n
                       WHERE octet_length(left(base, n)) <= 54 - octet_length(suffix))
                     || '_' || left(md5(base), 8) || suffix END
$$;

-- The table's staging table: its name, made to fit (a registration name
-- may have 48 characters, 192 bytes)
CREATE OR REPLACE FUNCTION etl_stream._staging_name(t etl_stream.tables) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT format('etl_stream_staging.%I', etl_stream._fit_identifier(t.name))
$$;

-- A moved column (named as in PostgreSQL) as MySQL names it: column_map
-- may have given it another name
CREATE OR REPLACE FUNCTION etl_stream._source_column(t etl_stream.tables, col text) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(t.source_names[array_position(t.columns, col)], col)
$$;

-- A moved column as the remote SELECT lists it: under its PostgreSQL name
-- when MySQL's differs
CREATE OR REPLACE FUNCTION etl_stream._remote_column(t etl_stream.tables, col text,
                                                      raw_charset text DEFAULT NULL) RETURNS text
LANGUAGE sql STABLE
AS $$
    -- (text of a raw charset: selected as bytes, see _raw_charsets)
    SELECT CASE WHEN raw_charset IS NOT NULL
                THEN format('CAST(%s AS BINARY) AS %s', etl_stream.mysql_ident(etl_stream._source_column(t, col)),
                            etl_stream.mysql_ident(col))
                WHEN etl_stream._source_column(t, col) = col THEN etl_stream.mysql_ident(col)
                ELSE etl_stream.mysql_ident(etl_stream._source_column(t, col)) || ' AS '
                     || etl_stream.mysql_ident(col) END
$$;

-- Every moved column must keep its name in PostgreSQL, which cuts names
-- at 63 bytes: a MySQL name of 64 characters, or of 22 in a script of
-- three bytes each, would otherwise become another column's, or none
CREATE OR REPLACE FUNCTION etl_stream._check_column_names(t etl_stream.tables) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c text;
BEGIN
    SELECT x INTO c FROM unnest(t.columns) x WHERE octet_length(x) > 63 LIMIT 1;
    IF c IS NOT NULL THEN
        RAISE EXCEPTION 'column name "%" of etl_stream table "%" is too long for PostgreSQL', c, t.name
            USING ERRCODE = 'name_too_long',
                  DETAIL = format('The name has %s bytes; PostgreSQL keeps 63 (NAMEDATALEN - 1) and would truncate it.',
                                  octet_length(c)),
                  HINT = format('Give it a shorter name with column_map => ''{"%s": "short_name"}'', or leave it out with columns.',
                                replace(c, '"', '\"'));
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION etl_stream._get(table_name text) RETURNS etl_stream.tables
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t etl_stream.tables;
BEGIN
    SELECT * INTO t FROM etl_stream.tables WHERE name = table_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'etl_stream table "%" does not exist', table_name
            USING ERRCODE = 'undefined_object',
                  HINT = 'Registered tables are listed in etl_stream.tables.';
    END IF;
    RETURN t;
END
$$;
