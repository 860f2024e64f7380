# Webhook endpoints (API §12): the ADMIN's API, and `remit deliver` sending the chain's events
# to a real receiver on loopback that checks every signature. Retries run on a scaled
# schedule (webhook_time_scale): 5 s is 50 µs, 3 days 2.6 s.
use strict;
use warnings;
use Test::More;
use Remit::Test;
use Remit::Webhook;
use Time::HiRes qw(time sleep);

my $s = Remit::Test->stack(conf => { webhook_allow_http => 'yes', webhook_allow_private => 'yes',
    webhook_time_scale => 100000, deliver_poll_ms => 20 });
my $org = $s->new_org;
my $admin = $org->{token};
my $creator = $s->new_user($admin, roles => ['CREATOR'])->{token};
my $viewer = $s->new_user($admin, roles => ['VIEWER'])->{token};
my $other = $s->new_org;
my $rx = Remit::Webhook::Receiver->start($s->state_dir . '/rx');
my $dbh = $s->dbh;

sub endpoints { scalar $dbh->selectrow_array('SELECT COUNT(*) FROM webhook_endpoints') }

sub create {
    my ($token, $json) = @_;
    return $s->req(POST => '/api/v1/webhook-endpoints', token => $token, json => $json);
}

sub batch {
    my ($name) = @_;
    my $res = $s->req(POST => '/api/v1/batches', token => $creator, idem => 1,
        json => { name => $name });
    die "batch: $res->{status}" unless $res->{status} == 201;
    return $res->{json}{data}{id};
}

# The ids of the organisation's events after $after (chain order) whose action is in @actions.
sub events_after {
    my ($after, @actions) = @_;
    my %want = map { $_ => 1 } @actions;
    my $rows = $dbh->selectall_arrayref(
        'SELECT id, action FROM audit_events WHERE org_id = ? AND id > ? ORDER BY seq',
        undef, $org->{orgId}, $after);
    return map { $_->[0] } grep { !@actions || $want{ $_->[1] } } @$rows;
}

# An endpoint at $path of the receiver for @events; the receiver learns its secret. Its id.
sub endpoint {
    my ($path, @events) = @_;
    my $res = create($admin, { url => $rx->url($path), events => \@events });
    die "endpoint: $res->{body}" unless $res->{status} == 201;
    $rx->secret($path, $res->{json}{data}{secret});
    return $res->{json}{data}{id};
}

sub last_event { scalar $dbh->selectrow_array('SELECT COALESCE(MAX(id), 0) FROM audit_events') }

subtest 'bad input is a 400 and creates nothing' => sub {
    my $before = endpoints();
    my @bad = (
        [{ events => ['*'] }, 'url'],
        [{ url => 'ftp://127.0.0.1/x', events => ['*'] }, 'url'],
        [{ url => 'not a url', events => ['*'] }, 'url'],
        [{ url => 'https://user:pw@example.com/', events => ['*'] }, 'url'],
        [{ url => 'https://example.com/' . ('a' x 2048), events => ['*'] }, 'url'],
        [{ url => 'https://example.com/' }, 'events'],
        [{ url => 'https://example.com/', events => [] }, 'events'],
        [{ url => 'https://example.com/', events => ['*', 'batch.created'] }, 'events[0]'],
        [{ url => 'https://example.com/', events => ['Batch.Created'] }, 'events[0]'],
        [{ url => 'https://example.com/', events => [7] }, 'events[0]'],
        [{ url => 'https://example.com/', events => ['*'], secret => 'x' }, 'secret'],
    );
    for my $b (@bad) {
        my $res = create($admin, $b->[0]);
        is_error($res, 400, 'VALIDATION_ERROR', "400 for $b->[1]");
        ok exists $res->{json}{error}{details}{ $b->[1] }, "the detail names $b->[1]"
            or diag $res->{body};
    }
    is endpoints(), $before, 'no endpoint was made';
};

subtest 'only an ADMIN registers and sees endpoints' => sub {
    is_error(create($viewer, { url => $rx->url, events => ['*'] }), 403, 'FORBIDDEN', 'a VIEWER: 403');
    is_error($s->req(GET => '/api/v1/webhook-endpoints', token => $creator), 403, 'FORBIDDEN',
        'a CREATOR may not list them');
};

