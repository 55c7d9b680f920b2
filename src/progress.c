/*-------------------------------------------------------------------------
 *
 * progress.c
 *		  Live progress of runs: a fixed array of slots in shared memory,
 *		  one per run going on in any backend or worker, and the
 *		  etl_stream.progress view that reads them.
 *
 * A run claims a slot when it starts (under the one LWLock, which only
 * claiming and freeing take), updates its phase and counters as it goes
 * (under the slot's spinlock, once per landed batch, never per row), and
 * frees it when it ends.  A slot is also freed when the (sub)transaction
 * that claimed it aborts, and when the backend exits, pg_terminate_backend
 * included: nothing a run leaves behind can keep a slot.
 *
 * There is a slot for every backend (MaxBackends), and a backend runs one
 * thing at a time, so a run never waits for a slot.  Without etl_stream in
 * shared_preload_libraries there is no shared memory: runs go on without
 * reporting, and the view says what to set.
 *
 * IDENTIFICATION
 *		  src/progress.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "etl_stream.h"

#define PROGRESS_TRANCHE	"etl_stream progress"

typedef struct ProgressSlot
{
	slock_t		mutex;			/* guards everything below but pid */
	int			pid;			/* 0: free; set and cleared under the LWLock */
	Oid			dbid;
	Oid			roleid;
	RunPhase	phase;
	char		table_name[NAMEDATALEN];
	char		slice[2 * NAMEDATALEN];	/* a task's slice, "" if none */
	int64		job_id;			/* 0: none */
	int64		task_id;
	TimestampTz started_at;
	TimestampTz phase_started_at;
	TimestampTz pull_started_at;	/* 0 until the pull starts */
	TimestampTz pull_ended_at;	/* 0 until it ends */
	int64		rows_pulled;
	int64		rows_landed;
	int64		bytes_pulled;
	int64		rows_estimate;	/* -1: unknown */
	int64		rows_merged;	/* -1: not yet known */
	char		sqlstate[6];	/* why it is ending, if known (progress_failing) */
	char		message[ENDED_MESSAGE_LEN];
} ProgressSlot;

typedef struct ProgressShared
{
	LWLock	   *lock;			/* claiming and freeing slots, and ended[] */
	int			nslots;
	uint64		next_seq;
	EndedRun	ended[ENDED_RUNS];	/* runs that ended unrecorded */
	ProgressSlot slots[FLEXIBLE_ARRAY_MEMBER];
} ProgressShared;

static ProgressShared *progress_shared = NULL;

/* This backend's run: its slot, and the subtransaction that claimed it */
static ProgressSlot *my_slot = NULL;
static SubTransactionId my_slot_subid = InvalidSubTransactionId;
static bool callbacks_registered = false;

/* ended[] entries this backend's transaction is recording (by seq) */
static bool claimed_ended = false;

PG_FUNCTION_INFO_V1(etl_stream_progress);

static Size
progress_shmem_size(void)
{
	return add_size(offsetof(ProgressShared, slots),
					mul_size(MaxBackends, sizeof(ProgressSlot)));
}

/* From the shmem_request_hook (etl_stream.c): what the slots need */
void
progress_shmem_request(void)
{
	RequestAddinShmemSpace(progress_shmem_size());
	RequestNamedLWLockTranche(PROGRESS_TRANCHE, 1);
}

/* From the shmem_startup_hook, under AddinShmemInitLock */
void
progress_shmem_init(void)
{
	bool		found;

	progress_shared = ShmemInitStruct("etl_stream progress",
									  progress_shmem_size(), &found);
	if (!found)
	{
		progress_shared->lock = &(GetNamedLWLockTranche(PROGRESS_TRANCHE))->lock;
		progress_shared->nslots = MaxBackends;
		progress_shared->next_seq = 0;
		memset(progress_shared->ended, 0, sizeof(progress_shared->ended));
		for (int i = 0; i < MaxBackends; i++)
		{
			SpinLockInit(&progress_shared->slots[i].mutex);
			progress_shared->slots[i].pid = 0;
		}
	}
}

const char *
run_phase_name(RunPhase phase)
{
	switch (phase)
	{
		case RUN_PHASE_LOCK:
			return "lock";
		case RUN_PHASE_CONNECT:
			return "connect";
		case RUN_PHASE_PULL:
			return "pull";
		case RUN_PHASE_MERGE:
			return "merge";
		case RUN_PHASE_FINISH:
			return "finish";
	}
	return "?";
}

