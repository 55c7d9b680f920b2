#!/usr/bin/env bash
# verify and repair against the real servers.  A table with a DATETIME
# watermark over 10 days and one with an integer watermark: a row changed
# on MySQL without touching its watermark (so a sync misses it), a row
# deleted on MySQL and an extra row in the target are found in exactly
# their slices; repair reloads only those (the runs say which), in the
# foreground and in workers, and verify is all ok afterwards.  Every type
# table of the fixtures and the 166-column order table verify as equal
# when freshly synced, and a change of one value in any column is found.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DB=t_verify
TYPE_TABLES="types_int types_num types_bit types_text types_latin1 types_binary types_json types_geometry types_datetime types_bad_dates"
cleanup() {
	local -
	set +e
	pg_psql -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	mysql_root etl_test -e "DROP TABLE IF EXISTS vf_time, vf_int, vf_wide, vf_wide_orig, vf_name, vf_copy, vf_value" >/dev/null 2>&1
}
trap cleanup EXIT
cleanup
db() { pg_psql -d "$DB" "$@"; }

mysql_root etl_test <<'SQL'
-- ~10 days, 100 rows a day; a slice is a day
CREATE TABLE vf_time (id INT PRIMARY KEY, amount DECIMAL(10,2), note VARCHAR(40),
                      updated_at DATETIME(6) NOT NULL, KEY (updated_at));
INSERT INTO vf_time SELECT seq, seq * 1.25, CONCAT('row ', seq),
                           TIMESTAMP('2024-03-01') + INTERVAL (seq * 864) SECOND
  FROM seq_0_to_999;
-- versions 0..5997 in steps of 3: ~100 slices of 60
CREATE TABLE vf_int (id BIGINT UNSIGNED PRIMARY KEY, v INT, version INT UNSIGNED NOT NULL, KEY (version));
INSERT INTO vf_int SELECT seq, seq % 97, seq * 3 FROM seq_0_to_1999;
-- no watermark, a text key: one slice, the whole table
CREATE TABLE vf_name (code VARCHAR(10) PRIMARY KEY, label TEXT);
INSERT INTO vf_name VALUES ('a', 'one'), ('b', 'two'), ('c', NULL);
SQL
perl "$ETL_ROOT/bench/gen_order_table.pl" 3000 vf_wide | mysql_root etl_test

create_test_db "$DB"
db -q >/dev/null <<SQL
SELECT etl_stream.add_table('vf_time', 'src', 'vf_time', watermark => 'updated_at');
SELECT etl_stream.add_table('vf_int', 'src', 'vf_int', watermark => 'version');
SELECT etl_stream.add_table('vf_name', 'src', 'vf_name', strategy => 'delete_insert');
SELECT etl_stream.add_table('vf_wide', 'src', 'vf_wide', watermark => 'update_time');
SELECT etl_stream.add_table(x, 'src', x, strategy => 'delete_insert')
  FROM unnest(string_to_array('$TYPE_TABLES', ' ')) x;
SELECT etl_stream.create_target(name) FROM etl_stream.tables;
SELECT (etl_stream.sync(name)).status FROM etl_stream.tables;
-- the slices that differ, as one line
CREATE FUNCTION bad(name text) RETURNS text LANGUAGE sql AS \$\$
  SELECT coalesce(string_agg(format('[%s,%s) %s/%s', slice_from, slice_to, source_rows, target_rows), ' ' ORDER BY slice_from::text COLLATE "C"), 'none')
    FROM etl_stream.verify(name) WHERE NOT ok \$\$;
SQL
tap_is "$(db -Atc "SELECT string_agg(DISTINCT status, ',') FROM etl_stream.runs")" "success" \
	"every table synced"

# --- a fresh copy verifies as equal
tap_is "$(db -Atc "SELECT count(*) || ' ' || count(*) FILTER (WHERE ok) || ' ' || sum(source_rows) || ' ' || min(slice_from) || ' ' || max(slice_to) FROM etl_stream.verify('vf_time')")" \
	"10 10 1000 2024-03-01 00:00:00.000000 2024-03-11 00:00:00.000000" \
	"vf_time: 10 daily slices, all ok"
tap_is "$(db -Atc "SELECT count(*) || ' ' || count(*) FILTER (WHERE ok) || ' ' || sum(target_rows) FROM etl_stream.verify('vf_int')")" \
	"100 100 2000" "vf_int: 100 slices of the integer watermark, all ok"
