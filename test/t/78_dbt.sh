#!/usr/bin/env bash
# The dbt pattern of docs/dbt.md, without dbt (not installable here): the
# SQL its macros and its source freshness check render to, in the
# transactions dbt-postgres runs them in (psycopg2 without autocommit).
# The sync step commits each run before it judges it, so a failed run's
# record stays; freshness follows last_success; an incremental aggregate
# rebuilt for the literal days the last sync touched equals a full
# recompute after rounds of updates, new rows and late rows.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

DB=t_dbt
cleanup() {
	local -
	set +e
	pg_psql -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
	mysql_root etl_test -e "DROP TABLE IF EXISTS dbt_events" >/dev/null 2>&1
}
trap cleanup EXIT
cleanup
db() { pg_psql -d "$DB" "$@"; }
my() { mysql_root etl_test -e "$1"; }

# 2,000 events over 20 days of 5 companies; update_time counts up
my "CREATE TABLE dbt_events (id INT PRIMARY KEY, company_id INT NOT NULL, day DATE NOT NULL,
                             events INT NOT NULL, update_time INT NOT NULL);
    INSERT INTO dbt_events SELECT seq, seq % 5, '2026-11-01' + INTERVAL (seq % 20) DAY, seq % 7, 1000 + seq
      FROM seq_1_to_2000;"
create_test_db "$DB"
db -q >/dev/null <<'SQL'
SELECT etl_stream.add_table('fact_events', server => 'src', source_table => 'dbt_events',
                            watermark => 'update_time');
SELECT etl_stream.create_target('fact_events');
SQL

# macro etl_sync: the sync, committed, then judged
etl_sync() {
	db -qAtF'|' -v ON_ERROR_STOP=1 <<SQL
BEGIN;
select status, coalesce(error, '') as error from etl_stream.sync('$1');
commit;
SQL
}
# source freshness, as dbt renders it for loaded_at_field last_success
freshness() {
	db -Atc "select max(last_success) as max_loaded_at, current_timestamp as snapshotted_at
	           from \"$DB\".\"etl_stream\".\"status\" where name = '$1'" | cut -d'|' -f1
}
# macro etl_touched_days
touched_days() {
	db -Atc "select coalesce(string_agg(quote_literal(d::text), ', ' order by d), '')
	           from (select distinct day as d from fact_events
	                  where update_time >= (select cutoff from etl_stream.runs
	                                         where table_name = 'fact_events' and status = 'success'
	                                         order by run_id desc limit 1)::bigint) days"
}
model_sql="select company_id, day, sum(events) as events from fact_events"
# the model, incremental, with dbt's delete+insert on (company_id, day)
build_incremental() {
	db -q -v ON_ERROR_STOP=1 <<SQL
BEGIN;
create temporary table agg__dbt_tmp as ($model_sql where day in (${1:-null}) group by 1, 2);
delete from agg_company_daily using agg__dbt_tmp
 where (agg__dbt_tmp.company_id = agg_company_daily.company_id)
   and (agg__dbt_tmp.day = agg_company_daily.day);
insert into agg_company_daily (company_id, day, events) (select company_id, day, events from agg__dbt_tmp);
commit;
SQL
}
differs_from_full() {
	db -Atc "select count(*) from (
	           (($model_sql group by 1, 2) except table agg_company_daily)
	           union all (table agg_company_daily except ($model_sql group by 1, 2))) d"
}

# --- the first sync and the first (full) build ---------------------------
tap_is "$(etl_sync fact_events)" "success|" "the sync step: success, committed"
tap_is "$(freshness fact_events)" "$(db -Atc "SELECT max(finished_at) FROM etl_stream.runs WHERE table_name = 'fact_events' AND status = 'success'")" \
	"freshness: max_loaded_at is the end of the last successful run"
db -qc "create table agg_company_daily as ($model_sql group by 1, 2)"
tap_is "$(differs_from_full)" 0 "the first build is the full aggregate"

# --- three rounds of changes ------------------------------------------------
round() {
	local n="$1" since expect got
	since=$(mysql_root -N etl_test -e "SELECT MAX(update_time) + 1 FROM dbt_events")
	# updates on two days, late rows on an old day, new rows on a new day
	my "UPDATE dbt_events SET events = events + $n, update_time = $since + id WHERE day IN ('2026-11-0$((n + 2))', '2026-11-1$n') AND id % 3 = 0;
	    INSERT INTO dbt_events SELECT 10000 * $n + seq, seq % 5, '2026-11-0$n', 100, $since + 5000 + seq FROM seq_1_to_40;
	    INSERT INTO dbt_events SELECT 10000 * $n + 100 + seq, seq % 5, '2026-11-2' + INTERVAL $n DAY, 1, $since + 6000 + seq FROM seq_1_to_40;"
	tap_is "$(etl_sync fact_events)" "success|" "round $n: the sync step succeeds"
	expect=$(mysql_root -N etl_test -e "SELECT GROUP_CONCAT(QUOTE(d) ORDER BY d SEPARATOR ', ')
	                                      FROM (SELECT DISTINCT day AS d FROM dbt_events WHERE update_time >= $((since - 1))) x")
	got=$(touched_days)
	tap_is "$got" "$expect" "round $n: the days rendered as literals are those of the rows the sync pulled (from the old watermark on)"
	build_incremental "$got"
	tap_is "$(differs_from_full)" 0 "round $n: the incremental aggregate equals a full recompute"
}
round 1
round 2
round 3

# --- a failed sync: the record stays, the step fails, freshness stands still
before=$(freshness fact_events)
db -qc "ALTER USER MAPPING FOR CURRENT_USER SERVER src OPTIONS (SET password 'wrong')"
res=$(etl_sync fact_events)
tap_ok "the sync step returns the failed run and its error (the macro raises on it)" \
	grep -q '^failed|could not connect to MySQL server "src"' <<<"$res"
tap_is "$(db -Atc "SELECT count(*) FROM etl_stream.runs WHERE table_name = 'fact_events' AND status = 'failed'")" 1 \
	"the failed run's record was committed"
tap_is "$(freshness fact_events)" "$before" "freshness still shows the last success"
tap_is "$(db -Atc "SELECT last_status FROM etl_stream.status WHERE name = 'fact_events'")" failed \
	"etl_stream.status says the last run failed"