/*
 * Keep what the slot knows of a run that ends without its record (it was
 * cancelled, or its backend terminated: the record it wrote, if any, is
 * rolled back) in ended[], for a later run to record.  Called with the
 * LWLock held.  When ended[] is full the oldest unclaimed entry goes.
 */
static void
keep_ended_run(const ProgressSlot *s, bool terminated)
{
	EndedRun   *e = NULL;

	for (int i = 0; i < ENDED_RUNS; i++)
	{
		EndedRun   *c = &progress_shared->ended[i];

		if (c->seq == 0)
		{
			e = c;
			break;
		}
		if (c->claimed_by == 0 && (e == NULL || c->seq < e->seq))
			e = c;
	}
	if (e == NULL)
		return;					/* all being recorded right now */

	SpinLockAcquire((slock_t *) &s->mutex);
	e->seq = ++progress_shared->next_seq;
	e->claimed_by = 0;
	e->pid = s->pid;
	e->dbid = s->dbid;
	e->roleid = s->roleid;
	strlcpy(e->table_name, s->table_name, sizeof(e->table_name));
	e->job_id = s->job_id;
	e->task_id = s->task_id;
	e->started_at = s->started_at;
	e->ended_at = GetCurrentTimestamp();
	e->phase = s->phase;
	e->rows_pulled = s->rows_pulled;
	e->rows_landed = s->rows_landed;
	e->terminated = terminated;
	strlcpy(e->sqlstate, s->sqlstate, sizeof(e->sqlstate));
	strlcpy(e->message, s->message, sizeof(e->message));
	SpinLockRelease((slock_t *) &s->mutex);
}

/*
 * Free this backend's slot: the run ended (recorded), or it ended without
 * its record (aborted, or exiting), which is then kept in ended[].
 */
static void
free_my_slot(bool recorded, bool terminated)
{
	if (my_slot == NULL)
		return;
	LWLockAcquire(progress_shared->lock, LW_EXCLUSIVE);
	if (!recorded)
		keep_ended_run(my_slot, terminated);
	my_slot->pid = 0;
	LWLockRelease(progress_shared->lock);
	my_slot = NULL;
	my_slot_subid = InvalidSubTransactionId;
}

/*
 * The ended[] entries this backend claimed to record are done with: gone
 * when their records committed, free for another run when they did not.
 */
static void
release_claimed(bool recorded)
{
	if (!claimed_ended || progress_shared == NULL)
		return;
	LWLockAcquire(progress_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < ENDED_RUNS; i++)
	{
		EndedRun   *e = &progress_shared->ended[i];

		if (e->claimed_by != MyProcPid)
			continue;
		e->claimed_by = 0;
		if (recorded)
			e->seq = 0;
	}
	LWLockRelease(progress_shared->lock);
	claimed_ended = false;
}

static void
progress_on_exit(int code, Datum arg)
{
	free_my_slot(false, true);
	release_claimed(false);
}

static void
progress_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		free_my_slot(false, false);
		release_claimed(false);
	}
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
		release_claimed(true);
}

static void
progress_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && my_slot != NULL &&
		my_slot_subid == mySubid)
		free_my_slot(false, false);
}

static void
register_callbacks(void)
{
	if (callbacks_registered)
		return;
	before_shmem_exit(progress_on_exit, (Datum) 0);
	RegisterXactCallback(progress_xact_callback, NULL);
	RegisterSubXactCallback(progress_subxact_callback, NULL);
	callbacks_registered = true;
}

/*
 * Claim a slot for a run of table_name.  False when there is no shared
 * memory (no preload) or, should a backend start runs inside runs, no free
 * slot: the run goes on unseen.
 */
bool
progress_begin(const char *table_name, int64 job_id, int64 task_id,
			   const char *slice)
{
	ProgressSlot *slot = NULL;
	TimestampTz now = GetCurrentTimestamp();

	if (progress_shared == NULL || my_slot != NULL)
		return false;
	register_callbacks();

	LWLockAcquire(progress_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < progress_shared->nslots; i++)
	{
		if (progress_shared->slots[i].pid == 0)
		{
			slot = &progress_shared->slots[i];
			break;
		}
	}
	if (slot != NULL)
	{
		SpinLockAcquire(&slot->mutex);
		slot->pid = MyProcPid;
		slot->dbid = MyDatabaseId;
		slot->roleid = GetUserId();
		slot->phase = RUN_PHASE_LOCK;
		strlcpy(slot->table_name, table_name, NAMEDATALEN);
		slot->table_name[pg_mbcliplen(slot->table_name,
									  strlen(slot->table_name),
									  NAMEDATALEN - 1)] = '\0';
		strlcpy(slot->slice, slice ? slice : "", sizeof(slot->slice));
		slot->job_id = job_id;
		slot->task_id = task_id;
		slot->started_at = now;
		slot->phase_started_at = now;
		slot->pull_started_at = 0;
		slot->pull_ended_at = 0;
		slot->rows_pulled = 0;
		slot->rows_landed = 0;
		slot->bytes_pulled = 0;
		slot->rows_estimate = -1;
		slot->rows_merged = -1;
		slot->sqlstate[0] = '\0';
		slot->message[0] = '\0';
		SpinLockRelease(&slot->mutex);
	}
	LWLockRelease(progress_shared->lock);

	my_slot = slot;
	my_slot_subid = GetCurrentSubTransactionId();
	return slot != NULL;
}

