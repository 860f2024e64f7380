use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);
use Remit::Test;

# Load shedding (issue 16; README.md, "Under a burst"). Past capacity remit answers 503
# SERVICE_UNAVAILABLE with Retry-After and the JSON envelope, and does nothing: nginx when
# more requests than its in-flight limit are in the pool, the worker when a request waited
# longer than shed_after_ms for it. Nothing here depends on timing luck: one worker, held
# inside a transaction by a row lock the test owns, keeps every later request waiting for
# exactly as long as the test decides.
my $s = Remit::Test->stack(start => 0, in_flight => 2);
$s->conf_set(workers => 1, shed_after_ms => 200);
$s->start;

my $org = $s->new_org;
my $creator = $s->new_user($org->{token}, roles => ['CREATOR']);
my $batch = $s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => 1,
    json => { name => 'shed' })->{json}{data}{id};
my $path = "/api/v1/batches/$batch/requests";
my %body = (amount => '10.00', currency => 'EUR', beneficiaryName => 'Shed GmbH',
    beneficiaryAccount => 'DE89 3704 0044 0532 0130 00');

sub add {
    my ($key, %o) = @_;
    my $send = $o{bg} ? 'req_bg' : 'req';
    return $s->$send(POST => $path, token => $creator->{token}, idem => $key, json => \%body,
        headers => $o{headers} // {});
}

# Connections waiting in the pool's accept queue (Recv-Q of its listening socket).
sub queued {
    my $sock = $s->socket_path;
    for (qx(ss -xlnH 2>/dev/null)) {
        my @f = split ' ';
        return $f[2] if grep { $_ eq $sock } @f;
    }
    return -1;
}

# What a key left in the database: its idempotency row, its audit events.
sub effects {
    my ($key) = @_;
    my $dbh = $s->dbh;
    return (scalar $dbh->selectrow_array(
            'SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = ?', undef, $key),
        scalar $dbh->selectrow_array(
            'SELECT COUNT(*) FROM audit_events WHERE idempotency_key = ?', undef, $key));
}

# The one worker, stopped inside request A's transaction until the returned sub is called.
sub hold_worker {
    my $locker = $s->new_dbh(AutoCommit => 0);
    $locker->selectall_arrayref('SELECT * FROM audit_heads WHERE org_id = ? FOR UPDATE', undef,
        $org->{orgId});
    my $a = add(Remit::Test::random_key(), bg => 1);
    $s->wait_until('the worker waits inside request A for the audit head',
        sub { $s->lock_waits == 1 });
    return ($a, sub { $locker->rollback; $locker->disconnect });
}

sub is_shed {
    my ($res, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    subtest $name => sub {
        is_error $res, 503, 'SERVICE_UNAVAILABLE';
        is $res->{headers}{'retry-after'}, '1', 'Retry-After: 1';
        like $res->{headers}{'x-request-id'} // '', qr/^\S+$/, 'X-Request-Id';
    };
}

subtest 'a request that waited past shed_after_ms: 503 from the worker, nothing done' => sub {
    my ($a, $release) = hold_worker();
    my $key = Remit::Test::random_key();
    my $b = add($key, bg => 1);
    $s->wait_until('request B waits in the pool\'s accept queue', sub { queued() == 1 });
    sleep 0.3;    # B keeps waiting as long as A holds the only worker: past the 200 ms bound
    $release->();
    is $a->()->{status}, 201, 'request A, admitted before the wait, is served';
    my $res = $b->();
    is_shed $res, '503 SERVICE_UNAVAILABLE with Retry-After';
    like $res->{json}{error}{message}, qr/waited too long/, 'the worker\'s message';
    is $res->{headers}{'x-accel-redirect'}, undef,
        'answered from nginx\'s paced location (a header nginx did not act on would pass)';
    is_deeply [ effects($key) ], [ 0, 0 ], 'no idempotency row, no audit event';

    my $retry = add($key);
    is $retry->{status}, 201, 'the same key, retried: 201';
    ok !$retry->{headers}{'idempotent-replayed'}, 'the first run of it, not a replay';
    my $again = add($key);
    is $again->{status}, 201, 'once more: 201';
    is $again->{headers}{'idempotent-replayed'}, 'true', 'a replay';
    is $again->{json}{data}{id}, $retry->{json}{data}{id}, 'of the same request';
    is_deeply [ effects($key) ], [ 1, 1 ], 'exactly one effect';
};

subtest 'past the in-flight limit: 503 from nginx at once, nothing done' => sub {
    my ($a, $release) = hold_worker();
    my $b = $s->req_bg(GET => '/healthz');
    $s->wait_until('request B waits in the pool\'s accept queue', sub { queued() == 1 });
    my $key = Remit::Test::random_key();
    # Two requests are in the pool (A served, B queued): the third does not wait for them.
    my $res = add($key);
    is_shed $res, 'the third: 503 SERVICE_UNAVAILABLE with Retry-After, while A still holds';
    like $res->{json}{error}{message}, qr/too many requests/, 'nginx\'s message';
    is $s->lock_waits, 1, 'A is still held: the answer did not wait for the pool';
    is_deeply [ effects($key) ], [ 0, 0 ], 'no idempotency row, no audit event';
    sleep 0.3;
    $release->();
    is $a->()->{status}, 201, 'request A is served';
    is_shed $b->(), 'request B, which waited past the bound, is shed by the worker';
    is add($key)->{status}, 201, 'the shed key, retried: 201';
    is_deeply [ effects($key) ], [ 1, 1 ], 'exactly one effect';
};

subtest 'a client cannot force shedding or escape it with a header' => sub {
    # nginx sets REMIT_START itself; a client's Remit-Start arrives as HTTP_REMIT_START and a
    # header spelled REMIT_START is dropped (underscores_in_headers is off).
    my $long_ago = { 'Remit-Start' => '1.000' };
    my $key = Remit::Test::random_key();
    is add($key, headers => $long_ago)->{status}, 201,
        'an idle pool serves a request claiming an ancient start';
    my $raw = $s->raw_http("GET /healthz HTTP/1.1\r\nHost: x\r\nREMIT_START: 1.000\r\n"
        . "Connection: close\r\n\r\n");
    is parse_http_response($raw)->{status}, 200, 'REMIT_START as a header: served';

    my ($a, $release) = hold_worker();
    $key = Remit::Test::random_key();
    my $b = add($key, bg => 1, headers => { 'Remit-Start' => '99999999999.999' });
    $s->wait_until('request B waits in the pool\'s accept queue', sub { queued() == 1 });
    sleep 0.3;
    $release->();
    is $a->()->{status}, 201, 'request A is served';
    is_shed $b->(), 'a request claiming a start in the future still waited: shed';
    is_deeply [ effects($key) ], [ 0, 0 ], 'nothing done';
};

subtest 'shed_after_ms = 0 turns the worker\'s shedding off' => sub {
    $s->conf_set(shed_after_ms => 0);
    $s->stop_remit;
    $s->start_remit;
    my ($a, $release) = hold_worker();
    my $key = Remit::Test::random_key();
    my $b = add($key, bg => 1);
    $s->wait_until('request B waits in the pool\'s accept queue', sub { queued() == 1 });
    sleep 0.3;
    $release->();
    is $a->()->{status}, 201, 'request A is served';
    is $b->()->{status}, 201, 'request B, however long it waited, too';
    is_deeply [ effects($key) ], [ 1, 1 ], 'with its one effect';
};

done_testing;
