/*-------------------------------------------------------------------------
 *
 * etl_stream.h
 *		  Types and functions shared by the files of etl_stream.
 *
 * Data flows through the files in this order: a run (run.c) or a direct
 * SQL call (query.c) reads a source definition (options.c), opens or
 * reuses a connection to MySQL (connection.c), streams rows whose values
 * are converted (mysql_types.c, convert.c) and landed in a table
 * (land.c); a run then merges staging into the target and records itself
 * (run.c, run_record.c), and reports its progress as it goes
 * (progress.c).  Around the run: sync_all.c runs every table, in
 * dependency order, in this backend or in background workers, and
 * workers.c starts those workers and runs a job's tasks (a backfill's
 * slices, a parallel sync_all's tables) through the same run.
 *
 * Only the files that talk to MySQL include mysql.h, through source.h;
 * this header is free of it.
 *
 * IDENTIFICATION
 *		  src/etl_stream.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_STREAM_H
#define ETL_STREAM_H

#include "postgres.h"

#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/elog.h"
#include "utils/timestamp.h"

/* What to do with MySQL dates that PostgreSQL cannot represent */
typedef enum InvalidDatePolicy
{
	INVALID_DATES_NULL,			/* '0000-00-00', '2024-02-30' -> NULL */
	INVALID_DATES_ERROR,		/* ... -> ERROR naming column and value */
	INVALID_DATES_NEG_INFINITY	/* ... -> '-infinity' */
} InvalidDatePolicy;

/* What a run does with a row holding a value that cannot be converted */
typedef enum BadValuePolicy
{
	BAD_VALUE_ERROR,			/* the run fails (the default) */
	BAD_VALUE_SKIP,				/* the row is left out, counted and named */
	BAD_VALUE_QUARANTINE		/* ... and kept in etl_stream.rejects */
} BadValuePolicy;

typedef enum SslMode
{
	SSL_MODE_DISABLE,
	SSL_MODE_PREFERRED,
	SSL_MODE_REQUIRED,
	SSL_MODE_VERIFY_CA,
	SSL_MODE_VERIFY_IDENTITY
} SslMode;

/*
 * Everything needed to connect to one MySQL source, merged from the
 * server's options and the user mapping's.  Every string is a copy
 * palloc'd in the context that was current when get_source_options() ran.
 */
typedef struct SourceOptions
{
	char	   *server_name;	/* the foreign server's name */
	char	   *host;
	int			port;
	char	   *dbname;
	char	   *unix_socket;
	int			connect_timeout;	/* seconds, whole connect sequence */
	int			read_timeout;	/* seconds, 0 = wait for ever */
	int			write_timeout;	/* seconds, 0 = wait for ever */
	SslMode		ssl_mode;
	char	   *ssl_ca;
	char	   *ssl_capath;
	char	   *ssl_cert;
	char	   *ssl_key;
	char	   *ssl_cipher;
	char	   *charset;		/* MySQL character set name */
	int			charset_encoding;	/* the same as a PostgreSQL encoding */
	char	   *init_command;
	InvalidDatePolicy invalid_dates;
	char	   *user;
	char	   *password;		/* never printed anywhere */
	bool		password_required;	/* false: a superuser waived the checks */
} SourceOptions;

/*
 * A value that could not be converted, as facts: what convert.c reports in
 * its error message, and what a run records in etl_stream.runs.  Filled in
 * just before the error is raised, with strings copied into cxt.
 */
typedef struct ValueError
{
	bool		set;			/* a conversion failed and filled this in */
	int			sqlerrcode;
	char	   *column;			/* the PostgreSQL column */
	char	   *mysql_type;		/* the MySQL type, as declared: "VARCHAR(60)" */
	char	   *key;			/* the row: "(id)=(42)", NULL without a key */
	int64		row;			/* the row's number in the result, from 1 */
	char	   *value;			/* as shown in the message; NULL for NULL */
	MemoryContext cxt;			/* where the strings go */
} ValueError;

/*
 * Values of one column a policy changed (invalid_dates), or rows left out
 * for a value of the column that did not convert (on_bad_value): how many,
 * and the first of them.
 */
typedef struct ValueNote
{
	char	   *column;
	bool		rejected;		/* rows left out, else values changed */
	const char *policy;			/* "invalid_dates 'null'", "on_bad_value 'skip'" */
	const char *changed_to;		/* "NULL", "-infinity"; NULL if rejected */
	int64		count;
	char	   *first_key;		/* "(id)=(42)", NULL without a key */
	int64		first_row;		/* its number in the result */
	char	   *first_value;	/* as shown */
	char	   *first_reason;	/* rejected: the error's message */
} ValueNote;

