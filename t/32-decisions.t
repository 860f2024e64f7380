use strict;
use warnings;

use Test::More;
use Remit::Test;
use Remit::Fixture ();   # batch and request are the GETs below

# Decisions (doc/openapi.yaml#Lifecycle, #paths): approve, reject, mark-paid, separation of duties, thresholds from
# the approval rules, and the lifecycle through to a COMPLETED batch with its ledger.
my $s = Remit::Test->stack;

my %ZERO = map { $_ => 0 } qw(DRAFT PENDING_APPROVAL APPROVED PAID REJECTED CANCELLED);

# An organisation with one user per job: creator, creator2, maker (CREATOR and APPROVER),
# a1..a3 (APPROVER), treasurer, viewer.
sub team {
    return Remit::Fixture::team($s, creator => ['CREATOR'], creator2 => ['CREATOR'],
        maker => ['CREATOR', 'APPROVER'], a1 => ['APPROVER'], a2 => ['APPROVER'],
        a3 => ['APPROVER'], treasurer => ['TREASURER'], viewer => ['VIEWER']);
}

my $t = team();
my $outsider = team();

# A submitted batch of one request each of %amounts (name => [amount, currency]): ids.
sub submitted {
    my ($team, @reqs) = @_;
    my $bid = Remit::Fixture::batch($s, $team->{creator})->{id};
    my @ids = map { Remit::Fixture::request($s, $team->{creator}, $bid, amount => $_->[0],
        currency => $_->[1] // 'USD')->{id} } @reqs;
    Remit::Fixture::submit($s, $team->{creator}, $bid);
    return ($bid, @ids);
}

sub act {
    my ($id, $what, $tok, %o) = @_;
    return $s->req(POST => "/api/v1/requests/$id/$what", token => $tok, idem => 1,
        (exists $o{json} ? (json => $o{json}) : ()),
        (exists $o{headers} ? (headers => $o{headers}) : ()));
}

sub request { $s->req(GET => "/api/v1/requests/$_[0]", token => $t->{viewer})->{json}{data} }
sub batch { $s->req(GET => "/api/v1/batches/$_[0]", token => $_[1] // $t->{viewer})->{json}{data} }

sub ledger {
    my ($tok, $q) = @_;
    return $s->req(GET => '/api/v1/ledger/entries' . ($q ? "?$q" : ''), token => $tok)
        ->{json}{data};
}

subtest 'approve, reject and mark-paid in the wrong state are INVALID_STATE' => sub {
    my $bid = Remit::Fixture::batch($s, $t->{creator})->{id};
    my $q = Remit::Fixture::request($s, $t->{creator}, $bid)->{id};
    for my $c ([approve => $t->{a1}, {}], [reject => $t->{a1}, { comment => 'no' }],
        ['mark-paid' => $t->{treasurer}, {}]) {
        my $r = act($q, $c->[0], $c->[1], json => $c->[2]);
        is_error $r, 409, 'INVALID_STATE', "$c->[0] a DRAFT request";
        is $r->{json}{error}{details}{status}, 'DRAFT', 'details.status';
    }
    Remit::Fixture::submit($s, $t->{creator}, $bid);
    my $r = act($q, 'mark-paid', $t->{treasurer});
    is_error $r, 409, 'INVALID_STATE', 'mark-paid a PENDING_APPROVAL request';
    is $r->{json}{error}{details}{status}, 'PENDING_APPROVAL', 'details.status';
    is act($q, 'reject', $t->{a1}, json => { comment => 'no' })->{status}, 200, 'rejected';
    for my $c ([approve => $t->{a2}], [reject => $t->{a2}], ['mark-paid' => $t->{treasurer}]) {
        $r = act($q, $c->[0], $c->[1], json => $c->[0] eq 'reject' ? { comment => 'x' } : {});
        is_error $r, 409, 'INVALID_STATE', "$c->[0] a REJECTED request";
        is $r->{json}{error}{details}{status}, 'REJECTED', 'details.status';
    }
};

subtest 'an approver may not decide on a request they created' => sub {
    my $bid = Remit::Fixture::batch($s, $t->{maker})->{id};
    my $q = Remit::Fixture::request($s, $t->{maker}, $bid)->{id};
    Remit::Fixture::submit($s, $t->{creator}, $bid);
    my $r = act($q, 'approve', $t->{maker});
    is_error $r, 403, 'SELF_APPROVAL_FORBIDDEN', 'approve';
    is_error act($q, 'reject', $t->{maker}, json => { comment => 'no' }), 403,
        'SELF_APPROVAL_FORBIDDEN', 'reject';
    is request($q)->{approvalCount}, 0, 'nothing recorded';
    is act($q, 'approve', $t->{a1})->{status}, 200, 'another approver may';
};

subtest 'an approver may not decide on a request whose batch they submitted' => sub {
    my $bid = Remit::Fixture::batch($s, $t->{creator})->{id};
    my $q = Remit::Fixture::request($s, $t->{creator}, $bid)->{id};
    my $b = Remit::Fixture::submit($s, $t->{maker}, $bid);
    is $b->{submittedBy}, $t->{maker_id}, 'submittedBy';
    is_error act($q, 'approve', $t->{maker}), 403, 'SELF_APPROVAL_FORBIDDEN', 'approve';
    is_error act($q, 'reject', $t->{maker}, json => { comment => 'no' }), 403,
        'SELF_APPROVAL_FORBIDDEN', 'reject';
};

subtest 'order: 412, VALIDATION_ERROR, INVALID_STATE, SELF_APPROVAL, ALREADY_DECIDED' => sub {
    my $bid = Remit::Fixture::batch($s, $t->{maker})->{id};
    my $q = Remit::Fixture::request($s, $t->{maker}, $bid, amount => '2000')->{id};
    my $q2 = Remit::Fixture::request($s, $t->{maker}, $bid)->{id};
    Remit::Fixture::submit($s, $t->{creator}, $bid);
    is_error act($q, 'approve', $t->{maker}, json => { comment => 'x' x 501 }), 400,
        'VALIDATION_ERROR', 'validation before separation of duties';
    is_error act($q, 'approve', $t->{maker}, headers => { 'If-Match' => '"1"' }), 412,
        'VERSION_CONFLICT', '412 before everything after the object';
    is act($q2, 'approve', $t->{a1})->{status}, 200, 'another request approved';
    is_error act($q2, 'approve', $t->{maker}), 409, 'INVALID_STATE',
        'state before separation of duties';
    is_error act($q2, 'approve', $t->{a1}), 409, 'INVALID_STATE',
        'state before ALREADY_DECIDED: an APPROVED request decided again';
    is_error act('999999999', 'approve', $t->{a1}), 404, 'NOT_FOUND', 'unknown request';
    is_error act($q, 'approve', $outsider->{a1}), 404, 'NOT_FOUND', 'another organisation';
    is_error act($q, 'approve', $t->{creator}), 403, 'FORBIDDEN', 'a CREATOR cannot approve';
    is_error act($q, 'mark-paid', $t->{a1}), 403, 'FORBIDDEN', 'an APPROVER cannot pay';
    is_error act($q, 'approve', $t->{viewer}), 403, 'FORBIDDEN', 'VIEWER';
};

subtest 'rules set the approvals needed: highest matching rule, else 1' => sub {
    my $r = $s->req(PUT => '/api/v1/approval-rules', token => $t->{admin}, json => { rules => [
        { currency => 'USD', minAmount => '10000', approvals => 3 },
        { currency => 'USD', minAmount => '1000.00', approvals => 2 },
        { currency => 'JPY', minAmount => '0', approvals => 2 } ] });
    is $r->{status}, 200, 'rules set';
    my @cases = (['999.99', 'USD', 1], ['1000', 'USD', 2], ['9999.99', 'USD', 2],
        ['10000', 'USD', 3], ['50000', 'EUR', 1], ['1', 'JPY', 2]);
    my ($bid, @ids) = submitted($t, @cases);
    for my $i (0 .. $#cases) {
        my $q = request($ids[$i]);
        is $q->{requiredApprovals}, $cases[$i][2], "$cases[$i][0] $cases[$i][1] needs $cases[$i][2]";
        is $q->{snapshot}{requiredApprovals}, $cases[$i][2], 'in the snapshot too';
    }
    $s->req(PUT => '/api/v1/approval-rules', token => $t->{admin}, json => { rules => [] });
    is request($ids[3])->{requiredApprovals}, 3, 'a submitted request keeps its number';
};

subtest 'three approvals: PENDING until the third, one OBLIGATION' => sub {
    $s->req(PUT => '/api/v1/approval-rules', token => $t->{admin}, json => { rules => [
        { currency => 'USD', minAmount => '100', approvals => 3 } ] });
    my ($bid, $q) = submitted($t, ['150.00']);
    my $v = request($q)->{version};
    my $bv = batch($bid)->{version};
    for my $c ([$t->{a1}, 1, 'PENDING_APPROVAL'], [$t->{a2}, 2, 'PENDING_APPROVAL'],
        [$t->{a3}, 3, 'APPROVED']) {
        my $r = act($q, 'approve', $c->[0], json => { comment => "ok $c->[1]" });
        is $r->{status}, 200, "approval $c->[1]";
        is $r->{json}{data}{approvalCount}, $c->[1], "approvalCount $c->[1]";
        is $r->{json}{data}{status}, $c->[2], $c->[2];
        is $r->{json}{data}{version}, ++$v, 'request version bumped';
        is $r->{headers}{etag}, "\"$v\"", 'ETag';
        is batch($bid)->{version}, ++$bv, 'batch version bumped';
        is scalar @{ ledger($t->{viewer}, "requestId=$q") }, $c->[1] == 3 ? 1 : 0,
            'OBLIGATION only when approved';
    }
    my $e = ledger($t->{viewer}, "requestId=$q");
    is $e->[0]{type}, 'OBLIGATION', 'OBLIGATION';
    is $e->[0]{amount}, '150.00', 'amount';
    is $e->[0]{currency}, 'USD', 'currency';
    is $e->[0]{batchId}, $bid, 'batchId';
    my $ap = $s->req(GET => "/api/v1/requests/$q/approvals", token => $t->{viewer});
    is $ap->{status}, 200, 'approvals list';
    is_deeply [ map { [ $_->{approverId}, $_->{decision}, $_->{comment} ] } @{ $ap->{json}{data} } ],
        [ [ $t->{a3_id}, 'APPROVED', 'ok 3' ], [ $t->{a2_id}, 'APPROVED', 'ok 2' ],
          [ $t->{a1_id}, 'APPROVED', 'ok 1' ] ], 'newest first';
    like $ap->{json}{data}[0]{createdAt}, qr/Z$/, 'createdAt';
    $ap = $s->req(GET => "/api/v1/requests/$q/approvals?limit=2", token => $t->{viewer});
    is scalar @{ $ap->{json}{data} }, 2, 'paged';
    $ap = $s->req(GET => "/api/v1/requests/$q/approvals?limit=2&cursor=$ap->{json}{nextCursor}",
        token => $t->{viewer});
    is_deeply [ map { $_->{approverId} } @{ $ap->{json}{data} } ], [ $t->{a1_id} ], 'page 2';
    is $ap->{json}{nextCursor}, undef, 'last page';
    is_error $s->req(GET => "/api/v1/requests/$q/approvals", token => $outsider->{viewer}),
        404, 'NOT_FOUND', 'another organisation';
    is_error $s->req(GET => "/api/v1/requests/$q/approvals?x=1", token => $t->{viewer}),
        400, 'VALIDATION_ERROR', 'unknown query parameter';
    $s->req(PUT => '/api/v1/approval-rules', token => $t->{admin}, json => { rules => [] });
};

subtest 'ALREADY_DECIDED: one decision per approver per request' => sub {
    $s->req(PUT => '/api/v1/approval-rules', token => $t->{admin}, json => { rules => [
        { currency => 'USD', minAmount => '0', approvals => 2 } ] });
    my ($bid, $q) = submitted($t, ['5']);
    is act($q, 'approve', $t->{a1})->{status}, 200, 'first approval';
    my $r = act($q, 'approve', $t->{a1});
    is_error $r, 409, 'ALREADY_DECIDED', 'approving a PENDING request twice';
    is_error act($q, 'reject', $t->{a1}, json => { comment => 'changed my mind' }), 409,
        'ALREADY_DECIDED', 'rejecting after approving';
    my $cur = request($q);
    is $cur->{approvalCount}, 1, 'still one approval';
    is $cur->{status}, 'PENDING_APPROVAL', 'still PENDING_APPROVAL';
    is act($q, 'approve', $t->{a2})->{json}{data}{status}, 'APPROVED', 'second approver';
    $r = act($q, 'approve', $t->{a1});
    is_error $r, 409, 'INVALID_STATE', 'deciding an APPROVED request again';
    is $r->{json}{error}{details}{status}, 'APPROVED', 'details.status';
    is_error act($q, 'approve', $t->{a3}), 409, 'INVALID_STATE', 'a third approver: too late';
    $s->req(PUT => '/api/v1/approval-rules', token => $t->{admin}, json => { rules => [] });
};

subtest 'reject: a comment of 1..500 is required; one rejection rejects' => sub {
    $s->req(PUT => '/api/v1/approval-rules', token => $t->{admin}, json => { rules => [
        { currency => 'USD', minAmount => '0', approvals => 2 } ] });
    my ($bid, $q, $q2) = submitted($t, ['5'], ['6']);
    for my $body ({}, { comment => '' }, { comment => 'x' x 501 }, { comment => undef },
        { comment => 5 }, { comment => "a\x{0}" }, { comment => 'ok', extra => 1 }) {
        my $r = act($q, 'reject', $t->{a1}, json => $body);
        is_error $r, 400, 'VALIDATION_ERROR',
            'bad: ' . join(',', map { substr($_ // 'null', 0, 12) =~ s/[^\x20-\x7e]/?/gr } %$body);
    }
    is act($q, 'approve', $t->{a1})->{status}, 200, 'one approval first';
    my $r = act($q, 'reject', $t->{a2}, json => { comment => 'x' x 500 });
    is $r->{status}, 200, '500 characters';
    is $r->{json}{data}{status}, 'REJECTED', 'REJECTED by one rejection';
    is $r->{json}{data}{approvalCount}, 1, 'approvals stay counted';
    is scalar @{ ledger($t->{viewer}, "requestId=$q") }, 0, 'no ledger entry';
    my $ap = $s->req(GET => "/api/v1/requests/$q/approvals", token => $t->{viewer})->{json}{data};
    is_deeply [ map { $_->{decision} } @$ap ], [qw(REJECTED APPROVED)], 'decisions';
    is $ap->[0]{comment}, 'x' x 500, 'comment kept';
    is batch($bid)->{status}, 'SUBMITTED', 'the batch still has a pending request';
    $s->req(PUT => '/api/v1/approval-rules', token => $t->{admin}, json => { rules => [] });
};

subtest 'approve: an optional comment up to 500 characters' => sub {
    my ($bid, @q) = submitted($t, ['1'], ['2'], ['3']);
    is_error act($q[0], 'approve', $t->{a1}, json => { comment => 'x' x 501 }), 400,
        'VALIDATION_ERROR', '501 characters';
    is_error act($q[0], 'approve', $t->{a1}, json => { note => 'x' }), 400, 'VALIDATION_ERROR',
        'unknown field';
    is_error $s->req(POST => "/api/v1/requests/$q[0]/approve?now=1", token => $t->{a1}, idem => 1),
        400, 'VALIDATION_ERROR', 'unknown query parameter';
    is act($q[0], 'approve', $t->{a1}, json => { comment => "\x{1F44D}" x 500 })->{status}, 200,
        '500 emoji';
    is act($q[1], 'approve', $t->{a1}, json => { comment => undef })->{status}, 200, 'null';
    is act($q[2], 'approve', $t->{a1})->{status}, 200, 'no body';
    my $ap = $s->req(GET => "/api/v1/requests/$q[1]/approvals", token => $t->{viewer});
    is $ap->{json}{data}[0]{comment}, undef, 'no comment: null';
};

subtest 'If-Match on decisions is the request version' => sub {
    my ($bid, $q) = submitted($t, ['1']);
    my $v = request($q)->{version};
    my $r = act($q, 'approve', $t->{a1}, headers => { 'If-Match' => '"1"' });
    is_error $r, 412, 'VERSION_CONFLICT', 'stale';
    is $r->{json}{error}{details}{currentVersion}, $v, 'currentVersion';
    $r = act($q, 'approve', $t->{a1}, headers => { 'If-Match' => "\"$v\"" });
    is $r->{status}, 200, 'current';
    $r = act($q, 'mark-paid', $t->{treasurer}, headers => { 'If-Match' => "\"$v\"" });
    is_error $r, 412, 'VERSION_CONFLICT', 'mark-paid with the old version';
    $r = act($q, 'mark-paid', $t->{treasurer}, headers => { 'If-Match' => '*' });
    is $r->{status}, 200, 'mark-paid with *';
};

subtest 'mark-paid: APPROVED only, paidAt/paidBy/paymentReference, one SETTLEMENT' => sub {
    my ($bid, $q, $q2) = submitted($t, ['12.34'], ['1']);
    act($q, 'approve', $t->{a1});
    is_error act($q, 'mark-paid', $t->{treasurer}, json => { paymentReference => 'x' x 36 }),
        400, 'VALIDATION_ERROR', 'paymentReference of 36';
    is_error act($q, 'mark-paid', $t->{treasurer}, json => { paymentReference => "a\tb" }),
        400, 'VALIDATION_ERROR', 'a control character';
    is_error act($q, 'mark-paid', $t->{treasurer}, json => { reference => 'x' }),
        400, 'VALIDATION_ERROR', 'unknown field';
    my $r = act($q, 'mark-paid', $t->{treasurer}, json => { paymentReference => 'R' x 35 });
    is $r->{status}, 200, 'paid';
    my $d = $r->{json}{data};
    is $d->{status}, 'PAID', 'PAID';
    is $d->{paidBy}, $t->{treasurer_id}, 'paidBy';
    like $d->{paidAt}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'paidAt';
    is $d->{paymentReference}, 'R' x 35, 'paymentReference';
    $r = act($q, 'mark-paid', $t->{treasurer});
    is_error $r, 409, 'INVALID_STATE', 'paying again';
    is $r->{json}{error}{details}{status}, 'PAID', 'details.status PAID';
    my $e = ledger($t->{viewer}, "requestId=$q");
    is_deeply [ map { [ $_->{type}, $_->{amount} ] } @$e ],
        [ [ 'SETTLEMENT', '12.34' ], [ 'OBLIGATION', '12.34' ] ], 'one of each';
    act($q2, 'approve', $t->{a1});
    $r = act($q2, 'mark-paid', $t->{treasurer});
    is $r->{json}{data}{paymentReference}, undef, 'no reference: null';
};

subtest 'lifecycle: to COMPLETED with totals, counts, ledger, balances and audit' => sub {
    my $u = team();
    $s->req(PUT => '/api/v1/approval-rules', token => $u->{admin}, json => { rules => [
        { currency => 'USD', minAmount => '1000', approvals => 2 } ] });
    my $bid = Remit::Fixture::batch($s, $u->{creator})->{id};
    my $usd = Remit::Fixture::request($s, $u->{creator}, $bid, amount => '1500.50')->{id};
    my $eur = Remit::Fixture::request($s, $u->{creator2}, $bid, amount => '20', currency => 'EUR')->{id};
    my $jpy = Remit::Fixture::request($s, $u->{creator}, $bid, amount => '500', currency => 'JPY')->{id};
    my $kwd = Remit::Fixture::request($s, $u->{creator}, $bid, amount => '1.5', currency => 'KWD')->{id};
    my $b = Remit::Fixture::submit($s, $u->{creator2}, $bid);
    is $b->{version}, 6, 'version 6 after 4 requests and submit';
    is_deeply $b->{counts}, { %ZERO, PENDING_APPROVAL => 4 }, 'all pending';

    is act($jpy, 'reject', $u->{a1}, json => { comment => 'duplicate' })->{status}, 200, 'JPY rejected';
    is act($usd, 'approve', $u->{a1})->{json}{data}{status}, 'PENDING_APPROVAL', 'USD 1 of 2';
    is act($usd, 'approve', $u->{a2})->{json}{data}{status}, 'APPROVED', 'USD 2 of 2';
    is act($eur, 'approve', $u->{a3})->{json}{data}{status}, 'APPROVED', 'EUR';
    is act($kwd, 'approve', $u->{a3})->{json}{data}{status}, 'APPROVED', 'KWD';

    my $bal = $s->req(GET => '/api/v1/ledger/balances', token => $u->{viewer});
    is $bal->{status}, 200, 'balances';
    is_deeply $bal->{json}{data}, [
        { currency => 'EUR', obligated => '20.00', settled => '0.00', outstanding => '20.00' },
        { currency => 'KWD', obligated => '1.500', settled => '0.000', outstanding => '1.500' },
        { currency => 'USD', obligated => '1500.50', settled => '0.00', outstanding => '1500.50' },
    ], 'obligated, nothing settled';
    is_error act($kwd, 'approve', $u->{a1}), 409, 'INVALID_STATE', 'approving an APPROVED one';
    is_error $s->req(POST => "/api/v1/batches/$bid/cancel", token => $u->{creator}, idem => 1),
        409, 'INVALID_STATE', 'cancel with APPROVED requests';

    is act($usd, 'mark-paid', $u->{treasurer}, json => { paymentReference => 'W-1' })->{status},
        200, 'USD paid';
    is act($eur, 'mark-paid', $u->{treasurer})->{status}, 200, 'EUR paid';
    $b = batch($bid, $u->{viewer});
    is $b->{status}, 'SUBMITTED', 'one still to pay';
    is act($kwd, 'mark-paid', $u->{treasurer})->{status}, 200, 'KWD paid';

    $b = batch($bid, $u->{viewer});
    is $b->{status}, 'COMPLETED', 'COMPLETED when every request is REJECTED or PAID';
    is $b->{version}, 6 + 1 + 2 + 1 + 1 + 3, 'one version per request change';
    is_deeply $b->{counts}, { %ZERO, PAID => 3, REJECTED => 1 }, 'counts';
    is_deeply $b->{totals}, [ { currency => 'EUR', count => 1, amount => '20.00' },
        { currency => 'KWD', count => 1, amount => '1.500' },
        { currency => 'USD', count => 1, amount => '1500.50' } ], 'totals without the rejected';

    my $e = ledger($u->{viewer});
    is scalar @$e, 6, 'three OBLIGATIONs and three SETTLEMENTs';
    is_deeply [ sort map { "$_->{type} $_->{requestId} $_->{amount} $_->{currency}" } @$e ],
        [ sort "OBLIGATION $usd 1500.50 USD", "SETTLEMENT $usd 1500.50 USD",
          "OBLIGATION $eur 20.00 EUR", "SETTLEMENT $eur 20.00 EUR",
          "OBLIGATION $kwd 1.500 KWD", "SETTLEMENT $kwd 1.500 KWD" ], 'entries';
    $bal = $s->req(GET => '/api/v1/ledger/balances', token => $u->{viewer});
    is_deeply $bal->{json}{data}, [
        { currency => 'EUR', obligated => '20.00', settled => '20.00', outstanding => '0.00' },
        { currency => 'KWD', obligated => '1.500', settled => '1.500', outstanding => '0.000' },
        { currency => 'USD', obligated => '1500.50', settled => '1500.50', outstanding => '0.00' },
    ], 'all settled';

    my $ev = $s->req(GET => "/api/v1/audit?objectId=$bid", token => $u->{viewer})->{json}{data};
    is_deeply [ map { $_->{action} } grep { $_->{objectType} eq 'batch' } @$ev ],
        [qw(batch.completed batch.submitted batch.created)], 'batch events';
    $ev = $s->req(GET => "/api/v1/audit?objectId=$usd", token => $u->{viewer})->{json}{data};
    is_deeply [ map { $_->{action} } grep { $_->{objectType} eq 'request' } @$ev ],
        [qw(request.paid request.approved request.approved request.submitted request.created)],
        'request events: one per approval';
    my $r = $s->req(POST => "/api/v1/batches/$bid/cancel", token => $u->{creator}, idem => 1);
    is_error $r, 409, 'INVALID_STATE', 'cancel a COMPLETED batch';
    is $r->{json}{error}{details}{status}, 'COMPLETED', 'details.status';
    $r = $s->req(POST => "/api/v1/batches/$bid/submit", token => $u->{creator}, idem => 1);
    is_error $r, 409, 'INVALID_STATE', 'submit a COMPLETED batch';
    is $r->{json}{error}{details}{status}, 'COMPLETED', 'details.status';
    $r = $s->req(POST => "/api/v1/batches/$bid/requests", token => $u->{creator}, idem => 1,
        json => { amount => '1', currency => 'USD', beneficiaryName => 'a', beneficiaryAccount => '1' });
    is_error $r, 409, 'INVALID_STATE', 'add to a COMPLETED batch';
    $r = $s->req(PATCH => "/api/v1/requests/$usd", token => $u->{creator}, json => { purpose => 'x' });
    is_error $r, 409, 'INVALID_STATE', 'edit a PAID request';
    is $r->{json}{error}{details}{status}, 'PAID', 'details.status';
    $r = $s->req(DELETE => "/api/v1/requests/$jpy", token => $u->{creator});
    is_error $r, 409, 'INVALID_STATE', 'delete a REJECTED request';
    is $r->{json}{error}{details}{status}, 'REJECTED', 'details.status';
    is_error act($usd, 'reject', $u->{a3}, json => { comment => 'late' }), 409, 'INVALID_STATE',
        'reject a PAID request';
    is batch($bid, $u->{viewer})->{version}, $b->{version}, 'no refusal changed the batch';
};

subtest 'a batch whose requests are all rejected completes' => sub {
    my ($bid, $q1, $q2) = submitted($t, ['1'], ['2']);
    act($q1, 'reject', $t->{a1}, json => { comment => 'a' });
    is batch($bid)->{status}, 'SUBMITTED', 'one left';
    my $r = act($q2, 'reject', $t->{a2}, json => { comment => 'b' });
    is $r->{status}, 200, 'second rejected';
    my $b = batch($bid);
    is $b->{status}, 'COMPLETED', 'COMPLETED';
    is_deeply $b->{totals}, [], 'no totals';
    is_deeply $b->{counts}, { %ZERO, REJECTED => 2 }, 'counts';
};

done_testing;
