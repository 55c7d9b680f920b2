#!/usr/bin/env bash
# What create_target keeps of the source's definition, and schema drift.
# A MariaDB table with NOT NULL columns, a second and a third UNIQUE key,
# constant and CURRENT_TIMESTAMP defaults and ones that do not translate:
# the target's definition has the first and one NOTICE names the rest.  A
# zero date in a NOT NULL column under invalid_dates 'null' fails the run
# with our error (23502, key and value), directly and through staging.
# Columns added on the source under each on_schema_change: warn (a WARNING
# and a note, data still moves, at every run), fail (failed before pulling,
# target and watermark unchanged), add_columns (the column arrives for the
# rows synced from then on); a removed column and a retyped one.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DB=t_schema
cleanup() {
	local -
	set +e
	pg_psql -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	mysql_root etl_test -e "DROP TABLE IF EXISTS sc_decl, sc_dates, sc_drift, sc_bf" >/dev/null 2>&1
}
trap cleanup EXIT
cleanup
db() { pg_psql -d "$DB" "$@"; }
q() { db -AtXq -c "$1"; }
# a sync of table $1 selecting $2, with the messages it raised before the row
sync_out() {
	local out
	out=$(db -AtX -c "SELECT $2 FROM etl_stream.sync('$1')" 2>&1)
	sed 's/^/# /' <<<"$out" >&2
	printf '%s\n' "$out"
}
# matches TEXT STRING...: every string is in TEXT
matches() {
	local text="$1" p
	shift
	for p in "$@"; do
		grep -qF -- "$p" <<<"$text" || return 1
	done
}

mysql_root etl_test <<'SQL'
CREATE TABLE sc_decl (
  id INT PRIMARY KEY,
  email VARCHAR(50) NOT NULL,
  code CHAR(4),
  qty INT NOT NULL DEFAULT 5,
  price DECIMAL(8,2) DEFAULT 1.50,
  label VARCHAR(20) DEFAULT 'it''s',
  flag TINYINT(1) NOT NULL DEFAULT 1,
  born DATE DEFAULT '2020-01-02',
  zero DATE DEFAULT '0000-00-00',
  created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  changed TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  noise DOUBLE DEFAULT (rand()),
  tags SET('a','b','c') DEFAULT 'a,b',
  body TEXT,
  UNIQUE KEY uq_email (email),
  UNIQUE KEY uq_code_qty (code, qty),
  UNIQUE KEY uq_body (body(10)),
  FULLTEXT KEY ft_body (body),
  KEY k_label (label)
);
INSERT INTO sc_decl (id, email, code) VALUES (1, 'a@x', 'A'), (2, 'b@x', 'B');
SET SESSION sql_mode = '';
CREATE TABLE sc_dates (id INT PRIMARY KEY, d DATE NOT NULL, upd INT NOT NULL);
INSERT INTO sc_dates VALUES (1, '2024-01-01', 1), (2, '0000-00-00', 1), (3, '2024-01-03', 1);
CREATE TABLE sc_bf (id INT PRIMARY KEY, upd INT NOT NULL);
INSERT INTO sc_bf SELECT seq, seq FROM seq_1_to_200;
CREATE TABLE sc_drift (id INT PRIMARY KEY, note VARCHAR(20), upd INT NOT NULL);
INSERT INTO sc_drift VALUES (1, 'one', 1), (2, 'two', 1);
SQL
create_test_db "$DB"

# --- create_target keeps what the source declares --------------------------
db -q -c "SELECT FROM etl_stream.add_table('sc_decl', server => 'src', source_table => 'sc_decl', strategy => 'full_refresh')" >/dev/null
db -c "SELECT etl_stream.create_target('sc_decl')" >"$ETL_WORK/sc_create.out" 2>&1
sed "s/^/# /" "$ETL_WORK/sc_create.out"
tap_is "$(q "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
              WHERE attrelid = 'sc_decl'::regclass AND attnum > 0 AND attnotnull")" \
	"id,email,qty,flag,created,changed" "NOT NULL on every column where the source has it"
