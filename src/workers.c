/*-------------------------------------------------------------------------
 *
 * workers.c
 *		  Background workers: their slots in shared memory, starting them as
 *		  the role that asked when the asking transaction commits, a
 *		  worker's loop over the tasks of its job, the end of a job, and the
 *		  ANALYZE a sync leaves to a worker.
 *
 * A job's tasks (etl_stream.tasks) are claimed one at a time with FOR
 * UPDATE SKIP LOCKED, in position order, a task only once the tasks it
 * depends on are done; each is run by run_sync() (a range of a
 * sweep_deletes job by etl_stream._sweep_chunk()) in a transaction of its
 * own, which commits the run, its record and the task's outcome together.
 * A worker that finds no task left ends; the last worker of a job finishes
 * it (etl_stream._finish_job) and ANALYZEs what a backfill loaded.
 *
 * The slots (one per max_worker_processes) say which workers run, for
 * which job and as which role.  A slot is claimed before the worker is
 * registered, so etl_stream.max_workers holds; a job that could not get
 * all the workers it asked for is remembered, and a worker that ends
 * starts a worker for it.  Tasks wait for a worker; they never fail for
 * want of one.  The slot is freed when the worker exits, however it exits.
 *
 * Workers stop as PostgreSQL's own do: SIGTERM (pg_terminate_backend, a
 * shutdown) ends the worker at the next interrupt check, SIGINT (a cancel,
 * etl_stream.job_cancel) rolls back its current task, and every wait
 * watches for postmaster death.
 *
 * IDENTIFICATION
 *		  src/workers.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/pmsignal.h"
#include "storage/lmgr.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/ps_status.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "etl_stream.h"

#define WORKERS_TRANCHE		"etl_stream workers"
#define MAX_WANTED			64

/* a slot claimed for a worker that never started is free again after this */
#define STALE_CLAIM_SECS	60

/* how long a worker waits for a task to become claimable, per look */
#define TASK_POLL_MS		100

typedef struct WorkerSlot
{
	bool		in_use;
	int			pid;			/* 0 until the worker has started */
	Oid			dbid;
	Oid			roleid;			/* the worker connects as this role */
	WorkerMode	mode;
	int64		job_id;			/* WORKER_TASKS, WORKER_SYNC_ALL */
	Oid			relid;			/* WORKER_ANALYZE */
	bool		wait;			/* WORKER_SYNC_ALL: the runs wait for locks */
	int			parallel;		/* WORKER_SYNC_ALL: workers for the job */
	bool		cancel;			/* the job is cancelled: stop */
	bool		reserved;		/* held for an ANALYZE until its sync commits */
	char		schedule[NAMEDATALEN];	/* WORKER_SYNC_ALL: its tables; "": all */
	TimestampTz claimed_at;
} WorkerSlot;

/* A job that asked for more workers than there were free slots */
typedef struct WantedWorkers
{
	Oid			dbid;
	Oid			roleid;
	int64		job_id;
	int			count;
} WantedWorkers;

typedef struct WorkersShared
{
	LWLock	   *lock;			/* the slots and the wanted list */
	int			nslots;
	WantedWorkers wanted[MAX_WANTED];
	WorkerSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} WorkersShared;

static WorkersShared *workers_shared = NULL;

/* in a worker: its slot */
static int	my_slot = -1;

/* What to do when the current transaction commits */
typedef enum PendingKind
{
	PENDING_START,				/* start workers for a job */
	PENDING_CANCEL,				/* stop a job's workers */
	PENDING_ANALYZE				/* ANALYZE a table in a worker */
} PendingKind;

typedef struct PendingAction
{
	PendingKind kind;
	SubTransactionId subid;		/* dropped if this subtransaction aborts */
	int64		job_id;
	int			count;
	Oid			roleid;
	Oid			relid;
	int			slot;			/* PENDING_ANALYZE: the slot reserved for it */
} PendingAction;

static List *pending_actions = NIL; /* in TopMemoryContext */
static bool callbacks_registered = false;

PGDLLEXPORT void etl_stream_worker_main(Datum main_arg);

