#!/usr/bin/env bash
# Bad values against the real servers.  2,500 MariaDB rows with two values
# that a smallint target cannot hold (keys 5 and 1500: in the first and the
# second batch of 1,000, among good rows), five zero dates and one
# impossible datetime:
# - on_bad_value 'quarantine': the good rows land (the neighbours of the bad
#   one in its batch too), the two bad ones are in etl_stream.rejects with
#   key, column, MySQL type, value, reason and SQLSTATE, and the run counts
#   them; 'skip' counts and names them only; 'error' (the default) fails
#   the run as before and lands nothing;
# - the values invalid_dates 'null' changed are counted per column in the
#   run and named in one WARNING per column with the first key; the status
#   view shows the count; '-infinity' gives -infinity for date, timestamp
#   and timestamptz targets;
# - a CHECK on the target fails the run whatever on_bad_value says; the
#   same rule as a domain is a bad value and is quarantined;
# - retry_rejects before the target is widened keeps the rows rejected;
#   after ALTER COLUMN TYPE it lands them, empties rejects and leaves the
#   watermark;
# - a gbk column: Chinese text arrives exact, a byte pair without a Unicode
#   mapping is an error naming table, column and key (never a silent '?'),
#   or a reject; a gbk key is kept as its bytes and retried by them;
# - a zero date in a NOT NULL column is a bad value (23502), never a NULL.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DB=t_bad_values
cleanup() {
	local -
	set +e
	pg_psql -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	mysql_root etl_test -e "DROP TABLE IF EXISTS bv_orders, bv_gbk, bv_gbk_key, bv_notnull" >/dev/null 2>&1
}
trap cleanup EXIT
cleanup
db() { pg_psql -d "$DB" "$@"; }
q() { pg_psql -d "$DB" -Atc "$1"; }

mysql_root etl_test <<'SQL'
SET SESSION sql_mode = '';
CREATE TABLE bv_orders (order_id INT PRIMARY KEY, qty INT NOT NULL, shipped_at DATE,
                        paid_at DATETIME, updated_at DATETIME NOT NULL);
INSERT INTO bv_orders
SELECT seq, seq % 100, IF(seq % 500 = 17, '0000-00-00', '2024-01-02'),
       IF(seq = 2000, '2024-02-30 10:00:00', '2024-01-03 04:05:06'), '2024-06-01 00:00:00'
  FROM seq_1_to_2500;
UPDATE bv_orders SET qty = 40000 WHERE order_id IN (5, 1500);
-- gbk text: Chinese, and a byte pair (0xAAA1, user-defined area) with no
-- Unicode mapping, which MariaDB sends as '?' to a utf8mb4 connection
CREATE TABLE bv_gbk (id INT PRIMARY KEY, name VARCHAR(20) CHARACTER SET gbk,
                     note TEXT CHARACTER SET gbk, updated_at INT NOT NULL);
INSERT INTO bv_gbk VALUES (1, '中文测试', '你好，世界', 1),
    (2, CONCAT('a', CAST(X'AAA1' AS CHAR CHARACTER SET gbk), 'b'), 'x', 2),
    (3, '繁體與简体', NULL, 3);
-- a gbk key: received as bytes, kept in rejects as hex, fetched again by it
CREATE TABLE bv_gbk_key (code VARCHAR(10) CHARACTER SET gbk PRIMARY KEY, qty INT NOT NULL);
INSERT INTO bv_gbk_key VALUES ('中', 40000), ('文', 1);
SQL
create_test_db "$DB"
db -q >/dev/null <<SQL
CREATE SERVER src_inf FOREIGN DATA WRAPPER etl_stream
  OPTIONS (host '127.0.0.1', port '$MYSQL_PORT', dbname 'etl_test', invalid_dates '-infinity');
CREATE USER MAPPING FOR CURRENT_USER SERVER src_inf OPTIONS (user '$ETL_MYSQL_USER', password '$ETL_MYSQL_PASSWORD');
-- targets narrower than the source: qty is smallint
CREATE TABLE bv_q (order_id integer PRIMARY KEY, qty smallint NOT NULL, shipped_at date,
                   paid_at timestamp, updated_at timestamp NOT NULL);