tap_is "$(q "SELECT string_agg(a.attname || '=' || pg_get_expr(d.adbin, d.adrelid), ' ' ORDER BY a.attnum)
              FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
             WHERE d.adrelid = 'sc_decl'::regclass")" \
	"qty=5 price=1.50 label='it''s'::character varying flag=true born='2020-01-02'::date created=CURRENT_TIMESTAMP changed=CURRENT_TIMESTAMP tags='{a,b}'::text[]" \
	"constant defaults of each type and CURRENT_TIMESTAMP are carried"
tap_is "$(q "SELECT string_agg(pg_get_constraintdef(oid), ' ' ORDER BY conname) FROM pg_constraint
              WHERE conrelid = 'sc_decl'::regclass")" \
	"UNIQUE (code, qty) UNIQUE (email) PRIMARY KEY (id)" \
	"the primary key and the other unique keys (not the prefix one)"
tap_is "$(grep -c '^NOTICE' "$ETL_WORK/sc_create.out")" 1 "create_target gives one NOTICE"
tap_ok "it names what was not carried: zero-date default, ON UPDATE, rand(), FULLTEXT, prefix key" \
	matches "$(cat "$ETL_WORK/sc_create.out")" "default '0000-00-00' of column \"zero\"" \
	"ON UPDATE CURRENT_TIMESTAMP(3) of column \"changed\"" "default rand() of column \"noise\" (an expression)" \
	"FULLTEXT index \"ft_body\"" "unique key \"uq_body\" on (body(10)) (a prefix)"
tap_is "$(q "SELECT status || ' ' || rows_inserted FROM etl_stream.sync('sc_decl')")" "success 2" \
	"the target with the source's declarations syncs"
tap_is "$(q "INSERT INTO sc_decl (id, email, created, changed) VALUES (9, 'z@x', DEFAULT, DEFAULT)
             RETURNING qty || ' ' || flag || ' ' || (created IS NOT NULL)")" "5 true true" \
	"a row inserted in PostgreSQL gets the defaults"

# --- a policy's NULL in a NOT NULL column ----------------------------------
db -q -c "SELECT FROM etl_stream.add_table('sc_dates', server => 'src', source_table => 'sc_dates', watermark => 'upd')" \
	-c "SELECT etl_stream.create_target('sc_dates')" >/dev/null
# first run: the empty target is loaded directly
tap_is "$(q "SELECT concat_ws('|', status, load_path, sqlstate, error_column, error_key, error_value)
              FROM etl_stream.sync('sc_dates')" 2>/dev/null)" "failed|direct|23502|d|(id)=(2)|0000-00-00" \
	"a zero date in a NOT NULL column under invalid_dates 'null' fails the direct load: 23502, key and value"
msg=$(q "SELECT message || ' / ' || detail || ' / ' || hint FROM etl_stream.runs WHERE table_name = 'sc_dates' ORDER BY run_id DESC LIMIT 1")
echo "# $msg"
tap_ok "the message is ours: table, column, the policy, and the way out" \
	matches "$msg" "invalid date in NOT NULL column \"d\" of table \"sc_dates\"" \
	"the invalid_dates policy 'null' would make it NULL" "invalid_dates to 'error' or '-infinity'"
tap_is "$(q "SELECT count(*) FROM sc_dates")|$(q "SELECT high_watermark IS NULL FROM etl_stream.tables WHERE name = 'sc_dates'")" \
	"0|t" "nothing was loaded and the watermark did not move"
# through staging: a target with rows
db -qc "INSERT INTO sc_dates VALUES (100, '2000-01-01', 0)"
tap_is "$(q "SELECT concat_ws('|', status, load_path, sqlstate, error_column, error_key)
              FROM etl_stream.sync('sc_dates')" 2>/dev/null)" "failed|staging|23502|d|(id)=(2)" \
	"through staging (no NOT NULL there) the target's NOT NULL still stops the row, with our error"
mysql_root etl_test -e "UPDATE sc_dates SET d = '2024-01-02' WHERE id = 2"
tap_is "$(q "SELECT status || ' ' || rows_inserted FROM etl_stream.sync('sc_dates')")" "success 3" \
	"once the source holds a valid date the run goes through"

# --- schema drift ----------------------------------------------------------
db -q -c "SELECT FROM etl_stream.add_table('sc_drift', server => 'src', source_table => 'sc_drift', watermark => 'upd')" \
	-c "SELECT etl_stream.create_target('sc_drift')" >/dev/null