tap_is "$(db -Atc "SELECT string_agg(format('%s-%s:%s', slice_from, slice_to, ok), ' ' ORDER BY slice_from::int) FROM etl_stream.verify('vf_int', '300', '420', '40')")" \
	"300-340:t 340-380:t 380-420:t" "vf_int: a range in slices of a given grain"
tap_is "$(db -Atc "SELECT string_agg(format('%s %s', to_char(slice_from::timestamp, 'DD HH24'), source_rows), ',' ORDER BY slice_from) FROM etl_stream.verify('vf_time', '2024-03-03', '2024-03-04', '6 hours')")" \
	"03 00 25,03 06 25,03 12 25,03 18 25" "vf_time: a range in slices of 6 hours"
out=$(db -Atc "SELECT * FROM etl_stream.verify('vf_time', grain => '1 month 1 day')" 2>&1 || true)
tap_ok "a grain that mixes months and days is refused" grep -q 'invalid grain "1 month 1 day" for a timestamp column' <<<"$out"
out=$(db -Atc "SELECT * FROM etl_stream.verify('vf_time', '2024-03-05', grain => '1 month')" 2>&1 || true)
tap_ok "a grain of months from the middle of a month is refused" grep -q 'range_from 2024-03-05 does not begin a month' <<<"$out"
tap_is "$(db -Atc "SELECT string_agg(format('%s %s %s', left(slice_from, 10), source_rows, ok), ',') FROM etl_stream.verify('vf_time', '2024-03-01', grain => '1 month')")" \
	"2024-03-01 1000 t" "a grain of months"

# --- a sync misses a change that kept its watermark; verify does not
mysql_root etl_test <<'SQL'
UPDATE vf_time SET note = 'changed quietly' WHERE id = 250;          -- 2024-03-03
DELETE FROM vf_time WHERE id = 555;                                   -- 2024-03-06
UPDATE vf_int SET v = -1 WHERE id = 1000;                             -- version 3000: [3000,3060)
DELETE FROM vf_int WHERE id = 1500;                                   -- version 4500: [4500,4560)
SQL
db -q >/dev/null <<'SQL'
INSERT INTO vf_time VALUES (5000, 1, 'only in the target', '2024-03-08 12:00');
INSERT INTO vf_int VALUES (99999, 1, 30);                             -- [0,60)
SELECT etl_stream.sync('vf_time'), etl_stream.sync('vf_int');
SQL
expect_time="[2024-03-03 00:00:00.000000,2024-03-04 00:00:00.000000) 100/100 [2024-03-06 00:00:00.000000,2024-03-07 00:00:00.000000) 99/100 [2024-03-08 00:00:00.000000,2024-03-09 00:00:00.000000) 100/101"
expect_int="[0,60) 20/21 [3000,3060) 20/20 [4500,4560) 19/20"
tap_is "$(db -Atc "SELECT bad('vf_time')")" "$expect_time" \
	"vf_time: the changed, the deleted and the extra row, each in its own day, and no other day"
tap_is "$(db -Atc "SELECT bad('vf_int')")" "$expect_int" \
	"vf_int: the changed, the deleted and the extra row in their slices, and no other"

# --- repair in the foreground: only those slices, as delete_insert runs
wm_before=$(db -Atc "SELECT high_watermark FROM etl_stream.tables WHERE name = 'vf_time'")
first_run=$(db -Atc "SELECT max(run_id) FROM etl_stream.runs")
tap_is "$(db -Atc "SELECT string_agg(format('%s %s', left(slice_from, 10), status), ', ' ORDER BY slice_from) FROM etl_stream.repair('vf_time')")" \
	"2024-03-03 success, 2024-03-06 success, 2024-03-08 success" "repair returns the three slices it reloaded"
tap_is "$(db -Atc "SELECT string_agg(format('%s %s-%s pulled %s deleted %s', strategy, left(cutoff, 10), left(upper_bound, 10), rows_pulled, rows_deleted), ', ' ORDER BY run_id)
                   FROM etl_stream.runs WHERE table_name = 'vf_time' AND run_id > $first_run")" \
	"delete_insert 2024-03-03-2024-03-04 pulled 100 deleted 100, delete_insert 2024-03-06-2024-03-07 pulled 99 deleted 100, delete_insert 2024-03-08-2024-03-09 pulled 100 deleted 101" \
	"the runs show which slices were reloaded, and nothing else was"
tap_is "$(db -Atc "SELECT high_watermark FROM etl_stream.tables WHERE name = 'vf_time'")" "$wm_before" \
	"repair leaves the watermark where it was"
