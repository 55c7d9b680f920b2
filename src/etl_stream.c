/*-------------------------------------------------------------------------
 *
 * etl_stream.c
 *		  The module's entry: the magic block, and later the settings and
 *		  background workers registered when the library is loaded.
 *
 * The files of src/ read in the order data flows: query.c (SQL entry
 * points) -> options.c (the source's definition) -> connection.c (talking
 * to MySQL) -> convert.c (MySQL text values to PostgreSQL datums).
 *
 * IDENTIFICATION
 *		  src/etl_stream.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

PG_MODULE_MAGIC;
