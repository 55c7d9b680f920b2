/*-------------------------------------------------------------------------
 *
 * mysql_types.c
 *		  What the columns of a MySQL result are: their kind as conversion
 *		  sees it, their type as a user would write it, and the PostgreSQL
 *		  type that holds every value of them exactly (the natural type).
 *
 * Everything here reads only a result's column metadata (MYSQL_FIELD:
 * type, flags, character set, length, decimals, and MariaDB's extended
 * metadata), never a value.  add_table, create_target and describe() use
 * the natural types; convert.c decides each column's conversion from the
 * kind.  The mapping is documented in docs/type-mapping.md.
 *
 * IDENTIFICATION
 *		  src/mysql_types.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/numeric.h"

#include "source.h"

/* MySQL's binary pseudo character set: raw bytes, never converted */
#define MYSQL_BINARY_CHARSET	63

/* Longest varchar(n) PostgreSQL accepts; longer MySQL strings map to text */
#define MAX_VARCHAR_LENGTH		(10 * 1024 * 1024)

static bool
field_is_binary(const MYSQL_FIELD *field)
{
	return field->charsetnr == MYSQL_BINARY_CHARSET;
}

/* MariaDB 10.5+ sends a format name ("json") and a data type name ("point") */
static bool
field_attr_is(const MYSQL_FIELD *field, enum mariadb_field_attr_t which,
			  const char *value)
{
	MARIADB_CONST_STRING attr = {NULL, 0};

	if (mariadb_field_attr(&attr, field, which) != 0 || attr.str == NULL)
		return false;
	return attr.length == strlen(value) &&
		pg_strncasecmp(attr.str, value, attr.length) == 0;
}

/* Bytes per character of the field's character set (1 if unknown) */
static int
field_mbmaxlen(const MYSQL_FIELD *field)
{
	MARIADB_CHARSET_INFO *cs = mariadb_get_charset_by_nr(field->charsetnr);

	if (cs == NULL || cs->char_maxlen < 1)
		return 1;
	return cs->char_maxlen;
}

/* Length of a CHAR/VARCHAR/TEXT column in characters */
static unsigned long
field_char_length(const MYSQL_FIELD *field)
{
	return field->length / field_mbmaxlen(field);
}

/*
 * classify_field
 *		What kind of values a column holds, with the facts conversion needs:
 *		an integer type's range, a DECIMAL's precision and scale, fractional
 *		second digits, the width of a BIT.
 */
void
classify_field(const MYSQL_FIELD *field, SourceInfo *si)
{
	bool		is_unsigned = (field->flags & UNSIGNED_FLAG) != 0;

	memset(si, 0, sizeof(SourceInfo));
	si->is_unsigned = is_unsigned;

	switch (field->type)
	{
		case MYSQL_TYPE_NULL:
			si->kind = SK_NULL;
			return;
		case MYSQL_TYPE_TINY:
			si->kind = SK_INTEGER;
			si->is_bool = (field->length == 1);
			si->min = is_unsigned ? 0 : PG_INT8_MIN;
			si->max = is_unsigned ? PG_UINT8_MAX : PG_INT8_MAX;
			return;
		case MYSQL_TYPE_SHORT:
			si->kind = SK_INTEGER;
			si->min = is_unsigned ? 0 : PG_INT16_MIN;
			si->max = is_unsigned ? PG_UINT16_MAX : PG_INT16_MAX;
			return;
		case MYSQL_TYPE_INT24:
			si->kind = SK_INTEGER;
			si->min = is_unsigned ? 0 : -8388608;
			si->max = is_unsigned ? 16777215 : 8388607;
			return;
		case MYSQL_TYPE_LONG:
			si->kind = SK_INTEGER;
			si->min = is_unsigned ? 0 : PG_INT32_MIN;
			si->max = is_unsigned ? PG_UINT32_MAX : PG_INT32_MAX;
			return;
		case MYSQL_TYPE_LONGLONG:
			si->kind = SK_INTEGER;
			si->min = is_unsigned ? 0 : PG_INT64_MIN;
			si->max = is_unsigned ? PG_UINT64_MAX : PG_INT64_MAX;
			return;
		case MYSQL_TYPE_YEAR:
			si->kind = SK_INTEGER;
			si->min = 0;
			si->max = 2155;
			return;
		case MYSQL_TYPE_DECIMAL:
		case MYSQL_TYPE_NEWDECIMAL:
			{
				long		p;

				si->kind = SK_DECIMAL;
				si->scale = field->decimals;
				/* length counts the digits, the point and the sign */
				p = (long) field->length - (field->decimals > 0 ? 1 : 0) -
					(is_unsigned ? 0 : 1);
				if (p >= 1 && p <= NUMERIC_MAX_PRECISION && si->scale <= p)
					si->precision = p;
				else
					si->precision = 0;	/* unknown: unconstrained numeric */
				return;
			}
		case MYSQL_TYPE_FLOAT:
			si->kind = SK_FLOAT;
			return;
		case MYSQL_TYPE_DOUBLE:
			si->kind = SK_DOUBLE;
			return;
		case MYSQL_TYPE_BIT:
			si->kind = SK_BIT;
			si->nbits = Max(1, Min(field->length, 64));
			return;
		case MYSQL_TYPE_DATE:
		case MYSQL_TYPE_NEWDATE:
			si->kind = SK_DATE;
			return;
		case MYSQL_TYPE_DATETIME:
		case MYSQL_TYPE_DATETIME2:
			si->kind = SK_DATETIME;
			si->digits = Min(field->decimals, 6);
			return;
		case MYSQL_TYPE_TIMESTAMP:
		case MYSQL_TYPE_TIMESTAMP2:
			si->kind = SK_TIMESTAMP;
			si->digits = Min(field->decimals, 6);
			return;
		case MYSQL_TYPE_TIME:
		case MYSQL_TYPE_TIME2:
			si->kind = SK_TIME;
			si->digits = Min(field->decimals, 6);
			return;
		case MYSQL_TYPE_JSON:
			si->kind = SK_JSON;
			return;
		case MYSQL_TYPE_ENUM:
			si->kind = SK_ENUM;
			return;
		case MYSQL_TYPE_SET:
			si->kind = SK_SET;
			return;
		case MYSQL_TYPE_GEOMETRY:
			si->kind = SK_GEOMETRY;
			return;
		default:
			break;
	}

	/* CHAR, VARCHAR, TEXT, BLOB and anything unknown: strings */
	if (field->flags & ENUM_FLAG)
		si->kind = SK_ENUM;
	else if (field->flags & SET_FLAG)
		si->kind = SK_SET;
	else if (field_is_binary(field))
		si->kind = SK_BINARY;
	else if (field_attr_is(field, MARIADB_FIELD_ATTR_FORMAT_NAME, "json"))
		si->kind = SK_JSON;
	else
		si->kind = SK_TEXT;
}