/* Whether this backend is reporting a run (a landing inside it need not) */
bool
progress_active(void)
{
	return my_slot != NULL;
}

void
progress_phase(RunPhase phase)
{
	TimestampTz now;

	if (my_slot == NULL)
		return;
	now = GetCurrentTimestamp();
	SpinLockAcquire(&my_slot->mutex);
	if (my_slot->phase == RUN_PHASE_PULL && phase != RUN_PHASE_PULL)
		my_slot->pull_ended_at = now;
	if (phase == RUN_PHASE_PULL)
	{
		/* a pull started again (a direct load fell back to staging) */
		my_slot->pull_started_at = now;
		my_slot->pull_ended_at = 0;
		my_slot->rows_pulled = 0;
		my_slot->rows_landed = 0;
		my_slot->bytes_pulled = 0;
	}
	my_slot->phase = phase;
	my_slot->phase_started_at = now;
	SpinLockRelease(&my_slot->mutex);
}

void
progress_estimate(int64 rows)
{
	if (my_slot == NULL)
		return;
	SpinLockAcquire(&my_slot->mutex);
	my_slot->rows_estimate = rows;
	SpinLockRelease(&my_slot->mutex);
}

/* After each landed batch */
void
progress_pulled(const LandCounts *counts)
{
	if (my_slot == NULL)
		return;
	SpinLockAcquire(&my_slot->mutex);
	my_slot->rows_pulled = counts->rows_pulled;
	my_slot->rows_landed = counts->rows_landed;
	my_slot->bytes_pulled = counts->bytes_pulled;
	SpinLockRelease(&my_slot->mutex);
}

void
progress_merged(int64 rows)
{
	if (my_slot == NULL)
		return;
	SpinLockAcquire(&my_slot->mutex);
	my_slot->rows_merged = rows;
	SpinLockRelease(&my_slot->mutex);
}

/* The run was recorded: its slot is free */
void
progress_end(void)
{
	free_my_slot(true, false);
}

/*
 * The run is being ended by this error, which is raised on (a cancel, a
 * statement_timeout): the record written afterwards says so.
 */
void
progress_failing(const ErrorData *error)
{
	if (my_slot == NULL)
		return;
	SpinLockAcquire(&my_slot->mutex);
	strlcpy(my_slot->sqlstate, unpack_sql_state(error->sqlerrcode),
			sizeof(my_slot->sqlstate));
	strlcpy(my_slot->message, error->message ? error->message : "",
			sizeof(my_slot->message));
	SpinLockRelease(&my_slot->mutex);
}

/*
 * Claim up to max runs of this database that ended unrecorded, of roles the
 * current user has the privileges of, into out[]; the caller records them
 * in this transaction.  They leave ended[] when it commits.
 */
int
progress_claim_ended(EndedRun *out, int max)
{
	int			n = 0;

	if (progress_shared == NULL)
		return 0;
	register_callbacks();
	LWLockAcquire(progress_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < ENDED_RUNS && n < max; i++)
	{
		EndedRun   *e = &progress_shared->ended[i];

		if (e->seq == 0 || e->claimed_by != 0 || e->dbid != MyDatabaseId)
			continue;
		if (!has_privs_of_role(GetUserId(), e->roleid))
			continue;
		e->claimed_by = MyProcPid;
		out[n++] = *e;
	}
	LWLockRelease(progress_shared->lock);
	if (n > 0)
		claimed_ended = true;
	return n;
}

/*
 * The rate of the pull so far (or of the whole pull, once it ended), and
 * the time it still needs at that rate.
 */
static double
pull_rate(const ProgressSlot *s, TimestampTz now)
{
	TimestampTz until = s->pull_ended_at ? s->pull_ended_at : now;
	double		secs;

	if (s->pull_started_at == 0 || until <= s->pull_started_at)
		return -1;
	secs = (double) (until - s->pull_started_at) / USECS_PER_SEC;
	return s->rows_pulled / secs;
}

