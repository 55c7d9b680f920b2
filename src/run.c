/*-------------------------------------------------------------------------
 *
 * run.c
 *		  The life of one run of a registered table: lock the registration,
 *		  compute the cutoff, connect, pull, merge by strategy (and follow the
 *		  window's hard deletes), advance the watermark, decide the ANALYZE,
 *		  record the run.
 *
 * run_sync() does all of it inside the current transaction, which the
 * caller owns: etl_stream.sync() runs it in the caller's transaction, so the
 * run commits with it; etl_stream.sync_all_proc() commits after each table;
 * a background worker (workers.c) runs each task of a job, a backfill's
 * slice or a table of a parallel sync_all, in a transaction of its own.  The work
 * after the lock is a subtransaction: if it fails, it is rolled back (target,
 * staging and watermark are as they were), and the run is recorded as
 * failed with what it had done and the error's facts.  A cancel (or
 * statement_timeout) is not the run's to swallow: it is raised on, and the
 * caller's transaction aborts as usual.
 *
 * The statements a run executes are built by SQL functions of the extension
 * (_plan, _prepare_staging, _direct_sql, _swap_in, ...), called through SPI
 * with the locked registration row as their argument; the rows themselves
 * go through land.c, never through SPI.
 *
 * IDENTIFICATION
 *		  src/run.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"

#include "etl_stream.h"

/* The registration a run works on: the row of etl_stream.tables it locked */
typedef struct Registration
{
	Datum		row;			/* the whole row, for the SQL functions */
	Oid			rowtype;
	char	   *name;
	char	   *server;
	char	   *strategy;
	bool		enabled;
	bool		has_watermark;
	char	   *high_watermark;
	List	   *key_columns;	/* of char * */
	char	   *label;			/* 'table "x" (MySQL `t`)', for messages */
	int64		timeout_ms;		/* the run's timeout; 0: none */
	char	   *timeout_text;	/* as the user wrote it, for messages */
	BadValuePolicy on_bad_value;
	bool		follows_deletes;	/* deletes is 'delete' or 'flag' */
} Registration;

/* What etl_stream._plan() made of it */
typedef struct RunPlan
{
	Datum		row;			/* an etl_stream.plan */
	Oid			rowtype;
	char	   *cutoff;
	char	   *upper_bound;
	char	   *remote_sql;
	char	   *target;
	char	   *staging;
	char	   *delete_sql;
	char	   *merge_sql;
	List	   *raw_columns;	/* text received as bytes, and its charset */
	List	   *raw_charsets;
} RunPlan;

/* Everything a run works with, from the lock on */
typedef struct RunState
{
	SyncRun    *run;
	const SyncRequest *req;
	Registration reg;
	RunPlan		plan;
	bool		full_refresh;
	char	   *fresh;			/* full_refresh's fresh table, while it exists */
	char	   *direct_sql;		/* the remote query of a direct load */
	bool		found;			/* lock_step found the registration */
} RunState;

typedef void (*RunStep) (RunState *rs);

/* The advisory lock class of merges into a target: "ETLS" */
#define MERGE_LOCK_CLASS 1163152467

PG_FUNCTION_INFO_V1(etl_stream_sync);
PG_FUNCTION_INFO_V1(etl_stream_record_skipped);
PG_FUNCTION_INFO_V1(etl_stream_retry_rejects);
PG_FUNCTION_INFO_V1(etl_stream_repair_slice);

/* ----------------------------------------------------------------
 *		SPI helpers (run_record.c uses them too)
 * ----------------------------------------------------------------
 */

void
sql_arg(SqlArgs *args, Oid type, Datum value, bool isnull)
{
	Assert(args->n < MAX_SQL_ARGS);
	args->types[args->n] = type;
	args->values[args->n] = value;
	args->nulls[args->n] = isnull ? 'n' : ' ';
	args->n++;
}

void
sql_arg_text(SqlArgs *args, const char *s)
{
	sql_arg(args, TEXTOID, s ? CStringGetTextDatum(s) : (Datum) 0, s == NULL);
}

/* Run a statement; its rows are in SPI_tuptable */
void
exec_sql(const char *sql, SqlArgs *args)
{
	int			rc = SPI_execute_with_args(sql, args ? args->n : 0,
										   args ? args->types : NULL,
										   args ? args->values : NULL,
										   args ? args->nulls : NULL,
										   false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute_with_args failed (%d) for: %s", rc, sql);
}

/* The registration as $1 */
static SqlArgs
reg_args(const RunState *rs)
{
	SqlArgs		args = {0};

	sql_arg(&args, rs->reg.rowtype, rs->reg.row, false);
	return args;
}

/* Column col (from 1) of the first row, as text; NULL if null or no row */
static char *
result_text(int col)
{
	if (SPI_processed == 0)
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);
}

static Datum
result_datum(int col, bool *isnull)
{
	*isnull = true;
	if (SPI_processed == 0)
		return (Datum) 0;
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col,
						 isnull);
}

