use strict;
use warnings;
use utf8;

use Test::More;
use Remit::Test;

# Signals (API §10): DUPLICATE, NEW_BENEFICIARY and ACCOUNT_CHANGED on every request, each of
# them present and absent, the 90-day window, the cap of 10 ids, tenancy, no version bump,
# the `signal` filter, and the statements a page of 200 costs.
my $s = Remit::Test->stack;

sub ok_data {
    my ($what, $res, $status) = @_;
    die "$what: $res->{status} $res->{body}" unless $res->{status} == $status;
    return $res->{json}{data};
}

my $IBAN_A = 'GB82WEST12345698765432';
my $IBAN_B = 'DE89370400440532013000';

sub team {
    my $o = $s->new_org;
    my %t = (admin => $o->{token});
    $t{creator} = $s->new_user($o->{token}, roles => ['CREATOR'])->{token};
    $t{approver} = $s->new_user($o->{token}, roles => ['APPROVER'])->{token};
    $t{treasurer} = $s->new_user($o->{token}, roles => ['TREASURER'])->{token};
    return \%t;
}
my $t = team();

sub batch {
    my ($team) = @_;
    return ok_data('batch', $s->req(POST => '/api/v1/batches', token => ($team // $t)->{creator},
        idem => 1, json => { name => 'S' }), 201)->{id};
}
sub add {
    my ($bid, %f) = @_;
    my $team = delete $f{team} // $t;
    return ok_data('add', $s->req(POST => "/api/v1/batches/$bid/requests",
        token => $team->{creator}, idem => 1, json => { amount => '1234.56', currency => 'EUR',
        beneficiaryName => 'Jörg Müller', beneficiaryAccount => $IBAN_A, %f }), 201);
}
sub post {
    my ($who, $path, $json, $team) = @_;
    return ok_data("POST $path", $s->req(POST => $path, token => ($team // $t)->{$who},
        idem => 1, json => $json // {}), 200);
}
sub get_req {
    my ($id) = @_;
    return $s->req(GET => "/api/v1/requests/$id", token => $t->{approver});
}
# {code => [ids]} of a request as GET shows it
sub sig {
    my ($id) = @_;
    my $r = ok_data("GET $id", get_req($id), 200);
    return { map { $_->{code} => $_->{requestIds} } @{ $r->{signals} } };
}
sub pay {
    my ($bid, $team) = @_;
    $team //= $t;
    post(creator => "/api/v1/batches/$bid/submit", {}, $team);
    my $reqs = ok_data('list', $s->req(GET => "/api/v1/batches/$bid/requests",
        token => $team->{approver}), 200);
    for my $r (@$reqs) {
        post(approver => "/api/v1/requests/$r->{id}/approve", {}, $team);
        post(treasurer => "/api/v1/requests/$r->{id}/mark-paid", {}, $team);
    }
}

my $b1 = batch();
my $r1 = add($b1);

subtest 'a first request to an account is NEW_BENEFICIARY, with no duplicate' => sub {
    is_deeply $r1->{signals}, [ { code => 'NEW_BENEFICIARY', requestIds => [] } ],
        'the 201 of the add carries it';
    is_deeply sig($r1->{id}), { NEW_BENEFICIARY => [] }, 'and GET';
};

my $r2 = add($b1);
subtest 'the same account, currency and amount is a DUPLICATE both ways' => sub {
    is_deeply sig($r2->{id}), { DUPLICATE => [ $r1->{id} ], NEW_BENEFICIARY => [] }, 'new one';
    is_deeply sig($r1->{id}), { DUPLICATE => [ $r2->{id} ], NEW_BENEFICIARY => [] }, 'old one';
    my $list = ok_data('list', $s->req(GET => "/api/v1/batches/$b1/requests",
        token => $t->{approver}), 200);
    is_deeply [ map { $_->{signals}[0]{code} } @$list ], [qw(DUPLICATE DUPLICATE)],
        'the batch list carries them, sorted by code';
};

subtest 'another amount, currency or account is no duplicate' => sub {
    my $b = batch();
    my $x = add($b, amount => '1234.57');
    my $y = add($b, currency => 'USD');
    my $z = add($b, beneficiaryAccount => $IBAN_B, beneficiaryName => 'Someone Else');
    is_deeply sig($_->{id}), { NEW_BENEFICIARY => [] }, "request $_->{id}" for $x, $y, $z;
    post(creator => "/api/v1/batches/$b/cancel");
    is_deeply sig($_->{id}), {}, "CANCELLED $_->{id} carries none" for $x, $y, $z;
};

subtest 'signals change no version or ETag' => sub {
    my $before = get_req($r1->{id});
    add($b1, amount => '1.00');
    my $b2 = batch();
    my $dup = add($b2);
    my $after = get_req($r1->{id});
    is $after->{headers}{etag}, $before->{headers}{etag}, 'same ETag';
    is $after->{json}{data}{version}, $before->{json}{data}{version}, 'same version';
    is_deeply sig($r1->{id})->{DUPLICATE}, [ $r2->{id}, $dup->{id} ], 'yet a new duplicate';
    post(creator => "/api/v1/batches/$b2/cancel");
};

subtest 'REJECTED requests carry none and count as no duplicate' => sub {
    post(creator => "/api/v1/batches/$b1/submit");
    my $rej = post(approver => "/api/v1/requests/$r2->{id}/reject", { comment => 'twice' });
    is_deeply $rej->{signals}, [], 'the rejection answers without signals';
    is_deeply sig($r1->{id}), { NEW_BENEFICIARY => [] }, 'the other is no duplicate any more';
};

my ($paid_id) = ($r1->{id});
subtest 'once an account was PAID, it is no NEW_BENEFICIARY; a PAID request carries none' => sub {
    my $ok = post(approver => "/api/v1/requests/$r1->{id}/approve");
    is_deeply $ok->{signals}, [ { code => 'NEW_BENEFICIARY', requestIds => [] } ],
        'APPROVED still carries it';
    my $paid = post(treasurer => "/api/v1/requests/$r1->{id}/mark-paid");
    is_deeply $paid->{signals}, [], 'PAID carries none';
    my $b = batch();
    my $again = add($b, amount => '99.00');
    is_deeply $again->{signals}, [], 'a new request to the paid account: no signal';
    my $dup = add($b);
    is_deeply sig($dup->{id}), { DUPLICATE => [ $r1->{id} ] }, 'a PAID twin is a duplicate';
    post(creator => "/api/v1/batches/$b/cancel");
};

subtest 'ACCOUNT_CHANGED: the name paid before, ignoring case, accents and spaces' => sub {
    my $b = batch();
    my $moved = add($b, beneficiaryName => '  jorg   MULLER ', beneficiaryAccount => $IBAN_B,
        amount => '5.00');
    is_deeply sig($moved->{id}), { ACCOUNT_CHANGED => [ $paid_id ], NEW_BENEFICIARY => [] },
        'another account for a paid name';
    my $same = add($b, beneficiaryName => 'JÖRG MÜLLER', amount => '6.00');
    is_deeply sig($same->{id}), {}, 'the paid account itself: nothing';
    my $other = add($b, beneficiaryName => 'Jörg Müller-Lüdenscheidt',
        beneficiaryAccount => $IBAN_B, amount => '7.00');
    is_deeply sig($other->{id}), { NEW_BENEFICIARY => [] }, 'another name: nothing';
    my $list = ok_data('signal filter', $s->req(GET => '/api/v1/requests?signal=ACCOUNT_CHANGED',
        token => $t->{approver}), 200);
    is_deeply [ map { $_->{id} } @$list ], [ $moved->{id} ], '?signal=ACCOUNT_CHANGED';
    post(creator => "/api/v1/batches/$b/cancel");
};

subtest 'DUPLICATE looks 90 days either way' => sub {
    my $b = batch();
    my $x = add($b, amount => '42.00', beneficiaryAccount => 'ACCT-90');
    my $y = add($b, amount => '42.00', beneficiaryAccount => 'ACCT-90');
    my $dbh = $s->dbh;
    my $move = sub {
        $dbh->do('UPDATE payment_requests SET created_at = created_at - INTERVAL ? DAY'
            . ' WHERE id = ?', undef, $_[0], $x->{id});
    };
    $move->(89);
    is_deeply sig($y->{id})->{DUPLICATE}, [ $x->{id} ], '89 days earlier: still a duplicate';
    $move->(2);
    is sig($y->{id})->{DUPLICATE}, undef, '91 days earlier: none';
    is sig($x->{id})->{DUPLICATE}, undef, 'nor the other way';
    post(creator => "/api/v1/batches/$b/cancel");
};

subtest 'at most 10 ids, the lowest first' => sub {
    my $b = batch();
    my @ids = map { add($b, amount => '3.00', beneficiaryAccount => 'ACCT-TEN')->{id} } 1 .. 12;
    my $d = sig($ids[-1])->{DUPLICATE};
    is_deeply $d, [ @ids[0 .. 9] ], 'ten, ascending';
    is_deeply sig($ids[0])->{DUPLICATE}, [ @ids[1 .. 10] ], 'the first one sees ten others';
    my $list = ok_data('signal filter', $s->req(GET => "/api/v1/requests?signal=DUPLICATE"
        . "&batchId=$b", token => $t->{approver}), 200);
    is scalar @$list, 12, '?signal=DUPLICATE lists all twelve';
    post(creator => "/api/v1/batches/$b/cancel");
};

subtest 'another organisation neither duplicates nor pays for this one' => sub {
    my $o = team();
    my $ob = batch($o);
    add($ob, team => $o, amount => '77.00', beneficiaryAccount => 'ACCT-ORG',
        beneficiaryName => 'Org Payee');
    pay($ob, $o);
    my $b = batch();
    my $mine = add($b, amount => '77.00', beneficiaryAccount => 'ACCT-ORG',
        beneficiaryName => 'Org Payee');
    is_deeply sig($mine->{id}), { NEW_BENEFICIARY => [] }, 'no DUPLICATE, still new';
    my $moved = add($b, amount => '78.00', beneficiaryAccount => 'ACCT-ORG2',
        beneficiaryName => 'Org Payee');
    is_deeply sig($moved->{id}), { NEW_BENEFICIARY => [] }, 'nor ACCOUNT_CHANGED';
    post(creator => "/api/v1/batches/$b/cancel");
};

subtest 'the signal filter and its bad values' => sub {
    my $b = batch();
    my $n = add($b, amount => '8.00', beneficiaryAccount => 'ACCT-NEW');
    my $list = ok_data('new', $s->req(GET => "/api/v1/requests?signal=NEW_BENEFICIARY"
        . "&batchId=$b", token => $t->{approver}), 200);
    is_deeply [ map { $_->{id} } @$list ], [ $n->{id} ], 'NEW_BENEFICIARY';
    $list = ok_data('dup', $s->req(GET => "/api/v1/requests?signal=DUPLICATE&batchId=$b",
        token => $t->{approver}), 200);
    is_deeply $list, [], 'no DUPLICATE there';
    for my $bad ('duplicate', 'SPAM', '') {
        my $res = $s->req(GET => "/api/v1/requests?signal=$bad", token => $t->{approver});
        is_error $res, 400, 'VALIDATION_ERROR', "signal=$bad";
        ok exists $res->{json}{error}{details}{signal}, 'names signal';
    }
    post(creator => "/api/v1/batches/$b/cancel");
};

# Statements the server ran for one GET, counted by the server (Questions includes the
# SHOW STATUS itself, so 1 is taken off).
sub statements {
    my ($path) = @_;
    my $q = sub { ($s->dbh->selectrow_array("SHOW GLOBAL STATUS LIKE 'Questions'"))[1] };
    my $before = $q->();
    my $res = $s->req(GET => $path, token => $t->{approver});
    die "$path: $res->{status}" unless $res->{status} == 200;
    return ($q->() - $before - 1, $res);
}

subtest 'a page of 200 requests with their signals costs a few statements' => sub {
    my $b = batch();
    add($b, amount => sprintf('%d.00', 10 + $_ % 7), beneficiaryAccount => 'ACCT-P' . $_ % 13)
        for 1 .. 210;
    my ($n, $res) = statements('/api/v1/requests?limit=200');
    is scalar @{ $res->{json}{data} }, 200, '200 requests';
    cmp_ok $n, '<=', 4, "$n statements for the page (token, list, signals)";
    diag "statements for GET /api/v1/requests?limit=200: $n";
    my ($m) = statements('/api/v1/requests?limit=10');
    is $m, $n, 'as many as for a page of 10';
};

# What the server reads for a request's signals must not grow with its twins: an import of
# identical refunds makes thousands, and every add and every page paid for all of them until
# migration 0013 (an add-request answered at a fifth of its rate). Counted in rows and index
# entries read (the server's Handler_read_* counters), not in time.
sub reads {
    my ($id) = @_;
    my $n = sub {
        my $rows = $s->dbh->selectall_arrayref("SHOW GLOBAL STATUS LIKE 'Handler_read%'");
        my $sum = 0;
        $sum += $_->[1] for @$rows;
        return $sum;
    };
    my $before = $n->();
    ok_data("GET $id", get_req($id), 200);
    return $n->() - $before;
}

subtest 'a request with 600 twins costs what a request with one costs' => sub {
    my $b = batch();
    my $few = add($b, amount => '5.55', beneficiaryAccount => 'ACCT-FEW');
    add($b, amount => '5.55', beneficiaryAccount => 'ACCT-FEW');
    my $many = add($b, amount => '6.66', beneficiaryAccount => 'ACCT-MANY');
    $s->dbh->do(q{INSERT INTO payment_requests (org_id, batch_id, status, amount, currency,
        beneficiary_name, beneficiary_account, created_by, required_approvals, snapshot)
      SELECT r.org_id, r.batch_id, r.status, r.amount, r.currency, r.beneficiary_name,
        r.beneficiary_account, r.created_by, r.required_approvals, r.snapshot
      FROM payment_requests r JOIN seq_1_to_600 WHERE r.id = ?}, undef, $many->{id});
    is scalar @{ sig($many->{id})->{DUPLICATE} }, 10, 'ten of the 600 twins are named';
    reads($_) for $few->{id}, $many->{id};   # warm: the first reads open tables
    my ($one, $six) = (reads($few->{id}), reads($many->{id}));
    diag "rows and index entries read: one twin $one, 600 twins $six";
    cmp_ok $six - $one, '<', 300,
        'the ten of 600 are found without reading all 600 (ten steps of at most ten entries)';
    post(creator => "/api/v1/batches/$b/cancel");
};

done_testing;
