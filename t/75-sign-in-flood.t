use strict;
use warnings;

use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep);
use Test::More;
use Remit::Test;

# Issue 23, item 1 (API §7 v1.2): a flood of sign-ins with made-up e-mails must not slow the
# signed-in. nginx limits sign-in and accept attempts per client address (429
# TOO_MANY_ATTEMPTS, JSON, Retry-After), and the pool bounds the password hashes it runs at
# once (pw_concurrency; beyond it 503 with Retry-After, no hash run, nothing written). Real
# forked clients; distinct loopback source addresses stand for distinct clients.

my $s = Remit::Test->stack(conf => { pw_concurrency => 1, workers => 4 });
my $org = $s->new_org;
my $viewer = $s->new_user($org->{token}, roles => ['VIEWER']);

sub one { scalar $s->dbh->selectrow_array($_[0], undef, @_[1 .. $#_]) }

# $n forked clients, the k-th from source address $addr->(k), each POSTing $body->(k) to
# $path once, all released together. Their answers: [{status, code, retry}], and the one
# response per status the caller may check against the contract.
sub burst {
    my ($n, $addr, $path, $body) = @_;
    my $dir = tempdir(CLEANUP => 1);
    pipe my $go_r, my $go_w or die $!;
    my @pids;
    for my $k (1 .. $n) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $go_w;
            my $http = HTTP::Tiny->new(keep_alive => 0, timeout => 60, local_address => $addr->($k));
            sysread $go_r, my $x, 1;    # released when the parent closes its end
            my $res = $http->request(POST => $s->url . $path, { headers =>
                { 'Content-Type' => 'application/json' }, content => encode_json($body->($k)) });
            my $json = eval { decode_json($res->{content}) } // {};
            open my $out, '>', "$dir/$k" or die $!;
            print $out encode_json({ status => $res->{status}, code => $json->{error}{code} // '',
                retry => $res->{headers}{'retry-after'} // '', nosniff => $res->{headers}{'x-content-type-options'} // '',
                type => $res->{headers}{'content-type'} // '' });
            close $out;
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $go_r;
    select undef, undef, undef, 0.3;    # every client has connected its socket
    close $go_w;
    waitpid $_, 0 for @pids;
    return map { open my $f, '<', "$dir/$_" or die $!; decode_json(scalar <$f>) } 1 .. $n;
}

sub made_up { my $k = shift; { orgId => "$org->{orgId}", email => "x$k-" . int(rand 1e9) . '@acme.example',
    password => 'whatever password' } }

subtest 'one address flooding sign-in gets 429 TOO_MANY_ATTEMPTS from nginx, JSON with Retry-After' => sub {
    my $rows = one('SELECT COUNT(*) FROM sign_in_throttle');
    my @r = burst(60, sub { '127.0.0.1' }, '/api/v1/sessions', \&made_up);
    my @limited = grep { $_->{status} == 429 } @r;
    my @checked = grep { $_->{status} == 401 || $_->{status} == 503 } @r;
    is @limited + @checked, 60, 'every answer is 429, 401 or 503';
    ok @limited >= 1, scalar(@limited) . ' of 60 answered 429 without reaching the pool';
    ok !(grep { $_->{code} ne 'TOO_MANY_ATTEMPTS' || $_->{retry} !~ /^[1-9]\d*$/
        || $_->{type} !~ m{^application/json} || $_->{nosniff} ne 'nosniff' } @limited),
        'each a JSON TOO_MANY_ATTEMPTS with Retry-After';
    my $n401 = grep { $_->{status} == 401 } @r;
    is one('SELECT COUNT(*) FROM sign_in_throttle') - $rows, $n401,
        "only the $n401 attempts checked counted a failure";
    my $r = $s->req(POST => '/api/v1/invitations/accept', json => { token => 'x', password => 'y' });
    ok $r->{status} == 400 || $r->{status} == 429, 'accept is limited by the same zone'
        or diag $r->{status};
    sleep 3;    # the zone drains (10 a second)
    my $one = $s->req(POST => '/api/v1/sessions', json => made_up(0));
    is $one->{status}, 401, 'a later attempt goes through (and the contract describes it)';
};

subtest 'past pw_concurrency the pool answers 503 with Retry-After, runs no hash, writes nothing' => sub {
    my $rows = one('SELECT COUNT(*) FROM sign_in_throttle');
    my @r = burst(24, sub { '127.0.0.' . (10 + $_[0]) }, '/api/v1/sessions', \&made_up);
    my @busy = grep { $_->{status} == 503 } @r;
    my $n401 = grep { $_->{status} == 401 } @r;
    is @busy + $n401, 24, 'every answer is 401 or 503 (distinct addresses: no 429)';
    ok @busy >= 1, scalar(@busy) . ' of 24 found every hashing slot taken';
    ok !(grep { $_->{code} ne 'SERVICE_UNAVAILABLE' || $_->{retry} ne '1' } @busy),
        'each SERVICE_UNAVAILABLE with Retry-After: 1';
    is one('SELECT COUNT(*) FROM sign_in_throttle') - $rows, $n401,
        'a 503 counted no failure: only the checked attempts wrote a throttle row';
    is $s->req(GET => '/api/v1/me', token => $viewer->{token})->{status}, 200,
        'a signed-in request is served';
};

subtest 'a worker killed while it holds a hashing slot gives it back' => sub {
    my @workers = $s->worker_pids;
    ok @workers, 'the pool has workers';
    $s->expect_worker_kill(9);
    # A burst keeps the one slot busy; killing a worker mid-burst must not leak it.
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        burst(8, sub { '127.0.0.' . (40 + $_[0]) }, '/api/v1/sessions', \&made_up);
        POSIX::_exit(0);
    }
    select undef, undef, undef, 0.4;
    kill 'KILL', $workers[0];
    waitpid $pid, 0;
    sleep 1;
    my @ok;
    for (1 .. 5) {
        push @ok, $s->req(POST => '/api/v1/sessions', json => made_up($_))->{status};
        sleep 0.2;
    }
    is_deeply \@ok, [ (401) x 5 ], 'one at a time, every attempt is checked again (401, not 503)';
};

done_testing;