PG_FUNCTION_INFO_V1(etl_stream_start_workers);
PG_FUNCTION_INFO_V1(etl_stream_cancel_workers);
PG_FUNCTION_INFO_V1(etl_stream_worker_alive);
PG_FUNCTION_INFO_V1(etl_stream_job_workers);

/* ----------------------------------------------------------------
 *		Shared memory
 * ----------------------------------------------------------------
 */

static Size
workers_shmem_size(void)
{
	return add_size(offsetof(WorkersShared, slots),
					mul_size(max_worker_processes, sizeof(WorkerSlot)));
}

/* From the shmem_request_hook (etl_stream.c) */
void
workers_shmem_request(void)
{
	RequestAddinShmemSpace(workers_shmem_size());
	RequestNamedLWLockTranche(WORKERS_TRANCHE, 1);
}

/* From the shmem_startup_hook, under AddinShmemInitLock */
void
workers_shmem_init(void)
{
	bool		found;

	workers_shared = ShmemInitStruct("etl_stream workers",
									 workers_shmem_size(), &found);
	if (!found)
	{
		memset(workers_shared, 0, workers_shmem_size());
		workers_shared->lock = &(GetNamedLWLockTranche(WORKERS_TRANCHE))->lock;
		workers_shared->nslots = max_worker_processes;
	}
}

bool
workers_available(void)
{
	return workers_shared != NULL;
}

static void
require_workers(void)
{
	if (workers_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("etl_stream's background workers need etl_stream to be loaded at server start"),
				 errhint("Add etl_stream to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* A job would wait for ever: no worker may run */
void
require_worker_budget(void)
{
	require_workers();
	if (etl_stream_max_workers == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("etl_stream.max_workers is 0, so no background worker may run"),
				 errhint("Raise etl_stream.max_workers in postgresql.conf and reload.")));
}

/* ----------------------------------------------------------------
 *		Slots and starting workers
 * ----------------------------------------------------------------
 */

/* Under the lock: a free slot, within etl_stream.max_workers, or -1 */
static int
find_free_slot(void)
{
	TimestampTz stale = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													-STALE_CLAIM_SECS * 1000);
	int			limit = Min(etl_stream_max_workers, workers_shared->nslots);
	int			used = 0;
	int			free_slot = -1;

	for (int i = 0; i < workers_shared->nslots; i++)
	{
		WorkerSlot *s = &workers_shared->slots[i];

		/* claimed for a worker that never came up (the fork failed, say) */
		if (s->in_use && s->pid == 0 && !s->reserved && s->claimed_at < stale)
			s->in_use = false;
		if (s->in_use)
			used++;
		else if (free_slot < 0)
			free_slot = i;
	}
	return used < limit ? free_slot : -1;
}

/*
 * Under the lock: claim a free slot for a worker of a mode, as roleid, in
 * database dbid; its index, or -1 when none is free
 */
static int
claim_slot(WorkerMode mode, Oid dbid, Oid roleid, int64 job_id)
{
	int			i = find_free_slot();
	WorkerSlot *s;

	if (i < 0)
		return -1;
	s = &workers_shared->slots[i];
	memset(s, 0, sizeof(WorkerSlot));
	s->in_use = true;
	s->dbid = dbid;
	s->roleid = roleid;
	s->mode = mode;
	s->job_id = job_id;
	s->claimed_at = GetCurrentTimestamp();
	return i;
}

static void
free_slot(int i)
{
	LWLockAcquire(workers_shared->lock, LW_EXCLUSIVE);
	memset(&workers_shared->slots[i], 0, sizeof(WorkerSlot));
	LWLockRelease(workers_shared->lock);
}

/* Register the worker of a claimed slot; false (the slot freed) if not */
static bool
register_worker(int i)
{
	WorkerSlot *s = &workers_shared->slots[i];
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "etl_stream", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "etl_stream_worker_main", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "etl_stream worker", BGW_MAXLEN);
	if (s->mode == WORKER_ANALYZE)
		snprintf(worker.bgw_name, BGW_MAXLEN, "etl_stream worker: ANALYZE of relation %u", s->relid);
	else
		snprintf(worker.bgw_name, BGW_MAXLEN, "etl_stream worker: job %lld", (long long) s->job_id);
	worker.bgw_main_arg = Int32GetDatum(i);
	worker.bgw_notify_pid = 0;
	if (!RegisterDynamicBackgroundWorker(&worker, NULL))
	{
		free_slot(i);
		return false;
	}
	return true;
}