/* What a landing has done so far; updated as rows arrive */
typedef struct LandCounts
{
	int64		rows_pulled;	/* read from MySQL */
	int64		rows_landed;	/* written to the table */
	int64		bytes_pulled;	/* of values, as they came over the wire */
	int64		rows_rejected;	/* left out by on_bad_value */
	List	   *notes;			/* of ValueNote, once the landing is done */
} LandCounts;

/*
 * A row left out by on_bad_value 'quarantine', for the caller to keep: the
 * value's facts, the error, and the row's key as a JSON object of the key
 * columns' values as MySQL sent them (NULL without a key).
 */
typedef void (*RejectCallback) (const ValueError *ve, const ErrorData *error,
								const char *key_json, void *arg);

/* etl_stream.c: the settings */
extern int	etl_stream_history_days;
extern double etl_stream_analyze_threshold;
extern bool etl_stream_deferred_analyze;
extern int	etl_stream_max_workers;

/* options.c */
extern ForeignServer *lookup_source(const char *server_name);
extern void get_source_options(ForeignServer *server, UserMapping *mapping,
							   SourceOptions *opts);
extern int	mysql_charset_encoding(const char *charset);

/* connection.c: what a run needs from a source without speaking MySQL */
extern double ping_source(ForeignServer *server);
extern int64 estimate_source_rows(ForeignServer *server, const char *sql);

/* land.c */
typedef struct LandRequest
{
	ForeignServer *server;
	const char *sql;			/* the remote query */
	Oid			relid;			/* the table the rows go into */
	List	   *key_columns;	/* names (char *) that identify a row */
	const char *label;			/* names the table in errors; NULL: its name */
	LandCounts *counts;			/* updated as rows arrive; may be NULL */
	ValueError *value_error;	/* filled in by a failed conversion; may be NULL */
	List	   *not_null_columns;	/* names a policy must not make NULL,
									 * besides the table's NOT NULL ones
									 * (the target's, for staging) */
	List	   *raw_columns;	/* text selected as bytes (char *), */
	List	   *raw_charsets;	/* ... and its MySQL charset (char *) */
	BadValuePolicy on_bad_value;	/* not ERROR: value_error must be set */
	RejectCallback on_reject;	/* quarantine: called for each row left out */
	void	   *on_reject_arg;
} LandRequest;

/* convert.c */
extern void warn_value_changed(const ValueNote *n, const char *what);

extern void land_rows(const LandRequest *req);

/* progress.c: one slot in shared memory per run going on */
typedef enum RunPhase
{
	RUN_PHASE_LOCK,				/* waiting for the registration */
	RUN_PHASE_CONNECT,
	RUN_PHASE_PULL,
	RUN_PHASE_MERGE,
	RUN_PHASE_FINISH
} RunPhase;

extern void progress_shmem_request(void);
extern void progress_shmem_init(void);
extern bool progress_begin(const char *table_name, int64 job_id, int64 task_id,
						   const char *slice);
extern bool progress_active(void);
extern void progress_phase(RunPhase phase);
extern void progress_estimate(int64 rows);
extern void progress_pulled(const LandCounts *counts);
extern void progress_merged(int64 rows);
extern void progress_end(void);
extern void progress_failing(const ErrorData *error);

/*
 * A run that ended without its record (cancelled, or its backend
 * terminated), kept in shared memory until a later run records it.
 */
#define ENDED_RUNS			32
#define ENDED_MESSAGE_LEN	256

typedef struct EndedRun
{
	uint64		seq;			/* 0: a free entry */
	int			claimed_by;		/* pid recording it, 0: none */
	int			pid;			/* the backend that ran it */
	Oid			dbid;
	Oid			roleid;
	char		table_name[NAMEDATALEN];
	int64		job_id;
	int64		task_id;
	TimestampTz started_at;
	TimestampTz ended_at;
	RunPhase	phase;
	int64		rows_pulled;
	int64		rows_landed;
	bool		terminated;		/* its backend exited (else: aborted) */
	char		sqlstate[6];	/* "" if not known */
	char		message[ENDED_MESSAGE_LEN];
} EndedRun;

extern int	progress_claim_ended(EndedRun *out, int max);
extern const char *run_phase_name(RunPhase phase);

/* run.c: one run of one registered table */
typedef struct SyncRequest
{
	const char *name;			/* the registration */
	bool		wait;			/* for a run of the table going on */
	const char *range_from;		/* a slice [from, to) instead of the cutoff */
	const char *range_to;
	const char *range_on;		/* the slice's column; NULL: the watermark */
	int			attempt;		/* 1 unless retried */
	int64		job_id;			/* 0 unless a job's task */
	int64		task_id;
	bool		backfill;		/* a slice of a backfill: its own staging, no
								 * direct load, newer rows win, no ANALYZE,
								 * and other slices of the table run too */
	bool		retry_rejects;	/* fetch again the rows of etl_stream.rejects:
								 * staging, merged by key, no watermark move */
	bool		repair;			/* a slice reloaded by repair: delete_insert
								 * of the range whatever the strategy, never
								 * loaded directly (sql/objects/88_verify.sql) */
} SyncRequest;

