--
-- Schedules: a pg_cron job per schedule that CALLs run_schedule(name),
-- which syncs the schedule's tables in dependency order, with each table's
-- retries, and fails (so cron.job_run_details says failed) when a table
-- failed in the end.  pg_cron is the clock; etl_stream adds the retries,
-- the timeouts, the order and the view.  pg_cron keeps its jobs in one
-- database (cron.database_name): schedules are made in that database.
--

CREATE OR REPLACE PROCEDURE etl_stream.run_schedule(name text)
AS 'MODULE_PATHNAME', 'etl_stream_run_schedule'
LANGUAGE C;

COMMENT ON PROCEDURE etl_stream.run_schedule(text) IS
  'what a schedule''s pg_cron job runs: its tables in dependency order, with retries; fails if one failed';

-- The name of a schedule's job in cron.job
CREATE OR REPLACE FUNCTION etl_stream._cron_job_name(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'etl_stream.' || name;

-- pg_cron in this database, or a clear error saying why not
CREATE OR REPLACE FUNCTION etl_stream._require_pg_cron() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    cron_db text := current_setting('cron.database_name', true);
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RETURN;
    END IF;
    IF cron_db IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'pg_cron is not loaded in this server.',
                  HINT = 'Add pg_cron to shared_preload_libraries, restart, and CREATE EXTENSION pg_cron in the database cron.database_name names.';
    ELSIF cron_db <> current_database() THEN
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('pg_cron keeps its jobs in database "%s" (cron.database_name), and runs etl_stream''s schedules there.', cron_db),
                  HINT = format('Make the schedules in database "%s", with etl_stream installed there.', cron_db);
    ELSE
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'CREATE EXTENSION pg_cron;';
    END IF;
END
$$;

-- Schedule names are one namespace (pg_cron's job names are made of
-- them), whoever owns them: whether a name is taken, seen through every
-- role's rows
CREATE OR REPLACE FUNCTION etl_stream._schedule_exists(name text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT FROM etl_stream.schedule_defs s WHERE s.name = _schedule_exists.name);

--
-- schedule: make (or replace) a schedule and its pg_cron job; the job id.
-- tables NULL: every table enabled when it runs.  parallel > 1: in that
-- many background workers, as sync_all(parallel => n).
--
CREATE OR REPLACE FUNCTION etl_stream.schedule(name text, cron text, tables text[] DEFAULT NULL,
                                               parallel integer DEFAULT 1)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    missing text[];
    job bigint;
BEGIN
    PERFORM etl_stream._require_pg_cron();
    IF name IS NULL OR name !~ '^[A-Za-z0-9_.-]{1,48}$' THEN
        RAISE EXCEPTION 'invalid etl_stream schedule name "%"', name
            USING ERRCODE = 'invalid_name',
                  HINT = 'Use 1 to 48 letters, digits, "_", "." or "-".';
    END IF;
    IF parallel IS NULL OR parallel < 1 THEN
        RAISE EXCEPTION 'parallel must be at least 1, not %', parallel
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(n ORDER BY n) INTO missing
      FROM unnest(tables) n WHERE NOT EXISTS (SELECT FROM etl_stream.tables t WHERE t.name = n);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'etl_stream table % does not exist', array_to_string(missing, ', ')
            USING ERRCODE = 'undefined_object',
                  HINT = 'Registered tables are listed in etl_stream.tables.';
    END IF;
    IF parallel > 1 THEN
        PERFORM etl_stream._check_worker_role(current_user);
    END IF;
    IF EXISTS (SELECT FROM etl_stream.schedule_defs s WHERE s.name = schedule.name) THEN
        UPDATE etl_stream.schedule_defs s
           SET cron = schedule.cron, tables = schedule.tables, parallel = schedule.parallel
         WHERE s.name = schedule.name;
    ELSIF etl_stream._schedule_exists(name) THEN
        RAISE EXCEPTION 'etl_stream schedule "%" already exists', name
            USING ERRCODE = 'duplicate_object',
                  DETAIL = 'It belongs to a role whose privileges you do not have.',
                  HINT = 'Schedule names are shared by all roles in the database: choose another.';
    ELSE
        INSERT INTO etl_stream.schedule_defs (name, cron, tables, parallel)
        VALUES (schedule.name, schedule.cron, schedule.tables, schedule.parallel);
    END IF;
    -- pg_cron checks the expression; the same name replaces its job
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job
      USING etl_stream._cron_job_name(name), cron,
            format('CALL etl_stream.run_schedule(%L)', name);
    RETURN job;
END
$$;

COMMENT ON FUNCTION etl_stream.schedule(text, text, text[], integer) IS
  'sync tables (NULL: every enabled one) in dependency order on a pg_cron schedule, with retries';

-- unschedule: the schedule and its pg_cron job are gone
CREATE OR REPLACE FUNCTION etl_stream.unschedule(name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    job bigint;
BEGIN
    DELETE FROM etl_stream.schedule_defs s WHERE s.name = unschedule.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'etl_stream schedule "%" does not exist', name
            USING ERRCODE = 'undefined_object',
                  HINT = 'Your schedules are listed in etl_stream.schedules.';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        EXECUTE 'SELECT jobid FROM cron.job WHERE jobname = $1 AND username = current_user'
           INTO job USING etl_stream._cron_job_name(name);
        IF job IS NOT NULL THEN
            EXECUTE 'SELECT cron.unschedule($1)' USING job;
        END IF;
    END IF;
END
$$;

--
-- The values one field of a cron expression allows, between lo and hi
-- (names of months and days too), or NULL when it is not understood.
--
CREATE OR REPLACE FUNCTION etl_stream._cron_field(field text, lo integer, hi integer)
RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    names text[] := CASE hi WHEN 12 THEN ARRAY['jan','feb','mar','apr','may','jun',
                                               'jul','aug','sep','oct','nov','dec']
                            WHEN 7 THEN ARRAY['sun','mon','tue','wed','thu','fri','sat'] END;
    part text;
    m text[];
    a integer;
    b integer;
    step integer;
    vals integer[] := '{}';
    f text := lower(field);
BEGIN
    FOR i IN 1 .. coalesce(cardinality(names), 0) LOOP
        f := replace(f, names[i], (i - 1 + CASE hi WHEN 12 THEN 1 ELSE 0 END)::text);
    END LOOP;
    FOREACH part IN ARRAY string_to_array(f, ',') LOOP
        m := regexp_match(part, '^(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?$');
        IF m IS NULL THEN
            RETURN NULL;
        END IF;
        IF m[1] = '*' THEN
            a := lo; b := hi;
        ELSE
            a := m[2]::integer;
            b := coalesce(m[3]::integer, CASE WHEN m[4] IS NULL THEN a ELSE hi END);
        END IF;
        step := coalesce(m[4]::integer, 1);
        IF a < lo OR b > hi OR a > b OR step < 1 THEN
            RETURN NULL;
        END IF;
        vals := vals || ARRAY(SELECT generate_series(a, b, step));
    END LOOP;
    RETURN ARRAY(SELECT DISTINCT v FROM unnest(vals) v ORDER BY v);
END
$$;

--
-- When pg_cron will next start a job with this schedule after a moment
-- (pg_cron 1.4 reads schedules in UTC), or NULL when that cannot be told.
-- Day of month and day of week as cron has them: when both are
-- restricted, either one matching is enough.
--
CREATE OR REPLACE FUNCTION etl_stream._cron_next(cron text, after timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    expr text := CASE lower(btrim(cron))
                   WHEN '@yearly' THEN '0 0 1 1 *' WHEN '@annually' THEN '0 0 1 1 *'
                   WHEN '@monthly' THEN '0 0 1 * *' WHEN '@weekly' THEN '0 0 * * 0'
                   WHEN '@daily' THEN '0 0 * * *' WHEN '@midnight' THEN '0 0 * * *'
                   WHEN '@hourly' THEN '0 * * * *' ELSE btrim(cron) END;
    f text[] := regexp_split_to_array(expr, '\s+');
    minutes integer[];
    hours integer[];
    doms integer[];
    months integer[];
    dows integer[];
    start timestamp := date_trunc('minute', after AT TIME ZONE 'UTC') + interval '1 minute';
    d date;
    t timestamp;
    h integer;
    m integer;
BEGIN
    IF cardinality(f) <> 5 THEN
        RETURN NULL;            -- @reboot, or not a schedule we read
    END IF;
    minutes := etl_stream._cron_field(f[1], 0, 59);
    hours := etl_stream._cron_field(f[2], 0, 23);
    doms := etl_stream._cron_field(f[3], 1, 31);
    months := etl_stream._cron_field(f[4], 1, 12);
    dows := ARRAY(SELECT DISTINCT v % 7 FROM unnest(etl_stream._cron_field(f[5], 0, 7)) v ORDER BY 1);
    IF minutes IS NULL OR hours IS NULL OR doms IS NULL OR months IS NULL OR dows IS NULL THEN
        RETURN NULL;
    END IF;
    FOR i IN 0 .. 366 * 4 LOOP
        d := start::date + i;
        CONTINUE WHEN extract(month FROM d)::integer <> ALL (months);
        CONTINUE WHEN NOT CASE
            WHEN f[3] LIKE '*%' AND f[5] LIKE '*%' THEN true
            WHEN f[3] LIKE '*%' THEN extract(dow FROM d)::integer = ANY (dows)
            WHEN f[5] LIKE '*%' THEN extract(day FROM d)::integer = ANY (doms)
            ELSE extract(day FROM d)::integer = ANY (doms) OR extract(dow FROM d)::integer = ANY (dows)
        END;
        FOREACH h IN ARRAY hours LOOP
            FOREACH m IN ARRAY minutes LOOP
                t := d + make_interval(hours => h, mins => m);
                IF t >= start THEN
                    RETURN t AT TIME ZONE 'UTC';
                END IF;
            END LOOP;
        END LOOP;
    END LOOP;
    RETURN NULL;
END
$$;

-- The caller's pg_cron jobs of schedules, with their last run, if pg_cron is here
CREATE OR REPLACE FUNCTION etl_stream._cron_jobs(
    OUT jobname text, OUT jobid bigint, OUT active boolean, OUT last_start timestamptz,
    OUT last_end timestamptz, OUT last_status text, OUT last_message text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT j.jobname::text, j.jobid, j.active, d.start_time, d.end_time, d.status, d.return_message
           FROM cron.job j
           LEFT JOIN LATERAL (SELECT * FROM cron.job_run_details r WHERE r.jobid = j.jobid
                               ORDER BY r.runid DESC LIMIT 1) d ON true
          WHERE j.jobname LIKE ''etl\_stream.%'' AND j.username = current_user';
END
$$;

-- schedules: one row per schedule of the roles whose privileges you have
CREATE OR REPLACE VIEW etl_stream.schedules WITH (security_invoker = true) AS
SELECT s.name, s.cron, s.tables, s.parallel, s.owner,
       j.jobid AS cron_job_id, j.active,
       j.last_start, j.last_end, j.last_status AS last_outcome, j.last_message,
       CASE WHEN coalesce(j.active, true) THEN etl_stream._cron_next(s.cron, now()) END AS next_due
  FROM etl_stream.schedule_defs s
  LEFT JOIN etl_stream._cron_jobs() j ON j.jobname = etl_stream._cron_job_name(s.name);

COMMENT ON VIEW etl_stream.schedules IS
  'each schedule with its pg_cron job, the last start and outcome, and when it is next due';
-- (read as the caller; granted in sql/objects/95_grants.sql)