/* Remember that a job waits for count more workers */
static void
want_workers(Oid dbid, Oid roleid, int64 job_id, int count)
{
	WantedWorkers *free_entry = NULL;

	LWLockAcquire(workers_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < MAX_WANTED; i++)
	{
		WantedWorkers *w = &workers_shared->wanted[i];

		if (w->count > 0 && w->job_id == job_id && w->dbid == dbid)
		{
			w->count = Max(w->count, count);
			LWLockRelease(workers_shared->lock);
			return;
		}
		if (w->count == 0 && free_entry == NULL)
			free_entry = w;
	}
	if (free_entry != NULL)
	{
		free_entry->dbid = dbid;
		free_entry->roleid = roleid;
		free_entry->job_id = job_id;
		free_entry->count = count;
	}
	LWLockRelease(workers_shared->lock);
	if (free_entry == NULL)
		ereport(LOG,
				(errmsg("etl_stream: job %lld waits for %d workers, and too many jobs wait already",
						(long long) job_id, count),
				 errhint("SELECT etl_stream.job_resume(%lld) starts them when workers are free.",
						 (long long) job_id)));
}

/*
 * Claim slots and start up to count workers of a mode, as roleid, in this
 * database.  Returns how many were started; for a job's tasks, the others
 * are remembered, and started when workers end.
 */
int
launch_workers(WorkerMode mode, Oid roleid, int64 job_id, int count,
			   bool wait, int parallel, const char *schedule)
{
	int			started = 0;

	require_workers();
	while (started < count)
	{
		int			i;

		LWLockAcquire(workers_shared->lock, LW_EXCLUSIVE);
		i = claim_slot(mode, MyDatabaseId, roleid, job_id);
		if (i >= 0)
		{
			workers_shared->slots[i].wait = wait;
			workers_shared->slots[i].parallel = parallel;
			if (schedule != NULL)
				strlcpy(workers_shared->slots[i].schedule, schedule, NAMEDATALEN);
		}
		LWLockRelease(workers_shared->lock);
		if (i < 0 || !register_worker(i))
			break;
		started++;
	}
	if (started < count && mode == WORKER_TASKS)
		want_workers(MyDatabaseId, roleid, job_id, count - started);
	return started;
}

/* A worker ends: start one for a job that waits, if there is one */
static void
serve_wanted(void)
{
	for (;;)
	{
		WantedWorkers w = {0};
		int			i = -1;

		LWLockAcquire(workers_shared->lock, LW_EXCLUSIVE);
		for (int k = 0; k < MAX_WANTED; k++)
		{
			if (workers_shared->wanted[k].count > 0)
			{
				w = workers_shared->wanted[k];
				i = claim_slot(WORKER_TASKS, w.dbid, w.roleid, w.job_id);
				if (i >= 0)
					workers_shared->wanted[k].count--;
				break;
			}
		}
		LWLockRelease(workers_shared->lock);
		if (i < 0 || !register_worker(i))
			return;
	}
}

/* Stop the workers of a job of this database: they roll their task back and end */
void
cancel_job_workers(int64 job_id)
{
	if (workers_shared == NULL)
		return;
	LWLockAcquire(workers_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < MAX_WANTED; i++)
		if (workers_shared->wanted[i].job_id == job_id &&
			workers_shared->wanted[i].dbid == MyDatabaseId)
			workers_shared->wanted[i].count = 0;
	for (int i = 0; i < workers_shared->nslots; i++)
	{
		WorkerSlot *s = &workers_shared->slots[i];

		if (s->in_use && s->job_id == job_id && s->dbid == MyDatabaseId &&
			s->mode != WORKER_ANALYZE)
		{
			s->cancel = true;
			if (s->pid != 0)
				(void) kill(s->pid, SIGINT);
		}
	}
	LWLockRelease(workers_shared->lock);
}

/*
 * Workers at work on a job of this database, or starting; with_wanted,
 * those it still waits a free slot for too
 */
