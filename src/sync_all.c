/*-------------------------------------------------------------------------
 *
 * sync_all.c
 *		  Every enabled table, in the order their dependencies give: in the
 *		  caller's one transaction (sync_all()), each in a transaction of its
 *		  own (CALL sync_all_proc()), or each in a worker of its own, side by
 *		  side (sync_all(parallel => n)).
 *
 * The order is etl_stream._sync_order(): a table comes after every table it
 * depends on.  A table whose dependency did not succeed in the same call is
 * not run; it is recorded as skipped, with the reason.  In workers the
 * tables are the tasks of a sync_all job (src/workers.c); the caller waits
 * for the job and returns its runs.  After the tables, the transforms that
 * follow them run, or are recorded as skipped (src/transform.c).
 *
 * IDENTIFICATION
 *		  src/sync_all.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "etl_stream.h"

/* A table of the call, where _sync_order() put it */
typedef struct OrderedTable
{
	char	   *name;
	int			ndeps;
	int		   *depends_on;		/* positions, from 1 */
	char	   *status;			/* of its run in this call, once run */
	int64		run_id;			/* of that run */
} OrderedTable;

/*
 * The tables in order; the parameter p names a schedule, for its tables
 * (all when it names none), or is NULL for all
 */
#define ORDER_SQL(p) \
	"SELECT name, position, depends_on FROM etl_stream._sync_order(" \
	"  ARRAY(SELECT t.name FROM etl_stream.tables t" \
	"         WHERE t.enabled AND (" p "::text IS NULL OR t.name = ANY (coalesce(" \
	"                 (SELECT s.tables FROM etl_stream.schedule_defs s WHERE s.name = " p ")," \
	"                 ARRAY[t.name]))))) ORDER BY position"

static void put_job_runs(Tuplestorestate *rows);
static CallRun *job_call_runs(int64 job_id, int *count, MemoryContext cxt);

PG_FUNCTION_INFO_V1(etl_stream_sync_all);
PG_FUNCTION_INFO_V1(etl_stream_sync_all_proc);
PG_FUNCTION_INFO_V1(etl_stream_run_schedule);

/*
 * The enabled tables in dependency order, those of a schedule if one is
 * named, in cxt (SPI must be connected)
 */
static OrderedTable *
tables_in_order(int *count, MemoryContext cxt, const char *schedule)
{
	OrderedTable *tables;
	SqlArgs		args = {0};

	sql_arg_text(&args, schedule);
	exec_sql(ORDER_SQL("$1"), &args);
	*count = (int) SPI_processed;
	tables = MemoryContextAllocZero(cxt, sizeof(OrderedTable) * Max(*count, 1));
	for (int i = 0; i < *count; i++)
	{
		bool		isnull;
		Datum		deps = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3,
										 &isnull);
		Datum	   *elems;
		int			n;
		MemoryContext oldcxt;

		tables[i].name = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[i],
															   SPI_tuptable->tupdesc, 1));
		deconstruct_array(DatumGetArrayTypeP(deps), INT4OID, 4, true, TYPALIGN_INT,
						  &elems, NULL, &n);
		oldcxt = MemoryContextSwitchTo(cxt);
		tables[i].ndeps = n;
		tables[i].depends_on = palloc(sizeof(int) * Max(n, 1));
		for (int k = 0; k < n; k++)
			tables[i].depends_on[k] = DatumGetInt32(elems[k]);
		MemoryContextSwitchTo(oldcxt);
	}
	return tables;
}

/* Why the table must not run: a dependency that did not succeed, or NULL */
static char *
unmet_dependency(const OrderedTable *tables, const OrderedTable *t)
{
	for (int k = 0; k < t->ndeps; k++)
	{
		const OrderedTable *d = &tables[t->depends_on[k] - 1];

		if (d->status == NULL || strcmp(d->status, "success") != 0)
			return psprintf("etl_stream table \"%s\", which it depends on, did not succeed (%s)",
							d->name, d->status ? d->status : "not run");
	}
	return NULL;
}