static int64
result_int8(int col)
{
	bool		isnull;
	Datum		d = result_datum(col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/* A whole-row column, copied out of SPI's result */
static Datum
result_row(int col, Oid *rowtype)
{
	bool		isnull;

	*rowtype = SPI_gettypeid(SPI_tuptable->tupdesc, col);
	return datumCopy(result_datum(col, &isnull), false, -1);
}

/* A text[] column of the first row as a List of C strings (NIL if null) */
static List *
result_text_list(int col)
{
	bool		isnull;
	Datum		d = result_datum(col, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *result = NIL;

	if (isnull)
		return NIL;
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			result = lappend(result, TextDatumGetCString(elems[i]));
	return result;
}

static char *
sql_text(const char *sql, SqlArgs *args)
{
	exec_sql(sql, args);
	return result_text(1);
}

/* SELECT fn($1, text arguments...) with the registration as $1 */
static char *
call_with_reg(const RunState *rs, const char *sql, const char *arg)
{
	SqlArgs		args = reg_args(rs);

	if (arg != NULL)
		sql_arg_text(&args, arg);
	return sql_text(sql, &args);
}

static int64
result_int8_of(const char *sql)
{
	exec_sql(sql, NULL);
	return result_int8(1);
}

static int64
count_rows(const char *table)
{
	exec_sql(psprintf("SELECT count(*) FROM %s", table), NULL);
	return result_int8(1);
}

/* ----------------------------------------------------------------
 *		The run's timeout
 * ----------------------------------------------------------------
 */

static TimeoutId run_timeout_id = MAX_TIMEOUTS;
static volatile sig_atomic_t run_timed_out = false;

/* In the signal handler: stop the run as a cancel would */
static void
run_timeout_handler(void)
{
	run_timed_out = true;
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
}

/* The table's timeout (etl_stream.tables.timeout) starts; ms 0: none */
static void
arm_run_timeout(int64 ms)
{
	run_timed_out = false;
	if (ms <= 0)
		return;
	if (run_timeout_id == MAX_TIMEOUTS)
		run_timeout_id = RegisterTimeout(USER_TIMEOUT, run_timeout_handler);
	enable_timeout_after(run_timeout_id, (int) Min(ms, INT_MAX));
}

/*
 * The timeout stops; whether it fired.  A cancel it raised that nothing
 * has seen yet (it fired as the run ended) is withdrawn.
 */
static bool
disarm_run_timeout(void)
{
	bool		fired;

	if (run_timeout_id != MAX_TIMEOUTS)
		disable_timeout(run_timeout_id, false);
	fired = run_timed_out;
	if (fired)
		QueryCancelPending = false;
	run_timed_out = false;
	return fired;
}

/*
 * call_in_subtransaction
 *		fn(arg) in a subtransaction.  True if it succeeded; if not, it is
 *		rolled back and its error is in *error (transform.c uses it too).
 */
bool
call_in_subtransaction(void (*fn) (void *arg), void *arg, ErrorData **error)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		*error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		return false;
	}
	PG_END_TRY();
	return true;
}

/* A step and its run, as call_in_subtransaction's argument */
typedef struct StepCall
{
	RunStep		step;
	RunState   *rs;
} StepCall;

static void
call_step(void *arg)
{
	StepCall   *call = (StepCall *) arg;

	call->step(call->rs);
}

/*
 * Run a step in a subtransaction.  True if it succeeded; if not, it is
 * rolled back and its error is in *error, except a cancel (or
 * statement_timeout), which is not a step's failure and is raised on.
 * The cancel the run's own timeout raises is the step's failure.
 */
static bool
in_subtransaction(RunStep step, RunState *rs, ErrorData **error)
{
	StepCall	call = {step, rs};

	if (call_in_subtransaction(call_step, &call, error))
		return true;
	if ((*error)->sqlerrcode == ERRCODE_QUERY_CANCELED && !run_timed_out)
	{
		progress_failing(*error);	/* for the record written later */
		ReThrowError(*error);
	}
	return false;
}

/* ----------------------------------------------------------------
 *		The registration and the plan
 * ----------------------------------------------------------------
 */

static BadValuePolicy
bad_value_policy(const char *name)
{
	if (name != NULL && strcmp(name, "skip") == 0)
		return BAD_VALUE_SKIP;
	if (name != NULL && strcmp(name, "quarantine") == 0)
		return BAD_VALUE_QUARANTINE;
	return BAD_VALUE_ERROR;
}

/*
 * Read the registration, and lock it (lock != NULL: "FOR NO KEY UPDATE",
 * with NOWAIT unless waiting).  False when there is no such row.
 */
static bool
read_registration(const char *name, const char *lock, Registration *reg)
{
	SqlArgs		args = {0};
	bool		isnull;

	sql_arg_text(&args, name);
	exec_sql(psprintf("SELECT t, t.name, t.server, t.strategy, t.enabled,"
					  "       t.watermark IS NOT NULL, t.high_watermark, t.key_columns,"
					  "       format('table \"%%s\" (MySQL %%s)', t.name, etl_stream._source_name(t)),"
					  "       coalesce(ceil(extract(epoch FROM t.timeout) * 1000)::bigint, 0), t.timeout,"
					  "       t.on_bad_value, t.deletes <> 'keep'"
					  "  FROM etl_stream.tables t WHERE t.name = $1 %s",
					  lock ? lock : ""),
			 &args);
	if (SPI_processed == 0)
		return false;

	memset(reg, 0, sizeof(Registration));
	reg->row = result_row(1, &reg->rowtype);
	reg->name = result_text(2);
	reg->server = result_text(3);
	reg->strategy = result_text(4);
	reg->enabled = DatumGetBool(result_datum(5, &isnull));
	reg->has_watermark = DatumGetBool(result_datum(6, &isnull));
	reg->high_watermark = result_text(7);
	reg->key_columns = result_text_list(8);
	reg->label = result_text(9);
	reg->timeout_ms = result_int8(10);
	reg->timeout_text = result_text(11);
	reg->on_bad_value = bad_value_policy(result_text(12));
	reg->follows_deletes = DatumGetBool(result_datum(13, &isnull));
	return true;
}

/*
 * A sync holds its registration's row exclusively; the slices of a backfill
 * share it (they run side by side, and wait for a sync of the table).
 */
static void
lock_step(RunState *rs)
{
	rs->found = read_registration(rs->req->name,
								  rs->req->backfill ? "FOR SHARE" :
								  rs->req->wait ? "FOR NO KEY UPDATE" :
								  "FOR NO KEY UPDATE NOWAIT",
								  &rs->reg);
}

/*
 * The run's registration, locked: one run per table at a time, the catalog
 * row being the lock.  False (the run is skipped) when another run holds it
 * and we do not wait, or waited longer than lock_timeout.
 */
static bool
lock_registration(RunState *rs)
{
	ErrorData  *error;

	if (!in_subtransaction(lock_step, rs, &error))
	{
		if (error->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(error);
		return false;
	}
	/* dropped while we waited for it */
	if (!rs->found)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("etl_stream table \"%s\" does not exist", rs->req->name)));
	return true;
}