int
job_worker_count(int64 job_id, bool with_wanted)
{
	int			n = 0;

	if (workers_shared == NULL)
		return 0;
	LWLockAcquire(workers_shared->lock, LW_SHARED);
	for (int i = 0; i < workers_shared->nslots; i++)
		if (workers_shared->slots[i].in_use &&
			workers_shared->slots[i].job_id == job_id &&
			workers_shared->slots[i].dbid == MyDatabaseId &&
			workers_shared->slots[i].mode != WORKER_ANALYZE)
			n++;
	for (int i = 0; with_wanted && i < MAX_WANTED; i++)
		if (workers_shared->wanted[i].job_id == job_id &&
			workers_shared->wanted[i].dbid == MyDatabaseId)
			n += workers_shared->wanted[i].count;
	LWLockRelease(workers_shared->lock);
	return n;
}

static bool
my_job_cancelled(void)
{
	bool		cancel;

	LWLockAcquire(workers_shared->lock, LW_SHARED);
	cancel = workers_shared->slots[my_slot].cancel;
	LWLockRelease(workers_shared->lock);
	return cancel;
}

/* ----------------------------------------------------------------
 *		What happens when the transaction commits
 * ----------------------------------------------------------------
 */

static void
run_pending_actions(void)
{
	ListCell   *lc;

	foreach(lc, pending_actions)
	{
		PendingAction *a = lfirst(lc);

		switch (a->kind)
		{
			case PENDING_START:
				(void) launch_workers(WORKER_TASKS, a->roleid, a->job_id, a->count,
									  false, 0, NULL);
				break;
			case PENDING_CANCEL:
				cancel_job_workers(a->job_id);
				break;
			case PENDING_ANALYZE:
				LWLockAcquire(workers_shared->lock, LW_EXCLUSIVE);
				workers_shared->slots[a->slot].reserved = false;
				workers_shared->slots[a->slot].claimed_at = GetCurrentTimestamp();
				LWLockRelease(workers_shared->lock);
				if (!register_worker(a->slot))
					ereport(LOG,
							(errmsg("etl_stream: could not start the worker to ANALYZE relation %u after a sync; its statistics are left to autovacuum",
									a->relid),
							 errhint("Raise max_worker_processes, or set etl_stream.deferred_analyze to off.")));
				break;
		}
	}
}

/* The transaction (or the subtransaction that asked for it) aborts */
static void
drop_pending_action(PendingAction *a)
{
	if (a->kind == PENDING_ANALYZE)
		free_slot(a->slot);
	pfree(a);
}

static void
forget_pending_actions(bool aborted)
{
	ListCell   *lc;

	foreach(lc, pending_actions)
	{
		if (aborted)
			drop_pending_action(lfirst(lc));
		else
			pfree(lfirst(lc));
	}
	list_free(pending_actions);
	pending_actions = NIL;
}

static void
workers_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			/* none of it may fail the commit: launching only logs */
			run_pending_actions();
			forget_pending_actions(false);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			forget_pending_actions(true);
			break;
		default:
			break;
	}
}

static void
workers_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	foreach(lc, pending_actions)
	{
		PendingAction *a = lfirst(lc);

		if (a->subid != mySubid)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			a->subid = parentSubid;
		else if (event == SUBXACT_EVENT_ABORT_SUB)
		{
			pending_actions = foreach_delete_current(pending_actions, lc);
			drop_pending_action(a);
		}
	}
}

static void
add_pending_action(PendingKind kind, int64 job_id, int count, Oid roleid, Oid relid,
				   int slot)
{
	PendingAction *a = MemoryContextAllocZero(TopMemoryContext, sizeof(PendingAction));
	MemoryContext oldcxt;

	if (!callbacks_registered)
	{
		RegisterXactCallback(workers_xact_callback, NULL);
		RegisterSubXactCallback(workers_subxact_callback, NULL);
		callbacks_registered = true;
	}
	a->kind = kind;
	a->subid = GetCurrentSubTransactionId();
	a->job_id = job_id;
	a->count = count;
	a->roleid = roleid;
	a->relid = relid;
	a->slot = slot;
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	pending_actions = lappend(pending_actions, a);
	MemoryContextSwitchTo(oldcxt);
}

