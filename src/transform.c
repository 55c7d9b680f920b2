/*-------------------------------------------------------------------------
 *
 * transform.c
 *		  Transforms: SQL run in PostgreSQL after the syncs of the tables it
 *		  names, with those runs' cutoffs written in as literals; the
 *		  placeholders, the run as its owner, its record, and the transforms
 *		  of a sync_all, sync_all_proc or schedule call.
 *
 * A placeholder is ":name" or ":name.table" outside strings, quoted names,
 * comments and casts: the text is read with PostgreSQL's own lexer, so
 * "'a:b'", "x::date" and "\"col:x\"" are left alone.  The literals come from
 * etl_stream._transform_bindings() (sql/objects/88_transforms.sql), already
 * quoted.  The bound text is split into its statements by the raw parser,
 * and each is run through SPI as the transform's owner (as REFRESH
 * MATERIALIZED VIEW runs as the view's owner), in a subtransaction: a
 * failure is rolled back and recorded, like a sync's.  The rows a run
 * read are the tuples its statements fetched from tables, from the
 * transaction's own table statistics before and after.
 *
 * IDENTIFICATION
 *		  src/transform.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "parser/scansup.h"
#include "parser/gram.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "etl_stream.h"

PG_FUNCTION_INFO_V1(etl_stream_transform_bind);
PG_FUNCTION_INFO_V1(etl_stream_transform_statements);
PG_FUNCTION_INFO_V1(etl_stream_run_transform);

/* A placeholder in the SQL text: [start, end) */
typedef struct Placeholder
{
	int			start;
	int			end;
	char	   *key;			/* "cutoff" or "cutoff.<quoted table>" */
} Placeholder;

/* A token of the SQL text, as the lexer gave it */
typedef struct Token
{
	int			tok;
	int			start;
	int			end;			/* for names only; else -1 */
	char	   *name;			/* for names: as PostgreSQL reads it */
} Token;

/* A transform's run, from its lock to its record */
typedef struct TransformRun
{
	SyncRun		run;
	SyncRequest req;
	ArrayType  *run_ids;		/* the call's runs; NULL: the last successful */
	char	   *bindings;		/* jsonb, as text */
	int64		rows_read;
	bool		locked;
} TransformRun;

/* ----------------------------------------------------------------
 *		Placeholders
 * ----------------------------------------------------------------
 */

/* Where the name token at start ends in the text */
static int
name_end(const char *sql, int start)
{
	int			i = start;

	if (sql[i] == '"')
	{
		for (i++; sql[i] != '\0'; i++)
		{
			if (sql[i] == '"')
			{
				if (sql[i + 1] != '"')
					return i + 1;
				i++;
			}
		}
		return i;
	}
	while (sql[i] != '\0' &&
		   (isalnum((unsigned char) sql[i]) || sql[i] == '_' || sql[i] == '$' ||
			IS_HIGHBIT_SET(sql[i])))
		i++;
	return i;
}

/* The text's tokens, names with their ends and names */
static Token *
lex_sql(const char *sql, int *count)
{
	core_yy_extra_type yyextra;
	core_yyscan_t yyscanner;
	core_YYSTYPE yylval;
	YYLTYPE		yylloc;
	int			size = 64;
	Token	   *tokens = palloc(sizeof(Token) * size);

	*count = 0;
	yyscanner = scanner_init(sql, &yyextra, &ScanKeywords, ScanKeywordTokens);
	yyextra.escape_string_warning = false;
	for (;;)
	{
		int			tok = core_yylex(&yylval, &yylloc, yyscanner);
		Token	   *t;

		if (tok == 0)
			break;
		if (*count == size)
		{
			size *= 2;
			tokens = repalloc(tokens, sizeof(Token) * size);
		}
		t = &tokens[(*count)++];
		t->tok = tok;
		t->start = yylloc;
		t->end = -1;
		t->name = NULL;
		/* an identifier, or a keyword (a name too, after ':' or '.') */
		if (tok == IDENT)
			t->name = pstrdup(yylval.str);
		else if (tok >= ABORT_P && (isalpha((unsigned char) sql[yylloc]) || sql[yylloc] == '_'))
			t->name = pstrdup(yylval.keyword);
		if (t->name != NULL)
			t->end = name_end(sql, yylloc);
		CHECK_FOR_INTERRUPTS();
	}
	scanner_finish(yyscanner);
	return tokens;
}

