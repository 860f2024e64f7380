use strict;
use warnings;

# doc/openapi.yaml#Idempotency: "A failed attempt (4xx, 5xx, crash) stores nothing, so the client may retry with
# the same key." A worker is SIGKILLed inside its transaction, after it has claimed the key
# (the claim is the transaction's first statement) and while it waits for a row lock the
# test holds. The retry with the same key is a normal first run: one effect, no replay.
# Once the worker has sent the statement that ends its transaction (CALL tx_finish: answer,
# last audit event, COMMIT), the outcome is the database's: killed while that statement
# waits for the audit chain's head, the attempt commits once and the retry replays it.

use Test::More;
use Time::HiRes qw(sleep time);
use Remit::Test qw(:DEFAULT tag);

my $s = Remit::Test->crash_stack;
my $dbh = $s->dbh;

my $org = $s->new_org;
my $admin = $org->{token};
my $creator = $s->new_user($admin, roles => ['CREATOR']);
my $approver = $s->new_user($admin, roles => ['APPROVER']);
my $treasurer = $s->new_user($admin, roles => ['TREASURER']);

sub plus {
    my ($before, %delta) = @_;
    return { map { $_ => $before->{$_} + ($delta{$_} // 0) } keys %$before };
}

# Holds the lock of $lock_sql (a SELECT … FOR UPDATE) while the request runs into it, kills
# the worker serving it, releases the lock and retries with the same key. Returns the retry.
sub crash_then_retry {
    my (%o) = @_;
    # The pool respawns a worker that died young after a delay: start with every worker up,
    # so the busy one stands out.
    $s->wait_until('all 4 workers run', sub { scalar($s->worker_pids) == 4 }, 40);
    my $key = 'k-' . tag();
    my %req = (token => $o{token}, idem => $key, json => $o{json});
    my $h = $s->new_dbh(AutoCommit => 0);
    $h->do('SET SESSION innodb_lock_wait_timeout = 60');
    $h->selectall_arrayref($o{lock_sql}, undef, @{ $o{lock_bind} });

    my $first = $s->req_bg(POST => $o{path}, %req);
    $s->wait_until('the first attempt waits for the lock', sub { $s->lock_waits == 1 });
    my $claimed = $dbh->selectrow_array(q{SELECT trx_rows_modified FROM
        information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'});
    cmp_ok $claimed // 0, '>=', 1, 'it has written in its transaction already (the key claim)';
    is $dbh->selectrow_array('SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = ?',
        undef, $key), 0, 'nothing of it is committed';

    my @busy = $s->busy_workers;
    is scalar @busy, 1, 'one worker is serving a request' or diag "busy: @busy";
    kill 'KILL', @busy;
    is_error $first->(), 502, 'BAD_GATEWAY', 'the client of the killed worker gets 502';

    $h->rollback;
    $h->disconnect;
    # MariaDB rolls the killed worker's transaction back once it notices the disconnect;
    # until then the retry waits for the key.
    my $retry = $s->req(POST => $o{path}, %req);
    is $retry->{status}, $o{status}, "the retry with the same key: $o{status}"
        or diag $retry->{body};
    if ($o{committed}) {
        is $retry->{headers}{'idempotent-replayed'}, 'true',
            'a replay of the killed attempt, which committed';
    } else {
        ok !exists $retry->{headers}{'idempotent-replayed'}, 'a normal run, not a replay';
    }
    my $rows = $dbh->selectall_arrayref(
        'SELECT status, body FROM idempotency_keys WHERE idem_key = ?', { Slice => {} }, $key);
    is_deeply $rows, [ { status => $o{status}, body => $retry->{body} } ],
        'one key row, holding the retry\'s response';
    my $again = $s->req(POST => $o{path}, %req);
    ok $again->{status} == $o{status} && ($again->{headers}{'idempotent-replayed'} // '') eq 'true'
        && $again->{body} eq $retry->{body}, 'a third attempt replays the retry';
    $s->wait_until('no transaction is left open', sub {
        !$dbh->selectrow_array('SELECT COUNT(*) FROM information_schema.INNODB_TRX') });
    return $retry;
}

my $AUDIT_HEAD = 'SELECT seq FROM audit_heads WHERE org_id = ? FOR UPDATE';
my $BATCH_ROW = 'SELECT version FROM batches WHERE id = ? FOR UPDATE';

subtest 'POST /users: killed while its last statement waits for the audit head' => sub {
    my $body = { email => 'crash-' . tag() . '@example.test', name => 'Crash',
        roles => ['VIEWER'] };
    my $before = $s->row_counts;
    crash_then_retry(path => '/api/v1/users', token => $admin, json => $body,
        lock_sql => $AUDIT_HEAD, lock_bind => [ $org->{orgId} ], status => 201,
        committed => 1);
    is_deeply $s->row_counts, plus($before, users => 1, audit_events => 1, idempotency_keys => 1),
        'one user, one audit event, one key: the killed attempt committed once, nothing twice';
    is $dbh->selectrow_array('SELECT COUNT(*) FROM users WHERE email = ?', undef, $body->{email}),
        1, 'one user with that email';
};

# The domain handlers land one by one; a step that still answers 501 skips its subtest.
sub step {
    my ($path, $token, $want, $json) = @_;
    my $r = $s->req(POST => $path, token => $token, idem => 1, json => $json // {});
    return $r->{status} == $want ? $r->{json}{data} : undef;
}
my $REQUEST = { amount => '250.00', currency => 'CHF', beneficiaryName => 'Crash AG',
    beneficiaryAccount => 'CH93 0076 2011 6238 5295 7' };
sub draft_batch { step('/api/v1/batches', $creator->{token}, 201, { name => 'Crash ' . tag() }) }
sub add_request { step("/api/v1/batches/$_[0]{id}/requests", $creator->{token}, 201, $REQUEST) }
sub submitted {
    my $b = draft_batch() or return;
    my $r = add_request($b) or return;
    step("/api/v1/batches/$b->{id}/submit", $creator->{token}, 200) or return;
    return $r;
}
sub get { $s->req(GET => $_[0], token => $admin)->{json}{data} }

subtest 'POST /batches/{id}/requests: killed while waiting for the batch row, then retried' => sub {
    my $b = draft_batch();
    plan skip_all => 'POST /batches is not ready' unless $b;
    plan skip_all => 'POST /batches/{id}/requests is not ready' unless add_request($b);
    my $v0 = get("/api/v1/batches/$b->{id}")->{version};
    my $before = $s->row_counts;
    my $r = crash_then_retry(path => "/api/v1/batches/$b->{id}/requests",
        token => $creator->{token}, json => $REQUEST, lock_sql => $BATCH_ROW,
        lock_bind => [ $b->{id} ], status => 201);
    my $after = $s->row_counts;
    is $after->{payment_requests}, $before->{payment_requests} + 1, 'one payment request more';
    is $dbh->selectrow_array('SELECT COUNT(*) FROM payment_requests WHERE batch_id = ?', undef,
        $b->{id}), 2, 'the batch holds two';
    is get("/api/v1/batches/$b->{id}")->{version}, $v0 + 1, 'the batch version moved by one';
    is $dbh->selectrow_array(q{SELECT COUNT(*) FROM audit_events WHERE object_type = 'request'
        AND object_id = ?}, undef, $r->{json}{data}{id}), 1, 'one audit event for the request';
};

subtest 'POST /requests/{id}/approve: killed while waiting for the batch row, then retried' => sub {
    my $rq = submitted();
    plan skip_all => 'batches, requests or submit are not ready' unless $rq;
    my $before = $s->row_counts;
    my $r = crash_then_retry(path => "/api/v1/requests/$rq->{id}/approve",
        token => $approver->{token}, json => { comment => 'after a crash' },
        lock_sql => $BATCH_ROW, lock_bind => [ $rq->{batchId} ], status => 200);
    is $r->{json}{data}{status}, 'APPROVED', 'APPROVED';
    is $dbh->selectrow_array('SELECT COUNT(*) FROM decisions WHERE request_id = ?', undef,
        $rq->{id}), 1, 'one decision';
    is_deeply $dbh->selectcol_arrayref('SELECT type FROM ledger_entries WHERE request_id = ?',
        undef, $rq->{id}), ['OBLIGATION'], 'one OBLIGATION entry';
    is $s->row_counts->{idempotency_keys}, $before->{idempotency_keys} + 1, 'one key row more';
};

subtest 'POST /requests/{id}/mark-paid: killed waiting for the audit head, then retried' => sub {
    my $rq = submitted();
    plan skip_all => 'batches, requests or submit are not ready' unless $rq;
    plan skip_all => 'approve is not ready'
        unless step("/api/v1/requests/$rq->{id}/approve", $approver->{token}, 200);
    my $r = crash_then_retry(path => "/api/v1/requests/$rq->{id}/mark-paid",
        token => $treasurer->{token}, json => { paymentReference => 'CRASH-1' },
        lock_sql => $AUDIT_HEAD, lock_bind => [ $org->{orgId} ], status => 200);
    is $r->{json}{data}{status}, 'PAID', 'PAID';
    is_deeply $dbh->selectcol_arrayref(
        'SELECT type FROM ledger_entries WHERE request_id = ? ORDER BY id', undef, $rq->{id}),
        [qw(OBLIGATION SETTLEMENT)], 'one SETTLEMENT entry';
};

subtest 'the pool replaced the killed workers' => sub {
    $s->wait_until('all 4 workers run', sub { scalar($s->worker_pids) == 4 });
    is $s->req(GET => '/healthz')->{status}, 200, 'healthz 200';
};

subtest 'the audit chain still verifies' => sub {
    my $r = $s->remit('verify-audit');
    is $r->{exit}, 0, 'remit verify-audit exits 0' or diag $r->{stderr};
};

done_testing;