/* The plan, and its raw charsets as (column, charset) lists */
#define PLAN_COLUMNS \
	"SELECT p, p.cutoff, p.remote_sql, p.target, p.staging, p.delete_sql, p.merge_sql," \
	"       ARRAY(SELECT c FROM unnest(($1).columns, p.raw_charsets) u(c, cs) WHERE cs IS NOT NULL)," \
	"       array_remove(p.raw_charsets, NULL), p.upper_bound"

/* The plan from SPI's first row of PLAN_COLUMNS */
static void
read_plan(RunPlan *plan)
{
	plan->row = result_row(1, &plan->rowtype);
	plan->cutoff = result_text(2);
	plan->remote_sql = result_text(3);
	plan->target = result_text(4);
	plan->staging = result_text(5);
	plan->delete_sql = result_text(6);
	plan->merge_sql = result_text(7);
	plan->raw_columns = result_text_list(8);
	plan->raw_charsets = result_text_list(9);
	plan->upper_bound = result_text(10);
}

/*
 * The plan of the run; into: the table to merge into, NULL for the target.
 * A backfill's slice lands in a staging table of its own, named after its
 * task, and merges so that a newer row in the target stays.  retry_rejects
 * fetches its rejected rows by key.
 */
static void
make_plan(const RunState *rs, const char *into, RunPlan *plan)
{
	SqlArgs		args = reg_args(rs);

	const char *staging = rs->req->backfill
		? psprintf("etl_stream_tasks.t%lld", (long long) rs->req->task_id) : NULL;

	sql_arg_text(&args, rs->req->range_from);
	sql_arg_text(&args, rs->req->range_to);
	if (rs->req->repair)
	{
		sql_arg_text(&args, staging);
		sql_arg_text(&args, rs->req->range_on);
		exec_sql(PLAN_COLUMNS "  FROM etl_stream._repair_plan($1, $2, $3, $4, $5) p", &args);
	}
	else
	{
		sql_arg_text(&args, into);
		sql_arg_text(&args, staging);
		sql_arg_text(&args, rs->req->range_on);
		sql_arg(&args, BOOLOID, BoolGetDatum(rs->req->backfill), false);
		if (rs->req->retry_rejects)
			exec_sql(PLAN_COLUMNS "  FROM etl_stream._retry_plan($1) p", &args);
		else
			exec_sql(PLAN_COLUMNS "  FROM etl_stream._plan($1, $2, $3, $4, $5, $6, $7) p", &args);
	}
	read_plan(plan);
}

/*
 * Text columns in a charset MariaDB may not convert faithfully are
 * selected as bytes and converted here (etl_stream._raw_plan): asked of
 * MySQL once the run has connected.
 */
static void
add_raw_charsets(const RunState *rs, RunPlan *plan)
{
	SqlArgs		args = reg_args(rs);

	sql_arg(&args, plan->rowtype, plan->row, false);
	exec_sql(PLAN_COLUMNS "  FROM etl_stream._raw_plan($1, $2) p", &args);
	read_plan(plan);
}

