use strict;
use warnings;

# doc/openapi.yaml#Idempotency under concurrency: twins of one request (one key, one body) sent at the same
# instant have exactly one effect, and each answers the success or 409
# IDEMPOTENCY_KEY_IN_PROGRESS. Then, with a lock held from the test, the waits the contract
# describes, one step at a time: a twin waits for the first attempt and replays it, runs
# itself when the first failed, and gives up after idem_wait seconds with 409.

use Test::More;
use Time::HiRes qw(sleep time);
use Remit::Test qw(:DEFAULT tag count_delta);

my $TWINS = 16;
my $ROUNDS = 3;
my $IDEM_WAIT = 2;

my $s = Remit::Test->stack(start => 0);
# No purge by the pool: the lock waits counted below are the requests' own.
$s->conf_set(workers => $TWINS, idem_wait => $IDEM_WAIT, purge_interval => 0);
$s->start;
my $dbh = $s->dbh;

my $org = $s->new_org;
my $admin = $org->{token};
my $creator = $s->new_user($admin, roles => ['CREATOR']);
my @approvers = map { $s->new_user($admin, roles => ['APPROVER']) } 1 .. 2;
my $treasurer = $s->new_user($admin, roles => ['TREASURER']);

sub new_key { 'k-' . tag() }
sub user_body {
    return { email => 'u-' . tag() . '@example.test', name => 'Twin', roles => ['VIEWER'] };
}

sub key_rows {
    my ($key) = @_;
    return $dbh->selectall_arrayref('SELECT status, body FROM idempotency_keys WHERE idem_key = ?',
        { Slice => {} }, $key);
}

# A second connection whose transaction holds locks while the pool runs.
sub holder {
    my $h = $s->new_dbh(AutoCommit => 0);
    $h->do('SET SESSION innodb_lock_wait_timeout = 60');
    return $h;
}

# ---- twins -----------------------------------------------------------------------------

# Sends $TWINS copies of one request (one key) and checks the answers; returns the decoded
# success and the change in row counts.
sub twins {
    my ($token, $path, $status, $body) = @_;
    my $key = new_key();
    my $before = $s->row_counts;
    my $res = $s->req_together($TWINS, POST => $path, token => $token, idem => $key,
        json => $body);
    my $ok = is_twins $res, $status, "$TWINS twins of POST $path";
    my $rows = key_rows($key);
    is scalar @$rows, 1, 'one key row';
    my ($first) = grep { $_->{status} == $status } @$res;
    is $rows->[0]{body}, $first && $first->{body}, 'holding the response the twins got';
    return ($ok, count_delta($before, $s->row_counts));
}

subtest "$TWINS twins of POST /users create one user" => sub {
    for my $round (1 .. $ROUNDS) {
        my $body = user_body();
        my ($ok, $d) = twins($admin, '/api/v1/users', 201, $body);
        is_deeply $d, { users => 1, audit_events => 1, idempotency_keys => 1, batches => 0,
            payment_requests => 0, decisions => 0, ledger_entries => 0 },
            "round $round: one user, one audit event, one key";
        is $dbh->selectrow_array('SELECT COUNT(*) FROM users WHERE email = ?', undef,
            $body->{email}), 1, "round $round: one user with that email";
    }
};