tap_is "$(db -Atc "SELECT bad('vf_time')")" "none" "vf_time verifies as equal after the repair"
tap_is "$(db -Atc "SELECT note FROM vf_time WHERE id = 250")|$(db -Atc "SELECT count(*) FROM vf_time WHERE id IN (555, 5000)")" \
	"changed quietly|0" "the change is in, the deleted and the extra row are gone"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.repair('vf_time')")" "0" "a second repair finds nothing to do"

# --- repair in workers
job=$(db -Atc "SELECT DISTINCT job_id FROM etl_stream.repair('vf_int', parallel => 2)")
tap_is "$(db -Atc "SELECT state || ' ' || tasks_done || '/' || tasks_total FROM etl_stream.job_wait($job, '60 s')")" \
	"done 3/3" "repair(parallel => 2): a job of three slices, done"
tap_is "$(db -Atc "SELECT string_agg(format('%s-%s', cutoff, upper_bound), ' ' ORDER BY cutoff::int) FROM etl_stream.runs WHERE job_id = $job AND status = 'success'")" \
	"0-60 3000-3060 4500-4560" "its runs are the three slices"
tap_is "$(db -Atc "SELECT bad('vf_int')")" "none" "vf_int verifies as equal after the repair in workers"
tap_is "$(etl_workers_left)" "0" "no worker is left"

# --- a table with neither watermark nor integer key is one slice
mysql_root etl_test -e "UPDATE vf_name SET label = 'TWO' WHERE code = 'b'"
tap_is "$(db -Atc "SELECT bad('vf_name')")" "[,) 3/3" "vf_name: one slice for the whole table, which differs"
tap_is "$(db -Atc "SELECT status FROM etl_stream.repair('vf_name')")|$(db -Atc "SELECT bad('vf_name')")|$(db -Atc "SELECT label FROM vf_name WHERE code = 'b'")" \
	"success|none|TWO" "its repair reloads the whole table"

# --- a table without a watermark, sliced by its integer key
mysql_root etl_test -e "UPDATE types_int SET i = 7 WHERE id = 3"
tap_is "$(db -Atc "SELECT bad('types_int')")" "[3,4) 1/1" "types_int: slices of its key, the changed row's found"
tap_is "$(db -Atc "SELECT format('%s %s', slice_from, status) FROM etl_stream.repair('types_int')")|$(db -Atc "SELECT format('%s %s-%s', strategy, cutoff, upper_bound) FROM etl_stream.runs WHERE table_name = 'types_int' ORDER BY run_id DESC LIMIT 1")|$(db -Atc "SELECT i FROM types_int WHERE id = 3")" \
	"3 success|delete_insert 3-4|7" "its repair reloads that key range alone"
mysql_root etl_test -e "UPDATE types_int SET i = 0 WHERE id = 3"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.repair('types_int')")|$(db -Atc "SELECT bad('types_int')")" "1|none" \
	"put back at the source, repaired again: equal"

# --- column_map: MySQL's names on MySQL's side, PostgreSQL's on ours
db -q <<'SQL' >/dev/null
SELECT etl_stream.add_table('vf_mapped', 'src', 'vf_time', watermark => 'changed',
                            column_map => '{"updated_at": "changed", "note": "remark"}');
SELECT etl_stream.create_target('vf_mapped');
SELECT etl_stream.sync('vf_mapped');
SQL
tap_is "$(db -Atc "SELECT count(*) FILTER (WHERE ok) || '/' || count(*) FROM etl_stream.verify('vf_mapped')")" \
	"$(db -Atc "SELECT count(*) || '/' || count(*) FROM etl_stream.verify('vf_time')")" \
	"a registration with column_map (its watermark renamed) verifies as equal, slice by slice"
db -qc "UPDATE vf_mapped SET remark = 'changed here' WHERE id = 500"
tap_is "$(db -Atc "SELECT string_agg(slice_from, ' ') FROM etl_stream.verify('vf_mapped') WHERE NOT ok")" \
	"$(db -Atc "SELECT date_trunc('day', changed)::text || '.000000' FROM vf_mapped WHERE id = 500")" \
	"a change in a renamed column is found in its slice"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.repair('vf_mapped')")/$(db -Atc "SELECT count(*) FILTER (WHERE NOT ok) FROM etl_stream.verify('vf_mapped')")" \
	"1/0" "repair reloads that slice through the mapped names"

# --- every type, NULLs and unsigned values included, and the wide table
tap_is "$(db -Atc "SELECT string_agg(x, ' ') FROM unnest(string_to_array('$TYPE_TABLES vf_wide', ' ')) x WHERE bad(x) <> 'none'")" "" \
	"the type tables and the 166-column table verify as equal when freshly synced"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream._verify_columns(etl_stream._get('vf_wide')) WHERE compared = 'value'")" "166" \
	"every column of the wide table is compared by value"