/*
 * append_mysql_type_name
 *		Append the MySQL type of a result column as a user would write it,
 *		e.g. "INT UNSIGNED", "DECIMAL(65,30)", "DATETIME(6)", "VARBINARY(16)".
 */
void
append_mysql_type_name(StringInfo buf, const MYSQL_FIELD *field)
{
	SourceInfo	si;
	bool		binary = field_is_binary(field);
	const char *name = NULL;

	classify_field(field, &si);

	switch (field->type)
	{
		case MYSQL_TYPE_NULL:
			appendStringInfoString(buf, "NULL");
			return;
		case MYSQL_TYPE_TINY:
			name = si.is_bool ? "TINYINT(1)" : "TINYINT";
			break;
		case MYSQL_TYPE_SHORT:
			name = "SMALLINT";
			break;
		case MYSQL_TYPE_INT24:
			name = "MEDIUMINT";
			break;
		case MYSQL_TYPE_LONG:
			name = "INT";
			break;
		case MYSQL_TYPE_LONGLONG:
			name = "BIGINT";
			break;
		case MYSQL_TYPE_FLOAT:
			name = "FLOAT";
			break;
		case MYSQL_TYPE_DOUBLE:
			name = "DOUBLE";
			break;
		case MYSQL_TYPE_YEAR:
			appendStringInfoString(buf, "YEAR");
			return;
		case MYSQL_TYPE_DECIMAL:
		case MYSQL_TYPE_NEWDECIMAL:
			if (si.precision > 0)
				appendStringInfo(buf, "DECIMAL(%d,%d)", si.precision, si.scale);
			else
				appendStringInfoString(buf, "DECIMAL");
			if (si.is_unsigned)
				appendStringInfoString(buf, " UNSIGNED");
			return;
		case MYSQL_TYPE_BIT:
			appendStringInfo(buf, "BIT(%d)", si.nbits);
			return;
		case MYSQL_TYPE_DATE:
		case MYSQL_TYPE_NEWDATE:
			appendStringInfoString(buf, "DATE");
			return;
		case MYSQL_TYPE_DATETIME:
		case MYSQL_TYPE_DATETIME2:
			name = "DATETIME";
			break;
		case MYSQL_TYPE_TIMESTAMP:
		case MYSQL_TYPE_TIMESTAMP2:
			name = "TIMESTAMP";
			break;
		case MYSQL_TYPE_TIME:
		case MYSQL_TYPE_TIME2:
			name = "TIME";
			break;
		case MYSQL_TYPE_GEOMETRY:
			{
				MARIADB_CONST_STRING attr = {NULL, 0};

				if (mariadb_field_attr(&attr, field,
									   MARIADB_FIELD_ATTR_DATA_TYPE_NAME) == 0 &&
					attr.str != NULL && attr.length > 0)
				{
					for (size_t i = 0; i < attr.length; i++)
						appendStringInfoChar(buf, pg_ascii_toupper((unsigned char) attr.str[i]));
				}
				else
					appendStringInfoString(buf, "GEOMETRY");
				return;
			}
		default:
			break;
	}

	if (name != NULL)
	{
		appendStringInfoString(buf, name);
		if (si.kind == SK_INTEGER || si.kind == SK_FLOAT || si.kind == SK_DOUBLE)
		{
			if (si.is_unsigned)
				appendStringInfoString(buf, " UNSIGNED");
		}
		else if (si.digits > 0)
			appendStringInfo(buf, "(%d)", si.digits);
		return;
	}

	/* the string types */
	switch (si.kind)
	{
		case SK_ENUM:
			appendStringInfoString(buf, "ENUM");
			return;
		case SK_SET:
			appendStringInfoString(buf, "SET");
			return;
		case SK_JSON:
			appendStringInfoString(buf, "JSON");
			return;
		default:
			break;
	}

	switch (field->type)
	{
		case MYSQL_TYPE_STRING:
			if (binary)
				appendStringInfo(buf, "BINARY(%lu)", field->length);
			else
				appendStringInfo(buf, "CHAR(%lu)", field_char_length(field));
			return;
		case MYSQL_TYPE_VAR_STRING:
		case MYSQL_TYPE_VARCHAR:
			if (binary)
				appendStringInfo(buf, "VARBINARY(%lu)", field->length);
			else
				appendStringInfo(buf, "VARCHAR(%lu)", field_char_length(field));
			return;
		case MYSQL_TYPE_TINY_BLOB:
		case MYSQL_TYPE_BLOB:
		case MYSQL_TYPE_MEDIUM_BLOB:
		case MYSQL_TYPE_LONG_BLOB:
			{
				/* the protocol gives the maximum length, not the keyword */
				unsigned long n = binary ? field->length : field_char_length(field);
				const char *size;

				if (n <= 255)
					size = "TINY";
				else if (n <= 65535)
					size = "";
				else if (n <= 16777215)
					size = "MEDIUM";
				else
					size = "LONG";
				appendStringInfo(buf, "%s%s", size, binary ? "BLOB" : "TEXT");
				return;
			}
		default:
			appendStringInfo(buf, "type %d", (int) field->type);
			return;
	}
}

