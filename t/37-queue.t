use strict;
use warnings;

use Test::More;
use Remit::Test;
use Remit::Fixture qw(batch);

# GET /api/v1/requests (API §5, v1.1): the organisation's requests across batches, newest
# first, paged, with the filters status, batchId and actionableBy=me — the approvals and
# treasury queues of the frontend. actionableBy=me is checked for every role against every
# kind of maker (creator, changer, submitter: request_makers) and for a PATCH that changed
# nothing, and what it leaves out the decisions refuse.
my $s = Remit::Test->stack;

sub ok_req {
    my ($what, $res, $status) = @_;
    die "$what: $res->{status} $res->{body}" unless $res->{status} == $status;
    return $res->{json}{data};
}

# users: name => roles. The makers hold every deciding role, so only being a maker can keep
# a request out of their queue.
my %ROLES = (
    creator   => [qw(CREATOR APPROVER TREASURER)],
    submitter => [qw(CREATOR APPROVER TREASURER)],
    editor    => [qw(CREATOR APPROVER TREASURER)],
    noop      => [qw(CREATOR APPROVER TREASURER)],
    a1        => ['APPROVER'],
    a2        => ['APPROVER'],
    both      => [qw(APPROVER TREASURER)],
    treasurer => ['TREASURER'],
    viewer    => ['VIEWER'],
    maker     => ['CREATOR'],
);

sub team {
    my $o = $s->new_org;
    my %t = (admin => { token => $o->{token}, id => $o->{userId} });
    $t{$_} = $s->new_user($o->{token}, roles => $ROLES{$_}) for sort keys %ROLES;
    return \%t;
}

my $t = team();
my $other = team();
my $tok = sub { $t->{ $_[0] }{token} };

