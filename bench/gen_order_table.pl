#!/usr/bin/perl
# bench/gen_order_table.pl ROWS [TABLE] - print the MariaDB SQL that creates
# and fills TABLE (default ecs_order_info): a 166-column order table shaped like ECShop's, the
# widest table the users reported.  Every value is a function of the row
# number from the Sequence engine (seq_1_to_ROWS), so the data is the same on
# every run and every machine, and MariaDB fills it in seconds.
#
# The column list below is the readable part: name, MySQL type and how the
# value is made.  Helpers:
#   h(M)        a per-column pseudo-random integer in 0..M-1
#   pick(w...)  one of the words, chosen by h()
#   hx(N)      N pseudo-random hex characters (incompressible, like ids)
#   words(N)    N words from a small vocabulary (compressible, like prose)
#   nul(K, e)   NULL for about one row in K, else e
# About 2.5 KB per row as text; some values carry a tab, a newline, a
# backslash, quotes or CJK characters so that every loader's escaping is
# exercised.  No CR and no NUL bytes (PostgreSQL text cannot hold NUL).
use strict;
use warnings;

my $rows = shift // 300000;
my $table = shift // 'ecs_order_info';
$rows =~ /^\d+$/ && $table =~ /^\w+$/ or die "usage: $0 ROWS [TABLE]\n";

my @primes = (7919, 104729, 15485863, 32452843, 49979687, 67867967, 86028121,
	104395301, 122949823, 141650939, 160481183, 179424673, 198491317, 217645177);
my $n = 0;    # per-column counter: each column gets its own hash