CREATE TABLE bv_s (LIKE bv_q INCLUDING ALL);
CREATE TABLE bv_e (LIKE bv_q INCLUDING ALL);
CREATE TABLE bv_inf (order_id integer PRIMARY KEY, qty integer NOT NULL, shipped_at date,
                     paid_at timestamptz, updated_at timestamp NOT NULL);
SELECT etl_stream.add_table('bv_q', server => 'src', source_table => 'bv_orders',
                            watermark => 'updated_at', on_bad_value => 'quarantine');
SELECT etl_stream.add_table('bv_s', server => 'src', source_table => 'bv_orders',
                            watermark => 'updated_at', on_bad_value => 'skip');
SELECT etl_stream.add_table('bv_e', server => 'src', source_table => 'bv_orders',
                            watermark => 'updated_at');
SELECT etl_stream.add_table('bv_inf', server => 'src_inf', source_table => 'bv_orders',
                            watermark => 'updated_at');
-- a rule on the table (CHECK) is not a bad value; the same rule as a domain is
CREATE TABLE bv_chk (order_id integer PRIMARY KEY, qty integer NOT NULL CHECK (qty < 99),
                     shipped_at date, paid_at timestamp, updated_at timestamp NOT NULL);
CREATE DOMAIN below_99 AS integer CHECK (VALUE < 99);
CREATE TABLE bv_dom (order_id integer PRIMARY KEY, qty below_99 NOT NULL,
                     shipped_at date, paid_at timestamp, updated_at timestamp NOT NULL);
SELECT etl_stream.add_table(n, server => 'src', source_table => 'bv_orders',
                            watermark => 'updated_at', on_bad_value => 'quarantine')
  FROM unnest(ARRAY['bv_chk', 'bv_dom']) n;
SQL

# --- quarantine ---------------------------------------------------------
db -Atc "SELECT status, rows_pulled, rows_landed, rows_rejected, run_id FROM etl_stream.sync('bv_q')" \
	>"$ETL_WORK/bv_q.out" 2>"$ETL_WORK/bv_q.err"
IFS='|' read -r st pulled landed rejected run_q <"$ETL_WORK/bv_q.out"
tap_is "$st|$pulled|$landed|$rejected" "success|2500|2498|2" "quarantine: the run succeeds, 2500 pulled, 2498 landed, 2 rejected"
tap_is "$(q "SELECT count(*), count(*) FILTER (WHERE order_id IN (4, 6, 1499, 1501)) FROM bv_q")" "2498|4" \
	"quarantine: the good rows of the bad rows' batches landed"
tap_is "$(q "SELECT string_agg(format('%s %s %s %s %s %s %s', run_id = $run_q, key, key_text, column_name, mysql_type, value, sqlstate), '; ' ORDER BY reject_id) FROM etl_stream.rejects WHERE table_name = 'bv_q'")" \
	't {"order_id": "5"} (order_id)=(5) qty INT 40000 22003; t {"order_id": "1500"} (order_id)=(1500) qty INT 40000 22003' \
	"quarantine: rejects hold run, key, column, MySQL type, value and SQLSTATE"
tap_is "$(q "SELECT reason FROM etl_stream.rejects WHERE table_name = 'bv_q' ORDER BY reject_id LIMIT 1")" \
	'value out of range for column "qty"' "quarantine: rejects hold the reason"
tap_is "$(q "SELECT values_rejected -> 'qty' ->> 'count', values_rejected -> 'qty' ->> 'first_key' FROM etl_stream.runs WHERE run_id = $run_q")" \
	"2|(order_id)=(5)" "quarantine: the run names the column, the count and the first key"
tap_ok "quarantine: a WARNING names the rejects and retry_rejects" \
	grep -q "WARNING:  2 rows of table \"bv_q\" were quarantined by on_bad_value 'quarantine': a value of column \"qty\" could not be converted" "$ETL_WORK/bv_q.err"