typedef enum RunStatus
{
	RUN_SUCCESS,
	RUN_FAILED,
	RUN_SKIPPED,
	RUN_TIMED_OUT,				/* stopped at the table's timeout */
	RUN_CANCELLED				/* cancelled or terminated: recorded later */
} RunStatus;

/* A run, as etl_stream.runs records it */
typedef struct SyncRun
{
	const SyncRequest *req;
	char	   *table_name;
	char	   *strategy;
	RunStatus	status;
	RunPhase	phase;			/* where it is, or where it failed */
	TimestampTz started_at;
	TimestampTz finished_at;
	TimestampTz phase_started_at;
	double		phase_s[RUN_PHASE_FINISH + 1];	/* seconds; < 0: not done */
	LandCounts	counts;
	int64		rows_inserted;
	int64		rows_updated;
	int64		rows_unchanged;
	int64		rows_deleted;	/* replaced by delete_insert or full_refresh, or
								 * gone from MySQL (merge, deletes => 'delete') */
	int64		rows_flagged;	/* gone from MySQL (merge, deletes => 'flag') */
	char	   *cutoff;
	char	   *upper_bound;	/* a ranged run's end, exclusive; or NULL */
	char	   *new_watermark;
	const char *load_path;		/* "staging", "direct", or NULL */
	const char *statistics;		/* "in_run", "deferred", or NULL: no ANALYZE */
	const char *skip_reason;
	char	   *schema_changes; /* the source's columns changed: what and
								 * what the run did (on_schema_change) */
	const char *kind;			/* "sync" (NULL) or "transform" */
	char	   *bindings;		/* a transform's literals, as jsonb text */
	ErrorData  *error;			/* why it failed */
	ValueError	value_error;	/* the value that did not convert, if one */
	int64		run_id;			/* taken before the landing (rejects name
								 * it); 0: taken when recorded */
} SyncRun;

extern Datum run_sync(const SyncRequest *req);
extern int64 record_skipped_run(const SyncRequest *req, const char *reason);

/* run.c: statements through SPI, with their arguments */
#define MAX_SQL_ARGS 48

typedef struct SqlArgs
{
	int			n;
	Oid			types[MAX_SQL_ARGS];
	Datum		values[MAX_SQL_ARGS];
	char		nulls[MAX_SQL_ARGS];
} SqlArgs;

extern void sql_arg(SqlArgs *args, Oid type, Datum value, bool isnull);
extern void sql_arg_text(SqlArgs *args, const char *s);
extern void exec_sql(const char *sql, SqlArgs *args);
extern bool call_in_subtransaction(void (*fn) (void *arg), void *arg, ErrorData **error);

/* run_record.c */
extern int64 record_run(SyncRun *run, Datum *row);
extern void warn_failed_run(SyncRun *run);
extern void warn_value_notes(SyncRun *run);
extern void record_ended_runs(void);
extern const char *run_phase_doing(RunPhase phase);

/* workers.c: background workers */
typedef enum WorkerMode
{
	WORKER_TASKS,				/* run a job's tasks */
	WORKER_SYNC_ALL,			/* make a sync_all job, then run its tasks */
	WORKER_ANALYZE				/* ANALYZE one table */
} WorkerMode;

extern void workers_shmem_request(void);
extern void workers_shmem_init(void);
extern bool workers_available(void);
extern void start_workers_at_commit(int64 job_id, int count, Oid roleid);
extern bool analyze_at_commit(Oid relid);
extern int	launch_workers(WorkerMode mode, Oid roleid, int64 job_id, int count,
						   bool wait, int parallel, const char *schedule);
extern void cancel_job_workers(int64 job_id);
extern int	job_worker_count(int64 job_id, bool with_wanted);
extern void require_worker_budget(void);

/* retry.c */
extern int64 retry_delay_ms(Datum run_row);
extern void wait_before_retry(int64 ms, const char *table, int next_attempt);

/* transform.c: the transforms of a sync_all, sync_all_proc or schedule */
typedef struct CallRun
{
	const char *table;			/* a table the call synced */
	const char *status;			/* how its (last) run ended */
	int64		run_id;
} CallRun;

struct Tuplestorestate;
extern int	run_call_transforms(const CallRun *runs, int nruns, bool commit,
								struct Tuplestorestate *rows, StringInfo failures,
								MemoryContext cxt);

/* sync_all.c */
extern void create_sync_all_job(int64 job_id, bool wait, int parallel,
								const char *schedule);

#endif							/* ETL_STREAM_H */