/*
 * mysql_natural_type
 *		The PostgreSQL type (and typmod) that holds every value of a MySQL
 *		column exactly: what create_target uses, and what the hint of a type
 *		mismatch error suggests.
 */
Oid
mysql_natural_type(const MYSQL_FIELD *field, int32 *typmod)
{
	SourceInfo	si;

	classify_field(field, &si);
	*typmod = -1;

	switch (si.kind)
	{
		case SK_NULL:
			return TEXTOID;
		case SK_INTEGER:
			if (si.is_bool)
				return BOOLOID;
			if (si.min >= PG_INT16_MIN && si.max <= PG_INT16_MAX)
				return INT2OID;
			if (si.min >= PG_INT32_MIN && si.max <= PG_INT32_MAX)
				return INT4OID;
			if (si.max <= PG_INT64_MAX)
				return INT8OID;
			*typmod = ((20 << 16) | 0) + VARHDRSZ;
			return NUMERICOID;
		case SK_DECIMAL:
			if (si.precision > 0)
				*typmod = ((si.precision << 16) | si.scale) + VARHDRSZ;
			return NUMERICOID;
		case SK_FLOAT:
			return FLOAT4OID;
		case SK_DOUBLE:
			return FLOAT8OID;
		case SK_BIT:
			if (si.nbits == 1)
				return BOOLOID;
			*typmod = si.nbits;
			return BITOID;
		case SK_TEXT:
			if (field->type == MYSQL_TYPE_STRING ||
				field->type == MYSQL_TYPE_VAR_STRING ||
				field->type == MYSQL_TYPE_VARCHAR)
			{
				unsigned long n = field_char_length(field);

				if (n >= 1 && n <= MAX_VARCHAR_LENGTH)
				{
					*typmod = (int32) n + VARHDRSZ;
					return VARCHAROID;
				}
			}
			return TEXTOID;
		case SK_BINARY:
			return BYTEAOID;
		case SK_ENUM:
			return TEXTOID;
		case SK_SET:
			return TEXTARRAYOID;
		case SK_JSON:
			return JSONBOID;
		case SK_DATE:
			return DATEOID;
		case SK_DATETIME:
			*typmod = si.digits;
			return TIMESTAMPOID;
		case SK_TIMESTAMP:
			*typmod = si.digits;
			return TIMESTAMPTZOID;
		case SK_TIME:
			return INTERVALOID;
		case SK_GEOMETRY:
			return BYTEAOID;
	}
	return TEXTOID;				/* keep compiler quiet */
}