/* The status of a run row */
static char *
run_status(Datum row, MemoryContext cxt)
{
	bool		isnull;
	Datum		status = GetAttributeByName((HeapTupleHeader) DatumGetPointer(row),
											"status", &isnull);

	return MemoryContextStrdup(cxt, TextDatumGetCString(status));
}

/*
 * Run one table of the call, or record it as skipped; its status goes into
 * t, and its row of etl_stream.runs into rows when given.  Returns the row.
 */
static Datum
sync_one(OrderedTable *tables, OrderedTable *t, bool wait, int attempt,
		 Tuplestorestate *rows, MemoryContext cxt)
{
	SyncRequest req = {0};
	char	   *reason = unmet_dependency(tables, t);
	HeapTupleData tuple;
	Datum		row;
	bool		isnull_id;

	req.name = t->name;
	req.wait = wait;
	req.attempt = attempt;
	if (reason == NULL)
		row = run_sync(&req);
	else
	{
		SqlArgs		args = {0};
		bool		isnull;
		int64		run_id = record_skipped_run(&req, reason);

		sql_arg(&args, INT8OID, Int64GetDatum(run_id), false);
		exec_sql("SELECT r FROM etl_stream.runs r WHERE r.run_id = $1", &args);
		row = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	}
	t->status = run_status(row, cxt);
	t->run_id = DatumGetInt64(GetAttributeByName((HeapTupleHeader) DatumGetPointer(row),
												 "run_id", &isnull_id));
	if (rows != NULL)
	{
		tuple.t_len = HeapTupleHeaderGetDatumLength((HeapTupleHeader) DatumGetPointer(row));
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = InvalidOid;
		tuple.t_data = (HeapTupleHeader) DatumGetPointer(row);
		tuplestore_puttuple(rows, &tuple);
	}
	return row;
}

/* How the call's tables ended, for the transforms that run after them */
static CallRun *
call_runs(const OrderedTable *tables, int count, MemoryContext cxt)
{
	CallRun    *runs = MemoryContextAllocZero(cxt, sizeof(CallRun) * Max(count, 1));

	for (int i = 0; i < count; i++)
	{
		runs[i].table = tables[i].name;
		runs[i].status = tables[i].status;
		runs[i].run_id = tables[i].run_id;
	}
	return runs;
}

/*
 * The tables, each in a transaction of its own (the caller's is committed
 * first, and SPI connected nonatomic), each table's attempts until one
 * succeeds or there is none left (retry.c), then the transforms after
 * them.  Returns how many tables failed or timed out in the end, and sets
 * how many transforms failed; their names and outcomes in failures.
 */
static int
sync_committing(const char *schedule, bool wait, StringInfo failures, int *failed_transforms,
				MemoryContext cxt)
{
	OrderedTable *tables;
	int			count;
	int			failed = 0;

	PushActiveSnapshot(GetTransactionSnapshot());
	tables = tables_in_order(&count, cxt, schedule);
	PopActiveSnapshot();
	for (int i = 0; i < count; i++)
	{
		for (int attempt = 1;; attempt++)
		{
			int64		delay;

			PushActiveSnapshot(GetTransactionSnapshot());
			delay = retry_delay_ms(sync_one(tables, &tables[i], wait, attempt, NULL, cxt));
			PopActiveSnapshot();
			SPI_commit();
			CHECK_FOR_INTERRUPTS();
			if (delay < 0)
				break;
			wait_before_retry(delay, tables[i].name, attempt + 1);
		}
		if (strcmp(tables[i].status, "failed") == 0 || strcmp(tables[i].status, "timed_out") == 0)
		{
			appendStringInfo(failures, "%s%s: %s", failed > 0 ? ", " : "",
							 tables[i].name, tables[i].status);
			failed++;
		}
	}
	/* then the transforms after them, each committed on its own */
	*failed_transforms = run_call_transforms(call_runs(tables, count, cxt), count, true,
											 NULL, failures, cxt);
	return failed;
}