static Datum
interval_of_usecs(int64 usecs)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = usecs;
	return IntervalPGetDatum(iv);
}

#define PROGRESS_COLUMNS 17

/*
 * One row of the view.  The columns are filled in order and only as many
 * as the SQL declaration has: the library serves an older release's
 * declaration until ALTER EXTENSION UPDATE, and columns are only added at
 * the end.
 */
static void
put_slot_row(ReturnSetInfo *rsinfo, const ProgressSlot *s, TimestampTz now)
{
	Datum		values[PROGRESS_COLUMNS];
	bool		nulls[PROGRESS_COLUMNS];
	double		rate = pull_rate(s, now);
	char	   *role = GetUserNameFromId(s->roleid, true);
	int			i = 0;

	memset(nulls, false, sizeof(nulls));
	values[i++] = Int32GetDatum(s->pid);
	if (role != NULL)
		values[i++] = DirectFunctionCall1(namein, CStringGetDatum(role));
	else
		nulls[i++] = true;
	values[i++] = CStringGetTextDatum(s->table_name);
	values[i++] = CStringGetTextDatum(run_phase_name(s->phase));
	values[i++] = Int64GetDatum(s->rows_pulled);
	values[i++] = Int64GetDatum(s->bytes_pulled);
	if (rate >= 0)
		values[i++] = Float8GetDatum(rate);
	else
		nulls[i++] = true;
	values[i++] = TimestampTzGetDatum(s->started_at);
	values[i++] = TimestampTzGetDatum(s->phase_started_at);
	if (s->rows_estimate >= 0)
		values[i++] = Int64GetDatum(s->rows_estimate);
	else
		nulls[i++] = true;
	/* the time left: while connecting or pulling, at the rate so far */
	if (s->rows_estimate >= 0 && rate > 0 && s->pull_ended_at == 0 &&
		(s->phase == RUN_PHASE_CONNECT || s->phase == RUN_PHASE_PULL))
		values[i++] = interval_of_usecs((int64)
										(Max(s->rows_estimate - s->rows_pulled, 0) /
										 rate * USECS_PER_SEC));
	else
		nulls[i++] = true;
	values[i++] = Int64GetDatum(s->rows_landed);
	if (s->rows_merged >= 0)
		values[i++] = Int64GetDatum(s->rows_merged);
	else
		nulls[i++] = true;
	values[i++] = interval_of_usecs(now - s->started_at);
	if (s->job_id != 0)
		values[i++] = Int64GetDatum(s->job_id);
	else
		nulls[i++] = true;
	if (s->task_id != 0)
		values[i++] = Int64GetDatum(s->task_id);
	else
		nulls[i++] = true;
	if (s->slice[0] != '\0')
		values[i++] = CStringGetTextDatum(s->slice);
	else
		nulls[i++] = true;
	Assert(i == PROGRESS_COLUMNS);
	Assert(rsinfo->setDesc->natts <= PROGRESS_COLUMNS);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * etl_stream._progress(): the slots in use for this database, as the
 * etl_stream.progress view shows them.  A role sees the runs of roles
 * whose privileges it has, as in pg_stat_activity.
 */
Datum
etl_stream_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ProgressSlot *copies;
	int			n = 0;
	TimestampTz now = GetCurrentTimestamp();

	if (progress_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("etl_stream.progress needs etl_stream to be loaded at server start"),
				 errhint("Add etl_stream to shared_preload_libraries in postgresql.conf and restart the server.")));

	InitMaterializedSRF(fcinfo, 0);

	/* copy under the locks, build the rows (which may look up roles) after */
	copies = palloc(sizeof(ProgressSlot) * progress_shared->nslots);
	LWLockAcquire(progress_shared->lock, LW_SHARED);
	for (int i = 0; i < progress_shared->nslots; i++)
	{
		ProgressSlot *s = &progress_shared->slots[i];

		if (s->pid == 0)
			continue;
		SpinLockAcquire(&s->mutex);
		copies[n] = *s;
		SpinLockRelease(&s->mutex);
		if (copies[n].dbid == MyDatabaseId)
			n++;
	}
	LWLockRelease(progress_shared->lock);

	for (int i = 0; i < n; i++)
	{
		if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS) &&
			!has_privs_of_role(GetUserId(), copies[i].roleid))
			continue;
		put_slot_row(rsinfo, &copies[i], now);
	}
	return (Datum) 0;
}