/* ----------------------------------------------------------------
 *		The phases
 * ----------------------------------------------------------------
 */

static void
begin_phase(SyncRun *run, RunPhase phase)
{
	run->phase = phase;
	run->phase_started_at = GetCurrentTimestamp();
	progress_phase(phase);
}

static void
end_phase(SyncRun *run)
{
	long		secs;
	int			usecs;

	TimestampDifference(run->phase_started_at, GetCurrentTimestamp(),
						&secs, &usecs);
	run->phase_s[run->phase] = secs + usecs / 1000000.0;
}

/*
 * A row left out by on_bad_value 'quarantine' goes to etl_stream.rejects,
 * under the run's id, in the run's transaction (RejectCallback).
 */
static void
keep_reject(const ValueError *ve, const ErrorData *error, const char *key_json,
			void *arg)
{
	RunState   *rs = (RunState *) arg;
	SqlArgs		args = {0};

	sql_arg(&args, INT8OID, Int64GetDatum(rs->run->run_id), false);
	sql_arg_text(&args, rs->reg.name);
	sql_arg_text(&args, key_json);
	sql_arg_text(&args, ve->key);
	sql_arg_text(&args, ve->column);
	sql_arg_text(&args, ve->mysql_type);
	sql_arg_text(&args, ve->value);
	sql_arg_text(&args, error->message);
	sql_arg_text(&args, error->detail);
	sql_arg_text(&args, unpack_sql_state(error->sqlerrcode));
	exec_sql("INSERT INTO etl_stream.rejects"
			 " (run_id, table_name, key, key_text, column_name, mysql_type, value,"
			 "  reason, detail, sqlstate, owner)"
			 " VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $9, $10,"
			 "  (SELECT t.owner FROM etl_stream.tables t WHERE t.name = $2))", &args);
}

/* Land the rows of a remote query into a table, counting into the run */
static void
land_into(RunState *rs, const char *table, const char *remote_sql)
{
	LandRequest req = {0};
	SqlArgs		args = {0};

	sql_arg_text(&args, table);
	exec_sql("SELECT $1::regclass::oid", &args);
	req.relid = (Oid) result_int8(1);
	req.server = lookup_source(rs->reg.server);
	req.sql = remote_sql;
	req.key_columns = rs->reg.key_columns;
	req.label = rs->reg.label;
	req.counts = &rs->run->counts;
	req.value_error = &rs->run->value_error;
	/*
	 * A policy must not make a NULL the target does not allow, also when
	 * the rows land in staging, which has no constraints
	 */
	args.n = 0;
	sql_arg_text(&args, rs->plan.target);
	exec_sql("SELECT array_agg(a.attname::text) FROM pg_attribute a"
			 " WHERE a.attrelid = $1::regclass AND a.attnum > 0"
			 "   AND NOT a.attisdropped AND a.attnotnull", &args);
	req.not_null_columns = result_text_list(1);
	req.raw_columns = rs->plan.raw_columns;
	req.raw_charsets = rs->plan.raw_charsets;
	req.on_bad_value = rs->reg.on_bad_value;
	req.on_reject = keep_reject;
	req.on_reject_arg = rs;
	/* what SPI just did (a staging table made, say) is seen by the landing */
	CommandCounterIncrement();
	land_rows(&req);
}

/*
 * The rows read from MySQL must be the rows written, and (count_table) the
 * rows the table written holds.  A backfill's slice loaded into a target
 * with rows is not counted there: that would read the whole target for
 * every slice.  Its rows written are the tuples the bulk path inserted.
 */
static void
check_landed(const SyncRun *run, const char *table, bool count_table)
{
	int64		found = count_table ? count_rows(table) : run->counts.rows_landed;

	if (run->counts.rows_pulled != run->counts.rows_landed + run->counts.rows_rejected ||
		found != run->counts.rows_landed)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("rows pulled and rows landed disagree for table \"%s\"",
						run->table_name),
				 errdetail("%lld rows were read from MySQL, %lld written to %s (%lld left out for bad values), %lld found there.",
						   (long long) run->counts.rows_pulled,
						   (long long) run->counts.rows_landed,
						   table, (long long) run->counts.rows_rejected,
						   (long long) found)));
}

/*
 * full_refresh: the fresh table replaces the target (its indexes are built
 * now, after the load), and the rows it replaces are counted as deleted.
 */
static void
swap_in_fresh(RunState *rs)
{
	rs->run->rows_deleted = count_rows(rs->plan.target);
	(void) call_with_reg(rs, "SELECT etl_stream._swap_in($1, $2)", rs->fresh);
}

/*
 * The target's merge lock, held to the end of the transaction.  A merge
 * takes it exclusive: one merge into a target at a time, so that the
 * slices of a backfill, landed side by side in staging tables of their
 * own, take turns writing the target's rows and index pages (no deadlock
 * between two upserts).  A backfill's slice loading directly takes it
 * shared: direct loads only insert, so they go side by side, but never
 * beside a merge.
 */