/* ----------------------------------------------------------------
 *		In workers
 * ----------------------------------------------------------------
 */

/*
 * In the worker that leads a parallel sync_all: the job (its id given by
 * the caller) and a task per table, committed, then the other workers.
 */
void
create_sync_all_job(int64 job_id, bool wait, int parallel, const char *schedule)
{
	SqlArgs		args = {0};

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "etl_stream worker: making a sync_all job");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sql_arg(&args, INT8OID, Int64GetDatum(job_id), false);
	sql_arg(&args, INT4OID, Int32GetDatum(parallel), false);
	sql_arg(&args, BOOLOID, BoolGetDatum(wait), false);
	sql_arg_text(&args, schedule);
	exec_sql("WITH o AS (" ORDER_SQL("$4") "),"
			 "     j AS (INSERT INTO etl_stream.jobs (job_id, kind, tables, workers, wait, tasks_total)"
			 "           SELECT $1, 'sync_all', coalesce(array_agg(name ORDER BY position), '{}'), $2, $3,"
			 "                  count(*) FROM o"
			 "           RETURNING job_id)"
			 "INSERT INTO etl_stream.tasks (job_id, position, table_name, depends_on)"
			 "SELECT j.job_id, o.position, o.name, o.depends_on FROM o, j", &args);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	if (parallel > 1)
		(void) launch_workers(WORKER_TASKS, GetUserId(), job_id, parallel - 1, false, 0, NULL);
}

/*
 * The caller of sync_all(parallel => n): a worker makes the job and works on
 * it with n - 1 others; the caller waits for the job, then returns its runs.
 * A cancel of the caller stops the job's workers.
 */
static int64
sync_all_in_workers(Tuplestorestate *rows, bool wait, int parallel, const char *schedule)
{
	SqlArgs		args = {0};
	int64		job_id;
	volatile int no_worker = 0;
	StringInfoData failures;
	CallRun    *runs;
	int			nruns;

	if (!workers_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sync_all(parallel => %d) needs etl_stream to be loaded at server start", parallel),
				 errhint("Add etl_stream to shared_preload_libraries, or sync with parallel => 1.")));
	require_worker_budget();
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("sync_all(parallel => %d) needs the READ COMMITTED isolation level", parallel),
				 errdetail("The runs are committed by workers, which its snapshot would not see.")));
	sql_arg_text(&args, GetUserNameFromId(GetUserId(), false));
	exec_sql("SELECT etl_stream._check_worker_role($1)", &args);
	exec_sql("SELECT nextval('etl_stream.jobs_job_id_seq')", NULL);
	job_id = strtoll(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), NULL, 10);

	/* the worker that makes the job; when none is free, wait for one */
	while (launch_workers(WORKER_SYNC_ALL, GetUserId(), job_id, 1, wait, parallel, schedule) == 0)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}

	args.n = 0;
	sql_arg(&args, INT8OID, Int64GetDatum(job_id), false);
	PG_TRY();
	{
		for (;;)
		{
			char	   *state;

			exec_sql("SELECT state FROM etl_stream.jobs WHERE job_id = $1", &args);
			state = SPI_processed > 0
				? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : NULL;
			if (state != NULL && (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 ||
								  strcmp(state, "cancelled") == 0))
				break;
			/* the job's workers are gone, and it is not finished: say so */
			if (job_worker_count(job_id, true) == 0 && ++no_worker > 20)
				ereport(ERROR,
						(errcode(ERRCODE_INTERNAL_ERROR),
						 errmsg("the workers of etl_stream job %lld ended before it was done",
								(long long) job_id),
						 errhint("The server log says why; SELECT etl_stream.job_resume(%lld) runs what is left.",
								 (long long) job_id)));
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 50, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		cancel_job_workers(job_id);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (rows == NULL)
		return job_id;
	exec_sql("SELECT r FROM etl_stream.runs r WHERE r.job_id = $1 ORDER BY r.run_id", &args);
	put_job_runs(rows);
	/* the transforms, in the caller's transaction, which sees the job's runs */
	initStringInfo(&failures);
	runs = job_call_runs(job_id, &nruns, CurrentMemoryContext);
	(void) run_call_transforms(runs, nruns, false, rows, &failures, CurrentMemoryContext);
	return job_id;
}

/* The rows of etl_stream.runs just selected, into rows */
static void
put_job_runs(Tuplestorestate *rows)
{
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		HeapTupleHeader td = DatumGetHeapTupleHeader(SPI_getbinval(SPI_tuptable->vals[i],
																	SPI_tuptable->tupdesc,
																	1, &isnull));
		HeapTupleData tuple;

		tuple.t_len = HeapTupleHeaderGetDatumLength(td);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = InvalidOid;
		tuple.t_data = td;
		tuplestore_puttuple(rows, &tuple);
	}
}

