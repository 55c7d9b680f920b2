#!/usr/bin/perl
# bench/summarize.pl RAW.csv META.csv OUT - medians, rates and the issue's
# ratios from bench/run's raw measurements.  Prints the report and writes it
# to OUT.md; the medians go to OUT.csv.
use strict;
use warnings;

my ($raw, $meta, $out) = @ARGV;
die "usage: $0 RAW.csv META.csv OUT\n" unless $out;

my (%meta, %size, @inc, @winc);
open my $mf, '<', $meta or die "$meta: $!\n";
while (<$mf>) {
	chomp;
	my ($k, @v) = split /,/, $_, -1;
	if ($k eq 'size') { $size{$v[0]} = { rows => $v[1], cols => $v[2], bytes => $v[3] }; }
	elsif ($k eq 'inc') { @inc = @v; }
	elsif ($k eq 'winc') { @winc = @v; }
	else { $meta{$k} = join ',', @v; }
}
close $mf;

my @measures = (
	[a_read => 'a. source read: `mariadb --quick -N -e "SELECT *" > /dev/null`'],
	[b_copy_unlogged => 'b. COPY FROM file, unlogged, default storage'],
	[b_copy_unlogged_t8160 => 'b. COPY FROM file, unlogged, toast_tuple_target=8160'],
	[c_pipe => 'c. shell pipe `mariadb --quick | psql COPY FROM STDIN`, unlogged'],
	[d_fdw_unlogged => 'd. mysql_fdw `INSERT INTO unlogged SELECT * FROM foreign`'],
	[d_fdw_logged_pk => 'd. mysql_fdw into a logged table with PK (default storage)'],
	[d_fdw_logged_pk_t8160 => 'd. mysql_fdw into a logged table with PK, toast_tuple_target=8160'],
	[e_pgloader_default => 'e. pgloader, default settings'],
	[e_pgloader_tuned => 'e. pgloader, workers=2, batch/prefetch rows=5000'],
	[f_land => 'f. etl_stream.land into staging as a sync makes it (unlogged, toast_tuple_target=8160, no compression)'],
	[f_land_default => 'f. etl_stream.land into an unlogged table with default storage'],
	[f_copy_logged_pk => 'f. COPY FROM file into a logged table with PK (default storage)'],
	[f_copy_logged_pk_t8160 => 'f. COPY FROM file into a logged table with PK, toast_tuple_target=8160'],
	[f_sync => 'f. etl_stream.sync, initial, into create_target\'s table (logged, PK, toast_tuple_target=8160), ANALYZE deferred to a worker (the defaults)'],
	[f_sync_inrun => 'f. the same with etl_stream.deferred_analyze = off (ANALYZE inside the run)'],
	[f_sync_noanalyze => 'f. the same with etl_stream.analyze_threshold = -1 (statistics left to autovacuum)'],
	[f_sync_compressed => 'f. the same as the defaults into create_target(compress => true)\'s table (default storage)'],
	[i_verify => 'i. etl_stream.verify of the synced target: ~100 slices of `update_time`, count and checksum computed by each engine'],
	[h_backfill_w1 => 'h. etl_stream.backfill, 16 slices, 1 worker, until job_wait returns'],
	[h_backfill_w2 => 'h. the same, 2 workers'],
	[h_backfill_w4 => 'h. the same, 4 workers'],
	[g_initial_sync => 'g. initial sync that builds the incremental target (1 run)'],
	[g_incremental => 'g. incremental sync of the change'],
	[g_wide_incremental => 'g. incremental sync of the wide change, in the foreground'],
	[g_wide_incremental_worker => 'g. the same in a worker: sync_all(parallel => 2), only this table enabled'],
);
my %label = map { $_->[0] => $_->[1] } @measures;

# raw: measure,table,rep,status,seconds,rows,hwm0_kb,hwm_kb,anon0_kb,anon_peak_kb,rss_kb,pull_s,merge_s,finish_s,note
my %runs;
open my $rf, '<', $raw or die "$raw: $!\n";
my $hdr = <$rf>;
chomp $hdr;
my @f = split /,/, $hdr;
while (<$rf>) {
	chomp;
	my @v = split /,/, $_, -1;
	my %r;
	@r{@f} = @v;
	$r{$_} //= '' for @f;    # lines without the later columns
	push @{ $runs{"$r{measure}|$r{table}"} }, \%r;
}
close $rf;

