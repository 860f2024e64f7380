use strict;
use warnings;

use Test::More;
use Remit::Test;
use Remit::Fixture;

# Payment requests (doc/openapi.yaml#Lifecycle, #paths): create, validation, read, list, PATCH, DELETE.
my $s = Remit::Test->stack;
my $org = $s->new_org;
my $admin = $org->{token};
my ($creator, $creator2, $viewer, $approver) =
    map { person($s, $admin, $_)->{token} } qw(CREATOR CREATOR VIEWER APPROVER);
my $other = $s->new_org;
my $outsider = $s->new_user($other->{token}, roles => ['CREATOR'])->{token};

my $IBAN = 'GB82 WEST 1234 5698 7654 32';
my %BASE = (amount => '10.00', currency => 'USD', beneficiaryName => 'Ann',
    beneficiaryAccount => $IBAN);

sub create {
    my ($bid, $fields, %o) = @_;
    return $s->req(POST => "/api/v1/batches/$bid/requests", token => $o{token} // $creator,
        idem => 1, (ref $fields ? (json => $fields) : (raw => $fields)),
        (exists $o{headers} ? (headers => $o{headers}) : ()));
}

# A test name in ASCII: code points beyond it as \x{...}.
sub label { my ($t) = @_; $t =~ s/([^\x20-\x7e])/sprintf '\\x{%x}', ord $1/ge; return $t }

