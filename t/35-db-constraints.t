use strict;
use warnings;

use Test::More;
use Remit::Test;

# The database as the last line of defence (DESIGN.md): straight to MariaDB, around the
# service. Append-only ledger and audit rows, one entry of each type per request, amounts
# above zero, known statuses only, and a tampered audit chain that verify-audit finds.
my $s = Remit::Test->stack;
my $o = $s->new_org;
my $creator = $s->new_user($o->{token}, roles => ['CREATOR'])->{token};
my $approver = $s->new_user($o->{token}, roles => ['APPROVER'])->{token};
my $treasurer = $s->new_user($o->{token}, roles => ['TREASURER'])->{token};

my $bid = $s->req(POST => '/api/v1/batches', token => $creator, idem => 1,
    json => { name => 'B' })->{json}{data}{id};
my @q = map {
    $s->req(POST => "/api/v1/batches/$bid/requests", token => $creator, idem => 1,
        json => { amount => $_, currency => 'USD', beneficiaryName => 'N',
            beneficiaryAccount => '1' })->{json}{data}{id}
} ('5', '6');
$s->req(POST => "/api/v1/batches/$bid/submit", token => $creator, idem => 1);
$s->req(POST => "/api/v1/requests/$_/approve", token => $approver, idem => 1) for @q;
$s->req(POST => "/api/v1/requests/$q[0]/mark-paid", token => $treasurer, idem => 1);

my $dbh = $s->dbh;

# Runs SQL that must fail; returns the server's error number (0 when it succeeded).
sub refused {
    my ($sql, @bind) = @_;
    my $ok = eval { $dbh->do($sql, undef, @bind); 1 };
    return $ok ? 0 : $dbh->err;
}

my ($entry) = $dbh->selectrow_array(
    "SELECT id FROM ledger_entries WHERE request_id = ? AND type = 'OBLIGATION'", undef, $q[0]);
my ($event) = $dbh->selectrow_array('SELECT MAX(id) FROM audit_events WHERE org_id = ?', undef,
    $o->{orgId});
ok $entry && $event, 'the API wrote ledger and audit rows';

subtest 'ledger rows are append-only: UPDATE and DELETE refused by triggers' => sub {
    is refused('UPDATE ledger_entries SET amount = amount + 1 WHERE id = ?', $entry), 1644,
        'UPDATE: SIGNAL 45000';
    like $dbh->errstr, qr/append-only/, 'the trigger says why';
    is refused('DELETE FROM ledger_entries WHERE id = ?', $entry), 1644, 'DELETE';
    my ($amount) = $dbh->selectrow_array('SELECT amount FROM ledger_entries WHERE id = ?', undef,
        $entry);
    is $amount, 500, 'unchanged';
};

subtest 'audit rows are append-only: UPDATE and DELETE refused by triggers' => sub {
    is refused("UPDATE audit_events SET data = '{}' WHERE id = ?", $event), 1644, 'UPDATE';
    is refused('DELETE FROM audit_events WHERE id = ?', $event), 1644, 'DELETE';
    is refused('DELETE FROM audit_events'), 1644, 'DELETE of every row';
};

subtest 'a second entry of one type for one request is refused by the unique key' => sub {
    my $ins = 'INSERT INTO ledger_entries (org_id, request_id, batch_id, type, amount, currency)'
        . ' VALUES (?, ?, ?, ?, 500, ?)';
    is refused($ins, $o->{orgId}, $q[0], $bid, 'OBLIGATION', 'USD'), 1062, 'second OBLIGATION';
    is refused($ins, $o->{orgId}, $q[0], $bid, 'SETTLEMENT', 'USD'), 1062, 'second SETTLEMENT';
    my ($n) = $dbh->selectrow_array('SELECT COUNT(*) FROM ledger_entries WHERE request_id = ?',
        undef, $q[0]);
    is $n, 2, 'still one of each';
    is refused($ins, $o->{orgId}, $q[1], $bid, 'SETTLEMENT', 'USD'), 0,
        'a SETTLEMENT for the other request is a first one';
};

