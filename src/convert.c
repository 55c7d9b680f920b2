/*-------------------------------------------------------------------------
 *
 * convert.c
 *		  Turn MySQL text-protocol values into PostgreSQL datums.
 *
 * build_row_converter() looks at the MySQL result's column metadata and
 * the target row type once, and picks one conversion function per column.
 * convert_row() then only calls those functions: integers, dates and times
 * are parsed by hand, text is validated (and re-encoded when the wire
 * encoding differs from the database's), and PostgreSQL input functions
 * are used only where nothing simpler is right (numeric, float, jsonb).
 *
 * A value that cannot be represented is an error naming the table or
 * query, the column, the row and the value; never a silently different
 * value.  The only exception is the invalid_dates policy ('null' or
 * '-infinity'), which the user asks for: the values it changes are counted
 * per column, with the first of them, for the run to report
 * (converter_value_notes), and 'null' never makes a NULL in a column that
 * is NOT NULL in the target (the caller names those the landing table does
 * not declare, such as staging's).  The mapping is documented in
 * docs/type-mapping.md.
 *
 * IDENTIFICATION
 *		  src/convert.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/varbit.h"

#include "source.h"

/* Longest value shown in error messages, in bytes */
#define MAX_SHOWN_VALUE_BYTES	60

typedef struct ColumnConverter ColumnConverter;

/*
 * Converts one non-NULL value.  May set *isnull (invalid date under the
 * 'null' policy).
 */
typedef Datum (*ConvertFunc) (RowConverter *rc, ColumnConverter *col,
							  const char *s, unsigned long len, bool *isnull);

struct ColumnConverter
{
	ConvertFunc convert;
	int			attidx;			/* index into values[] and nulls[] */
	SourceInfo	src;

	/* target, with domains resolved to their base type */
	Oid			typid;
	int32		typmod;
	Oid			domain_type;	/* InvalidOid unless the target is a domain */
	bool		not_null;		/* a policy must not make a NULL here */
	void	   *domain_extra;	/* domain_check()'s cache */

	/* integer targets: the accepted range */
	int64		min;
	int64		max;

	/* text targets */
	int			encoding;		/* encoding of the wire bytes */
	FmgrInfo   *encoding_proc;	/* to the database encoding, or NULL */
	int			max_chars;		/* varchar(n)/bpchar(n) limit, -1 if none */

	/* datetime targets: typmod to round to, -1 if none needed */
	int32		round_typmod;

	/* values the invalid_dates policy changed, in rows converted */
	int64		changed;
	char	   *first_key;		/* the first of them */
	int64		first_row;
	char	   *first_value;

	/* input-function targets */
	FmgrInfo	input_fn;
	Oid			typioparam;
	int32		input_typmod;

	/* for messages */
	const char *attname;
	const char *mysql_name;
	const char *mysql_type;		/* "DECIMAL(10,2)" */
	const char *type_name;		/* target type as declared (maybe a domain) */
	const char *base_type_name; /* target's base type with its typmod */
};

struct RowConverter
{
	int			ncols;
	ColumnConverter *cols;
	int			ndropped;
	int		   *dropped;		/* attribute indexes of dropped columns */

	InvalidDatePolicy invalid_dates;
	const char *relname;
	const int64 *rownum;
	RowKeyCallback row_key;
	void	   *row_key_arg;
	ValueError *value_error;
	int			db_encoding;
	MemoryContext cxt;			/* where the converter lives */

	/* scratch space for NUL-terminated copies handed to input functions */
	char	   *scratch;
	Size		scratch_size;

	/*
	 * the row's columns whose value the policy changed, counted when the
	 * whole row has converted
	 */
	int			npending;
	int		   *pending;
	bool		replaced;		/* invalid_date() gave the value: no more to do */

	/* for the error context callback, set once per row */
	MYSQL_ROW	cur_row;
	unsigned long *cur_lengths;
	int			cur;			/* column being converted, -1 if none */
	bool		reporting;		/* our own error: it already says it all */
};

/* Problems a single value can have; see raise_value_error() */
typedef enum ValueProblem
{
	VP_OUT_OF_RANGE,
	VP_NOT_BOOLEAN,
	VP_INVALID_DATE,
	VP_TIME_OUT_OF_RANGE,
	VP_TOO_LONG,
	VP_BAD_ENCODING,
	VP_TOO_LARGE,
	VP_BAD_FORMAT,
	VP_NULL_BY_POLICY			/* invalid date, NULL by policy, NOT NULL column */
} ValueProblem;

static void report_value_error(RowConverter *rc, ColumnConverter *col,
							   const char *s, unsigned long len,
							   ValueProblem problem) pg_attribute_noreturn();
static void report_value_error_ext(RowConverter *rc, ColumnConverter *col,
								   const char *s, unsigned long len,
								   ValueProblem problem,
								   bool in_db_encoding) pg_attribute_noreturn();

/* ----------------------------------------------------------------
 *		Error reporting
 * ----------------------------------------------------------------
 */

/*
 * Append a value for a message: at most MAX_SHOWN_VALUE_BYTES bytes, control
 * and non-text bytes as \xNN, multibyte characters kept when they are valid
 * in the database encoding (the message must be valid text itself).
 */
static void
append_shown_value(StringInfo buf, const char *s, unsigned long len,
				   bool keep_multibyte)
{
	int			db_encoding = GetDatabaseEncoding();
	unsigned long limit = Min(len, MAX_SHOWN_VALUE_BYTES);
	unsigned long i = 0;

	while (i < limit)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '\\')
			appendStringInfoString(buf, "\\\\");
		else if (c == '\n')
			appendStringInfoString(buf, "\\n");
		else if (c == '\r')
			appendStringInfoString(buf, "\\r");
		else if (c == '\t')
			appendStringInfoString(buf, "\\t");
		else if (c < 0x20 || c == 0x7f)
			appendStringInfo(buf, "\\x%02x", c);
		else if (c < 0x80)
			appendStringInfoChar(buf, (char) c);
		else
		{
			int			l = -1;

			if (keep_multibyte && db_encoding != PG_SQL_ASCII)
				l = pg_encoding_verifymbchar(db_encoding, s + i, (int) (len - i));
			if (l > 0)
			{
				appendBinaryStringInfo(buf, s + i, l);
				i += l;
				continue;
			}
			appendStringInfo(buf, "\\x%02x", c);
		}
		i++;
	}
	if (i < len)
		appendStringInfoString(buf, "...");
}

static bool
column_shows_multibyte(RowConverter *rc, ColumnConverter *col)
{
	return col->encoding == rc->db_encoding;
}

/*
 * The facts of the value being converted, for a message and for the
 * caller's ValueError: column, MySQL type, row, and the value as shown (in
 * the database encoding when in_db_encoding, else as the wire has it).
 */
static void
describe_value(RowConverter *rc, ColumnConverter *col, const char *s,
			   unsigned long len, bool in_db_encoding, ValueError *ve)
{
	StringInfoData buf;

	memset(ve, 0, sizeof(ValueError));
	ve->column = (char *) col->attname;
	ve->mysql_type = (char *) col->mysql_type;
	ve->row = rc->rownum ? *rc->rownum : 0;
	if (rc->row_key != NULL)
	{
		initStringInfo(&buf);
		if (rc->row_key(&buf, rc->row_key_arg))
			ve->key = buf.data;
	}
	if (s != NULL)
	{
		initStringInfo(&buf);
		append_shown_value(&buf, s, len, in_db_encoding);
		ve->value = buf.data;
	}
}

