/*-------------------------------------------------------------------------
 *
 * run.c
 *		  The life of one run of a registered table: lock the registration,
 *		  compute the cutoff, connect, pull, merge by strategy, advance the
 *		  watermark, decide the ANALYZE, record the run.
 *
 * run_sync() does all of it inside the current transaction, which the
 * caller owns: etl_stream.sync() runs it in the caller's transaction, so the
 * run commits with it; etl_stream.sync_all_proc() commits after each table;
 * a background worker will run it in transactions of its own.  The work
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
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

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
} Registration;

/* What etl_stream._plan() made of it */
typedef struct RunPlan
{
	Datum		row;			/* an etl_stream.plan */
	Oid			rowtype;
	char	   *cutoff;
	char	   *remote_sql;
	char	   *target;
	char	   *staging;
	char	   *delete_sql;
	char	   *merge_sql;
} RunPlan;

/* Arguments of a statement run through SPI */
#define MAX_SQL_ARGS 32

typedef struct SqlArgs
{
	int			n;
	Oid			types[MAX_SQL_ARGS];
	Datum		values[MAX_SQL_ARGS];
	char		nulls[MAX_SQL_ARGS];
} SqlArgs;

PG_FUNCTION_INFO_V1(etl_stream_sync);
PG_FUNCTION_INFO_V1(etl_stream_sync_all_proc);

/* ----------------------------------------------------------------
 *		SPI helpers
 * ----------------------------------------------------------------
 */

static void
add_arg(SqlArgs *args, Oid type, Datum value, bool isnull)
{
	Assert(args->n < MAX_SQL_ARGS);
	args->types[args->n] = type;
	args->values[args->n] = value;
	args->nulls[args->n] = isnull ? 'n' : ' ';
	args->n++;
}

static void
add_text(SqlArgs *args, const char *s)
{
	add_arg(args, TEXTOID, s ? CStringGetTextDatum(s) : (Datum) 0, s == NULL);
}

/* The registration as $1, and optionally more text arguments */
static SqlArgs
reg_args(const Registration *reg)
{
	SqlArgs		args = {0};

	add_arg(&args, reg->rowtype, reg->row, false);
	return args;
}

/* Run a statement; its rows are in SPI_tuptable */
static void
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

/* Column col (from 1) of the first row, as text; NULL if null or no row */
static char *
result_text(int col)
{
	if (SPI_processed == 0)
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);
}

static int64
result_int8(int col)
{
	bool		isnull;
	Datum		d;

	if (SPI_processed == 0)
		return 0;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col,
					  &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

static char *
sql_text(const char *sql, SqlArgs *args)
{
	exec_sql(sql, args);
	return result_text(1);
}

static int64
count_rows(const char *table)
{
	exec_sql(psprintf("SELECT count(*) FROM %s", table), NULL);
	return result_int8(1);
}

/* ----------------------------------------------------------------
 *		The registration
 * ----------------------------------------------------------------
 */

/*
 * Read the registration, and lock it (lock != NULL: "FOR NO KEY UPDATE",
 * with NOWAIT unless waiting).  False when there is no such row.
 */
static bool
read_registration(const char *name, const char *lock, Registration *reg)
{
	SqlArgs		args = {0};
	bool		isnull;
	Datum		keys;
	Datum	   *elems;
	int			nkeys;

	add_text(&args, name);
	exec_sql(psprintf("SELECT t, t.name, t.server, t.strategy, t.enabled,"
					  "       t.watermark IS NOT NULL, t.high_watermark, t.key_columns,"
					  "       format('table \"%%s\" (MySQL %%s)', t.name, etl_stream._source_name(t))"
					  "  FROM etl_stream.tables t WHERE t.name = $1 %s",
					  lock ? lock : ""),
			 &args);
	if (SPI_processed == 0)
		return false;

	memset(reg, 0, sizeof(Registration));
	reg->rowtype = SPI_gettypeid(SPI_tuptable->tupdesc, 1);
	reg->row = datumCopy(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull),
								 false, -1);
	reg->name = result_text(2);
	reg->server = result_text(3);
	reg->strategy = result_text(4);
	reg->enabled = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 5, &isnull));
	reg->has_watermark = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 6, &isnull));
	reg->high_watermark = result_text(7);
	keys = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 8, &isnull);
	deconstruct_array(DatumGetArrayTypeP(keys), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, NULL, &nkeys);
	for (int i = 0; i < nkeys; i++)
		reg->key_columns = lappend(reg->key_columns, TextDatumGetCString(elems[i]));
	reg->label = result_text(9);
	return true;
}

/*
 * The run's registration, locked: one run per table at a time, the catalog
 * row being the lock.  False (the run is skipped) when another run holds it
 * and we do not wait, or waited longer than lock_timeout.
 */