subtest 'amounts must be above zero' => sub {
    my $ins = 'INSERT INTO ledger_entries (org_id, request_id, batch_id, type, amount, currency)'
        . " VALUES (?, ?, ?, 'OBLIGATION', ?, 'USD')";
    my $bid2 = $s->req(POST => '/api/v1/batches', token => $creator, idem => 1,
        json => { name => 'C' })->{json}{data}{id};
    my $r = $s->req(POST => "/api/v1/batches/$bid2/requests", token => $creator, idem => 1,
        json => { amount => '1', currency => 'USD', beneficiaryName => 'N',
            beneficiaryAccount => '1' })->{json}{data}{id};
    for my $amount (0, -1) {
        is refused($ins, $o->{orgId}, $r, $bid2, $amount), 4025, "ledger amount $amount";
        is refused('UPDATE payment_requests SET amount = ? WHERE id = ?', $amount, $r), 4025,
            "request amount $amount";
    }
    my ($user) = $dbh->selectrow_array('SELECT created_by FROM batches WHERE id = ?', undef, $bid2);
    is refused('INSERT INTO payment_requests (org_id, batch_id, amount, currency,'
        . " beneficiary_name, beneficiary_account, created_by) VALUES (?, ?, 0, 'USD', 'n', '1', ?)",
        $o->{orgId}, $bid2, $user), 4025, 'a new request of 0';
    is refused('UPDATE approval_rules SET min_amount = -1 WHERE org_id = ?', $o->{orgId}), 0,
        '(no rules to break here)';
    is refused('INSERT INTO approval_rules (org_id, position, currency, min_amount, approvals)'
        . " VALUES (?, 0, 'USD', -1, 1)", $o->{orgId}), 4025, 'a rule minimum below 0';
};

subtest 'unknown statuses, types and decisions are refused' => sub {
    is refused("UPDATE payment_requests SET status = 'BOGUS' WHERE id = ?", $q[1]), 4025,
        'request status';
    is refused("UPDATE payment_requests SET status = 'approved' WHERE id = ?", $q[1]), 4025,
        'request status in lower case';
    is refused("UPDATE batches SET status = 'ARCHIVED' WHERE id = ?", $bid), 4025, 'batch status';
    # The org's ADMIN: a maker (the creator) would be refused by a trigger first.
    is refused("INSERT INTO decisions (org_id, request_id, approver_id, decision)"
        . " SELECT org_id, id, ?, 'MAYBE' FROM payment_requests WHERE id = ?", $o->{userId}, $q[1]),
        4025, 'decision';
    is refused("INSERT INTO ledger_entries (org_id, request_id, batch_id, type, amount, currency)"
        . " VALUES (?, ?, ?, 'REFUND', 1, 'USD')", $o->{orgId}, $q[1], $bid), 4025, 'ledger type';
    is refused("UPDATE payment_requests SET status = 'PAID' WHERE id = ?", $q[1]), 4025,
        'PAID without paidAt and paidBy';
    my ($status) = $dbh->selectrow_array('SELECT status FROM payment_requests WHERE id = ?',
        undef, $q[1]);
    is $status, 'APPROVED', 'unchanged';
};

subtest 'a request in another organisation than its batch is refused by a foreign key' => sub {
    my $other = $s->new_org;
    my ($creator_id) = $dbh->selectrow_array('SELECT created_by FROM batches WHERE id = ?',
        undef, $bid);
    is refused(q{INSERT INTO payment_requests (org_id, batch_id, amount, currency,
        beneficiary_name, beneficiary_account, created_by) VALUES (?, ?, 1, 'USD', 'N', '1', ?)},
        $other->{orgId}, $bid, $creator_id), 1452, 'INSERT: 1452 (requests_batch_org_fk)';
    is scalar $dbh->selectrow_array('SELECT COUNT(*) FROM payment_requests WHERE batch_id = ?',
        undef, $bid), 2, 'the batch still holds two';
};

subtest 'the database keeps each batch\'s request count and each creator as a maker' => sub {
    my $count = sub { $dbh->selectrow_array('SELECT request_count FROM batches WHERE id = ?',
        undef, $_[0]) };
    is $count->($bid), 2, 'request_count: the two added through the API';
    my $made = $dbh->selectcol_arrayref(q{SELECT m.made & 1 FROM request_makers m
        JOIN payment_requests r ON r.id = m.request_id AND m.user_id = r.created_by
        WHERE r.batch_id = ? ORDER BY r.id}, undef, $bid);
    is_deeply $made, [1, 1], 'each creator recorded as a maker (MADE_CREATED)';

    my $draft = $s->req(POST => '/api/v1/batches', token => $creator, idem => 1,
        json => { name => 'Count' })->{json}{data};
    $dbh->do(q{INSERT INTO payment_requests (org_id, batch_id, amount, currency,
        beneficiary_name, beneficiary_account, created_by) VALUES (?, ?, 1, 'USD', 'N', '1', ?)},
        undef, $o->{orgId}, $draft->{id}, $draft->{createdBy});
    my $id = $dbh->last_insert_id(undef, undef, undef, undef);
    is $count->($draft->{id}), 1, 'an INSERT around the service counts';
    is scalar $dbh->selectrow_array('SELECT made FROM request_makers WHERE request_id = ?'
        . ' AND user_id = ?', undef, $id, $draft->{createdBy}), 1, 'and records its maker';
    my $del = $s->req(DELETE => "/api/v1/requests/$id", token => $creator);
    is $del->{status}, 204, 'DELETE through the API: 204';
    is $count->($draft->{id}), 0, 'uncounted';
    is refused('UPDATE batches SET request_count = -1 WHERE id = ?', $draft->{id}), 4025,
        'a negative count: CHECK refuses it';
};