/* 'Column "c" (MySQL INT) of remote query, row 42' */
static void
append_column_facts(StringInfo buf, RowConverter *rc, ColumnConverter *col,
					const ValueError *ve, bool capitalize)
{
	appendStringInfo(buf, "%s \"%s\"", capitalize ? "Column" : "column",
					 col->attname);
	if (strcmp(col->attname, col->mysql_name) != 0)
		appendStringInfo(buf, " (MySQL column \"%s\" of type %s)",
						 col->mysql_name, col->mysql_type);
	else
		appendStringInfo(buf, " (MySQL %s)", col->mysql_type);
	appendStringInfo(buf, " of %s", rc->relname);
	if (ve->key != NULL)
		appendStringInfo(buf, ", key %s", ve->key);
	else if (ve->row > 0)
		appendStringInfo(buf, ", row %lld", (long long) ve->row);
}

/*
 * Hand the facts to whoever asked for them (a run records them as columns
 * of etl_stream.runs): copied into their context, as the error on its way
 * up may free ours.
 */
static void
pass_value_error(RowConverter *rc, const ValueError *ve, int sqlerrcode)
{
	ValueError *out = rc->value_error;
	MemoryContext cxt;

	if (out == NULL)
		return;
	cxt = out->cxt;
	Assert(cxt != NULL);
	out->set = true;
	out->sqlerrcode = sqlerrcode;
	out->column = MemoryContextStrdup(cxt, ve->column);
	out->mysql_type = MemoryContextStrdup(cxt, ve->mysql_type);
	out->key = ve->key ? MemoryContextStrdup(cxt, ve->key) : NULL;
	out->row = ve->row;
	out->value = ve->value ? MemoryContextStrdup(cxt, ve->value) : NULL;
}

static void
report_value_error(RowConverter *rc, ColumnConverter *col,
				   const char *s, unsigned long len, ValueProblem problem)
{
	report_value_error_ext(rc, col, s, len, problem,
						   column_shows_multibyte(rc, col));
}

/*
 * The one place a value error is raised: its facts go to the caller's
 * ValueError, then into the message.  in_db_encoding: s is text in the
 * database encoding (already converted).
 */
static void
report_value_error_ext(RowConverter *rc, ColumnConverter *col,
					   const char *s, unsigned long len, ValueProblem problem,
					   bool in_db_encoding)
{
	ValueError	ve;
	StringInfoData facts;
	const char *value;
	int			sqlerrcode = 0;

	describe_value(rc, col, s, len, in_db_encoding, &ve);
	initStringInfo(&facts);
	append_column_facts(&facts, rc, col, &ve, true);
	value = ve.value ? ve.value : "";

	/* our message says everything the context line would */
	rc->reporting = true;

	switch (problem)
	{
		case VP_OUT_OF_RANGE:
			sqlerrcode = ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE;
			break;
		case VP_NOT_BOOLEAN:
		case VP_BAD_FORMAT:
			sqlerrcode = ERRCODE_INVALID_TEXT_REPRESENTATION;
			break;
		case VP_INVALID_DATE:
		case VP_TIME_OUT_OF_RANGE:
			sqlerrcode = ERRCODE_DATETIME_VALUE_OUT_OF_RANGE;
			break;
		case VP_TOO_LONG:
			sqlerrcode = ERRCODE_STRING_DATA_RIGHT_TRUNCATION;
			break;
		case VP_BAD_ENCODING:
			sqlerrcode = ERRCODE_CHARACTER_NOT_IN_REPERTOIRE;
			break;
		case VP_TOO_LARGE:
			sqlerrcode = ERRCODE_PROGRAM_LIMIT_EXCEEDED;
			break;
		case VP_NULL_BY_POLICY:
			sqlerrcode = ERRCODE_NOT_NULL_VIOLATION;
			break;
	}
	pass_value_error(rc, &ve, sqlerrcode);

	switch (problem)
	{
		case VP_OUT_OF_RANGE:
			ereport(ERROR,
					(errcode(sqlerrcode),
					 errmsg("value out of range for column \"%s\"", col->attname),
					 errdetail("%s, has value \"%s\" which is out of range for type %s.",
							   facts.data, value, col->base_type_name)));
			break;
		case VP_NOT_BOOLEAN:
			ereport(ERROR,
					(errcode(sqlerrcode),
					 errmsg("invalid boolean value for column \"%s\"", col->attname),
					 errdetail("%s, has value \"%s\" which is neither 0 nor 1.",
							   facts.data, value),
					 errhint("Use type %s for this column to receive the value as it is.",
							 col->src.kind == SK_BIT ? "bit" : "smallint")));
			break;
		case VP_INVALID_DATE:
			ereport(ERROR,
					(errcode(sqlerrcode),
					 errmsg("invalid date for column \"%s\"", col->attname),
					 errdetail("%s, has value \"%s\" which is not a valid date.",
							   facts.data, value),
					 errhint("Set the server option invalid_dates to 'null' or '-infinity' to receive such values as NULL or -infinity.")));
			break;
		case VP_TIME_OUT_OF_RANGE:
			ereport(ERROR,
					(errcode(sqlerrcode),
					 errmsg("time out of range for column \"%s\"", col->attname),
					 errdetail("%s, has value \"%s\" which is outside the range of type %s, 00:00:00 to 23:59:59.999999.",
							   facts.data, value, col->base_type_name),
					 errhint("Use type interval for this column: it holds every MySQL TIME value.")));
			break;
		case VP_TOO_LONG:
			ereport(ERROR,
					(errcode(sqlerrcode),
					 errmsg("value too long for column \"%s\"", col->attname),
					 errdetail("%s, has value \"%s\" which is longer than the %d characters of type %s.",
							   facts.data, value, col->max_chars,
							   col->base_type_name)));
			break;
		case VP_BAD_ENCODING:
			ereport(ERROR,
					(errcode(sqlerrcode),
					 errmsg("invalid byte sequence for encoding \"%s\" in column \"%s\"",
							pg_encoding_to_char(col->encoding), col->attname),
					 errdetail("%s, has value \"%s\" which is not valid %s text.",
							   facts.data, value,
							   pg_encoding_to_char(col->encoding)),
					 col->src.kind == SK_BINARY ?
					 errhint("Use type bytea for this column to receive the bytes as they are.") : 0));
			break;
		case VP_TOO_LARGE:
			ereport(ERROR,
					(errcode(sqlerrcode),
					 errmsg("value too large for column \"%s\"", col->attname),
					 errdetail("%s, has a value of %lu bytes, more than PostgreSQL can store in one field.",
							   facts.data, len)));
			break;
		case VP_BAD_FORMAT:
			ereport(ERROR,
					(errcode(sqlerrcode),
					 errmsg("unexpected MySQL value for column \"%s\"", col->attname),
					 errdetail("%s, has value \"%s\" which is not in the format of MySQL %s.",
							   facts.data, value, col->mysql_type)));
			break;
		case VP_NULL_BY_POLICY:
			/* a row the source could never hold: never load it */
			ereport(ERROR,
					(errcode(sqlerrcode),
					 errmsg("invalid date in NOT NULL column \"%s\" of %s",
							col->attname, rc->relname),
					 errdetail("%s, has value \"%s\" which is not a valid date; the invalid_dates policy 'null' would make it NULL, which the column does not allow.",
							   facts.data, value),
					 errhint("Set the server option invalid_dates to 'error' or '-infinity', or drop the column's NOT NULL constraint to receive such values as NULL.")));
			break;
	}
	pg_unreachable();
}

/*
 * Errors raised by PostgreSQL's own functions (numeric_in, jsonb_in,
 * domain checks, encoding conversion) get a context line with the facts,
 * and the caller's ValueError gets them too.
 */
