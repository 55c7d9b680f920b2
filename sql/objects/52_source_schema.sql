--
-- What the source declares, and what becomes of it: create_target carries
-- a MySQL table's NOT NULL, unique keys and defaults into the target (and
-- says what it cannot carry); at each run, _check_source_columns compares
-- the source's columns with the registration and acts by the table's
-- on_schema_change.  docs/type-mapping.md and docs/sync.md say what users
-- see.
--

-- A string constant as MariaDB's information_schema quotes it ('it''s',
-- 'a\\b'), as text; NULL when it holds a character text cannot (\0)
CREATE OR REPLACE FUNCTION etl_stream._mysql_unquote(literal text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    body text := substr(literal, 2, length(literal) - 2);
    result text := '';
    i integer := 1;
    c text;
BEGIN
    WHILE i <= length(body) LOOP
        c := substr(body, i, 1);
        IF c = '\' AND i < length(body) THEN
            i := i + 1;
            c := substr(body, i, 1);
            IF c = '0' THEN
                RETURN NULL;
            END IF;
            c := CASE c WHEN 'n' THEN E'\n' WHEN 'r' THEN E'\r' WHEN 't' THEN E'\t'
                        WHEN 'b' THEN E'\b' WHEN 'Z' THEN chr(26) ELSE c END;
        ELSIF c = '''' AND substr(body, i + 1, 1) = '''' THEN
            i := i + 1;
        END IF;
        result := result || c;
        i := i + 1;
    END LOOP;
    RETURN result;
END
$$;

--
-- The target's default for a MySQL column default, as an expression
-- (NULL: none), or why there is none (problem).  MariaDB quotes string
-- constants and writes an expression as it is; MySQL writes constants bare
-- and marks expressions DEFAULT_GENERATED.  A constant is kept when it is a
-- value of the column's type; CURRENT_TIMESTAMP (NOW(), ...) and CURDATE()
-- become CURRENT_TIMESTAMP and CURRENT_DATE; no other expression is
-- translated.  TIMESTAMP constants are in UTC, the time zone of our
-- sessions on MySQL.
--
CREATE OR REPLACE FUNCTION etl_stream._target_default(mysql_default text, extra text, pg_type text,
                                                     mariadb boolean,
                                                     OUT expr text, OUT problem text)
LANGUAGE plpgsql AS $$
DECLARE
    d text := btrim(mysql_default);
    value text;
    is_expression boolean;
BEGIN
    IF d IS NULL OR (mariadb AND upper(d) = 'NULL') THEN
        RETURN;
    END IF;
    IF mariadb THEN
        is_expression := d !~ '^''.*''$' AND d !~* '^b''[01]*''$'
                         AND d !~ '^[-+]?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$';
    ELSE
        is_expression := coalesce(extra, '') ~* 'DEFAULT_GENERATED'
                         OR d ~* '^current_timestamp(\([0-6]?\))?$';
    END IF;

    IF is_expression THEN
        IF d ~* '^\(?(current_timestamp|now|localtimestamp|localtime)(\([0-6]?\))?\)?$'
           AND pg_type ~ '^timestamp' THEN
            expr := 'CURRENT_TIMESTAMP';
        ELSIF d ~* '^\(?(curdate|current_date)(\(\))?\)?$' AND pg_type = 'date' THEN
            expr := 'CURRENT_DATE';
        ELSE
            problem := 'an expression';
        END IF;
        RETURN;
    END IF;

    value := CASE WHEN mariadb AND d ~ '^''' THEN etl_stream._mysql_unquote(d)
                  WHEN d ~* '^b''[01]*''$' THEN substr(d, 3, length(d) - 3)
                  ELSE d END;
    IF value IS NULL THEN
        problem := 'a character text cannot hold';
        RETURN;
    END IF;
    IF pg_type = 'text[]' THEN
        value := (CASE WHEN value = '' THEN '{}'::text[] ELSE string_to_array(value, ',') END)::text;
    ELSIF pg_type = 'bytea' THEN
        value := '\x' || encode(convert_to(value, 'UTF8'), 'hex');
    ELSIF pg_type ~ '^timestamp.* with time zone$' THEN
        value := value || '+00';
    END IF;
    BEGIN
        EXECUTE format('SELECT %L::%s', value, pg_type);
    EXCEPTION WHEN data_exception THEN
        problem := format('not a value of type %s', pg_type);
        RETURN;
    END;
    expr := quote_literal(value);
END
$$;

--
-- create_target: the target table from the source's definition: natural
-- types, NOT NULL where MySQL has it, the defaults that translate, the key
-- as primary key, MySQL's other unique keys as unique constraints, an
-- index on the watermark.  What it cannot carry (expression defaults, ON
-- UPDATE, prefix and full-text indexes, unique keys over columns not
-- moved) is named in one NOTICE.  Rows are kept whole in their page while
-- they fit (toast_tuple_target = 8160): a row over PostgreSQL's 2 kB
-- threshold is otherwise compressed column by column on every write, which
-- costs a wide table's load twice its time and, for rows that do not
-- compress much, saves no space (docs/benchmark.md); compress => true
-- keeps PostgreSQL's default.
--
CREATE OR REPLACE FUNCTION etl_stream.create_target(name text, compress boolean DEFAULT false)
RETURNS regclass
LANGUAGE plpgsql AS $$
DECLARE
    t etl_stream.tables := etl_stream._get(name);
    target text := etl_stream._target_name(t);
    src text := etl_stream._source_name(t);
    where_table text;
    mariadb boolean;
    defs text[] := '{}';
    left_out text[] := '{}';
    c record;
    k record;
    d record;
BEGIN
    PERFORM etl_stream._check_column_names(t);
    where_table := format('TABLE_SCHEMA = %s AND TABLE_NAME = %s',
                          CASE WHEN t.source_schema IS NULL THEN 'DATABASE()'
                               ELSE etl_stream.mysql_literal(t.source_schema) END,
                          etl_stream.mysql_literal(t.source_table));
    mariadb := (SELECT p.version FROM etl_stream.ping(t.server) p) ~* 'mariadb';

    -- the moved columns, with what MySQL declares of each
    FOR c IN
        SELECT u.col, u.ty, s.is_nullable, s.column_default, s.extra
          FROM unnest(t.columns, t.column_types) WITH ORDINALITY u(col, ty, o)
          LEFT JOIN etl_stream.query(t.server, format(
                 'SELECT COLUMN_NAME, IS_NULLABLE, COLUMN_DEFAULT, EXTRA
                    FROM information_schema.COLUMNS WHERE %s', where_table))
               AS s(col text, is_nullable text, column_default text, extra text)
            ON s.col = etl_stream._source_column(t, u.col)
         ORDER BY u.o
    LOOP
        d := etl_stream._target_default(c.column_default, c.extra, c.ty, mariadb);
        defs := defs || (format('%I %s', c.col, c.ty)
                         || CASE WHEN c.is_nullable = 'NO' THEN ' NOT NULL' ELSE '' END
                         || coalesce(' DEFAULT ' || d.expr, ''));
        IF d.problem IS NOT NULL THEN
            left_out := left_out || format('default %s of column "%s" (%s)',
                                           c.column_default, c.col, d.problem);
        END IF;
        IF c.extra ~* 'on update' THEN
            left_out := left_out || format('%s of column "%s" (PostgreSQL has no ON UPDATE; the values come from the source)',
                                           upper(substring(c.extra FROM '(?i)on update [^ ]+')), c.col);
        END IF;
    END LOOP;
    -- deletes => 'flag': when a row left MySQL (NULL: it has not)
    IF t.deletes = 'flag' THEN
        defs := defs || '_deleted_at timestamptz'::text;
    END IF;
    IF cardinality(t.key_columns) > 0 THEN
        defs := defs || format('PRIMARY KEY (%s)',
                               (SELECT string_agg(format('%I', kc), ', ') FROM unnest(t.key_columns) kc));
    END IF;

    -- MySQL's unique keys besides the one that became the primary key
    -- (cols: named as in PostgreSQL, column_map applied)
    FOR k IN
        SELECT s.index_name, max(s.index_type) AS index_type, bool_and(s.non_unique = 0) AS is_unique,
               array_agg(coalesce(t.columns[array_position(t.source_names, s.col)], s.col) ORDER BY s.seq) AS cols,
               string_agg(s.col || coalesce('(' || s.sub_part || ')', ''), ', ' ORDER BY s.seq) AS shown,
               bool_or(s.sub_part IS NOT NULL) AS prefix
          FROM etl_stream.query(t.server, format(
                 'SELECT INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, INDEX_TYPE
                    FROM information_schema.STATISTICS WHERE %s', where_table))
               AS s(index_name text, non_unique bigint, seq bigint, col text, sub_part bigint, index_type text)
         GROUP BY s.index_name
         ORDER BY s.index_name
    LOOP
        IF k.index_type IN ('FULLTEXT', 'SPATIAL') THEN
            left_out := left_out || format('%s index "%s" on (%s)', k.index_type, k.index_name, k.shown);
        ELSIF NOT k.is_unique OR (cardinality(t.key_columns) > 0 AND k.cols @> t.key_columns) THEN
            CONTINUE;           -- not unique, or implied by the primary key
        ELSIF k.prefix THEN
            left_out := left_out || format('%s on (%s) (a prefix)',
                                           CASE WHEN k.index_name = 'PRIMARY' THEN 'MySQL''s primary key'
                                                ELSE format('unique key "%s"', k.index_name) END,
                                           k.shown);
        ELSIF NOT k.cols <@ t.columns THEN
            left_out := left_out || format('%s on (%s) (not every column is moved)',
                                           CASE WHEN k.index_name = 'PRIMARY' THEN 'MySQL''s primary key'
                                                ELSE format('unique key "%s"', k.index_name) END,
                                           k.shown);
        ELSE
            defs := defs || format('UNIQUE (%s)',
                                   (SELECT string_agg(format('%I', x), ', ') FROM unnest(k.cols) x));
        END IF;
    END LOOP;

    EXECUTE format('CREATE TABLE %s (%s)%s', target, array_to_string(defs, ', '),
                   CASE WHEN compress THEN '' ELSE ' WITH (toast_tuple_target = 8160)' END);
    IF t.watermark IS NOT NULL AND t.watermark <> ALL (t.key_columns[1:1]) THEN
        EXECUTE format('CREATE INDEX ON %s (%I)', target, t.watermark);
    END IF;
    IF left_out <> '{}' THEN
        RAISE NOTICE 'target % does not carry everything MySQL table % declares', target, src
            USING DETAIL = format('Not carried: %s.', array_to_string(left_out, '; '));
    END IF;
    RETURN target::regclass;
END
$$;

--
-- At each run, before pulling: the source's columns now (one LIMIT 0
-- query: metadata only) against the registration.  A moved column gone
-- from the source fails the run, whatever on_schema_change says.  Columns
-- new on the source: 'fail' fails the run, 'warn' warns at every run until
-- the registration takes them in, 'add_columns' adds them to the target
-- (staging follows it) and to the registration, so this run moves them.
-- A moved column whose natural type changed: 'fail' fails, else a warning
-- and the registration records the new type (the conversion decides
-- whether the values fit the target's column).  A column not moved that
-- is gone is noted.  may_change false (a backfill's slice, which shares
-- the registration with other slices): only checks and warns.  note: what
-- changed and what was done, for the run's record; changed: the
-- registration's columns changed, and the run's plan must be made again.
--
CREATE OR REPLACE FUNCTION etl_stream._check_source_columns(t etl_stream.tables, may_change boolean,
                                                           OUT note text, OUT changed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    src text := etl_stream._source_name(t);
    names text[];
    types text[];
    known text[];
    lnames text[];
    lknown text[];
    -- the moved columns as MySQL names them (column_map may rename them)
    srccols text[] := ARRAY(SELECT etl_stream._source_column(t, c)
                              FROM unnest(t.columns) WITH ORDINALITY u(c, o) ORDER BY o);
    lcolumns text[] := lower(srccols::text)::text[];
    added text[];
    added_types text[];
    added_shown text;
    gone_moved text[];
    gone_other text[];
    retyped text[];
    new_types text[];
    notes text[] := '{}';
    adding boolean;
    target regclass;
BEGIN
    changed := false;
    SELECT array_agg(d.name ORDER BY d.position), array_agg(d.natural_type ORDER BY d.position)
      INTO names, types
      FROM etl_stream.describe(t.server, format('SELECT * FROM %s LIMIT 0', src)) d;
    -- a registration made before 0.5.0 takes in the source as it is now
    known := coalesce(t.source_columns, names);
    -- MySQL's column names are case-insensitive: Note is still note
    lnames := lower(names::text)::text[];
    lknown := lower(known::text)::text[];

    SELECT array_agg(c ORDER BY o), array_agg(types[o] ORDER BY o),
           string_agg(format('"%s" (%s)', c, types[o]), ', ' ORDER BY o)
      INTO added, added_types, added_shown
      FROM unnest(names) WITH ORDINALITY u(c, o)
     WHERE lower(c) <> ALL (lknown) AND lower(c) <> ALL (lcolumns);
    SELECT array_agg(c ORDER BY o) INTO gone_moved
      FROM unnest(srccols) WITH ORDINALITY u(c, o) WHERE lower(c) <> ALL (lnames);
    SELECT array_agg(c ORDER BY o) INTO gone_other
      FROM unnest(known) WITH ORDINALITY u(c, o)
     WHERE lower(c) <> ALL (lnames) AND lower(c) <> ALL (lcolumns);
    SELECT array_agg(format('"%s" %s -> %s', c, ty, types[array_position(lnames, lower(c))]) ORDER BY o)
      INTO retyped
      FROM unnest(srccols, t.column_types) WITH ORDINALITY u(c, ty, o)
     WHERE types[array_position(lnames, lower(c))] <> ty;

    IF gone_moved IS NOT NULL THEN
        RAISE EXCEPTION 'MySQL table % has no column %, which etl_stream table "%" moves',
                src, (SELECT string_agg(format('"%s"', c), ', ') FROM unnest(gone_moved) c), t.name
            USING ERRCODE = 'undefined_column',
                  DETAIL = 'The column was removed or renamed on the source. The run stopped before pulling: the target and the watermark are as they were.',
                  HINT = 'The target keeps the column. To move the other columns, register the table again without it: etl_stream.drop_table, etl_stream.add_table with columns => ..., and etl_stream.alter_table with high_watermark => ... to keep the watermark.';
    END IF;
    IF added IS NULL AND retyped IS NULL AND gone_other IS NULL THEN
        IF t.source_columns IS NULL AND may_change THEN
            UPDATE etl_stream.tables x SET source_columns = names WHERE x.name = t.name;
        END IF;
        RETURN;
    END IF;

    adding := added IS NOT NULL AND t.on_schema_change = 'add_columns' AND may_change;
    IF added IS NOT NULL THEN
        notes := notes || format('new column%s %s%s', CASE WHEN cardinality(added) > 1 THEN 's' ELSE '' END,
                                 added_shown,
                                 CASE WHEN adding THEN ': added to the target, moved from this run on'
                                      ELSE ': not moved' END);
    END IF;
    IF retyped IS NOT NULL THEN
        notes := notes || format('type changed: %s', array_to_string(retyped, ', '));
    END IF;
    IF gone_other IS NOT NULL THEN
        notes := notes || format('removed (not moved): %s',
                                 (SELECT string_agg(format('"%s"', c), ', ') FROM unnest(gone_other) c));
    END IF;
    note := array_to_string(notes, '; ');

    IF t.on_schema_change = 'fail' AND (added IS NOT NULL OR retyped IS NOT NULL) THEN
        RAISE EXCEPTION 'the columns of MySQL table % changed since etl_stream table "%" took them in', src, t.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('%s. The run stopped before pulling: the target and the watermark are as they were.', note),
                  HINT = format('etl_stream.alter_table(%L, on_schema_change => ''add_columns'') adds new columns to the target; ''warn'' goes on without them.', t.name);
    END IF;

    IF may_change THEN
        IF adding THEN
            target := etl_stream._target_name(t)::regclass;
            FOR i IN 1..cardinality(added) LOOP
                IF octet_length(added[i]) > 63 THEN
                    RAISE EXCEPTION 'new column "%" of MySQL table % has a name longer than PostgreSQL allows', added[i], src
                        USING ERRCODE = 'name_too_long',
                              DETAIL = 'PostgreSQL names are at most 63 bytes. The run stopped before pulling: the target and the watermark are as they were.',
                              HINT = format('Rename the column on the source, or set etl_stream.alter_table(%L, on_schema_change => ''warn'') to go on without it.', t.name);
                END IF;
                IF NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = target AND a.attname = added[i]
                                                            AND a.attnum > 0 AND NOT a.attisdropped) THEN
                    EXECUTE format('ALTER TABLE %s ADD COLUMN %I %s', target, added[i], added_types[i]);
                END IF;
            END LOOP;
        END IF;
        SELECT array_agg(coalesce(types[array_position(lnames, lower(c))], ty) ORDER BY o) INTO new_types
          FROM unnest(srccols, t.column_types) WITH ORDINALITY u(c, ty, o);
        -- what the registration takes in: new types, columns gone, and
        -- with add_columns the new columns; with warn, new columns stay new
        UPDATE etl_stream.tables x
           SET columns = t.columns || CASE WHEN adding THEN added ELSE '{}' END,
               column_types = new_types || CASE WHEN adding THEN added_types ELSE '{}' END,
               source_columns = ARRAY(SELECT c FROM unnest(known) c WHERE lower(c) = ANY (lnames))
                                || CASE WHEN adding THEN added ELSE '{}' END,
               -- a new column keeps its MySQL name in PostgreSQL
               source_names = CASE WHEN t.source_names IS NOT NULL AND adding
                                   THEN t.source_names || added ELSE t.source_names END
         WHERE x.name = t.name;
        changed := true;
    END IF;

    IF adding AND retyped IS NULL AND gone_other IS NULL THEN
        RAISE NOTICE 'etl_stream table "%" moves new columns of MySQL table % from this run on', t.name, src
            USING DETAIL = format('%s.', note),
                  HINT = 'Rows synced before keep NULL in them until they change on the source, or until a full refresh.';
    ELSIF added IS NOT NULL AND NOT adding THEN
        RAISE WARNING 'the columns of MySQL table % changed since etl_stream table "%" took them in', src, t.name
            USING DETAIL = format('%s.', note),
                  HINT = format('etl_stream.alter_table(%L, on_schema_change => ''add_columns'') moves new columns from the next run on.', t.name);
    ELSE
        RAISE WARNING 'the columns of MySQL table % changed since etl_stream table "%" took them in', src, t.name
            USING DETAIL = format('%s.', note);
    END IF;
END
$$;
