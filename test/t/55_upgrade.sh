#!/usr/bin/env bash
# ALTER EXTENSION etl_stream UPDATE from 0.1.0, the release as shipped,
# gives the same objects as a fresh install of the current version, and
# keeps the registrations, watermarks and runs; the upgraded database then
# syncs on from its watermark.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

OLD=t_upgrade_old
NEW=t_upgrade_new
CURRENT=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$ETL_ROOT/etl_stream.control")
cleanup() {
	local -
	set +e
	pg_psql -qc "DROP DATABASE IF EXISTS $OLD" -c "DROP DATABASE IF EXISTS $NEW" >/dev/null 2>&1
	mysql_etl etl_test -e "DROP TABLE IF EXISTS up_orders" >/dev/null 2>&1
}
trap cleanup EXIT
cleanup

mysql_etl etl_test -e "CREATE TABLE up_orders (id INT PRIMARY KEY, v VARCHAR(10), update_time INT UNSIGNED, KEY (update_time));
	INSERT INTO up_orders SELECT seq, CONCAT('v', seq), 1000 + seq FROM seq_1_to_200"

# --- the old release, used as users did --------------------------------
for d in $OLD $NEW; do pg_psql -qc "CREATE DATABASE $d"; done
old() { pg_psql -d $OLD "$@"; }
old -q >/dev/null <<SQL
CREATE EXTENSION etl_stream VERSION '0.1.0';
CREATE SERVER src FOREIGN DATA WRAPPER etl_stream
  OPTIONS (host '127.0.0.1', port '$MYSQL_PORT', dbname 'etl_test');
CREATE USER MAPPING FOR CURRENT_USER SERVER src
  OPTIONS (user '$ETL_MYSQL_USER', password '$ETL_MYSQL_PASSWORD');
SELECT etl_stream.add_table('up_orders', server => 'src', source_table => 'up_orders',
                            watermark => 'update_time', lookback => 5);
SELECT etl_stream.create_target('up_orders');
SELECT etl_stream.sync('up_orders');
SELECT etl_stream.add_table('up_slices', server => 'src', source_table => 'up_orders',
                            watermark => 'update_time', strategy => 'delete_insert',
                            target_table => 'up_slices');
SELECT etl_stream.create_target('up_slices');
SELECT etl_stream.sync('up_slices', range_from => '1000', range_to => '1100');
SQL
tap_is "$(old -Atc "SELECT extversion FROM pg_extension WHERE extname = 'etl_stream'")" 0.1.0 \
	"0.1.0 installs, and its own sync works with the current library"
state() {
	pg_psql -d "$1" -Atc "
	  -- the columns later releases added are left out (their defaults are checked below)
	  SELECT 'table ' || (to_jsonb(t) - 'created_at' - 'depends_on' - 'retries' - 'retry_backoff' - 'timeout'
	                              - 'on_schema_change' - 'source_columns' - 'owner' - 'source_names'
	                              - 'on_bad_value' - 'deletes')::text
	    FROM etl_stream.tables t
	  UNION ALL
	  SELECT 'run ' || jsonb_build_object('id', run_id, 'table', table_name, 'status', status,
	             'pulled', rows_pulled, 'inserted', rows_inserted, 'cutoff', cutoff,
	             'watermark', new_watermark, 'started', started_at, 'path', load_path)::text
	    FROM etl_stream.runs
	  ORDER BY 1"
}
before=$(state $OLD)
echo "$before" | sed 's/^/# before: /'
tap_is "$(grep -c '^table ' <<<"$before")/$(grep -c '^run ' <<<"$before")" 2/2 "before the update: 2 registrations and 2 runs"

# every release on the way, then the current one
old -qc "ALTER EXTENSION etl_stream UPDATE TO '0.2.0'"
tap_is "$(state $OLD)" "$before" "at 0.2.0 the registrations, watermarks and runs are kept"
old -qc "ALTER EXTENSION etl_stream UPDATE TO '0.3.0'"
tap_is "$(state $OLD)" "$before" "at 0.3.0 too"
old -qc "ALTER EXTENSION etl_stream UPDATE TO '0.4.0'"
tap_is "$(state $OLD)" "$before" "at 0.4.0 too"
old -qc "ALTER EXTENSION etl_stream UPDATE"
tap_is "$(old -Atc "SELECT extversion FROM pg_extension WHERE extname = 'etl_stream'")" "$CURRENT" \
	"ALTER EXTENSION etl_stream UPDATE goes on to $CURRENT"
pg_psql -d $NEW -qc "CREATE EXTENSION etl_stream"

# --- the same objects -------------------------------------------------------
# Each query lists one aspect of the extension's objects as sorted text.
declare -A ASPECT
ASPECT[members]="SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend
  WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
    AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'etl_stream') ORDER BY 1"
ASPECT[function definitions]="SELECT p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid))
  FROM pg_proc p WHERE p.pronamespace = 'etl_stream'::regnamespace ORDER BY 1"
ASPECT[function privileges]="SELECT p.oid::regprocedure || ' ' || coalesce(p.proacl::text, 'default')
  FROM pg_proc p WHERE p.pronamespace = 'etl_stream'::regnamespace ORDER BY 1"