void
start_workers_at_commit(int64 job_id, int count, Oid roleid)
{
	require_worker_budget();
	add_pending_action(PENDING_START, job_id, count, roleid, InvalidOid, -1);
}

/*
 * A sync's ANALYZE, in a worker running as the sync's role, after commit.
 * The worker's slot is reserved now, so that the run can say the ANALYZE
 * will happen: false, and nothing reserved, when no slot is free (the
 * caller ANALYZEs in the run instead).  The reservation is released if the
 * transaction aborts.
 */
bool
analyze_at_commit(Oid relid)
{
	int			i;

	require_workers();
	LWLockAcquire(workers_shared->lock, LW_EXCLUSIVE);
	i = claim_slot(WORKER_ANALYZE, MyDatabaseId, GetUserId(), 0);
	if (i >= 0)
	{
		workers_shared->slots[i].reserved = true;
		workers_shared->slots[i].relid = relid;
	}
	LWLockRelease(workers_shared->lock);
	if (i < 0)
		return false;
	add_pending_action(PENDING_ANALYZE, 0, 0, GetUserId(), relid, i);
	return true;
}

/* ----------------------------------------------------------------
 *		SQL-callable helpers of sql/objects/85_jobs.sql
 * ----------------------------------------------------------------
 */

/* etl_stream._start_workers(job bigint, workers integer, owner name) */
Datum
etl_stream_start_workers(PG_FUNCTION_ARGS)
{
	int64		job_id = PG_GETARG_INT64(0);
	int			count = PG_GETARG_INT32(1);
	Oid			owner = get_role_oid(NameStr(*PG_GETARG_NAME(2)), false);

	require_workers();
	/* a worker runs as the job's owner: never as anyone the caller is not */
	if (!has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to start workers as role \"%s\"",
						NameStr(*PG_GETARG_NAME(2)))));
	start_workers_at_commit(job_id, count, owner);
	PG_RETURN_VOID();
}

/* etl_stream._cancel_workers(job bigint): when the transaction commits */
Datum
etl_stream_cancel_workers(PG_FUNCTION_ARGS)
{
	int64		job_id = PG_GETARG_INT64(0);

	if (workers_shared == NULL)
		PG_RETURN_VOID();
	LWLockAcquire(workers_shared->lock, LW_SHARED);
	for (int i = 0; i < workers_shared->nslots; i++)
	{
		WorkerSlot *s = &workers_shared->slots[i];

		if (s->in_use && s->job_id == job_id && s->dbid == MyDatabaseId &&
			!has_privs_of_role(GetUserId(), s->roleid))
		{
			LWLockRelease(workers_shared->lock);
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to cancel etl_stream job %lld",
							(long long) job_id)));
		}
	}
	LWLockRelease(workers_shared->lock);
	add_pending_action(PENDING_CANCEL, job_id, 0, InvalidOid, InvalidOid, -1);
	PG_RETURN_VOID();
}

/* etl_stream._worker_alive(pid integer): an etl_stream worker with that pid runs */
Datum
etl_stream_worker_alive(PG_FUNCTION_ARGS)
{
	int			pid = PG_GETARG_INT32(0);
	bool		alive = false;

	if (workers_shared != NULL && pid != 0)
	{
		LWLockAcquire(workers_shared->lock, LW_SHARED);
		for (int i = 0; i < workers_shared->nslots && !alive; i++)
			alive = workers_shared->slots[i].in_use &&
				workers_shared->slots[i].pid == pid;
		LWLockRelease(workers_shared->lock);
	}
	PG_RETURN_BOOL(alive);
}

/* etl_stream._job_workers(job bigint, with_waiting boolean) */
Datum
etl_stream_job_workers(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(job_worker_count(PG_GETARG_INT64(0), PG_GETARG_BOOL(1)));
}

/* ----------------------------------------------------------------
 *		The worker
 * ----------------------------------------------------------------
 */

/* A task as a worker claimed it */
typedef struct ClaimedTask
{
	int64		task_id;
	char	   *table_name;
	char	   *range_on;
	char	   *range_from;
	char	   *range_to;
	int			attempt;
	bool		wait;
	bool		backfill;
	bool		repair;
	bool		sweep;			/* a range of a sweep_deletes job */
} ClaimedTask;

