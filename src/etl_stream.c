/*-------------------------------------------------------------------------
 *
 * etl_stream.c
 *		  The module's entry: the magic block, the settings, and the shared
 *		  memory a preloaded library asks for.
 *
 * The files of src/ read in the order data flows:
 *   run.c (a sync: lock, cutoff, pull, merge, watermark) and query.c (the
 *   SQL functions that talk to a source directly)
 *   -> options.c (the source's definition)
 *   -> connection.c (talking to MySQL)
 *   -> mysql_types.c, convert.c (a result's columns; its values into datums)
 *   -> land.c (bulk-inserting them into staging, or into an empty target)
 *   -> run.c again (merge by strategy, watermark, ANALYZE)
 *   -> run_record.c (the row in etl_stream.runs)
 * with progress.c beside them all, reporting each run in shared memory, and
 * workers.c and sync_all.c running runs in background workers.
 * The statements a run executes are built by the SQL functions of
 * sql/objects/.
 *
 * IDENTIFICATION
 *		  src/etl_stream.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "utils/guc.h"

#include "etl_stream.h"

PG_MODULE_MAGIC;

/* Days of etl_stream.runs to keep; 0 keeps every run */
int			etl_stream_history_days = 30;

/* Fraction of a target's rows a run must change to ANALYZE it; -1: never */
double		etl_stream_analyze_threshold = 0.1;

/* That ANALYZE in a worker after the run commits, rather than in the run */
bool		etl_stream_deferred_analyze = true;

/* Background workers of etl_stream at once, in the whole cluster */
int			etl_stream_max_workers = 4;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);

static void
etl_stream_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	progress_shmem_request();
	workers_shmem_request();
}

static void
etl_stream_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	progress_shmem_init();
	workers_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

void
_PG_init(void)
{
	DefineCustomIntVariable("etl_stream.history_days",
							"Days of sync history to keep in etl_stream.runs.",
							"Older runs of a table are deleted when a run of it finishes. 0 keeps every run.",
							&etl_stream_history_days,
							30, 0, 36500,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomRealVariable("etl_stream.analyze_threshold",
							 "Fraction of a target's rows a sync must change to ANALYZE it.",
							 "A sync ANALYZEs the target when it inserted, updated or deleted more "
							 "than this fraction of the target's rows (a target never analyzed "
							 "counts as empty): in a worker right after it commits, or before it "
							 "commits (etl_stream.deferred_analyze). -1 leaves statistics to autovacuum.",
							 &etl_stream_analyze_threshold,
							 0.1, -1.0, 1000.0,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("etl_stream.deferred_analyze",
							 "ANALYZE a synced target in a background worker after the sync commits.",
							 "Off: the sync ANALYZEs before it commits, and pays for it. Needs etl_stream "
							 "in shared_preload_libraries; without it, or without a free worker, the "
							 "ANALYZE is done in the sync.",
							 &etl_stream_deferred_analyze,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("etl_stream.max_workers",
							"Background workers etl_stream runs at once.",
							"Jobs share them; a task waits for a free one, it never fails for "
							"want of one. Bounded by max_worker_processes, with the other users of it.",
							&etl_stream_max_workers,
							4, 0, 1024,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("etl_stream");

	/* only a library the postmaster loads can have shared memory */
	if (process_shared_preload_libraries_in_progress)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = etl_stream_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = etl_stream_shmem_startup;
	}
}