static void
lock_target_for_merge(const RunState *rs, bool shared)
{
	SqlArgs		args = {0};

	sql_arg_text(&args, rs->plan.target);
	if (shared)
		exec_sql("SELECT pg_advisory_xact_lock_shared((" CppAsString2(MERGE_LOCK_CLASS) "::bigint << 32)"
				 "                                    | $1::regclass::oid::bigint)", &args);
	else
		exec_sql("SELECT pg_advisory_xact_lock((" CppAsString2(MERGE_LOCK_CLASS) "::bigint << 32)"
				 "                             | $1::regclass::oid::bigint)", &args);
}

/* The direct load, in a subtransaction of its own (see load_directly) */
static void
direct_load_step(RunState *rs)
{
	SyncRun    *run = rs->run;
	const char *dest = rs->fresh ? rs->fresh : rs->plan.target;

	run->load_path = "direct";
	/* in the subtransaction: released if the load falls back to staging */
	if (rs->req->backfill)
		lock_target_for_merge(rs, true);
	land_into(rs, dest, rs->direct_sql);
	check_landed(run, dest, !rs->req->backfill);
	end_phase(run);
	begin_phase(run, RUN_PHASE_MERGE);
	/* building the target's unique indexes may meet the same keys */
	if (rs->fresh != NULL)
		swap_in_fresh(rs);
	run->rows_inserted = run->counts.rows_landed;
}

/*
 * An initial load straight into the empty target (or full_refresh's fresh
 * table, then swapped in), when _direct_sql() says it can be.  False when
 * it cannot, or when the rows meet a unique index (keys that are one to
 * PostgreSQL though not to MySQL: a nondeterministic collation, say): the
 * load is rolled back and the run goes through staging, which keeps the
 * newest row of each key.
 *
 * A backfill's slice loads directly too, into a target that may have rows,
 * beside the other slices (see lock_target_for_merge).  A key the target
 * has already (a row that moved between slices while the backfill ran, or
 * that a sync merged before it) meets the unique index, and two slices
 * that each insert a key the other has may deadlock: either way the
 * slice's load is rolled back and it goes through staging, where the newer
 * row wins.
 */
static bool
load_directly(RunState *rs)
{
	SyncRun    *run = rs->run;
	SqlArgs		args = reg_args(rs);
	ErrorData  *error;

	/* a repair replaces the rows of its range: through staging */
	if (rs->req->repair)
		return false;
	sql_arg_text(&args, rs->fresh ? rs->fresh : rs->plan.target);
	sql_arg(&args, rs->plan.rowtype, rs->plan.row, false);
	sql_arg(&args, BOOLOID, BoolGetDatum(rs->req->backfill), false);
	rs->direct_sql = sql_text("SELECT etl_stream._direct_sql($1, $2::regclass, $3, $4)", &args);
	if (rs->direct_sql == NULL)
		return false;
	if (in_subtransaction(direct_load_step, rs, &error))
		return true;

	if (error->sqlerrcode != ERRCODE_UNIQUE_VIOLATION &&
		!(rs->req->backfill && error->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED))
		ReThrowError(error);
	ereport(LOG,
			(errmsg("etl_stream: table \"%s\" is loaded through staging: %s",
					run->table_name, error->message)));
	rs->fresh = NULL;			/* rolled back with the load */
	run->load_path = NULL;
	run->rows_inserted = 0;
	run->rows_deleted = 0;
	run->rows_flagged = 0;
	memset(&run->counts, 0, sizeof(LandCounts));
	run->phase_s[RUN_PHASE_PULL] = -1;
	begin_phase(run, RUN_PHASE_PULL);
	return false;
}


/*
 * deletes => 'delete' or 'flag': the target rows of the window the batch
 * did not bring, and that MySQL does not have, are deleted or flagged
 * (etl_stream._follow_deletes), under the merge lock the merge took.  A
 * direct load never gets here: its target was empty.
 */
static void
follow_deletes(RunState *rs)
{
	SqlArgs		args = reg_args(rs);

	sql_arg(&args, rs->plan.rowtype, rs->plan.row, false);
	exec_sql("SELECT d.deleted, d.flagged FROM etl_stream._follow_deletes($1, $2) d", &args);
	rs->run->rows_deleted += result_int8(1);
	rs->run->rows_flagged = result_int8(2);
}

/* The batch in staging into the target, by the table's strategy */
static void
merge_staging(RunState *rs)
{
	SyncRun    *run = rs->run;
	RunPlan		fresh_plan;
	const RunPlan *p = &rs->plan;
	int64		batch;

	if (rs->full_refresh)
	{
		if (rs->fresh == NULL)
			rs->fresh = call_with_reg(rs, "SELECT etl_stream._fresh_table($1)", NULL);
		make_plan(rs, rs->fresh, &fresh_plan);
		p = &fresh_plan;
	}
	lock_target_for_merge(rs, false);
	if (p->delete_sql != NULL)
	{
		exec_sql(p->delete_sql, NULL);
		run->rows_deleted = SPI_processed;
	}
	exec_sql(p->merge_sql, NULL);
	run->rows_inserted = result_int8(1);
	run->rows_updated = result_int8(2);
	batch = result_int8(3);
	run->rows_unchanged = batch - run->rows_inserted - run->rows_updated;
	if (rs->fresh != NULL)
		swap_in_fresh(rs);
	if (rs->reg.follows_deletes && !rs->req->backfill)
		follow_deletes(rs);
}

