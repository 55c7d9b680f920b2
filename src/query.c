/*-------------------------------------------------------------------------
 *
 * query.c
 *		  SQL entry points for talking to a MySQL source directly:
 *		  etl_stream.query() streams any remote query as a set of rows,
 *		  etl_stream.execute() runs a statement, etl_stream.describe() tells
 *		  a result's columns and their natural types, etl_stream.ping()
 *		  checks a source, etl_stream.disconnect() drops cached connections.
 *
 * IDENTIFICATION
 *		  src/query.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "source.h"

PG_FUNCTION_INFO_V1(etl_stream_query);
PG_FUNCTION_INFO_V1(etl_stream_execute);
PG_FUNCTION_INFO_V1(etl_stream_describe);
PG_FUNCTION_INFO_V1(etl_stream_ping);
PG_FUNCTION_INFO_V1(etl_stream_disconnect);

/*
 * etl_stream.query(server name, sql text) RETURNS SETOF record
 *
 * Rows are read one at a time from the socket (mysql_use_result) and
 * converted into the column definition list's types.  The tuplestore
 * spills to disk past work_mem, so memory does not grow with the result.
 */
Datum
etl_stream_query(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ForeignServer *server = lookup_source(NameStr(*PG_GETARG_NAME(0)));
	char	   *sql = text_to_cstring(PG_GETARG_TEXT_PP(1));
	SourceConnection *conn;
	MYSQL_RES  *res;
	RowConverter *converter;
	ConvertOptions copts;
	TupleDesc	tupdesc;
	Datum	   *values;
	bool	   *nulls;
	MemoryContext rowcxt;
	MemoryContext oldcxt;
	MYSQL_ROW	row;
	int64		rownum = 0;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		rsinfo->expectedDesc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("a column definition list is required for etl_stream.query"),
				 errhint("Call it in FROM with the columns and types of the result, for example: SELECT * FROM etl_stream.query('srv', 'SELECT id FROM t') AS t(id bigint).")));

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	tupdesc = rsinfo->setDesc;

	conn = connect_source(server, GetUserId());
	res = source_query_rows(conn, sql);

	memset(&copts, 0, sizeof(copts));
	copts.invalid_dates = source_options(conn)->invalid_dates;
	copts.source_encoding = source_options(conn)->charset_encoding;
	copts.relname = psprintf("remote query on server \"%s\"", server->servername);
	copts.rownum = &rownum;
	converter = build_row_converter(mysql_fetch_fields(res),
									mysql_num_fields(res), tupdesc, &copts);

	values = palloc(sizeof(Datum) * tupdesc->natts);
	nulls = palloc(sizeof(bool) * tupdesc->natts);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext,
								   "etl_stream query row",
								   ALLOCSET_DEFAULT_SIZES);

	while ((row = source_fetch_row(conn, res)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		rownum++;
		oldcxt = MemoryContextSwitchTo(rowcxt);
		convert_row(converter, row, mysql_fetch_lengths(res), values, nulls);
		tuplestore_putvalues(rsinfo->setResult, tupdesc, values, nulls);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(rowcxt);
	}
	source_end_result(conn, res);
	warn_changed_values(converter);

	return (Datum) 0;
}

/*
 * etl_stream.execute(server name, sql text) RETURNS bigint
 *
 * Runs one statement and returns the rows it affected, or the rows it
 * returned (read and discarded).
 */
Datum
etl_stream_execute(PG_FUNCTION_ARGS)
{
	ForeignServer *server = lookup_source(NameStr(*PG_GETARG_NAME(0)));
	char	   *sql = text_to_cstring(PG_GETARG_TEXT_PP(1));
	SourceConnection *conn = connect_source(server, GetUserId());
	MYSQL_RES  *res = source_query(conn, sql);
	int64		rows = 0;

	if (res == NULL)
		PG_RETURN_INT64((int64) source_affected_rows(conn));

	while (source_fetch_row(conn, res) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		rows++;
	}
	source_end_result(conn, res);
	PG_RETURN_INT64(rows);
}

/*
 * etl_stream.describe(server name, sql text)
 *   RETURNS TABLE (position int, name text, mysql_type text, natural_type text)
 *
 * The columns of a remote query's result with their MySQL types and the
 * PostgreSQL types they map to.  Only the metadata is read: add LIMIT 0 to
 * the query to keep MySQL from producing rows.
 */
Datum
etl_stream_describe(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ForeignServer *server = lookup_source(NameStr(*PG_GETARG_NAME(0)));
	char	   *sql = text_to_cstring(PG_GETARG_TEXT_PP(1));
	SourceConnection *conn;
	MYSQL_RES  *res;
	MYSQL_FIELD *fields;
	unsigned int nfields;

	InitMaterializedSRF(fcinfo, 0);
	conn = connect_source(server, GetUserId());
	res = source_query_rows(conn, sql);
	fields = mysql_fetch_fields(res);
	nfields = mysql_num_fields(res);
	for (unsigned int i = 0; i < nfields; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		StringInfoData type_name;
		int32		typmod;
		Oid			typid = mysql_natural_type(&fields[i], &typmod);

		initStringInfo(&type_name);
		append_mysql_type_name(&type_name, &fields[i]);
		values[0] = Int32GetDatum(i + 1);
		values[1] = CStringGetTextDatum(fields[i].name);
		values[2] = CStringGetTextDatum(type_name.data);
		values[3] = CStringGetTextDatum(format_type_with_typemod(typid, typmod));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	/* read and drop whatever rows the query produced */
	while (source_fetch_row(conn, res) != NULL)
		CHECK_FOR_INTERRUPTS();
	source_end_result(conn, res);

	return (Datum) 0;
}

/*
 * etl_stream.ping(server name, OUT version text, OUT rtt_ms float8)
 */
Datum
etl_stream_ping(PG_FUNCTION_ARGS)
{
	ForeignServer *server = lookup_source(NameStr(*PG_GETARG_NAME(0)));
	SourceConnection *conn;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	double		rtt;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	conn = connect_source(server, GetUserId());
	rtt = source_ping(conn);
	values[0] = CStringGetTextDatum(source_server_version(conn));
	values[1] = Float8GetDatum(rtt);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
													  values, nulls)));
}

/*
 * etl_stream.disconnect(server name DEFAULT NULL) RETURNS boolean
 *
 * Closes this backend's cached connections to the server, or to every
 * server when called without one.  True if any was open.
 */
Datum
etl_stream_disconnect(PG_FUNCTION_ARGS)
{
	Oid			serverid = InvalidOid;

	if (!PG_ARGISNULL(0))
		serverid = lookup_source(NameStr(*PG_GETARG_NAME(0)))->serverid;
	PG_RETURN_BOOL(disconnect_server(serverid));
}