static void
convert_error_callback(void *arg)
{
	RowConverter *rc = (RowConverter *) arg;
	ColumnConverter *col;
	ValueError	ve;
	StringInfoData buf;
	const char *s;

	if (rc->reporting || rc->cur < 0 || rc->cur >= rc->ncols)
		return;
	col = &rc->cols[rc->cur];
	s = rc->cur_row[rc->cur];

	describe_value(rc, col, s, s ? rc->cur_lengths[rc->cur] : 0,
				   column_shows_multibyte(rc, col), &ve);
	/* a notice or warning raised meanwhile is not the value's error */
	if (ERRCODE_TO_CATEGORY(geterrcode()) != ERRCODE_SUCCESSFUL_COMPLETION &&
		ERRCODE_TO_CATEGORY(geterrcode()) != ERRCODE_WARNING)
		pass_value_error(rc, &ve, geterrcode());
	initStringInfo(&buf);
	append_column_facts(&buf, rc, col, &ve, false);
	if (s == NULL)
		appendStringInfoString(&buf, ", value NULL");
	else
		appendStringInfo(&buf, ", value \"%s\"", ve.value);
	errcontext("%s", buf.data);
}

/* ----------------------------------------------------------------
 *		Parsing helpers
 * ----------------------------------------------------------------
 */

typedef enum ParseResult
{
	PARSE_OK,
	PARSE_OVERFLOW,				/* a well-formed number too large */
	PARSE_INVALID,				/* a well-formed date that does not exist */
	PARSE_BAD_FORMAT			/* not what MySQL sends: should not happen */
} ParseResult;

/* "-123" or "00042" into a sign and a magnitude */
static inline ParseResult
parse_integer(const char *s, unsigned long len, bool *neg, uint64 *magnitude)
{
	const char *p = s;
	const char *end = s + len;
	uint64		acc = 0;

	*neg = false;
	if (p < end && *p == '-')
	{
		*neg = true;
		p++;
	}
	if (p == end)
		return PARSE_BAD_FORMAT;
	/* up to 19 digits cannot overflow */
	if (end - p <= 19)
	{
		for (; p < end; p++)
		{
			unsigned int d = (unsigned char) *p - '0';

			if (d > 9)
				return PARSE_BAD_FORMAT;
			acc = acc * 10 + d;
		}
	}
	else
	{
		for (; p < end; p++)
		{
			unsigned int d = (unsigned char) *p - '0';

			if (d > 9)
				return PARSE_BAD_FORMAT;
			if (pg_mul_u64_overflow(acc, 10, &acc) ||
				pg_add_u64_overflow(acc, d, &acc))
			{
				/* still check the rest is digits */
				for (p++; p < end; p++)
					if ((unsigned char) *p - '0' > 9)
						return PARSE_BAD_FORMAT;
				return PARSE_OVERFLOW;
			}
		}
	}
	*magnitude = acc;
	return PARSE_OK;
}

/* Signed 64-bit value of an integer string */
static inline ParseResult
parse_int64(const char *s, unsigned long len, int64 *result)
{
	bool		neg;
	uint64		mag;
	ParseResult r = parse_integer(s, len, &neg, &mag);

	if (r != PARSE_OK)
		return r;
	if (neg)
	{
		if (mag > (uint64) PG_INT64_MAX + 1)
			return PARSE_OVERFLOW;
		*result = (mag == (uint64) PG_INT64_MAX + 1) ? PG_INT64_MIN : -(int64) mag;
	}
	else
	{
		if (mag > (uint64) PG_INT64_MAX)
			return PARSE_OVERFLOW;
		*result = (int64) mag;
	}
	return PARSE_OK;
}

static inline int
digit_at(const char *p)
{
	return (unsigned char) *p - '0';
}

static inline bool
two_digits(const char *p, int *v)
{
	int			a = digit_at(p),
				b = digit_at(p + 1);

	if ((unsigned) a > 9 || (unsigned) b > 9)
		return false;
	*v = a * 10 + b;
	return true;
}

/* ".123" -> 123000 microseconds; at most 6 digits */
static inline bool
parse_fraction(const char *p, const char *end, int64 *usec)
{
	int64		v = 0;
	int			n = 0;

	if (p == end)
	{
		*usec = 0;
		return true;
	}
	if (*p != '.')
		return false;
	for (p++; p < end; p++, n++)
	{
		int			d = digit_at(p);

		if ((unsigned) d > 9 || n >= 6)
			return false;
		v = v * 10 + d;
	}
	if (n == 0)
		return false;
	for (; n < 6; n++)
		v *= 10;
	*usec = v;
	return true;
}

