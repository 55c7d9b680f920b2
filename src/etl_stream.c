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
 * with progress.c beside them all, reporting each run in shared memory.
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
#include "utils/guc.h"

#include "etl_stream.h"

PG_MODULE_MAGIC;

/* Days of etl_stream.runs to keep; 0 keeps every run */
int			etl_stream_history_days = 30;

/* Fraction of a target's rows a run must change to ANALYZE it; -1: never */
double		etl_stream_analyze_threshold = 0.1;

void		_PG_init(void);

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
							 "The sync runs ANALYZE on the target before it commits, in the run's "
							 "transaction, when it inserted, updated or deleted more than this "
							 "fraction of the target's rows (a target never analyzed counts as "
							 "empty). -1 leaves statistics to autovacuum.",
							 &etl_stream_analyze_threshold,
							 0.1, -1.0, 1000.0,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("etl_stream");

	progress_init();
}
