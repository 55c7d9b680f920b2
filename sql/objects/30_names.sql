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

-- The table's staging table (registration names fit in an identifier)
CREATE OR REPLACE FUNCTION etl_stream._staging_name(t etl_stream.tables) RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT format('etl_stream_staging.%I', t.name)
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