/*
 * The watermark moves to the newest value of the batch (never back), unless
 * the run reloaded a range; a large change is followed by an ANALYZE
 * (etl_stream.analyze_threshold), so plans are right when the run commits.
 */
static void
finish_run(RunState *rs)
{
	SyncRun    *run = rs->run;
	SqlArgs		args = {0};
	int64		changed = run->rows_inserted + run->rows_updated + run->rows_deleted +
		run->rows_flagged;
	char	   *reltuples;

	run->new_watermark = rs->reg.high_watermark;
	if (rs->req->retry_rejects)
	{
		/* what was fetched again is in; a row still bad is rejected anew */
		sql_arg_text(&args, rs->reg.name);
		sql_arg(&args, INT8OID, Int64GetDatum(run->run_id), false);
		exec_sql("DELETE FROM etl_stream.rejects"
				 " WHERE table_name = $1 AND run_id < $2 AND key IS NOT NULL"
				 "   AND owner = (SELECT t.owner FROM etl_stream.tables t WHERE t.name = $1)",
				 &args);
		args.n = 0;
	}
	else if (rs->reg.has_watermark && rs->req->range_from == NULL &&
			 rs->req->range_to == NULL)
	{
		bool		direct = strcmp(run->load_path, "direct") == 0;
		SqlArgs		wm = reg_args(rs);

		/* the batch is in staging, or in the target it was loaded into */
		sql_arg_text(&wm, direct ? rs->plan.target : NULL);
		run->new_watermark =
			sql_text("SELECT etl_stream._later($1, ($1).high_watermark,"
					 "                         etl_stream._batch_watermark($1, $2))", &wm);
		sql_arg_text(&args, run->new_watermark);
		sql_arg_text(&args, rs->reg.name);
		exec_sql("UPDATE etl_stream.tables SET high_watermark = $1 WHERE name = $2",
				 &args);
	}

	/* a backfill's job ANALYZEs the target once, when its last slice is in */
	if (etl_stream_analyze_threshold < 0 || changed == 0 || rs->req->backfill)
		return;
	args.n = 0;
	sql_arg_text(&args, rs->plan.target);
	exec_sql("SELECT reltuples, oid FROM pg_class WHERE oid = $1::regclass", &args);
	reltuples = result_text(1);
	if (!(rs->full_refresh || reltuples == NULL || strtod(reltuples, NULL) < 0 ||
		  changed > etl_stream_analyze_threshold * strtod(reltuples, NULL)))
		return;
	/* in a worker once this commits: the run does not wait for it */
	if (etl_stream_deferred_analyze && workers_available() &&
		analyze_at_commit((Oid) result_int8(2)))
		run->statistics = "deferred";
	else
	{
		exec_sql(psprintf("ANALYZE %s", rs->plan.target), NULL);
		run->statistics = "in_run";
	}
}

/*
 * The source's columns against the registration, before anything is
 * pulled (_check_source_columns, by the table's on_schema_change): the run
 * fails, or goes on with a note, or with new columns added, after which
 * the registration and the plan are read again.  A backfill's slice only
 * checks: it shares the registration with the other slices.
 */
static void
check_source_columns(RunState *rs)
{
	SqlArgs		args = reg_args(rs);
	bool		isnull;

	sql_arg(&args, BOOLOID, BoolGetDatum(!rs->req->backfill), false);
	exec_sql("SELECT c.note, c.changed FROM etl_stream._check_source_columns($1, $2) c", &args);
	rs->run->schema_changes = result_text(1);
	if (!DatumGetBool(result_datum(2, &isnull)))
		return;
	if (!read_registration(rs->reg.name, NULL, &rs->reg))
		elog(ERROR, "etl_stream table \"%s\" disappeared during its run", rs->run->table_name);
	make_plan(rs, NULL, &rs->plan);
}

