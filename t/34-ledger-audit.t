use strict;
use warnings;

use Test::More;
use Remit::Test;

# The ledger (entries, balances) and the audit log as the API shows them (doc/openapi.yaml#Lifecycle, #paths).
my $s = Remit::Test->stack;

# An organisation with a creator, two approvers, a treasurer and a viewer.
sub team {
    my $o = $s->new_org;
    my %t = (admin => $o->{token}, org => $o->{orgId}, admin_id => $o->{userId});
    my %roles = (creator => ['CREATOR'], a1 => ['APPROVER'], a2 => ['APPROVER'],
        treasurer => ['TREASURER'], viewer => ['VIEWER']);
    for my $k (sort keys %roles) {
        my $u = $s->new_user($o->{token}, roles => $roles{$k});
        $t{$k} = $u->{token};
        $t{"${k}_id"} = $u->{id};
    }
    return \%t;
}

# A submitted batch with one request per [amount, currency]: (batch id, request ids).
sub submitted {
    my ($t, @reqs) = @_;
    my $b = $s->req(POST => '/api/v1/batches', token => $t->{creator}, idem => 1,
        json => { name => 'B' })->{json}{data}{id};
    my @ids = map {
        $s->req(POST => "/api/v1/batches/$b/requests", token => $t->{creator}, idem => 1,
            json => { amount => $_->[0], currency => $_->[1], beneficiaryName => 'N',
                beneficiaryAccount => '1' })->{json}{data}{id}
    } @reqs;
    $s->req(POST => "/api/v1/batches/$b/submit", token => $t->{creator}, idem => 1);
    return ($b, @ids);
}