static void
begin_worker_transaction(const char *activity)
{
	const char *prefix = "etl_stream worker: ";

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
	/* ps already starts with the worker's name: show what it does after it */
	if (strncmp(activity, prefix, strlen(prefix)) == 0)
		activity += strlen(prefix);
	set_ps_display(activity);
}

static void
end_worker_transaction(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	set_ps_display("idle");
}

static char *
copy_result(int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

/*
 * Claim the next task of the job whose dependencies are done.  False when
 * there is none; *waiting then says whether some wait for running ones.
 */
static bool
claim_task(int64 job_id, ClaimedTask *task, bool *waiting, MemoryContext cxt)
{
	SqlArgs		args = {0};
	bool		claimed;

	*waiting = false;
	begin_worker_transaction("etl_stream worker: claiming a task");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sql_arg(&args, INT8OID, Int64GetDatum(job_id), false);
	sql_arg(&args, INT4OID, Int32GetDatum(MyProcPid), false);
	exec_sql("UPDATE etl_stream.tasks t"
			 "   SET state = 'running', worker_pid = $2, attempts = t.attempts + 1,"
			 "       started_at = now(), finished_at = NULL"
			 "  FROM etl_stream.jobs j"
			 " WHERE j.job_id = t.job_id AND j.state IN ('queued', 'running')"
			 "   AND t.task_id = (SELECT c.task_id FROM etl_stream.tasks c"
			 "                     WHERE c.job_id = $1 AND c.state = 'pending'"
			 "                       AND NOT EXISTS (SELECT FROM etl_stream.tasks d"
			 "                                        WHERE d.job_id = c.job_id"
			 "                                          AND d.position = ANY (c.depends_on)"
			 "                                          AND d.state <> 'done')"
			 "                     ORDER BY c.position FOR UPDATE SKIP LOCKED LIMIT 1)"
			 " RETURNING t.task_id, t.table_name, t.range_on, t.range_from, t.range_to,"
			 "           t.attempts, j.wait, j.kind IN ('backfill', 'repair'), j.kind = 'repair',"
			 "           j.kind = 'sweep_deletes'",
			 &args);
	claimed = SPI_processed > 0;
	if (claimed)
	{
		task->task_id = strtoll(copy_result(1, cxt), NULL, 10);
		task->table_name = copy_result(2, cxt);
		task->range_on = copy_result(3, cxt);
		task->range_from = copy_result(4, cxt);
		task->range_to = copy_result(5, cxt);
		task->attempt = atoi(copy_result(6, cxt));
		task->wait = strcmp(copy_result(7, cxt), "t") == 0;
		task->backfill = strcmp(copy_result(8, cxt), "t") == 0;
		task->repair = strcmp(copy_result(9, cxt), "t") == 0;
		task->sweep = strcmp(copy_result(10, cxt), "t") == 0;
		args.n = 1;
		exec_sql("UPDATE etl_stream.jobs SET state = 'running',"
				 "       started_at = coalesce(started_at, now())"
				 " WHERE job_id = $1 AND state = 'queued'", &args);
	}
	else
	{
		args.n = 1;
		exec_sql("SELECT EXISTS (SELECT FROM etl_stream.tasks"
				 "                WHERE job_id = $1 AND state = 'pending')"
				 "   AND EXISTS (SELECT FROM etl_stream.tasks"
				 "                WHERE job_id = $1 AND state = 'running'"
				 "                  AND etl_stream._worker_alive(worker_pid))"
				 "   AND EXISTS (SELECT FROM etl_stream.jobs"
				 "                WHERE job_id = $1 AND state IN ('queued', 'running'))",
				 &args);
		*waiting = strcmp(copy_result(1, cxt), "t") == 0;
	}
	SPI_finish();
	end_worker_transaction();
	return claimed;
}

/* The task's outcome, from its run (run_id) or from an error out of it */
static void
record_task(int64 task_id, int64 run_id, const ErrorData *error)
{
	SqlArgs		args = {0};

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sql_arg(&args, INT8OID, Int64GetDatum(task_id), false);
	sql_arg(&args, INT8OID, Int64GetDatum(run_id), run_id == 0);
	sql_arg_text(&args, error == NULL ? NULL :
				 error->sqlerrcode == ERRCODE_QUERY_CANCELED ? "cancelled" : "failed");
	sql_arg_text(&args, error ? unpack_sql_state(error->sqlerrcode) : NULL);
	sql_arg_text(&args, error ? error->message : NULL);
	sql_arg_text(&args, error ? error->detail : NULL);
	sql_arg_text(&args, error ? error->hint : NULL);
	exec_sql("SELECT etl_stream._task_finished($1, $2, $3, $4, $5, $6, $7)", &args);
	SPI_finish();
}

/*
 * A range of a sweep_deletes job: etl_stream._sweep_chunk() compares it
 * and records it as a run, which is returned (in the caller's context) as
 * run_sync() returns its own.  etl_stream.progress shows it meanwhile, in
 * phase pull, with its range as the slice.
 */
static Datum
run_sweep_chunk(int64 job_id, const ClaimedTask *task, int attempt)
{
	SqlArgs		args = {0};
	Datum		row;
	bool		isnull;

	(void) progress_begin(task->table_name, job_id, task->task_id,
						  psprintf("keys [%s, %s%s", task->range_from ? task->range_from : "first",
								   task->range_to ? task->range_to : "last",
								   task->range_to ? ")" : "]"));
	progress_phase(RUN_PHASE_PULL);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sql_arg(&args, INT8OID, Int64GetDatum(task->task_id), false);
	sql_arg(&args, INT4OID, Int32GetDatum(attempt), false);
	exec_sql("SELECT etl_stream._sweep_chunk($1, $2)", &args);
	row = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	row = SPI_datumTransfer(row, false, -1);
	SPI_finish();
	progress_end();
	return row;
}

/*
 * Run one task in a transaction of its own.  An error out of the run (a
 * cancel, or the registration gone) rolls the task back; it is recorded as
 * cancelled or failed, and the worker goes on.
 */
static void
run_task(int64 job_id, const ClaimedTask *task, MemoryContext cxt)
{
	SyncRequest req = {0};

	req.name = task->table_name;
	req.wait = task->backfill || task->wait;
	req.range_on = task->range_on;
	req.range_from = task->range_from;
	req.range_to = task->range_to;
	req.attempt = task->attempt;
	req.job_id = job_id;
	req.task_id = task->task_id;
	req.backfill = task->backfill;
	req.repair = task->repair;

	PG_TRY();
	{
		/* each attempt commits; a transient failure is tried again (retry.c) */
		for (;;)
		{
			Datum		row;
			bool		isnull;
			int64		delay;
			SqlArgs		args = {0};

			begin_worker_transaction(psprintf("etl_stream worker: job %lld, task %lld, table %s",
											  (long long) job_id, (long long) task->task_id,
											  task->table_name));
			row = task->sweep ? run_sweep_chunk(job_id, task, req.attempt) : run_sync(&req);
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			delay = retry_delay_ms(row);
			sql_arg(&args, INT8OID, Int64GetDatum(task->task_id), false);
			if (delay >= 0)
				exec_sql("UPDATE etl_stream.tasks SET attempts = attempts + 1"
						 " WHERE task_id = $1", &args);
			SPI_finish();
			if (delay < 0)
				record_task(task->task_id,
							DatumGetInt64(GetAttributeByName((HeapTupleHeader) DatumGetPointer(row),
															 "run_id", &isnull)),
							NULL);
			end_worker_transaction();
			if (delay < 0)
				break;
			wait_before_retry(delay, task->table_name, req.attempt + 1);
			req.attempt++;
		}
	}
	PG_CATCH();
	{
		ErrorData  *error;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(cxt);
		error = CopyErrorData();
		EmitErrorReport();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		RESUME_INTERRUPTS();

		begin_worker_transaction("etl_stream worker: recording a task");
		record_task(task->task_id, 0, error);
		end_worker_transaction();
	}
	PG_END_TRY();
}

/* The job ends when its last worker does; a backfill's target is analyzed */
static void
finish_job(int64 job_id)
{
	SqlArgs		args = {0};
	char	   *target;

	begin_worker_transaction("etl_stream worker: finishing the job");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (my_job_cancelled())
	{
		/* the caller of a parallel sync_all was cancelled: no job_cancel ran */
		sql_arg(&args, INT8OID, Int64GetDatum(job_id), false);
		exec_sql("UPDATE etl_stream.jobs SET state = 'cancelled'"
				 " WHERE job_id = $1 AND state IN ('queued', 'running')", &args);
		exec_sql("UPDATE etl_stream.tasks SET state = 'cancelled', finished_at = now()"
				 " WHERE job_id = $1 AND state = 'pending'", &args);
		args.n = 0;
	}
	sql_arg(&args, INT8OID, Int64GetDatum(job_id), false);
	exec_sql("SELECT etl_stream._finish_job($1)", &args);
	target = SPI_processed > 0 ? copy_result(1, TopMemoryContext) : NULL;
	SPI_finish();
	end_worker_transaction();

	/* the setting as this worker sees it: the server's, database's or role's */
	if (target != NULL && etl_stream_analyze_threshold >= 0)
	{
		begin_worker_transaction(psprintf("etl_stream worker: ANALYZE %s", target));
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		exec_sql(psprintf("ANALYZE %s", target), NULL);
		SPI_finish();
		end_worker_transaction();
	}
}

/* The tasks of a job, one after the other, until none is left */
static void
run_job_tasks(int64 job_id)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext,
											  "etl_stream worker task",
											  ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		ClaimedTask task;
		bool		waiting;

		CHECK_FOR_INTERRUPTS();
		if (my_job_cancelled())
			break;
		MemoryContextReset(cxt);
		if (!claim_task(job_id, &task, &waiting, cxt))
		{
			if (!waiting)
				break;
			/* the tasks left wait for others still running */
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 TASK_POLL_MS, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}
		run_task(job_id, &task, cxt);
	}
	finish_job(job_id);
}

