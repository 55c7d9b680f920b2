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
 * are refused.  Conversion memory is reset after each flushed batch, so
 * memory does not grow with the number of rows.  While it runs, the landing
 * shows in pg_stat_progress_copy as a COPY FROM into the table.
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
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "etl_stream.h"

/* Flush the buffered rows at this many rows or bytes, like COPY FROM */
#define LAND_BATCH_ROWS		1000
#define LAND_BATCH_BYTES	(64 * 1024)

/*
 * A spare slot of the COPY progress parameters (pg_stat_progress_copy shows
 * only the first six): the table the rows are for, which etl_stream.progress
 * finds while staging or a fresh table is not yet visible to other sessions.
 */
#define LAND_PROGRESS_FOR	(PGSTAT_NUM_PROGRESS_PARAM - 1)

/* What a conversion error needs to name the row: its key values */
typedef struct LandRowInfo
{
	MYSQL_ROW	row;
	unsigned long *lengths;
	int			nkeys;
	int		   *key_index;		/* result column of each key column */
	char	  **key_name;
	int64		rownum;
} LandRowInfo;

PG_FUNCTION_INFO_V1(etl_stream_land);
PG_FUNCTION_INFO_V1(etl_stream_land_refusal);

static void
describe_land_row(StringInfo buf, void *arg)
{
	LandRowInfo *info = (LandRowInfo *) arg;

	if (info->nkeys == 0 || info->row == NULL)
	{
		appendStringInfo(buf, "row %lld", (long long) info->rownum);
		return;
	}
	appendStringInfoString(buf, "key (");
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
			appendBinaryStringInfo(buf, info->row[k],
								   Min(info->lengths[k], 60));
	}
	appendStringInfoChar(buf, ')');
}

/*
 * Find the key columns among the result's columns, by name.
 */
static void
find_key_columns(LandRowInfo *info, MYSQL_FIELD *fields, unsigned int nfields,
				 ArrayType *keys)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(keys, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	info->nkeys = n;
	info->key_index = palloc(sizeof(int) * Max(n, 1));
	info->key_name = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		char	   *name;
		unsigned int j;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("key column names must not be null")));
		name = TextDatumGetCString(elems[i]);
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
		info->key_index[i] = j;
		info->key_name[i] = name;
	}
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
 * etl_stream.land(server name, sql text, target regclass,
 *                 key_columns text[] DEFAULT NULL, label text DEFAULT NULL,
 *                 progress_for regclass DEFAULT NULL)
 *   RETURNS TABLE (rows_pulled bigint, rows_landed bigint)
 *
 * Streams the query's rows into the table, matched by position to its
 * columns.  rows_pulled counts rows read from MySQL, rows_landed rows
 * handed to the table; the caller checks they agree.  key_columns name the
 * row in conversion errors; label names the table ("table x");
 * progress_for is the table etl_stream.progress shows the landing under.
 */