static bool
lock_registration(const SyncRequest *req, Registration *reg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	bool		found = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		found = read_registration(req->name,
								  req->wait ? "FOR NO KEY UPDATE"
								  : "FOR NO KEY UPDATE NOWAIT",
								  reg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(edata);
		return false;
	}
	PG_END_TRY();

	/* dropped while we waited for it */
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("etl_stream table \"%s\" does not exist", req->name)));
	return true;
}

/* ----------------------------------------------------------------
 *		The plan
 * ----------------------------------------------------------------
 */

static void
make_plan(const SyncRequest *req, const Registration *reg, const char *into,
		  RunPlan *plan)
{
	SqlArgs		args = reg_args(reg);
	bool		isnull;

	add_text(&args, req->range_from);
	add_text(&args, req->range_to);
	add_text(&args, into);
	exec_sql("SELECT p, p.cutoff, p.remote_sql, p.target, p.staging, p.delete_sql, p.merge_sql"
			 "  FROM etl_stream._plan($1, $2, $3, $4) p", &args);
	plan->rowtype = SPI_gettypeid(SPI_tuptable->tupdesc, 1);
	plan->row = datumCopy(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 1, &isnull),
								  false, -1);
	plan->cutoff = result_text(2);
	plan->remote_sql = result_text(3);
	plan->target = result_text(4);
	plan->staging = result_text(5);
	plan->delete_sql = result_text(6);
	plan->merge_sql = result_text(7);
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

static Oid
relation_oid(const char *name)
{
	SqlArgs		args = {0};

	add_text(&args, name);
	exec_sql("SELECT $1::regclass::oid", &args);
	return (Oid) result_int8(1);
}

/* Land the rows of a remote query into a table, counting into the run */
static void
land_into(SyncRun *run, const Registration *reg, const char *table,
		  const char *remote_sql)
{
	LandRequest req = {0};

	req.server = lookup_source(reg->server);
	req.sql = remote_sql;
	req.relid = relation_oid(table);
	req.key_columns = reg->key_columns;
	req.label = reg->label;
	req.counts = &run->counts;
	req.value_error = &run->value_error;
	/* what SPI just did (a staging table made, say) is seen by the landing */
	CommandCounterIncrement();
	land_rows(&req);
}

static void
check_landed(SyncRun *run, const char *table)
{
	int64		found = count_rows(table);

	if (run->counts.rows_pulled != run->counts.rows_landed ||
		found != run->counts.rows_landed)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("rows pulled and rows landed disagree for table \"%s\"",
						run->table_name),
				 errdetail("%lld rows were read from MySQL, %lld written to %s, %lld found there.",
						   (long long) run->counts.rows_pulled,
						   (long long) run->counts.rows_landed,
						   table, (long long) found)));
}

static void
swap_in(const Registration *reg, const char *fresh)
{
	SqlArgs		args = reg_args(reg);

	add_text(&args, fresh);
	exec_sql("SELECT etl_stream._swap_in($1, $2)", &args);
}

/* The direct load itself, in a subtransaction: see load_directly() */
static bool
try_direct_load(SyncRun *run, const Registration *reg, const RunPlan *plan,
				char **fresh, const char *remote_sql)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	const char *dest = *fresh ? *fresh : plan->target;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		run->load_path = "direct";
		land_into(run, reg, dest, remote_sql);
		check_landed(run, dest);
		end_phase(run);
		begin_phase(run, RUN_PHASE_MERGE);
		if (*fresh != NULL)
		{
			/* building the target's unique indexes may meet the same keys */
			run->rows_deleted = count_rows(plan->target);
			swap_in(reg, *fresh);
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION)
			ReThrowError(edata);
		ereport(LOG,
				(errmsg("etl_stream: table \"%s\" is loaded through staging: %s",
						run->table_name, edata->message)));
		*fresh = NULL;			/* rolled back with the load */
		run->load_path = NULL;
		run->rows_deleted = 0;
		memset(&run->counts, 0, sizeof(LandCounts));
		run->phase_s[RUN_PHASE_PULL] = -1;
		begin_phase(run, RUN_PHASE_PULL);
		return false;
	}
	PG_END_TRY();

	run->rows_inserted = run->counts.rows_landed;
	return true;
}

/*
 * An initial load straight into the empty target (or full_refresh's fresh
 * table, then swapped in), when _direct_sql() says it can be.  False when
 * it cannot, or when the rows meet a unique index (keys that are one to
 * PostgreSQL though not to MySQL: a nondeterministic collation, say): the
 * load is rolled back and the run goes through staging, which keeps the
 * newest row of each key.
 */