ASPECT[columns]="SELECT c.relname || '.' || a.attnum || ' ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
         || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'etl_stream'::regnamespace ORDER BY c.relname, a.attnum"
ASPECT[constraints]="SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'etl_stream'::regnamespace ORDER BY 1"
ASPECT[indexes]="SELECT pg_get_indexdef(indexrelid) FROM pg_index
  WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'etl_stream'::regnamespace) ORDER BY 1"
ASPECT[views]="SELECT c.relname || ' ' || md5(pg_get_viewdef(c.oid)) || ' ' || coalesce(c.relacl::text, '')
  FROM pg_class c WHERE c.relnamespace = 'etl_stream'::regnamespace AND c.relkind = 'v' ORDER BY 1"
ASPECT[configuration tables]="SELECT x::regclass || ' ' || coalesce(c, '') FROM pg_extension e,
  unnest(e.extconfig, e.extcondition) u(x, c) WHERE e.extname = 'etl_stream' ORDER BY 1"
ASPECT[policies]="SELECT tablename || ' ' || policyname || ' ' || cmd || ' ' || coalesce(qual, '') || ' ' || coalesce(with_check, '')
  FROM pg_policies WHERE schemaname = 'etl_stream' ORDER BY 1"
ASPECT[table privileges and row security]="SELECT c.relname || ' ' || coalesce(c.relacl::text, '') || ' ' || c.relrowsecurity
  FROM pg_class c WHERE c.relnamespace = 'etl_stream'::regnamespace AND c.relkind IN ('r', 'S') ORDER BY 1"
ASPECT[schemas]="SELECT nspname || ' ' || coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname LIKE 'etl_stream%' ORDER BY 1"
for aspect in members "function definitions" "function privileges" columns constraints indexes views \
	"configuration tables" policies "table privileges and row security" schemas; do
	a=$(pg_psql -d $OLD -Atc "${ASPECT[$aspect]}") || a=""
	b=$(pg_psql -d $NEW -Atc "${ASPECT[$aspect]}") || b=""
	if [ -z "$a" ] || [ -z "$b" ]; then
		echo "not ok - the $aspect of the upgraded and the fresh install can be listed"
	elif [ "$a" = "$b" ]; then
		echo "ok - the upgraded and the fresh install have the same $aspect ($(wc -l <<<"$a") lines)"
	else
		echo "not ok - the upgraded and the fresh install have the same $aspect"
		diff <(echo "$a") <(echo "$b") | sed 's/^/#   /' | head -40
	fi
done

# --- the data kept ---------------------------------------------------------
tap_is "$(state $OLD)" "$before" "the registrations, watermarks and runs are kept"
tap_is "$(old -AtF' ' -c "SELECT DISTINCT depends_on, retries, retry_backoff, timeout IS NULL FROM etl_stream.tables")" \
	"{} 3 00:00:30 t" "the columns added since have their defaults: no dependencies, 3 retries after 30 s, no timeout"
tap_is "$(old -AtF' ' -c "SELECT DISTINCT on_schema_change, source_columns IS NULL FROM etl_stream.tables")" \
	"warn t" "on_schema_change is warn, and the source's columns are not known yet"
tap_is "$(old -AtF' ' -c "SELECT (SELECT string_agg(DISTINCT owner || ' ' || (source_names IS NULL), ',') FROM etl_stream.tables), (SELECT string_agg(DISTINCT owner, ',') FROM etl_stream.runs)")" \
	"postgres true postgres" "registrations and runs belong to the role that updated the extension, with the MySQL names as they were"
tap_is "$(old -Atc "SELECT DISTINCT on_bad_value FROM etl_stream.tables")" error "on_bad_value is error"
tap_is "$(old -Atc "SELECT DISTINCT deletes FROM etl_stream.tables")" keep \
	"deletes (0.5.0) has its default: rows deleted on MySQL are kept, as before"
mysql_etl etl_test -e "INSERT INTO up_orders VALUES (201, 'new', 1201); UPDATE up_orders SET v = 'changed', update_time = 1202 WHERE id = 3"
tap_is "$(old -Atc "SELECT status, cutoff, rows_inserted, rows_updated, new_watermark, attempt FROM etl_stream.sync('up_orders')")" \
	"success|1195|1|1|1202|1" "the upgraded database syncs on from the kept watermark (cutoff 1200 - 5)"
tap_is "$(old -Atc "SELECT count(*) FROM etl_stream.runs")" 3 "its history goes on from the old runs"
tap_is "$(old -Atc "SELECT array_to_string(source_columns, ',') || ' ' || coalesce(r.schema_changes, '-')
                      FROM etl_stream.tables t, etl_stream.runs r WHERE t.name = 'up_orders' AND r.run_id = 3")" \
	"id,v,update_time -" "its first run takes in the source's columns, with nothing to note"
job=$(old -Atc "SELECT etl_stream.backfill('up_slices', slice => '50', workers => 2)")
tap_is "$(old -Atc "SELECT state FROM etl_stream.job_wait($job)")" done "a backfill runs in the upgraded database"
old -Atc "SELECT * FROM etl_stream.tasks WHERE job_id = $job AND state <> 'done'" | sed 's/^/# task: /'
tap_is "$(old -Atc "SELECT count(*) FROM up_orders")" 201 "the target has every row"