Datum
etl_stream_land(PG_FUNCTION_ARGS)
{
	ForeignServer *server = lookup_source(NameStr(*PG_GETARG_NAME(0)));
	char	   *sql = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Oid			relid = PG_GETARG_OID(2);
	TupleDesc	result_desc;
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	const char *refusal;
	bool		check_constraints;
	bool		has_indexes;
	AclResult	aclresult;
	SourceConnection *conn;
	MYSQL_RES  *res;
	MYSQL_FIELD *fields;
	unsigned int nfields;
	ConvertOptions copts;
	RowConverter *converter;
	LandRowInfo info = {0};
	BulkInsertState bistate;
	CommandId	mycid;
	TupleDesc	slot_desc;
	TupleTableSlot **slots;
	MemoryContext batchcxt;
	MemoryContext oldcxt;
	MYSQL_ROW	row;
	int			nbuffered = 0;
	Size		buffered_bytes = 0;
	int64		pulled = 0;
	int64		landed = 0;
	int64		bytes = 0;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &result_desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	rel = table_open(relid, RowExclusiveLock);
	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_INSERT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, get_relkind_objtype(rel->rd_rel->relkind),
					   RelationGetRelationName(rel));
	refusal = land_refusal(rel);
	if (refusal != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot land rows into \"%s\"", RelationGetRelationName(rel)),
				 errdetail("The bulk path cannot be used because %s.", refusal),
				 errhint("Land into a plain table and insert from there.")));
	estate = begin_land_executor(rel, &rri);
	check_constraints = rel->rd_att->constr != NULL &&
		(rel->rd_att->constr->has_not_null || rel->rd_att->constr->num_check > 0);
	has_indexes = rri->ri_NumIndices > 0;

	conn = connect_source(server, GetUserId());
	res = source_query_rows(conn, sql);
	fields = mysql_fetch_fields(res);
	nfields = mysql_num_fields(res);

	if (!PG_ARGISNULL(3))
		find_key_columns(&info, fields, nfields, PG_GETARG_ARRAYTYPE_P(3));

	copts.invalid_dates = conn->opts->invalid_dates;
	copts.source_encoding = conn->opts->charset_encoding;
	copts.relname = PG_ARGISNULL(4)
		? psprintf("table \"%s\"", RelationGetRelationName(rel))
		: text_to_cstring(PG_GETARG_TEXT_PP(4));
	copts.describe_row = describe_land_row;
	copts.describe_arg = &info;
	converter = build_row_converter(fields, nfields, RelationGetDescr(rel),
									&copts);

	pgstat_progress_start_command(PROGRESS_COMMAND_COPY, relid);
	pgstat_progress_update_param(PROGRESS_COPY_COMMAND, PROGRESS_COPY_COMMAND_FROM);
	pgstat_progress_update_param(PROGRESS_COPY_TYPE, PROGRESS_COPY_TYPE_CALLBACK);
	if (!PG_ARGISNULL(5))
		pgstat_progress_update_param(LAND_PROGRESS_FOR, PG_GETARG_OID(5));

	bistate = GetBulkInsertState();
	mycid = GetCurrentCommandId(true);
	/*
	 * The slots share an unreferenced copy of the row type: a slot made on
	 * the relation's own descriptor pins it in the resource owner, and a
	 * thousand pins of one descriptor make every later pin there (the
	 * TOAST table's scans, one per value moved out of line) walk them all.
	 */
	slot_desc = CreateTupleDescCopy(RelationGetDescr(rel));
	slots = palloc(sizeof(TupleTableSlot *) * LAND_BATCH_ROWS);
	for (int i = 0; i < LAND_BATCH_ROWS; i++)
		slots[i] = MakeSingleTupleTableSlot(slot_desc, table_slot_callbacks(rel));
	batchcxt = AllocSetContextCreate(CurrentMemoryContext,
									 "etl_stream land batch",
									 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		row = source_fetch_row(conn, res);
		if (row != NULL)
		{
			TupleTableSlot *slot = slots[nbuffered];
			unsigned long *lengths = mysql_fetch_lengths(res);

			pulled++;
			info.row = row;
			info.lengths = lengths;
			info.rownum = pulled;

			ExecClearTuple(slot);
			oldcxt = MemoryContextSwitchTo(batchcxt);
			convert_row(converter, row, lengths, slot->tts_values,
						slot->tts_isnull);
			MemoryContextSwitchTo(oldcxt);
			ExecStoreVirtualTuple(slot);
			if (check_constraints)
			{
				ExecConstraints(rri, slot, estate);
				ResetPerTupleExprContext(estate);
			}
			nbuffered++;
			for (unsigned int i = 0; i < nfields; i++)
				buffered_bytes += lengths[i];
		}

		if (nbuffered > 0 &&
			(row == NULL || nbuffered == LAND_BATCH_ROWS ||
			 buffered_bytes >= LAND_BATCH_BYTES))
		{
			/*
			 * heap_multi_insert() allocates per batch (the tuple array,
			 * toasted copies) in the current context: the batch's, reset
			 * below, as COPY FROM does with its per-tuple context.
			 */
			oldcxt = MemoryContextSwitchTo(batchcxt);
			table_multi_insert(rel, slots, nbuffered, mycid, 0, bistate);
			MemoryContextSwitchTo(oldcxt);
			if (has_indexes)
			{
				for (int i = 0; i < nbuffered; i++)
				{
					List	   *recheck;

					recheck = ExecInsertIndexTuples(rri, slots[i], estate,
													false, false, NULL, NIL);
					Assert(recheck == NIL);	/* no deferrable indexes */
					(void) recheck;
					ResetPerTupleExprContext(estate);
				}
			}
			landed += nbuffered;
			bytes += buffered_bytes;
			nbuffered = 0;
			buffered_bytes = 0;
			MemoryContextReset(batchcxt);
			pgstat_progress_update_param(PROGRESS_COPY_TUPLES_PROCESSED, landed);
			pgstat_progress_update_param(PROGRESS_COPY_BYTES_PROCESSED, bytes);
		}
		if (row == NULL)
			break;
	}
	source_end_result(conn, res);

	for (int i = 0; i < LAND_BATCH_ROWS; i++)
		ExecDropSingleTupleTableSlot(slots[i]);
	FreeBulkInsertState(bistate);
	table_finish_bulk_insert(rel, 0);
	pgstat_progress_end_command();
	ExecCloseResultRelations(estate);
	ExecCloseRangeTableRelations(estate);
	FreeExecutorState(estate);
	table_close(rel, NoLock);

	values[0] = Int64GetDatum(pulled);
	values[1] = Int64GetDatum(landed);
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
	Relation	rel = table_open(PG_GETARG_OID(0), AccessShareLock);
	const char *why = land_refusal(rel);

	table_close(rel, AccessShareLock);
	if (why == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(why));
}
