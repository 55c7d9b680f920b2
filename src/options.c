/*-------------------------------------------------------------------------
 *
 * options.c
 *		  Options of etl_stream servers and user mappings: validation when
 *		  they are written, and merging them into a SourceOptions when a
 *		  connection is made.
 *
 * A MySQL source is a foreign server of the etl_stream wrapper; the
 * credentials live in the user mapping.  Every option is checked when it is
 * written, so a connection attempt never finds a malformed value.
 *
 * IDENTIFICATION
 *		  src/options.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "etl_stream.h"

/* Where an option may be written */
typedef struct ValidOption
{
	const char *name;
	Oid			context;		/* ForeignServerRelationId or UserMappingRelationId */
} ValidOption;

static const ValidOption valid_options[] = {
	{"host", ForeignServerRelationId},
	{"port", ForeignServerRelationId},
	{"dbname", ForeignServerRelationId},
	{"unix_socket", ForeignServerRelationId},
	{"connect_timeout", ForeignServerRelationId},
	{"read_timeout", ForeignServerRelationId},
	{"write_timeout", ForeignServerRelationId},
	{"ssl_mode", ForeignServerRelationId},
	{"ssl_ca", ForeignServerRelationId},
	{"ssl_capath", ForeignServerRelationId},
	{"ssl_cert", ForeignServerRelationId},
	{"ssl_key", ForeignServerRelationId},
	{"ssl_cipher", ForeignServerRelationId},
	{"charset", ForeignServerRelationId},
	{"init_command", ForeignServerRelationId},
	{"invalid_dates", ForeignServerRelationId},
	{"user", UserMappingRelationId},
	{"password", UserMappingRelationId},
	{"password_required", UserMappingRelationId},
	/* a client certificate may belong to one user rather than the server */
	{"ssl_cert", UserMappingRelationId},
	{"ssl_key", UserMappingRelationId},
	{NULL, InvalidOid}
};

static const char *const ssl_mode_names[] = {
	[SSL_MODE_DISABLE] = "disable",
	[SSL_MODE_PREFERRED] = "preferred",
	[SSL_MODE_REQUIRED] = "required",
	[SSL_MODE_VERIFY_CA] = "verify_ca",
	[SSL_MODE_VERIFY_IDENTITY] = "verify_identity",
};

/*
 * MySQL character sets we can receive, with the PostgreSQL encoding that
 * holds the same bytes.  MySQL's "latin1" is really Windows-1252.
 */
typedef struct CharsetEncoding
{
	const char *charset;
	int			encoding;
} CharsetEncoding;

static const CharsetEncoding charset_encodings[] = {
	{"utf8mb4", PG_UTF8},
	{"utf8mb3", PG_UTF8},
	{"utf8", PG_UTF8},
	{"ascii", PG_UTF8},
	{"latin1", PG_WIN1252},
	{"latin2", PG_LATIN2},
	{"latin5", PG_LATIN5},
	{"latin7", PG_LATIN7},
	{"cp1250", PG_WIN1250},
	{"cp1251", PG_WIN1251},
	{"cp1256", PG_WIN1256},
	{"cp1257", PG_WIN1257},
	{"cp866", PG_WIN866},
	{"greek", PG_ISO_8859_7},
	{"hebrew", PG_ISO_8859_8},
	{"koi8r", PG_KOI8R},
	{"koi8u", PG_KOI8U},
	{"euckr", PG_EUC_KR},
	{"ujis", PG_EUC_JP},
	{"sjis", PG_SJIS},
	{"gbk", PG_GBK},
	{"gb2312", PG_EUC_CN},
	{"big5", PG_BIG5},
	{NULL, -1}
};

#define DEFAULT_PORT			3306
#define DEFAULT_CONNECT_TIMEOUT	10
#define DEFAULT_CHARSET			"utf8mb4"

PG_FUNCTION_INFO_V1(etl_stream_fdw_validator);

/*
 * The PostgreSQL encoding for a MySQL character set name, or -1.
 */
int
mysql_charset_encoding(const char *charset)
{
	for (const CharsetEncoding *ce = charset_encodings; ce->charset; ce++)
	{
		if (pg_strcasecmp(ce->charset, charset) == 0)
			return ce->encoding;
	}
	return -1;
}

