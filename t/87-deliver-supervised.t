# `remit deliver` as script/server runs it (Remit::Stack deliver => 1): started with the
# pool, restarted by supervise after a kill -9, and a deliverer that was down while events
# committed sends them all, in chain order, when it is back.
use strict;
use warnings;
use Test::More;
use Remit::Test;
use Remit::Webhook;

my $s = Remit::Test->stack(deliver => 1, conf => { webhook_allow_http => 'yes',
    webhook_allow_private => 'yes', deliver_poll_ms => 20 });
my $org = $s->new_org;
my $admin = $org->{token};
my $creator = $s->new_user($admin, roles => ['CREATOR'])->{token};
my $dbh = $s->dbh;
my $rx = Remit::Webhook::Receiver->start($s->state_dir . '/rx');
my $res = $s->req(POST => '/api/v1/webhook-endpoints', token => $admin,
    json => { url => $rx->url, events => ['batch.created'] });
is $res->{status}, 201, 'an endpoint';
$rx->secret('/hook', $res->{json}{data}{secret});

sub batches {
    for my $n (@_) {
        my $r = $s->req(POST => '/api/v1/batches', token => $creator, idem => 1, json => { name => $n });
        die "batch: $r->{status}" unless $r->{status} == 201;
    }
}

sub created {
    return @{ $dbh->selectcol_arrayref(q{SELECT id FROM audit_events WHERE org_id = ?
        AND action = 'batch.created' ORDER BY seq}, undef, $org->{orgId}) };
}

subtest 'the stack runs a deliverer' => sub {
    ok $s->{pid}{deliver}, 'started with the pool';
    batches('one');
    $s->wait_until('delivered', sub { $rx->received('/hook') >= 1 });
    # deliver_nice (default 10): the pool's requests come first on shared cores. Field 19
    # of /proc/PID/stat is the nice value (after the command in parentheses).
    my $stat = do { local (@ARGV, $/) = ("/proc/$s->{pid}{deliver}/stat"); <> };
    my @f = split ' ', $stat =~ s/^.*\) //sr;
    is $f[16], 10, 'it runs at nice 10, below the pool';
};

subtest 'killed with SIGKILL, it is restarted by supervise' => sub {
    my $pid = $s->{pid}{deliver};
    kill 'KILL', $pid;
    $s->wait_until('it is gone', sub { $s->which_died });
    my @said = $s->supervise;
    like join("\n", @said), qr/the deliverer \(pid $pid\) was killed by signal 9; restarting it/,
        'supervise says so' or diag explain \@said;
    isnt $s->{pid}{deliver}, $pid, 'a new deliverer runs';
    batches('two');
    $s->wait_until('it delivers', sub { $rx->received('/hook') >= 2 });
};

subtest 'down while events commit: all of them, in order, when it is back' => sub {
    $s->stop_remit;    # the pool and the deliverer (SIGTERM)
    ok !$s->{pid}{deliver}, 'the deliverer is stopped';
    $s->start_remit;   # the pool and the deliverer again, after ...
    # ... events that commit while the deliverer is held back from the endpoint's row:
    my $hold = $s->new_dbh;
    $hold->begin_work;
    $hold->do('SELECT id FROM webhook_endpoints FOR UPDATE');
    batches(map { "down $_" } 1 .. 10);
    sleep 1;
    is scalar(() = $rx->received('/hook')), 2, 'nothing is sent while it cannot claim';
    $hold->rollback;
    $s->wait_until('the backlog is delivered', sub { $rx->received('/hook') >= 12 });
    is_deeply [map { $_->{id} } $rx->received('/hook')], [created()], 'every event, once, in order';
};

done_testing;
