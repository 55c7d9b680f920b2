/*-------------------------------------------------------------------------
 *
 * etl_stream.c
 *		  The module's entry: the magic block, and the settings registered
 *		  when the library is loaded (later also the background workers).
 *
 * The files of src/ read in the order data flows: query.c (SQL entry
 * points) -> options.c (the source's definition) -> connection.c (talking
 * to MySQL) -> convert.c (MySQL text values to PostgreSQL datums) ->
 * land.c (bulk-inserting them into staging, or into an empty target).
 * The sync itself (cutoffs, merges, run history) is SQL in
 * sql/etl_stream--*.sql.
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
double		etl_stream_analyze_threshold = 0.1;

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomIntVariable("etl_stream.history_days",
							"Days of sync history to keep in etl_stream.runs.",
							"Older runs are deleted when a sync finishes. 0 keeps every run.",
							&etl_stream_history_days,
							30, 0, 36500,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomRealVariable("etl_stream.analyze_threshold",
							 "Fraction of a target's rows a sync must change to ANALYZE it.",
							 "The sync runs ANALYZE in its own transaction when it inserted, updated "
							 "or deleted more than this fraction of the target's rows (a target never "
							 "analyzed counts as empty). -1 leaves statistics to autovacuum.",
							 &etl_stream_analyze_threshold,
							 0.1, -1.0, 1000.0,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("etl_stream");
}