tap_is "$(q "SELECT status || ' ' || rows_inserted || ' ' || coalesce(schema_changes, '-') FROM etl_stream.sync('sc_drift')")" \
	"success 2 -" "no change: no note"
mysql_root etl_test -e "ALTER TABLE sc_drift ADD COLUMN extra INT, ADD COLUMN more VARCHAR(5); INSERT INTO sc_drift VALUES (3, 'three', 2, 30, 'x')"

# warn (the default): a WARNING, a note, the data still moves, at every run
out=$(sync_out sc_drift "status || ' ' || rows_inserted || ' ' || schema_changes")
tap_ok "warn: a WARNING names the new columns" \
	matches "$out" 'WARNING:  the columns of MySQL table `sc_drift` changed' \
	'DETAIL:  new columns "extra" (integer), "more" (character varying(5)): not moved'
tap_is "$(tail -n 1 <<<"$out")" 'success 1 new columns "extra" (integer), "more" (character varying(5)): not moved' \
	"warn: the run succeeds, moves the new row, and its record has the note"
tap_is "$(q "SELECT count(*) FROM etl_stream.runs WHERE table_name = 'sc_drift' AND schema_changes IS NOT NULL")|$(
	db -AtX -c "SELECT schema_changes IS NOT NULL FROM etl_stream.sync('sc_drift')" 2>/dev/null)" "1|t" \
	"warn: the next run warns again (the columns are still not moved)"

# fail: failed before pulling, target and watermark unchanged
mysql_root etl_test -e "INSERT INTO sc_drift VALUES (4, 'four', 3, 40, 'y')"
before="$(q "SELECT count(*) FROM sc_drift")|$(q "SELECT high_watermark FROM etl_stream.tables WHERE name = 'sc_drift'")"
db -q -c "SELECT FROM etl_stream.alter_table('sc_drift', on_schema_change => 'fail')" >/dev/null
tap_is "$(q "SELECT concat_ws('|', status, failed_phase, sqlstate, rows_pulled) FROM etl_stream.sync('sc_drift')" 2>/dev/null)" \
	"failed|connect|55000|0" "fail: the run fails before pulling (55000)"
tap_ok "fail: the message names the table and the detail the new columns" \
	matches "$(q "SELECT message || ' ' || detail FROM etl_stream.runs WHERE table_name = 'sc_drift' ORDER BY run_id DESC LIMIT 1")" \
	'the columns of MySQL table `sc_drift` changed since etl_stream table "sc_drift"' 'new columns "extra" (integer)'
tap_is "$(q "SELECT count(*) FROM sc_drift")|$(q "SELECT high_watermark FROM etl_stream.tables WHERE name = 'sc_drift'")" \
	"$before" "fail: the target and the watermark are unchanged"

# add_columns: the columns are added and move for the rows synced from now on
db -q -c "SELECT FROM etl_stream.alter_table('sc_drift', on_schema_change => 'add_columns')" >/dev/null
tap_is "$(q "SELECT status || ' ' || rows_inserted || ' ' || schema_changes FROM etl_stream.sync('sc_drift')" 2>/dev/null)" \
	'success 1 new columns "extra" (integer), "more" (character varying(5)): added to the target, moved from this run on' \
	"add_columns: the run succeeds with a note"
# the cutoff (watermark 2, no look-back) re-reads row 3 and pulls row 4
tap_is "$(q "SELECT string_agg(id || ':' || coalesce(extra::text, '-') || ':' || coalesce(more, '-'), ' ' ORDER BY id) FROM sc_drift")" \
	"1:-:- 2:-:- 3:30:x 4:40:y" "add_columns: the rows this run pulled have the new columns; rows synced before keep NULL"
tap_is "$(q "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'sc_drift'::regclass AND attname = 'more'")|$(
	q "SELECT array_to_string(columns, ',') FROM etl_stream.tables WHERE name = 'sc_drift'")" \
	"character varying(5)|id,note,upd,extra,more" "add_columns: the target's column has the mapped type, the registration moves it"
mysql_root etl_test -e "UPDATE sc_drift SET upd = 5, extra = 10 WHERE id = 1"
tap_is "$(q "SELECT status || ' ' || rows_updated || ' ' || coalesce(schema_changes, '-') FROM etl_stream.sync('sc_drift')")|$(
	q "SELECT extra FROM sc_drift WHERE id = 1")" "success 1 -|10" \
	"add_columns: the next run has nothing to note, and an updated old row gets its value"