/* The placeholders of the text, in order */
static List *
find_placeholders(const char *sql)
{
	int			n;
	Token	   *t = lex_sql(sql, &n);
	List	   *found = NIL;

	for (int i = 0; i < n; i++)
	{
		Placeholder *p;

		/* ':' right before a name, with no space between */
		if (t[i].tok != ':' || i + 1 >= n || t[i + 1].name == NULL ||
			t[i + 1].start != t[i].start + 1)
			continue;
		p = palloc(sizeof(Placeholder));
		p->start = t[i].start;
		p->end = t[i + 1].end;
		p->key = t[i + 1].name;
		/* .table, again with no space */
		if (i + 3 < n && t[i + 2].tok == '.' && t[i + 2].start == t[i + 1].end &&
			t[i + 3].name != NULL && t[i + 3].start == t[i + 2].start + 1)
		{
			p->key = psprintf("%s.%s", p->key, quote_identifier(t[i + 3].name));
			p->end = t[i + 3].end;
			i += 2;
		}
		i++;
		found = lappend(found, p);
	}
	return found;
}

/*
 * The text with each placeholder replaced by its literal (keys[i] gets
 * literals[i]); an unknown one is an error that lists the known ones.
 */
static char *
bind_placeholders(const char *sql, char **keys, char **literals, int nkeys)
{
	StringInfoData out;
	List	   *found = find_placeholders(sql);
	ListCell   *lc;
	int			done = 0;

	initStringInfo(&out);
	foreach(lc, found)
	{
		Placeholder *p = lfirst(lc);
		int			k;

		for (k = 0; k < nkeys; k++)
			if (strcmp(keys[k], p->key) == 0)
				break;
		if (k == nkeys)
		{
			StringInfoData valid;

			initStringInfo(&valid);
			for (int j = 0; j < nkeys; j++)
				appendStringInfo(&valid, "%s:%s", j > 0 ? ", " : "", keys[j]);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown placeholder \":%s\" in the SQL of a transform", p->key),
					 errdetail("It is at character %d. The placeholders known here are %s.",
							   p->start + 1, nkeys > 0 ? valid.data : "none"),
					 errhint("A table's placeholder is written :name.table, with the table as it is named in after; write \"::\" for a cast.")));
		}
		appendBinaryStringInfo(&out, sql + done, p->start - done);
		appendStringInfoString(&out, literals[k]);
		done = p->end;
	}
	appendStringInfoString(&out, sql + done);
	return out.data;
}

/* A text[] as C strings */
static char **
text_array(ArrayType *a, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	char	  **out;

	deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
	out = palloc(sizeof(char *) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		out[i] = nulls[i] ? "NULL" : TextDatumGetCString(elems[i]);
	return out;
}

/*
 * The statements of a text, each as written.  Transaction control is
 * refused: a transform's statements commit with its run.
 */
static List *
split_statements(const char *sql)
{
	List	   *stmts = NIL;
	ListCell   *lc;

	foreach(lc, raw_parser(sql, RAW_PARSE_DEFAULT))
	{
		RawStmt    *rs = lfirst_node(RawStmt, lc);
		int			start = rs->stmt_location;
		int			len = rs->stmt_len > 0 ? rs->stmt_len : (int) strlen(sql + start);

		/* the first statement's text starts with what comes before it */
		while (len > 0 && scanner_isspace(sql[start]))
		{
			start++;
			len--;
		}
		/* and the last ends with what comes after it */
		while (len > 0 && scanner_isspace(sql[start + len - 1]))
			len--;

		if (IsA(rs->stmt, TransactionStmt))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
					 errmsg("a transform cannot control transactions"),
					 errdetail("Its statements run in the transaction of its run, which commits them with its record.")));
		stmts = lappend(stmts, pnstrdup(sql + start, len));
	}
	return stmts;
}

/*
 * etl_stream._transform_bind(sql text, keys text[], literals text[]) RETURNS text
 */