sub act {
    my ($tok, $id, $what, %o) = @_;
    my $r = $s->req(POST => "/api/v1/requests/$id/$what", token => $tok, idem => $o{idem} // 1,
        json => $o{json} // {}, headers => $o{headers} // {});
    die "$what: $r->{status} $r->{body}" unless $r->{status} == 200 || $o{any};
    return $r;
}

sub list {
    my ($tok, $path) = @_;
    my $r = $s->req(GET => $path, token => $tok);
    die "GET $path: $r->{status} $r->{body}" unless $r->{status} == 200;
    return $r->{json};
}

# Every event of the organisation, oldest first.
sub all_events {
    my ($tok) = @_;
    my (@all, $cursor);
    do {
        my $j = list($tok, '/api/v1/audit?limit=7' . (defined $cursor ? "&cursor=$cursor" : ''));
        push @all, @{ $j->{data} };
        $cursor = $j->{nextCursor};
    } while (defined $cursor);
    return reverse @all;
}

my $t = team();
my $u = team();
my ($bid, $usd, $jpy, $kwd) = submitted($t, ['12.50', 'USD'], ['700', 'JPY'], ['0.125', 'KWD']);
act($t->{a1}, $_, 'approve') for $usd, $jpy, $kwd;
act($t->{treasurer}, $usd, 'mark-paid');
act($t->{treasurer}, $jpy, 'mark-paid');
my ($ubid, $uq) = submitted($u, ['1', 'USD']);
act($u->{a1}, $uq, 'approve');

subtest 'GET /ledger/entries: newest first, every field' => sub {
    my $j = list($t->{viewer}, '/api/v1/ledger/entries');
    is $j->{nextCursor}, undef, 'one page';
    is_deeply [ map { "$_->{type} $_->{requestId} $_->{amount} $_->{currency}" } @{ $j->{data} } ],
        [ "SETTLEMENT $jpy 700 JPY", "SETTLEMENT $usd 12.50 USD", "OBLIGATION $kwd 0.125 KWD",
          "OBLIGATION $jpy 700 JPY", "OBLIGATION $usd 12.50 USD" ], 'entries, newest first';
    my $e = $j->{data}[0];
    is_deeply [ sort keys %$e ], [qw(amount batchId createdAt currency id requestId type)],
        'fields';
    is $e->{batchId}, $bid, 'batchId';
    like $e->{createdAt}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'createdAt';
    ok !ref $e->{id} && !ref $e->{requestId}, 'ids are strings';
};

subtest 'GET /ledger/entries: pages' => sub {
    my (@ids, $cursor);
    for (1 .. 5) {
        my $j = list($t->{viewer}, '/api/v1/ledger/entries?limit=2'
            . (defined $cursor ? "&cursor=$cursor" : ''));
        push @ids, map { $_->{id} } @{ $j->{data} };
        $cursor = $j->{nextCursor};
        last unless defined $cursor;
    }
    my @all = map { $_->{id} } @{ list($t->{viewer}, '/api/v1/ledger/entries')->{data} };
    is_deeply \@ids, \@all, 'pages of 2 give all 5 in order';
};

subtest 'GET /ledger/entries?requestId=: its entries; unknown, foreign, malformed: none' => sub {
    my $j = list($t->{viewer}, "/api/v1/ledger/entries?requestId=$usd");
    is_deeply [ map { $_->{type} } @{ $j->{data} } ], [qw(SETTLEMENT OBLIGATION)], 'filtered';
    $j = list($t->{viewer}, "/api/v1/ledger/entries?requestId=$usd&limit=1");
    is scalar @{ $j->{data} }, 1, 'filtered and paged';
    ok defined $j->{nextCursor}, 'with a next page';
    for my $id ('999999999', $uq, 'abc', '', '0', '-1', "$usd.0", '%20') {
        $j = list($t->{viewer}, "/api/v1/ledger/entries?requestId=$id");
        is_deeply $j, { data => [], nextCursor => undef }, "requestId=$id: an empty list";
    }
    for my $q ('limit=0', 'limit=x', 'cursor=y', "requestId=$usd&requestId=$usd", 'foo=1',
        'requestId=abc&limit=500') {
        my $r = $s->req(GET => "/api/v1/ledger/entries?$q", token => $t->{viewer});
        is_error $r, 400, 'VALIDATION_ERROR', $q;
    }
    is_deeply [ map { $_->{requestId} } @{ list($u->{viewer}, '/api/v1/ledger/entries')->{data} } ],
        [ $uq ], 'each organisation sees its own ledger';
};

subtest 'GET /ledger/balances: per currency, in the minor units, summed exactly' => sub {
    my $j = list($t->{viewer}, '/api/v1/ledger/balances');
    is_deeply $j, { data => [
        { currency => 'JPY', obligated => '700', settled => '700', outstanding => '0' },
        { currency => 'KWD', obligated => '0.125', settled => '0.000', outstanding => '0.125' },
        { currency => 'USD', obligated => '12.50', settled => '12.50', outstanding => '0.00' },
    ], nextCursor => undef }, 'balances';
    is_deeply list($u->{viewer}, '/api/v1/ledger/balances')->{data},
        [ { currency => 'USD', obligated => '1.00', settled => '0.00', outstanding => '1.00' } ],
        'another organisation';
    my $o = $s->new_org;
    is_deeply list($o->{token}, '/api/v1/ledger/balances'), { data => [], nextCursor => undef },
        'an empty ledger';
    is_error $s->req(GET => '/api/v1/ledger/balances?limit=1', token => $t->{viewer}), 400,
        'VALIDATION_ERROR', 'no query parameters';
};

subtest 'audit events: fields, actor, key and correlation id' => sub {
    my $b = $s->req(POST => '/api/v1/batches', token => $t->{creator}, idem => 'my-key-1',
        headers => { 'X-Request-Id' => 'corr-123' }, json => { name => 'Audited', description => 'd' });
    is $b->{status}, 201, 'batch created';
    my $id = $b->{json}{data}{id};
    my $j = list($t->{viewer}, "/api/v1/audit?objectId=$id");
    my ($e) = grep { $_->{objectType} eq 'batch' } @{ $j->{data} };
    is_deeply [ sort keys %$e ], [ sort qw(id at actorId action objectType objectId idempotencyKey
        correlationId data hash prevHash credential) ], 'fields';
    is $e->{action}, 'batch.created', 'action';
    is $e->{objectId}, $id, 'objectId';
    is $e->{actorId}, $t->{creator_id}, 'actorId';
    is $e->{idempotencyKey}, 'my-key-1', 'idempotencyKey';
    is $e->{correlationId}, 'corr-123', 'correlationId is the X-Request-Id';
    is_deeply $e->{data}, { name => 'Audited', description => 'd' }, 'data is an object';
    like $e->{hash}, qr/^[0-9a-f]{64}$/, 'hash';
    like $e->{prevHash}, qr/^[0-9a-f]{64}$/, 'prevHash';
    like $e->{at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'at';
    my $again = $s->req(POST => '/api/v1/batches', token => $t->{creator}, idem => 'my-key-1',
        json => { name => 'Audited', description => 'd' });
    is $again->{headers}{'idempotent-replayed'}, 'true', 'replayed';
    is scalar(grep { $_->{objectType} eq 'batch' }
        @{ list($t->{viewer}, "/api/v1/audit?objectId=$id")->{data} }), 1, 'a replay writes no event';
};

subtest 'the chain: first prevHash is 64 zeros, each links to the one before' => sub {
    my @ev = all_events($u->{viewer});
    ok @ev >= 10, scalar(@ev) . ' events';
    is $ev[0]{prevHash}, '0' x 64, 'the first event';
    is $ev[0]{action}, 'org.created', 'starts with the bootstrap';
    my $broken = grep { $ev[$_]{prevHash} ne $ev[ $_ - 1 ]{hash} } 1 .. $#ev;
    is $broken, 0, 'every prevHash is the previous hash';
    my %seen;
    is scalar(grep { $seen{ $_->{hash} }++ } @ev), 0, 'hashes are distinct';
};

subtest 'one event per change: submit, decisions, payments, cancel' => sub {
    my $v = team();
    my ($b, $q1, $q2, $q3) = submitted($v, ['1', 'USD'], ['2', 'USD'], ['3', 'EUR']);
    act($v->{a1}, $q1, 'reject', json => { comment => 'no' });
    act($v->{a1}, $q2, 'approve', json => { comment => 'fine' });
    my $r = $s->req(POST => "/api/v1/batches/$b/cancel", token => $v->{creator}, idem => 1);
    is_error $r, 409, 'INVALID_STATE', 'a failed cancel';
    act($v->{treasurer}, $q2, 'mark-paid', json => { paymentReference => 'P-9' });
    act($v->{a2}, $q3, 'reject', json => { comment => 'late' });
    my @ev = grep { $_->{action} !~ /^(org|user|token)\./ } all_events($v->{viewer});
    is_deeply [ map { "$_->{action} $_->{objectId}" } @ev ], [
        "batch.created $b", "request.created $q1", "request.created $q2", "request.created $q3",
        "batch.submitted $b", "request.submitted $q1", "request.submitted $q2",
        "request.submitted $q3", "request.rejected $q1", "request.approved $q2",
        "request.paid $q2", "request.rejected $q3", "batch.completed $b",
    ], 'the events, in order; a failed request writes none';
    my %by = map { ("$_->{action} $_->{objectId}" => $_) } @ev;
    is_deeply $by{"request.approved $q2"}{data}, { decision => 'APPROVED', comment => 'fine',
        approvalCount => 1, requiredApprovals => 1, status => 'APPROVED' }, 'approval data';
    is $by{"request.rejected $q1"}{data}{comment}, 'no', 'rejection data';
    is $by{"request.paid $q2"}{data}{paymentReference}, 'P-9', 'payment data';
    is $by{"request.submitted $q3"}{data}{requiredApprovals}, 1, 'submit data';
    is $by{"batch.submitted $b"}{data}{requests}, 3, 'batch.submitted counts the requests';
    is $by{"batch.completed $b"}{actorId}, $v->{a2_id}, 'completed by the last decision';

    my ($c, $p1, $p2) = submitted($v, ['1', 'USD'], ['2', 'USD']);
    act($v->{a1}, $p1, 'reject', json => { comment => 'no' });
    $r = $s->req(POST => "/api/v1/batches/$c/cancel", token => $v->{creator}, idem => 1);
    is $r->{status}, 200, 'cancelled';
    @ev = grep { $_->{action} =~ /cancel/ } all_events($v->{viewer});
    is_deeply [ map { "$_->{action} $_->{objectId}" } @ev ],
        [ "batch.cancelled $c", "request.cancelled $p2" ],
        'cancel: the batch and each request it changes (not the REJECTED one)';
    is $ev[0]{data}{from}, 'SUBMITTED', 'from SUBMITTED';
    is $ev[1]{data}{from}, 'PENDING_APPROVAL', 'from PENDING_APPROVAL';
};

subtest 'GET /audit: pages, objectId filter, unknown and foreign ids' => sub {
    my $j = list($t->{viewer}, '/api/v1/audit?limit=3');
    is scalar @{ $j->{data} }, 3, 'limit 3';
    ok $j->{data}[0]{id} > $j->{data}[1]{id}, 'newest first';
    my $next = list($t->{viewer}, "/api/v1/audit?limit=3&cursor=$j->{nextCursor}");
    ok $next->{data}[0]{id} < $j->{data}[2]{id}, 'the next page follows';
    $j = list($t->{viewer}, "/api/v1/audit?objectId=$usd");
    is_deeply [ map { $_->{action} } grep { $_->{objectType} eq 'request' } @{ $j->{data} } ],
        [qw(request.paid request.approved request.submitted request.created)], 'a request';
    for my $id ('999999999', $uq, 'x', '', '0') {
        my $k = list($t->{viewer}, "/api/v1/audit?objectId=$id");
        my @mine = grep { $_->{objectType} eq 'request' && $_->{objectId} eq $uq } @{ $k->{data} };
        is scalar @mine, 0, "objectId=$id: nothing of another organisation";
    }
    is_deeply list($t->{viewer}, '/api/v1/audit?objectId=abc'), { data => [], nextCursor => undef },
        'a malformed id: an empty list';
    for my $q ('limit=0', 'limit=201', 'cursor=-5', 'objectId=1&objectId=2', 'action=x') {
        is_error $s->req(GET => "/api/v1/audit?$q", token => $t->{viewer}), 400,
            'VALIDATION_ERROR', $q;
    }
};

subtest 'remit verify-audit passes on intact chains' => sub {
    my $r = $s->remit('verify-audit');
    is $r->{exit}, 0, 'exit 0' or diag $r->{stderr};
};

done_testing;
