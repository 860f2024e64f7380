use strict;
use warnings;

use Test::More;
use Remit::Test;
use Remit::Fixture ();

# Makers (API §4, issue 9 item 1): whoever created, changed (a PATCH that changed something)
# or submitted a request may neither approve nor reject it (403 SELF_APPROVAL_FORBIDDEN) nor
# mark it paid (403 SELF_PAYMENT_FORBIDDEN); the database records the makers and refuses a
# decision or a payment by one of them.
my $s = Remit::Test->stack;

sub team {
    return Remit::Fixture::team($s, creator => ['CREATOR'], editor => ['CREATOR', 'APPROVER'],
        a1 => ['APPROVER'], payer => ['CREATOR', 'TREASURER'],
        checker => ['APPROVER', 'TREASURER'], treasurer => ['TREASURER'], viewer => ['VIEWER']);
}
my $t = team();

sub ok_req {
    my ($want, $method, $path, $tok, $json) = @_;
    my $r = $s->req($method => $path, token => $tok, idem => 1,
        (defined $json ? (json => $json) : ()));
    die "$method $path: $r->{status} $r->{body}" unless $r->{status} == $want;
    return $r->{json}{data};
}

# A DRAFT batch of $t->{creator} with one request: (batch id, request id).
sub draft {
    my $bid = ok_req(201, POST => '/api/v1/batches', $t->{creator}, { name => 'B' })->{id};
    my $q = ok_req(201, POST => "/api/v1/batches/$bid/requests", $t->{creator},
        { amount => '10.00', currency => 'USD', beneficiaryName => 'Ann',
          beneficiaryAccount => 'GB82WEST12345698765432' })->{id};
    return ($bid, $q);
}

sub act {
    my ($id, $what, $tok) = @_;
    return $s->req(POST => "/api/v1/requests/$id/$what", token => $tok, idem => 1,
        json => $what eq 'reject' ? { comment => 'no' } : {});
}

sub row {
    my ($sql, @bind) = @_;
    return $s->dbh->selectrow_array($sql, undef, @bind);
}
sub made { row('SELECT made FROM request_makers WHERE request_id = ? AND user_id = ?', @_) }
sub status_of { row('SELECT status FROM payment_requests WHERE id = ?', $_[0]) }
sub decisions { row('SELECT COUNT(*) FROM decisions WHERE request_id = ?', $_[0]) }
sub ledger { row('SELECT COUNT(*) FROM ledger_entries WHERE request_id = ? AND type = ?', @_) }

subtest 'an editor of a colleague\'s request may not approve or reject it (the reproduction)' => sub {
    my ($bid, $q) = draft();
    ok_req(200, PATCH => "/api/v1/requests/$q", $t->{editor},
        { beneficiaryAccount => 'DE89370400440532013000' });
    ok_req(200, POST => "/api/v1/batches/$bid/submit", $t->{creator});
    is_error act($q, 'approve', $t->{editor}), 403, 'SELF_APPROVAL_FORBIDDEN', 'approve';
    is_error act($q, 'reject', $t->{editor}), 403, 'SELF_APPROVAL_FORBIDDEN', 'reject';
    is status_of($q), 'PENDING_APPROVAL', 'still PENDING_APPROVAL';
    is decisions($q), 0, 'no decision recorded';
    is ledger($q, 'OBLIGATION'), 0, 'no ledger entry';
    is made($q, $t->{editor_id}), 2, 'the editor is recorded as a maker (changed)';
    is made($q, $t->{creator_id}), 1 | 4, 'the creator created and submitted';
    is act($q, 'approve', $t->{a1})->{status}, 200, 'someone else may approve';
    is status_of($q), 'APPROVED', 'APPROVED';
};

subtest 'an editor may not mark the request paid; state is checked first' => sub {
    my ($bid, $q) = draft();
    ok_req(200, PATCH => "/api/v1/requests/$q", $t->{payer}, { purpose => 'rent' });
    ok_req(200, POST => "/api/v1/batches/$bid/submit", $t->{creator});
    is_error act($q, 'mark-paid', $t->{payer}), 409, 'INVALID_STATE',
        'INVALID_STATE before SELF_PAYMENT_FORBIDDEN';
    is act($q, 'approve', $t->{a1})->{status}, 200, 'approved by another';
    is_error act($q, 'mark-paid', $t->{payer}), 403, 'SELF_PAYMENT_FORBIDDEN', 'mark paid';
    is status_of($q), 'APPROVED', 'still APPROVED';
    is ledger($q, 'SETTLEMENT'), 0, 'no SETTLEMENT entry';
    is row('SELECT paid_by FROM payment_requests WHERE id = ?', $q), undef, 'paid_by unset';
    is act($q, 'mark-paid', $t->{treasurer})->{status}, 200, 'a non-maker treasurer may';
    is status_of($q), 'PAID', 'PAID';
};