subtest 'events of any text hash alike in SQL (written) and C (verified)' => sub {
    my $r = $s->req(POST => '/api/v1/batches', token => $creator, idem => "k'|:\\" . Remit::Test::random_key(),
        json => { name => "Zahlung \x{2713} \x{1F600} | 3:x", description => "\x{00E9}t\x{00E9} \"q\" \\" });
    is $r->{status}, 201, 'a batch with multi-byte, separator and escape characters: 201';
    $r = $s->remit('verify-audit');
    is $r->{exit}, 0, 'verify-audit: its event\'s hash matches' or diag $r->{stderr};
};

subtest 'tx_finish without its key row fails as a deadlock and commits nothing' => sub {
    # On Galera an aborted transaction's last statement can run on its own; tx_finish then
    # finds no claimed key row and must neither append the event nor commit.
    my ($seq) = $dbh->selectrow_array('SELECT seq FROM audit_heads WHERE org_id = ?', undef,
        $o->{orgId});
    my ($events) = $dbh->selectrow_array('SELECT COUNT(*) FROM audit_events');
    $dbh->begin_work;
    $dbh->do(q{UPDATE batches SET description = 'uncommitted' WHERE id = ?}, undef, $bid);
    is refused(q{CALL tx_finish(?, 201, NULL, '{}', ?, NULL, '2026-01-01 00:00:00.000',
        'batch.updated', 'batch', ?, NULL, 'rid', '{}', NULL, NULL, NULL)}, 2**62, $o->{orgId}, $bid), 1213,
        'errno 1213, SQLSTATE 40001';
    is $dbh->state, '40001', 'SQLSTATE 40001';
    $dbh->rollback;
    is scalar $dbh->selectrow_array('SELECT seq FROM audit_heads WHERE org_id = ?', undef,
        $o->{orgId}), $seq, 'the chain head did not move';
    is scalar $dbh->selectrow_array('SELECT COUNT(*) FROM audit_events'), $events, 'no event';
    is scalar $dbh->selectrow_array('SELECT description FROM batches WHERE id = ?', undef, $bid),
        '', 'the transaction\'s change was not committed';
};

subtest 'a tampered audit row: verify-audit exits non-zero naming the event' => sub {
    my $r = $s->remit('verify-audit');
    is $r->{exit}, 0, 'intact before' or diag $r->{stderr};
    my ($victim) = $dbh->selectrow_array("SELECT MIN(id) FROM audit_events WHERE org_id = ?"
        . " AND action = 'request.approved'", undef, $o->{orgId});
    ok $victim, "event $victim";
    my ($original) = $dbh->selectrow_array('SELECT data FROM audit_events WHERE id = ?', undef,
        $victim);
    $dbh->do('DROP TRIGGER audit_no_update');
    is refused(q{UPDATE audit_events SET data = '{"decision":"REJECTED"}' WHERE id = ?}, $victim),
        0, 'with the trigger gone the row changes';
    $r = $s->remit('verify-audit');
    isnt $r->{exit}, 0, 'verify-audit fails';
    like $r->{stderr}, qr/\bevent $victim\b/, 'and names the event';
    like $r->{stderr}, qr/organisation $o->{orgId}\b/, 'and the organisation';

    # Put the row back: the chain verifies again, so the check is about that row alone.
    $dbh->do('UPDATE audit_events SET data = ? WHERE id = ?', undef, $original, $victim);
    $dbh->do(q{CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_events FOR EACH ROW }
        . q{SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit events are append-only'});
    $r = $s->remit('verify-audit');
    is $r->{exit}, 0, 'restored, intact again' or diag $r->{stderr};
    is refused("UPDATE audit_events SET data = '{}' WHERE id = ?", $victim), 1644,
        'the trigger is back';
};

done_testing;