static bool
load_directly(SyncRun *run, const Registration *reg, const RunPlan *plan,
			  char **fresh)
{
	SqlArgs		args = reg_args(reg);
	char	   *remote_sql;

	add_text(&args, *fresh ? *fresh : plan->target);
	add_arg(&args, plan->rowtype, plan->row, false);
	remote_sql = sql_text("SELECT etl_stream._direct_sql($1, $2::regclass, $3)", &args);
	if (remote_sql == NULL)
		return false;
	return try_direct_load(run, reg, plan, fresh, remote_sql);
}

/* The batch in staging into the target, by the table's strategy */
static void
merge_staging(SyncRun *run, const SyncRequest *req, const Registration *reg,
			  const RunPlan *plan, char *fresh)
{
	RunPlan		fresh_plan;
	const RunPlan *p = plan;
	int64		batch;

	if (strcmp(reg->strategy, "full_refresh") == 0)
	{
		if (fresh == NULL)
		{
			SqlArgs		args = reg_args(reg);

			fresh = sql_text("SELECT etl_stream._fresh_table($1)", &args);
		}
		make_plan(req, reg, fresh, &fresh_plan);
		p = &fresh_plan;
		run->rows_deleted = count_rows(plan->target);
	}
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
	if (fresh != NULL)
		swap_in(reg, fresh);
}

/*
 * The watermark moves to the newest value of the batch (never back), unless
 * the run reloaded a range; a large change is followed by an ANALYZE
 * (etl_stream.analyze_threshold), so plans are right when the run commits.
 */
static void
finish_run(SyncRun *run, const SyncRequest *req, const Registration *reg,
		   const RunPlan *plan)
{
	SqlArgs		args = reg_args(reg);
	int64		changed = run->rows_inserted + run->rows_updated + run->rows_deleted;
	bool		full = strcmp(reg->strategy, "full_refresh") == 0;
	double		reltuples;

	run->new_watermark = reg->high_watermark;
	if (reg->has_watermark && req->range_from == NULL && req->range_to == NULL)
	{
		add_text(&args, run->load_path && strcmp(run->load_path, "direct") == 0
				 ? plan->target : NULL);
		run->new_watermark =
			sql_text("SELECT etl_stream._later($1, ($1).high_watermark,"
					 "                         etl_stream._batch_watermark($1, $2))",
					 &args);
		args.n = 0;
		add_text(&args, run->new_watermark);
		add_text(&args, reg->name);
		exec_sql("UPDATE etl_stream.tables SET high_watermark = $1 WHERE name = $2",
				 &args);
	}

	if (etl_stream_analyze_threshold < 0 || changed == 0)
		return;
	args.n = 0;
	add_text(&args, plan->target);
	exec_sql("SELECT reltuples FROM pg_class WHERE oid = $1::regclass", &args);
	reltuples = SPI_processed > 0 ? strtod(result_text(1), NULL) : -1;
	if (reltuples < 0 || full || changed > etl_stream_analyze_threshold * reltuples)
		exec_sql(psprintf("ANALYZE %s", plan->target), NULL);
}

/* Everything after the lock and the plan; raises on any failure */
static void
execute_run(SyncRun *run, const SyncRequest *req, const Registration *reg,
			const RunPlan *plan)
{
	ForeignServer *server = lookup_source(reg->server);
	char	   *fresh = NULL;

	begin_phase(run, RUN_PHASE_CONNECT);
	ping_source(server);
	progress_estimate(estimate_source_rows(server, plan->remote_sql));
	end_phase(run);

	begin_phase(run, RUN_PHASE_PULL);
	if (strcmp(reg->strategy, "full_refresh") == 0)
	{
		SqlArgs		args = reg_args(reg);

		fresh = sql_text("SELECT etl_stream._fresh_table($1)", &args);
	}
	if (!load_directly(run, reg, plan, &fresh))
	{
		SqlArgs		args = reg_args(reg);

		run->load_path = "staging";
		exec_sql("SELECT etl_stream._prepare_staging($1)", &args);
		land_into(run, reg, plan->staging, plan->remote_sql);
		check_landed(run, plan->staging);
		end_phase(run);
		begin_phase(run, RUN_PHASE_MERGE);
		merge_staging(run, req, reg, plan, fresh);
	}
	progress_merged(run->rows_inserted + run->rows_updated);
	end_phase(run);

	begin_phase(run, RUN_PHASE_FINISH);
	finish_run(run, req, reg, plan);
	end_phase(run);
}

/*
 * Run execute_run() in a subtransaction.  A failure rolls it back and is
 * kept in the run, to be recorded; a cancel is raised on.
 */