sub median {
	my @x = sort { $a <=> $b } grep { defined && $_ ne '' } @_;
	return undef unless @x;
	return @x % 2 ? $x[$#x / 2] : ($x[@x / 2 - 1] + $x[@x / 2]) / 2;
}

my %s;    # measure|table => summary
for my $key (keys %runs) {
	my ($m, $t) = split /\|/, $key;
	my @all = @{ $runs{$key} };
	my @ok = grep { $_->{status} eq 'ok' } @all;
	my %x = (measure => $m, table => $t, n => scalar @ok, tries => scalar @all);
	if (!@ok) {
		my $bad = $all[0];
		%x = (%x, status => $bad->{status}, note => $bad->{note}, secs => $bad->{seconds},
			rss_mb => $bad->{rss_kb} ne '' ? $bad->{rss_kb} / 1024 : undef);
	} else {
		my @secs = map { $_->{seconds} } @ok;
		%x = (%x, status => 'ok', note => $ok[-1]{note},
			secs => median(@secs),
			min => (sort { $a <=> $b } @secs)[0], max => (sort { $b <=> $a } @secs)[0],
			rows => $ok[0]{rows},
			pull => median(map { $_->{pull_s} } @ok),
			merge => median(map { $_->{merge_s} } @ok),
			finish => median(map { $_->{finish_s} } @ok),
			hwm_mb => median(map { $_->{hwm_kb} ne '' && $_->{hwm0_kb} ne '' ? ($_->{hwm_kb} - $_->{hwm0_kb}) / 1024 : '' } @ok),
			hwm_abs_mb => median(map { $_->{hwm_kb} ne '' ? $_->{hwm_kb} / 1024 : '' } @ok),
			anon_mb => median(map { $_->{anon_peak_kb} ne '' && $_->{anon0_kb} ne '' ? ($_->{anon_peak_kb} - $_->{anon0_kb}) / 1024 : '' } @ok),
			idle_hwm_mb => median(map { $_->{hwm0_kb} ne '' ? $_->{hwm0_kb} / 1024 : '' } @ok),
			rss_mb => median(map { $_->{rss_kb} ne '' ? $_->{rss_kb} / 1024 : '' } @ok),
			wal_mb => median(map { $_->{wal_bytes} ne '' ? $_->{wal_bytes} / 1048576 : '' } @ok),
			stats => median(map { $_->{stats_s} } @ok),
			size_mb => median(map { $_->{size_mb} } @ok),
			worker_mb => median(map { $_->{worker_anon_kb} ne '' ? $_->{worker_anon_kb} / 1024 : '' } @ok),
			worker_max_mb => maxof(map { $_->{worker_anon_kb} ne '' ? $_->{worker_anon_kb} / 1024 : undef } @ok),
			workers_seen => median(map { $_->{workers_seen} } @ok),
			analyze_mb => median(map { $_->{analyze_anon_kb} ne '' && $_->{analyze_anon_kb} > 0 ? $_->{analyze_anon_kb} / 1024 : '' } @ok));
		if ($size{$t} && $x{secs} > 0) {
			$x{rows_s} = $size{$t}{rows} / $x{secs};
			$x{mb_s} = $size{$t}{bytes} / 1048576 / $x{secs};
		} elsif ($x{secs} && $x{secs} > 0) {
			$x{rows_s} = $x{rows} / $x{secs};
		}
	}
	$s{$key} = \%x;
}

my @report;
sub say { push @report, join('', @_); }
sub fmt { my ($v, $d) = @_; return defined $v && $v ne '' ? sprintf("%.${d}f", $v) : '—'; }
sub big { my ($v) = @_; return '—' unless defined $v; my $x = sprintf('%.0f', $v); 1 while $x =~ s/^(\d+)(\d{3})/$1,$2/; return $x; }
sub get { my ($m, $t) = @_; my $x = $s{"$m|$t"}; return $x && $x->{status} eq 'ok' ? $x : undef; }
sub secs { my ($m, $t) = @_; my $x = get($m, $t); return $x ? $x->{secs} : undef; }
sub cell {
	my ($m, $t) = @_;
	my $x = $s{"$m|$t"};
	return '—' unless $x;
	if ($x->{status} ne 'ok') {
		my $what = $x->{note} || $x->{status};
		return sprintf('**failed** after %s s: %s%s', fmt($x->{secs}, 1), $what,
			defined $x->{rss_mb} ? sprintf(', %.0f MB RSS', $x->{rss_mb}) : '');
	}
	return sprintf('%s s', fmt($x->{secs}, $x->{secs} < 10 ? 3 : 2));
}

my $wide = 'ecs_order_info';
my $narrow = 'ecs_tracking';
my $mode = $meta{mode} // '?';

say "# etl_stream benchmark, $mode mode, $meta{date}";
say '';
say "Made by `bench/run" . ($mode eq 'quick' ? ' --quick' : '') . "`; what each measure means: [docs/benchmark.md](../../docs/benchmark.md).";
say '';
say "- machine: $meta{host}; load average at the end: $meta{load}";
say "- PostgreSQL $meta{postgres}, MariaDB $meta{mariadb}, mysql_fdw $meta{mysql_fdw}, pgloader $meta{pgloader}, etl_stream $meta{etl_stream}";
say "- every measure run $meta{reps} times on the same data; the median is shown (min–max in the CSV)";
for my $t ($wide, $narrow) {
	next unless $size{$t};
	say sprintf('- `%s`: %s rows × %d columns, %.1f MB as text (%d bytes/row)', $t, big($size{$t}{rows}),
		$size{$t}{cols}, $size{$t}{bytes} / 1048576, $size{$t}{bytes} / $size{$t}{rows});
}
say '- PostgreSQL settings: `' . join('`, `', grep { $_ ne '' } split /;/, $meta{pg_settings}) . '`';
say '';
say '## Seconds (median), rows/s and MB/s (MB of the table as text)';
say '';
say "| measure | $wide | rows/s | MB/s | $narrow | rows/s | MB/s |";
say '|---|---:|---:|---:|---:|---:|---:|';
for my $m (map { $_->[0] } @measures) {
	next if $m =~ /^g_/;
	next unless $s{"$m|$wide"} || $s{"$m|$narrow"};
	my @c = ($label{$m});
	for my $t ($wide, $narrow) {
		my $x = get($m, $t);
		push @c, cell($m, $t), $x ? big($x->{rows_s}) : '', $x && $x->{mb_s} ? fmt($x->{mb_s}, 1) : '';
	}
	say '| ', join(' | ', @c), ' |';
}
say '';
say '## Where a sync spends its time, and memory';
say '';
say 'pull = connect + land into staging, or straight into the empty target (an initial load); merge = the set-based';
say '`INSERT … ON CONFLICT` from staging into the target (nothing left to do after a direct load);';
say 'finish = watermark and ANALYZE (when it runs in the run). Memory is the PostgreSQL backend of the session that ran the measure (pgloader: its own process):';
say '"private" is the peak of RssAnon sampled every 50 ms, "VmHWM" the peak resident size, which also counts every shared buffer';
say 'the backend touched; both above the same session\'s idle value. WAL = what the whole server wrote during the measure;';
say '"statistics after" = from the start of the measure until the deferred ANALYZE had ended.';
say '';
say '| measure | table | s | pull s | merge s | finish s | statistics after, s | WAL MB | target MB | private peak above idle, MB | VmHWM above idle, MB | pgloader max RSS, MB |';
say '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
for my $m (map { $_->[0] } @measures) {
	for my $t ($wide, $narrow, 'inc_small', 'inc_large', 'wide_small', 'wide_large') {
		my $x = $s{"$m|$t"} or next;
		next unless $m =~ /^(d_|e_|f_land|f_sync|g_)/;
		my $ok = $x->{status} eq 'ok';
		say '| ', join(' | ', $label{$m}, "`$t`", $ok ? fmt($x->{secs}, 3) : cell($m, $t),
			$ok ? fmt($x->{pull}, 3) : '—', $ok ? fmt($x->{merge}, 3) : '—', $ok ? fmt($x->{finish}, 3) : '—',
			fmt($x->{stats}, 1), fmt($x->{wal_mb}, 0), fmt($x->{size_mb}, 0),
			fmt($x->{anon_mb}, 1), fmt($x->{hwm_mb}, 1), fmt($x->{rss_mb}, 0)), ' |';
	}
}
say '';

# ---- backfills -------------------------------------------------------------
if (grep { /^h_backfill/ } keys %s) {
	say '## Backfill by background workers, against the serial sync';
	say '';
	say 'A fresh `create_target` table each time; 16 slices of `update_time`; seconds from `backfill()` until `job_wait()` returns';
	say '(the job\'s ANALYZE, by its last worker, after that: "statistics after"). Speed-up = the serial initial sync (f, the defaults) ÷ the backfill.';
	say 'Worker memory = the largest RssAnon of any worker process while it ran slices, sampled every 100 ms (absolute, not above idle);';
	say 'the ANALYZE column is the last worker\'s peak while it ANALYZEd the target: PostgreSQL\'s ANALYZE, which costs any session that runs it as much';
	say '(f_sync_inrun\'s backend pays it inside the run).';
	say '';
	say '| table | workers | s | rows/s | speed-up against sync | statistics after, s | workers seen | worker private peak running slices, MB (median / max) | ANALYZE, MB |';
	say '|---|---:|---:|---:|---:|---:|---:|---:|---:|';
	for my $t ($wide, $narrow) {
		my $sync = get('f_sync', $t);
		say '| ', join(' | ', "`$t`", 'serial sync', $sync ? fmt($sync->{secs}, 2) : '—', $sync ? big($sync->{rows_s}) : '—',
			'1.00', $sync ? fmt($sync->{stats}, 1) : '—', '—', '—', '—'), ' |' if $sync;
		for my $w (1, 2, 4) {
			my $x = $s{"h_backfill_w$w|$t"} or next;
			if ($x->{status} ne 'ok') { say "| `$t` | $w | " . cell("h_backfill_w$w", $t) . ' | | | | | | |'; next; }
			say '| ', join(' | ', "`$t`", $w, fmt($x->{secs}, 2), big($x->{rows_s}),
				fmt(ratio($sync && $sync->{secs}, $x->{secs}), 2), fmt($x->{stats}, 1), fmt($x->{workers_seen}, 0),
				fmt($x->{worker_mb}, 1) . ' / ' . fmt($x->{worker_max_mb}, 1), fmt($x->{analyze_mb}, 1)), ' |';
		}
	}
	say '';
}

# ---- the issue's targets -------------------------------------------------
my @targets;
sub target {
	my ($what, $value, $op, $limit, $unit) = @_;
	if (!defined $limit) {
		push @targets, [$what, defined $value ? sprintf('%.2f%s', $value, $unit // '×') : '—', '—', 'for information'];
		return;
	}
	my $verdict = !defined $value ? 'not measured'
		: ($op eq '<=' ? $value <= $limit : $op eq '<' ? $value < $limit : $value >= $limit) ? 'holds' : '**does not hold**';
	push @targets, [$what, defined $value ? sprintf('%.2f%s', $value, $unit // '×') : '—', "$op $limit" . ($unit // '×'), $verdict];
}
sub ratio { my ($a, $b) = @_; return defined $a && defined $b && $b > 0 ? $a / $b : undef; }
sub minof { my @x = grep { defined } @_; return undef unless @x; my $m = shift @x; $_ < $m and $m = $_ for @x; return $m; }
sub maxof { my @x = grep { defined } @_; return undef unless @x; my $m = shift @x; $_ > $m and $m = $_ for @x; return $m; }

for my $t ($wide, $narrow) {
	next unless $size{$t};
	my $best_b = minof(secs('b_copy_unlogged', $t), secs('b_copy_unlogged_t8160', $t));
	my $ceiling = maxof(secs('a_read', $t), $best_b);
	target("`$t`: landing ÷ slower of (a) and the better (b)", ratio(secs('f_land', $t), $ceiling), '<=', 1.25);
	target("`$t`: landing into default storage ÷ the same", ratio(secs('f_land_default', $t), $ceiling))
		if get('f_land_default', $t);
	target("`$t`: mysql_fdw (unlogged) ÷ landing", ratio(secs('d_fdw_unlogged', $t), secs('f_land', $t)), '>=', $t eq $wide ? 3 : undef);
	my $pgl = minof(secs('e_pgloader_default', $t), secs('e_pgloader_tuned', $t));
	target("`$t`: pgloader (best that finished) ÷ landing", ratio($pgl, secs('f_land', $t)), '>=', $t eq $wide ? 4 : undef);
	# create_target's table has toast_tuple_target=8160 (the wide case's
	# peers get that kind of table too); the narrow one's rows are far below
	# the TOAST threshold, so its peers use the default storage.
	my ($copy_same, $fdw_same) = $t eq $wide ? ('f_copy_logged_pk_t8160', 'd_fdw_logged_pk_t8160') : ('f_copy_logged_pk', 'd_fdw_logged_pk');
	target("`$t`: whole initial sync (defaults) ÷ COPY FROM file into the same kind of table",
		ratio(secs('f_sync', $t), secs($copy_same, $t)), '<=', 1.25);
	target("`$t`: the same with the ANALYZE in the run",
		ratio(secs('f_sync_inrun', $t), secs($copy_same, $t))) if get('f_sync_inrun', $t);
	target("`$t`: sync into create_target(compress => true)'s table ÷ COPY FROM file into a default-storage table",
		ratio(secs('f_sync_compressed', $t), secs('f_copy_logged_pk', $t)), '<=', 1.25) if get('f_sync_compressed', $t);
	target("`$t`: mysql_fdw into the same kind of table ÷ whole sync (defaults)", ratio(secs($fdw_same, $t), secs('f_sync', $t)), '>=', 2);
	target("`$t`: mysql_fdw into a default-storage PK table ÷ whole sync (defaults)",
		ratio(secs('d_fdw_logged_pk', $t), secs('f_sync', $t)), '>=', 2) if $t eq $wide;
	target("`$t`: mysql_fdw into the same kind of table ÷ sync with the ANALYZE in the run",
		ratio(secs($fdw_same, $t), secs('f_sync_inrun', $t))) if get('f_sync_inrun', $t);
	my $plain = get('f_sync', $t);
	my $comp = get('f_sync_compressed', $t);
	target("`$t`: target size, compress => true ÷ the default", ratio($comp && $comp->{size_mb}, $plain && $plain->{size_mb}))
		if $comp && $plain;
	for my $w (1, 2, 4) {
		target("`$t`: backfill with $w worker(s), speed-up against the serial sync",
			ratio(secs('f_sync', $t), secs("h_backfill_w$w", $t))) if get("h_backfill_w$w", $t);
	}
	target("`$t`: verify ÷ the full pull of the same table (a)", ratio(secs('i_verify', $t), secs('a_read', $t)))
		if get('i_verify', $t);
	target("`$t`: verify ÷ whole initial sync (defaults)", ratio(secs('i_verify', $t), secs('f_sync', $t)))
		if get('i_verify', $t);
	my $wmax = maxof(map { my $x = get("h_backfill_w$_", $t); $x ? $x->{worker_max_mb} : undef } 1, 2, 4);
	target("`$t`: backfill, largest private peak of any worker running slices", $wmax, '<', 64, ' MB') if defined $wmax;
}
if (@inc) {
	my ($small, $large, $change) = @inc;
	my $gs = get('g_incremental', 'inc_small');
	my $gl = get('g_incremental', 'inc_large');
	target(sprintf('incremental: merge of the %s-row change into %s rows, seconds', big($change), big($large)),
		$gl ? $gl->{merge} : undef, '<', 1, ' s');
	target(sprintf('incremental: whole sync of the change into %s rows, seconds', big($large)),
		$gl ? $gl->{secs} : undef, '<', 1, ' s');
	target(sprintf('incremental: whole sync, %s-row ÷ %s-row target', big($large), big($small)),
		ratio($gl && $gl->{secs}, $gs && $gs->{secs}), '<=', 1.2);
	target(sprintf('incremental: merge phase, %s-row ÷ %s-row target', big($large), big($small)),
		ratio($gl && $gl->{merge}, $gs && $gs->{merge}), '<=', 1.2);
}
if (@winc) {
	my ($small, $large, $change) = @winc;
	for my $m (qw(g_wide_incremental g_wide_incremental_worker)) {
		my $where = $m =~ /worker/ ? 'in a worker' : 'in the foreground';
		my $gs = get($m, 'wide_small');
		my $gl = get($m, 'wide_large');
		target(sprintf('wide incremental %s: whole sync of the %s-row change into %s × 166, seconds', $where, big($change), big($large)),
			$gl ? $gl->{secs} : undef, '<', 1, ' s');
		target(sprintf('wide incremental %s: the same into %s × 166, seconds', $where, big($small)),
			$gs ? $gs->{secs} : undef, '<', 1, ' s');
		target(sprintf('wide incremental %s: whole sync, %s-row ÷ %s-row target', $where, big($large), big($small)),
			ratio($gl && $gl->{secs}, $gs && $gs->{secs}), '<=', 1.2);
	}
}
for my $t ($wide, $narrow) {
	my $x = get('f_sync', $t) or next;
	target("`$t`: full sync, backend's private peak above idle", $x->{anon_mb}, '<', 64, ' MB');
	target("`$t`: full sync, backend's VmHWM above idle", $x->{hwm_mb}, '<', 64, ' MB');
	my $y = get('f_sync_noanalyze', $t) or next;
	target("`$t`: full sync without the in-run ANALYZE, private peak above idle", $y->{anon_mb}, '<', 64, ' MB');
}
{
	my $xs = get('g_initial_sync', 'inc_small');
	my $xl = get('g_initial_sync', 'inc_large');
	if ($xs && $xl) {
		target(sprintf('memory does not grow with rows: private peak of a full sync, %s rows minus %s rows', big($inc[1]), big($inc[0])),
			defined $xl->{anon_mb} && defined $xs->{anon_mb} ? $xl->{anon_mb} - $xs->{anon_mb} : undef, '<', 8, ' MB');
		target(sprintf('the same for VmHWM, %s rows minus %s rows', big($inc[1]), big($inc[0])),
			defined $xl->{hwm_mb} && defined $xs->{hwm_mb} ? $xl->{hwm_mb} - $xs->{hwm_mb} : undef, '<', 8, ' MB');
	}
}

say '## The issue\'s targets, measured in this run';
say '';
say '| target | measured | wanted | verdict |';
say '|---|---:|---:|---|';
say '| ', join(' | ', @$_), ' |' for @targets;
say '';

if (@winc) {
	say sprintf('## Wide incremental: %s changed rows of 166 columns (4,398 updates + 1,000 new keys)', big($winc[2]));
	say '';
	say '| where | target rows | whole sync s | pull s | merge s | finish s | WAL MB | rows pulled | inserted / updated / unchanged |';
	say '|---|---:|---:|---:|---:|---:|---:|---:|---|';
	for my $m (qw(g_wide_incremental g_wide_incremental_worker)) {
		for my $t (qw(wide_small wide_large)) {
			my $x = get($m, $t) or next;
			say '| ', join(' | ', $m =~ /worker/ ? 'worker' : 'foreground', big($t eq 'wide_small' ? $winc[0] : $winc[1]),
				fmt($x->{secs}, 3), fmt($x->{pull}, 3), fmt($x->{merge}, 3), fmt($x->{finish}, 3), fmt($x->{wal_mb}, 1),
				big($x->{rows}), $x->{note} =~ s/;/,/gr), ' |';
		}
	}
	say '';
}
if (@inc) {
	say sprintf('## Incremental sync of %s changed rows (%s updates + %s new keys)', big($inc[2]), '4,000', '1,000');
	say '';
	say '| target rows | whole sync s | pull s | merge s | finish s | rows pulled | inserted / updated / unchanged |';
	say '|---:|---:|---:|---:|---:|---:|---|';
	for my $t (qw(inc_small inc_large)) {
		my $x = get('g_incremental', $t) or next;
		say '| ', join(' | ', big($t eq 'inc_small' ? $inc[0] : $inc[1]), fmt($x->{secs}, 3), fmt($x->{pull}, 3),
			fmt($x->{merge}, 3), fmt($x->{finish}, 3), big($x->{rows}), $x->{note} =~ s/;/,/gr), ' |';
	}
	say '';
}

my $text = join("\n", @report) . "\n";
print $text;
open my $o, '>', "$out.md" or die "$out.md: $!\n";
print $o $text;
close $o;

open my $c, '>', "$out.csv" or die "$out.csv: $!\n";
print $c "measure,table,status,runs_ok,median_s,min_s,max_s,rows,rows_per_s,mb_per_s,pull_s,merge_s,finish_s,private_peak_above_idle_mb,vmhwm_above_idle_mb,pgloader_rss_mb,wal_mb,statistics_after_s,target_mb,worker_private_peak_mb,note\n";
for my $m (map { $_->[0] } @measures) {
	for my $t ($wide, $narrow, 'inc_small', 'inc_large', 'wide_small', 'wide_large') {
		my $x = $s{"$m|$t"} or next;
		print $c join(',', $m, $t, $x->{status}, $x->{n}, map({ defined $_ ? $_ : '' } @$x{qw(secs min max rows)}),
			defined $x->{rows_s} ? sprintf('%.0f', $x->{rows_s}) : '', defined $x->{mb_s} ? sprintf('%.2f', $x->{mb_s}) : '',
			map({ defined $_ && $_ ne '' ? sprintf('%.3f', $_) : '' } @$x{qw(pull merge finish anon_mb hwm_mb rss_mb wal_mb stats size_mb worker_max_mb)}),
			($x->{note} // '')), "\n";
	}
}
close $c;