/* How the tables of a sync_all job ended, for the transforms after them */
static CallRun *
job_call_runs(int64 job_id, int *count, MemoryContext cxt)
{
	SqlArgs		args = {0};
	CallRun    *runs;

	sql_arg(&args, INT8OID, Int64GetDatum(job_id), false);
	exec_sql("SELECT t.table_name, coalesce(r.status, t.state), coalesce(r.run_id, 0)"
			 "  FROM etl_stream.tasks t LEFT JOIN etl_stream.runs r USING (run_id)"
			 " WHERE t.job_id = $1 ORDER BY t.position", &args);
	*count = (int) SPI_processed;
	runs = MemoryContextAllocZero(cxt, sizeof(CallRun) * Max(*count, 1));
	for (int i = 0; i < *count; i++)
	{
		runs[i].table = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[i],
															  SPI_tuptable->tupdesc, 1));
		runs[i].status = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[i],
															   SPI_tuptable->tupdesc, 2));
		runs[i].run_id = strtoll(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3),
								 NULL, 10);
	}
	return runs;
}

/* ----------------------------------------------------------------
 *		Entry points
 * ----------------------------------------------------------------
 */

/*
 * etl_stream.sync_all(wait boolean DEFAULT false, parallel integer DEFAULT 1)
 *   RETURNS SETOF etl_stream.runs
 */