/* Everything after the lock and the plan, in a subtransaction */
static void
execute_step(RunState *rs)
{
	SyncRun    *run = rs->run;
	ForeignServer *server = lookup_source(rs->reg.server);

	begin_phase(run, RUN_PHASE_CONNECT);
	ping_source(server);
	check_source_columns(rs);
	add_raw_charsets(rs, &rs->plan);
	progress_estimate(estimate_source_rows(server, rs->plan.remote_sql));
	end_phase(run);

	begin_phase(run, RUN_PHASE_PULL);
	if (rs->full_refresh)
		rs->fresh = call_with_reg(rs, "SELECT etl_stream._fresh_table($1)", NULL);
	if (rs->req->retry_rejects || !load_directly(rs))
	{
		run->load_path = "staging";
		(void) call_with_reg(rs, "SELECT etl_stream._prepare_staging($1, $2)",
							 rs->plan.staging);
		land_into(rs, rs->plan.staging, rs->plan.remote_sql);
		check_landed(run, rs->plan.staging, true);
		end_phase(run);
		begin_phase(run, RUN_PHASE_MERGE);
		merge_staging(rs);
		/* a slice's own staging goes with its transaction */
		if (rs->req->backfill)
			exec_sql(psprintf("DROP TABLE %s", rs->plan.staging), NULL);
	}
	progress_merged(run->rows_inserted + run->rows_updated);
	end_phase(run);

	begin_phase(run, RUN_PHASE_FINISH);
	finish_run(rs);
	end_phase(run);
}

/*
 * A sync of a table whose backfill is queued or running is skipped, or,
 * with wait, waits for the backfill to end (within lock_timeout, like a
 * wait for another sync).  False when skipped; the reason is in the run.
 */
static bool
wait_for_backfill(RunState *rs)
{
	TimestampTz start = GetCurrentTimestamp();

	for (;;)
	{
		char	   *job = call_with_reg(rs, "SELECT etl_stream._backfill_running(($1).name)", NULL);

		if (job == NULL)
			return true;
		if (!rs->req->wait || IsolationUsesXactSnapshot() ||
			(LockTimeout > 0 &&
			 TimestampDifferenceExceeds(start, GetCurrentTimestamp(), LockTimeout)))
		{
			rs->run->skip_reason = psprintf("a backfill of this table is running (job %s)", job);
			return false;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 200, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* ----------------------------------------------------------------
 *		Entry points
 * ----------------------------------------------------------------
 */

/*
 * run_sync
 *		One run of a registered table in the current transaction.  Returns
 *		the row of etl_stream.runs it recorded, in the caller's memory
 *		context.  Raises, recording nothing, for a table that does not exist
 *		or is disabled, a range given for a table without a watermark, and a
 *		cancel.
 */
Datum
run_sync(const SyncRequest *req)
{
	SyncRun		run;
	RunState	rs;
	ErrorData  *error;
	Datum		result;
	bool		ok;
	bool		timed_out;

	memset(&run, 0, sizeof(SyncRun));
	memset(&rs, 0, sizeof(RunState));
	for (int i = 0; i <= RUN_PHASE_FINISH; i++)
		run.phase_s[i] = -1;
	run.req = req;
	run.started_at = GetCurrentTimestamp();
	rs.run = &run;
	rs.req = req;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* the run's memory: SPI's, for as long as the run */
	run.value_error.cxt = CurrentMemoryContext;
	/* runs that ended before they could write their record */
	record_ended_runs();

	if (!read_registration(req->name, NULL, &rs.reg))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("etl_stream table \"%s\" does not exist", req->name),
				 errhint("Registered tables are listed in etl_stream.tables.")));
	if (!rs.reg.enabled)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("etl_stream table \"%s\" is disabled", rs.reg.name),
				 errhint("Enable it with SELECT etl_stream.enable_table(%s).",
						 quote_literal_cstr(rs.reg.name))));
	if ((req->range_from || req->range_to) && !rs.reg.has_watermark && req->range_on == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("etl_stream table \"%s\" has no watermark to take a range of",
						rs.reg.name)));
	run.table_name = rs.reg.name;
	run.strategy = req->repair ? "delete_insert" : rs.reg.strategy;

	progress_begin(rs.reg.name, req->job_id, req->task_id,
				   req->backfill || req->repair ? psprintf("[%s, %s)",
											req->range_from ? req->range_from : "-inf",
											req->range_to ? req->range_to : "+inf") : NULL);
	if (!req->backfill && !wait_for_backfill(&rs))
		run.status = RUN_SKIPPED;
	else if (!lock_registration(&rs))
	{
		run.status = RUN_SKIPPED;
		run.skip_reason = "another sync of this table is running";
	}
	else
	{
		/* the cutoff is computed now, from the watermark just locked */
		rs.full_refresh = strcmp(rs.reg.strategy, "full_refresh") == 0 &&
			!req->retry_rejects;
		make_plan(&rs, NULL, &rs.plan);
		/* a row still bad stays in rejects, under this run */
		if (req->retry_rejects)
			rs.reg.on_bad_value = BAD_VALUE_QUARANTINE;
		/* rejects name the run before it is recorded */
		run.run_id = result_int8_of("SELECT nextval('etl_stream.runs_run_id_seq')");
		run.cutoff = rs.plan.cutoff;
		run.upper_bound = rs.plan.upper_bound;
		arm_run_timeout(rs.reg.timeout_ms);
		ok = in_subtransaction(execute_step, &rs, &error);
		timed_out = disarm_run_timeout();
		if (ok)
			run.status = RUN_SUCCESS;
		else
		{
			/* what was written is gone; what was read is kept in the record */
			run.status = RUN_FAILED;
			if (timed_out && error->sqlerrcode == ERRCODE_QUERY_CANCELED)
			{
				run.status = RUN_TIMED_OUT;
				error->message = psprintf("the run of etl_stream table \"%s\" timed out after %s",
										  rs.reg.name, rs.reg.timeout_text);
				error->detail = psprintf("It was stopped while %s, and rolled back; its MySQL statement was killed.",
										 run_phase_doing(run.phase));
				error->hint = pstrdup("etl_stream.alter_table(name, timeout => ...) changes the timeout.");
			}
			run.error = error;
			if (run.schema_changes != NULL)
				run.schema_changes = psprintf("%s (rolled back with the run)",
											  run.schema_changes);
			run.rows_inserted = run.rows_updated = 0;
			run.rows_unchanged = run.rows_deleted = run.rows_flagged = 0;
			run.new_watermark = rs.reg.high_watermark;
		}
	}

	run.finished_at = GetCurrentTimestamp();
	(void) record_run(&run, &result);
	progress_end();
	if (run.status == RUN_FAILED || run.status == RUN_TIMED_OUT)
		warn_failed_run(&run);
	else if (run.status == RUN_SUCCESS)
		warn_value_notes(&run);
	SPI_finish();
	return result;
}

