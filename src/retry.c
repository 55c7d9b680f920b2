/*-------------------------------------------------------------------------
 *
 * retry.c
 *		  The attempts of a run that owns its transactions (CALL
 *		  sync_all_proc(), a schedule, a worker's task): after an attempt
 *		  that failed for a transient reason or timed out, wait the table's
 *		  backoff and run again, up to the table's retries.
 *
 * Whether to retry, and after how long, is etl_stream._retry_delay(), from
 * the attempt's row of etl_stream.runs and the table's retries and
 * retry_backoff: each attempt is recorded, and committed, before the next
 * is decided.  The wait holds no lock and no snapshot, answers a cancel at
 * once, and ends the process with the postmaster.  A run inside a caller's
 * transaction (sync(), sync_all()) is never retried: it cannot let go of
 * its locks between attempts.
 *
 * IDENTIFICATION
 *		  src/retry.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

#include "etl_stream.h"

/*
 * After an attempt, its row of etl_stream.runs given: milliseconds to wait
 * before the next attempt, or -1 for none.  SPI must be connected.
 */
int64
retry_delay_ms(Datum run_row)
{
	SqlArgs		args = {0};
	bool		isnull;
	Datum		run_id = GetAttributeByName(DatumGetHeapTupleHeader(run_row), "run_id", &isnull);
	Datum		ms;

	sql_arg(&args, INT8OID, run_id, isnull);
	exec_sql("SELECT ceil(extract(epoch FROM etl_stream._retry_delay(r)) * 1000)::bigint"
			 "  FROM etl_stream.runs r WHERE r.run_id = $1", &args);
	if (SPI_processed == 0)
		return -1;
	ms = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? -1 : DatumGetInt64(ms);
}

/*
 * Wait before the next attempt of a table's run, outside any transaction
 * the caller could have kept: the caller has committed the last attempt.
 */
void
wait_before_retry(int64 ms, const char *table, int next_attempt)
{
	TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	ereport(LOG,
			(errmsg("etl_stream: attempt %d of table \"%s\" in %.1f s",
					next_attempt, table, ms / 1000.0)));
	pgstat_report_activity(STATE_IDLE,
						   psprintf("etl_stream: waiting to retry table \"%s\" (attempt %d)",
									table, next_attempt));
	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);

		CHECK_FOR_INTERRUPTS();
		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