sub list {
    my ($who, $query, $team) = @_;
    my $res = $s->req(GET => '/api/v1/requests' . ($query ? "?$query" : ''),
        token => ($team // $t)->{$who}{token});
    return ok_req("GET /requests?" . ($query // "") . " as $who", $res, 200);
}
sub ids { [ map { $_->{id} } @{ list(@_) } ] }

sub add {
    my ($who, $bid, $amount, $cur, $team) = @_;
    return ok_req('add request', $s->req(POST => "/api/v1/batches/$bid/requests",
        token => ($team // $t)->{$who}{token}, idem => 1,
        json => { amount => $amount, currency => $cur, beneficiaryName => 'Ann',
            beneficiaryAccount => 'GB82WEST12345698765432', purpose => 'p' }), 201)->{id};
}
sub act {
    my ($who, $id, $what, $json) = @_;
    return ok_req("$what $id as $who", $s->req(POST => "/api/v1/requests/$id/$what",
        token => $tok->($who), idem => 1, json => $json // {}), 200);
}

ok_req('rules', $s->req(PUT => '/api/v1/approval-rules', token => $tok->('admin'),
    json => { rules => [ { currency => 'EUR', minAmount => '0', approvals => 2 } ] }), 200);

# A draft batch D (never submitted) and a submitted batch B of three requests by `creator`:
# r1 USD, r2 EUR (changed by `editor`), r3 USD (PATCHed by `noop` with its own values).
my $draft = batch($s, $t->{'maker'}, name => 'Q')->{id};
my $d1 = add('maker', $draft, '5.00', 'USD');
my $bid = batch($s, $t->{'creator'}, name => 'Q')->{id};
my $r1 = add('creator', $bid, '10.00', 'USD');
my $r2 = add('creator', $bid, '20.00', 'EUR');
my $r3 = add('creator', $bid, '30.00', 'USD');
ok_req('editor changes r2', $s->req(PATCH => "/api/v1/requests/$r2", token => $tok->('editor'),
    json => { purpose => 'changed' }), 200);
my $noop = ok_req('noop PATCH of r3', $s->req(PATCH => "/api/v1/requests/$r3",
    token => $tok->('noop'), json => { purpose => 'p', amount => '30.00' }), 200);
is $noop->{version}, 1, 'the PATCH of r3 changed nothing (version 1)';
ok_req('submit', $s->req(POST => "/api/v1/batches/$bid/submit", token => $tok->('submitter'),
    idem => 1), 200);

# The other organisation has a submitted request of its own.
my $obid = batch($s, $other->{'creator'}, name => 'Q')->{id};
my $o1 = add('creator', $obid, '7.00', 'USD', $other);
ok_req('other submit', $s->req(POST => "/api/v1/batches/$obid/submit",
    token => $other->{submitter}{token}, idem => 1), 200);

subtest 'without filters: every request of the organisation, newest first, as GET /requests/{id}' => sub {
    is_deeply ids('viewer'), [ $r3, $r2, $r1, $d1 ], 'all four, newest first';
    my ($first) = @{ list('viewer', 'limit=1') };
    my $one = $s->req(GET => "/api/v1/requests/$r3", token => $tok->('viewer'))->{json}{data};
    is_deeply $first, $one, 'each item is the request representation';
    is ref $first->{snapshot}, 'HASH', 'with its snapshot';
};

subtest 'status filter' => sub {
    is_deeply ids('viewer', 'status=PENDING_APPROVAL'), [ $r3, $r2, $r1 ], 'PENDING_APPROVAL';
    is_deeply ids('viewer', 'status=DRAFT'), [ $d1 ], 'DRAFT';
    is_deeply ids('viewer', 'status=PAID'), [], 'PAID: none yet';
    my $res = $s->req(GET => '/api/v1/requests?status=pending', token => $tok->('viewer'));
    is_error $res, 400, 'VALIDATION_ERROR', 'a status is upper case';
    ok exists $res->{json}{error}{details}{status}, 'details name status';
};

subtest 'batchId filter' => sub {
    is_deeply ids('viewer', "batchId=$bid"), [ $r3, $r2, $r1 ], 'the submitted batch';
    is_deeply ids('viewer', "batchId=$draft"), [ $d1 ], 'the draft batch';
    is_deeply ids('viewer', "batchId=$obid"), [], "another organisation's batch: empty";
    is_deeply ids('viewer', 'batchId=999999999'), [], 'an unknown batch: empty';
    is_deeply ids('viewer', 'batchId=abc'), [], 'no id at all: empty';
    is_deeply ids('viewer', "batchId=$bid&status=DRAFT"), [], 'filters combine (batch, status)';
    is_deeply ids('viewer', "batchId=$draft&status=DRAFT"), [ $d1 ], '... and match together';
};

subtest 'bad query parameters' => sub {
    for my $q ('actionableBy=you', 'actionableBy=', 'actionableBy=me&actionableBy=me',
        'limit=0', 'limit=201', 'cursor=x', 'owner=me', 'status=DRAFT&status=PAID') {
        my $res = $s->req(GET => "/api/v1/requests?$q", token => $tok->('a1'));
        is_error $res, 400, 'VALIDATION_ERROR', "?$q";
    }
    my $res = $s->req(GET => '/api/v1/requests?actionableBy=ME', token => $tok->('a1'));
    is_deeply [ keys %{ $res->{json}{error}{details} } ], ['actionableBy'], 'details name actionableBy';
    is_error $s->req(GET => '/api/v1/requests'), 401, 'UNAUTHENTICATED', 'no token: 401';
    is_error $s->req(POST => '/api/v1/requests', token => $tok->('a1'), idem => 1), 405,
        'METHOD_NOT_ALLOWED', 'POST: 405';
};

# Every user's queue, by name => expected ids.
sub queues_are {
    my ($name, %want) = @_;
    subtest $name => sub {
        for my $who (sort keys %want) {
            is_deeply ids($who, 'actionableBy=me'), $want{$who}, "$who (@{ $ROLES{$who} // ['ADMIN'] })";
        }
    };
}

queues_are('actionableBy=me while all three are PENDING_APPROVAL',
    creator   => [],                   # created them all
    submitter => [],                   # submitted their batch
    editor    => [ $r3, $r1 ],         # changed r2
    noop      => [ $r3, $r2, $r1 ],    # a PATCH that changed nothing makes nobody a maker
    a1        => [ $r3, $r2, $r1 ],
    both      => [ $r3, $r2, $r1 ],
    treasurer => [],                   # nothing APPROVED yet
    viewer    => [],
    maker     => [],                   # CREATOR only
    admin     => [],
);

act('a1', $r1, 'approve');             # r1: 1 of 1 → APPROVED
act('a1', $r2, 'approve');             # r2: 1 of 2 (EUR rule) → still PENDING_APPROVAL
act('both', $r3, 'approve');           # r3: APPROVED by one who may also pay

queues_are('actionableBy=me after approvals',
    creator   => [],                   # a maker may not pay either
    submitter => [],
    editor    => [ $r3, $r1 ],         # as treasurer: both APPROVED, neither changed by them
    noop      => [ $r3, $r2, $r1 ],    # r2 to approve, r1 and r3 to pay
    a1        => [],                   # decided r1 and r2; r3 is no longer pending
    a2        => [ $r2 ],
    both      => [ $r3, $r2, $r1 ],    # approved r3 and may still pay it (§7)
    treasurer => [ $r3, $r1 ],
    viewer    => [],
);

subtest 'what the queue leaves out, the decisions refuse' => sub {
    my $try = sub {
        my ($who, $id, $what, $json) = @_;
        return $s->req(POST => "/api/v1/requests/$id/$what", token => $tok->($who), idem => 1,
            json => $json // {});
    };
    is_error $try->('editor', $r2, 'approve'), 403, 'SELF_APPROVAL_FORBIDDEN', 'editor approving r2';
    is_error $try->('creator', $r1, 'mark-paid'), 403, 'SELF_PAYMENT_FORBIDDEN', 'creator paying r1';
    is_error $try->('submitter', $r3, 'mark-paid'), 403, 'SELF_PAYMENT_FORBIDDEN', 'submitter paying r3';
    is_error $try->('a1', $r2, 'approve'), 409, 'ALREADY_DECIDED', 'a1 deciding r2 again';
    is $s->dbh->selectrow_array('SELECT COUNT(*) FROM decisions WHERE request_id = ?', undef, $r2), 1,
        'r2 still has one decision';
};

act('treasurer', $r1, 'mark-paid', { paymentReference => 'REF1' });
act('a2', $r2, 'reject', { comment => 'no' });

queues_are('actionableBy=me after a payment and a rejection',
    treasurer => [ $r3 ],
    both      => [ $r3 ],
    a2        => [],
    noop      => [ $r3 ],
    editor    => [ $r3 ],
);

subtest 'actionableBy combines with status and batchId' => sub {
    is_deeply ids('treasurer', 'actionableBy=me&status=APPROVED'), [ $r3 ], 'status APPROVED';
    is_deeply ids('treasurer', 'actionableBy=me&status=PENDING_APPROVAL'), [], 'status PENDING';
    is_deeply ids('treasurer', "actionableBy=me&batchId=$bid"), [ $r3 ], 'its batch';
    is_deeply ids('treasurer', "actionableBy=me&batchId=$draft"), [], 'another batch';
};

subtest 'organisation isolation' => sub {
    is_deeply ids('viewer', '', $other), [ $o1 ], 'the other organisation sees only its own';
    is_deeply ids('a1', 'actionableBy=me', $other), [ $o1 ], 'and its own queue';
    is_deeply ids('viewer', "batchId=$bid", $other), [], 'our batch id is nothing to them';
    ok !grep({ $_ eq $o1 } @{ ids('viewer') }), 'their request is not in our list';
    ok !grep({ $_ eq $o1 } @{ ids('a2', 'actionableBy=me') }), 'nor in our queues';
};

subtest 'paging: limit and cursor walk every request once, newest first' => sub {
    my $pb = batch($s, $t->{'maker'}, name => 'Q')->{id};
    add('maker', $pb, "$_.00", 'USD') for 1 .. 5;
    my $all = ids('viewer', "batchId=$pb");
    is scalar @$all, 5, 'five requests';
    my (@seen, $cursor, $pages);
    do {
        my $res = $s->req(GET => "/api/v1/requests?batchId=$pb&limit=2"
            . (defined $cursor ? "&cursor=$cursor" : ''), token => $tok->('viewer'));
        is $res->{status}, 200, 'page ' . ++$pages;
        ok @{ $res->{json}{data} } <= 2, 'at most limit items';
        push @seen, map { $_->{id} } @{ $res->{json}{data} };
        $cursor = $res->{json}{nextCursor};
    } while (defined $cursor && $pages < 10);
    is $pages, 3, 'three pages of 2, 2 and 1';
    is_deeply \@seen, $all, 'every request once, in order';
    my $first = $s->req(GET => '/api/v1/requests?limit=1', token => $tok->('viewer'));
    ok defined $first->{json}{nextCursor}, 'a full page has a nextCursor';
    my $last = $s->req(GET => '/api/v1/requests?limit=200', token => $tok->('viewer'));
    ok !defined $last->{json}{nextCursor}, 'the last page has nextCursor null';
};

subtest 'the queues read one status through an index' => sub {
    my $rows = $s->dbh->selectall_arrayref(
        q{SELECT column_name FROM information_schema.statistics WHERE table_schema = DATABASE()
          AND table_name = 'payment_requests' AND index_name = 'requests_org_status'
          ORDER BY seq_in_index});
    is_deeply [ map { lc $_->[0] } @$rows ], [qw(org_id status id)], 'requests_org_status (org_id, status, id)';
};

subtest 'reading the queue writes nothing' => sub {
    my $count = sub { $s->dbh->selectrow_array('SELECT COUNT(*) FROM audit_events') };
    my $before = $count->();
    list('a2', 'actionableBy=me');
    list('viewer', 'status=APPROVED');
    is $count->(), $before, 'no audit event';
};

done_testing;