static int
parse_int_option(DefElem *def, int min, int max)
{
	const char *value = defGetString(def);
	char	   *end;
	long		n;

	errno = 0;
	n = strtol(value, &end, 10);
	if (end == value || *end != '\0' || errno != 0 || n < min || n > max)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"",
						def->defname, value),
				 errdetail("The value must be an integer from %d to %d.",
						   min, max)));
	return (int) n;
}

static SslMode
parse_ssl_mode(DefElem *def)
{
	const char *value = defGetString(def);

	for (int i = 0; i < (int) lengthof(ssl_mode_names); i++)
	{
		if (strcmp(value, ssl_mode_names[i]) == 0)
			return (SslMode) i;
	}
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
			 errmsg("invalid value for option \"ssl_mode\": \"%s\"", value),
			 errhint("Valid values are: disable, preferred, required, verify_ca, verify_identity.")));
	return SSL_MODE_DISABLE;	/* keep the compiler quiet */
}

static InvalidDatePolicy
parse_invalid_dates(DefElem *def)
{
	const char *value = defGetString(def);

	if (strcmp(value, "null") == 0)
		return INVALID_DATES_NULL;
	if (strcmp(value, "error") == 0)
		return INVALID_DATES_ERROR;
	if (strcmp(value, "-infinity") == 0)
		return INVALID_DATES_NEG_INFINITY;
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
			 errmsg("invalid value for option \"invalid_dates\": \"%s\"", value),
			 errhint("Valid values are: null, error, -infinity.")));
	return INVALID_DATES_NULL;	/* keep the compiler quiet */
}

static int
parse_charset(DefElem *def)
{
	const char *value = defGetString(def);
	int			encoding = mysql_charset_encoding(value);

	if (encoding < 0)
	{
		StringInfoData names;

		initStringInfo(&names);
		for (const CharsetEncoding *ce = charset_encodings; ce->charset; ce++)
			appendStringInfo(&names, "%s%s", names.len ? ", " : "", ce->charset);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("unsupported value for option \"charset\": \"%s\"", value),
				 errhint("Supported character sets are: %s.", names.data)));
	}
	return encoding;
}

static void
require_nonempty(DefElem *def)
{
	if (defGetString(def)[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("option \"%s\" must not be empty", def->defname)));
}

/*
 * Check one option's value, and store it into opts when opts is not NULL.
 * The same code serves the validator and get_source_options(), so what is
 * accepted is exactly what is used.  Strings are copied: a cached
 * connection keeps its options long after the catalog lists are gone.
 */
static void
apply_option(DefElem *def, SourceOptions *opts)
{
	const char *name = def->defname;
	SourceOptions scratch;
	bool		validating = (opts == NULL);

	if (opts == NULL)
		opts = &scratch;

	if (strcmp(name, "host") == 0)
	{
		require_nonempty(def);
		opts->host = pstrdup(defGetString(def));
	}
	else if (strcmp(name, "port") == 0)
		opts->port = parse_int_option(def, 1, 65535);
	else if (strcmp(name, "dbname") == 0)
		opts->dbname = pstrdup(defGetString(def));
	else if (strcmp(name, "unix_socket") == 0)
	{
		require_nonempty(def);
		opts->unix_socket = pstrdup(defGetString(def));
	}
	else if (strcmp(name, "connect_timeout") == 0)
		opts->connect_timeout = parse_int_option(def, 1, 3600);
	else if (strcmp(name, "read_timeout") == 0)
		opts->read_timeout = parse_int_option(def, 0, 86400 * 7);
	else if (strcmp(name, "write_timeout") == 0)
		opts->write_timeout = parse_int_option(def, 0, 86400 * 7);
	else if (strcmp(name, "ssl_mode") == 0)
		opts->ssl_mode = parse_ssl_mode(def);
	else if (strcmp(name, "ssl_ca") == 0)
		opts->ssl_ca = pstrdup(defGetString(def));
	else if (strcmp(name, "ssl_capath") == 0)
		opts->ssl_capath = pstrdup(defGetString(def));
	else if (strcmp(name, "ssl_cert") == 0)
		opts->ssl_cert = pstrdup(defGetString(def));
	else if (strcmp(name, "ssl_key") == 0)
		opts->ssl_key = pstrdup(defGetString(def));
	else if (strcmp(name, "ssl_cipher") == 0)
		opts->ssl_cipher = pstrdup(defGetString(def));
	else if (strcmp(name, "charset") == 0)
	{
		opts->charset_encoding = parse_charset(def);
		opts->charset = pstrdup(defGetString(def));
	}
	else if (strcmp(name, "init_command") == 0)
		opts->init_command = pstrdup(defGetString(def));
	else if (strcmp(name, "invalid_dates") == 0)
		opts->invalid_dates = parse_invalid_dates(def);
	else if (strcmp(name, "user") == 0)
	{
		require_nonempty(def);
		opts->user = pstrdup(defGetString(def));
	}
	else if (strcmp(name, "password") == 0)
		opts->password = pstrdup(defGetString(def));
	else if (strcmp(name, "password_required") == 0)
	{
		opts->password_required = defGetBoolean(def);

		/*
		 * As in postgres_fdw: waiving the password checks lets the mapping's
		 * role authenticate as the server's OS user, so only a superuser may
		 * write it, and a mapping that has it only a superuser may alter.
		 */
		if (validating && !opts->password_required && !superuser())
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("password_required=false is superuser-only"),
					 errhint("User mappings with the password_required option set to false may only be created or modified by the superuser.")));
	}
	else
		elog(ERROR, "unrecognized etl_stream option \"%s\"", name);
}