Datum
etl_stream_transform_bind(PG_FUNCTION_ARGS)
{
	char	   *sql = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int			nkeys;
	int			nliterals;
	char	  **keys = text_array(PG_GETARG_ARRAYTYPE_P(1), &nkeys);
	char	  **literals = text_array(PG_GETARG_ARRAYTYPE_P(2), &nliterals);

	if (nkeys != nliterals)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%d placeholders were given %d literals", nkeys, nliterals)));
	PG_RETURN_TEXT_P(cstring_to_text(bind_placeholders(sql, keys, literals, nkeys)));
}

/*
 * etl_stream._transform_statements(sql text) RETURNS text[]
 */
Datum
etl_stream_transform_statements(PG_FUNCTION_ARGS)
{
	List	   *stmts = split_statements(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(stmts), 1));
	ListCell   *lc;
	int			n = 0;

	foreach(lc, stmts)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* ----------------------------------------------------------------
 *		A run
 * ----------------------------------------------------------------
 */

/*
 * The tuples read so far in this transaction from the tables outside
 * PostgreSQL's catalogs and etl_stream's own schemas: by sequential scans
 * and fetched through indexes
 */
static int64
tuples_read(void)
{
	bool		isnull;
	Datum		d;

	exec_sql("SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(c.oid)"
			 "                    + pg_stat_get_xact_tuples_fetched(c.oid)), 0)::bigint"
			 "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
			 " WHERE c.relkind IN ('r', 'm')"
			 "   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
			 "   AND n.nspname NOT LIKE 'etl\\_stream%'", NULL);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

static double
seconds_since(TimestampTz start)
{
	long		secs;
	int			usecs;

	TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
	return secs + usecs / 1000000.0;
}

/* Run the bound statements as owner, counting the rows they wrote */
static void
execute_as_owner(TransformRun *tr, List *stmts, Oid owner)
{
	SyncRun    *run = &tr->run;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	ListCell   *lc;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	/* a SET in the transform's SQL ends with it */
	save_nestlevel = NewGUCNestLevel();
	foreach(lc, stmts)
	{
		int			rc = SPI_execute((const char *) lfirst(lc), false, 0);

		if (rc < 0)
			elog(ERROR, "SPI_execute failed (%d) for: %s", rc, (const char *) lfirst(lc));
		switch (rc)
		{
			case SPI_OK_INSERT:
			case SPI_OK_INSERT_RETURNING:
				run->rows_inserted += SPI_processed;
				break;
			case SPI_OK_UPDATE:
			case SPI_OK_UPDATE_RETURNING:
			case SPI_OK_MERGE:
				run->rows_updated += SPI_processed;
				break;
			case SPI_OK_DELETE:
			case SPI_OK_DELETE_RETURNING:
				run->rows_deleted += SPI_processed;
				break;
			default:
				break;
		}
		CHECK_FOR_INTERRUPTS();
	}
	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/*
 * Lock the transform (one run at a time), compute its literals, bind and
 * run it.  In a subtransaction (see run_one).
 */
static void
transform_step(TransformRun *tr)
{
	SyncRun    *run = &tr->run;
	SqlArgs		args = {0};
	char	   *sql;
	char	   *owner;
	int			nkeys;
	int			nliterals;
	char	  **keys;
	char	  **literals;
	bool		isnull;
	List	   *stmts;
	TimestampTz started;
	int64		read_before = tuples_read();

	run->phase = RUN_PHASE_LOCK;
	sql_arg_text(&args, run->table_name);
	exec_sql("SELECT x.sql, x.owner FROM etl_stream.transforms x WHERE x.name = $1"
			 "   FOR NO KEY UPDATE NOWAIT", &args);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("etl_stream transform \"%s\" does not exist", run->table_name)));
	tr->locked = true;
	sql = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	owner = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

	/* the literals, as of the runs it follows */
	sql_arg(&args, INT8ARRAYOID, PointerGetDatum(tr->run_ids), tr->run_ids == NULL);
	exec_sql("SELECT b.bindings::text, b.cutoff, b.new_watermark,"
			 "       ARRAY(SELECT key FROM jsonb_each_text(b.bindings) ORDER BY key),"
			 "       ARRAY(SELECT value FROM jsonb_each_text(b.bindings) ORDER BY key)"
			 "  FROM etl_stream.transforms x, etl_stream._transform_bindings(x, $2) b"
			 " WHERE x.name = $1", &args);
	tr->bindings = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	run->cutoff = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	run->new_watermark = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	keys = text_array(DatumGetArrayTypeP(SPI_getbinval(SPI_tuptable->vals[0],
													   SPI_tuptable->tupdesc, 4, &isnull)),
					  &nkeys);
	literals = text_array(DatumGetArrayTypeP(SPI_getbinval(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc, 5, &isnull)),
						  &nliterals);
	stmts = split_statements(bind_placeholders(sql, keys, literals, Min(nkeys, nliterals)));

	run->phase = RUN_PHASE_MERGE;
	started = GetCurrentTimestamp();
	execute_as_owner(tr, stmts, get_role_oid(owner, false));
	run->phase_s[RUN_PHASE_MERGE] = seconds_since(started);
	/* with the reads of the target that found the touched dates, if any */
	tr->rows_read = tuples_read() - read_before;
}

