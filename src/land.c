/*-------------------------------------------------------------------------
 *
 * land.c
 *		  Landing: stream the rows of a remote query into a local table
 *		  through the bulk-insert path that COPY FROM uses: a sync's
 *		  UNLOGGED staging table, or the target itself when a sync loads an
 *		  empty target directly.
 *
 * Rows are converted straight into the table's slots, buffered, and written
 * with table_multi_insert() and a BulkInsertState, never one INSERT per
 * row.  A table with indexes gets its index entries after each batch, and
 * NOT NULL and CHECK constraints are checked row by row, as COPY FROM does.
 * Tables whose rules cannot be kept that way (insert triggers, rules, row
 * security, generated columns, partitioning, deferrable unique constraints)
 * are refused, and so is a caller without INSERT on the table, before any
 * lock on it is taken.  Conversion memory is reset after each flushed
 * batch, so memory does not grow with the number of rows.  After each
 * batch the counts go to the run's slot of etl_stream.progress, and to
 * pg_stat_progress_copy, where the landing shows as a COPY FROM.
 *
 * A value that cannot be converted fails the landing, unless the run's
 * on_bad_value says to leave its row out ('skip') or keep it aside
 * ('quarantine').  PostgreSQL 15 has no soft input errors, so the
 * conversion of each batch's rows runs in a subtransaction of its own; the
 * rows are converted (and checked) before any of them is written, so a
 * failing row is the one being converted: the subtransaction is rolled
 * back, the row is left out, and a new subtransaction goes on with the
 * rest of the batch, whose converted rows are kept.  No row is converted
 * twice, and no write happens inside these subtransactions, so they take
 * no transaction id (docs/bad-data.md has the cost).  What counts as a bad
 * value is a conversion's error (convert.c's ValueError): NOT NULL and
 * CHECK constraints of the table, and its unique indexes, fail the landing
 * as before.
 *
 * land_rows() is the core, for runs and workers; etl_stream.land() is its
 * SQL wrapper.
 *
 * IDENTIFICATION
 *		  src/land.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "commands/progress.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "nodes/makefuncs.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"

#include "source.h"

/* Flush the buffered rows at this many rows or bytes, like COPY FROM */
#define LAND_BATCH_ROWS		1000
#define LAND_BATCH_BYTES	(64 * 1024)

/* What a conversion error needs to name the row: its key values */
typedef struct LandRowInfo
{
	MYSQL_ROW	row;
	unsigned long *lengths;
	int			nkeys;
	int		   *key_index;		/* result column of each key column */
	char	  **key_name;
} LandRowInfo;

PG_FUNCTION_INFO_V1(etl_stream_land);
PG_FUNCTION_INFO_V1(etl_stream_land_refusal);

/*
 * A key value as text in the database encoding: as it is when it is, else
 * its bytes as \xNN (a binary key, or one in a charset received as bytes).
 */
static void
append_key_value(StringInfo buf, const char *s, unsigned long len)
{
	if (pg_verifymbstr(s, len, true) && memchr(s, '\0', len) == NULL)
	{
		appendBinaryStringInfo(buf, s, len);
		return;
	}
	for (unsigned long j = 0; j < len; j++)
		appendStringInfo(buf, "\\x%02x", (unsigned char) s[j]);
}

/* The row's key as "(a, b)=(1, 2)", for conversion errors (RowKeyCallback) */
static bool
append_land_row_key(StringInfo buf, void *arg)
{
	LandRowInfo *info = (LandRowInfo *) arg;

	if (info->nkeys == 0 || info->row == NULL)
		return false;
	appendStringInfoChar(buf, '(');
	for (int i = 0; i < info->nkeys; i++)
		appendStringInfo(buf, "%s%s", i > 0 ? ", " : "", info->key_name[i]);
	appendStringInfoString(buf, ")=(");
	for (int i = 0; i < info->nkeys; i++)
	{
		int			k = info->key_index[i];

		if (i > 0)
			appendStringInfoString(buf, ", ");
		if (info->row[k] == NULL)
			appendStringInfoString(buf, "NULL");
		else
			append_key_value(buf, info->row[k], Min(info->lengths[k], 60));
	}
	appendStringInfoChar(buf, ')');
	return true;
}

