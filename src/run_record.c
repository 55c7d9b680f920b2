/*-------------------------------------------------------------------------
 *
 * run_record.c
 *		  The record of a run: one row of etl_stream.runs, with the error's
 *		  facts as columns, the WARNING a failed run gives, and the history
 *		  kept for etl_stream.history_days.
 *
 * A failed run keeps what it had done before it failed (the rows pulled and
 * landed) and its error apart: SQLSTATE, message, detail and hint, and for
 * a value that did not convert, its column, MySQL type, row key and value
 * as shown, straight from convert.c's ValueError.  The error column keeps
 * it all as one text, as before.
 *
 * A run that succeeded also records what the policies did, per column:
 * the values invalid_dates changed (values_changed) and the rows
 * on_bad_value left out (rows_rejected, values_rejected), and says so in
 * one WARNING per column.
 *
 * A run that is cancelled, or whose backend is terminated, cannot write its
 * record: the transaction that would hold it is rolled back.  progress.c
 * keeps what its slot knew in shared memory, and the next run in the
 * database (of a role with the privileges of the one that ran it) records
 * it here, as "cancelled" (or "failed" for another error), with the rows it
 * had pulled and the phase it was in.
 *
 * IDENTIFICATION
 *		  src/run_record.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "etl_stream.h"

static void
add_int8(SqlArgs *a, int64 v)
{
	sql_arg(a, INT8OID, Int64GetDatum(v), false);
}

/* seconds, NULL when negative (a phase not done) */
static void
add_seconds(SqlArgs *a, double s)
{
	sql_arg(a, FLOAT8OID, Float8GetDatum(s), s < 0);
}

static const char *
status_name(RunStatus status)
{
	switch (status)
	{
		case RUN_SUCCESS:
			return "success";
		case RUN_FAILED:
			return "failed";
		case RUN_SKIPPED:
			return "skipped";
		case RUN_TIMED_OUT:
			return "timed_out";
		case RUN_CANCELLED:
			return "cancelled";
	}
	return "?";
}

/*
 * The error as one text: the message, its detail, and what conversion said
 * about the value (column, key, value) in the context, without the call
 * stack around it.
 */
static char *
error_text(const ErrorData *edata)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, edata->message ? edata->message : "");
	if (edata->detail && edata->detail[0] != '\0')
		appendStringInfo(&buf, "\n%s", edata->detail);
	if (edata->context)
	{
		char	   *context = pstrdup(edata->context);
		char	   *line;
		char	   *save;

		for (line = strtok_r(context, "\n", &save); line != NULL;
			 line = strtok_r(NULL, "\n", &save))
		{
			if (strncmp(line, "column \"", 8) == 0)
				appendStringInfo(&buf, "\n%s", line);
		}
	}
	return buf.data;
}

/* The value error that caused the failure, if the failure is one */
static const ValueError *
failed_value(const SyncRun *run)
{
	if (run->error == NULL || !run->value_error.set ||
		run->value_error.sqlerrcode != run->error->sqlerrcode)
		return NULL;
	return &run->value_error;
}

/* ', "name": "value"' (or null) */
static void
append_json_text(StringInfo buf, const char *name, const char *value)
{
	appendStringInfo(buf, ", \"%s\": ", name);
	if (value)
		escape_json(buf, value);
	else
		appendStringInfoString(buf, "null");
}

/*
 * The notes of a run as a JSON object, one member per column:
 * {"c": {"count": 3, "policy": "invalid_dates 'null'", "first_key": ...}}.
 * rejected: the rows left out, else the values changed.  NULL unless the
 * run succeeded (what a failed run did was rolled back).
 */