static const int days_in_month[2][13] = {
	{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31},
	{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
};

/*
 * "YYYY-MM-DD" into days since 2000-01-01.  Zero dates, zero months or days
 * and days past the month's end are PARSE_INVALID, and so is year 0, which
 * MySQL accepts but the calendar PostgreSQL shows does not have.
 */
static inline ParseResult
parse_date(const char *s, unsigned long len, int *days)
{
	int			y1,
				y2,
				m,
				d;

	if (len < 10 || s[4] != '-' || s[7] != '-' ||
		!two_digits(s, &y1) || !two_digits(s + 2, &y2) ||
		!two_digits(s + 5, &m) || !two_digits(s + 8, &d))
		return PARSE_BAD_FORMAT;
	y1 = y1 * 100 + y2;
	if (y1 < 1 || m < 1 || m > 12 || d < 1 ||
		d > days_in_month[isleap(y1) ? 1 : 0][m])
		return PARSE_INVALID;
	*days = date2j(y1, m, d) - POSTGRES_EPOCH_JDATE;
	return PARSE_OK;
}

/* "YYYY-MM-DD HH:MM:SS[.ffffff]" into microseconds since 2000-01-01 */
static inline ParseResult
parse_datetime(const char *s, unsigned long len, int64 *result)
{
	int			days;
	int			h,
				mi,
				sec;
	int64		frac;
	ParseResult r;

	if (len < 19 || s[10] != ' ' || s[13] != ':' || s[16] != ':' ||
		!two_digits(s + 11, &h) || !two_digits(s + 14, &mi) ||
		!two_digits(s + 17, &sec) ||
		!parse_fraction(s + 19, s + len, &frac))
		return PARSE_BAD_FORMAT;
	r = parse_date(s, 10, &days);
	if (r != PARSE_OK)
		return r;
	if (h > 23 || mi > 59 || sec > 59)
		return PARSE_INVALID;
	*result = (int64) days * USECS_PER_DAY +
		((h * 60 + mi) * 60 + sec) * USECS_PER_SEC + frac;
	return PARSE_OK;
}

/* "[-]HHH:MM:SS[.ffffff]" into signed microseconds */
static inline ParseResult
parse_time(const char *s, unsigned long len, int64 *result)
{
	const char *p = s;
	const char *end = s + len;
	bool		neg = false;
	int64		h = 0;
	int			nh = 0,
				mi,
				sec;
	int64		frac;
	int64		v;

	if (p < end && *p == '-')
	{
		neg = true;
		p++;
	}
	for (; p < end && (unsigned) digit_at(p) <= 9 && nh < 9; p++, nh++)
		h = h * 10 + digit_at(p);
	if (nh == 0 || end - p < 6 || p[0] != ':' || p[3] != ':' ||
		!two_digits(p + 1, &mi) || !two_digits(p + 4, &sec) ||
		mi > 59 || sec > 59 ||
		!parse_fraction(p + 6, end, &frac))
		return PARSE_BAD_FORMAT;
	v = ((h * 60 + mi) * 60 + sec) * USECS_PER_SEC + frac;
	*result = neg ? -v : v;
	return PARSE_OK;
}

/* A NUL-terminated copy of a value, for input functions */
static char *
scratch_copy(RowConverter *rc, const char *s, unsigned long len)
{
	if (len + 1 > rc->scratch_size)
	{
		Size		newsize = Max(rc->scratch_size * 2, len + 1);

		if (rc->scratch)
			pfree(rc->scratch);
		rc->scratch = MemoryContextAllocHuge(rc->cxt, newsize);
		rc->scratch_size = newsize;
	}
	memcpy(rc->scratch, s, len);
	rc->scratch[len] = '\0';
	return rc->scratch;
}

/*
 * Validate wire text and bring it into the database encoding.  Returns the
 * bytes to store (s itself when no conversion is needed) and their length.
 * Rejects NUL bytes, which PostgreSQL text cannot hold.
 */
static inline const char *
server_text(RowConverter *rc, ColumnConverter *col, const char *s,
			unsigned long len, int *outlen)
{
	char	   *result;
	Size		converted;

	if (unlikely(len > MaxAllocSize - VARHDRSZ - 1))
		report_value_error(rc, col, s, len, VP_TOO_LARGE);
	if (unlikely(!pg_verify_mbstr(col->encoding, s, (int) len, true)))
		report_value_error(rc, col, s, len, VP_BAD_ENCODING);
	if (likely(col->encoding_proc == NULL))
	{
		*outlen = (int) len;
		return s;
	}

	result = MemoryContextAllocHuge(CurrentMemoryContext,
									(Size) len * MAX_CONVERSION_GROWTH + 1);
	(void) FunctionCall6(col->encoding_proc,
						 Int32GetDatum(col->encoding),
						 Int32GetDatum(rc->db_encoding),
						 CStringGetDatum(s),
						 CStringGetDatum(result),
						 Int32GetDatum((int) len),
						 BoolGetDatum(false));
	converted = strlen(result);
	if (unlikely(converted > MaxAllocSize - VARHDRSZ - 1))
		report_value_error(rc, col, s, len, VP_TOO_LARGE);
	*outlen = (int) converted;
	return result;
}

/*
 * PostgreSQL's rule for varchar(n) and char(n): characters past n are an
 * error unless they are all spaces, which are dropped.  Returns the length
 * in bytes to keep.
 */
static int
enforce_char_limit(RowConverter *rc, ColumnConverter *col, const char *p,
				   int len)
{
	int			keep;

	if (len <= col->max_chars)	/* bytes >= characters */
		return len;
	keep = pg_mbcharcliplen(p, len, col->max_chars);
	for (int i = keep; i < len; i++)
	{
		if (p[i] != ' ')
			report_value_error_ext(rc, col, p, len, VP_TOO_LONG, true);
	}
	return keep;
}

/* ----------------------------------------------------------------
 *		Conversion functions, one per (source, target) pair
 * ----------------------------------------------------------------
 */

static Datum
conv_unexpected(RowConverter *rc, ColumnConverter *col, const char *s,
				unsigned long len, bool *isnull)
{
	report_value_error(rc, col, s, len, VP_BAD_FORMAT);
}

static inline int64
integer_value(RowConverter *rc, ColumnConverter *col, const char *s,
			  unsigned long len)
{
	int64		v;
	ParseResult r = parse_int64(s, len, &v);

	if (unlikely(r != PARSE_OK))
		report_value_error(rc, col, s, len,
						   r == PARSE_OVERFLOW ? VP_OUT_OF_RANGE : VP_BAD_FORMAT);
	if (unlikely(v < col->min || v > col->max))
		report_value_error(rc, col, s, len, VP_OUT_OF_RANGE);
	return v;
}

static Datum
conv_int_int2(RowConverter *rc, ColumnConverter *col, const char *s,
			  unsigned long len, bool *isnull)
{
	return Int16GetDatum((int16) integer_value(rc, col, s, len));
}

static Datum
conv_int_int4(RowConverter *rc, ColumnConverter *col, const char *s,
			  unsigned long len, bool *isnull)
{
	return Int32GetDatum((int32) integer_value(rc, col, s, len));
}

static Datum
conv_int_int8(RowConverter *rc, ColumnConverter *col, const char *s,
			  unsigned long len, bool *isnull)
{
	return Int64GetDatum(integer_value(rc, col, s, len));
}

static Datum
conv_int_bool(RowConverter *rc, ColumnConverter *col, const char *s,
			  unsigned long len, bool *isnull)
{
	if (len == 1 && (s[0] == '0' || s[0] == '1'))
		return BoolGetDatum(s[0] == '1');
	report_value_error(rc, col, s, len, VP_NOT_BOOLEAN);
}

static Datum
conv_int_float4(RowConverter *rc, ColumnConverter *col, const char *s,
				unsigned long len, bool *isnull)
{
	return Float4GetDatum((float4) integer_value(rc, col, s, len));
}

/* Every integer fits, BIGINT UNSIGNED too; above 2^53 float8 rounds */
static Datum
conv_int_float8(RowConverter *rc, ColumnConverter *col, const char *s,
				unsigned long len, bool *isnull)
{
	bool		neg;
	uint64		mag;
	ParseResult r = parse_integer(s, len, &neg, &mag);

	if (unlikely(r != PARSE_OK))
		report_value_error(rc, col, s, len,
						   r == PARSE_OVERFLOW ? VP_OUT_OF_RANGE : VP_BAD_FORMAT);
	return Float8GetDatum(neg ? -(float8) mag : (float8) mag);
}

/* Integers into numeric without a constraining typmod */
static Datum
conv_int_numeric(RowConverter *rc, ColumnConverter *col, const char *s,
				 unsigned long len, bool *isnull)
{
	int64		v;
	ParseResult r = parse_int64(s, len, &v);

	if (likely(r == PARSE_OK))
		return NumericGetDatum(int64_to_numeric(v));
	if (r == PARSE_BAD_FORMAT)
		report_value_error(rc, col, s, len, VP_BAD_FORMAT);
	/* BIGINT UNSIGNED above 2^63 */
	return DirectFunctionCall3(numeric_in,
							   CStringGetDatum(scratch_copy(rc, s, len)),
							   ObjectIdGetDatum(InvalidOid),
							   Int32GetDatum(-1));
}

/* DECIMAL, FLOAT, DOUBLE and constrained numeric: the input function */
static Datum
conv_input_ascii(RowConverter *rc, ColumnConverter *col, const char *s,
				 unsigned long len, bool *isnull)
{
	if (unlikely(memchr(s, '\0', len) != NULL))
		report_value_error(rc, col, s, len, VP_BAD_FORMAT);
	return InputFunctionCall(&col->input_fn, scratch_copy(rc, s, len),
							 col->typioparam, col->input_typmod);
}

/*
 * DECIMAL into numeric without a typmod to apply: up to 18 digits are
 * built from an int64 directly, with the scale the text shows (what
 * numeric_in would give); longer values go through numeric_in.
 */
static Datum
conv_decimal_numeric(RowConverter *rc, ColumnConverter *col, const char *s,
					 unsigned long len, bool *isnull)
{
	const char *p = s;
	const char *end = s + len;
	bool		neg = false;
	int64		acc = 0;
	int			ndigits = 0;
	int			nfrac = -1;

	if (p < end && *p == '-')
	{
		neg = true;
		p++;
	}
	for (; p < end; p++)
	{
		unsigned int d = (unsigned char) *p - '0';

		if (d > 9)
		{
			if (*p == '.' && nfrac < 0)
			{
				nfrac = 0;
				continue;
			}
			return conv_input_ascii(rc, col, s, len, isnull);
		}
		if (++ndigits > 18)
			return conv_input_ascii(rc, col, s, len, isnull);
		acc = acc * 10 + d;
		if (nfrac >= 0)
			nfrac++;
	}
	if (ndigits == 0)
		return conv_input_ascii(rc, col, s, len, isnull);
	return NumericGetDatum(int64_div_fast_to_numeric(neg ? -acc : acc,
													 Max(nfrac, 0)));
}

/* JSON and enum targets from text: validate, re-encode, then parse */
static Datum
conv_input_text(RowConverter *rc, ColumnConverter *col, const char *s,
				unsigned long len, bool *isnull)
{
	int			plen;
	const char *p = server_text(rc, col, s, len, &plen);

	return InputFunctionCall(&col->input_fn, scratch_copy(rc, p, plen),
							 col->typioparam, col->input_typmod);
}

static Datum
conv_text(RowConverter *rc, ColumnConverter *col, const char *s,
		  unsigned long len, bool *isnull)
{
	int			plen;
	const char *p = server_text(rc, col, s, len, &plen);

	if (col->max_chars >= 0)
		plen = enforce_char_limit(rc, col, p, plen);
	return PointerGetDatum(cstring_to_text_with_len(p, plen));
}

/* char(n): like PostgreSQL, pad with spaces to n characters */
static Datum
conv_bpchar(RowConverter *rc, ColumnConverter *col, const char *s,
			unsigned long len, bool *isnull)
{
	int			plen;
	const char *p = server_text(rc, col, s, len, &plen);
	int			nchars;
	BpChar	   *result;

	plen = enforce_char_limit(rc, col, p, plen);
	nchars = pg_mbstrlen_with_len(p, plen);
	if (nchars >= col->max_chars)
		return PointerGetDatum(cstring_to_text_with_len(p, plen));

	result = (BpChar *) palloc(VARHDRSZ + plen + (col->max_chars - nchars));
	SET_VARSIZE(result, VARHDRSZ + plen + (col->max_chars - nchars));
	memcpy(VARDATA(result), p, plen);
	memset(VARDATA(result) + plen, ' ', col->max_chars - nchars);
	return PointerGetDatum(result);
}

static Datum
conv_bytea(RowConverter *rc, ColumnConverter *col, const char *s,
		   unsigned long len, bool *isnull)
{
	bytea	   *result;

	if (unlikely(len > MaxAllocSize - VARHDRSZ))
		report_value_error(rc, col, s, len, VP_TOO_LARGE);
	result = (bytea *) palloc(VARHDRSZ + len);
	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), s, len);
	return PointerGetDatum(result);
}