/*
 * The row's key as a JSON object of the key columns' values as MySQL sent
 * them, {"id": "42"}, or NULL without a key.  A value that is not text in
 * the database encoding is {"hex": "aaa1"}: retry_rejects fetches the row
 * by it as X'aaa1'.
 */
static char *
land_row_key_json(const LandRowInfo *info)
{
	StringInfoData buf;

	if (info->nkeys == 0)
		return NULL;
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < info->nkeys; i++)
	{
		int			k = info->key_index[i];

		if (i > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, info->key_name[i]);
		appendStringInfoString(&buf, ": ");
		if (info->row[k] == NULL)
			appendStringInfoString(&buf, "null");
		else if (pg_verifymbstr(info->row[k], info->lengths[k], true) &&
				 memchr(info->row[k], '\0', info->lengths[k]) == NULL)
			escape_json(&buf, pnstrdup(info->row[k], info->lengths[k]));
		else
		{
			appendStringInfoString(&buf, "{\"hex\": \"");
			for (unsigned long j = 0; j < info->lengths[k]; j++)
				appendStringInfo(&buf, "%02x", (unsigned char) info->row[k][j]);
			appendStringInfoString(&buf, "\"}");
		}
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * Find the key columns among the result's columns, by name.
 */
static void
find_key_columns(LandRowInfo *info, MYSQL_FIELD *fields, unsigned int nfields,
				 List *keys)
{
	ListCell   *lc;

	info->nkeys = list_length(keys);
	info->key_index = palloc(sizeof(int) * Max(info->nkeys, 1));
	info->key_name = palloc(sizeof(char *) * Max(info->nkeys, 1));
	foreach(lc, keys)
	{
		char	   *name = lfirst(lc);
		unsigned int j;

		for (j = 0; j < nfields; j++)
		{
			if (pg_strcasecmp(fields[j].name, name) == 0)
				break;
		}
		if (j == nfields)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("key column \"%s\" is not in the remote query's result",
							name)));
		info->key_index[foreach_current_index(lc)] = j;
		info->key_name[foreach_current_index(lc)] = name;
	}
}

/* A text[] of names as a List of C strings; no element may be NULL */
static List *
text_array_to_list(ArrayType *array)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *result = NIL;

	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("key column names must not be null")));
		result = lappend(result, TextDatumGetCString(elems[i]));
	}
	return result;
}

/*
 * Why the bulk path cannot write into this table, or NULL when it can.
 * What it keeps: index entries (unique and exclusion constraints checked as
 * they are made) and NOT NULL and CHECK constraints.  What it would write
 * around: insert triggers (foreign keys among them), rules, row security,
 * generated columns, partition routing, and deferrable constraints, whose
 * recheck needs the trigger queue.
 */
static const char *
land_refusal(Relation rel)
{
	TriggerDesc *trig = rel->trigdesc;
	const char *why = NULL;

	if (rel->rd_rel->relkind != RELKIND_RELATION)
		return "it is not a plain table";
	if (trig != NULL &&
		(trig->trig_insert_before_row || trig->trig_insert_after_row ||
		 trig->trig_insert_instead_row || trig->trig_insert_before_statement ||
		 trig->trig_insert_after_statement || trig->trig_insert_new_table))
		return "it has insert triggers";
	if (rel->rd_rules != NULL)
		return "it has rules";
	if (rel->rd_rel->relrowsecurity)
		return "it has row-level security enabled";
	if (rel->rd_att->constr != NULL && rel->rd_att->constr->has_generated_stored)
		return "it has generated columns";
	if (rel->rd_rel->relhasindex)
	{
		List	   *indexes = RelationGetIndexList(rel);
		ListCell   *lc;

		foreach(lc, indexes)
		{
			Relation	index = index_open(lfirst_oid(lc), AccessShareLock);

			if (!index->rd_index->indimmediate)
				why = "it has a deferrable unique or exclusion constraint";
			index_close(index, AccessShareLock);
		}
		list_free(indexes);
	}
	return why;
}

/*
 * The executor state index insertion and constraint checks need, built the
 * way COPY FROM builds it: a range table of the one relation, opened as a
 * result relation with its indexes.
 */