subtest 'creators and submitters may not mark paid' => sub {
    my $bid = ok_req(201, POST => '/api/v1/batches', $t->{payer}, { name => 'P' })->{id};
    my $q = ok_req(201, POST => "/api/v1/batches/$bid/requests", $t->{payer},
        { amount => '5', currency => 'EUR', beneficiaryName => 'B', beneficiaryAccount => 'X1' })
        ->{id};
    ok_req(200, POST => "/api/v1/batches/$bid/submit", $t->{creator});
    is act($q, 'approve', $t->{a1})->{status}, 200, 'approved';
    is_error act($q, 'mark-paid', $t->{payer}), 403, 'SELF_PAYMENT_FORBIDDEN', 'the creator';

    my ($bid2, $q2) = draft();
    ok_req(200, POST => "/api/v1/batches/$bid2/submit", $t->{payer});
    is act($q2, 'approve', $t->{a1})->{status}, 200, 'approved';
    is_error act($q2, 'mark-paid', $t->{payer}), 403, 'SELF_PAYMENT_FORBIDDEN', 'the submitter';
    is ledger($q2, 'SETTLEMENT'), 0, 'no SETTLEMENT entry';
};

subtest 'a PATCH that changes nothing makes nobody a maker; an approver may still pay' => sub {
    my ($bid, $q) = draft();
    ok_req(200, PATCH => "/api/v1/requests/$q", $t->{editor}, { beneficiaryName => 'Ann' });
    is made($q, $t->{editor_id}), undef, 'no maker row for a PATCH that changed nothing';
    ok_req(200, POST => "/api/v1/batches/$bid/submit", $t->{creator});
    is act($q, 'approve', $t->{checker})->{status}, 200, 'approved by the checker';
    is act($q, 'mark-paid', $t->{checker})->{status}, 200,
        'a treasurer who approved may mark paid';
    is status_of($q), 'PAID', 'PAID';
};

subtest 'a submit that waited on the batch lock still makes the submitter a maker' => sub {
    my ($bid, $q) = draft();
    my $holder = $s->new_dbh(AutoCommit => 0);
    $holder->do('SELECT id FROM batches WHERE id = ? FOR UPDATE', undef, $bid);
    my $submit = $s->req_bg(POST => "/api/v1/batches/$bid/submit", token => $t->{editor},
        idem => 1);
    $s->wait_until('submit waits on the batch', sub { $s->lock_waits >= 1 });
    my $approve = $s->req_bg(POST => "/api/v1/requests/$q/approve", token => $t->{editor},
        idem => 1, json => {});
    $s->wait_until('approve waits too', sub { $s->lock_waits >= 2 });
    $holder->commit;
    $holder->disconnect;
    is $submit->()->{status}, 200, 'submitted';
    is_error $approve->(), 403, 'SELF_APPROVAL_FORBIDDEN', 'the submitter may not approve';
    is decisions($q), 0, 'no decision';
};

subtest 'the database refuses a decision or a payment by a maker' => sub {
    my ($bid, $q) = draft();
    ok_req(200, POST => "/api/v1/batches/$bid/submit", $t->{creator});
    my $dbh = $s->dbh;
    my $org = row('SELECT org_id FROM payment_requests WHERE id = ?', $q);
    ok !eval { $dbh->do(q{INSERT INTO decisions (org_id, request_id, approver_id, decision)
        VALUES (?, ?, ?, 'APPROVED')}, undef, $org, $q, $t->{creator_id}); 1 },
        'INSERT of a decision by the creator refused';
    like $@, qr/maker/, 'by the trigger';
    is decisions($q), 0, 'no decision';
    is act($q, 'approve', $t->{a1})->{status}, 200, 'approved';
    ok !eval { $dbh->do(q{UPDATE payment_requests SET status = 'PAID', paid_at = NOW(3),
        paid_by = ? WHERE id = ?}, undef, $t->{creator_id}, $q); 1 },
        'UPDATE to PAID by the creator refused';
    like $@, qr/maker/, 'by the trigger';
    is status_of($q), 'APPROVED', 'still APPROVED';
};

subtest 'deleting a DRAFT request drops its makers' => sub {
    my ($bid, $q) = draft();
    is $s->req(DELETE => "/api/v1/requests/$q", token => $t->{creator}, idem => 1)->{status},
        204, 'deleted';
    is row('SELECT COUNT(*) FROM request_makers WHERE request_id = ?', $q), 0, 'no makers left';
};

done_testing;