/* MySQL's internal geometry: a little-endian SRID, then standard WKB */
static Datum
conv_geometry_wkb(RowConverter *rc, ColumnConverter *col, const char *s,
				  unsigned long len, bool *isnull)
{
	if (unlikely(len < 4))
		report_value_error(rc, col, s, len, VP_BAD_FORMAT);
	return conv_bytea(rc, col, s + 4, len - 4, isnull);
}

/* SET 'a,c' into text[] {a,c}; '' is the empty set */
static Datum
conv_set_array(RowConverter *rc, ColumnConverter *col, const char *s,
			   unsigned long len, bool *isnull)
{
	int			plen;
	const char *p = server_text(rc, col, s, len, &plen);
	int			n = 1;
	Datum	   *elems;
	int			i = 0;
	const char *start = p;
	const char *end = p + plen;

	if (plen == 0)
		return PointerGetDatum(construct_empty_array(TEXTOID));

	for (const char *q = p; q < end; q++)
		if (*q == ',')
			n++;
	elems = palloc(n * sizeof(Datum));
	for (const char *q = p; q <= end; q++)
	{
		if (q == end || *q == ',')
		{
			elems[i++] = PointerGetDatum(cstring_to_text_with_len(start, q - start));
			start = q + 1;
		}
	}
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

/* BIT(n): up to 8 raw bytes, most significant first */
static inline uint64
bit_value(RowConverter *rc, ColumnConverter *col, const char *s,
		  unsigned long len)
{
	uint64		v = 0;

	if (unlikely(len > 8))
		report_value_error(rc, col, s, len, VP_BAD_FORMAT);
	for (unsigned long i = 0; i < len; i++)
		v = (v << 8) | (unsigned char) s[i];
	if (unlikely(col->src.nbits < 64 && (v >> col->src.nbits) != 0))
		report_value_error(rc, col, s, len, VP_BAD_FORMAT);
	return v;
}

static Datum
conv_bit_bool(RowConverter *rc, ColumnConverter *col, const char *s,
			  unsigned long len, bool *isnull)
{
	uint64		v = bit_value(rc, col, s, len);

	if (v > 1)
		report_value_error(rc, col, s, len, VP_NOT_BOOLEAN);
	return BoolGetDatum(v == 1);
}

static Datum
conv_bit_varbit(RowConverter *rc, ColumnConverter *col, const char *s,
				unsigned long len, bool *isnull)
{
	uint64		v = bit_value(rc, col, s, len);
	int			nbits = col->src.nbits;
	int			nbytes = (nbits + BITS_PER_BYTE - 1) / BITS_PER_BYTE;
	VarBit	   *result = (VarBit *) palloc0(VARBITTOTALLEN(nbits));
	bits8	   *dat = VARBITS(result);

	SET_VARSIZE(result, VARBITTOTALLEN(nbits));
	VARBITLEN(result) = nbits;
	/* PostgreSQL keeps the first bit in the high bit of the first byte */
	v <<= (64 - nbits);
	for (int i = 0; i < nbytes; i++)
		dat[i] = (bits8) (v >> (56 - 8 * i));
	return PointerGetDatum(result);
}

static Datum
conv_bit_int(RowConverter *rc, ColumnConverter *col, const char *s,
			 unsigned long len, bool *isnull)
{
	uint64		v = bit_value(rc, col, s, len);

	if (v > (uint64) col->max)
		report_value_error(rc, col, s, len, VP_OUT_OF_RANGE);
	switch (col->typid)
	{
		case INT2OID:
			return Int16GetDatum((int16) v);
		case INT4OID:
			return Int32GetDatum((int32) v);
		default:
			return Int64GetDatum((int64) v);
	}
}

static Datum
conv_bit_numeric(RowConverter *rc, ColumnConverter *col, const char *s,
				 unsigned long len, bool *isnull)
{
	uint64		v = bit_value(rc, col, s, len);
	char		buf[32];

	if (v <= (uint64) PG_INT64_MAX)
		return NumericGetDatum(int64_to_numeric((int64) v));
	snprintf(buf, sizeof(buf), UINT64_FORMAT, v);
	return DirectFunctionCall3(numeric_in, CStringGetDatum(buf),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/*
 * A value the policy changed: counted once the row has converted, the first
 * one's key and value kept (the row may still fail on another column).
 */
static void
note_changed(RowConverter *rc, ColumnConverter *col, const char *s,
			 unsigned long len)
{
	rc->pending[rc->npending++] = col - rc->cols;
	if (col->changed == 0)
	{
		ValueError	ve;
		MemoryContext oldcxt = MemoryContextSwitchTo(rc->cxt);

		describe_value(rc, col, s, len, column_shows_multibyte(rc, col), &ve);
		col->first_key = ve.key;
		col->first_row = ve.row;
		col->first_value = ve.value;
		MemoryContextSwitchTo(oldcxt);
	}
}

/*
 * An invalid date: NULL, '-infinity' (of the column's type: the callers
 * see rc->replaced and add nothing) or an error, as the user chose.
 */
static Datum
invalid_date(RowConverter *rc, ColumnConverter *col, const char *s,
			 unsigned long len, ParseResult r, bool *isnull)
{
	if (r == PARSE_INVALID && rc->invalid_dates != INVALID_DATES_ERROR)
	{
		/* never a NULL in a row the source could not hold */
		if (rc->invalid_dates == INVALID_DATES_NULL && col->not_null)
			report_value_error(rc, col, s, len, VP_NULL_BY_POLICY);
		note_changed(rc, col, s, len);
		rc->replaced = true;
		if (rc->invalid_dates == INVALID_DATES_NULL)
		{
			*isnull = true;
			return (Datum) 0;
		}
		if (col->typid == DATEOID)
			return DateADTGetDatum(DATEVAL_NOBEGIN);
		/* timestamp and timestamptz: choose_conversion allows no other */
		return TimestampGetDatum(DT_NOBEGIN);
	}
	report_value_error(rc, col, s, len,
					   r == PARSE_INVALID ? VP_INVALID_DATE : VP_BAD_FORMAT);
}

static Datum
conv_date_date(RowConverter *rc, ColumnConverter *col, const char *s,
			   unsigned long len, bool *isnull)
{
	int			days;
	ParseResult r;

	if (unlikely(len != 10))
		return invalid_date(rc, col, s, len, PARSE_BAD_FORMAT, isnull);
	r = parse_date(s, len, &days);
	if (unlikely(r != PARSE_OK))
		return invalid_date(rc, col, s, len, r, isnull);
	return DateADTGetDatum((DateADT) days);
}

static Datum
conv_date_timestamp(RowConverter *rc, ColumnConverter *col, const char *s,
					unsigned long len, bool *isnull)
{
	Datum		d;

	rc->replaced = false;
	d = conv_date_date(rc, col, s, len, isnull);
	if (rc->replaced)
		return d;
	return TimestampGetDatum((Timestamp) DatumGetDateADT(d) * USECS_PER_DAY);
}

/* Like PostgreSQL's date::timestamptz: midnight in the session time zone */
static Datum
conv_date_timestamptz(RowConverter *rc, ColumnConverter *col, const char *s,
					  unsigned long len, bool *isnull)
{
	Datum		d;

	rc->replaced = false;
	d = conv_date_date(rc, col, s, len, isnull);
	if (rc->replaced)
		return d;
	return TimestampTzGetDatum(date2timestamptz_opt_overflow(DatumGetDateADT(d),
															 NULL));
}

/* DATETIME into timestamp and TIMESTAMP (UTC) into timestamptz */
static Datum
conv_datetime_same(RowConverter *rc, ColumnConverter *col, const char *s,
				   unsigned long len, bool *isnull)
{
	int64		ts;
	ParseResult r = parse_datetime(s, len, &ts);

	if (unlikely(r != PARSE_OK))
		return invalid_date(rc, col, s, len, r, isnull);
	if (col->round_typmod >= 0)
		AdjustTimestampForTypmod(&ts, col->round_typmod);
	return Int64GetDatum(ts);
}

/* Like PostgreSQL's timestamp::timestamptz: local time of the session */
static Datum
conv_datetime_timestamptz(RowConverter *rc, ColumnConverter *col,
						  const char *s, unsigned long len, bool *isnull)
{
	Datum		d;

	rc->replaced = false;
	d = conv_datetime_same(rc, col, s, len, isnull);
	if (rc->replaced)
		return d;
	return TimestampTzGetDatum(timestamp2timestamptz_opt_overflow(DatumGetTimestamp(d),
																  NULL));
}

/* Like PostgreSQL's timestamptz::timestamp: the session's local time */
static Datum
conv_timestamp_timestamp(RowConverter *rc, ColumnConverter *col,
						 const char *s, unsigned long len, bool *isnull)
{
	Datum		d;
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	Timestamp	result;

	rc->replaced = false;
	d = conv_datetime_same(rc, col, s, len, isnull);
	if (rc->replaced)
		return d;
	if (timestamp2tm(DatumGetTimestampTz(d), &tz, &tm, &fsec, NULL, NULL) != 0 ||
		tm2timestamp(&tm, fsec, NULL, &result) != 0)
		report_value_error(rc, col, s, len, VP_OUT_OF_RANGE);
	return TimestampGetDatum(result);
}

static Datum
conv_time_interval(RowConverter *rc, ColumnConverter *col, const char *s,
				   unsigned long len, bool *isnull)
{
	int64		usec;
	Interval   *result;

	if (unlikely(parse_time(s, len, &usec) != PARSE_OK))
		report_value_error(rc, col, s, len, VP_BAD_FORMAT);
	/* all in the time field, as interval '838:59:59' would be */
	result = (Interval *) palloc(sizeof(Interval));
	result->time = usec;
	result->day = 0;
	result->month = 0;
	if (col->round_typmod >= 0)
		return DirectFunctionCall2(interval_scale, IntervalPGetDatum(result),
								   Int32GetDatum(col->round_typmod));
	return IntervalPGetDatum(result);
}

static Datum
conv_time_time(RowConverter *rc, ColumnConverter *col, const char *s,
			   unsigned long len, bool *isnull)
{
	int64		usec;

	if (unlikely(parse_time(s, len, &usec) != PARSE_OK))
		report_value_error(rc, col, s, len, VP_BAD_FORMAT);
	if (usec < 0 || usec >= USECS_PER_DAY)
		report_value_error(rc, col, s, len, VP_TIME_OUT_OF_RANGE);
	if (col->round_typmod >= 0)
		AdjustTimeForTypmod(&usec, col->round_typmod);
	return TimeADTGetDatum(usec);
}

/* ----------------------------------------------------------------
 *		Choosing the conversion for a column
 * ----------------------------------------------------------------
 */

static void
set_input_function(ColumnConverter *col, Oid typid, int32 typmod)
{
	Oid			infunc;

	getTypeInputInfo(typid, &infunc, &col->typioparam);
	fmgr_info(infunc, &col->input_fn);
	col->input_typmod = typmod;
}

/* Set the wire encoding of a text column and the conversion it needs */
static void
set_text_encoding(RowConverter *rc, ColumnConverter *col, int source_encoding)
{
	Oid			proc;

	col->encoding = source_encoding;
	col->encoding_proc = NULL;
	if (source_encoding == rc->db_encoding || rc->db_encoding == PG_SQL_ASCII)
		return;

	proc = FindDefaultConversionProc(source_encoding, rc->db_encoding);
	if (!OidIsValid(proc))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("default conversion function for encoding \"%s\" to \"%s\" does not exist",
						pg_encoding_to_char(source_encoding),
						pg_encoding_to_char(rc->db_encoding))));
	col->encoding_proc = palloc0(sizeof(FmgrInfo));
	fmgr_info(proc, col->encoding_proc);
}

/* Range of a PostgreSQL integer type */
static void
set_integer_range(ColumnConverter *col)
{
	switch (col->typid)
	{
		case INT2OID:
			col->min = PG_INT16_MIN;
			col->max = PG_INT16_MAX;
			break;
		case INT4OID:
			col->min = PG_INT32_MIN;
			col->max = PG_INT32_MAX;
			break;
		default:
			col->min = PG_INT64_MIN;
			col->max = PG_INT64_MAX;
			break;
	}
}

/*
 * Does numeric(p,0) hold every value of an integer source, so that no
 * typmod check is needed?  (With a scale, numeric_in applies it: 5.00.)
 */
static bool
numeric_typmod_holds_integers(int32 typmod, const SourceInfo *si)
{
	int			precision = ((typmod - VARHDRSZ) >> 16) & 0xffff;
	int			scale = (typmod - VARHDRSZ) & 0xffff;
	uint64		largest = Max(si->max, (uint64) (-(si->min + 1)) + 1);
	int			digits = 1;

	for (; largest >= 10; largest /= 10)
		digits++;
	return scale == 0 && precision >= digits;
}

/* varchar(n), char(n): the limit in characters, -1 for none */
static int
char_limit(Oid typid, int32 typmod)
{
	if ((typid == VARCHAROID || typid == BPCHAROID) && typmod >= VARHDRSZ)
		return typmod - VARHDRSZ;
	return -1;
}

static bool
is_text_type(Oid typid)
{
	return typid == TEXTOID || typid == VARCHAROID || typid == BPCHAROID;
}

/* Fractional digits of a timestamp/time typmod, 6 if unconstrained */
static int
typmod_digits(int32 typmod)
{
	return (typmod >= 0 && typmod < 6) ? typmod : 6;
}

/*
 * Pick the conversion of one column.  Returns false if the target type
 * cannot hold the MySQL type.
 */
static bool
choose_conversion(RowConverter *rc, ColumnConverter *col,
				  int source_encoding)
{
	SourceInfo *si = &col->src;
	Oid			typid = col->typid;
	int32		typmod = col->typmod;

	col->round_typmod = -1;
	col->max_chars = -1;

	if (si->kind == SK_NULL)
	{
		/* all values are NULL; any type can take them */
		col->convert = conv_unexpected;
		return true;
	}

	/* text targets take anything that has a text form on the wire */
	if (is_text_type(typid) && si->kind != SK_BIT && si->kind != SK_GEOMETRY)
	{
		/* binary bytes are not converted: they must be valid as they are */
		set_text_encoding(rc, col, si->kind == SK_BINARY ? rc->db_encoding :
						  source_encoding);
		col->max_chars = char_limit(typid, typmod);
		col->convert = (typid == BPCHAROID && col->max_chars >= 0) ?
			conv_bpchar : conv_text;
		return true;
	}

	switch (si->kind)
	{
		case SK_NULL:
			break;

		case SK_INTEGER:
			switch (typid)
			{
				case INT2OID:
				case INT4OID:
				case INT8OID:
					set_integer_range(col);
					col->convert = typid == INT2OID ? conv_int_int2 :
						typid == INT4OID ? conv_int_int4 : conv_int_int8;
					return true;
				case BOOLOID:
					/* MySQL's BOOL is TINYINT; other widths are not flags */
					if (si->min < PG_INT16_MIN || si->max > PG_UINT8_MAX)
						return false;
					col->convert = conv_int_bool;
					return true;
				case NUMERICOID:
					if (typmod < 0 || numeric_typmod_holds_integers(typmod, si))
						col->convert = conv_int_numeric;
					else
					{
						set_input_function(col, typid, typmod);
						col->convert = conv_input_ascii;
					}
					return true;
				case FLOAT4OID:
					/* exact only up to 2^24 */
					if (si->min < -16777216 || si->max > 16777216)
						return false;
					set_integer_range(col);
					col->convert = conv_int_float4;
					return true;
				case FLOAT8OID:
					col->convert = conv_int_float8;
					return true;
			}
			break;

		case SK_DECIMAL:
			if (typid == NUMERICOID)
			{
				int32		natural = -1;

				/* a value of the natural type fits: skip the typmod check */
				if (si->precision > 0)
					natural = ((si->precision << 16) | si->scale) + VARHDRSZ;
				if (typmod == natural || typmod < 0)
				{
					set_input_function(col, typid, -1);
					col->convert = conv_decimal_numeric;
				}
				else
				{
					set_input_function(col, typid, typmod);
					col->convert = conv_input_ascii;
				}
				return true;
			}
			if ((typid == INT2OID || typid == INT4OID || typid == INT8OID) &&
				si->scale == 0)
			{
				set_integer_range(col);
				col->convert = typid == INT2OID ? conv_int_int2 :
					typid == INT4OID ? conv_int_int4 : conv_int_int8;
				return true;
			}
			break;

		case SK_FLOAT:
		case SK_DOUBLE:
			if (typid == FLOAT4OID || typid == FLOAT8OID || typid == NUMERICOID)
			{
				set_input_function(col, typid, typmod);
				col->convert = conv_input_ascii;
				return true;
			}
			break;

		case SK_BIT:
			if (typid == BOOLOID && si->nbits == 1)
			{
				col->convert = conv_bit_bool;
				return true;
			}
			if ((typid == BITOID && (typmod < 0 || typmod == si->nbits)) ||
				(typid == VARBITOID && (typmod < 0 || typmod >= si->nbits)))
			{
				col->convert = conv_bit_varbit;
				return true;
			}
			if (typid == INT2OID || typid == INT4OID || typid == INT8OID)
			{
				set_integer_range(col);
				col->convert = conv_bit_int;
				return true;
			}
			if (typid == NUMERICOID && typmod < 0)
			{
				col->convert = conv_bit_numeric;
				return true;
			}
			break;

		case SK_TEXT:
		case SK_ENUM:
		case SK_JSON:
			if (typid == JSONBOID || typid == JSONOID)
			{
				if (si->kind == SK_ENUM)
					break;
				set_text_encoding(rc, col, source_encoding);
				set_input_function(col, typid, typmod);
				col->convert = conv_input_text;
				return true;
			}
			if (type_is_enum(typid) && si->kind != SK_JSON)
			{
				set_text_encoding(rc, col, source_encoding);
				set_input_function(col, typid, typmod);
				col->convert = conv_input_text;
				return true;
			}
			if (typid == BYTEAOID && si->kind == SK_TEXT)
			{
				col->convert = conv_bytea;
				return true;
			}
			break;

		case SK_SET:
			if (typid == TEXTARRAYOID)
			{
				set_text_encoding(rc, col, source_encoding);
				col->convert = conv_set_array;
				return true;
			}
			break;

		case SK_BINARY:
			if (typid == BYTEAOID)
			{
				col->convert = conv_bytea;
				return true;
			}
			break;

		case SK_GEOMETRY:
			if (typid == BYTEAOID)
			{
				col->convert = conv_geometry_wkb;
				return true;
			}
			break;

		case SK_DATE:
			if (typid == DATEOID)
				col->convert = conv_date_date;
			else if (typid == TIMESTAMPOID)
				col->convert = conv_date_timestamp;
			else if (typid == TIMESTAMPTZOID)
				col->convert = conv_date_timestamptz;
			else
				break;
			return true;

		case SK_DATETIME:
		case SK_TIMESTAMP:
			if (typid != TIMESTAMPOID && typid != TIMESTAMPTZOID)
				break;
			if (typmod_digits(typmod) < si->digits)
				col->round_typmod = typmod;
			if ((typid == TIMESTAMPOID) == (si->kind == SK_DATETIME))
				col->convert = conv_datetime_same;
			else if (typid == TIMESTAMPTZOID)
				col->convert = conv_datetime_timestamptz;
			else
				col->convert = conv_timestamp_timestamp;
			return true;

		case SK_TIME:
			if (typid == INTERVALOID)
			{
				/* fields down to seconds only: interval day would drop hours */
				if (typmod >= 0 && INTERVAL_RANGE(typmod) != INTERVAL_FULL_RANGE &&
					!(INTERVAL_RANGE(typmod) & INTERVAL_MASK(SECOND)))
					return false;
				if (typmod >= 0 && INTERVAL_PRECISION(typmod) < si->digits)
					col->round_typmod = typmod;
				col->convert = conv_time_interval;
				return true;
			}
			if (typid == TIMEOID)
			{
				if (typmod_digits(typmod) < si->digits)
					col->round_typmod = typmod;
				col->convert = conv_time_time;
				return true;
			}
			break;
	}
	return false;
}

static void
report_type_mismatch(RowConverter *rc, ColumnConverter *col, MYSQL_FIELD *field)
{
	int32		natural_typmod;
	Oid			natural = mysql_natural_type(field, &natural_typmod);

	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("column \"%s\" of %s is of type %s but MySQL column \"%s\" is of type %s",
					col->attname, rc->relname, col->type_name,
					col->mysql_name, col->mysql_type),
			 errhint("Declare the column as %s, the natural type for MySQL %s.",
					 format_type_with_typemod(natural, natural_typmod),
					 col->mysql_type)));
}