static char *
notes_json(const SyncRun *run, bool rejected)
{
	StringInfoData buf;
	ListCell   *lc;
	bool		first = true;

	if (run->status != RUN_SUCCESS)
		return NULL;
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	foreach(lc, run->counts.notes)
	{
		ValueNote  *n = lfirst(lc);

		if (n->rejected != rejected)
			continue;
		if (!first)
			appendStringInfoString(&buf, ", ");
		first = false;
		escape_json(&buf, n->column);
		appendStringInfo(&buf, ": {\"count\": %lld", (long long) n->count);
		append_json_text(&buf, "policy", n->policy);
		if (n->changed_to)
			append_json_text(&buf, "changed_to", n->changed_to);
		append_json_text(&buf, "first_key", n->first_key);
		appendStringInfo(&buf, ", \"first_row\": %lld", (long long) n->first_row);
		append_json_text(&buf, "first_value", n->first_value);
		if (n->first_reason)
			append_json_text(&buf, "reason", n->first_reason);
		appendStringInfoChar(&buf, '}');
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * record_run
 *		Insert the run into etl_stream.runs (SPI must be connected) and drop
 *		the table's runs older than etl_stream.history_days.  Returns its
 *		run_id; with row, the row as inserted too, in the SPI caller's memory
 *		context.
 */
int64
record_run(SyncRun *run, Datum *row)
{
	SqlArgs		a = {0};
	const ErrorData *e = run->error;
	const ValueError *ve = failed_value(run);
	const char *failed_phase = NULL;
	int64		run_id;
	bool		isnull;

	if (run->status == RUN_FAILED || run->status == RUN_TIMED_OUT ||
		run->status == RUN_CANCELLED)
		failed_phase = run_phase_name(run->phase);

	sql_arg_text(&a, run->table_name);
	sql_arg(&a, TIMESTAMPTZOID, TimestampTzGetDatum(run->started_at), false);
	sql_arg(&a, TIMESTAMPTZOID, TimestampTzGetDatum(run->finished_at), false);
	sql_arg_text(&a, status_name(run->status));
	sql_arg_text(&a, run->strategy);
	add_int8(&a, run->counts.rows_pulled);
	add_int8(&a, run->counts.rows_landed);
	add_int8(&a, run->rows_inserted);
	add_int8(&a, run->rows_updated);
	add_int8(&a, run->rows_unchanged);
	add_int8(&a, run->rows_deleted);
	sql_arg_text(&a, run->cutoff);
	sql_arg_text(&a, run->new_watermark);
	add_seconds(&a, run->phase_s[RUN_PHASE_CONNECT]);
	add_seconds(&a, run->phase_s[RUN_PHASE_PULL]);
	add_seconds(&a, run->phase_s[RUN_PHASE_MERGE]);
	add_seconds(&a, run->phase_s[RUN_PHASE_FINISH]);
	sql_arg_text(&a, failed_phase);
	sql_arg_text(&a, e ? error_text(e) : run->skip_reason);
	sql_arg_text(&a, run->load_path);
	sql_arg_text(&a, e ? unpack_sql_state(e->sqlerrcode) : NULL);
	sql_arg_text(&a, e ? e->message : NULL);
	sql_arg_text(&a, e ? e->detail : NULL);
	sql_arg_text(&a, e ? e->hint : NULL);
	sql_arg_text(&a, ve ? ve->column : NULL);
	sql_arg_text(&a, ve ? ve->mysql_type : NULL);
	sql_arg_text(&a, ve ? ve->key : NULL);
	sql_arg_text(&a, ve ? ve->value : NULL);
	sql_arg(&a, INT4OID, Int32GetDatum(run->req->attempt), false);
	sql_arg(&a, INT8OID, Int64GetDatum(run->req->job_id), run->req->job_id == 0);
	sql_arg(&a, INT8OID, Int64GetDatum(run->req->task_id), run->req->task_id == 0);
	sql_arg_text(&a, run->statistics);
	sql_arg_text(&a, run->schema_changes);
	sql_arg(&a, INT8OID, Int64GetDatum(run->run_id), run->run_id == 0);
	add_int8(&a, run->status == RUN_SUCCESS ? run->counts.rows_rejected : 0);
	sql_arg_text(&a, notes_json(run, false));
	sql_arg_text(&a, notes_json(run, true));
	sql_arg_text(&a, run->upper_bound);
	add_int8(&a, run->rows_flagged);
	sql_arg_text(&a, run->kind ? run->kind : "sync");
	sql_arg_text(&a, run->bindings);
	exec_sql("INSERT INTO etl_stream.runs"
			 " (table_name, started_at, finished_at, status, strategy,"
			 "  rows_pulled, rows_landed, rows_inserted, rows_updated,"
			 "  rows_unchanged, rows_deleted, cutoff, new_watermark,"
			 "  connect_s, pull_s, merge_s, finish_s, failed_phase, error,"
			 "  load_path, sqlstate, message, detail, hint, error_column,"
			 "  error_mysql_type, error_key, error_value, attempt, job_id,"
			 "  task_id, statistics, schema_changes, run_id, rows_rejected,"
			 "  values_changed, values_rejected, owner, upper_bound, rows_flagged,"
			 "  kind, bindings)"
			 " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
			 "  $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24,"
			 "  $25, $26, $27, $28, $29, $30, $31, $32, $33,"
			 "  coalesce($34, nextval('etl_stream.runs_run_id_seq')), $35,"
			 "  $36::jsonb, $37::jsonb,"
			 "  coalesce((SELECT t.owner FROM etl_stream.tables t WHERE t.name = $1),"
			 "           (SELECT x.owner FROM etl_stream.transforms x WHERE x.name = $1),"
			 "           current_user), $38, $39, $40, $41::jsonb)"
			 " RETURNING *", &a);
	run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										 SPI_fnumber(SPI_tuptable->tupdesc, "run_id"),
										 &isnull));
	if (row != NULL)
		*row = PointerGetDatum(SPI_returntuple(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc));

	/* history is kept for etl_stream.history_days, not for ever */
	if (etl_stream_history_days > 0)
	{
		SqlArgs		old = {0};

		sql_arg_text(&old, run->table_name);
		sql_arg(&old, INT4OID, Int32GetDatum(etl_stream_history_days), false);
		exec_sql("DELETE FROM etl_stream.runs"
				 " WHERE table_name = $1"
				 "   AND finished_at < now() - make_interval(days => $2)", &old);
	}
	return run_id;
}