static bool
is_valid_option(const char *name, Oid context)
{
	for (const ValidOption *opt = valid_options; opt->name; opt++)
	{
		if (opt->context == context && strcmp(opt->name, name) == 0)
			return true;
	}
	return false;
}

/*
 * Validator of the etl_stream foreign-data wrapper: rejects unknown options
 * with the list of valid ones, and malformed values with what is expected.
 */
Datum
etl_stream_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			context = PG_GETARG_OID(1);
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (!is_valid_option(def->defname, context))
		{
			StringInfoData names;

			initStringInfo(&names);
			for (const ValidOption *opt = valid_options; opt->name; opt++)
			{
				if (opt->context == context)
					appendStringInfo(&names, "%s%s", names.len ? ", " : "",
									 opt->name);
			}
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", def->defname),
					 names.len > 0
					 ? errhint("Valid options in this context are: %s.",
							   names.data)
					 : errhint("There are no valid options in this context.")));
		}
		apply_option(def, NULL);
	}

	PG_RETURN_VOID();
}

/*
 * The foreign server by name, after checking that it belongs to our
 * wrapper and that the current user may use it.
 */
ForeignServer *
lookup_source(const char *server_name)
{
	ForeignServer *server = GetForeignServerByName(server_name, false);
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);
	AclResult	aclresult;

	if (strcmp(fdw->fdwname, "etl_stream") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("server \"%s\" is not an etl_stream server",
						server->servername),
				 errdetail("It uses foreign-data wrapper \"%s\".", fdw->fdwname)));

	aclresult = pg_foreign_server_aclcheck(server->serverid, GetUserId(),
										   ACL_USAGE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, server->servername);

	return server;
}

/*
 * Merge the server's and the user mapping's options, over the defaults.
 */
void
get_source_options(ForeignServer *server, UserMapping *mapping,
				   SourceOptions *opts)
{
	ListCell   *lc;

	memset(opts, 0, sizeof(SourceOptions));
	opts->server_name = pstrdup(server->servername);
	opts->host = "127.0.0.1";
	opts->port = DEFAULT_PORT;
	opts->connect_timeout = DEFAULT_CONNECT_TIMEOUT;
	opts->ssl_mode = SSL_MODE_PREFERRED;
	opts->charset = DEFAULT_CHARSET;
	opts->charset_encoding = PG_UTF8;
	opts->invalid_dates = INVALID_DATES_NULL;
	opts->password_required = true;

	foreach(lc, server->options)
		apply_option((DefElem *) lfirst(lc), opts);
	if (mapping != NULL)
	{
		foreach(lc, mapping->options)
			apply_option((DefElem *) lfirst(lc), opts);
	}
}
