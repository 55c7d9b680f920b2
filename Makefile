# Makefile for etl_stream, built with PGXS.
#
#   make PG_CONFIG=/path/to/pg_config && make install && make installcheck
#
# The regression tests need running servers; test/check.sh starts throwaway
# ones and runs everything.

MODULE_big = etl_stream
OBJS = \
	src/etl_stream.o \
	src/options.o \
	src/connection.o \
	src/convert.o \
	src/land.o \
	src/query.o

EXTENSION = etl_stream
DATA = sql/etl_stream--0.1.0.sql

REGRESS = setup options connection types query cancel sync direct
REGRESS_OPTS = --inputdir=.

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