/*
 * A binary field the query selected as bytes (CAST(c AS BINARY)) because
 * its text is in a charset MySQL may not convert faithfully: it is text in
 * that charset, converted here with PostgreSQL's conversion, where a
 * character without an equivalent is an error, never a '?'.  True if the
 * field is one.
 */
static bool
receive_raw_text(ColumnConverter *col, MYSQL_FIELD *field,
				 const ConvertOptions *opts)
{
	ListCell   *lc1,
			   *lc2;

	forboth(lc1, opts->raw_columns, lc2, opts->raw_charsets)
	{
		const char *charset = lfirst(lc2);
		int			encoding;

		if (pg_strcasecmp(lfirst(lc1), col->mysql_name) != 0)
			continue;
		encoding = mysql_charset_encoding(charset);
		if (encoding < 0)
			return false;
		col->src.kind = SK_TEXT;
		col->encoding = encoding;
		col->mysql_type = psprintf("%s CHARACTER SET %s",
								   field->type == MYSQL_TYPE_STRING ? "CHAR" :
								   field->type == MYSQL_TYPE_VAR_STRING ||
								   field->type == MYSQL_TYPE_VARCHAR ? "VARCHAR" : "TEXT",
								   charset);
		return true;
	}
	return false;
}

/*
 * build_row_converter
 *		Prepare the conversion of a MySQL result into rows of tupdesc.
 *
 * MySQL columns match the non-dropped attributes of tupdesc by position.
 * Every per-column decision is made here, and everything is allocated in
 * CurrentMemoryContext, which must outlive the rows converted.
 */