# --- values changed by invalid_dates 'null' -------------------------------
tap_is "$(q "SELECT values_changed -> 'shipped_at' ->> 'count', values_changed -> 'shipped_at' ->> 'first_key', values_changed -> 'shipped_at' ->> 'first_value', values_changed -> 'paid_at' ->> 'count', values_changed -> 'shipped_at' ->> 'policy' FROM etl_stream.runs WHERE run_id = $run_q")" \
	"5|(order_id)=(17)|0000-00-00|1|invalid_dates 'null'" "invalid dates: counted per column in the run, with the first key and value"
tap_ok "invalid dates: one WARNING per column with count and first key" \
	grep -qx "WARNING:  5 values of column \"shipped_at\" of table \"bv_q\" were changed to NULL by invalid_dates 'null'" "$ETL_WORK/bv_q.err"
tap_ok "invalid dates: the WARNING's detail has the first key and value" \
	grep -qx "DETAIL:  The first was at key (order_id)=(17): '0000-00-00'." "$ETL_WORK/bv_q.err"
tap_is "$(q "SELECT last_status, last_values_changed, last_rows_rejected FROM etl_stream.status WHERE name = 'bv_q'")" \
	"success|6|2" "status shows the values changed and rows rejected of the last run"

# --- skip ----------------------------------------------------------------
db -Atc "SELECT status, rows_pulled, rows_landed, rows_rejected FROM etl_stream.sync('bv_s')" \
	>"$ETL_WORK/bv_s.out" 2>"$ETL_WORK/bv_s.err"
tap_is "$(cat "$ETL_WORK/bv_s.out")" "success|2500|2498|2" "skip: the run succeeds with 2 rows left out"
tap_is "$(q "SELECT (SELECT count(*) FROM bv_s), (SELECT count(*) FROM etl_stream.rejects WHERE table_name = 'bv_s')")" \
	"2498|0" "skip: the good rows land, nothing is kept in rejects"
tap_ok "skip: a WARNING names the column and the first key" \
	grep -q "WARNING:  2 rows of table \"bv_s\" were left out by on_bad_value 'skip': a value of column \"qty\" could not be converted" "$ETL_WORK/bv_s.err"
tap_ok "skip: its detail has the first key, value and reason" \
	grep -qF "DETAIL:  The first was at key (order_id)=(5): '40000': value out of range for column \"qty\"" "$ETL_WORK/bv_s.err"

# --- error (the default) -------------------------------------------------
tap_is "$(q "SELECT status, rows_rejected, error_key, error_value, sqlstate FROM etl_stream.sync('bv_e')" 2>/dev/null)" \
	"failed|0|(order_id)=(5)|40000|22003" "error: the run fails at the first bad value, named as before"
tap_is "$(q "SELECT (SELECT count(*) FROM bv_e), (SELECT count(*) FROM etl_stream.rejects WHERE table_name = 'bv_e')")" \
	"0|0" "error: nothing landed, nothing in rejects"

# --- what is not a bad value: the table's constraints ----------------------
tap_is "$(q "SELECT status, sqlstate, rows_rejected FROM etl_stream.sync('bv_chk')" 2>/dev/null)" "failed|23514|0" \
	"a CHECK on the table fails the run even with quarantine"
tap_is "$(q "SELECT (SELECT count(*) FROM bv_chk), (SELECT count(*) FROM etl_stream.rejects WHERE table_name = 'bv_chk')")" \
	"0|0" "and the rejects it had made before are rolled back with it"
tap_is "$(q "SELECT status, rows_landed, rows_rejected FROM etl_stream.sync('bv_dom')" 2>/dev/null)" "success|2473|27" \
	"the same rule as a domain is a bad value: the 27 rows with qty 99 or 40000 quarantined"
tap_is "$(q "SELECT sqlstate, count(*) FROM etl_stream.rejects WHERE table_name = 'bv_dom' GROUP BY 1 ORDER BY 1")" \
	"23514|27" "the domain's rejects have its SQLSTATE"