my ($all, $secret);
subtest 'an endpoint is created with its secret, shown once' => sub {
    my $res = create($admin, { url => $rx->url, events => ['*'], description => 'ERP' });
    is $res->{status}, 201, 'created' or diag $res->{body};
    my $d = $res->{json}{data};
    like $d->{secret}, qr{^whsec_[A-Za-z0-9+/]{43}=$}, 'whsec_ + base64 of 32 bytes';
    is_deeply [@$d{qw(url description active)}, $d->{events}], [$rx->url, 'ERP', JSON::PP::true, ['*']],
        'as given';
    ($all, $secret) = ($d->{id}, $d->{secret});
    $rx->secret('/hook', $secret);
    my $row = $dbh->selectrow_hashref('SELECT * FROM webhook_endpoints WHERE id = ?', undef, $all);
    is $row->{org_id}, $org->{orgId}, 'the organisation\'s';
    is $row->{cursor_seq}, $dbh->selectrow_array('SELECT seq - 1 FROM audit_heads WHERE org_id = ?',
        undef, $org->{orgId}), 'its cursor is the chain\'s head before its own event';
    my $one = $s->req(GET => "/api/v1/webhook-endpoints/$all", token => $admin);
    is $one->{status}, 200, 'GET one';
    ok !exists $one->{json}{data}{secret}, 'without the secret';
    my $list = $s->req(GET => '/api/v1/webhook-endpoints', token => $admin);
    is_deeply [map { $_->{id} } @{ $list->{json}{data} }], [$all], 'listed, without secrets';
    ok !grep({ exists $_->{secret} } @{ $list->{json}{data} }), 'no secret in the list';
    is_error($s->req(GET => "/api/v1/webhook-endpoints/$all", token => $other->{token}), 404,
        'NOT_FOUND', 'another organisation: 404');
    my $ev = $dbh->selectrow_hashref(q{SELECT * FROM audit_events WHERE action =
        'webhook_endpoint.created' AND object_id = ?}, undef, $all);
    ok $ev, 'audited';
    unlike $ev->{data}, qr/whsec_/, 'the event does not hold the secret';
};

my $d1 = Remit::Webhook::deliverer($s);

subtest 'events are delivered in chain order, signed, each once' => sub {
    my $from = last_event() - 1;   # the endpoint's own creation event is the first
    batch("B$_") for 1 .. 5;
    my @want = events_after($from);
    $s->wait_until('every event arrived', sub { $rx->received('/hook') >= @want }, 20);
    my @got = $rx->received('/hook');
    is_deeply [map { $_->{id} } @got], \@want, 'the ids, in chain order, once each';
    is scalar(grep { $_->{sig_ok} } @got), scalar @got, 'every signature checks out';
    my $p = JSON::PP->new->decode($got[-1]{body});
    is_deeply [sort keys %$p], [qw(createdAt data id type)], 'the payload is {id, type, createdAt, data}';
    is $p->{type}, 'batch.created', 'type is the action';
    is $p->{data}{id}, $p->{id}, 'data is the event';
    is $got[-1]{ctype}, 'application/json', 'JSON';
    ok abs($got[-1]{ts} - time) < 60, 'webhook-timestamp is now';
    $s->wait_until('the cursor is at the head', sub {
        $dbh->selectrow_array('SELECT cursor_seq FROM webhook_endpoints WHERE id = ?', undef, $all)
            == $dbh->selectrow_array('SELECT seq FROM audit_heads WHERE org_id = ?', undef, $org->{orgId})
    });
    my $dl = $s->req(GET => "/api/v1/webhook-endpoints/$all/deliveries?limit=2", token => $admin);
    is $dl->{status}, 200, 'deliveries';
    is_deeply [map { [$_->{eventId}, $_->{attempt}, $_->{status}, $_->{error}] } @{ $dl->{json}{data} }],
        [[$want[-1], 1, 200, undef], [$want[-2], 1, 200, undef]], 'the latest attempts, newest first';
};

subtest 'an endpoint hears only the actions it names' => sub {
    my $id = endpoint('/submitted', 'batch.cancelled');
    my $from = last_event();
    my $b = batch('to cancel');
    is $s->req(POST => "/api/v1/batches/$b/cancel", token => $creator, idem => 1)->{status}, 200,
        'cancelled';
    my ($want) = events_after($from, 'batch.cancelled');
    $s->wait_until('the cancellation arrived', sub { $rx->received('/submitted') });
    sleep 0.3;
    my @mine = $rx->received('/submitted');
    is_deeply [map { $_->{id} } @mine], [$want], 'only batch.cancelled';
    ok $mine[0]{sig_ok}, 'signed with its own secret';
    is $s->req(DELETE => "/api/v1/webhook-endpoints/$id", token => $admin)->{status}, 204, 'deleted';
};