/*
 * etl_stream.sync(name text, wait boolean DEFAULT false,
 *                 range_from text DEFAULT NULL, range_to text DEFAULT NULL)
 *   RETURNS etl_stream.runs
 */
/* A text argument, NULL as NULL */
static char *
text_arg(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/* The first argument: the table a run is of, which must be given */
static char *
table_name_arg(FunctionCallInfo fcinfo, const char *doing)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the name of the table to %s must not be null", doing)));
	return text_arg(fcinfo, 0);
}

Datum
etl_stream_sync(PG_FUNCTION_ARGS)
{
	SyncRequest req = {0};

	req.name = table_name_arg(fcinfo, "sync");
	req.wait = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
	req.range_from = text_arg(fcinfo, 2);
	req.range_to = text_arg(fcinfo, 3);
	req.attempt = 1;
	PG_RETURN_DATUM(run_sync(&req));
}

/*
 * etl_stream._repair_slice(name text, range_from text, range_to text,
 *                          range_on text DEFAULT NULL) RETURNS etl_stream.runs
 *		One slice reloaded for etl_stream.repair(), in the caller's
 *		transaction: it waits for a sync of the table going on.
 */
Datum
etl_stream_repair_slice(PG_FUNCTION_ARGS)
{
	SyncRequest req = {0};

	req.name = table_name_arg(fcinfo, "repair");
	req.wait = true;
	req.range_from = text_arg(fcinfo, 1);
	req.range_to = text_arg(fcinfo, 2);
	req.range_on = text_arg(fcinfo, 3);
	req.repair = true;
	req.attempt = 1;
	PG_RETURN_DATUM(run_sync(&req));
}

/*
 * etl_stream.retry_rejects(name text) RETURNS etl_stream.runs
 *
 * One run that fetches again, by key, the rows of the table kept in
 * etl_stream.rejects, lands those that now convert, merges them by key
 * and deletes their rejects; a row still bad is rejected again under this
 * run.  The watermark does not move.
 */
Datum
etl_stream_retry_rejects(PG_FUNCTION_ARGS)
{
	SyncRequest req = {0};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the name of the table must not be null")));
	req.name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	req.attempt = 1;
	req.retry_rejects = true;
	PG_RETURN_DATUM(run_sync(&req));
}

/*
 * record_skipped_run
 *		A run of the table that did not happen, recorded with the reason:
 *		the dependants of a table that failed in a sync_all job, say.
 */
int64
record_skipped_run(const SyncRequest *req, const char *reason)
{
	SyncRun		run;
	Registration reg;
	int64		run_id;

	memset(&run, 0, sizeof(SyncRun));
	for (int i = 0; i <= RUN_PHASE_FINISH; i++)
		run.phase_s[i] = -1;
	run.req = req;
	run.started_at = run.finished_at = GetCurrentTimestamp();
	run.status = RUN_SKIPPED;
	run.skip_reason = reason;
	run.table_name = (char *) req->name;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (read_registration(req->name, NULL, &reg))
		run.strategy = reg.strategy;
	run_id = record_run(&run, NULL);
	SPI_finish();
	return run_id;
}

/*
 * etl_stream._record_skipped(name text, reason text, job bigint DEFAULT NULL,
 *                            task bigint DEFAULT NULL) RETURNS bigint
 */
Datum
etl_stream_record_skipped(PG_FUNCTION_ARGS)
{
	SyncRequest req = {0};

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the table and the reason of a skipped run must not be null")));
	req.name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	req.attempt = 1;
	req.job_id = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2);
	req.task_id = PG_ARGISNULL(3) ? 0 : PG_GETARG_INT64(3);
	PG_RETURN_INT64(record_skipped_run(&req, text_to_cstring(PG_GETARG_TEXT_PP(1))));
}