# A change of one value in each column but the key: column i changes a row
# of slice i mod n (n slices), so that the changes of a batch of n columns
# are in different slices and verify must name exactly those slices.  The
# row takes the value of another row whose value renders differently (in
# the target, freshly synced).  The table is put back after each batch.
db -q >/dev/null <<'SQL'
CREATE FUNCTION changes(name text)
RETURNS TABLE (batch integer, col text, a text, b text, slice_from text) LANGUAGE plpgsql AS $$
DECLARE
    t etl_stream.tables := etl_stream._get(name);
    s record := etl_stream._verify_slicing(t, NULL, NULL, NULL);
    target text := etl_stream._target_name(t);
    k text := format('%I', t.key_columns[1]);
    n integer;
    at_ix numeric;
    c record;
BEGIN
    EXECUTE format('CREATE TEMP TABLE rows_at ON COMMIT DROP AS SELECT %s::text AS key, %s AS ix,
                           row_number() OVER (PARTITION BY %2$s ORDER BY %1$s) AS nth FROM %3$s', k, s.pg_slice, target);
    SELECT count(DISTINCT r.ix) INTO n FROM rows_at r;
    FOR c IN SELECT v.*, row_number() OVER () - 1 AS i FROM etl_stream._verify_columns(t) v
              WHERE v.name <> ALL (t.key_columns) LOOP
        batch := c.i / n;
        col := c.name;
        -- the slice's rows in turn, batch by batch
        SELECT DISTINCT x.ix INTO at_ix FROM rows_at x ORDER BY x.ix OFFSET c.i % n LIMIT 1;
        SELECT r.key INTO a FROM rows_at r WHERE r.ix = at_ix
         ORDER BY r.nth OFFSET batch % (SELECT count(*) FROM rows_at x WHERE x.ix = at_ix) LIMIT 1;
        EXECUTE format('SELECT y.%1$s::text FROM %2$s x, %2$s y WHERE x.%1$s::text = $1
                          AND (SELECT %3$s FROM (SELECT x.*) z) IS DISTINCT FROM (SELECT %3$s FROM (SELECT y.*) z)
                        ORDER BY y.%1$s LIMIT 1', k, target, c.pg_expr)
           INTO b USING a;
        slice_from := etl_stream._slice_bound(s.kind, s.start, s.width, s.months, at_ix);
        RETURN NEXT;
    END LOOP;
END $$;
SQL
checked=0 missed=() restored=1
for tab in $TYPE_TABLES vf_wide; do
	key=$(db -Atc "SELECT key_columns[1] FROM etl_stream.tables WHERE name = '$tab'")
	mysql_root etl_test -e "CREATE TABLE vf_copy AS SELECT * FROM \`$tab\`"
	batches=$(db -Atc "SELECT max(batch) FROM changes('$tab')")
	for ((k = 0; k <= batches; k++)); do
		script="SET sql_mode = '';"
		while IFS='|' read -r col a b; do
			if [ -z "$b" ]; then
				missed+=("$tab.$col(no other value)")
				continue
			fi
			script+=" UPDATE \`$tab\` x JOIN vf_copy y ON y.\`$key\` = '$b'
				SET x.\`$col\` = y.\`$col\` WHERE x.\`$key\` = '$a';"
			checked=$((checked + 1))
		done < <(db -Atc "SELECT col, a, b FROM changes('$tab') WHERE batch = $k")
		mysql_root etl_test -e "$script"
		want=$(db -Atc "SELECT string_agg(DISTINCT slice_from, ' ') FROM changes('$tab') WHERE batch = $k AND b IS NOT NULL")
		got=$(db -Atc "SELECT string_agg(DISTINCT slice_from, ' ') FROM etl_stream.verify('$tab') WHERE NOT ok")
		if [ "$got" != "$want" ]; then
			missed+=("$tab batch $k: slices '$got', not '$want'")
		fi
		mysql_root etl_test -e "SET sql_mode = ''; REPLACE INTO \`$tab\` SELECT * FROM vf_copy"
		[ "$(db -Atc "SELECT bad('$tab')")" = none ] || restored=0
	done
	mysql_root etl_test -e "DROP TABLE vf_copy"
done
tap_is "${missed[*]:-}" "" "a change of one value on MySQL is found in every column, in its slice ($checked columns)"
tap_ok "the tables are put back after each batch (verify ok again)" test "$restored" = 1
tap_ok "the changes covered the type tables and the wide table" test "$checked" -ge 210
