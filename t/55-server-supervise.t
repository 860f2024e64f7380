use strict;
use warnings;

# script/server supervises what it starts (issue 17; README "When something dies"): its
# MariaDB SIGKILLed by the pid in the state dir is started again on the same datadir while
# nginx and the pool answer JSON 503 with Retry-After, never a refused connection, and 2xx
# again within 15 s; its pool master SIGKILLed is started again too; SIGTERM stops it all.

use Test::More;
use File::Spec;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);
use Remit::Stack;
use Remit::Test qw(wait_for slurp);

my $TOP = $Remit::Stack::TOP;
my $BIN = File::Spec->rel2abs($ENV{REMIT_BIN} // "$TOP/src/remit");
my $state = tempdir('server-XXXXXX', DIR => Remit::Stack::_tmp_base(), CLEANUP => 1);
my $port = Remit::Stack::_free_port();
my $JSON = JSON::PP->new->utf8;
my $http = HTTP::Tiny->new(keep_alive => 0, timeout => 10, max_redirect => 0);

sub alive {
    my ($pid) = @_;
    my $stat = slurp("/proc/$pid/stat");
    my ($st) = $stat =~ /\)\s+(\S)/;
    return defined $st && $st ne 'Z';
}

my $server = Remit::Stack::Server->start($state, $port);

# The `remit serve` children of script/server.
sub pool_masters { $server->children(qr/\0serve\0?$/) }

my $url = $server->url;
ok $url, 'script/server prints REMIT_URL'
    or BAIL_OUT('script/server did not start: ' . slurp("$state/server.err"));

my $boot = `$BIN --config $state/remit.conf bootstrap --org Supervised --email admin\@example.test`;
my ($admin) = map { $JSON->decode($_) } grep { /^\{/ } split /\n/, $boot;
ok $admin && $admin->{token}, 'an organisation to write to' or BAIL_OUT("bootstrap: $boot");

my $n = 0;
# One write (a new user, a new key) per call: what a client sees.
sub write_once {
    $n++;
    my $res = $http->post("$url/api/v1/users", {
        headers => { Authorization => "Bearer $admin->{token}", 'Idempotency-Key' => "sv-$$-$n",
            'Content-Type' => 'application/json' },
        content => $JSON->encode({ email => "u$n-$$\@example.test", name => "User $n",
            roles => ['VIEWER'] }),
    });
    my $j = eval { $JSON->decode($res->{content}) };
    $res->{code} = ref $j eq 'HASH' && ref $j->{error} eq 'HASH' ? $j->{error}{code} : '';
    return $res;
}

sub get_healthz {
    my $res = $http->get("$url/healthz");
    my $j = eval { $JSON->decode($res->{content}) };
    $res->{code} = ref $j eq 'HASH' && ref $j->{error} eq 'HASH' ? $j->{error}{code} : '';
    return $res;
}

is write_once()->{status}, 201, 'a write before the crash: 201';

subtest 'MariaDB SIGKILLed: JSON 503 with Retry-After meanwhile, 2xx again within 15 s' => sub {
    my ($db) = slurp("$state/mysqld.pid") =~ /(\d+)/;
    ok $db && alive($db), "MariaDB's pid in the state dir";
    my $t_kill = time;
    kill 'KILL', $db;
    my (%seen, @bad, $back);
    while (time < $t_kill + 20) {
        my $res = write_once();
        $seen{$res->{status}}++;
        if ($res->{status} == 201) { $back = time - $t_kill; last }
        for my $r ($res, get_healthz()) {
            push @bad, "$r->{status} $r->{content}"
                unless $r->{status} == 503 && $r->{code} eq 'SERVICE_UNAVAILABLE'
                    && $r->{headers}{'retry-after'} && $r->{headers}{'x-request-id'}
                    || $r->{status} == 200 && $r != $res;
        }
        sleep 0.05;
    }
    ok $seen{503}, 'some 503 while MariaDB was away';
    is scalar(@bad), 0, 'every other answer (writes, GET /healthz) a JSON 503 with Retry-After and X-Request-Id'
        or diag explain \@bad;
    ok defined $back && $back <= 15, sprintf 'a 201 again %.2f s after the kill', $back // -1;
    diag sprintf 'script/server: MariaDB SIGKILLed, first 201 after %.2f s (%s)', $back // -1,
        join ', ', map { "$_ x$seen{$_}" } sort keys %seen;
    my ($again) = slurp("$state/mysqld.pid") =~ /(\d+)/;
    ok $again && $again != $db && alive($again), 'a new MariaDB on the same state dir';
    ok wait_for(5, sub { slurp("$state/server.err")
        =~ /MariaDB \(pid $db\) was killed by signal 9; restarting.*\n.*MariaDB is back/ }),
        'script/server logged the restart' or diag slurp("$state/server.err");
};

subtest 'the pool master SIGKILLed: started again, 2xx within 15 s' => sub {
    my ($master) = pool_masters();
    ok $master, 'the pool master is a child of script/server' or return;
    my $t_kill = time;
    kill 'KILL', $master;
    my ($back, %seen);
    while (time < $t_kill + 20) {
        my $res = write_once();
        $seen{$res->{status}}++;
        if ($res->{status} == 201) { $back = time - $t_kill; last }
        sleep 0.05;
    }
    ok !$seen{599}, 'nginx answered every request (no refused or reset connection)';
    ok defined $back && $back <= 15, sprintf 'a 201 again %.2f s after the kill', $back // -1;
    ok wait_for(15, sub { slurp("$state/server.err")
        =~ /remit pool \(pid $master\) was killed by signal 9; restarting.*\n.*remit pool is back/ }),
        'script/server logged the restart' or diag slurp("$state/server.err");
    my ($again) = wait_for(5, sub { grep { alive($_) } pool_masters() });
    ok $again && $again != $master, 'a new pool master';
    ok !alive($master), 'the old master is gone';
    is write_once()->{status}, 201, 'the new pool serves';
};

subtest 'MariaDB dying over and over: restarted at most 5 times a minute, 503 meanwhile' => sub {
    for my $i (2 .. 6) {    # the first subtest's kill was restart 1
        ok wait_for(15, sub { write_once()->{status} == 201 }), "serving before kill $i";
        my ($db) = slurp("$state/mysqld.pid") =~ /(\d+)/;
        kill 'KILL', $db;
        wait_for(10, sub { !alive($db) });
    }
    ok wait_for(10, sub { slurp("$state/server.err") =~ /MariaDB restarted 5 times within 60 s: next try in \d+ s/ }),
        'the sixth death within a minute is not restarted at once, and says so';
    sleep 1;
    my $res = write_once();
    is $res->{status}, 503, 'nginx and the pool still answer: 503';
    is $res->{code}, 'SERVICE_UNAVAILABLE', 'SERVICE_UNAVAILABLE';
};

ok kill('TERM', $server->pid), 'SIGTERM to script/server';
ok defined $server->wait_exit(90), 'script/server stopped';
is $server->status, 0, 'exit status 0';
my ($db) = slurp("$state/mysqld.pid") =~ /(\d+)/;
ok !$db || !alive($db), 'its MariaDB stopped with it';

done_testing;
