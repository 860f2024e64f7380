# `remit deliver` under faults (API §12): a deliverer killed with SIGKILL mid-delivery, two
# deliverers at once, a receiver that hangs (the 10 s default timeout), a destination on
# loopback when private destinations are not allowed. Real receiver, real processes.
use strict;
use warnings;
use Test::More;
use Remit::Test;
use Remit::Webhook;
use Time::HiRes qw(time sleep);

my $s = Remit::Test->stack(conf => { webhook_allow_http => 'yes', webhook_allow_private => 'yes',
    deliver_poll_ms => 20 });
my $org = $s->new_org;
my $admin = $org->{token};
my $creator = $s->new_user($admin, roles => ['CREATOR'])->{token};
my $dbh = $s->dbh;
my $rxn = 0;

sub receiver { Remit::Webhook::Receiver->start($s->state_dir . '/rx' . ++$rxn) }

sub endpoint {
    my ($rx, $path) = @_;
    my $res = $s->req(POST => '/api/v1/webhook-endpoints', token => $admin,
        json => { url => $rx->url($path), events => ['batch.created'] });
    die "endpoint: $res->{body}" unless $res->{status} == 201;
    $rx->secret($path, $res->{json}{data}{secret});
    return $res->{json}{data}{id};
}

sub batch {
    my $res = $s->req(POST => '/api/v1/batches', token => $creator, idem => 1,
        json => { name => $_[0] });
    die "batch: $res->{status}" unless $res->{status} == 201;
}

sub last_event { scalar $dbh->selectrow_array('SELECT COALESCE(MAX(id), 0) FROM audit_events') }

sub created_after {
    my ($after) = @_;
    return @{ $dbh->selectcol_arrayref(q{SELECT id FROM audit_events WHERE org_id = ? AND id > ?
        AND action = 'batch.created' ORDER BY seq}, undef, $org->{orgId}, $after) };
}

# Disables every endpoint so that the next subtest's are the only ones due.
sub quiet { $dbh->do('UPDATE webhook_endpoints SET active = 0') }

subtest 'kill -9 mid-delivery: sent again with the same webhook-id, nothing lost' => sub {
    my $rx = receiver();
    my $ep = endpoint($rx, '/k');
    $rx->plan('/k', 'slow 30');
    my $d = Remit::Webhook::deliverer($s);
    my $from = last_event();
    batch("K$_") for 1 .. 3;
    my @want = created_after($from);
    $s->wait_until('the first delivery is in flight', sub { $rx->arrived >= 1 });
    Remit::Webhook::stop_deliverer($d, 'KILL');
    is $dbh->selectrow_array('SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = ?',
        undef, $ep), 0, 'the attempt the killed deliverer made is not recorded';
    my $d2 = Remit::Webhook::deliverer($s);
    $s->wait_until('all three delivered', sub { my @r = grep { $_->{answer} eq '200' } $rx->received('/k'); @r >= 3 }, 20);
    my @ok = grep { $_->{answer} eq '200' } $rx->received('/k');
    is_deeply [map { $_->{id} } @ok], \@want, 'every event, in order, the first again with its id';
    is scalar(grep { $_->{sig_ok} } @ok), 3, 'each signed';
    is $dbh->selectrow_array('SELECT cursor_seq FROM webhook_endpoints WHERE id = ?', undef, $ep),
        $dbh->selectrow_array('SELECT seq FROM audit_events WHERE id = ?', undef, $want[-1]),
        'the cursor is past the last';
    Remit::Webhook::stop_deliverer($d2);
    quiet();
};

subtest 'two deliverers: never one event to one endpoint twice at once' => sub {
    my $rx = receiver();
    my @eps = map { endpoint($rx, "/two$_") } 1 .. 2;
    $rx->plan("/two$_", ('slow 0.05') x 20) for 1 .. 2;
    my @d = map { Remit::Webhook::deliverer($s) } 1 .. 2;
    my $from = last_event();
    batch("T$_") for 1 .. 20;
    my @want = created_after($from);
    $s->wait_until('every event at both endpoints', sub {
        $rx->received('/two1') >= 20 && $rx->received('/two2') >= 20 }, 60);
    for my $p ('/two1', '/two2') {
        my @got = sort { $a->{t0} <=> $b->{t0} } $rx->received($p);
        is_deeply [map { $_->{id} } @got], \@want, "$p: each event once, in chain order";
        my $overlap = grep { $got[$_]{t0} < $got[$_ - 1]{t1} } 1 .. $#got;
        is $overlap, 0, "$p: no request began before the one before it was answered";
    }
    Remit::Webhook::stop_deliverer($_) for @d;
    quiet();
};

subtest 'a receiver that hangs costs the 10 s default timeout, then the retry delivers' => sub {
    my $rx = receiver();
    my $ep = endpoint($rx, '/hang');
    $rx->plan('/hang', 'hang');
    my $d = Remit::Webhook::deliverer($s);
    my $from = last_event();
    batch('hang');
    my ($want) = created_after($from);
    $s->wait_until('the attempt timed out', sub {
        $dbh->selectrow_array('SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = ?',
            undef, $ep) }, 20);
    my $dl = $s->req(GET => "/api/v1/webhook-endpoints/$ep/deliveries", token => $admin);
    my $a = $dl->{json}{data}[0];
    is $a->{status}, undef, 'no status came';
    like $a->{error}, qr/timeout|timed out/i, "the error says so ($a->{error})";
    cmp_ok $a->{durationMs}, '>=', 9900, "it took 10 s ($a->{durationMs} ms)";
    cmp_ok $a->{durationMs}, '<', 12000, 'not more';
    $s->wait_until('the retry 5 s later delivers it', sub {
        grep { $_->{answer} eq '200' } $rx->received('/hang') }, 20);
    my ($ok) = grep { $_->{answer} eq '200' } $rx->received('/hang');
    is $ok->{id}, $want, 'the same event';
    Remit::Webhook::stop_deliverer($d);
    quiet();
};

subtest 'a loopback destination is refused unless private destinations are allowed' => sub {
    my $rx = receiver();
    my $ep = endpoint($rx, '/private');
    my $d = Remit::Webhook::deliverer($s, webhook_allow_private => 'no');
    batch('private');
    $s->wait_until('an attempt is recorded', sub {
        $dbh->selectrow_array('SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = ?',
            undef, $ep) });
    my $dl = $s->req(GET => "/api/v1/webhook-endpoints/$ep/deliveries", token => $admin);
    my $a = $dl->{json}{data}[0];
    is $a->{status}, undef, 'no status';
    like $a->{error}, qr/destination refused/, 'refused';
    is $rx->arrived, 0, 'the receiver got no connection';
    Remit::Webhook::stop_deliverer($d);
};

subtest 'http:// is refused unless the configuration allows it' => sub {
    my $t = Remit::Test->stack(conf => { webhook_allow_private => 'yes' });
    my $o = $t->new_org;
    my $res = $t->req(POST => '/api/v1/webhook-endpoints', token => $o->{token},
        json => { url => 'http://127.0.0.1:9/x', events => ['*'] });
    is_error($res, 400, 'VALIDATION_ERROR', 'http:// → 400');
    like $res->{json}{error}{details}{url}, qr/https/, 'the detail says https';
    is $t->req(POST => '/api/v1/webhook-endpoints', token => $o->{token},
        json => { url => 'https://127.0.0.1:9/x', events => ['*'] })->{status}, 201, 'https:// → 201';
};

is_deeply [Remit::Webhook::findings()], [], 'no error or sanitizer report in the deliverers\' logs';
done_testing;