subtest 'a 500 is retried: the same webhook-id, signed afresh' => sub {
    my $ep = endpoint('/retry', 'batch.created');
    $rx->plan('/retry', 500, 500, 200);
    my $from = last_event();
    batch('retry');
    my ($want) = events_after($from, 'batch.created');
    $s->wait_until('three attempts', sub { $rx->received('/retry') >= 3 });
    my @got = $rx->received('/retry');
    is_deeply [map { $_->{id} } @got], [($want) x 3], 'the same webhook-id each time';
    is_deeply [map { $_->{answer} } @got], [500, 500, 200], 'until the 200';
    is scalar(grep { $_->{sig_ok} } @got), 3, 'each signed';
    my $dl = $s->req(GET => "/api/v1/webhook-endpoints/$ep/deliveries", token => $admin);
    is_deeply [map { [$_->{attempt}, $_->{status}] } reverse @{ $dl->{json}{data} }],
        [[1, 500], [2, 500], [3, 200]], 'three attempts recorded';
    is $dl->{json}{data}[2]{error}, 'HTTP 500', 'the failure says why';
    is $dbh->selectrow_array('SELECT failures FROM webhook_endpoints WHERE id = ?', undef, $ep), 0,
        'the failure count starts again';
};

subtest 'a redirect is not followed' => sub {
    endpoint('/moved', 'batch.created');
    $rx->plan('/moved', 302, 200);
    my $from = last_event();
    batch('redirect');
    my ($want) = events_after($from, 'batch.created');
    $s->wait_until('the retry after the 302', sub { $rx->received('/moved') >= 2 });
    my @got = $rx->received('/moved');
    is scalar($rx->received('/elsewhere')), 0, 'nothing went to where the 302 pointed';
    is_deeply [map { [$_->{path}, $_->{answer}] } @got], [['/moved', 302], ['/moved', 200]],
        'never /elsewhere: the 302 counts as a failure and is retried';
    is_deeply [map { $_->{id} } @got], [$want, $want], 'the same event';
};

subtest 'a 410 disables the endpoint at once' => sub {
    my $id = endpoint('/gone', 'batch.created');
    $rx->plan('/gone', 410);
    batch('gone');
    $s->wait_until('disabled', sub {
        !$dbh->selectrow_array('SELECT active FROM webhook_endpoints WHERE id = ?', undef, $id) });
    my $one = $s->req(GET => "/api/v1/webhook-endpoints/$id", token => $admin);
    is $one->{json}{data}{active}, JSON::PP::false, 'inactive';
    ok $dbh->selectrow_array(q{SELECT 1 FROM audit_events WHERE action = 'webhook_endpoint.disabled'
        AND object_id = ?}, undef, $id), 'audited as webhook_endpoint.disabled';
    my $n = () = $rx->received('/gone');
    is $n, 1, 'one attempt';
    batch('after gone');
    sleep 0.5;
    is scalar(() = $rx->received('/gone')), $n, 'nothing more is sent to it';
};

subtest 'failing for 3 days (scaled) disables the endpoint' => sub {
    my $id = endpoint('/failing', 'batch.created');
    $rx->plan('/failing', (500) x 5000);
    my $t0 = time;
    batch('failing');
    $s->wait_until('disabled', sub {
        !$dbh->selectrow_array('SELECT active FROM webhook_endpoints WHERE id = ?', undef, $id) }, 30);
    cmp_ok time - $t0, '>=', 2.5, 'after 3 days / 100000 = 2.6 s, not before';
    my ($attempts, $max) = $dbh->selectrow_array(
        'SELECT COUNT(*), MAX(attempt) FROM webhook_deliveries WHERE endpoint_id = ?', undef, $id);
    cmp_ok $attempts, '>=', 6, "retried ($attempts attempts)";
    is $s->req(DELETE => "/api/v1/webhook-endpoints/$id", token => $admin)->{status}, 204, 'deleted';
};

subtest 'DELETE: 404 afterwards, nothing more sent' => sub {
    is_error($s->req(DELETE => "/api/v1/webhook-endpoints/$all", token => $other->{token}), 404,
        'NOT_FOUND', 'another organisation cannot');
    is $s->req(DELETE => "/api/v1/webhook-endpoints/$all", token => $admin)->{status}, 204, 'deleted: 204';
    is_error($s->req(GET => "/api/v1/webhook-endpoints/$all", token => $admin), 404, 'NOT_FOUND',
        'then 404');
    is_error($s->req(DELETE => "/api/v1/webhook-endpoints/$all", token => $admin), 404, 'NOT_FOUND',
        'twice: 404');
    sleep 0.3;
    my $n = () = $rx->received('/hook');
    batch('after delete');
    sleep 0.5;
    is scalar(() = $rx->received('/hook')), $n, 'nothing delivered after the delete';
    is $s->remit('verify-audit')->{exit}, 0, 'the audit chain verifies';
};

is Remit::Webhook::stop_deliverer($d1), 0, 'the deliverer stops on SIGTERM with status 0';
is_deeply [Remit::Webhook::findings()], [], 'no error or sanitizer report in the deliverer\'s log';
done_testing;
