# Makefile for etl_stream, built with PGXS.
#
#   make PG_CONFIG=/path/to/pg_config && make install && make installcheck
#
# The regression tests need running servers; test/check.sh starts throwaway
# ones and runs everything.

MODULE_big = etl_stream
# in the order data flows (docs/architecture.md)
OBJS = \
	src/etl_stream.o \
	src/run.o \
	src/query.o \
	src/options.o \
	src/connection.o \
	src/mysql_types.o \
	src/convert.o \
	src/land.o \
	src/run_record.o \
	src/retry.o \
	src/sync_all.o \
	src/transform.o \
	src/workers.o \
	src/progress.o

EXTENSION = etl_stream
EXT_VERSION = 0.5.0
PREV_VERSION = 0.4.0

# The SQL objects are one file per concern in sql/objects/, concatenated
# into the install script of this version.  Its upgrade script from the
# previous release is the catalog's migration (sql/upgrade/), the catalog
# files new in this version, every object file that only (re)defines
# functions and views, then the rest of the migration.  Released versions'
# scripts are kept as shipped (docs/architecture.md).
OBJECT_SQL = $(sort $(wildcard sql/objects/*.sql))
CATALOG_SQL = sql/objects/10_catalog.sql sql/objects/11_catalog_jobs.sql \
	sql/objects/12_catalog_schedules.sql sql/objects/13_catalog_rejects.sql \
	sql/objects/13_catalog_transforms.sql
NEW_CATALOG_SQL = sql/objects/13_catalog_rejects.sql sql/objects/13_catalog_transforms.sql
REPLACEABLE_SQL = $(filter-out $(CATALOG_SQL),$(OBJECT_SQL))
UPGRADE_SQL = sql/upgrade/$(PREV_VERSION)--$(EXT_VERSION).sql $(NEW_CATALOG_SQL) \
	$(REPLACEABLE_SQL) sql/upgrade/$(PREV_VERSION)--$(EXT_VERSION)-after.sql

DATA = sql/etl_stream--0.1.0.sql sql/etl_stream--0.1.0--0.2.0.sql sql/etl_stream--0.2.0--0.3.0.sql \
	sql/etl_stream--0.3.0--0.4.0.sql
DATA_built = sql/etl_stream--$(EXT_VERSION).sql sql/etl_stream--$(PREV_VERSION)--$(EXT_VERSION).sql

REGRESS = setup options connection types query cancel sync direct runs names deletes
# test/sql/*.sql against expected/*.out (pg_regress looks in the output
# directory, the top, for expected/ first)
REGRESS_OPTS = --inputdir=test

MYSQL_CONFIG ?= mariadb_config
PG_CPPFLAGS = $(shell $(MYSQL_CONFIG) --include) -Isrc
# -Wextra, less unused-parameter: PostgreSQL's headers and callback
# signatures (fmgr, xact and syscache callbacks) have parameters we ignore.
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter
SHLIB_LINK = $(shell $(MYSQL_CONFIG) --libs)

EXTRA_CLEAN = results regression.diffs regression.out

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/etl_stream--$(EXT_VERSION).sql: $(OBJECT_SQL)
	( printf '%s\n' '/* etl_stream--$(EXT_VERSION).sql: built from sql/objects/ by the Makefile */' '' \
	    '-- complain if script is sourced in psql, rather than via CREATE EXTENSION' \
	    '\echo Use "CREATE EXTENSION etl_stream" to load this file. \quit'; \
	  for f in $^; do printf '\n-- ==== %s\n\n' "$$f"; cat "$$f"; done ) > $@

sql/etl_stream--$(PREV_VERSION)--$(EXT_VERSION).sql: $(UPGRADE_SQL)
	( printf '%s\n' '/* etl_stream--$(PREV_VERSION)--$(EXT_VERSION).sql: built by the Makefile */' '' \
	    '-- complain if script is sourced in psql, rather than via ALTER EXTENSION' \
	    '\echo Use "ALTER EXTENSION etl_stream UPDATE TO '"'"'$(EXT_VERSION)'"'"'" to load this file. \quit'; \
	  for f in $^; do printf '\n-- ==== %s\n\n' "$$f"; cat "$$f"; done ) > $@

# PGXS does not track header dependencies: every object depends on both headers
$(OBJS): src/etl_stream.h src/source.h
