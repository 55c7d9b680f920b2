# bench/lib.sh - what bench/run and bench/ab share: the servers' settings,
# the generated data, and measuring a statement in a fresh session.
#
# Source it after test/lib.sh.  The callers set WORK (a scratch directory)
# and, before measuring, start the servers; psql_b works in database
# BENCH_DB (default bench).

BENCH="$ETL_ROOT/bench"
BENCH_DB=${BENCH_DB:-bench}
CHANGE_UPDATES=4000 CHANGE_INSERTS=1000

# PostgreSQL settings for bulk loads on a 2-core / 24 GiB box; later lines
# override test/lib.sh's (fsync is on again: a benchmark pays for durability
# like a real warehouse).  Explained in docs/benchmark.md.
BENCH_PG_SETTINGS="fsync = on
shared_buffers = 2GB
max_wal_size = 8GB
min_wal_size = 1GB
checkpoint_timeout = 30min
wal_level = minimal
max_wal_senders = 0
maintenance_work_mem = 512MB
autovacuum = off
jit = off
timezone = 'UTC'"
# MariaDB: a 4 GB buffer pool holds every table; files for COPY are written
# by SELECT ... INTO OUTFILE into the dump dir only.
MARIADB_ARGS=(--innodb-buffer-pool-size=4G --innodb-log-file-size=1G --max-allowed-packet=256M)

# a - b for the decimal seconds of date +%s.%N (bc is not always installed)
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a - b }'; }

# The session time zone is UTC on both sides, so TIMESTAMP text means the
# same thing to every loader.
mysql_src() { mysql_etl --init-command="SET time_zone = '+00:00'" "$@"; }
psql_b() { pg_psql -d "$BENCH_DB" "$@"; }
# NOTICEs ("does not exist, skipping") are noise here; warnings still show.
export PGOPTIONS="-c client_min_messages=warning"