static EState *
begin_land_executor(Relation rel, ResultRelInfo **rri)
{
	EState	   *estate = CreateExecutorState();
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	TupleDesc	tupdesc = RelationGetDescr(rel);

	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	rte->requiredPerms = ACL_INSERT;
	for (int i = 0; i < tupdesc->natts; i++)
		if (!TupleDescAttr(tupdesc, i)->attisdropped)
			rte->insertedCols = bms_add_member(rte->insertedCols,
											   i + 1 - FirstLowInvalidHeapAttributeNumber);
	ExecInitRangeTable(estate, list_make1(rte));
	*rri = makeNode(ResultRelInfo);
	ExecInitResultRelation(estate, *rri, 1);
	CheckValidResultRel(*rri, CMD_INSERT);
	ExecOpenIndices(*rri, false);
	estate->es_output_cid = GetCurrentCommandId(true);
	return estate;
}

/*
 * A landing under way: the table, the executor state its indexes and
 * constraints need, and the batch of rows not yet written.
 */
typedef struct Landing
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	bool		check_constraints;
	bool		has_indexes;
	BulkInsertState bistate;
	CommandId	mycid;
	TupleTableSlot **slots;
	int			nbuffered;
	Size		buffered_bytes;
	MemoryContext batchcxt;		/* conversion and insertion; reset per batch */
	LandCounts *counts;

	/* the stream, and what a bad row needs */
	const LandRequest *req;
	SourceConnection *conn;
	MYSQL_RES  *res;
	unsigned int nfields;
	RowConverter *converter;
	LandRowInfo *info;
	MemoryContext notecxt;		/* the caller's: where notes go */
} Landing;

/*
 * The caller must have INSERT on the table, checked before any lock is
 * taken on it: a role that may not write a table must not queue behind
 * (or ahead of) the locks of those who may.  The catalog lookups take no
 * lock; a table dropped meanwhile is reported by table_open afterwards.
 */
static void
check_land_privilege(Oid relid, const char *caller)
{
	char	   *relname;
	char	   *nspname;

	if (pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) == ACLCHECK_OK)
		return;
	relname = get_rel_name(relid);
	nspname = relname ? get_namespace_name(get_rel_namespace(relid)) : NULL;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for table %s",
					relname ? quote_qualified_identifier(nspname, relname)
					: psprintf("with OID %u", relid)),
			 errdetail("%s needs INSERT on the table it lands into.", caller)));
}

/*
 * Open the table for landing, or refuse it with the reason.  The caller
 * must have INSERT on it.
 */
static void
begin_landing(Landing *ld, Oid relid, LandCounts *counts)
{
	const char *refusal;
	TupleDesc	slot_desc;

	memset(ld, 0, sizeof(Landing));
	ld->counts = counts;
	check_land_privilege(relid, "etl_stream.land()");
	ld->rel = table_open(relid, RowExclusiveLock);
	refusal = land_refusal(ld->rel);
	if (refusal != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot land rows into \"%s\"", RelationGetRelationName(ld->rel)),
				 errdetail("The bulk path cannot be used because %s.", refusal),
				 errhint("Land into a plain table and insert from there.")));
	ld->estate = begin_land_executor(ld->rel, &ld->rri);
	ld->check_constraints = ld->rel->rd_att->constr != NULL &&
		(ld->rel->rd_att->constr->has_not_null ||
		 ld->rel->rd_att->constr->num_check > 0);
	ld->has_indexes = ld->rri->ri_NumIndices > 0;
	ld->bistate = GetBulkInsertState();
	ld->mycid = GetCurrentCommandId(true);

	/*
	 * The slots share an unreferenced copy of the row type: a slot made on
	 * the relation's own descriptor pins it in the resource owner, and a
	 * thousand pins of one descriptor make every later pin there (the
	 * TOAST table's scans, one per value moved out of line) walk them all.
	 */
	slot_desc = CreateTupleDescCopy(RelationGetDescr(ld->rel));
	ld->slots = palloc(sizeof(TupleTableSlot *) * LAND_BATCH_ROWS);
	for (int i = 0; i < LAND_BATCH_ROWS; i++)
		ld->slots[i] = MakeSingleTupleTableSlot(slot_desc,
												table_slot_callbacks(ld->rel));
	ld->batchcxt = AllocSetContextCreate(CurrentMemoryContext,
										 "etl_stream land batch",
										 ALLOCSET_DEFAULT_SIZES);

	pgstat_progress_start_command(PROGRESS_COMMAND_COPY, relid);
	pgstat_progress_update_param(PROGRESS_COPY_COMMAND, PROGRESS_COPY_COMMAND_FROM);
	pgstat_progress_update_param(PROGRESS_COPY_TYPE, PROGRESS_COPY_TYPE_CALLBACK);
}