# --- invalid_dates '-infinity' --------------------------------------------
db -Atc "SELECT status, rows_landed FROM etl_stream.sync('bv_inf')" >"$ETL_WORK/bv_inf.out" 2>"$ETL_WORK/bv_inf.err"
tap_is "$(cat "$ETL_WORK/bv_inf.out")" "success|2500" "-infinity: every row lands"
tap_is "$(q "SELECT shipped_at, (SELECT paid_at FROM bv_inf WHERE order_id = 2000), (SELECT count(*) FROM bv_inf WHERE shipped_at = '-infinity') FROM bv_inf WHERE order_id = 17")" \
	"-infinity|-infinity|5" "-infinity: zero dates are -infinity in date and timestamptz targets"
tap_is "$(q "SELECT values_changed -> 'shipped_at' ->> 'policy', values_changed -> 'shipped_at' ->> 'changed_to' FROM etl_stream.runs WHERE table_name = 'bv_inf'")" \
	"invalid_dates '-infinity'|-infinity" "-infinity: counted with its policy"
tap_ok "-infinity: the WARNING says so" \
	grep -q "WARNING:  5 values of column \"shipped_at\" of table \"bv_inf\" were changed to -infinity by invalid_dates '-infinity'" "$ETL_WORK/bv_inf.err"

# --- retry_rejects -----------------------------------------------------------
wm_before=$(q "SELECT high_watermark FROM etl_stream.tables WHERE name = 'bv_q'")
tap_is "$(q "SELECT status, rows_pulled, rows_landed, rows_rejected FROM etl_stream.retry_rejects('bv_q')" 2>/dev/null)" \
	"success|2|0|2" "retry before widening: both rows fetched again, still rejected"
tap_is "$(q "SELECT count(*), count(DISTINCT run_id), min(run_id) > $run_q FROM etl_stream.rejects WHERE table_name = 'bv_q'")" \
	"2|1|t" "retry before widening: the rejects are kept, under the new run"
db -qc "ALTER TABLE bv_q ALTER COLUMN qty TYPE integer"
tap_is "$(q "SELECT status, rows_pulled, rows_landed, rows_rejected, rows_inserted FROM etl_stream.retry_rejects('bv_q')")" \
	"success|2|2|0|2" "retry after ALTER COLUMN TYPE: both rows land"
tap_is "$(q "SELECT (SELECT count(*) FROM etl_stream.rejects WHERE table_name = 'bv_q'), (SELECT string_agg(qty::text, ',' ORDER BY order_id) FROM bv_q WHERE order_id IN (5, 1500)), (SELECT count(*) FROM bv_q)")" \
	"0|40000,40000|2500" "retry: rejects are empty, the target holds every row"
tap_is "$(q "SELECT high_watermark FROM etl_stream.tables WHERE name = 'bv_q'")" "$wm_before" "retry: the watermark did not move"

# --- registration ------------------------------------------------------------
bad_policy=$(db -qc "SELECT etl_stream.alter_table('bv_q', on_bad_value => 'ignore')" 2>&1 || true)
tap_ok "on_bad_value is checked at registration" grep -q 'invalid on_bad_value "ignore"' <<<"$bad_policy"
tap_is "$(q "SELECT (etl_stream.alter_table('bv_q', on_bad_value => 'skip')).on_bad_value")" "skip" "alter_table changes on_bad_value"

# --- gbk -------------------------------------------------------------------
tap_is "$(mysql_etl -N etl_test -e "SELECT name FROM bv_gbk WHERE id = 2")" "a?b" \
	"gbk: MariaDB itself sends the unmappable pair as '?'"
db -q >/dev/null <<'SQL'
SELECT etl_stream.add_table('bv_gbk', server => 'src', source_table => 'bv_gbk', watermark => 'updated_at');
SELECT etl_stream.create_target('bv_gbk');
SQL
tap_is "$(q "SELECT status, error_key, error_column, error_mysql_type, error_value, sqlstate FROM etl_stream.sync('bv_gbk')" 2>/dev/null)" \
	'failed|(id)=(2)|name|VARCHAR CHARACTER SET gbk|a\xaa\xa1b|22P05' \
	"gbk: an unmappable character is an error naming key, column, charset and bytes"
