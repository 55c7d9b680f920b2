#!/usr/bin/env bash
# bench/chart.sh RESULT.csv: the headline figures of one benchmark run as a
# chart, RESULT.png and RESULT.svg beside the tables (gnuplot, from
# Debian's gnuplot-nox).  RESULT.csv is the medians file bench/summarize.pl
# writes.  Two panels, one per table, each bar a way of loading that
# table into PostgreSQL: seconds, lower is better, etl_stream's bars dark.
set -euo pipefail
csv="$1"
base="${csv%.csv}"
[ -s "$csv" ] || { echo "chart.sh: no such file: $csv" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "chart.sh: gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# measure,label,ours: in the order they are drawn, top to bottom
measures='a_read|source read (mariadb --quick, no write)|0
f_land|etl_stream.land into staging|1
f_sync|etl_stream.sync, initial (defaults)|1
b_copy_unlogged_t8160|COPY FROM file, unlogged (8160)|0
b_copy_unlogged|COPY FROM file, unlogged|0
f_copy_logged_pk|COPY FROM file, logged, with PK|0
d_fdw_logged_pk|mysql_fdw INSERT SELECT, logged, PK|0
e_pgloader_default|pgloader, defaults|0
e_pgloader_tuned|pgloader, tuned|0'

# one data file per table: index, label, seconds (or NaN), ours, text
for table in ecs_order_info ecs_tracking; do
	i=0
	while IFS='|' read -r m label ours; do
		line=$(awk -F, -v m="$m" -v t="$table" '$1 == m && $2 == t { print; exit }' "$csv")
		[ -n "$line" ] || continue
		status=$(cut -d, -f3 <<<"$line")
		secs=$(cut -d, -f5 <<<"$line")
		if [ "$status" = ok ]; then
			text=$(printf '%.1f s' "$secs")
		else
			text="failed: $(cut -d, -f21- <<<"$line" | sed 's/;$//')"
			secs=0
		fi
		printf '%d\t"%s"\t%s\t%s\t"%s"\n' "$i" "$label" "$secs" "$ours" "$text"
		i=$((i + 1))
	done <<<"$measures" >"$tmp/$table.dat"
done
rows() { awk -F, -v t="$1" '$2 == t && $8 != "" { print $8; exit }' "$csv"; }
when=$(basename "$base")

plot() {
	cat <<GP
set datafile separator "\t"
set termoption noenhanced
set style fill solid 0.9 border -1
set boxwidth 0.7
set yrange [:] reverse
set offsets 0, graph 0.15, 0.6, 0.6
set grid x
set xlabel "seconds (median), lower is better"
set ytics scale 0
unset key
set multiplot layout 1,2 title "etl_stream benchmark $when: loading a MySQL table into PostgreSQL 15 (2 cores)"
set title "ecs_order_info: $(rows ecs_order_info) rows x 166 columns"
set xrange [0:*]
plot "$tmp/ecs_order_info.dat" using (\$3/2):1:(\$3/2):(0.35):(\$4 > 0 ? 0x1f4e79 : 0x9dc3e6):ytic(2) with boxxyerror lc rgb variable, \
     "" using 3:1:5 with labels left offset 0.5,0
set title "ecs_tracking: $(rows ecs_tracking) rows x 8 columns"
plot "$tmp/ecs_tracking.dat" using (\$3/2):1:(\$3/2):(0.35):(\$4 > 0 ? 0x1f4e79 : 0x9dc3e6):ytic(2) with boxxyerror lc rgb variable, \
     "" using 3:1:5 with labels left offset 0.5,0
unset multiplot
GP
}
{ echo 'set terminal pngcairo size 1600,520 font "DejaVu Sans,10"'; echo "set output '$base.png'"; plot; } | gnuplot
{ echo 'set terminal svg size 1600,520 font "DejaVu Sans,10" dynamic'; echo "set output '$base.svg'"; plot; } | gnuplot
echo "written: $base.png, $base.svg" >&2
