--
-- Views for people: the state of each registered table, and the runs going
-- on right now.
--

-- status: one row per registered table of the roles whose privileges the
-- caller has (the catalog is read as the caller: its row level security);
-- only runs of the registration's owner count, so a run row another role
-- wrote under the table's name cannot pass for one of its runs
CREATE OR REPLACE VIEW etl_stream.status WITH (security_invoker = true) AS
SELECT t.name,
       t.enabled,
       t.strategy,
       t.watermark,
       t.high_watermark AS current_watermark,
       etl_stream._watermark_lag(t.watermark_kind, t.high_watermark) AS watermark_lag,
       ok.finished_at AS last_success,
       now() - ok.finished_at AS since_last_success,
       last.status AS last_status,
       last.rows_pulled AS last_rows_pulled,
       last.rows_inserted + last.rows_updated + last.rows_deleted + last.rows_flagged AS last_rows_changed,
       last.finished_at - last.started_at AS last_duration,
       last.attempt AS last_attempt,
       retried.error AS retry_error,
       bad.finished_at AS last_failure,
       bad.error AS last_error,
       m.target_size,
       m.target_dead_share,
       m.target_last_vacuum,
       m.target_last_analyze,
       pg_total_relation_size(to_regclass(etl_stream._staging_name(t))) AS staging_size,
       -- what the policies did in the last run: values changed, rows left out
       (SELECT sum((v.value ->> 'count')::bigint) FROM jsonb_each(last.values_changed) v)
           AS last_values_changed,
       last.rows_rejected AS last_rows_rejected
  FROM etl_stream.tables t
  -- maintenance: the target's size with its indexes and TOAST, the share of
  -- dead row versions, and when it was last vacuumed and analyzed (by hand
  -- or by autovacuum).  For a partitioned target, over its partitions: sizes
  -- and dead rows added up, the oldest partition's vacuum and analyze (NULL
  -- while one never was).
  LEFT JOIN LATERAL (
      SELECT sum(pg_total_relation_size(p.relid)) AS target_size,
             round(sum(s.n_dead_tup)::numeric / nullif(sum(s.n_live_tup + s.n_dead_tup), 0), 3) AS target_dead_share,
             CASE WHEN count(greatest(s.last_vacuum, s.last_autovacuum)) = count(*)
                  THEN min(greatest(s.last_vacuum, s.last_autovacuum)) END AS target_last_vacuum,
             CASE WHEN count(greatest(s.last_analyze, s.last_autoanalyze)) = count(*)
                  THEN min(greatest(s.last_analyze, s.last_autoanalyze)) END AS target_last_analyze
        FROM (SELECT to_regclass(etl_stream._target_name(t)) AS relid
               WHERE (SELECT relkind FROM pg_class WHERE oid = to_regclass(etl_stream._target_name(t))) <> 'p'
              UNION
              SELECT relid FROM pg_partition_tree(to_regclass(etl_stream._target_name(t))) WHERE isleaf) p
        LEFT JOIN pg_stat_all_tables s ON s.relid = p.relid) m ON true
  LEFT JOIN LATERAL (SELECT * FROM etl_stream.runs r WHERE r.table_name = t.name AND r.owner = t.owner
                      ORDER BY r.finished_at DESC LIMIT 1) last ON true
  -- (a range of sweep_deletes brings no data: the last success is a sync's)
  LEFT JOIN LATERAL (SELECT * FROM etl_stream.runs r WHERE r.table_name = t.name AND r.owner = t.owner AND r.status = 'success'
                        AND r.strategy IS DISTINCT FROM 'sweep_deletes'
                      ORDER BY r.finished_at DESC LIMIT 1) ok ON true
  LEFT JOIN LATERAL (SELECT * FROM etl_stream.runs r WHERE r.table_name = t.name AND r.owner = t.owner
                        AND r.status IN ('failed', 'timed_out', 'cancelled')
                      ORDER BY r.finished_at DESC LIMIT 1) bad ON true
  -- the last run was a retry: the error of the first attempt, which caused it
  LEFT JOIN LATERAL (SELECT * FROM etl_stream.runs r WHERE r.table_name = t.name AND r.owner = t.owner
                        AND last.attempt > 1 AND r.run_id < last.run_id AND r.attempt = 1
                      ORDER BY r.run_id DESC LIMIT 1) retried ON true;

COMMENT ON VIEW etl_stream.status IS
  'per registered table: watermark, how far behind, last success, last run and its attempt, the error retried, last error, values changed and rows rejected in the last run, and the target''s size, dead rows and last vacuum and analyze';

--
-- progress: every run going on in this database, from the slots in shared
-- memory each run updates as it goes (src/progress.c): its phase, the rows
-- pulled, landed and merged so far, the rate and the time left.  Runs of
-- roles whose privileges the caller does not have are not shown.  Needs
-- etl_stream in shared_preload_libraries.
--
CREATE OR REPLACE FUNCTION etl_stream._progress(
    OUT pid integer, OUT role name, OUT table_name text, OUT phase text,
    OUT rows_pulled bigint, OUT bytes_pulled bigint, OUT rows_per_s double precision,
    OUT started_at timestamptz, OUT phase_started_at timestamptz,
    OUT rows_estimate bigint, OUT eta interval,
    OUT rows_landed bigint, OUT rows_merged bigint, OUT running_for interval,
    OUT job_id bigint, OUT task_id bigint, OUT slice text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'etl_stream_progress'
LANGUAGE C VOLATILE;

-- (job_eta: the job's time left, at the pace of its tasks done so far)
CREATE OR REPLACE VIEW etl_stream.progress WITH (security_invoker = true) AS
SELECT p.*,
       CASE WHEN j.tasks_done > 0 AND j.tasks_total > j.tasks_done
            THEN (now() - j.started_at) / j.tasks_done * (j.tasks_total - j.tasks_done) END AS job_eta
  FROM etl_stream._progress() p
  LEFT JOIN etl_stream.jobs j ON j.job_id = p.job_id;

-- like pg_stat_activity: a member of etl_stream_user sees the runs of the
-- roles whose privileges it has (sql/objects/95_grants.sql)

COMMENT ON VIEW etl_stream.progress IS
  'runs going on right now: phase, rows pulled and landed so far, rate and time left';