/* transform_step, as call_in_subtransaction calls it */
static void
call_transform_step(void *arg)
{
	transform_step((TransformRun *) arg);
}

/*
 * The step in a subtransaction: false, with the error, if it failed.  A
 * cancel is not the run's failure and is raised on.
 */
static bool
run_one(TransformRun *tr, ErrorData **error)
{
	if (call_in_subtransaction(call_transform_step, tr, error))
		return true;
	if ((*error)->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(*error);
	return false;
}

/*
 * run_transform
 *		One run of a transform in the current transaction, with the
 *		literals of the runs run_ids (NULL: each table's last successful
 *		sync), or, with skip_reason, its record as skipped.  Returns the
 *		row of etl_stream.runs, in the caller's memory context.
 */
static Datum
run_transform(const char *name, ArrayType *run_ids, const char *skip_reason)
{
	TransformRun tr;
	SyncRun    *run = &tr.run;
	ErrorData  *error = NULL;
	Datum		row;

	memset(&tr, 0, sizeof(TransformRun));
	for (int i = 0; i <= RUN_PHASE_FINISH; i++)
		run->phase_s[i] = -1;
	tr.req.name = name;
	tr.req.attempt = 1;
	tr.run_ids = run_ids;
	run->req = &tr.req;
	run->table_name = pstrdup(name);
	run->strategy = "transform";
	run->kind = "transform";
	run->started_at = GetCurrentTimestamp();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (skip_reason != NULL)
	{
		run->status = RUN_SKIPPED;
		run->skip_reason = skip_reason;
	}
	else if (run_one(&tr, &error))
		run->status = RUN_SUCCESS;
	else if (error->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE && !tr.locked)
	{
		run->status = RUN_SKIPPED;
		run->skip_reason = "another run of this transform is going on";
	}
	else
	{
		/* rolled back: nothing it wrote stays */
		run->status = RUN_FAILED;
		run->error = error;
		run->rows_inserted = run->rows_updated = run->rows_deleted = 0;
	}
	run->counts.rows_pulled = tr.rows_read;
	run->bindings = tr.bindings;
	run->finished_at = GetCurrentTimestamp();
	(void) record_run(run, &row);
	if (run->status == RUN_FAILED)
		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 errmsg("etl_stream transform \"%s\" failed: %s", name, error->message),
				 error->detail ? errdetail_internal("%s", error->detail) : 0));
	SPI_finish();
	return row;
}

/* Copy a row of etl_stream.runs into a tuplestore */
static void
put_run(Tuplestorestate *rows, Datum row)
{
	HeapTupleData tuple;

	tuple.t_len = HeapTupleHeaderGetDatumLength((HeapTupleHeader) DatumGetPointer(row));
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = (HeapTupleHeader) DatumGetPointer(row);
	tuplestore_puttuple(rows, &tuple);
}

static char *
run_status_of(Datum row)
{
	bool		isnull;

	return TextDatumGetCString(GetAttributeByName((HeapTupleHeader) DatumGetPointer(row),
												  "status", &isnull));
}

/*
 * Why a transform of the call must not run (a table it runs after that did
 * not sync successfully in the call), or NULL; the runs to take the
 * literals of go into ids.
 */