/*
 * Convert one row into the next slot of the batch and check its NOT NULL
 * and CHECK constraints.
 */
static void
buffer_row(Landing *ld, RowConverter *converter, MYSQL_ROW row,
		   unsigned long *lengths, unsigned int nfields)
{
	TupleTableSlot *slot = ld->slots[ld->nbuffered];
	MemoryContext oldcxt;

	ExecClearTuple(slot);
	oldcxt = MemoryContextSwitchTo(ld->batchcxt);
	convert_row(converter, row, lengths, slot->tts_values, slot->tts_isnull);
	MemoryContextSwitchTo(oldcxt);
	ExecStoreVirtualTuple(slot);
	if (ld->check_constraints)
	{
		ExecConstraints(ld->rri, slot, ld->estate);
		ResetPerTupleExprContext(ld->estate);
	}
	ld->nbuffered++;
	for (unsigned int i = 0; i < nfields; i++)
		ld->buffered_bytes += lengths[i];
}

/*
 * Write the buffered rows with table_multi_insert(), then their index
 * entries, and tell the progress views.
 */
static void
flush_batch(Landing *ld)
{
	MemoryContext oldcxt;

	if (ld->nbuffered == 0)
		return;

	/*
	 * heap_multi_insert() allocates per batch (the tuple array, toasted
	 * copies) in the current context: the batch's, reset below, as COPY
	 * FROM does with its per-tuple context.
	 */
	oldcxt = MemoryContextSwitchTo(ld->batchcxt);
	table_multi_insert(ld->rel, ld->slots, ld->nbuffered, ld->mycid, 0,
					   ld->bistate);
	MemoryContextSwitchTo(oldcxt);
	if (ld->has_indexes)
	{
		for (int i = 0; i < ld->nbuffered; i++)
		{
			List	   *recheck;

			recheck = ExecInsertIndexTuples(ld->rri, ld->slots[i], ld->estate,
											false, false, NULL, NIL);
			Assert(recheck == NIL); /* no deferrable indexes */
			(void) recheck;
			ResetPerTupleExprContext(ld->estate);
		}
	}
	ld->counts->rows_landed += ld->nbuffered;
	ld->counts->bytes_pulled += ld->buffered_bytes;
	ld->nbuffered = 0;
	ld->buffered_bytes = 0;
	MemoryContextReset(ld->batchcxt);
	pgstat_progress_update_param(PROGRESS_COPY_TUPLES_PROCESSED,
								 ld->counts->rows_landed);
	pgstat_progress_update_param(PROGRESS_COPY_BYTES_PROCESSED,
								 ld->counts->bytes_pulled);
	progress_pulled(ld->counts);
}

static void
end_landing(Landing *ld)
{
	for (int i = 0; i < LAND_BATCH_ROWS; i++)
		ExecDropSingleTupleTableSlot(ld->slots[i]);
	FreeBulkInsertState(ld->bistate);
	table_finish_bulk_insert(ld->rel, 0);
	pgstat_progress_end_command();
	ExecCloseResultRelations(ld->estate);
	ExecCloseRangeTableRelations(ld->estate);
	FreeExecutorState(ld->estate);
	MemoryContextDelete(ld->batchcxt);
	table_close(ld->rel, NoLock);
}

/*
 * Read and convert rows into the batch until it is full (true) or the
 * stream ends (false).
 */
static bool
fill_batch(Landing *ld)
{
	MYSQL_ROW	row;

	while (ld->nbuffered < LAND_BATCH_ROWS &&
		   ld->buffered_bytes < LAND_BATCH_BYTES)
	{
		CHECK_FOR_INTERRUPTS();
		row = source_fetch_row(ld->conn, ld->res);
		if (row == NULL)
			return false;
		ld->counts->rows_pulled++;
		ld->info->row = row;
		ld->info->lengths = mysql_fetch_lengths(ld->res);
		buffer_row(ld, ld->converter, row, ld->info->lengths, ld->nfields);
	}
	return true;
}