subtest "$TWINS twins of a POST /users that fails each run and fail, storing nothing" => sub {
    my $taken = user_body();
    is $s->req(POST => '/api/v1/users', token => $admin, idem => 1, json => $taken)->{status},
        201, 'a user';
    my $key = new_key();
    my $before = $s->row_counts;
    my $res = $s->req_together($TWINS, POST => '/api/v1/users', token => $admin, idem => $key,
        json => $taken);
    my @bad = grep { $_->{status} != 409 || ($_->{json}{error}{code} // '') !~
        /^(CONFLICT|IDEMPOTENCY_KEY_IN_PROGRESS)$/ } @$res;
    ok !@bad, 'each answers 409 CONFLICT (or IDEMPOTENCY_KEY_IN_PROGRESS)'
        or diag join "\n", map { "$_->{status} $_->{body}" } @bad;
    cmp_ok scalar(grep { ($_->{json}{error}{code} // '') eq 'CONFLICT' } @$res), '>=', 1,
        'at least one ran';
    is_deeply $s->row_counts, $before, 'nothing written, no key row';
    my $ok = $s->req(POST => '/api/v1/users', token => $admin, idem => $key, json => user_body());
    is $ok->{status}, 201, 'the key with another email: 201';
};

# The domain handlers land one by one; a step that still answers 501 skips its subtest.
sub step {
    my ($method, $path, $token, $want, %o) = @_;
    my $r = $s->req($method, $path, token => $token, idem => 1, %o);
    return $r->{status} == $want ? $r->{json}{data} : undef;
}
my $REQUEST = { amount => '1000.00', currency => 'USD', beneficiaryName => 'Twin Ltd',
    beneficiaryAccount => 'GB82 WEST 1234 5698 7654 32', purpose => 'twins' };
sub draft_batch {
    step(POST => '/api/v1/batches', $creator->{token}, 201, json => { name => 'B ' . tag() });
}
sub add_request {
    my ($batch) = @_;
    step(POST => "/api/v1/batches/$batch->{id}/requests", $creator->{token}, 201, json => $REQUEST);
}
sub submitted_request {
    my $b = draft_batch() or return;
    my $r = add_request($b) or return;
    step(POST => "/api/v1/batches/$b->{id}/submit", $creator->{token}, 200) or return;
    return $r;
}
sub approved_request {
    my $r = submitted_request() or return;
    step(POST => "/api/v1/requests/$r->{id}/approve", $approvers[0]{token}, 200, json => {})
        or return;
    return $r;
}
sub get_request { $s->req(GET => "/api/v1/requests/$_[0]", token => $admin)->{json}{data} }

# What one request of the kind changes, measured on a request of its own.
sub effect_of {
    my ($run) = @_;
    my $before = $s->row_counts;
    $run->() or return;
    return count_delta($before, $s->row_counts);
}

subtest "$TWINS twins of POST /batches/{id}/requests add one request" => sub {
    my $b = draft_batch();
    plan skip_all => 'POST /batches is not ready' unless $b;
    plan skip_all => 'POST /batches/{id}/requests is not ready' unless add_request($b);
    for my $round (1 .. $ROUNDS) {
        my $batch = draft_batch();
        my $v0 = $s->req(GET => "/api/v1/batches/$batch->{id}", token => $admin)
            ->{json}{data}{version};
        my ($ok, $d) = twins($creator->{token}, "/api/v1/batches/$batch->{id}/requests", 201,
            $REQUEST);
        is $d->{payment_requests}, 1, "round $round: one payment request";
        is $dbh->selectrow_array('SELECT COUNT(*) FROM payment_requests WHERE batch_id = ?', undef,
            $batch->{id}), 1, "round $round: one in the batch";
        is $dbh->selectrow_array(q{SELECT COUNT(*) FROM audit_events e JOIN payment_requests r
            ON e.object_id = r.id AND e.object_type = 'request' WHERE r.batch_id = ?}, undef,
            $batch->{id}), 1, "round $round: one audit event for it";
        is $s->req(GET => "/api/v1/batches/$batch->{id}", token => $admin)->{json}{data}{version},
            $v0 + 1, "round $round: the batch version moved by one";
    }
};

subtest "$TWINS twins of POST /requests/{id}/approve approve once" => sub {
    my $ref = submitted_request();
    plan skip_all => 'batches, requests or submit are not ready' unless $ref;
    my $one = effect_of(sub { step(POST => "/api/v1/requests/$ref->{id}/approve",
        $approvers[1]{token}, 200, json => {}) });
    plan skip_all => 'approve is not ready' unless $one;
    for my $round (1 .. $ROUNDS) {
        my $r = submitted_request();
        my ($ok, $d) = twins($approvers[1]{token}, "/api/v1/requests/$r->{id}/approve", 200,
            { comment => 'ok' });
        is_deeply $d, $one, "round $round: the effect of one approve (one decision, one "
            . 'OBLIGATION, its audit events)';
        is $dbh->selectrow_array('SELECT COUNT(*) FROM decisions WHERE request_id = ?', undef,
            $r->{id}), 1, "round $round: one decision";
        is_deeply $dbh->selectcol_arrayref(
            'SELECT type FROM ledger_entries WHERE request_id = ?', undef, $r->{id}),
            ['OBLIGATION'], "round $round: one OBLIGATION entry";
        my $now = get_request($r->{id});
        is $now->{status}, 'APPROVED', "round $round: APPROVED";
        is $now->{approvalCount}, 1, "round $round: approvalCount 1";
    }
};

subtest "$TWINS twins of POST /requests/{id}/mark-paid pay once" => sub {
    my $ref = approved_request();
    plan skip_all => 'batches, requests, submit or approve are not ready' unless $ref;
    my $one = effect_of(sub { step(POST => "/api/v1/requests/$ref->{id}/mark-paid",
        $treasurer->{token}, 200, json => {}) });
    plan skip_all => 'mark-paid is not ready' unless $one;
    for my $round (1 .. $ROUNDS) {
        my $r = approved_request();
        my ($ok, $d) = twins($treasurer->{token}, "/api/v1/requests/$r->{id}/mark-paid", 200,
            { paymentReference => "REF-$round" });
        is_deeply $d, $one, "round $round: the effect of one mark-paid (one SETTLEMENT, its "
            . 'audit events)';
        is_deeply $dbh->selectcol_arrayref(
            'SELECT type FROM ledger_entries WHERE request_id = ? ORDER BY id', undef, $r->{id}),
            [qw(OBLIGATION SETTLEMENT)], "round $round: one SETTLEMENT entry";
        my $now = get_request($r->{id});
        is $now->{status}, 'PAID', "round $round: PAID";
        is $now->{paymentReference}, "REF-$round", "round $round: the reference";
    }
};

# ---- the waits, one step at a time -----------------------------------------------------

# Every mutation locks its organisation's audit_heads row before COMMIT: holding it from
# the test stops the first attempt after it has claimed the key.
subtest 'a twin waits for the first attempt and then replays its result' => sub {
    my $h = holder();
    $h->selectrow_array('SELECT seq FROM audit_heads WHERE org_id = ? FOR UPDATE', undef,
        $org->{orgId});
    my ($key, $body) = (new_key(), user_body());
    my $before = $s->row_counts;
    my $first = $s->req_bg(POST => '/api/v1/users', token => $admin, idem => $key, json => $body);
    $s->wait_until('the first attempt waits for the audit head', sub { $s->lock_waits == 1 });
    my $twin = $s->req_bg(POST => '/api/v1/users', token => $admin, idem => $key, json => $body);
    $s->wait_until('the twin waits for the key', sub { $s->lock_waits == 2 });
    $h->rollback;
    my ($a, $b) = ($first->(), $twin->());
    is $a->{status}, 201, 'the first: 201';
    ok !exists $a->{headers}{'idempotent-replayed'}, 'the first is no replay';
    is $b->{status}, 201, 'the twin: 201';
    is $b->{headers}{'idempotent-replayed'}, 'true', 'the twin is a replay';
    is $b->{body}, $a->{body}, 'of the same body';
    is_deeply count_delta($before, $s->row_counts), { users => 1, audit_events => 1, idempotency_keys => 1,
        batches => 0, payment_requests => 0, decisions => 0, ledger_entries => 0 }, 'one user';
    $h->disconnect;
};

# The first attempt stops in the users insert, behind a user with the same email that the
# test inserts and has not committed yet; committing it makes the first attempt fail.
subtest 'a twin runs itself when the first attempt failed' => sub {
    my $h = holder();
    my ($key, $body) = (new_key(), user_body());
    $h->do('INSERT INTO users (org_id, email, email_key, name, roles) VALUES (?, ?, ?, ?, 16)',
        undef, $org->{orgId}, $body->{email}, $body->{email}, 'Holder');
    my $before = $s->row_counts;
    my $first = $s->req_bg(POST => '/api/v1/users', token => $admin, idem => $key, json => $body);
    $s->wait_until('the first attempt waits on the email', sub { $s->lock_waits == 1 });
    my $twin = $s->req_bg(POST => '/api/v1/users', token => $admin, idem => $key, json => $body);
    $s->wait_until('the twin waits for the key', sub { $s->lock_waits == 2 });
    $h->commit;
    my ($a, $b) = ($first->(), $twin->());
    is_error $a, 409, 'CONFLICT', 'the first: 409 CONFLICT';
    is_error $b, 409, 'CONFLICT',
        'the twin ran itself: 409 CONFLICT, neither a replay nor IN_PROGRESS';
    is_deeply count_delta($before, $s->row_counts), { users => 1, audit_events => 0, idempotency_keys => 0,
        batches => 0, payment_requests => 0, decisions => 0, ledger_entries => 0 },
        'only the test\'s user; no key row';
    $h->disconnect;
};

subtest "a twin still waiting after idem_wait ($IDEM_WAIT s) is 409 IN_PROGRESS" => sub {
    my $h = holder();
    my ($key, $body) = (new_key(), user_body());
    # An attempt that holds the key longer than anybody waits: its row, not committed.
    $h->do(q{INSERT INTO idempotency_keys (user_id, idem_key, fingerprint, expires_at)
        VALUES (?, ?, REPEAT('x', 32), NOW(3) + INTERVAL 1 DAY)}, undef, $org->{userId}, $key);
    my $before = $s->row_counts;
    my $t0 = time;
    my $r = $s->req(POST => '/api/v1/users', token => $admin, idem => $key, json => $body);
    my $took = time - $t0;
    is_error $r, 409, 'IDEMPOTENCY_KEY_IN_PROGRESS', '409 IDEMPOTENCY_KEY_IN_PROGRESS';
    is $r->{headers}{'retry-after'}, '1', 'Retry-After: 1';
    cmp_ok $took, '>=', $IDEM_WAIT - 0.2, sprintf 'after waiting (%.2f s)', $took;
    cmp_ok $took, '<', $IDEM_WAIT + 3, 'but not much longer';
    is_deeply $s->row_counts, $before, 'nothing written';
    $h->rollback;
    my $again = $s->req(POST => '/api/v1/users', token => $admin, idem => $key, json => $body);
    is $again->{status}, 201, 'once the other attempt rolled back: 201';
    ok !exists $again->{headers}{'idempotent-replayed'}, 'not a replay';
    $h->disconnect;
};

# Each twin finds the expired row, deletes it (only one succeeds) and claims the key anew.
subtest "$TWINS twins with an expired key: one new effect" => sub {
    $s->stop_remit;
    $s->conf_set(idem_retention => 2);
    $s->start_remit;
    my $key = new_key();
    my $old = $s->req(POST => '/api/v1/users', token => $admin, idem => $key, json => user_body());
    is $old->{status}, 201, 'a user with the key';
    $s->wait_until('the key expires', sub { !$dbh->selectrow_array(
        'SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = ? AND expires_at > NOW(3)',
        undef, $key) });
    my $before = $s->row_counts;
    my $res = $s->req_together($TWINS, POST => '/api/v1/users', token => $admin, idem => $key,
        json => user_body());
    my $new = is_twins $res, 201, "$TWINS twins with the expired key and another body";
    isnt $new && $new->{data}{id}, $old->{json}{data}{id}, 'a new user';
    is_deeply count_delta($before, $s->row_counts), { users => 1, audit_events => 1, idempotency_keys => 0,
        batches => 0, payment_requests => 0, decisions => 0, ledger_entries => 0 },
        'one user, one audit event; the key row replaced';
    my ($success) = grep { $_->{status} == 201 } @$res;
    is_deeply [ map { $_->{body} } @{ key_rows($key) } ], [ $success && $success->{body} ],
        'one key row, holding the new response';
    $s->stop_remit;
    $s->conf_set(idem_retention => 86400);
    $s->start_remit;
};

subtest 'the audit chain still verifies' => sub {
    my $r = $s->remit('verify-audit');
    is $r->{exit}, 0, 'remit verify-audit exits 0' or diag $r->{stderr};
};

done_testing;