# The narrow table: 8 columns, ~80 bytes per row as text.  Also the shape of
# the incremental targets (inc_small, inc_large).
tracking_sql() {
	local table="$1" rows="$2"
	cat <<SQL
DROP TABLE IF EXISTS $table;
CREATE TABLE $table (
  tracking_id BIGINT UNSIGNED NOT NULL,
  order_id INT UNSIGNED NOT NULL,
  event_type VARCHAR(32) NOT NULL,
  status TINYINT NOT NULL,
  location VARCHAR(64),
  note VARCHAR(128),
  created_at DATETIME NOT NULL,
  update_time INT UNSIGNED NOT NULL,
  PRIMARY KEY (tracking_id),
  KEY idx_order_id (order_id),
  KEY idx_update_time (update_time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO $table
SELECT seq, 1 + seq DIV 7,
  ELT(1 + seq % 6, 'created', 'paid', 'picked', 'shipped', 'in_transit', 'delivered'),
  seq % 5,
  IF(seq % 9 = 0, NULL, ELT(1 + (seq * 7919) % 8, 'Shenzhen hub', 'Hangzhou DC', 'Nanjing sorting center',
     'Frankfurt', 'Shanghai Pudong airport', 'Guangzhou', 'Beijing Shunyi', 'Chengdu')),
  IF(seq % 4 = 0, NULL, CONCAT('scanned by ', ELT(1 + seq % 5, 'courier', 'station', 'hub', 'customs', 'locker'),
     ' #', (seq * 104729) % 100000)),
  FROM_UNIXTIME(1704067200 + seq * 6),
  1704067200 + seq * 6 + (seq * 7919) % 60
FROM seq_1_to_$rows;
SQL
}

checkpoint() { psql_b -qc CHECKPOINT; }


# Peak private memory: RssAnon of a pid, sampled every 50 ms until it exits.
# VmHWM (read by the backend itself) also counts the shared buffers the
# backend touched, which grows with the data written, not with what it keeps.
sample_anon() {
	local pid="$1" out="$2" max=0 k v
	while [ -e "/proc/$pid" ]; do
		while read -r k v _; do
			if [ "$k" = RssAnon: ]; then
				[ "$v" -gt "$max" ] && max=$v
				break
			fi
		done <"/proc/$pid/status" 2>/dev/null || break
		sleep 0.05
	done
	echo "$max" >"$out"
}

MEMSQL="SELECT 'mem', substring(s from 'VmHWM:\s+(\d+)'), substring(s from 'RssAnon:\s+(\d+)') FROM pg_read_file('/proc/self/status') s"

# cpu_sql LABEL: the backend's own CPU seconds so far (user + system, from
# /proc/self/stat: utime and stime are its 14th and 15th fields, in ticks)
cpu_sql() {
	echo "SELECT '$1', (f[12]::bigint + f[13]::bigint) / $(getconf CLK_TCK).0
	        FROM (SELECT string_to_array(split_part(pg_read_file('/proc/self/stat'), ') ', 2), ' ') AS f) s"
}
# pg_measure SQL: run SQL in a fresh session; sets M_SECS (server clock
# around the statement), M_T0 (its start, epoch seconds), M_CPU (the
# backend's CPU seconds in it), M_WAL (bytes of WAL the whole server wrote
# meanwhile), M_HWM0/M_HWM (VmHWM at start/end, kB), M_ANON0 and M_ANON
# (RssAnon at start and sampled peak, kB), M_OUT (SQL's own output lines).
# Returns psql's status.
pg_measure() {
	local sql="$1" pidf="$WORK/backend.pid" out="$WORK/measure.out" peak="$WORK/anon.peak" rc=0 bpid="" i
	rm -f "$pidf" "$peak"
	psql_b -At -F, >"$out" 2>"$WORK/measure.err" <<SQL &
\\o $pidf
SELECT pg_backend_pid();
\\o
$MEMSQL;
$(cpu_sql c0);
SELECT 't0', extract(epoch FROM clock_timestamp()), pg_current_wal_insert_lsn();
$sql;
SELECT 't1', extract(epoch FROM clock_timestamp()), pg_current_wal_insert_lsn();
$(cpu_sql c1);
$MEMSQL;
SQL
	local ppid=$!
	for ((i = 0; i < 200; i++)); do
		bpid="$(cat "$pidf" 2>/dev/null | tr -dc 0-9)" || true
		[ -n "$bpid" ] && break
		kill -0 "$ppid" 2>/dev/null || break
		sleep 0.02
	done
	SAMPLER_PID=""
	if [ -n "$bpid" ]; then
		sample_anon "$bpid" "$peak" &
		SAMPLER_PID=$!
	fi
	wait "$ppid" || rc=$?
	if [ -n "$SAMPLER_PID" ]; then wait "$SAMPLER_PID" || true; fi
	SAMPLER_PID=""
	local mem0 mem1 t0 t1 c0 c1
	mem0="$(grep '^mem,' "$out" | head -n 1)" || true
	mem1="$(grep '^mem,' "$out" | tail -n 1)" || true
	t0="$(grep '^t0,' "$out" | cut -d, -f2)" || true
	t1="$(grep '^t1,' "$out" | cut -d, -f2)" || true
	M_T0="$t0" M_WAL=""
	local l0 l1
	l0="$(grep '^t0,' "$out" | cut -d, -f3)" || true
	l1="$(grep '^t1,' "$out" | cut -d, -f3)" || true
	if [ -n "$l0" ] && [ -n "$l1" ]; then
		M_WAL="$(psql_b -At -c "SELECT pg_wal_lsn_diff('$l1', '$l0')")" || M_WAL=""
	fi
	M_HWM0="$(echo "$mem0" | cut -d, -f2)"
	M_ANON0="$(echo "$mem0" | cut -d, -f3)"
	M_HWM="$(echo "$mem1" | cut -d, -f2)"
	M_ANON="$(cat "$peak" 2>/dev/null || echo "")"
	M_SECS=""
	if [ -n "$t0" ] && [ -n "$t1" ]; then M_SECS="$(minus "$t1" "$t0")"; fi
	c0="$(grep '^c0,' "$out" | cut -d, -f2)" || true
	c1="$(grep '^c1,' "$out" | cut -d, -f2)" || true
	M_CPU=""
	if [ -n "$c0" ] && [ -n "$c1" ]; then M_CPU="$(minus "$c1" "$c0")"; fi
	M_OUT="$(grep -v -e '^mem,' -e '^t[01],' -e '^c[01],' "$out" || true)"
	if [ "$rc" -ne 0 ]; then
		M_ERR="$(tr '\n,' '  ' <"$WORK/measure.err" | cut -c1-300)"
		log "  failed: $M_ERR"
	fi
	return "$rc"
}

# A fresh table for the peers: kind = unlogged | unlogged_t8160 | logged_pk |
# logged_pk_t8160.  The unlogged ones are like etl_stream's staging tables:
# the target's column types, no constraints, no indexes, not even NOT NULL
# (land() refuses tables with constraints).  "logged_pk" is the kind of table
# create_target makes (primary key, index on the watermark); LIKE copies it.
fresh_table() {
	local name="$1" like="$2" kind="$3" sql
	case "$kind" in
		unlogged) sql="CREATE UNLOGGED TABLE $name WITH (autovacuum_enabled = off) AS TABLE $like WITH NO DATA" ;;
		unlogged_t8160) sql="CREATE UNLOGGED TABLE $name WITH (autovacuum_enabled = off, toast_tuple_target = 8160) AS TABLE $like WITH NO DATA" ;;
		# as a sync makes its staging table (etl_stream._prepare_staging)
		staging) sql="CREATE UNLOGGED TABLE $name WITH (autovacuum_enabled = off, toast_tuple_target = 8160) AS TABLE $like WITH NO DATA;
			SELECT format('ALTER TABLE $name %s', string_agg(format('ALTER COLUMN %I SET STORAGE EXTERNAL', attname), ', '))
			  FROM pg_attribute WHERE attrelid = '$name'::regclass AND attnum > 0 AND attstorage IN ('x', 'm') \\gexec" ;;
		logged_pk) sql="CREATE TABLE $name (LIKE $like INCLUDING ALL)" ;;
		logged_pk_t8160) sql="CREATE TABLE $name (LIKE $like INCLUDING ALL) WITH (toast_tuple_target = 8160)" ;;
	esac
	printf '%s;\n%s\n' "DROP TABLE IF EXISTS $name" "$sql" | psql_b -q -v ON_ERROR_STOP=1 >/dev/null
}