RowConverter *
build_row_converter(MYSQL_FIELD *fields, unsigned int nfields,
					TupleDesc tupdesc, const ConvertOptions *opts)
{
	RowConverter *rc;
	int			nlive = 0;
	int			c = 0;
	int			source_encoding = opts->source_encoding;

	for (int i = 0; i < tupdesc->natts; i++)
		if (!TupleDescAttr(tupdesc, i)->attisdropped)
			nlive++;

	rc = palloc0(sizeof(RowConverter));
	rc->relname = pstrdup(opts->relname ? opts->relname : "remote query");

	if (nlive != (int) nfields)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("number of columns returned by MySQL (%u) does not match the number defined (%d)",
						nfields, nlive),
				 errdetail("The columns of %s are matched to the MySQL result by position.",
						   rc->relname)));

	rc->ncols = nfields;
	rc->cols = palloc0(Max(nfields, 1) * sizeof(ColumnConverter));
	rc->pending = palloc(Max(nfields, 1) * sizeof(int));
	rc->dropped = palloc(Max(tupdesc->natts - nlive, 1) * sizeof(int));
	rc->invalid_dates = opts->invalid_dates;
	rc->rownum = opts->rownum;
	rc->row_key = opts->row_key;
	rc->row_key_arg = opts->row_key_arg;
	rc->value_error = opts->value_error;
	rc->db_encoding = GetDatabaseEncoding();
	rc->cxt = CurrentMemoryContext;
	rc->cur = -1;

	/* text with no usable encoding is taken as the database's */
	if (!PG_VALID_ENCODING(source_encoding) || source_encoding == PG_SQL_ASCII)
		source_encoding = rc->db_encoding;

	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(tupdesc, i);
		MYSQL_FIELD *field;
		ColumnConverter *col;
		StringInfoData buf;
		int32		basetypmod = attr->atttypmod;
		ListCell   *lc;

		if (attr->attisdropped)
		{
			rc->dropped[rc->ndropped++] = i;
			continue;
		}
		field = &fields[c];
		col = &rc->cols[c++];

		col->attidx = i;
		col->attname = pstrdup(NameStr(attr->attname));
		col->mysql_name = pstrdup(field->name ? field->name : "?");
		initStringInfo(&buf);
		append_mysql_type_name(&buf, field);
		col->mysql_type = buf.data;
		classify_field(field, &col->src);

		col->typid = getBaseTypeAndTypmod(attr->atttypid, &basetypmod);
		col->typmod = basetypmod;
		if (col->typid != attr->atttypid)
			col->domain_type = attr->atttypid;
		col->type_name = format_type_with_typemod(attr->atttypid, attr->atttypmod);
		col->base_type_name = format_type_with_typemod(col->typid, col->typmod);
		col->encoding = source_encoding;
		col->not_null = attr->attnotnull;
		foreach(lc, opts->not_null_columns)
		{
			if (strcmp((char *) lfirst(lc), col->attname) == 0)
				col->not_null = true;
		}
		if (col->src.kind == SK_BINARY && opts->raw_columns != NIL &&
			receive_raw_text(col, field, opts))
		{
			/* text selected as bytes: converted from its own charset */
			if (!choose_conversion(rc, col, col->encoding))
				report_type_mismatch(rc, col, field);
			continue;
		}

		if (!choose_conversion(rc, col, source_encoding))
			report_type_mismatch(rc, col, field);
	}

	return rc;
}