/* The note of rows left out for a value of this column */
static ValueNote *
reject_note(Landing *ld, const ValueError *ve, const ErrorData *error)
{
	ListCell   *lc;
	ValueNote  *note;
	MemoryContext oldcxt;

	foreach(lc, ld->counts->notes)
	{
		note = lfirst(lc);
		if (note->rejected && strcmp(note->column, ve->column) == 0)
			return note;
	}
	oldcxt = MemoryContextSwitchTo(ld->notecxt);
	note = palloc0(sizeof(ValueNote));
	note->column = pstrdup(ve->column);
	note->rejected = true;
	note->policy = ld->req->on_bad_value == BAD_VALUE_SKIP ?
		"on_bad_value 'skip'" : "on_bad_value 'quarantine'";
	note->first_key = ve->key ? pstrdup(ve->key) : NULL;
	note->first_row = ve->row;
	note->first_value = ve->value ? pstrdup(ve->value) : NULL;
	note->first_reason = pstrdup(error->message);
	ld->counts->notes = lappend(ld->counts->notes, note);
	MemoryContextSwitchTo(oldcxt);
	return note;
}

/*
 * Is this error a value that did not convert (which on_bad_value decides
 * about), rather than a failure of the landing?  Only errors convert.c
 * reported as a ValueError, of the classes a value's own error has: data
 * exceptions, a domain's constraints, a value too large.
 */
static bool
is_bad_value(const Landing *ld, const ErrorData *error)
{
	const ValueError *ve = ld->req->value_error;
	int			class = ERRCODE_TO_CATEGORY(error->sqlerrcode);

	return ve != NULL && ve->set && ve->sqlerrcode == error->sqlerrcode &&
		(class == ERRCODE_DATA_EXCEPTION ||
		 class == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION ||
		 error->sqlerrcode == ERRCODE_PROGRAM_LIMIT_EXCEEDED);
}

/* The row being converted is left out: counted, noted, maybe kept */
static void
reject_row(Landing *ld, const ErrorData *error)
{
	ValueError *ve = ld->req->value_error;

	ld->counts->rows_rejected++;
	reject_note(ld, ve, error)->count++;
	if (ld->req->on_bad_value == BAD_VALUE_QUARANTINE && ld->req->on_reject)
		ld->req->on_reject(ve, error, land_row_key_json(ld->info),
						   ld->req->on_reject_arg);
	ve->set = false;
}

/*
 * fill_batch() for on_bad_value 'skip' and 'quarantine': the conversions
 * in a subtransaction, which a bad value rolls back; its row is left out
 * and the batch goes on in a new one (see the header comment).
 */
static bool
fill_batch_guarded(Landing *ld)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;

	for (;;)
	{
		volatile bool more = false;
		ErrorData  *volatile error = NULL;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(oldcxt);
		PG_TRY();
		{
			more = fill_batch(ld);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(ld->batchcxt);
			error = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
		}
		PG_END_TRY();
		if (error == NULL)
			return more;
		if (!is_bad_value(ld, error))
			ReThrowError(error);
		/* the row failed before it was counted as buffered */
		ExecClearTuple(ld->slots[ld->nbuffered]);
		/* what a reject needs goes with the batch */
		MemoryContextSwitchTo(ld->batchcxt);
		reject_row(ld, error);
		MemoryContextSwitchTo(oldcxt);
	}
}

/*
 * land_rows
 *		Stream a remote query's rows into a table, matched by position to its
 *		columns.  req->counts says how far it got, also when it fails; when
 *		it ends, its notes say what policies did to values and rows.
 */