sub get_request { $s->req(GET => "/api/v1/requests/$_[0]", token => $_[1] // $viewer) }
sub batch_version { $s->req(GET => "/api/v1/batches/$_[0]", token => $viewer)->{json}{data}{version} }

sub patch {
    my ($id, $fields, %o) = @_;
    return $s->req(PATCH => "/api/v1/requests/$id", token => $o{token} // $creator,
        (ref $fields ? (json => $fields) : (raw => $fields)),
        (exists $o{headers} ? (headers => $o{headers}) : ()));
}

sub events_of {
    my ($id) = @_;
    my $r = $s->req(GET => "/api/v1/audit?objectId=$id", token => $viewer);
    return [ grep { $_->{objectType} eq 'request' } @{ $r->{json}{data} } ];
}

my $batch = batch($s, $creator);

subtest 'POST /batches/{id}/requests creates a DRAFT request, normalised' => sub {
    my $r = create($batch->{id}, { %BASE, amount => '5', beneficiaryAccount => 'gb82 west 1234 5698 7654 32' });
    is $r->{status}, 201, 'status 201';
    is $r->{headers}{etag}, '"1"', 'ETag "1"';
    my $q = $r->{json}{data};
    is $q->{status}, 'DRAFT', 'DRAFT';
    is $q->{version}, 1, 'version 1';
    is $q->{batchId}, $batch->{id}, 'batchId';
    is $q->{amount}, '5.00', '"5" USD → "5.00"';
    is $q->{beneficiaryAccount}, 'GB82WEST12345698765432', 'IBAN: spaces out, upper case';
    is $q->{purpose}, '', 'purpose defaults to ""';
    is $q->{requiredApprovals}, undef, 'requiredApprovals null before submit';
    is $q->{approvalCount}, 0, 'approvalCount 0';
    is $q->{snapshot}, undef, 'snapshot null before submit';
    is $q->{paidAt}, undef, 'paidAt null';
    is $q->{paidBy}, undef, 'paidBy null';
    is $q->{paymentReference}, undef, 'paymentReference null';
    ok defined $q->{createdBy} && defined $q->{createdAt} && defined $q->{updatedAt}, 'who and when';
    is_deeply get_request($q->{id})->{json}{data}, $q, 'GET shows the same';
};

subtest 'amounts: minor units of each currency, number literals, normalised' => sub {
    my @ok = (['1.5', 'USD', '1.50'], ['0.01', 'USD', '0.01'], ['7', 'JPY', '7'],
        ['1.5', 'KWD', '1.500'], ['0.001', 'BHD', '0.001'], ['999999999999999.99', 'EUR',
        '999999999999999.99'], ['100', 'CHF', '100.00']);
    for my $c (@ok) {
        my $r = create($batch->{id}, { %BASE, amount => $c->[0], currency => $c->[1] });
        is $r->{status}, 201, "$c->[0] $c->[1]";
        is $r->{json}{data}{amount}, $c->[2], "→ $c->[2]";
    }
    my $r = create($batch->{id}, '{"amount":12.34,"currency":"USD","beneficiaryName":"A",'
        . '"beneficiaryAccount":"1"}');
    is $r->{status}, 201, 'a JSON number literal';
    is $r->{json}{data}{amount}, '12.34', 'read from its text';
    $r = create($batch->{id}, '{"amount":1e2,"currency":"USD","beneficiaryName":"A",'
        . '"beneficiaryAccount":"1"}');
    is_error $r, 400, 'VALIDATION_ERROR', 'a number literal with an exponent';
    ok exists $r->{json}{error}{details}{amount}, 'details.amount';
};

subtest 'bad amounts are VALIDATION_ERROR on amount' => sub {
    my @bad = (['0', 'USD'], ['0.00', 'USD'], ['-1', 'USD'], ['1.001', 'USD'], ['1.5', 'JPY'],
        ['1.0001', 'KWD'], ['1e3', 'USD'], ['+1', 'USD'], ['01', 'USD'], ['', 'USD'],
        [' 1', 'USD'], ['1.', 'USD'], ['.5', 'USD'], ['1,00', 'USD'],
        ['1234567890123456', 'USD'], ['1234567890123456', 'JPY'], ['NaN', 'USD']);
    for my $c (@bad) {
        my $r = create($batch->{id}, { %BASE, amount => $c->[0], currency => $c->[1] });
        is_error $r, 400, 'VALIDATION_ERROR', "'$c->[0]' $c->[1]";
        is_deeply [ keys %{ $r->{json}{error}{details} } ], ['amount'], 'only amount';
    }
    for my $v (\1, [1], { a => 1 }) {
        my $r = create($batch->{id}, { %BASE, amount => $v });
        is_error $r, 400, 'VALIDATION_ERROR', 'amount of type ' . (ref $v);
    }
};

subtest 'currency: upper-case codes of the table' => sub {
    for my $cur ('usd', 'XXX', 'US', 'USDD', '', 1) {
        my $r = create($batch->{id}, { %BASE, currency => $cur });
        is_error $r, 400, 'VALIDATION_ERROR', "currency '$cur'";
        is_deeply [ keys %{ $r->{json}{error}{details} } ], ['currency'],
            'only currency (the amount is fine in form)';
    }
    my $r = create($batch->{id}, { %BASE, currency => 'XXX', amount => '1.2.3' });
    is_deeply [ sort keys %{ $r->{json}{error}{details} } ], [qw(amount currency)],
        'an amount bad in form is reported with an unknown currency';
    for my $cur (qw(USD EUR GBP CHF JPY CAD AUD SEK NOK DKK PLN CZK HUF INR CNY KWD BHD)) {
        is create($batch->{id}, { %BASE, currency => $cur, amount => '1' })->{status}, 201,
            "$cur is known";
    }
};

subtest 'missing fields and unknown fields, all reported at once' => sub {
    my $r = create($batch->{id}, { note => 'x' });
    is_error $r, 400, 'VALIDATION_ERROR';
    is_deeply [ sort keys %{ $r->{json}{error}{details} } ],
        [qw(amount beneficiaryAccount beneficiaryName currency note)], 'five fields named';
    $r = create($batch->{id}, { %BASE, purpose => undef });
    is $r->{status}, 201, 'null purpose is the same as none';
    is $r->{json}{data}{purpose}, '', 'purpose ""';
    $r = create($batch->{id}, { %BASE, beneficiaryName => undef });
    is_error $r, 400, 'VALIDATION_ERROR', 'null for a required field';
};

subtest 'beneficiaryName and purpose: lengths in code points, no control characters' => sub {
    my $emoji = "\x{1F600}";
    is create($batch->{id}, { %BASE, beneficiaryName => $emoji x 140 })->{status}, 201,
        'name: 140 emoji';
    is create($batch->{id}, { %BASE, purpose => $emoji x 140 })->{status}, 201,
        'purpose: 140 emoji';
    my $r = create($batch->{id}, { %BASE, beneficiaryName => "Zo\x{eb} \x{1F600}" });
    is $r->{json}{data}{beneficiaryName}, "Zo\x{eb} \x{1F600}", 'stored as full UTF-8';
    is create($batch->{id}, { %BASE, purpose => '' })->{status}, 201, 'purpose ""';
    my @bad = ([beneficiaryName => ''], [beneficiaryName => 'x' x 141],
        [beneficiaryName => $emoji x 141], [purpose => 'x' x 141], [purpose => $emoji x 141],
        [beneficiaryName => "a\x{0}b"], [beneficiaryName => "a\x{1f}"],
        [beneficiaryName => "\x{7f}"], [purpose => "a\x{80}"], [purpose => "a\x{9f}"],
        [purpose => "line\nbreak"], [purpose => "tab\t"], [beneficiaryName => 7]);
    for my $c (@bad) {
        my $r = create($batch->{id}, { %BASE, $c->[0] => $c->[1] });
        is_error $r, 400, 'VALIDATION_ERROR', "$c->[0] '" . label(substr($c->[1], 0, 8)) . "'";
        is_deeply [ keys %{ $r->{json}{error}{details} } ], [ $c->[0] ], "details.$c->[0]";
    }
    is create($batch->{id}, { %BASE, purpose => "a\x{a0}b" })->{status}, 201,
        'U+00A0 is not a control character';
};

subtest 'beneficiaryAccount: IBAN normalisation and check digits, 1..34' => sub {
    my @ok = (['DE89 3704 0044 0532 0130 00', 'DE89370400440532013000'],
        ['fr14 2004 1010 0505 0001 3m02 606', 'FR1420041010050500013M02606'],
        ['NL91ABNA0417164300', 'NL91ABNA0417164300'], ['12345678', '12345678'],
        ['A' x 34, 'A' x 34], ["\x{1F600}" x 34, "\x{1F600}" x 34],
        ['acct 12-34', 'acct 12-34'], [' GB82 WEST', ' GB82 WEST']);
    for my $c (@ok) {
        my $r = create($batch->{id}, { %BASE, beneficiaryAccount => $c->[0] });
        is $r->{status}, 201, "'" . label($c->[0]) . "'";
        is $r->{json}{data}{beneficiaryAccount}, $c->[1], 'normalised';
    }
    my @bad = ('GB83 WEST 1234 5698 7654 32', 'DE88370400440532013000', 'GB82-WEST-1234',
        'GB82 WEST 1234 5698 7654 32 0000 0000 0000', '', 'A' x 35, "\x{1F600}" x 35,
        "12\x{7}34", 'GB82');
    for my $acct (@bad) {
        my $r = create($batch->{id}, { %BASE, beneficiaryAccount => $acct });
        is_error $r, 400, 'VALIDATION_ERROR', "'" . label(substr($acct, 0, 20)) . "'";
        is_deeply [ keys %{ $r->{json}{error}{details} } ], ['beneficiaryAccount'],
            'details.beneficiaryAccount';
    }
};

subtest 'create: 404 before 412 before 400 before 409; If-Match is the batch version' => sub {
    my $b = batch($s, $creator);
    my $r = create('999999999', { %BASE });
    is_error $r, 404, 'NOT_FOUND', 'unknown batch';
    is_error create($b->{id}, { %BASE }, token => $outsider), 404, 'NOT_FOUND',
        'another organisation: 404';
    $r = create($b->{id}, { amount => 'x' }, headers => { 'If-Match' => '"2"' });
    is_error $r, 412, 'VERSION_CONFLICT', 'stale If-Match before validation';
    is $r->{json}{error}{details}{currentVersion}, 1, 'currentVersion';
    $r = create($b->{id}, { %BASE }, headers => { 'If-Match' => '"1"' });
    is $r->{status}, 201, 'matching If-Match';
    is batch_version($b->{id}), 2, 'batch version bumped';
    $s->req(POST => "/api/v1/batches/$b->{id}/submit", token => $creator, idem => 1);
    $r = create($b->{id}, { amount => 'x' });
    is_error $r, 400, 'VALIDATION_ERROR', 'validation before state';
    $r = create($b->{id}, { %BASE });
    is_error $r, 409, 'INVALID_STATE', 'batch no longer DRAFT';
    is $r->{json}{error}{details}{status}, 'SUBMITTED', 'details.status is the batch status';
    is_error create($b->{id}, { %BASE }, token => $viewer), 403, 'FORBIDDEN', 'VIEWER';
};

# The rule "a request is added only to a batch in a status BA_EDIT is allowed from" lives in
# src/domain/lifecycle.c alone: the stored procedure request_add (sql/migrations/0014), which
# the handler CALLs first, is handed those statuses and names none; the locking path it falls
# back to (If-Match, or no row back) asks the same table. Both paths refuse a SUBMITTED batch
# and add to a DRAFT one, so the two cannot drift apart unnoticed.
subtest 'adding: one rule for the procedure and the locking path' => sub {
    my $def = $s->dbh->selectrow_array(q{SELECT ROUTINE_DEFINITION FROM information_schema.ROUTINES
        WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME = 'request_add'});
    like $def, qr/FIND_IN_SET\(status, p_statuses\)/, 'request_add adds in the statuses it is handed';
    unlike $def, qr/'(?:DRAFT|SUBMITTED|COMPLETED|CANCELLED)'/, 'and names no status itself';

    my $b = batch($s, $creator);
    is create($b->{id}, { %BASE })->{status}, 201, 'DRAFT, by the CALL: 201';
    is create($b->{id}, { %BASE }, headers => { 'If-Match' => '"2"' })->{status}, 201,
        'DRAFT, by the locking path (If-Match): 201';
    submit($s, $creator, $b->{id});
    my $count = sub { scalar $s->dbh->selectrow_array(
        'SELECT COUNT(*) FROM payment_requests WHERE batch_id = ?', undef, $b->{id}) };
    my $version = batch_version($b->{id});
    my $r = create($b->{id}, { %BASE });
    is_error $r, 409, 'INVALID_STATE', 'SUBMITTED, by the CALL: 409';
    is $r->{json}{error}{details}{status}, 'SUBMITTED', 'details.status';
    $r = create($b->{id}, { %BASE }, headers => { 'If-Match' => qq{"$version"} });
    is_error $r, 409, 'INVALID_STATE', 'SUBMITTED, by the locking path (If-Match): 409';
    is $count->(), 2, 'no request added';
    is batch_version($b->{id}), $version, 'the batch not bumped';

    # The procedure itself, as the handler calls it: it adds only in the statuses handed over.
    my $d = batch($s, $creator);
    my $h = $s->new_dbh(AutoCommit => 0);
    my @args = ($org->{orgId}, $d->{id});
    my @rest = (5000, 1000, 'USD', 'Ann', 'GB82WEST12345698765432', '', $org->{userId});
    my $call = sub {    # the rows of its result, when it has one
        my $sth = $h->prepare('CALL request_add(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
        $sth->execute(@args, $_[0], @rest);
        my $rows = $sth->{NUM_OF_FIELDS} ? $sth->fetchall_arrayref : [];
        1 while $sth->more_results;
        return $rows;
    };
    is scalar @{ $call->('SUBMITTED,COMPLETED') }, 0, 'a DRAFT batch, handed SUBMITTED: no row';
    is scalar @{ $call->('DRAFT') }, 1, 'handed DRAFT: the new request';
    $h->rollback;
    $h->disconnect;
};

subtest 'any CREATOR adds to any DRAFT batch' => sub {
    my $b = batch($s, $creator);
    my $r = create($b->{id}, { %BASE }, token => $creator2);
    is $r->{status}, 201, 'another CREATOR adds';
};

subtest 'GET /requests/{id}: ETag, 404 for other organisations and bad ids' => sub {
    my $q = request($s, $creator, $batch->{id});
    my $r = get_request($q->{id});
    is $r->{status}, 200, 'any role reads';
    is $r->{headers}{etag}, '"1"', 'ETag';
    is_error get_request($q->{id}, $outsider), 404, 'NOT_FOUND', 'another organisation';
    is_error get_request('999999999'), 404, 'NOT_FOUND', 'unknown';
    is_error get_request('1x'), 404, 'NOT_FOUND', 'malformed';
    is_error $s->req(GET => "/api/v1/requests/$q->{id}?a=b", token => $viewer), 400,
        'VALIDATION_ERROR', 'unknown query parameter';
};

subtest 'GET /batches/{id}/requests: newest first, pages, status filter' => sub {
    my $b = batch($s, $creator);
    my @ids = map { request($s, $creator, $b->{id}, amount => $_)->{id} } 1 .. 5;
    my $r = $s->req(GET => "/api/v1/batches/$b->{id}/requests", token => $viewer);
    is $r->{status}, 200, 'status 200';
    is_deeply [ map { $_->{id} } @{ $r->{json}{data} } ], [ reverse @ids ], 'newest first';
    is $r->{json}{nextCursor}, undef, 'one page';
    $r = $s->req(GET => "/api/v1/batches/$b->{id}/requests?limit=3", token => $viewer);
    is_deeply [ map { $_->{id} } @{ $r->{json}{data} } ], [ reverse @ids[2 .. 4] ], 'page 1';
    $r = $s->req(GET => "/api/v1/batches/$b->{id}/requests?limit=3&cursor=$r->{json}{nextCursor}",
        token => $viewer);
    is_deeply [ map { $_->{id} } @{ $r->{json}{data} } ], [ reverse @ids[0 .. 1] ], 'page 2';
    is $r->{json}{nextCursor}, undef, 'last page';
    $s->req(POST => "/api/v1/batches/$b->{id}/submit", token => $creator, idem => 1);
    $s->req(POST => "/api/v1/requests/$ids[1]/reject", token => $approver, idem => 1,
        json => { comment => 'no' });
    $r = $s->req(GET => "/api/v1/batches/$b->{id}/requests?status=REJECTED", token => $viewer);
    is_deeply [ map { $_->{id} } @{ $r->{json}{data} } ], [ $ids[1] ], 'status=REJECTED';
    $r = $s->req(GET => "/api/v1/batches/$b->{id}/requests?status=PENDING_APPROVAL&limit=2",
        token => $viewer);
    is_deeply [ map { $_->{id} } @{ $r->{json}{data} } ], [ @ids[4, 3] ], 'filtered page';
    for my $q ('status=SUBMITTED', 'status=pending_approval', 'limit=0', 'cursor=x', 'q=1') {
        $r = $s->req(GET => "/api/v1/batches/$b->{id}/requests?$q", token => $viewer);
        is_error $r, 400, 'VALIDATION_ERROR', $q;
    }
    is_error $s->req(GET => "/api/v1/batches/$b->{id}/requests", token => $outsider), 404,
        'NOT_FOUND', 'another organisation';
    is_error $s->req(GET => '/api/v1/batches/999999999/requests?q=1', token => $viewer), 404,
        'NOT_FOUND', 'unknown batch: 404 before the query check';
};

subtest 'PATCH changes fields, bumps the request and the batch, writes one event' => sub {
    my $b = batch($s, $creator);
    my $q = request($s, $creator, $b->{id});
    my $r = patch($q->{id}, { purpose => 'rent', beneficiaryName => 'Bo' });
    is $r->{status}, 200, 'status 200';
    is $r->{headers}{etag}, '"2"', 'ETag "2"';
    is $r->{json}{data}{version}, 2, 'version 2';
    is $r->{json}{data}{purpose}, 'rent', 'purpose';
    is $r->{json}{data}{beneficiaryName}, 'Bo', 'beneficiaryName';
    is $r->{json}{data}{amount}, '10.00', 'untouched fields stay';
    is batch_version($b->{id}), 3, 'batch version bumped';
    my $ev = events_of($q->{id});
    is_deeply [ map { $_->{action} } @$ev ], [qw(request.updated request.created)], 'one event';
    is_deeply $ev->[0]{data}{purpose}, { from => '', to => 'rent' }, 'event says what changed';

    $r = patch($q->{id}, { purpose => '' });
    is $r->{json}{data}{purpose}, '', '"" empties purpose';
    $r = patch($q->{id}, { purpose => undef, amount => undef });
    is $r->{json}{data}{version}, 3, 'nulls change nothing';
    $r = patch($q->{id}, { beneficiaryAccount => 'DE89 3704 0044 0532 0130 00' });
    is $r->{json}{data}{beneficiaryAccount}, 'DE89370400440532013000', 'account normalised';
    is $r->{json}{data}{version}, 4, 'version 4';
};

subtest 'a PATCH that changes nothing: 200, no version, no event' => sub {
    my $b = batch($s, $creator);
    my $q = request($s, $creator, $b->{id}, purpose => 'p');
    for my $body ({}, { purpose => 'p' }, { amount => '10', currency => 'USD' },
        { beneficiaryAccount => 'gb82west12345698765432' }, { beneficiaryName => undef }) {
        my $r = patch($q->{id}, $body);
        is $r->{status}, 200, 'status 200';
        is $r->{json}{data}{version}, 1, 'version unchanged';
        is $r->{headers}{etag}, '"1"', 'ETag "1"';
    }
    is batch_version($b->{id}), 2, 'batch version unchanged';
    is scalar @{ events_of($q->{id}) }, 1, 'no event beyond request.created';
};

subtest 'PATCH re-validates the amount against the new or the old currency' => sub {
    my $b = batch($s, $creator);
    my $q = request($s, $creator, $b->{id}, amount => '5.25');
    my $r = patch($q->{id}, { currency => 'JPY' });
    is_error $r, 400, 'VALIDATION_ERROR', '5.25 does not fit JPY';
    ok exists $r->{json}{error}{details}{amount}, 'named amount';
    $r = patch($q->{id}, { currency => 'KWD' });
    is $r->{status}, 200, '5.25 fits KWD';
    is $r->{json}{data}{amount}, '5.250', 'as 5.250';
    $r = patch($q->{id}, { amount => '5.2501' });
    is_error $r, 400, 'VALIDATION_ERROR', 'an amount is checked against the old currency';
    $r = patch($q->{id}, { amount => '1.5', currency => 'JPY' });
    is_error $r, 400, 'VALIDATION_ERROR', 'and against the new one';
    $r = patch($q->{id}, { amount => '15', currency => 'JPY' });
    is $r->{status}, 200, 'amount and currency together';
    is $r->{json}{data}{amount}, '15', '15 JPY';
    $r = patch($q->{id}, { currency => 'USD' });
    is $r->{json}{data}{amount}, '15.00', 'JPY → USD keeps the value';
    $r = patch($q->{id}, { amount => '0' });
    is_error $r, 400, 'VALIDATION_ERROR', 'amount 0';
    $r = patch($q->{id}, { currency => 'usd', beneficiaryName => '', bogus => 1 });
    is_deeply [ sort keys %{ $r->{json}{error}{details} } ],
        [qw(beneficiaryName bogus currency)], 'every bad field named';
};

subtest 'PATCH: DRAFT only; 404, 412 and 400 first; empty body is MALFORMED_JSON' => sub {
    my $b = batch($s, $creator);
    my $q = request($s, $creator, $b->{id});
    my $r = patch($q->{id}, { purpose => 'x' }, headers => { 'If-Match' => '"5"' });
    is_error $r, 412, 'VERSION_CONFLICT', 'stale If-Match';
    is $r->{json}{error}{details}{currentVersion}, 1, 'currentVersion';
    is_error patch($q->{id}, { purpose => 'x' }, headers => { 'If-Match' => 'W/"1"' }), 412,
        'VERSION_CONFLICT', 'a weak tag never matches';
    $r = patch($q->{id}, { purpose => 'x' }, headers => { 'If-Match' => '"1"' });
    is $r->{status}, 200, 'matching If-Match';
    is_error patch($q->{id}, ''), 400, 'MALFORMED_JSON', 'empty body';
    is_error patch('999999999', { purpose => 'x' }), 404, 'NOT_FOUND', 'unknown';
    is_error patch($q->{id}, { purpose => 'x' }, token => $outsider), 404, 'NOT_FOUND',
        'another organisation';
    is_error patch($q->{id}, { purpose => 'x' }, token => $viewer), 403, 'FORBIDDEN', 'VIEWER';
    $s->req(POST => "/api/v1/batches/$b->{id}/submit", token => $creator, idem => 1);
    $r = patch($q->{id}, { purpose => 'y' });
    is_error $r, 409, 'INVALID_STATE', 'PENDING_APPROVAL';
    is $r->{json}{error}{details}{status}, 'PENDING_APPROVAL', 'details.status';
    is_error patch($q->{id}, {}), 409, 'INVALID_STATE', 'even a PATCH that changes nothing';
    is_error patch($q->{id}, { purpose => 'x' x 141 }), 400, 'VALIDATION_ERROR',
        'validation before state';
    is_error patch($q->{id}, { purpose => 'x' x 141 }, headers => { 'If-Match' => '"1"' }),
        412, 'VERSION_CONFLICT', '412 before validation';
};

subtest 'DELETE: DRAFT only, 204, bumps the batch, one event' => sub {
    my $b = batch($s, $creator);
    my $q = request($s, $creator, $b->{id});
    my $keep = request($s, $creator, $b->{id});
    my $r = $s->req(DELETE => "/api/v1/requests/$q->{id}", token => $creator,
        headers => { 'If-Match' => '"2"' });
    is_error $r, 412, 'VERSION_CONFLICT', 'stale If-Match';
    $r = $s->req(DELETE => "/api/v1/requests/$q->{id}", token => $outsider);
    is_error $r, 404, 'NOT_FOUND', 'another organisation';
    $r = $s->req(DELETE => "/api/v1/requests/$q->{id}?x=1", token => $creator);
    is_error $r, 400, 'VALIDATION_ERROR', 'unknown query parameter';
    $r = $s->req(DELETE => "/api/v1/requests/$q->{id}", token => $creator2,
        headers => { 'If-Match' => '"1"' });
    is $r->{status}, 204, 'status 204';
    is $r->{body}, '', 'no body';
    is_error get_request($q->{id}), 404, 'NOT_FOUND', 'gone';
    is batch_version($b->{id}), 4, 'batch version bumped';
    is_deeply [ map { $_->{action} } @{ events_of($q->{id}) } ],
        [qw(request.deleted request.created)], 'request.deleted';
    is_error $s->req(DELETE => "/api/v1/requests/$q->{id}", token => $creator), 404,
        'NOT_FOUND', 'deleting again';
    $s->req(POST => "/api/v1/batches/$b->{id}/submit", token => $creator, idem => 1);
    $r = $s->req(DELETE => "/api/v1/requests/$keep->{id}", token => $creator);
    is_error $r, 409, 'INVALID_STATE', 'PENDING_APPROVAL';
    is $r->{json}{error}{details}{status}, 'PENDING_APPROVAL', 'details.status';
    is get_request($keep->{id})->{status}, 200, 'still there';
};

done_testing;
