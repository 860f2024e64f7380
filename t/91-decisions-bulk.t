use strict;
use warnings;

use HTTP::Tiny;
use Test::More;
use Remit::Test;

# POST /api/v1/decisions (API §11): up to 200 approvals and rejections in one call and one
# transaction, each item answering exactly what its own approve or reject call would.
my $s = Remit::Test->stack;
my $org = $s->new_org;
my $admin = $org->{token};
my $creator = $s->new_user($admin, roles => ['CREATOR'])->{token};
my $maker_approver = $s->new_user($admin, roles => ['CREATOR', 'APPROVER'])->{token};
my $approver = $s->new_user($admin, roles => ['APPROVER'])->{token};
my $approver2 = $s->new_user($admin, roles => ['APPROVER'])->{token};
my $viewer = $s->new_user($admin, roles => ['VIEWER'])->{token};
my $outsider = $s->new_org;
my $outsider_creator = $s->new_user($outsider->{token}, roles => ['CREATOR'])->{token};

sub one { $s->dbh->selectrow_array(@_) }

is $s->req(PUT => '/api/v1/approval-rules', token => $admin,
    json => { rules => [ { currency => 'EUR', minAmount => '0', approvals => 2 } ] })->{status}, 200,
    'EUR requests need two approvals';

# A submitted batch of $n requests in $currency added by $token: their ids.
sub pending {
    my ($n, %o) = @_;
    my $token = $o{token} // $creator;
    my $b = $s->req(POST => '/api/v1/batches', token => $token, idem => 1, json => { name => 'B' })->{json}{data}{id};
    my $r = $s->req(POST => "/api/v1/batches/$b/requests/import", token => $token, idem => 1,
        json => { requests => [ map { { amount => "$_.00", currency => $o{currency} // 'USD',
            beneficiaryName => "S$_", beneficiaryAccount => "ACC$_" } } 1 .. $n ] });
    die "import: $r->{body}" unless $r->{status} == 201;
    $r = $s->req(POST => "/api/v1/batches/$b/submit", token => $token, idem => 1);
    die "submit: $r->{body}" unless $r->{status} == 200;
    return map { "$_" } _ids($b);
}
sub _ids {
    my ($b) = @_;
    return @{ $s->dbh->selectcol_arrayref('SELECT id FROM payment_requests WHERE batch_id = ? ORDER BY id', undef, $b) };
}
sub decide_many {
    my ($items, %o) = @_;
    return $s->req(POST => '/api/v1/decisions', token => $o{token} // $approver,
        idem => $o{idem} // 1, json => { decisions => $items });
}
sub state { one('SELECT CONCAT(status, "/", approval_count, "/", version) FROM payment_requests WHERE id = ?', undef, $_[0]) }
sub n_decisions { one('SELECT COUNT(*) FROM decisions') }
sub n_ledger { one('SELECT COUNT(*) FROM ledger_entries') }

subtest 'each item answers what its own call would, in input order' => sub {
    my ($a1, $a2, $a3) = pending(3);
    my ($e1) = pending(1, currency => 'EUR');
    my ($mine) = pending(1, token => $maker_approver);
    my ($foreign) = pending(1, token => $outsider_creator);
    my $r = decide_many([
        { requestId => $a1, decision => 'APPROVED' },
        { requestId => $a2, decision => 'REJECTED', comment => 'duplicate invoice' },
        { requestId => $e1, decision => 'APPROVED', comment => 'first of two' },
        { requestId => $mine, decision => 'APPROVED' },
        { requestId => $foreign, decision => 'APPROVED' },
        { requestId => 'nope', decision => 'REJECTED', comment => 'x' },
        { requestId => $a3, decision => 'APPROVED' },
    ], token => $maker_approver);
    is $r->{status}, 200, 'answers 200' or diag $r->{body};
    my $res = $r->{json}{data}{results};
    is_deeply [ map { $_->{requestId} } @$res ], [ $a1, $a2, $e1, $mine, $foreign, 'nope', $a3 ], 'in input order';
    is_deeply [ map { $_->{status} } @$res ], [ 200, 200, 200, 403, 404, 404, 200 ], 'statuses';
    is $res->[0]{data}{status}, 'APPROVED', 'approved';
    is $res->[1]{data}{status}, 'REJECTED', 'rejected';
    is $res->[2]{data}{status}, 'PENDING_APPROVAL', 'an EUR request needs a second approval';
    is $res->[2]{data}{approvalCount}, 1, '... and has one';
    is $res->[3]{error}{code}, 'SELF_APPROVAL_FORBIDDEN', 'the maker may not decide their own';
    is $res->[4]{error}{code}, 'NOT_FOUND', "another organisation's request: NOT_FOUND";
    is $res->[5]{error}{code}, 'NOT_FOUND', 'no such id: NOT_FOUND';
    is state($a1), 'APPROVED/1/3', 'stored: approved';
    is state($a2), 'REJECTED/0/3', 'stored: rejected';
    is state($mine), 'PENDING_APPROVAL/0/2', 'the refused item changed nothing';
    is one(q{SELECT COUNT(*) FROM ledger_entries WHERE request_id IN (?, ?) AND type = 'OBLIGATION'},
        undef, $a1, $a3), 2, 'one OBLIGATION entry per approval';
    is one(q{SELECT COUNT(*) FROM audit_events WHERE object_id IN (?, ?, ?) AND action IN ('request.approved', 'request.rejected')},
        undef, $a1, $a2, $e1), 3, 'one audit event per decision';
    my $single = $s->req(GET => "/api/v1/requests/$a1", token => $viewer)->{json}{data};
    is_deeply $res->[0]{data}, $single, 'the item is the request as GET shows it';

    # The same calls one at a time answer what the items did.
    my $again = decide_many([
        { requestId => $a1, decision => 'APPROVED' },
        { requestId => $e1, decision => 'APPROVED' },
    ], token => $maker_approver);
    is $again->{status}, 200, 'a second call: 200';
    my ($already, $twice) = @{ $again->{json}{data}{results} };
    is $already->{status}, 409, 'an APPROVED request: 409';
    is $already->{error}{code}, 'INVALID_STATE', '... INVALID_STATE';
    is $already->{error}{details}{status}, 'APPROVED', '... with details.status';
    is $twice->{status}, 409, 'a second approval by the same approver: 409';
    is $twice->{error}{code}, 'ALREADY_DECIDED', '... ALREADY_DECIDED';
    my $alone = $s->req(POST => "/api/v1/requests/$a1/approve", token => $maker_approver, idem => 1, json => {});
    is_deeply $alone->{json}{error}, $already->{error}, 'the single call answers the same error';
    $alone = $s->req(POST => "/api/v1/requests/$mine/approve", token => $maker_approver, idem => 1, json => {});
    is_deeply $alone->{json}{error}, $res->[3]{error}, 'and the same SELF_APPROVAL_FORBIDDEN';

    $r = decide_many([ { requestId => $e1, decision => 'APPROVED' } ], token => $approver2);
    is $r->{json}{data}{results}[0]{data}{status}, 'APPROVED', 'a second approver completes the EUR request';
};

subtest 'a bad shape refuses the whole call and changes nothing' => sub {
    my ($p1, $p2) = pending(2);
    my ($d0, $l0) = (n_decisions(), n_ledger());
    my %bad = (
        'an empty list' => [ [], 'decisions' ],
        '201 items' => [ [ map { { requestId => "$_", decision => 'APPROVED' } } 1 .. 201 ], 'decisions' ],
        'a repeated requestId' => [ [ { requestId => $p1, decision => 'APPROVED' },
            { requestId => $p1, decision => 'APPROVED' } ], 'decisions[1].requestId' ],
        'an unknown decision' => [ [ { requestId => $p1, decision => 'APPROVED' },
            { requestId => $p2, decision => 'MAYBE' } ], 'decisions[1].decision' ],
        'a rejection without a comment' => [ [ { requestId => $p1, decision => 'APPROVED' },
            { requestId => $p2, decision => 'REJECTED' } ], 'decisions[1].comment' ],
        'a numeric requestId' => [ [ { requestId => 0 + $p1, decision => 'APPROVED' } ], 'decisions[0].requestId' ],
        'an unknown member' => [ [ { requestId => $p1, decision => 'APPROVED', amount => 1 } ], 'decisions[0].amount' ],
        'an item that is no object' => [ [ { requestId => $p1, decision => 'APPROVED' }, 'x' ], 'decisions[1]' ],
        'a comment too long' => [ [ { requestId => $p1, decision => 'APPROVED', comment => 'x' x 501 } ], 'decisions[0].comment' ],
    );
    for my $name (sort keys %bad) {
        my ($items, $field) = @{ $bad{$name} };
        my $r = decide_many($items);
        is_error $r, 400, 'VALIDATION_ERROR', "$name: 400";
        ok exists $r->{json}{error}{details}{$field}, "$name: details name $field" or diag $r->{body};
    }
    my $r = $s->req(POST => '/api/v1/decisions', token => $approver, idem => 1, json => {});
    is_error $r, 400, 'VALIDATION_ERROR', 'no decisions: 400';
    is_error decide_many([ { requestId => $p1, decision => 'APPROVED' } ], token => $creator), 403, 'FORBIDDEN',
        'a CREATOR: 403';
    is_error $s->req(POST => '/api/v1/decisions', token => $approver,
        json => { decisions => [ { requestId => $p1, decision => 'APPROVED' } ] }), 400, 'IDEMPOTENCY_KEY_MISSING',
        'no key: 400';
    is n_decisions(), $d0, 'no decision stored';
    is n_ledger(), $l0, 'no ledger entry';
    is state($p1), 'PENDING_APPROVAL/0/2', 'the request unchanged';
};

subtest 'the body limit is 256 KiB on this route' => sub {
    my ($p) = pending(1);
    my $json = qq({"decisions":[{"requestId":"$p","decision":"APPROVED"}]});
    my $exact = $json . (' ' x (256 * 1024 - length $json));
    my $r = $s->req(POST => '/api/v1/decisions', token => $approver, idem => 1, raw => "$exact ");
    is_error $r, 413, 'PAYLOAD_TOO_LARGE', '262,145 bytes: 413';
    $r = $s->req(POST => '/api/v1/decisions', token => $approver, idem => 1, raw => $exact);
    is $r->{status}, 200, '262,144 bytes are accepted' or diag $r->{body};
    is state($p), 'APPROVED/1/3', 'and decided';
};

subtest 'a replayed call is byte-identical and applies nothing twice' => sub {
    my @ids = pending(200);
    my $key = Remit::Test::random_key();
    my @items = map { { requestId => $_, decision => 'APPROVED', comment => 'ok' } } @ids;
    my ($d0, $l0) = (n_decisions(), n_ledger());
    my $r1 = decide_many(\@items, idem => $key);
    is $r1->{status}, 200, '200 decisions: 200';
    is scalar(grep { $_->{status} == 200 } @{ $r1->{json}{data}{results} }), 200, 'all approved';
    my $r2 = decide_many(\@items, idem => $key);
    is $r2->{body}, $r1->{body}, 'the replay is byte-identical';
    is $r2->{headers}{'idempotent-replayed'}, 'true', 'Idempotent-Replayed: true';
    is n_decisions() - $d0, 200, '200 decisions stored, once';
    is n_ledger() - $l0, 200, '200 ledger entries, once';
    is_error decide_many([ $items[0] ], idem => $key), 422, 'IDEMPOTENCY_KEY_REUSED', 'another body: 422';
};

subtest 'twins under one key decide once' => sub {
    my @ids = pending(20);
    my $key = Remit::Test::random_key();
    my $d0 = n_decisions();
    my $rs = $s->req_together(4, POST => '/api/v1/decisions', token => $approver, idem => $key,
        json => { decisions => [ map { { requestId => $_, decision => 'APPROVED' } } @ids ] });
    is_twins $rs, 200;
    is n_decisions() - $d0, 20, '20 decisions, once';
};

subtest 'two calls locking the same batches in opposite orders both end whole' => sub {
    # Twenty EUR requests (two approvals each), each in its own batch: one approver decides
    # them in order, the other in reverse, at once. Their batch locks cross, so InnoDB may
    # pick a deadlock victim, whose whole transaction runs again: every item must still get
    # its own answer, and each request exactly its two approvals.
    my @ids = map { pending(1, currency => 'EUR') } 1 .. 20;
    my @forward = map { { requestId => $_, decision => 'APPROVED' } } @ids;
    # A third transaction holds the middle request's batch until both calls wait for it:
    # then each holds the batches on its side of the middle, and the second to get the middle
    # waits for a batch the other holds.
    my $holder = $s->new_dbh(AutoCommit => 0);
    $holder->do(q{SELECT b.id FROM batches b JOIN payment_requests r ON r.batch_id = b.id
        WHERE r.id = ? FOR UPDATE}, undef, $ids[10]);
    my $f = $s->req_bg(POST => '/api/v1/decisions', token => $approver, idem => 1,
        json => { decisions => \@forward });
    my $g = $s->req_bg(POST => '/api/v1/decisions', token => $approver2, idem => 1,
        json => { decisions => [ reverse @forward ] });
    $s->wait_until('both calls wait for the middle batch', sub { $s->lock_waits >= 2 });
    $holder->rollback;
    my $r = $g->();
    my $other = $f->();
    for my $res ($r, $other) {
        is $res->{status}, 200, 'answers 200' or diag $res->{body};
        is scalar(grep { $_->{status} == 200 } @{ $res->{json}{data}{results} // [] }), 20, 'every item decided';
    }
    is scalar(grep { state($_) =~ m{^APPROVED/2/} } @ids), 20, 'each request approved by both, once';
    my $m = HTTP::Tiny->new->get($s->url . '/metrics')->{content} // '';
    my ($reruns) = $m =~ /^remit_tx_retries_total\{cause="deadlock"\} (\d+)/m;
    cmp_ok $reruns // 0, '>=', 1, "InnoDB's deadlock victim was run again (remit_tx_retries_total: ${\($reruns // 0)})";
};

subtest 'every audit chain verifies' => sub {
    my $v = $s->remit('verify-audit');
    is $v->{exit}, 0, 'verify-audit: intact' or diag $v->{stderr};
};

done_testing;