/*
 * A sync's deferred ANALYZE.  The table may be gone by now, or go while we
 * look: lock it first (as ANALYZE would), then see whether it is there.
 */
static void
analyze_relation(Oid relid)
{
	char	   *name;

	begin_worker_transaction("etl_stream worker: ANALYZE after a sync");
	LockRelationOid(relid, ShareUpdateExclusiveLock);
	name = get_rel_name(relid);
	if (name != NULL)
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		exec_sql(psprintf("ANALYZE %s",
						  quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
													 name)), NULL);
		SPI_finish();
	}
	end_worker_transaction();
}

static void
worker_on_exit(int code, Datum arg)
{
	if (my_slot < 0)
		return;
	free_slot(my_slot);
	my_slot = -1;
	/* however it ends (terminated, say): a job waiting for a slot may have it */
	if (PostmasterIsAlive())
		serve_wanted();
}

void
etl_stream_worker_main(Datum main_arg)
{
	WorkerSlot	me;

	my_slot = DatumGetInt32(main_arg);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	before_shmem_exit(worker_on_exit, (Datum) 0);

	LWLockAcquire(workers_shared->lock, LW_EXCLUSIVE);
	workers_shared->slots[my_slot].pid = MyProcPid;
	me = workers_shared->slots[my_slot];
	LWLockRelease(workers_shared->lock);

	/* as the role that asked; never as anyone else */
	BackgroundWorkerInitializeConnectionByOid(me.dbid, me.roleid, 0);
	pgstat_report_appname(me.mode == WORKER_ANALYZE ? "etl_stream analyze" :
						  psprintf("etl_stream job %lld", (long long) me.job_id));

	switch (me.mode)
	{
		case WORKER_SYNC_ALL:
			create_sync_all_job(me.job_id, me.wait, me.parallel,
								me.schedule[0] != '\0' ? me.schedule : NULL);
			run_job_tasks(me.job_id);
			break;
		case WORKER_TASKS:
			run_job_tasks(me.job_id);
			break;
		case WORKER_ANALYZE:
			analyze_relation(me.relid);
			break;
	}

	proc_exit(0);				/* worker_on_exit frees the slot */
}