# A change of 4,000 updates and 1,000 new keys, all with a newer
# update_time: apply_change TABLE ROWS ROUND
apply_change() {
	local table="$1" rows="$2" rep="$3" hi step
	hi=$(mysql_root -N shop -e "SELECT MAX(update_time) FROM $table")
	step=$((rows / CHANGE_UPDATES))
	mysql_root shop <<SQL
UPDATE $table SET status = (status + 1) % 5, note = CONCAT('changed in round $rep'),
                  update_time = $hi + 1 + tracking_id DIV $step % $CHANGE_UPDATES
 WHERE tracking_id % $step = $rep % $step AND tracking_id <= $rows;
INSERT INTO $table
SELECT $rows + ($rep - 1) * $CHANGE_INSERTS + seq, 1 + seq DIV 7, 'created', 0, 'Shenzhen hub',
       CONCAT('new in round $rep'), FROM_UNIXTIME(1704067200 + seq), $hi + $CHANGE_UPDATES + 1 + seq
  FROM seq_1_to_$CHANGE_INSERTS;
SQL
}

# (Re-)register a table and make a fresh target: the state before a first
# sync.  register NAME SOURCE [compress]: compress makes the target with
# create_target(compress => true), PostgreSQL's default storage.
register() {
	local name="$1" source="$2" compress=false
	[ "${3:-}" = compress ] && compress=true
	psql_b -q >/dev/null <<SQL
SELECT etl_stream.drop_table(name, drop_target => true) FROM etl_stream.tables WHERE name = '$name';
SELECT etl_stream.add_table('$name', server => 'src', source_table => '$source',
                            watermark => 'update_time', strategy => 'merge');
SELECT etl_stream.create_target('$name', compress => $compress);
SQL
}

# The wide change the users suffered from: 5,398 rows of the 166-column
# table, 4,398 orders moving on (status columns, a note, update_time) and
# 1,000 new ones (copies of the first orders under new keys), all with a
# newer update_time: apply_wide_change TABLE ROWS ROUND.  ROUND keeps the
# keys of every round new.
WIDE_UPDATES=4398 WIDE_INSERTS=1000
apply_wide_change() {
	local table="$1" rows="$2" rep="$3" step
	step=$((rows / WIDE_UPDATES))
	mysql_root shop <<SQL
SET @hi = (SELECT MAX(update_time) FROM $table);
UPDATE $table SET order_status = (order_status + 1) % 6, shipping_status = (shipping_status + 1) % 5,
                  pay_status = 2, to_buyer = CONCAT('changed in round $rep'),
                  update_time = @hi + 1 + order_id % $WIDE_UPDATES
 WHERE order_id % $step = $rep % $step AND order_id <= $rows
 ORDER BY order_id LIMIT $WIDE_UPDATES;
CREATE TEMPORARY TABLE wide_new AS SELECT * FROM $table WHERE order_id <= $WIDE_INSERTS;
UPDATE wide_new SET order_id = $rows + ($rep - 1) * $WIDE_INSERTS + order_id,
                    order_sn = CONCAT('N$rep-', order_id), order_status = 0,
                    update_time = @hi + $WIDE_UPDATES + 1 + order_id;
INSERT INTO $table SELECT * FROM wide_new;
DROP TEMPORARY TABLE wide_new;
SQL
}

# sample_workers PM OUT: until the file OUT.stop exists, every 100 ms, the
# RssAnon of each child of postmaster PM whose title says it is an
# etl_stream worker running a job.  A job's last worker ANALYZEs the target
# (its title says ANALYZE then): that is PostgreSQL's ANALYZE, the same any
# session running it pays, so it is kept apart.  Writes "pid slices_kB
# analyze_kB" lines to OUT (peaks; 0: not seen in that phase).
sample_workers() {
	local pm="$1" out="$2" pid k v title
	declare -A peak=() apeak=()
	while [ ! -e "$out.stop" ]; do
		for pid in $(cat "/proc/$pm/task/$pm/children" 2>/dev/null); do
			title="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || continue
			case "$title" in *"etl_stream worker: job"*) ;; *) continue ;; esac
			while read -r k v _; do
				if [ "$k" = RssAnon: ]; then
					case "$title" in
						*ANALYZE*) [ "$v" -gt "${apeak[$pid]:-0}" ] && apeak[$pid]=$v ;;
						*) [ "$v" -gt "${peak[$pid]:-0}" ] && peak[$pid]=$v ;;
					esac
					break
				fi
			done 2>/dev/null <"/proc/$pid/status" || true
		done
		sleep 0.1
	done
	: >"$out"
	for pid in $(printf '%s\n' "${!peak[@]}" "${!apeak[@]}" | sort -u); do
		echo "$pid ${peak[$pid]:-0} ${apeak[$pid]:-0}" >>"$out"
	done
}