/*
 * convert_row
 *		Convert one MySQL row into values[] and nulls[], which have one entry
 *		per attribute of the row converter's tupdesc (dropped ones included).
 *
 * Results are palloc'd in CurrentMemoryContext.
 */
void
convert_row(RowConverter *rc, MYSQL_ROW row, unsigned long *lengths,
			Datum *values, bool *nulls)
{
	ErrorContextCallback errcallback;

	rc->cur_row = row;
	rc->cur_lengths = lengths;
	rc->reporting = false;
	rc->npending = 0;
	errcallback.callback = convert_error_callback;
	errcallback.arg = rc;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	for (int i = 0; i < rc->ncols; i++)
	{
		ColumnConverter *col = &rc->cols[i];
		const char *s = row[i];
		bool		isnull = false;
		Datum		value = (Datum) 0;

		rc->cur = i;
		if (s == NULL)
			isnull = true;
		else
			value = col->convert(rc, col, s, lengths[i], &isnull);

		if (unlikely(OidIsValid(col->domain_type)))
			domain_check(value, isnull, col->domain_type, &col->domain_extra,
						 rc->cxt);

		values[col->attidx] = value;
		nulls[col->attidx] = isnull;
	}
	for (int i = 0; i < rc->ndropped; i++)
	{
		values[rc->dropped[i]] = (Datum) 0;
		nulls[rc->dropped[i]] = true;
	}

	rc->cur = -1;
	error_context_stack = errcallback.previous;

	/* the whole row converted: what the policy changed in it counts */
	for (int i = 0; i < rc->npending; i++)
		rc->cols[rc->pending[i]].changed++;
}

/*
 * converter_value_notes
 *		The values the invalid_dates policy changed in the rows converted so
 *		far, per column (a List of ValueNote in CurrentMemoryContext; NIL
 *		when none).
 */
List *
converter_value_notes(RowConverter *rc)
{
	List	   *notes = NIL;

	for (int i = 0; i < rc->ncols; i++)
	{
		ColumnConverter *col = &rc->cols[i];
		ValueNote  *note;

		if (col->changed == 0)
			continue;
		note = palloc0(sizeof(ValueNote));
		note->column = pstrdup(col->attname);
		note->policy = rc->invalid_dates == INVALID_DATES_NULL ?
			"invalid_dates 'null'" : "invalid_dates '-infinity'";
		note->changed_to = rc->invalid_dates == INVALID_DATES_NULL ?
			"NULL" : "-infinity";
		note->count = col->changed;
		note->first_key = col->first_key ? pstrdup(col->first_key) : NULL;
		note->first_row = col->first_row;
		note->first_value = col->first_value ? pstrdup(col->first_value) : NULL;
		notes = lappend(notes, note);
	}
	return notes;
}

/*
 * warn_value_changed
 *		The WARNING of one column's values the invalid_dates policy changed;
 *		what: "table \"t\"" or "remote query on server \"s\"".
 */
void
warn_value_changed(const ValueNote *n, const char *what)
{
	char	   *where = n->first_key ? psprintf("key %s", n->first_key)
		: psprintf("row %lld", (long long) n->first_row);

	ereport(WARNING,
			(errcode(ERRCODE_WARNING),
			 errmsg_plural("%lld value of column \"%s\" of %s was changed to %s by %s",
						   "%lld values of column \"%s\" of %s were changed to %s by %s",
						   n->count, (long long) n->count, n->column, what,
						   n->changed_to, n->policy),
			 errdetail("The first was at %s: '%s'.", where,
					   n->first_value ? n->first_value : "")));
}

/*
 * warn_changed_values
 *		One WARNING per column whose values the invalid_dates policy changed
 *		(etl_stream.query(): a run reports them with its record instead).
 */
void
warn_changed_values(RowConverter *rc)
{
	ListCell   *lc;

	foreach(lc, converter_value_notes(rc))
		warn_value_changed(lfirst(lc), rc->relname);
}
