#!/usr/bin/perl
# bench/summarize.pl RAW.csv META.csv OUT - medians, rates and the issue's
# ratios from bench/run's raw measurements.  Prints the report and writes it
# to OUT.md; the medians go to OUT.csv.
use strict;
use warnings;

my ($raw, $meta, $out) = @ARGV;
die "usage: $0 RAW.csv META.csv OUT\n" unless $out;

my (%meta, %size, @inc);
open my $mf, '<', $meta or die "$meta: $!\n";
while (<$mf>) {
	chomp;
	my ($k, @v) = split /,/, $_, -1;
	if ($k eq 'size') { $size{$v[0]} = { rows => $v[1], cols => $v[2], bytes => $v[3] }; }
	elsif ($k eq 'inc') { @inc = @v; }
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
	[f_sync => 'f. etl_stream.sync, initial, into create_target\'s table (logged, PK)'],
	[f_sync_noanalyze => 'f. the same with etl_stream.analyze_threshold = -1 (statistics left to autovacuum)'],
	[f_sync_t8160 => 'f. etl_stream.sync, initial, target with toast_tuple_target=8160'],
	[f_sync_t8160_noanalyze => 'f. the same with etl_stream.analyze_threshold = -1'],
	[g_initial_sync => 'g. initial sync that builds the incremental target (1 run)'],
	[g_incremental => 'g. incremental sync of the change'],
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
			rss_mb => median(map { $_->{rss_kb} ne '' ? $_->{rss_kb} / 1024 : '' } @ok));
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
say 'finish = watermark and ANALYZE. Memory is the PostgreSQL backend of the session that ran the measure (pgloader: its own process):';
say '"private" is the peak of RssAnon sampled every 50 ms, "VmHWM" the peak resident size, which also counts every shared buffer';
say 'the backend touched; both above the same session\'s idle value.';
say '';
say '| measure | table | s | pull s | merge s | finish s | private peak above idle, MB | VmHWM above idle, MB | pgloader max RSS, MB |';
say '|---|---|---:|---:|---:|---:|---:|---:|---:|';
for my $m (map { $_->[0] } @measures) {
	for my $t ($wide, $narrow, 'inc_small', 'inc_large') {
		my $x = $s{"$m|$t"} or next;
		next unless $m =~ /^(d_|e_|f_land|f_sync|g_)/;
		my $ok = $x->{status} eq 'ok';
		say '| ', join(' | ', $label{$m}, "`$t`", $ok ? fmt($x->{secs}, 3) : cell($m, $t),
			$ok ? fmt($x->{pull}, 3) : '—', $ok ? fmt($x->{merge}, 3) : '—', $ok ? fmt($x->{finish}, 3) : '—',
			fmt($x->{anon_mb}, 1), fmt($x->{hwm_mb}, 1), fmt($x->{rss_mb}, 0)), ' |';
	}
}
say '';

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
	target("`$t`: whole initial sync ÷ COPY FROM file into the same kind of table",
		ratio(secs('f_sync', $t), secs('f_copy_logged_pk', $t)), '<=', 1.25);
	target("`$t`: the same, both with toast_tuple_target=8160",
		ratio(secs('f_sync_t8160', $t), secs('f_copy_logged_pk_t8160', $t)), '<=', 1.25) if get('f_sync_t8160', $t);
	target("`$t`: the same, both with toast_tuple_target=8160, without the in-run ANALYZE",
		ratio(secs('f_sync_t8160_noanalyze', $t), secs('f_copy_logged_pk_t8160', $t)), '<=', 1.25) if get('f_sync_t8160_noanalyze', $t);
	target("`$t`: the same, without the in-run ANALYZE",
		ratio(secs('f_sync_noanalyze', $t), secs('f_copy_logged_pk', $t)), '<=', 1.25) if get('f_sync_noanalyze', $t);
	target("`$t`: mysql_fdw into a logged PK table ÷ whole sync", ratio(secs('d_fdw_logged_pk', $t), secs('f_sync', $t)), '>=', 2);
	target("`$t`: the same, without the in-run ANALYZE",
		ratio(secs('d_fdw_logged_pk', $t), secs('f_sync_noanalyze', $t)), '>=', 2) if get('f_sync_noanalyze', $t);
	target("`$t`: the same, both with toast_tuple_target=8160",
		ratio(secs('d_fdw_logged_pk_t8160', $t), secs('f_sync_t8160', $t)), '>=', 2) if get('f_sync_t8160', $t);
	target("`$t`: the same, both with toast_tuple_target=8160, without the in-run ANALYZE",
		ratio(secs('d_fdw_logged_pk_t8160', $t), secs('f_sync_t8160_noanalyze', $t)), '>=', 2) if get('f_sync_t8160_noanalyze', $t);
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
print $c "measure,table,status,runs_ok,median_s,min_s,max_s,rows,rows_per_s,mb_per_s,pull_s,merge_s,finish_s,private_peak_above_idle_mb,vmhwm_above_idle_mb,pgloader_rss_mb,note\n";
for my $m (map { $_->[0] } @measures) {
	for my $t ($wide, $narrow, 'inc_small', 'inc_large') {
		my $x = $s{"$m|$t"} or next;
		print $c join(',', $m, $t, $x->{status}, $x->{n}, map({ defined $_ ? $_ : '' } @$x{qw(secs min max rows)}),
			defined $x->{rows_s} ? sprintf('%.0f', $x->{rows_s}) : '', defined $x->{mb_s} ? sprintf('%.2f', $x->{mb_s}) : '',
			map({ defined $_ && $_ ne '' ? sprintf('%.3f', $_) : '' } @$x{qw(pull merge finish anon_mb hwm_mb rss_mb)}),
			($x->{note} // '')), "\n";
	}
}
close $c;