void
land_rows(const LandRequest *req)
{
	LandCounts	local_counts = {0};
	LandCounts *counts = req->counts ? req->counts : &local_counts;
	Landing		ld;
	MYSQL_FIELD *fields;
	ConvertOptions copts;
	LandRowInfo info = {0};
	bool		more;

	Assert(req->on_bad_value == BAD_VALUE_ERROR || req->value_error != NULL);
	begin_landing(&ld, req->relid, counts);
	ld.req = req;
	ld.info = &info;
	ld.notecxt = CurrentMemoryContext;
	if (req->value_error)
		req->value_error->set = false;

	ld.conn = connect_source(req->server, GetUserId());
	ld.res = source_query_rows(ld.conn, req->sql);
	fields = mysql_fetch_fields(ld.res);
	ld.nfields = mysql_num_fields(ld.res);
	find_key_columns(&info, fields, ld.nfields, req->key_columns);

	memset(&copts, 0, sizeof(copts));
	copts.invalid_dates = source_options(ld.conn)->invalid_dates;
	copts.source_encoding = source_options(ld.conn)->charset_encoding;
	copts.relname = req->label ? req->label
		: psprintf("table \"%s\"", RelationGetRelationName(ld.rel));
	copts.rownum = &counts->rows_pulled;
	copts.row_key = append_land_row_key;
	copts.row_key_arg = &info;
	copts.value_error = req->value_error;
	copts.not_null_columns = req->not_null_columns;
	copts.raw_columns = req->raw_columns;
	copts.raw_charsets = req->raw_charsets;
	ld.converter = build_row_converter(fields, ld.nfields,
									   RelationGetDescr(ld.rel), &copts);

	do
	{
		more = req->on_bad_value == BAD_VALUE_ERROR ?
			fill_batch(&ld) : fill_batch_guarded(&ld);
		flush_batch(&ld);
	} while (more);
	source_end_result(ld.conn, ld.res);
	counts->notes = list_concat(converter_value_notes(ld.converter),
								counts->notes);
	end_landing(&ld);
}

/*
 * etl_stream.land(server name, sql text, target regclass,
 *                 key_columns text[] DEFAULT NULL, label text DEFAULT NULL,
 *                 progress_for regclass DEFAULT NULL)
 *   RETURNS TABLE (rows_pulled bigint, rows_landed bigint)
 *
 * land_rows() for SQL callers.  rows_pulled counts rows read from MySQL,
 * rows_landed rows handed to the table; the caller checks they agree.
 * key_columns name the row in conversion errors, label the table.  Called
 * outside a run, the landing shows in etl_stream.progress under the
 * label, or the name of progress_for (else the table's).
 */
Datum
etl_stream_land(PG_FUNCTION_ARGS)
{
	LandRequest req = {0};
	LandCounts	counts = {0};
	TupleDesc	result_desc;
	bool		own_progress = false;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &result_desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("server, sql and target must not be null")));

	req.server = lookup_source(NameStr(*PG_GETARG_NAME(0)));
	req.sql = text_to_cstring(PG_GETARG_TEXT_PP(1));
	req.relid = PG_GETARG_OID(2);
	if (!PG_ARGISNULL(3))
		req.key_columns = text_array_to_list(PG_GETARG_ARRAYTYPE_P(3));
	if (!PG_ARGISNULL(4))
		req.label = text_to_cstring(PG_GETARG_TEXT_PP(4));
	req.counts = &counts;

	if (!progress_active())
	{
		const char *shown = req.label;

		if (shown == NULL)
			shown = get_rel_name(PG_ARGISNULL(5) ? req.relid : PG_GETARG_OID(5));
		own_progress = progress_begin(shown ? shown : "?", 0, 0, NULL);
		progress_phase(RUN_PHASE_PULL);
	}
	land_rows(&req);
	if (own_progress)
		progress_end();

	values[0] = Int64GetDatum(counts.rows_pulled);
	values[1] = Int64GetDatum(counts.rows_landed);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(result_desc),
													  values, nulls)));
}

/*
 * etl_stream._land_refusal(regclass) RETURNS text
 *
 * Why etl_stream.land() would refuse the table, or NULL: a sync asks before
 * it loads a target directly.
 */
Datum
etl_stream_land_refusal(PG_FUNCTION_ARGS)
{
	Relation	rel;
	const char *why;

	check_land_privilege(PG_GETARG_OID(0), "etl_stream._land_refusal()");
	rel = table_open(PG_GETARG_OID(0), AccessShareLock);
	why = land_refusal(rel);

	table_close(rel, AccessShareLock);
	if (why == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(why));
}
