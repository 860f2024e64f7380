use strict;
use warnings;

# script/server started as root (issue 23 item 7; README "Running as root"): MariaDB runs as
# the OS user mysql, the pool, its workers and `remit deliver` as remit, none of them with
# any uid of root left; the state dir, the datadir and remit.conf belong to match; the pool's
# user cannot sign in as the database's root through the socket it uses, while OS root can;
# and `src/remit --config DIR/remit.conf bootstrap` as root, as README shows, still works, on
# a state dir a run from before (everything as root) left, and across a restart of MariaDB.

use Test::More;
use File::Spec;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);
use Remit::Stack;
use Remit::Test qw(wait_for slurp);

plan skip_all => 'script/server drops privileges only when run as root' unless $> == 0;

my $TOP = $Remit::Stack::TOP;
my $BIN = File::Spec->rel2abs($ENV{REMIT_BIN} // "$TOP/src/remit");
my $state = tempdir('srvpriv-XXXXXX', DIR => Remit::Stack::_tmp_base(), CLEANUP => 1);
my $JSON = JSON::PP->new->utf8;
my $http = HTTP::Tiny->new(keep_alive => 0, timeout => 10, max_redirect => 0);

# [real, effective, saved, fs] uids and the same for gids, the groups and the permitted and
# effective capabilities, from /proc/PID/status.
sub ids {
    my ($pid) = @_;
    my $st = slurp("/proc/$pid/status");
    my ($uids) = $st =~ /^Uid:\s+(.*)$/m;
    my ($gids) = $st =~ /^Gid:\s+(.*)$/m;
    my ($groups) = $st =~ /^Groups:\s*(.*)$/m;
    my %cap = $st =~ /^Cap(Prm|Eff):\s+([0-9a-f]+)$/mg;
    return { uid => [split ' ', $uids // ''], gid => [split ' ', $gids // ''],
        groups => [split ' ', $groups // ''], cap => \%cap };
}

my ($mysql_uid, $mysql_gid) = (getpwnam 'mysql')[2, 3];
my $server;    # the running script/server (Remit::Stack::Server)
sub start_server { $server = Remit::Stack::Server->start($state, $_[0]); return $server->url }
sub stop_server { $server->stop }

# The run of before: everything as root, on the same state dir (var/ of an older checkout).
subtest 'a state dir a run as root left' => sub {
    my $old = Remit::Stack->new(state => $state, durable => 1);
    $old->start;
    ok((stat "$state/mysql")[4] == 0, 'its datadir is root\'s');
    $old->stop;
    undef $old;
};

my $url = start_server(Remit::Stack::_free_port())
    or BAIL_OUT('script/server did not start: ' . slurp("$state/server.err"));
pass 'script/server prints REMIT_URL';
my ($remit_uid, $remit_gid) = (getpwnam 'remit')[2, 3];
ok defined $remit_uid, 'script/server made the system user remit';
ok defined $mysql_uid, 'the system user mysql';

sub runs_as {
    my ($pid, $uid, $what) = @_;
    my $ids = ids($pid);
    is_deeply $ids->{uid}, [($uid) x 4], "$what (pid $pid): real, effective, saved and fs uid $uid";
    ok !grep({ $_ == 0 } @{ $ids->{gid} }, @{ $ids->{groups} }), "$what: no group of root";
    is_deeply [map { hex } @{ $ids->{cap} }{qw(Prm Eff)}], [0, 0], "$what: no capability";
    return $ids;
}

subtest 'MariaDB, the pool, its workers and the deliverer run as users of their own' => sub {
    my ($db) = slurp("$state/mysqld.pid") =~ /(\d+)/;
    runs_as($db, $mysql_uid, 'MariaDB');
    my ($master) = $server->children(qr/\0serve\0?$/);
    ok $master, 'the pool master' or return;
    my $pool = runs_as($master, $remit_uid, 'the pool master');
    my $nginx_gid = (getpwnam 'nobody')[3];
    ok grep({ $_ == $nginx_gid } @{ $pool->{groups} }), "the pool is in nginx's group (its socket's)";
    wait_for(10, sub { Remit::Stack::children_matching($master, qr/serve/) >= 4 });
    my @workers = Remit::Stack::children_matching($master, qr/serve/);
    ok @workers, scalar(@workers) . ' workers';
    runs_as($_, $remit_uid, 'a worker') for @workers;
    my ($deliver) = $server->children(qr/\0deliver\0?$/);
    ok $deliver, 'remit deliver' and runs_as($deliver, $remit_uid, 'remit deliver');
    isnt $remit_uid, $mysql_uid, "the pool's uid is not MariaDB's";
};

subtest 'the state dir, the datadir and remit.conf belong to match' => sub {
    my @st = stat $state;
    is $st[4], 0, 'the state dir is root\'s';
    is $st[5], $remit_gid, '... group remit';
    is sprintf('%o', $st[2] & 07777), '1771', '... mode 1771 (sticky; others only pass through)';
    @st = stat "$state/mysql";
    is $st[4], $mysql_uid, 'the datadir is mysql\'s';
    is sprintf('%o', $st[2] & 07777), '700', '... mode 0700';
    ok !grep({ (stat)[4] != $mysql_uid } glob "$state/mysql/*"), 'and so is everything in it';
    @st = stat "$state/remit.conf";
    is $st[4], $remit_uid, 'remit.conf is remit\'s';
    is sprintf('%o', $st[2] & 07777), '600', '... mode 0600 (it holds the database passwords)';
    is sprintf('%o', (stat "$state/remit.log")[2] & 07777), '640', 'remit.log mode 0640';
};

# Runs @cmd as $uid (its group $gid), as we are when $uid is undef; its exit status and
# output.
sub as_user {
    my ($uid, $gid, @cmd) = @_;
    my $out = "$state/as-" . ($uid // 0) . '.out';
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>&', \*STDOUT;
        !defined $uid or Remit::Stack::_become($uid, $gid) or POSIX::_exit(125);
        exec(@cmd) or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    my $status = $? >> 8;
    my $text = slurp($out);
    unlink $out;
    return ($status, $text);
}

subtest 'only OS root signs in as the database\'s root' => sub {
    my @root = ('mariadb', '--no-defaults', "--socket=$state/mysqld.sock", '--user=root',
        '-N', '-e', 'SELECT CURRENT_USER()');
    my ($st, $out) = as_user($remit_uid, $remit_gid, @root);
    isnt $st, 0, 'the pool\'s user: refused';
    like $out, qr/Access denied/, '... Access denied' or diag $out;
    ($st, $out) = as_user($mysql_uid, $mysql_gid, @root);
    isnt $st, 0, 'MariaDB\'s user too';
    ($st, $out) = as_user(undef, undef, @root);
    like $out, qr/^root\@localhost$/m, 'OS root: root@localhost' or diag $out;
    ($st, $out) = as_user($remit_uid, $remit_gid, 'cat', "$state/mysql/mysql/user.MAD");
    isnt $st, 0, 'the pool\'s user cannot read the datadir';
    ($st, $out) = as_user($mysql_uid, $mysql_gid, 'cat', "$state/remit.conf");
    isnt $st, 0, 'MariaDB\'s user cannot read remit.conf';
};

sub bootstrap_and_me {
    my ($org) = @_;
    # As README shows, as root, while script/server runs.
    my $boot = `$BIN --config $state/remit.conf bootstrap --org $org --email admin\@example.test 2>&1`;
    my ($admin) = map { $JSON->decode($_) } grep { /^\{/ } split /\n/, $boot;
    ok $admin && $admin->{token}, "remit --config $state/remit.conf bootstrap, as root"
        or return diag $boot;
    my $res = $http->get("$url/api/v1/me", { headers => { Authorization => "Bearer $admin->{token}" } });
    is $res->{status}, 200, 'GET /api/v1/me: 200';
    is eval { $JSON->decode($res->{content})->{data}{orgId} }, $admin->{orgId}, '... of that organisation';
}

subtest 'bootstrap as root and the API' => sub { bootstrap_and_me('Unprivileged') };

subtest 'MariaDB and the deliverer killed: back as the same users' => sub {
    my ($db) = slurp("$state/mysqld.pid") =~ /(\d+)/;
    my ($deliver) = $server->children(qr/\0deliver\0?$/);
    kill 'KILL', $db, $deliver;
    my ($again) = wait_for(60, sub {
        my ($p) = slurp("$state/mysqld.pid") =~ /(\d+)/;
        $p && $p != $db && slurp("$state/server.err") =~ /MariaDB is back/ ? $p : 0 });
    ok $again, 'a new MariaDB' or return diag slurp("$state/server.err");
    runs_as($again, $mysql_uid, 'the new MariaDB');
    my $d2;
    wait_for(15, sub { ($d2) = grep { $_ != $deliver } $server->children(qr/\0deliver\0?$/) });
    ok $d2, 'a new deliverer' and runs_as($d2, $remit_uid, 'the new deliverer');
    bootstrap_and_me('AfterRestart');
};

is stop_server(), 0, 'SIGTERM: script/server exits 0';

subtest 'started again on its state dir' => sub {
    $url = start_server(Remit::Stack::_free_port());
    ok $url, 'script/server prints REMIT_URL' or return diag slurp("$state/server.err");
    bootstrap_and_me('SecondRun');
    is stop_server(), 0, 'and stops with 0';
};

done_testing;