static void
execute_run_guarded(SyncRun *run, const SyncRequest *req,
					const Registration *reg, const RunPlan *plan)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		execute_run(run, req, reg, plan);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		run->status = RUN_SUCCESS;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);

		/* what was written is gone; what was read is kept in the record */
		run->status = RUN_FAILED;
		run->error = edata;
		run->rows_inserted = run->rows_updated = 0;
		run->rows_unchanged = run->rows_deleted = 0;
		run->new_watermark = reg->high_watermark;
	}
	PG_END_TRY();
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
	Registration reg;
	RunPlan		plan;
	Datum		result;

	memset(&run, 0, sizeof(SyncRun));
	for (int i = 0; i <= RUN_PHASE_FINISH; i++)
		run.phase_s[i] = -1;
	run.req = req;
	run.started_at = GetCurrentTimestamp();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	run.value_error.cxt = CurrentMemoryContext;

	if (!read_registration(req->name, NULL, &reg))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("etl_stream table \"%s\" does not exist", req->name),
				 errhint("Registered tables are listed in etl_stream.tables.")));
	if (!reg.enabled)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("etl_stream table \"%s\" is disabled", reg.name),
				 errhint("Enable it with SELECT etl_stream.enable_table(%s).",
						 quote_literal_cstr(reg.name))));
	if ((req->range_from || req->range_to) && !reg.has_watermark)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("etl_stream table \"%s\" has no watermark to take a range of",
						reg.name)));
	run.table_name = reg.name;
	run.strategy = reg.strategy;

	progress_begin(reg.name, req->job_id, req->task_id);
	if (!lock_registration(req, &reg))
	{
		run.status = RUN_SKIPPED;
		run.skip_reason = "another sync of this table is running";
	}
	else
	{
		/* the cutoff is computed now, from the watermark just locked */
		make_plan(req, &reg, NULL, &plan);
		run.cutoff = plan.cutoff;
		execute_run_guarded(&run, req, &reg, &plan);
	}

	run.finished_at = GetCurrentTimestamp();
	result = record_run(&run, true);
	progress_end();
	if (run.status == RUN_FAILED)
		warn_failed_run(&run);
	SPI_finish();
	return result;
}

/*
 * etl_stream.sync(name text, wait boolean DEFAULT false,
 *                 range_from text DEFAULT NULL, range_to text DEFAULT NULL)
 *   RETURNS etl_stream.runs
 */
Datum
etl_stream_sync(PG_FUNCTION_ARGS)
{
	SyncRequest req = {0};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the name of the table to sync must not be null")));
	req.name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	req.wait = !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
	req.range_from = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	req.range_to = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	req.attempt = 1;
	PG_RETURN_DATUM(run_sync(&req));
}

/* The first enabled table named after "after" (NULL: the first), or NULL */
static char *
next_enabled_table(const char *after, MemoryContext cxt)
{
	SqlArgs		args = {0};
	char	   *name;

	add_text(&args, after ? after : "");
	exec_sql("SELECT name FROM etl_stream.tables WHERE enabled AND name > $1"
			 " ORDER BY name LIMIT 1", &args);
	name = result_text(1);
	return name ? MemoryContextStrdup(cxt, name) : NULL;
}

/*
 * CALL etl_stream.sync_all_proc(wait boolean DEFAULT false)
 *
 * Every enabled table, in name order, each run in a transaction of its own,
 * committed before the next begins: a cancel during one table leaves the
 * tables before it synced and committed, and no run holds another table's
 * lock.  Tables enabled or added meanwhile are taken too.
 */
Datum
etl_stream_sync_all_proc(PG_FUNCTION_ARGS)
{
	bool		nonatomic = fcinfo->context != NULL &&
		IsA(fcinfo->context, CallContext) &&
		!castNode(CallContext, fcinfo->context)->atomic;
	bool		wait = !PG_ARGISNULL(0) && PG_GETARG_BOOL(0);
	MemoryContext cxt = AllocSetContextCreate(PortalContext,
											  "etl_stream sync_all_proc",
											  ALLOCSET_SMALL_SIZES);
	char	   *name = NULL;

	if (!nonatomic)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("etl_stream.sync_all_proc() cannot run inside a transaction block"),
				 errhint("CALL it on its own to commit each table's run, or use SELECT etl_stream.sync_all() to sync every table in one transaction.")));

	if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	for (;;)
	{
		SyncRequest req = {0};
		char	   *prev = name;

		PushActiveSnapshot(GetTransactionSnapshot());
		name = next_enabled_table(prev, cxt);
		if (name != NULL)
		{
			req.name = name;
			req.wait = wait;
			req.attempt = 1;
			(void) run_sync(&req);
		}
		PopActiveSnapshot();
		if (prev != NULL)
			pfree(prev);
		if (name == NULL)
			break;
		SPI_commit();
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
	MemoryContextDelete(cxt);
	PG_RETURN_VOID();
}