/*
 * A failed run is returned, not raised (that would roll its record back);
 * the WARNING tells whoever is watching.
 */
void
warn_failed_run(SyncRun *run)
{
	ereport(WARNING,
			(errcode(ERRCODE_WARNING),
			 errmsg("sync of etl_stream table \"%s\" %s while %s: %s",
					run->table_name,
					run->status == RUN_TIMED_OUT ? "timed out" : "failed",
					run_phase_doing(run->phase), error_text(run->error))));
}

/*
 * A run that succeeded names, in one WARNING per column, the values a
 * policy changed and the rows it left out: how many, and the first.  The
 * run's status stays success; its record has the same in values_changed
 * and values_rejected.
 */
void
warn_value_notes(SyncRun *run)
{
	ListCell   *lc;

	foreach(lc, run->counts.notes)
	{
		ValueNote  *n = lfirst(lc);
		char	   *where = n->first_key ? psprintf("key %s", n->first_key)
			: psprintf("row %lld", (long long) n->first_row);
		const char *value = n->first_value ? n->first_value : "";

		if (!n->rejected)
			warn_value_changed(n, psprintf("table \"%s\"", run->table_name));
		else
			ereport(WARNING,
					(errcode(ERRCODE_WARNING),
					 errmsg_plural("%lld row of table \"%s\" was %s by %s: a value of column \"%s\" could not be converted",
								   "%lld rows of table \"%s\" were %s by %s: a value of column \"%s\" could not be converted",
								   n->count, (long long) n->count, run->table_name,
								   strstr(n->policy, "skip") ? "left out" : "quarantined",
								   n->policy, n->column),
					 errdetail("The first was at %s: '%s': %s", where, value,
							   n->first_reason),
					 strstr(n->policy, "skip") ? 0 :
					 errhint("They are in etl_stream.rejects (run %lld); etl_stream.retry_rejects(%s) fetches them again.",
							 (long long) run->run_id,
							 quote_literal_cstr(run->table_name))));
	}
}

/* What a run does in a phase, for messages: "pulling" */
const char *
run_phase_doing(RunPhase phase)
{
	static const char *const doing[] = {
		[RUN_PHASE_LOCK] = "locking",
		[RUN_PHASE_CONNECT] = "connecting",
		[RUN_PHASE_PULL] = "pulling",
		[RUN_PHASE_MERGE] = "merging",
		[RUN_PHASE_FINISH] = "finishing",
	};

	return doing[phase];
}

/*
 * Record the runs of this database that ended without their record, as
 * far as they got.  Called by each run before it starts, inside SPI; the
 * records commit (or roll back, to be tried again) with the caller.  A run
 * of a table dropped since is not recorded.
 */
void
record_ended_runs(void)
{
	EndedRun	ended[ENDED_RUNS];
	int			n = progress_claim_ended(ended, ENDED_RUNS);

	for (int i = 0; i < n; i++)
	{
		EndedRun   *e = &ended[i];
		SyncRequest req = {0};
		SyncRun		run = {0};
		ErrorData	error = {0};
		SqlArgs		a = {0};
		bool		cancelled;

		sql_arg_text(&a, e->table_name);
		exec_sql("SELECT strategy FROM etl_stream.tables WHERE name = $1", &a);
		if (SPI_processed == 0)
			continue;

		req.name = e->table_name;
		req.attempt = 1;
		req.job_id = e->job_id;
		req.task_id = e->task_id;
		run.req = &req;
		run.table_name = e->table_name;
		run.strategy = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		run.started_at = e->started_at;
		run.finished_at = e->ended_at;
		run.phase = e->phase;
		for (int p = 0; p <= RUN_PHASE_FINISH; p++)
			run.phase_s[p] = -1;
		run.counts.rows_pulled = e->rows_pulled;
		run.counts.rows_landed = e->rows_landed;

		if (e->terminated)
		{
			error.sqlerrcode = ERRCODE_ADMIN_SHUTDOWN;
			error.message = psprintf("the backend running it (pid %d) was terminated", e->pid);
		}
		else if (e->sqlstate[0] != '\0')
		{
			error.sqlerrcode = MAKE_SQLSTATE(e->sqlstate[0], e->sqlstate[1], e->sqlstate[2],
											 e->sqlstate[3], e->sqlstate[4]);
			error.message = e->message;
		}
		else
		{
			error.sqlerrcode = ERRCODE_INTERNAL_ERROR;
			error.message = psprintf("its transaction (pid %d) was rolled back before the run was recorded",
									 e->pid);
		}
		cancelled = e->terminated || error.sqlerrcode == ERRCODE_QUERY_CANCELED;
		run.status = cancelled ? RUN_CANCELLED : RUN_FAILED;
		error.detail = psprintf("It was stopped while %s, after %lld rows pulled, and rolled back; this record was written afterwards.",
								run_phase_doing(e->phase), (long long) e->rows_pulled);
		run.error = &error;
		(void) record_run(&run, NULL);
	}
}