sub h {
	my ($m) = @_;
	$n++;
	my $p = $primes[$n % @primes];
	my $o = $n * 131 + 17;
	return "((seq * $p + $o) % $m)";
}
sub sqlstr { my ($s) = @_; $s =~ s/'/''/g; $s =~ s/\\/\\\\/g; return "'$s'"; }
sub pick { my @w = @_; return 'ELT(1 + ' . h(scalar @w) . ', ' . join(', ', map { sqlstr($_) } @w) . ')'; }
sub hx {
	my ($len) = @_;
	$n++;
	my $md = "MD5(seq * $primes[$n % @primes] + $n)";
	return $len <= 32 ? "LEFT($md, $len)" : "LEFT(CONCAT($md, SHA2(seq + $n, 256)), $len)";
}
my @vocab = qw(please deliver before noon call when arriving leave at the front desk
	gift wrap thanks order fragile handle with care weekend only office hours
	building gate north south east west floor room blue red large small);
sub words {
	my ($k) = @_;
	return 'CONCAT_WS(' . sqlstr(' ') . ', ' . join(', ', map { pick(@vocab) } 1 .. $k) . ')';
}
sub nul { my ($k, $e) = @_; return 'IF(' . h($k) . ' = 0, NULL, ' . $e . ')'; }
sub num { my ($lo, $span) = @_; return "($lo + " . h($span) . ')'; }
sub money { my ($max) = @_; return '(' . h($max * 100) . ' / 100)'; }

my $base_time = 1704067200;    # 2024-01-01 00:00:00 UTC
my $t_add = "($base_time + seq * 40 + " . h(40) . ')';          # add_time: increasing
my $t_upd = "($base_time + seq * 40 + 3600 + " . h(86400) . ')';  # update_time: a bit later
sub after { my ($k) = @_; return "IF(" . h($k) . " = 0, 0, $base_time + seq * 40 + " . h(7 * 86400) . ')'; }
sub dt { my ($e) = @_; return "FROM_UNIXTIME($e)"; }

my @cols = (
	# key and references
	[order_id => 'INT UNSIGNED NOT NULL', 'seq'],
	[order_sn => 'VARCHAR(20) NOT NULL', "CONCAT('2024', LPAD(seq, 12, '0'))"],
	[user_id => 'INT UNSIGNED NOT NULL', num(1, 2000000)],
	[parent_id => 'INT UNSIGNED NOT NULL DEFAULT 0', 'IF(' . h(20) . ' = 0, seq - 1, 0)'],
	[store_id => 'SMALLINT UNSIGNED NOT NULL', num(1, 400)],
	[supplier_id => 'INT UNSIGNED', nul(5, num(1, 9000))],
	[warehouse_id => 'SMALLINT NOT NULL', num(1, 60)],
	[shipping_id => 'TINYINT UNSIGNED NOT NULL', num(1, 30)],
	[pay_id => 'TINYINT UNSIGNED NOT NULL', num(1, 12)],
	[pack_id => 'TINYINT UNSIGNED NOT NULL', h(5)],
	[card_id => 'TINYINT UNSIGNED NOT NULL', h(8)],
	[bonus_id => 'INT UNSIGNED NOT NULL', 'IF(' . h(6) . ' = 0, ' . num(1, 500000) . ', 0)'],
	[coupon_id => 'INT UNSIGNED', nul(3, num(1, 80000))],
	[promotion_id => 'INT', nul(4, num(1, 3000))],
	[agency_id => 'SMALLINT UNSIGNED NOT NULL', h(50)],
	[extension_id => 'INT UNSIGNED NOT NULL', h(1000)],
	[from_ad => 'SMALLINT NOT NULL', h(300)],
	[country => 'SMALLINT UNSIGNED NOT NULL', num(1, 3)],
	[province => 'SMALLINT UNSIGNED NOT NULL', num(2, 34)],
	[city => 'SMALLINT UNSIGNED NOT NULL', num(35, 400)],
	[district => 'SMALLINT UNSIGNED NOT NULL', num(400, 3000)],
	[platform_id => 'TINYINT NOT NULL', num(1, 6)],
	[channel_id => 'INT NOT NULL', num(1, 40)],
	[admin_id => 'INT UNSIGNED', nul(4, num(1, 200))],
	[sales_id => 'MEDIUMINT UNSIGNED', nul(3, num(1, 5000))],
	[region_id => 'MEDIUMINT NOT NULL', num(1, 9000)],
	[currency_id => 'TINYINT UNSIGNED NOT NULL', num(1, 5)],
	[tax_id => 'SMALLINT UNSIGNED', nul(2, num(1, 30))],
	[invoice_id => 'BIGINT UNSIGNED', nul(2, num(1000000000, 900000000))],
	[batch_id => 'BIGINT NOT NULL', num(100000000000, 900000000)],
	[goods_count => 'SMALLINT UNSIGNED NOT NULL', num(1, 12)],
	[goods_number => 'INT NOT NULL', num(1, 40)],
	[integral => 'INT UNSIGNED NOT NULL', h(5000)],

	# statuses and flags
	[order_status => 'TINYINT UNSIGNED NOT NULL', h(6)],
	[shipping_status => 'TINYINT UNSIGNED NOT NULL', h(5)],
	[pay_status => 'TINYINT UNSIGNED NOT NULL', h(3)],
	[order_type => 'TINYINT NOT NULL', h(4)],
	[is_separate => 'TINYINT(1) NOT NULL', h(2)],
	[is_paid => 'TINYINT(1) NOT NULL', h(2)],
	[is_delete => 'TINYINT(1) NOT NULL DEFAULT 0', 'IF(' . h(50) . ' = 0, 1, 0)'],
	[is_gift => 'TINYINT(1) NOT NULL', 'IF(' . h(10) . ' = 0, 1, 0)'],
	[is_virtual => 'TINYINT(1) NOT NULL', 'IF(' . h(30) . ' = 0, 1, 0)'],
	[is_test => 'TINYINT(1) NOT NULL DEFAULT 0', 'IF(' . h(200) . ' = 0, 1, 0)'],
	[is_cod => 'TINYINT(1) NOT NULL', h(2)],
	[is_insure => 'TINYINT(1) NOT NULL', h(2)],
	[is_invoice => 'TINYINT(1) NOT NULL', h(2)],
	[is_urgent => 'TINYINT(1) NOT NULL', 'IF(' . h(15) . ' = 0, 1, 0)'],
	[is_locked => 'TINYINT(1) NOT NULL', 'IF(' . h(40) . ' = 0, 1, 0)'],
	[is_split => 'TINYINT(1) NOT NULL', 'IF(' . h(25) . ' = 0, 1, 0)'],
	[is_merged => 'TINYINT(1) NOT NULL', 'IF(' . h(25) . ' = 0, 1, 0)'],
	[is_refund => 'TINYINT(1) NOT NULL', 'IF(' . h(20) . ' = 0, 1, 0)'],
	[is_return => 'TINYINT(1) NOT NULL', 'IF(' . h(30) . ' = 0, 1, 0)'],
	[is_reviewed => 'TINYINT(1) NOT NULL', h(2)],
	[is_printed => 'TINYINT(1) NOT NULL', h(2)],
	[is_exported => 'TINYINT(1) NOT NULL', h(2)],
	[is_synced => 'TINYINT(1) NOT NULL', h(2)],
	[need_inv => 'TINYINT(1) NOT NULL', h(2)],
	[need_insure => 'TINYINT(1) NOT NULL', h(2)],
	[risk_level => 'TINYINT UNSIGNED NOT NULL', h(4)],
	[invoice_status => 'TINYINT UNSIGNED', nul(2, h(3))],
	[refund_status => 'TINYINT UNSIGNED', nul(2, h(4))],

	# money
	[goods_amount => 'DECIMAL(10,2) NOT NULL', money(3000)],
	[shipping_fee => 'DECIMAL(10,2) NOT NULL', money(30)],
	[insure_fee => 'DECIMAL(10,2) NOT NULL', money(10)],
	[pay_fee => 'DECIMAL(10,2) NOT NULL', money(5)],
	[pack_fee => 'DECIMAL(10,2) NOT NULL', money(8)],
	[card_fee => 'DECIMAL(10,2) NOT NULL', money(8)],
	[money_paid => 'DECIMAL(10,2) NOT NULL', money(3000)],
	[surplus => 'DECIMAL(10,2) NOT NULL', money(100)],
	[integral_money => 'DECIMAL(10,2) NOT NULL', money(50)],
	[bonus => 'DECIMAL(10,2) NOT NULL', money(50)],
	[order_amount => 'DECIMAL(10,2) NOT NULL', money(3000)],
	[discount => 'DECIMAL(10,2) NOT NULL', money(200)],
	[tax => 'DECIMAL(10,2)', nul(3, money(300))],
	[coupon_amount => 'DECIMAL(10,2)', nul(3, money(100))],
	[shipping_discount => 'DECIMAL(10,2) NOT NULL', money(20)],
	[refund_amount => 'DECIMAL(12,2)', nul(2, money(3000))],
	[cost_amount => 'DECIMAL(12,4) NOT NULL', '(' . h(30000000) . ' / 10000)'],
	[commission => 'DECIMAL(10,4) NOT NULL', '(' . h(1000000) . ' / 10000)'],
	[weight => 'DECIMAL(10,3) NOT NULL', '(' . h(50000) . ' / 1000)'],
	[exchange_rate => 'DECIMAL(12,6) NOT NULL', '(6 + ' . h(1000000) . ' / 1000000)'],

	# unix seconds (ECShop style), the watermark among them
	[add_time => 'INT UNSIGNED NOT NULL', $t_add],
	[update_time => 'INT UNSIGNED NOT NULL', $t_upd],
	[confirm_time => 'INT UNSIGNED NOT NULL DEFAULT 0', after(10)],
	[pay_time => 'INT UNSIGNED NOT NULL DEFAULT 0', after(5)],
	[shipping_time => 'INT UNSIGNED NOT NULL DEFAULT 0', after(3)],
	[receive_time => 'INT UNSIGNED NOT NULL DEFAULT 0', after(2)],
	[cancel_time => 'INT UNSIGNED NOT NULL DEFAULT 0', 'IF(' . h(20) . " = 0, $base_time + seq * 40 + 99, 0)"],
	[refund_time => 'INT UNSIGNED NOT NULL DEFAULT 0', 'IF(' . h(20) . " = 0, $base_time + seq * 40 + 999, 0)"],

	# dates and times
	[created_at => 'DATETIME NOT NULL', dt($t_add)],
	[updated_at => 'TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP', dt($t_upd)],
	[paid_at => 'DATETIME', nul(5, dt("$base_time + seq * 40 + 600"))],
	[shipped_at => 'DATETIME', nul(3, dt("$base_time + seq * 40 + 86400"))],
	[closed_at => 'DATETIME', nul(2, dt("$base_time + seq * 40 + 864000"))],
	[delivery_date => 'DATE', nul(4, "DATE(FROM_UNIXTIME($base_time + seq * 40 + 259200))")],
	[expected_date => 'DATE NOT NULL', "DATE(FROM_UNIXTIME($base_time + seq * 40 + 172800))"],
	[birthday => 'DATE', nul(3, "DATE_ADD('1960-01-01', INTERVAL " . h(15000) . ' DAY)')],
	[last_login_at => 'DATETIME(3)', nul(4, "FROM_UNIXTIME($base_time + seq * 40 - " . h(864000) . ' + 0.125)')],

	# strings: names, addresses, contact, shipping, payment
	[consignee => 'VARCHAR(60) NOT NULL', 'CONCAT(' . pick(qw(张 王 李 赵 Smith Garcia Müller Rossi Tanaka Kim)) . ', ' . sqlstr(' ') . ', ' . pick(qw(伟 芳 娜 Anna John Maria Luca Yuki Min)) . ')'],
	[country_name => 'VARCHAR(40) NOT NULL', pick('China', 'United States', 'Germany', 'Japan')],
	[province_name => 'VARCHAR(40) NOT NULL', pick('Guangdong', 'Zhejiang', 'Jiangsu', 'California', 'Bavaria', 'Tokyo', 'Shandong')],
	[city_name => 'VARCHAR(40) NOT NULL', pick('Shenzhen', 'Hangzhou', 'Nanjing', 'San Jose', 'München', 'Shinjuku', 'Qingdao', 'Guangzhou')],
	[district_name => 'VARCHAR(40)', nul(6, pick('Nanshan', 'Xihu', 'Gulou', 'Downtown', 'Altstadt', 'Chuo'))],
	[address => 'VARCHAR(255) NOT NULL', 'CONCAT(' . num(1, 999) . ", ' ', " . pick('Keyuan Rd', 'Wensan Rd', 'Main St', 'Hauptstraße', 'Nishi-Shinjuku', 'Zhongshan Ave') . ", ', Building ', " . num(1, 40) . ", ', Unit ', " . num(1, 8) . ", ', Room ', " . num(101, 3000) . ", ', ', " . words(4) . ')'],
	[address2 => 'VARCHAR(255)', nul(3, words(5))],
	[zipcode => 'VARCHAR(20) NOT NULL', 'LPAD(' . h(999999) . ', 6, ' . sqlstr('0') . ')'],
	[tel => 'VARCHAR(60) NOT NULL', "CONCAT('0', " . num(10, 989) . ", '-', " . num(10000000, 89999999) . ')'],
	[mobile => 'VARCHAR(60) NOT NULL', "CONCAT('1', " . num(3000000000, 6999999999) . ')'],
	[email => 'VARCHAR(100) NOT NULL', 'CONCAT(' . hx(10) . ", '\@', " . pick('example.com', 'mail.example.org', 'qq.example.cn', 'corp.example.net') . ')'],
	[best_time => 'VARCHAR(120) NOT NULL', pick('any time', 'weekdays 9:00-18:00', 'weekend only', 'evenings after 19:00', '工作日')],
	[sign_building => 'VARCHAR(120) NOT NULL', words(6)],
	[postscript => 'VARCHAR(255) NOT NULL', 'IF(' . h(97) . " = 0, CONCAT('line one', CHAR(10), 'tab', CHAR(9), 'there ', CHAR(92), ' C:', CHAR(92), 'path \"quoted\" it''s'), " . words(8) . ')'],
	[shipping_name => 'VARCHAR(120) NOT NULL', pick('SF Express', 'ZTO Express', 'YTO Express', 'EMS', 'DHL Express', 'UPS Ground', 'Yamato')],
	[shipping_code => 'VARCHAR(32) NOT NULL', pick('sf', 'zto', 'yto', 'ems', 'dhl', 'ups', 'yamato')],
	[pay_name => 'VARCHAR(120) NOT NULL', pick('Alipay', 'WeChat Pay', 'Credit Card', 'PayPal', 'Bank Transfer', 'Cash on Delivery')],
	[pay_code => 'VARCHAR(32) NOT NULL', pick('alipay', 'wxpay', 'card', 'paypal', 'bank', 'cod')],
	[how_oos => 'VARCHAR(120) NOT NULL', pick('wait for all goods', 'ship available goods first', 'cancel the order', 'contact me')],
	[how_surplus => 'VARCHAR(120) NOT NULL', pick('', 'refund to balance', 'refund to card')],
	[pack_name => 'VARCHAR(120) NOT NULL', pick('', 'standard box', 'gift box', 'eco bag')],
	[card_name => 'VARCHAR(120) NOT NULL', pick('', 'birthday card', 'thank-you card', 'holiday card')],
	[card_message => 'VARCHAR(255) NOT NULL', 'IF(' . h(4) . " = 0, " . words(10) . ", '')"],
	[inv_payee => 'VARCHAR(120) NOT NULL', pick('', 'personal', 'ACME Trading Co., Ltd.', '深圳市某某科技有限公司')],
	[inv_content => 'VARCHAR(120) NOT NULL', pick('', 'goods', 'office supplies', 'details')],
	[inv_type => 'VARCHAR(60) NOT NULL', pick('', 'normal', 'vat', 'electronic')],
	[invoice_no => 'VARCHAR(50) NOT NULL', 'IF(' . h(3) . " = 0, '', CONCAT('INV', " . hx(16) . '))'],
	[tracking_no => 'VARCHAR(64) NOT NULL', "CONCAT('SF', LPAD(" . h(999999999) . ", 12, '0'))"],
	[external_order_sn => 'VARCHAR(64)', nul(3, 'UPPER(' . hx(24) . ')')],
	[referer => 'VARCHAR(255) NOT NULL', 'CONCAT(' . pick('https://www.example.com/', 'https://m.example.com/', 'https://search.example.org/?q=', 'app://') . ', ' . hx(20) . ')'],
	[to_buyer => 'VARCHAR(255) NOT NULL', 'IF(' . h(3) . " = 0, " . words(15) . ", '')"],
	[pay_note => 'VARCHAR(255) NOT NULL', 'IF(' . h(3) . " = 0, " . words(6) . ", '')"],
	[order_source => 'VARCHAR(32) NOT NULL', pick('pc', 'mobile', 'app_ios', 'app_android', 'mini_program', 'api')],
	[utm_source => 'VARCHAR(64)', nul(2, pick('google', 'baidu', 'newsletter', 'partner_a', 'weibo'))],
	[utm_medium => 'VARCHAR(64)', nul(2, pick('cpc', 'email', 'social', 'referral'))],
	[utm_campaign => 'VARCHAR(128)', nul(2, "CONCAT('spring_sale_', " . num(2020, 5) . ", '_', " . hx(6) . ')')],
	[utm_term => 'VARCHAR(128)', nul(3, words(2))],
	[utm_content => 'VARCHAR(128)', nul(3, "CONCAT('banner_', " . h(50) . ')')],
	[ip_address => 'VARCHAR(45) NOT NULL', 'CONCAT_WS(' . sqlstr('.') . ', ' . join(', ', map { num(1, 254) } 1 .. 4) . ')'],
	[user_agent => 'VARCHAR(512) NOT NULL', 'CONCAT(' . pick('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/', 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/') . ', ' . num(100, 25) . ", '.0.', " . num(1000, 8999) . ", '.', " . h(200) . ", ' Safari/537.36')"],
	[device_type => 'VARCHAR(32) NOT NULL', pick('desktop', 'phone', 'tablet')],
	[os_version => 'VARCHAR(32) NOT NULL', pick('Windows 10', 'Windows 11', 'iOS 17.2', 'Android 14', 'macOS 14.2')],
	[app_version => 'VARCHAR(16)', nul(2, "CONCAT('8.', " . h(20) . ", '.', " . h(10) . ')')],
	[client_lang => 'VARCHAR(16) NOT NULL', pick('zh-CN', 'en-US', 'de-DE', 'ja-JP')],
	[currency_code => 'CHAR(3) NOT NULL', pick('CNY', 'USD', 'EUR', 'JPY')],
	[buyer_nick => 'VARCHAR(64) NOT NULL', "CONCAT('user_', " . hx(8) . ')'],
	[seller_memo => 'VARCHAR(255)', nul(2, words(15))],
	[warehouse_code => 'VARCHAR(32) NOT NULL', "CONCAT('WH-', " . pick('SZ', 'HZ', 'NJ', 'SJ', 'MUC') . ", '-', " . num(1, 20) . ')'],
	[carrier_code => 'VARCHAR(32) NOT NULL', pick('SF', 'ZTO', 'YTO', 'EMS', 'DHL', 'UPS')],
	[payment_txn_id => 'VARCHAR(64)', nul(5, hx(40))],
	[refund_reason => 'VARCHAR(255)', nul(10, 'IF(' . h(10) . " = 0, " . words(6) . ', NULL)')],
	[coupon_code => 'VARCHAR(32)', nul(3, 'UPPER(' . hx(10) . ')')],
	[promo_code => 'VARCHAR(32)', nul(4, pick('SPRING10', 'VIP20', 'FREESHIP', 'NEWUSER'))],
	[sales_channel => 'VARCHAR(32) NOT NULL', pick('online', 'marketplace', 'wholesale', 'store')],
	[store_name => 'VARCHAR(120) NOT NULL', 'CONCAT(' . pick('Flagship Store', 'Outlet', '旗舰店', 'Official Shop') . ", ' #', " . num(1, 400) . ')'],
	[goods_summary => 'VARCHAR(512) NOT NULL', words(30)],
	[delivery_note => 'VARCHAR(255) NOT NULL', words(14)],
	[customer_tags => 'VARCHAR(255)', nul(3, 'CONCAT_WS(' . sqlstr(',') . ', ' . pick('new', 'returning', 'loyal') . ', ' . pick('mobile', 'desktop') . ', ' . pick('coupon', 'no-coupon') . ')')],
	[session_id => 'VARCHAR(64) NOT NULL', hx(32)],
	[device_id => 'VARCHAR(64)', nul(3, hx(36))],
	[ship_from => 'VARCHAR(120) NOT NULL', 'CONCAT(' . pick('Shenzhen', 'Hangzhou', 'Nanjing', 'Frankfurt') . ", ' DC ', " . num(1, 9) . ')'],
	[return_address => 'VARCHAR(255)', nul(4, 'CONCAT(' . num(1, 999) . ", ' ', " . words(5) . ')')],
	[gift_message => 'VARCHAR(255)', nul(5, 'IF(' . h(5) . ' = 0, ' . words(8) . ', NULL)')],
	[contact_name => 'VARCHAR(60)', nul(3, pick('Li Na', 'Wang Wei', 'Anna Schmidt', 'John Doe'))],

	# long text
	[extension_info => 'TEXT', nul(10, "CONCAT('{\"channel\": \"', " . pick('web', 'app', 'api') . ", '\", \"ab\": [', " . h(9) . ", ', ', " . h(9) . ", '], \"note\": \"', " . words(30) . ", '\", \"trace\": \"', " . hx(64) . ", '\"}')")],
	[goods_snapshot => 'TEXT', nul(8, "CONCAT('[{\"goods_id\": ', " . num(1, 99999) . ", ', \"name\": \"', " . words(12) . ", '\", \"qty\": ', " . num(1, 5) . ", ', \"price\": ', " . money(500) . ", '}, {\"goods_id\": ', " . num(1, 99999) . ", ', \"name\": \"', " . words(12) . ", '\", \"qty\": ', " . num(1, 5) . ", ', \"sku\": \"', " . hx(20) . ", '\"}]')")],
	[admin_note => 'TEXT', nul(3, words(30))],
	[address_json => 'TEXT NOT NULL', "CONCAT('{\"lat\": ', " . num(20, 30) . ", '.', " . h(999999) . ", ', \"lng\": ', " . num(100, 20) . ", '.', " . h(999999) . ", ', \"geohash\": \"', " . hx(12) . ", '\"}')"],
);

die 'expected 166 columns, have ' . scalar(@cols) . "\n" unless @cols == 166;

print "DROP TABLE IF EXISTS $table;\n";
print "CREATE TABLE $table (\n";
print join(",\n", map { "  `$_->[0]` $_->[1]" } @cols);
print ",\n  PRIMARY KEY (order_id),\n  KEY idx_add_time (add_time),\n  KEY idx_update_time (update_time),\n  KEY idx_user_id (user_id)\n";
print ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n";
print "INSERT INTO $table (", join(', ', map { "`$_->[0]`" } @cols), ")\nSELECT\n  ";
print join(",\n  ", map { $_->[2] } @cols);
print "\nFROM seq_1_to_$rows;\n";
