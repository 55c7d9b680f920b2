/*-------------------------------------------------------------------------
 *
 * etl_stream.h
 *		  Types and functions shared by the files of etl_stream.
 *
 * Data flows through the files in this order: the SQL entry points
 * (query.c) read a source definition (options.c), open or reuse a
 * connection to MySQL (connection.c), stream rows and convert each value
 * (convert.c) into PostgreSQL datums.
 *
 * IDENTIFICATION
 *		  src/etl_stream.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_STREAM_H
#define ETL_STREAM_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"

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

/* What to do with MySQL dates that PostgreSQL cannot represent */
typedef enum InvalidDatePolicy
{
	INVALID_DATES_NULL,			/* '0000-00-00', '2024-02-30' -> NULL */
	INVALID_DATES_ERROR			/* ... -> ERROR naming column and value */
} InvalidDatePolicy;

typedef enum SslMode
{
	SSL_MODE_DISABLE,
	SSL_MODE_PREFERRED,
	SSL_MODE_REQUIRED,
	SSL_MODE_VERIFY_CA,
	SSL_MODE_VERIFY_IDENTITY
} SslMode;

/*
 * Everything needed to connect to one MySQL source, merged from the
 * server's options and the user mapping's.  Every string is a copy
 * palloc'd in the context that was current when get_source_options() ran.
 */
typedef struct SourceOptions
{
	char	   *server_name;	/* the foreign server's name */
	char	   *host;
	int			port;
	char	   *dbname;
	char	   *unix_socket;
	int			connect_timeout;	/* seconds, whole connect sequence */
	int			read_timeout;	/* seconds, 0 = wait for ever */
	int			write_timeout;	/* seconds, 0 = wait for ever */
	SslMode		ssl_mode;
	char	   *ssl_ca;
	char	   *ssl_capath;
	char	   *ssl_cert;
	char	   *ssl_key;
	char	   *ssl_cipher;
	char	   *charset;		/* MySQL character set name */
	int			charset_encoding;	/* the same as a PostgreSQL encoding */
	char	   *init_command;
	InvalidDatePolicy invalid_dates;
	char	   *user;
	char	   *password;		/* never printed anywhere */
} SourceOptions;

/* etl_stream.c */
extern int	etl_stream_history_days;
extern double etl_stream_analyze_threshold;

/* options.c */
extern ForeignServer *lookup_source(const char *server_name);
extern void get_source_options(ForeignServer *server, UserMapping *mapping,
							   SourceOptions *opts);
extern int	mysql_charset_encoding(const char *charset);

/*
 * A connection to one source, cached per (server, user) for the life of
 * the backend.  A connection that is "busy" has a statement or an
 * unfinished result stream in flight; if the transaction aborts while it
 * is busy, the remote statement is killed and the connection dropped.
 */
typedef struct SourceConnection
{
	Oid			serverid;		/* hash key part 1 */
	Oid			userid;			/* hash key part 2 */
	MYSQL	   *mysql;			/* NULL if not connected */
	char		server_name[NAMEDATALEN];
	char	   *endpoint;		/* "host:port" or socket path, for messages */
	SourceOptions *opts;		/* in the connection's own memory context */
	MemoryContext cxt;			/* holds opts and endpoint */
	unsigned long thread_id;	/* MySQL connection id, for KILL QUERY */
	bool		busy;
	bool		invalidated;	/* options changed: reconnect when idle */
	uint32		server_hashvalue;
	uint32		mapping_hashvalue;
} SourceConnection;

/* connection.c */
extern SourceConnection *connect_source(ForeignServer *server, Oid userid);
extern void disconnect_source(SourceConnection *conn);
extern bool disconnect_server(Oid serverid);
extern MYSQL_RES *source_query(SourceConnection *conn, const char *sql);
extern MYSQL_RES *source_query_rows(SourceConnection *conn, const char *sql);
extern MYSQL_ROW source_fetch_row(SourceConnection *conn, MYSQL_RES *res);
extern void source_end_result(SourceConnection *conn, MYSQL_RES *res);
extern double source_ping(SourceConnection *conn);

/* convert.c */

/* Called when a conversion fails, to say which row (key values or number) */
typedef void (*DescribeRowCallback) (StringInfo buf, void *arg);

typedef struct ConvertOptions
{
	InvalidDatePolicy invalid_dates;
	int			source_encoding;	/* PostgreSQL encoding of the wire text */
	const char *relname;		/* "table x" or "remote query", for messages */
	DescribeRowCallback describe_row;	/* may be NULL */
	void	   *describe_arg;
} ConvertOptions;

typedef struct RowConverter RowConverter;

extern RowConverter *build_row_converter(MYSQL_FIELD *fields, unsigned int nfields,
										 TupleDesc tupdesc,
										 const ConvertOptions *opts);
extern void convert_row(RowConverter *rc, MYSQL_ROW row,
						unsigned long *lengths, Datum *values, bool *nulls);
extern Oid	mysql_natural_type(const MYSQL_FIELD *field, int32 *typmod);
extern void append_mysql_type_name(StringInfo buf, const MYSQL_FIELD *field);

#endif							/* ETL_STREAM_H */