# a moved column removed on the source: a clear error, not MySQL's "Unknown column"
mysql_root etl_test -e "ALTER TABLE sc_drift DROP COLUMN note"
tap_is "$(q "SELECT concat_ws('|', status, failed_phase, sqlstate, message) FROM etl_stream.sync('sc_drift')" 2>/dev/null)" \
	'failed|connect|42703|MySQL table `sc_drift` has no column "note", which etl_stream table "sc_drift" moves' \
	"a removed column fails the run before pulling, naming the column"

# a column retyped on the source: warned once, recorded; the values still fit
mysql_root etl_test -e "ALTER TABLE sc_drift ADD COLUMN note VARCHAR(20) AFTER id; ALTER TABLE sc_drift MODIFY extra BIGINT; UPDATE sc_drift SET note = 'x'"
out=$(sync_out sc_drift "status || ' ' || schema_changes")
tap_ok "a retyped column is a WARNING and a note; the run goes on" \
	matches "$out" 'WARNING:  the columns of MySQL table `sc_drift` changed' \
	'success type changed: "extra" integer -> bigint'
tap_is "$(q "SELECT column_types[array_position(columns, 'extra')] FROM etl_stream.tables WHERE name = 'sc_drift'")|$(
	q "SELECT coalesce(schema_changes, '-') FROM etl_stream.sync('sc_drift')")" "bigint|-" \
	"the registration records the new type, and the next run has nothing to note"

# a column renamed only in case is still the column (MySQL's names are case-insensitive)
mysql_root etl_test -e "ALTER TABLE sc_drift CHANGE note NOTE VARCHAR(20); UPDATE sc_drift SET NOTE = 'y', upd = 6 WHERE id = 2"
tap_is "$(q "SELECT status || ' ' || rows_updated || ' ' || coalesce(schema_changes, '-') FROM etl_stream.sync('sc_drift')")|$(
	q "SELECT note FROM sc_drift WHERE id = 2")" "success 1 -|y" "a column renamed in case only is no change"

# add_columns with a name PostgreSQL cannot hold: refused, not truncated
long=$(printf 'c%.0s' {1..64})
mysql_root etl_test -e "ALTER TABLE sc_drift ADD COLUMN $long INT"
tap_is "$(q "SELECT concat_ws('|', status, failed_phase, sqlstate) FROM etl_stream.sync('sc_drift')" 2>/dev/null)|$(
	q "SELECT count(*) FROM pg_attribute WHERE attrelid = 'sc_drift'::regclass AND attname LIKE 'ccc%'")" \
	"failed|connect|42622|0" "add_columns refuses a new column whose name is longer than 63 bytes, and adds nothing"

# a backfill's slices only check: under add_columns they warn, add nothing,
# and the next sync adds the column
db -q -c "SELECT FROM etl_stream.add_table('sc_bf', server => 'src', source_table => 'sc_bf', watermark => 'upd',
                                           on_schema_change => 'add_columns')" \
	-c "SELECT etl_stream.create_target('sc_bf')" >/dev/null
mysql_root etl_test -e "ALTER TABLE sc_bf ADD COLUMN late INT; UPDATE sc_bf SET late = id"
# open-ended: when it is done the watermark is 200
job=$(q "SELECT etl_stream.backfill('sc_bf', range_from => '1', slice => '50', workers => 2)")
tap_is "$(q "SELECT state FROM etl_stream.job_wait($job)")|$(q "SELECT count(*) FROM sc_bf")|$(
	q "SELECT count(*) FROM pg_attribute WHERE attrelid = 'sc_bf'::regclass AND attname = 'late'")|$(
	q "SELECT count(*) FROM etl_stream.runs WHERE job_id = $job AND schema_changes LIKE 'new column \"late\" (integer): not moved'")" \
	"done|200|0|4" "the backfill's 4 slices load the rows, note the new column, and do not add it"
tap_is "$(q "SELECT status || ' ' || schema_changes FROM etl_stream.sync('sc_bf')" 2>/dev/null)|$(q "SELECT count(late) FROM sc_bf")" \
	'success new column "late" (integer): added to the target, moved from this run on|1' \
	"the next sync adds it; of the rows the backfill loaded, only the one at the cutoff (200) gets it"
