/*-------------------------------------------------------------------------
 *
 * source.h
 *		  What the files that talk to MySQL share: connections and result
 *		  streams (connection.c), the metadata of a result's columns
 *		  (mysql_types.c) and the conversion of its values (convert.c).
 *
 * This is the only header that includes mysql.h; connection.c,
 * mysql_types.c, convert.c, land.c and query.c include it, nothing else.
 *
 * IDENTIFICATION
 *		  src/source.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_STREAM_SOURCE_H
#define ETL_STREAM_SOURCE_H

#include "etl_stream.h"

#include "access/tupdesc.h"

/*
 * mysql.h pulls in ma_list.h, whose list_* functions clash with PostgreSQL's
 * pg_list.h.  We never use MariaDB's lists, so rename them out of the way.
 */
#define list_add mariadb_list_add
#define list_delete mariadb_list_delete
#define list_cons mariadb_list_cons
#define list_reverse mariadb_list_reverse
#define list_free mariadb_list_free
#define list_length mariadb_list_length
#define list_walk mariadb_list_walk
#include <mysql.h>
#undef list_add
#undef list_delete
#undef list_cons
#undef list_reverse
#undef list_free
#undef list_length
#undef list_walk

/*
 * A connection to one source, cached per (server, user) for the life of
 * the backend; its insides are connection.c's own.
 */
typedef struct SourceConnection SourceConnection;

/* connection.c */
extern SourceConnection *connect_source(ForeignServer *server, Oid userid);
extern bool disconnect_server(Oid serverid);
extern const SourceOptions *source_options(SourceConnection *conn);
extern const char *source_server_version(SourceConnection *conn);
extern uint64 source_affected_rows(SourceConnection *conn);
extern MYSQL_RES *source_query(SourceConnection *conn, const char *sql);
extern MYSQL_RES *source_query_rows(SourceConnection *conn, const char *sql);
extern MYSQL_ROW source_fetch_row(SourceConnection *conn, MYSQL_RES *res);
extern void source_end_result(SourceConnection *conn, MYSQL_RES *res);
extern double source_ping(SourceConnection *conn);

/* mysql_types.c: what a MySQL column holds, as far as conversion cares */
typedef enum SourceKind
{
	SK_NULL,					/* MYSQL_TYPE_NULL: SELECT NULL */
	SK_INTEGER,					/* TINYINT .. BIGINT, YEAR */
	SK_DECIMAL,
	SK_FLOAT,
	SK_DOUBLE,
	SK_BIT,						/* raw big-endian bytes */
	SK_TEXT,					/* CHAR, VARCHAR, TEXT in a character set */
	SK_BINARY,					/* BINARY, VARBINARY, BLOB: charset 63 */
	SK_ENUM,
	SK_SET,
	SK_JSON,					/* MySQL JSON, or MariaDB's JSON format */
	SK_DATE,
	SK_DATETIME,
	SK_TIMESTAMP,				/* UTC on the wire */
	SK_TIME,
	SK_GEOMETRY					/* 4-byte SRID, then WKB */
} SourceKind;

typedef struct SourceInfo
{
	SourceKind	kind;
	bool		is_unsigned;
	bool		is_bool;		/* TINYINT(1) */
	int64		min;			/* SK_INTEGER: range of the MySQL type */
	uint64		max;
	int			digits;			/* fractional second digits, 0..6 */
	int			nbits;			/* SK_BIT */
	int			precision;		/* SK_DECIMAL, 0 if unknown */
	int			scale;
} SourceInfo;

extern void classify_field(const MYSQL_FIELD *field, SourceInfo *si);
extern Oid	mysql_natural_type(const MYSQL_FIELD *field, int32 *typmod);
extern void append_mysql_type_name(StringInfo buf, const MYSQL_FIELD *field);

/* convert.c */

/*
 * Appends the key of the row being converted, "(id)=(42)", and returns
 * true; returns false for rows without a key, which are named by number.
 */
typedef bool (*RowKeyCallback) (StringInfo buf, void *arg);

typedef struct ConvertOptions
{
	InvalidDatePolicy invalid_dates;
	int			source_encoding;	/* PostgreSQL encoding of the wire text */
	const char *relname;		/* "table x" or "remote query", for messages */
	const int64 *rownum;		/* the row being converted, from 1; may be NULL */
	RowKeyCallback row_key;		/* may be NULL */
	void	   *row_key_arg;
	ValueError *value_error;	/* filled in before a value error; may be NULL */
	List	   *not_null_columns;	/* names (char *) a policy must not make
									 * NULL, besides tupdesc's NOT NULL ones */
	List	   *raw_columns;	/* binary fields that are text in ... */
	List	   *raw_charsets;	/* ... this MySQL charset (see _raw_charsets) */
} ConvertOptions;

typedef struct RowConverter RowConverter;

extern RowConverter *build_row_converter(MYSQL_FIELD *fields, unsigned int nfields,
										 TupleDesc tupdesc,
										 const ConvertOptions *opts);
extern void convert_row(RowConverter *rc, MYSQL_ROW row,
						unsigned long *lengths, Datum *values, bool *nulls);
extern List *converter_value_notes(RowConverter *rc);
extern void warn_changed_values(RowConverter *rc);

#endif							/* ETL_STREAM_SOURCE_H */
