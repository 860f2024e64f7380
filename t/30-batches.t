use strict;
use warnings;

use Test::More;
use Remit::Test;
use Remit::Fixture;

# Batches (doc/openapi.yaml#Lifecycle, #paths): create, read, list, submit, cancel, versions and If-Match, totals.
my $s = Remit::Test->stack;
my $org = $s->new_org;
my $admin = $org->{token};
my $creator = $s->new_user($admin, roles => ['CREATOR'])->{token};
my $creator2 = $s->new_user($admin, roles => ['CREATOR'])->{token};
my $viewer = $s->new_user($admin, roles => ['VIEWER'])->{token};
my $approver = $s->new_user($admin, roles => ['APPROVER'])->{token};
my $other = $s->new_org;
my $outsider = $s->new_user($other->{token}, roles => ['CREATOR', 'VIEWER'])->{token};

my $IBAN = 'GB82 WEST 1234 5698 7654 32';

sub get_batch {
    my ($id, $tok) = @_;
    return $s->req(GET => "/api/v1/batches/$id", token => $tok // $viewer);
}

sub action {
    my ($id, $what, %o) = @_;
    return $s->req(POST => "/api/v1/batches/$id/$what", token => $o{token} // $creator,
        idem => 1, (exists $o{json} ? (json => $o{json}) : ()),
        (exists $o{headers} ? (headers => $o{headers}) : ()));
}

my %ZERO = map { $_ => 0 } qw(DRAFT PENDING_APPROVAL APPROVED PAID REJECTED CANCELLED);

subtest 'POST /batches creates a DRAFT batch at version 1' => sub {
    my $r = $s->req(POST => '/api/v1/batches', token => $creator, idem => 1,
        json => { name => 'May payroll', description => 'monthly' });
    is $r->{status}, 201, 'status 201';
    my $b = $r->{json}{data};
    is $b->{status}, 'DRAFT', 'DRAFT';
    is $b->{version}, 1, 'version 1';
    is $r->{headers}{etag}, '"1"', 'ETag "1"';
    is $b->{name}, 'May payroll', 'name';
    is $b->{description}, 'monthly', 'description';
    like $b->{id}, qr/^\S+$/, 'an id string';
    ok !ref $b->{id} && $b->{id} eq "$b->{id}", 'id is a string';
    is $b->{submittedBy}, undef, 'submittedBy null';
    is $b->{submittedAt}, undef, 'submittedAt null';
    like $b->{createdAt}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'createdAt RFC 3339 ms';
    is_deeply $b->{totals}, [], 'no totals';
    is_deeply $b->{counts}, \%ZERO, 'every status counted, all 0';
    my $d = batch($s, $creator);
    is $d->{description}, '', 'description defaults to ""';
};

subtest 'batch fields are validated, all errors at once' => sub {
    my $r = $s->req(POST => '/api/v1/batches', token => $creator, idem => 1,
        json => { description => 'x' x 1001, extra => 1 });
    is_error $r, 400, 'VALIDATION_ERROR';
    is_deeply [ sort keys %{ $r->{json}{error}{details} } ], [qw(description extra name)],
        'name missing, description too long, extra unknown';
    for my $case (['', 'empty'], ['x' x 141, '141 characters'], ["a\x{7}b", 'BEL'],
        ["a\x{85}b", 'C1 control NEL'], ["a\nb", 'newline'], [5, 'a number']) {
        $r = $s->req(POST => '/api/v1/batches', token => $creator, idem => 1,
            json => { name => $case->[0] });
        is_error $r, 400, 'VALIDATION_ERROR', "name $case->[1]";
        ok exists $r->{json}{error}{details}{name}, 'details.name';
    }
    $r = $s->req(POST => '/api/v1/batches', token => $creator, idem => 1,
        json => { name => "\x{1F600}" x 140, description => "\x{1F4B8}" x 1000 });
    is $r->{status}, 201, '140 emoji name and 1000 emoji description: code points count';
    is $r->{json}{data}{name}, "\x{1F600}" x 140, 'stored as full UTF-8';
    $r = $s->req(POST => '/api/v1/batches?x=1', token => $creator, idem => 1,
        json => { name => 'q' });
    is_error $r, 400, 'VALIDATION_ERROR', 'unknown query parameter';
    ok exists $r->{json}{error}{details}{x}, 'named in details';
};

subtest 'only CREATORs create batches' => sub {
    for my $tok ($viewer, $approver, $admin) {
        is_error $s->req(POST => '/api/v1/batches', token => $tok, idem => 1,
            json => { name => 'n' }), 403, 'FORBIDDEN';
    }
};

subtest 'GET /batches/{id}: ETag, 404 for unknown, malformed and other-org ids' => sub {
    my $b = batch($s, $creator, name => 'readable');
    my $r = get_batch($b->{id});
    is $r->{status}, 200, 'any role reads';
    is $r->{headers}{etag}, '"1"', 'ETag';
    is_deeply $r->{json}{data}, $b, 'same representation as on create';
    is_error get_batch($b->{id}, $outsider), 404, 'NOT_FOUND', 'another organisation: 404';
    is_error get_batch('999999999'), 404, 'NOT_FOUND', 'unknown id';
    is_error get_batch('abc'), 404, 'NOT_FOUND', 'malformed id';
    is_error get_batch('0'), 404, 'NOT_FOUND', 'id 0';
    is_error $s->req(GET => "/api/v1/batches/$b->{id}?x=1", token => $viewer), 400,
        'VALIDATION_ERROR', 'unknown query parameter';
    is_error $s->req(GET => '/api/v1/batches/999999999?x=1', token => $viewer), 404,
        'NOT_FOUND', '404 goes before the query check';
};

subtest 'GET /batches: newest first, pages, status filter, own organisation only' => sub {
    my $o = $s->new_org;
    my $c = $s->new_user($o->{token}, roles => ['CREATOR'])->{token};
    my @ids = map { batch($s, $c, name => "b$_")->{id} } 1 .. 5;
    request($s, $c, $ids[0]);
    is action($ids[0], 'submit', token => $c)->{status}, 200, 'one SUBMITTED';
    is action($ids[1], 'cancel', token => $c)->{status}, 200, 'one CANCELLED';

    my $r = $s->req(GET => '/api/v1/batches', token => $c);
    is $r->{status}, 200, 'status 200';
    is_deeply [ map { $_->{id} } @{ $r->{json}{data} } ], [ reverse @ids ], 'newest first';
    is $r->{json}{nextCursor}, undef, 'nextCursor null';
    is $r->{json}{data}[-1]{counts}{PENDING_APPROVAL}, 1, 'counts in lists';
    is $r->{json}{data}[-1]{totals}[0]{amount}, '10.00', 'totals in lists';

    my @seen;
    my $cursor;
    for my $page (1 .. 3) {
        $r = $s->req(GET => '/api/v1/batches?limit=2' . (defined $cursor ? "&cursor=$cursor" : ''),
            token => $c);
        is $r->{status}, 200, "page $page";
        push @seen, map { $_->{id} } @{ $r->{json}{data} };
        $cursor = $r->{json}{nextCursor};
        last unless defined $cursor;
    }
    is_deeply \@seen, [ reverse @ids ], 'pages of 2 cover all, in order';
    is $cursor, undef, 'last page: nextCursor null';
    $r = $s->req(GET => '/api/v1/batches?limit=5', token => $c);
    is $r->{json}{nextCursor}, undef, 'exactly limit items: no next page';

    $r = $s->req(GET => '/api/v1/batches?status=DRAFT', token => $c);
    is_deeply [ map { $_->{id} } @{ $r->{json}{data} } ], [ reverse @ids[2 .. 4] ], 'DRAFT';
    $r = $s->req(GET => '/api/v1/batches?status=SUBMITTED', token => $c);
    is_deeply [ map { $_->{id} } @{ $r->{json}{data} } ], [ $ids[0] ], 'SUBMITTED';
    $r = $s->req(GET => '/api/v1/batches?status=CANCELLED&limit=1', token => $c);
    is_deeply [ map { $_->{id} } @{ $r->{json}{data} } ], [ $ids[1] ], 'CANCELLED';
    is $r->{json}{nextCursor}, undef, 'filtered last page';
    $r = $s->req(GET => '/api/v1/batches?status=DRAFT&limit=2', token => $c);
    is scalar @{ $r->{json}{data} }, 2, 'filtered page';
    $r = $s->req(GET => "/api/v1/batches?status=DRAFT&limit=2&cursor=$r->{json}{nextCursor}",
        token => $c);
    is_deeply [ map { $_->{id} } @{ $r->{json}{data} } ], [ $ids[2] ], 'filtered next page';

    $r = $s->req(GET => '/api/v1/batches', token => $outsider);
    ok !(grep { my $id = $_->{id}; grep { $_ eq $id } @ids } @{ $r->{json}{data} }),
        'another organisation sees none of them';
};

subtest 'GET /batches: bad query parameters are 400 naming them' => sub {
    for my $q ('status=draft', 'status=PENDING_APPROVAL', 'limit=0', 'limit=201', 'limit=abc',
        'limit=-1', 'cursor=abc', 'cursor=0', 'limit=1&limit=2', 'foo=1', 'status=') {
        my $r = $s->req(GET => "/api/v1/batches?$q", token => $viewer);
        is_error $r, 400, 'VALIDATION_ERROR', $q;
        my ($name) = $q =~ /^(\w+)/;
        ok exists $r->{json}{error}{details}{$name}, "details.$name";
    }
    is $s->req(GET => '/api/v1/batches?limit=200', token => $viewer)->{status}, 200, 'limit=200';
    is $s->req(GET => '/api/v1/batches?limit=1', token => $viewer)->{status}, 200, 'limit=1';
};

subtest 'submit: empty batch is INVALID_STATE; else SUBMITTED with snapshots' => sub {
    my $b = batch($s, $creator);
    my $r = action($b->{id}, 'submit');
    is_error $r, 409, 'INVALID_STATE', 'empty batch';
    is $r->{json}{error}{details}{status}, 'DRAFT', 'details.status';
    my $q1 = request($s, $creator, $b->{id}, amount => '5', purpose => 'rent');
    my $q2 = request($s, $creator2, $b->{id}, amount => '7', currency => 'JPY');
    $r = action($b->{id}, 'submit', token => $creator2);
    is $r->{status}, 200, 'another CREATOR submits';
    my $d = $r->{json}{data};
    is $d->{status}, 'SUBMITTED', 'SUBMITTED';
    is $d->{version}, 4, 'version: 1 + 2 requests + submit';
    is $r->{headers}{etag}, '"4"', 'ETag';
    ok defined $d->{submittedBy} && defined $d->{submittedAt}, 'submittedBy and submittedAt';
    is_deeply $d->{counts}, { %ZERO, PENDING_APPROVAL => 2 }, 'counts';
    my $q = $s->req(GET => "/api/v1/requests/$q1->{id}", token => $viewer)->{json}{data};
    is $q->{status}, 'PENDING_APPROVAL', 'request PENDING_APPROVAL';
    is $q->{version}, 2, 'request version bumped';
    is $q->{requiredApprovals}, 1, 'requiredApprovals 1 without rules';
    is_deeply $q->{snapshot}, { amount => '5.00', currency => 'USD', beneficiaryName => 'Ann',
        beneficiaryAccount => 'GB82WEST12345698765432', purpose => 'rent',
        requiredApprovals => 1 }, 'snapshot: the fields as submitted';
    $q = $s->req(GET => "/api/v1/requests/$q2->{id}", token => $viewer)->{json}{data};
    is $q->{snapshot}{amount}, '7', 'JPY snapshot amount';

    $r = action($b->{id}, 'submit');
    is_error $r, 409, 'INVALID_STATE', 'submitting again';
    is $r->{json}{error}{details}{status}, 'SUBMITTED', 'details.status SUBMITTED';
    $r = $s->req(POST => "/api/v1/batches/$b->{id}/requests", token => $creator, idem => 1,
        json => { amount => '1', currency => 'USD', beneficiaryName => 'x',
            beneficiaryAccount => '1' });
    is_error $r, 409, 'INVALID_STATE', 'adding to a SUBMITTED batch';
};

subtest 'submit and cancel take an empty body and no query' => sub {
    my $b = batch($s, $creator);
    request($s, $creator, $b->{id});
    is_error action($b->{id}, 'submit', json => { force => 1 }), 400, 'VALIDATION_ERROR',
        'submit: unknown field';
    my $r = $s->req(POST => "/api/v1/batches/$b->{id}/cancel?now=1", token => $creator, idem => 1);
    is_error $r, 400, 'VALIDATION_ERROR', 'cancel: unknown query parameter';
    ok exists $r->{json}{error}{details}{now}, 'named';
    is get_batch($b->{id})->{json}{data}{status}, 'DRAFT', 'nothing changed';
    is_error action('999999999', 'submit'), 404, 'NOT_FOUND', 'unknown batch';
    is_error action($b->{id}, 'submit', token => $outsider), 404, 'NOT_FOUND',
        'another organisation: 404';
    is_error action($b->{id}, 'submit', token => $approver), 403, 'FORBIDDEN', 'APPROVER: 403';
};

subtest 'cancel a DRAFT batch: it and its requests become CANCELLED' => sub {
    my $b = batch($s, $creator);
    my $q = request($s, $creator, $b->{id});
    my $r = action($b->{id}, 'cancel', token => $creator2);
    is $r->{status}, 200, 'any CREATOR cancels';
    is $r->{json}{data}{status}, 'CANCELLED', 'CANCELLED';
    is $r->{json}{data}{version}, 3, 'version bumped';
    is_deeply $r->{json}{data}{totals}, [], 'no totals';
    is_deeply $r->{json}{data}{counts}, { %ZERO, CANCELLED => 1 }, 'counts';
    my $rq = $s->req(GET => "/api/v1/requests/$q->{id}", token => $viewer)->{json}{data};
    is $rq->{status}, 'CANCELLED', 'request CANCELLED';
    is $rq->{version}, 2, 'request version bumped';
    for my $what (qw(cancel submit)) {
        $r = action($b->{id}, $what);
        is_error $r, 409, 'INVALID_STATE', "$what a CANCELLED batch";
        is $r->{json}{error}{details}{status}, 'CANCELLED', 'details.status';
    }
};

subtest 'cancel a SUBMITTED batch: PENDING requests cancelled, REJECTED stay' => sub {
    my $b = batch($s, $creator);
    my $q1 = request($s, $creator, $b->{id}, amount => '1');
    my $q2 = request($s, $creator, $b->{id}, amount => '2');
    action($b->{id}, 'submit');
    my $r = $s->req(POST => "/api/v1/requests/$q1->{id}/reject", token => $approver, idem => 1,
        json => { comment => 'no' });
    is $r->{status}, 200, 'one rejected';
    $r = action($b->{id}, 'cancel');
    is $r->{status}, 200, 'cancelled';
    is_deeply $r->{json}{data}{counts}, { %ZERO, REJECTED => 1, CANCELLED => 1 }, 'counts';
    is $s->req(GET => "/api/v1/requests/$q1->{id}", token => $viewer)->{json}{data}{status},
        'REJECTED', 'REJECTED stays';
    is $s->req(GET => "/api/v1/requests/$q2->{id}", token => $viewer)->{json}{data}{status},
        'CANCELLED', 'PENDING_APPROVAL becomes CANCELLED';
};

subtest 'cancel is INVALID_STATE once a request is APPROVED' => sub {
    my $b = batch($s, $creator);
    my $q = request($s, $creator, $b->{id});
    action($b->{id}, 'submit');
    is $s->req(POST => "/api/v1/requests/$q->{id}/approve", token => $approver, idem => 1)
        ->{status}, 200, 'approved';
    my $r = action($b->{id}, 'cancel');
    is_error $r, 409, 'INVALID_STATE';
    is $r->{json}{error}{details}{status}, 'SUBMITTED', 'details.status';
    is get_batch($b->{id})->{json}{data}{status}, 'SUBMITTED', 'unchanged';
};

subtest 'If-Match on submit and cancel: stale 412, *, lists, weak tags, malformed' => sub {
    my $b = batch($s, $creator);
    request($s, $creator, $b->{id});    # version 2
    for my $bad ('"1"', 'W/"2"', '2', '"2', 'abc', '"1", "3"', '') {
        my $r = action($b->{id}, 'submit', headers => { 'If-Match' => $bad });
        is_error $r, 412, 'VERSION_CONFLICT', "If-Match: $bad";
        is $r->{json}{error}{details}{currentVersion}, 2, 'details.currentVersion';
    }
    my $r = action($b->{id}, 'submit', headers => { 'If-Match' => '"1", W/"2"' });
    is_error $r, 412, 'VERSION_CONFLICT', 'a list whose only match is weak';
    $r = action($b->{id}, 'submit', json => { bad => 1 }, headers => { 'If-Match' => '"9"' });
    is_error $r, 412, 'VERSION_CONFLICT', '412 goes before VALIDATION_ERROR';
    $r = action('999999999', 'submit', headers => { 'If-Match' => '"9"' });
    is_error $r, 404, 'NOT_FOUND', '404 goes before 412';
    $r = action($b->{id}, 'submit', headers => { 'If-Match' => '"7", "2"' });
    is $r->{status}, 200, 'a list with the current version';
    is $r->{json}{data}{version}, 3, 'version 3';
    $r = action($b->{id}, 'cancel', headers => { 'If-Match' => '*' });
    is $r->{status}, 200, '* matches';
    $r = action($b->{id}, 'cancel', headers => { 'If-Match' => '"4"' });
    is_error $r, 409, 'INVALID_STATE', 'matching version, wrong state: 409';
    $r = action($b->{id}, 'cancel', headers => { 'If-Match' => '"3"' });
    is_error $r, 412, 'VERSION_CONFLICT', '412 goes before INVALID_STATE';
    is $r->{json}{error}{details}{currentVersion}, 4, 'currentVersion 4';
};

subtest 'the batch version follows every change of its requests' => sub {
    my $b = batch($s, $creator);
    my $q = request($s, $creator, $b->{id});
    is get_batch($b->{id})->{json}{data}{version}, 2, 'add';
    $s->req(PATCH => "/api/v1/requests/$q->{id}", token => $creator, json => { purpose => 'x' });
    is get_batch($b->{id})->{json}{data}{version}, 3, 'edit';
    $s->req(PATCH => "/api/v1/requests/$q->{id}", token => $creator, json => { purpose => 'x' });
    is get_batch($b->{id})->{json}{data}{version}, 3, 'an edit that changes nothing';
    my $q2 = request($s, $creator, $b->{id});
    $s->req(DELETE => "/api/v1/requests/$q2->{id}", token => $creator);
    my $r = get_batch($b->{id});
    is $r->{json}{data}{version}, 5, 'add and delete';
    is $r->{headers}{etag}, '"5"', 'ETag follows';
    is $r->{json}{data}{updatedAt} ge $b->{updatedAt}, 1, 'updatedAt moves';
};

subtest 'totals: per currency, normalised, REJECTED and CANCELLED left out' => sub {
    my $b = batch($s, $creator);
    request($s, $creator, $b->{id}, amount => '1.5', currency => 'USD');
    request($s, $creator, $b->{id}, amount => '2.25', currency => 'USD');
    request($s, $creator, $b->{id}, amount => '7', currency => 'JPY');
    request($s, $creator, $b->{id}, amount => '0.001', currency => 'KWD');
    my $rej = request($s, $creator, $b->{id}, amount => '100', currency => 'EUR');
    my $r = get_batch($b->{id});
    is_deeply $r->{json}{data}{totals}, [
        { currency => 'EUR', count => 1, amount => '100.00' },
        { currency => 'JPY', count => 1, amount => '7' },
        { currency => 'KWD', count => 1, amount => '0.001' },
        { currency => 'USD', count => 2, amount => '3.75' },
    ], 'DRAFT totals by currency';
    action($b->{id}, 'submit');
    $s->req(POST => "/api/v1/requests/$rej->{id}/reject", token => $approver, idem => 1,
        json => { comment => 'no' });
    $r = get_batch($b->{id});
    is_deeply [ map { $_->{currency} } @{ $r->{json}{data}{totals} } ], [qw(JPY KWD USD)],
        'the rejected currency is gone';
    is_deeply $r->{json}{data}{counts}, { %ZERO, PENDING_APPROVAL => 4, REJECTED => 1 }, 'counts';
};

subtest 'totals beyond int64 are exact' => sub {
    my $b = batch($s, $creator);
    request($s, $creator, $b->{id}, amount => '999999999999999.99') for 1 .. 100;
    my $r = get_batch($b->{id});
    is_deeply $r->{json}{data}{totals},
        [ { currency => 'USD', count => 100, amount => '99999999999999999.00' } ],
        '100 x 999999999999999.99 = 99999999999999999.00 (above 2^63 minor units)';
    $r = $s->req(GET => '/api/v1/batches?limit=1', token => $creator);
    is $r->{json}{data}[0]{totals}[0]{amount}, '99999999999999999.00', 'in lists too';
};

subtest 'a replayed create answers the same batch' => sub {
    my $key = Remit::Test::random_key();
    my $a = $s->req(POST => '/api/v1/batches', token => $creator, idem => $key,
        json => { name => 'once' });
    my $b = $s->req(POST => '/api/v1/batches', token => $creator, idem => $key,
        json => { name => 'once' });
    is $b->{status}, 201, '201 again';
    is $b->{body}, $a->{body}, 'byte-identical';
    is $b->{headers}{etag}, '"1"', 'ETag replayed';
    is $b->{headers}{'idempotent-replayed'}, 'true', 'Idempotent-Replayed';
};

done_testing;