tap_is "$(q "SELECT message FROM etl_stream.runs WHERE table_name = 'bv_gbk'")" \
	'character with byte sequence 0xaa 0xa1 in encoding "GBK" has no equivalent in encoding "UTF8"' \
	"gbk: the error is PostgreSQL's conversion's"
db -qc "SELECT etl_stream.alter_table('bv_gbk', on_bad_value => 'quarantine')" >/dev/null
tap_is "$(q "SELECT status, rows_landed, rows_rejected FROM etl_stream.sync('bv_gbk')" 2>/dev/null)" "success|2|1" \
	"gbk: with quarantine the other rows land"
tap_is "$(q "SELECT string_agg(format('%s:%s:%s', id, name, note), ' ' ORDER BY id) FROM bv_gbk")" \
	"1:中文测试:你好，世界 3:繁體與简体:" "gbk: Chinese text arrives exact"
tap_is "$(q "SELECT key, column_name, value, sqlstate FROM etl_stream.rejects WHERE table_name = 'bv_gbk'")" \
	'{"id": "2"}|name|a\xaa\xa1b|22P05' "gbk: the unmappable row is in rejects, its bytes hex-escaped"
tap_ok "gbk: the column is selected as bytes" \
	grep -q 'CAST(`name` AS BINARY) AS `name`' <<<"$(q "SELECT * FROM etl_stream.explain('bv_gbk')")"
db -q >/dev/null <<'SQL'
CREATE TABLE bv_gbk_key (code varchar(10) PRIMARY KEY, qty smallint NOT NULL);
SELECT etl_stream.add_table('bv_gbk_key', server => 'src', source_table => 'bv_gbk_key',
                            strategy => 'full_refresh', on_bad_value => 'quarantine');
SQL
tap_is "$(q "SELECT status, rows_landed, rows_rejected FROM etl_stream.sync('bv_gbk_key')" 2>/dev/null)" "success|1|1" \
	"gbk key: the good row lands, the bad one is rejected"
tap_is "$(q "SELECT key, key_text FROM etl_stream.rejects WHERE table_name = 'bv_gbk_key'")" \
	'{"code": {"hex": "d6d0"}}|(code)=(\xd6\xd0)' "gbk key: the key's bytes are kept as hex"
db -qc "ALTER TABLE bv_gbk_key ALTER COLUMN qty TYPE integer"
tap_is "$(q "SELECT status, rows_pulled, rows_landed FROM etl_stream.retry_rejects('bv_gbk_key')")" "success|1|1" \
	"gbk key: retry_rejects fetches the row again by its bytes"
tap_is "$(q "SELECT string_agg(code || '=' || qty, ',' ORDER BY qty) FROM bv_gbk_key")|$(q "SELECT count(*) FROM etl_stream.rejects WHERE table_name = 'bv_gbk_key'")" \
	"文=1,中=40000|0" "gbk key: the row is in, its reject gone"

# --- an invalid date in a NOT NULL column: 'null' would make a row the
# source could never hold, so it is a bad value, kept aside by quarantine
mysql_root etl_test -e "SET sql_mode = ''; CREATE TABLE bv_notnull (id INT PRIMARY KEY, d DATE NOT NULL, v INT NOT NULL);
	INSERT INTO bv_notnull VALUES (1, '2024-01-01', 1), (2, '0000-00-00', 2), (3, '2024-01-03', 3)"
db -q >/dev/null <<'SQL'
SELECT etl_stream.add_table('bv_notnull', server => 'src', source_table => 'bv_notnull', watermark => 'v',
                            on_bad_value => 'quarantine');
SELECT etl_stream.create_target('bv_notnull');
SQL
tap_is "$(q "SELECT status, rows_landed, rows_rejected FROM etl_stream.sync('bv_notnull')" 2>/dev/null)" "success|2|1" \
	"NOT NULL date: the good rows land, the zero date's row is rejected rather than made NULL"
tap_is "$(q "SELECT key_text, column_name, value, sqlstate FROM etl_stream.rejects WHERE table_name = 'bv_notnull'")" \
	"(id)=(2)|d|0000-00-00|23502" "NOT NULL date: its reject names the key, column and value, as a not-null violation"