Datum
etl_stream_sync_all(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		wait = !PG_ARGISNULL(0) && PG_GETARG_BOOL(0);
	int			parallel = PG_ARGISNULL(1) ? 1 : PG_GETARG_INT32(1);

	if (parallel < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parallel must be at least 1, not %d", parallel)));
	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (parallel > 1)
		(void) sync_all_in_workers(rsinfo->setResult, wait, parallel, NULL);
	else
	{
		int			count;
		OrderedTable *tables = tables_in_order(&count, CurrentMemoryContext, NULL);

		StringInfoData failures;

		for (int i = 0; i < count; i++)
			(void) sync_one(tables, &tables[i], wait, 1, rsinfo->setResult,
							CurrentMemoryContext);
		initStringInfo(&failures);
		(void) run_call_transforms(call_runs(tables, count, CurrentMemoryContext), count,
								   false, rsinfo->setResult, &failures, CurrentMemoryContext);
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * A procedure that commits: CALLed outside a transaction block, SPI
 * connected nonatomic.  Returns the memory context for what must outlive
 * the commits (the tables and how their runs went).
 */
static MemoryContext
begin_committing(FunctionCallInfo fcinfo, const char *what, const char *hint)
{
	MemoryContext cxt;

	if (fcinfo->context == NULL || !IsA(fcinfo->context, CallContext) ||
		castNode(CallContext, fcinfo->context)->atomic)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("%s cannot run inside a transaction block", what),
				 errhint("%s", hint)));
	cxt = AllocSetContextCreate(PortalContext, "etl_stream procedure", ALLOCSET_SMALL_SIZES);
	if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	return cxt;
}

/*
 * CALL etl_stream.sync_all_proc(wait boolean DEFAULT false)
 *
 * Every enabled table, in dependency order, each run in a transaction of
 * its own, committed before the next begins: a cancel during one table
 * leaves the tables before it synced and committed, and no run holds
 * another table's lock.  The tables are those enabled when it starts.
 */
Datum
etl_stream_sync_all_proc(PG_FUNCTION_ARGS)
{
	bool		wait = !PG_ARGISNULL(0) && PG_GETARG_BOOL(0);
	MemoryContext cxt;
	StringInfoData failures;
	int			failed_transforms;

	cxt = begin_committing(fcinfo, "etl_stream.sync_all_proc()",
						   "CALL it on its own to commit each table's run, or use SELECT etl_stream.sync_all() to sync every table in one transaction.");
	initStringInfo(&failures);
	(void) sync_committing(NULL, wait, &failures, &failed_transforms, cxt);
	SPI_finish();
	MemoryContextDelete(cxt);
	PG_RETURN_VOID();
}

/*
 * CALL etl_stream.run_schedule(name text): what a schedule's pg_cron job
 * runs.  Its tables in dependency order, each in a transaction of its own
 * with its retries, or side by side in workers (parallel > 1).  The runs
 * are committed first; then, if any table failed or timed out in the end,
 * the call fails, so that cron.job_run_details says so.
 */
Datum
etl_stream_run_schedule(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	MemoryContext cxt;
	StringInfoData failures;
	SqlArgs		args = {0};
	int			parallel;
	int			failed;
	int			failed_transforms = 0;

	cxt = begin_committing(fcinfo, "etl_stream.run_schedule()",
						   "pg_cron CALLs it on its own; so can you.");
	initStringInfo(&failures);
	sql_arg_text(&args, name);
	PushActiveSnapshot(GetTransactionSnapshot());
	exec_sql("SELECT parallel FROM etl_stream.schedule_defs WHERE name = $1", &args);
	PopActiveSnapshot();
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("etl_stream schedule \"%s\" does not exist", name),
				 errhint("Your schedules are listed in etl_stream.schedules.")));
	parallel = atoi(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));

	if (parallel <= 1)
		failed = sync_committing(name, false, &failures, &failed_transforms, cxt);
	else
	{
		int64		job_id;

		SPI_commit();
		PushActiveSnapshot(GetTransactionSnapshot());
		job_id = sync_all_in_workers(NULL, false, parallel, name);
		args.n = 0;
		sql_arg(&args, INT8OID, Int64GetDatum(job_id), false);
		exec_sql("SELECT count(*), string_agg(t.table_name || ': ' || r.status, ', ' ORDER BY t.position)"
				 "  FROM etl_stream.tasks t JOIN etl_stream.runs r USING (run_id)"
				 " WHERE t.job_id = $1 AND r.status IN ('failed', 'timed_out')", &args);
		failed = atoi(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
		if (failed > 0)
			appendStringInfoString(&failures,
								   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
		{
			int			nruns;
			CallRun    *runs = job_call_runs(job_id, &nruns, cxt);

			PopActiveSnapshot();
			SPI_commit();
			failed_transforms = run_call_transforms(runs, nruns, true, NULL, &failures, cxt);
		}
	}
	/* the tables that did not sync, or else the transforms that failed */
	if (failed > 0 || failed_transforms > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("etl_stream schedule \"%s\": %s", name,
						failed > 0
						? psprintf("%d %s did not sync", failed, failed == 1 ? "table" : "tables")
						: psprintf("%d %s failed", failed_transforms,
								   failed_transforms == 1 ? "transform" : "transforms")),
				 errdetail("%s.", failures.data),
				 errhint("The runs, with their errors, are in etl_stream.runs (a transform's with kind 'transform'); etl_stream.status shows the last of each table.")));
	SPI_finish();
	MemoryContextDelete(cxt);
	PG_RETURN_VOID();
}