static char *
unmet_table(ArrayType *after, const CallRun *runs, int nruns, Datum *ids)
{
	int			n;
	char	  **tables = text_array(after, &n);

	for (int i = 0; i < n; i++)
	{
		int			k;

		for (k = 0; k < nruns; k++)
			if (strcmp(runs[k].table, tables[i]) == 0)
				break;
		if (k == nruns)
			return psprintf("etl_stream table \"%s\", which it runs after, was not synced in this call",
							tables[i]);
		if (strcmp(runs[k].status, "success") != 0)
			return psprintf("etl_stream table \"%s\", which it runs after, did not succeed (%s)",
							tables[i], runs[k].status);
		ids[i] = Int64GetDatum(runs[k].run_id);
	}
	return NULL;
}

/*
 * run_call_transforms
 *		The enabled transforms that run after a table of the call, by name,
 *		once the call's tables are done: each runs if every table it runs
 *		after synced successfully in the call, and is recorded as skipped
 *		otherwise.  With commit, each in a transaction of its own (SPI
 *		connected nonatomic).  Their rows go into rows when given; returns
 *		how many failed, named in failures.
 */
int
run_call_transforms(const CallRun *runs, int nruns, bool commit,
					Tuplestorestate *rows, StringInfo failures, MemoryContext cxt)
{
	Datum	   *names = palloc(sizeof(Datum) * Max(nruns, 1));
	SqlArgs		args = {0};
	int			count;
	char	  **todo;
	ArrayType **after;
	int			failed = 0;
	MemoryContext oldcxt;

	for (int i = 0; i < nruns; i++)
		names[i] = CStringGetTextDatum(runs[i].table);
	sql_arg(&args, TEXTARRAYOID,
			PointerGetDatum(construct_array(names, nruns, TEXTOID, -1, false, TYPALIGN_INT)),
			false);
	if (commit)
		PushActiveSnapshot(GetTransactionSnapshot());
	exec_sql("SELECT x.name, x.after FROM etl_stream.transforms x"
			 " WHERE x.enabled AND x.after && $1 ORDER BY x.name", &args);
	count = (int) SPI_processed;
	oldcxt = MemoryContextSwitchTo(cxt);
	todo = palloc(sizeof(char *) * Max(count, 1));
	after = palloc(sizeof(ArrayType *) * Max(count, 1));
	for (int i = 0; i < count; i++)
	{
		bool		isnull;

		todo[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		after[i] = DatumGetArrayTypePCopy(SPI_getbinval(SPI_tuptable->vals[i],
														SPI_tuptable->tupdesc, 2, &isnull));
	}
	MemoryContextSwitchTo(oldcxt);
	if (commit)
		PopActiveSnapshot();

	for (int i = 0; i < count; i++)
	{
		Datum	   *ids = palloc(sizeof(Datum) * Max(ArrayGetNItems(ARR_NDIM(after[i]), ARR_DIMS(after[i])), 1));
		char	   *reason = unmet_table(after[i], runs, nruns, ids);
		ArrayType  *run_ids = NULL;
		Datum		row;
		char	   *status;

		if (reason == NULL)
			run_ids = construct_array(ids, ArrayGetNItems(ARR_NDIM(after[i]), ARR_DIMS(after[i])),
									  INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
		if (commit)
			PushActiveSnapshot(GetTransactionSnapshot());
		row = run_transform(todo[i], run_ids, reason);
		status = run_status_of(row);
		if (rows != NULL)
			put_run(rows, row);
		if (commit)
		{
			PopActiveSnapshot();
			SPI_commit();
			CHECK_FOR_INTERRUPTS();
		}
		if (strcmp(status, "failed") == 0)
		{
			appendStringInfo(failures, "%stransform %s: failed",
							 failures->len > 0 ? ", " : "", todo[i]);
			failed++;
		}
	}
	return failed;
}

/*
 * etl_stream.run_transform(name text) RETURNS etl_stream.runs
 */
Datum
etl_stream_run_transform(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	SqlArgs		args = {0};
	bool		enabled;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	sql_arg_text(&args, name);
	exec_sql("SELECT x.enabled FROM etl_stream.transforms x WHERE x.name = $1", &args);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("etl_stream transform \"%s\" does not exist", name),
				 errhint("Your transforms are listed in etl_stream.transforms.")));
	enabled = strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "t") == 0;
	SPI_finish();
	if (!enabled)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("etl_stream transform \"%s\" is disabled", name),
				 errhint("Enable it with SELECT etl_stream.alter_transform(%s, enabled => true).",
						 quote_literal_cstr(name))));
	PG_RETURN_DATUM(run_transform(name, NULL, NULL));
}
