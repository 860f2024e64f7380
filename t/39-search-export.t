use strict;
use warnings;
use utf8;

use Test::More;
use Remit::Test;
use Encode ();

# API §10 besides the signals: GET /api/v1/members, the search filters of GET
# /api/v1/requests (q, currency, minAmount/maxAmount) and their bad values, the audit log's
# filters (objectType, actorId, action), and CSV exports (Accept: text/csv) of requests,
# ledger entries and the audit log with RFC 4180 quoting and the spreadsheet-formula guard.
my $s = Remit::Test->stack;

sub ok_data {
    my ($what, $res, $status) = @_;
    die "$what: $res->{status} $res->{body}" unless $res->{status} == $status;
    return $res->{json}{data};
}

my $o = $s->new_org;
my %t = (admin => $o->{token});
my %id = (admin => $o->{userId});
for my $who (qw(creator approver treasurer viewer)) {
    my $u = $s->new_user($o->{token}, roles => [ uc $who ], name => "The \u$who");
    ($t{$who}, $id{$who}) = ($u->{token}, $u->{id});
}
my $other = $s->new_org;

sub get {
    my ($path, %h) = @_;
    return $s->req(GET => $path, token => $t{viewer}, headers => \%h);
}
sub ids { [ map { $_->{id} } @{ ok_data($_[0], get($_[0]), 200) } ] }
sub post {
    my ($who, $path, $json) = @_;
    return ok_data("POST $path", $s->req(POST => $path, token => $t{$who}, idem => 1,
        json => $json // {}), $path =~ m{/requests$|/batches$} ? 201 : 200);
}

my $bid = post(creator => '/api/v1/batches', { name => 'Search' })->{id};
my @rows = (
    [ '1234.56', 'EUR', 'Acme Süd GmbH', 'DE89 3704 0044 0532 0130 00', 'Invoice 2026-114' ],
    [ '10.00', 'EUR', 'Bolt Ltd', 'GB82WEST12345698765432', 'coffee' ],
    [ '99.99', 'USD', '=HYPERLINK("http://x")', 'ACCT 7', '+1 call, "now"' ],
    [ '5000', 'JPY', '-Minus', '@acct', '@home' ],
);
my @req = map {
    post(creator => "/api/v1/batches/$bid/requests", { amount => $_->[0], currency => $_->[1],
        beneficiaryName => $_->[2], beneficiaryAccount => $_->[3], purpose => $_->[4] })->{id}
} @rows;

subtest 'members: every user names people, without emails' => sub {
    my $m = ok_data('members', get('/api/v1/members'), 200);
    is scalar @$m, 5, 'five members';
    my ($ap) = grep { $_->{id} eq $id{approver} } @$m;
    is_deeply $ap, { id => $id{approver}, name => 'The Approver', roles => ['APPROVER'],
        active => JSON::PP::true }, 'id, name, roles, active';
    ok !(grep { exists $_->{email} } @$m), 'no email';
    my $page = get('/api/v1/members?limit=2');
    is scalar @{ $page->{json}{data} }, 2, 'paged';
    ok $page->{json}{nextCursor}, 'with a cursor';
    my $foreign = ok_data('other', $s->req(GET => '/api/v1/members', token => $other->{token}),
        200);
    is scalar @$foreign, 1, 'another organisation sees only its own';
    is_error get('/api/v1/members?limit=0'), 400, 'VALIDATION_ERROR', 'bad limit';
    is_error get('/api/v1/members?name=x'), 400, 'VALIDATION_ERROR', 'unknown parameter';
    is_error $s->req(GET => '/api/v1/members'), 401, 'UNAUTHENTICATED', 'a token is needed';
};

subtest 'q: a case-insensitive substring of name, purpose or account' => sub {
    is_deeply ids('/api/v1/requests?q=acme%20s%C3%BCd'), [ $req[0] ], 'name, any case';
    is_deeply ids('/api/v1/requests?q=INVOICE'), [ $req[0] ], 'purpose';
    is_deeply ids('/api/v1/requests?q=0044%200532'), [ $req[0] ], 'account, spaces ignored';
    is_deeply ids('/api/v1/requests?q=acct7'), [ $req[2] ], 'an account stored with a space';
    is_deeply ids('/api/v1/requests?q=%25'), [], 'a % is a character, not a wildcard';
    is_deeply ids('/api/v1/requests?q=nothing-like-it'), [], 'no match';
};

subtest 'currency and amount bounds' => sub {
    is_deeply ids('/api/v1/requests?currency=EUR'), [ $req[1], $req[0] ], 'EUR';
    is_deeply ids('/api/v1/requests?currency=EUR&minAmount=10.01'), [ $req[0] ], 'min';
    is_deeply ids('/api/v1/requests?currency=EUR&maxAmount=10.00'), [ $req[1] ], 'max, inclusive';
    is_deeply ids('/api/v1/requests?currency=EUR&minAmount=0&maxAmount=1234.56'),
        [ $req[1], $req[0] ], '0 allowed';
    is_deeply ids('/api/v1/requests?currency=JPY&minAmount=5000'), [ $req[3] ], 'JPY';
    is_deeply ids("/api/v1/requests?currency=EUR&q=bolt&status=DRAFT&batchId=$bid"),
        [ $req[1] ], 'every filter combines';
};

subtest 'bad filter values: 400 naming each' => sub {
    for my $case (
        [ 'q=', 'q' ], [ 'q=' . ('x' x 101), 'q' ], [ 'q=a%01b', 'q' ],
        [ 'currency=eur', 'currency' ], [ 'currency=XXX', 'currency' ],
        [ 'minAmount=5', 'minAmount' ], [ 'maxAmount=5', 'maxAmount' ],
        [ 'currency=EUR&minAmount=1.234', 'minAmount' ],
        [ 'currency=JPY&maxAmount=1.5', 'maxAmount' ],
        [ 'currency=EUR&minAmount=-1', 'minAmount' ],
        [ 'currency=EUR&maxAmount=1e3', 'maxAmount' ],
        [ 'q=a&q=b', 'q' ],
    ) {
        my $res = get("/api/v1/requests?$case->[0]");
        is_error $res, 400, 'VALIDATION_ERROR', $case->[0];
        ok exists $res->{json}{error}{details}{ $case->[1] }, "names $case->[1]";
    }
    is_deeply ids('/api/v1/requests?q=' . ('x' x 100)), [], '100 characters are fine';
};

# a CSV body → rows of fields (RFC 4180: quoted fields, doubled quotes, CRLF)
sub csv_rows {
    my ($text) = @_;
    my (@rows, @f, $cur, $q);
    my $i = 0;
    $cur = '';
    while ($i < length $text) {
        my $ch = substr $text, $i++, 1;
        if ($q) {
            if ($ch eq '"') {
                if (substr($text, $i, 1) eq '"') { $cur .= '"'; $i++ } else { $q = 0 }
            } else { $cur .= $ch }
        } elsif ($ch eq '"') { $q = 1 }
        elsif ($ch eq ',') { push @f, $cur; $cur = '' }
        elsif ($ch eq "\r" && substr($text, $i, 1) eq "\n") {
            $i++; push @f, $cur; push @rows, [@f]; @f = (); $cur = '';
        } else { $cur .= $ch }
    }
    return \@rows;
}

subtest 'requests as CSV: every match, quoting and the formula guard' => sub {
    my $res = get("/api/v1/requests?batchId=$bid", Accept => 'text/csv');
    is $res->{status}, 200, 'status 200';
    like $res->{headers}{'content-type'}, qr{^text/csv; charset=utf-8$}, 'text/csv';
    is $res->{headers}{'content-disposition'}, 'attachment; filename="requests.csv"',
        'an attachment';
    like $res->{body}, qr/\r\n\z/, 'CRLF line ends';
    my $rows = csv_rows(Encode::decode('UTF-8', $res->{body}));
    is_deeply $rows->[0], [qw(id batchId status amount currency beneficiaryName
        beneficiaryAccount purpose createdBy createdAt updatedAt version requiredApprovals
        approvalCount snapshot paidAt paidBy paymentReference paymentFileId lastReturn signals)],
        'the header';
    is scalar @$rows, 5, 'a row per request';
    my %by = map { $_->[0] => $_ } @$rows[1 .. $#$rows];
    is $by{ $req[0] }[5], 'Acme Süd GmbH', 'UTF-8 text as stored';
    is $by{ $req[0] }[3], '1234.56', 'amount';
    is $by{ $req[0] }[12], '', 'null is an empty field';
    is $by{ $req[0] }[20], '[{"code":"NEW_BENEFICIARY","requestIds":[]}]', 'nested as JSON';
    is $by{ $req[2] }[5], q{'=HYPERLINK("http://x")}, '= guarded';
    is $by{ $req[2] }[7], q{'+1 call, "now"}, '+ guarded, comma and quotes kept';
    is $by{ $req[3] }[5], "'-Minus", '- guarded';
    is $by{ $req[3] }[6], "'\@acct", '@ guarded';
    is $by{ $req[3] }[7], "'\@home", 'the purpose too';
    like $res->{body}, qr/,"'=HYPERLINK\(""http:\/\/x""\)",/, 'quotes doubled inside quotes';
    my $page = get('/api/v1/requests?limit=1&currency=EUR', Accept => 'text/csv');
    is scalar @{ csv_rows($page->{body}) }, 3, 'no paging: limit does not cut the export';
    my $json = get('/api/v1/requests', Accept => 'application/json, text/plain');
    like $json->{headers}{'content-type'}, qr{^application/json}, 'any other Accept: JSON';
    is_error get('/api/v1/requests?currency=eur', Accept => 'text/csv'), 400,
        'VALIDATION_ERROR', 'bad filters answer JSON errors';
};

subtest 'no more than 100000 rows: 400 naming filters' => sub {
    # 100,001 events are quicker to make in SQL than through the API: a fresh organisation
    # of their own (its chain is not verified here) holds them.
    my $x = $s->new_org;
    $s->dbh->do("INSERT INTO audit_events (org_id, seq, at, action, object_type, object_id,"
        . " correlation_id, data, hash, prev_hash) SELECT ?, seq + 1000, NOW(3),"
        . " 'batch.created', 'batch', seq, 'bulk', '{}', REPEAT('0', 64), REPEAT('0', 64)"
        . " FROM seq_1_to_100001", undef, $x->{orgId});
    my $res = $s->req(GET => '/api/v1/audit', token => $x->{token},
        headers => { Accept => 'text/csv' });
    is_error $res, 400, 'VALIDATION_ERROR', '100,001 rows';
    ok exists $res->{json}{error}{details}{filters}, 'names filters';
    $res = $s->req(GET => '/api/v1/audit?objectType=org', token => $x->{token},
        headers => { Accept => 'text/csv' });
    is $res->{status}, 200, 'fewer rows: 200';
    is scalar @{ csv_rows($res->{body}) }, 2, 'the header and the org.created event';
};

subtest 'ledger entries and audit as CSV' => sub {
    post(creator => "/api/v1/batches/$bid/submit");
    post(approver => "/api/v1/requests/$req[1]/approve");
    my $res = get('/api/v1/ledger/entries', Accept => 'text/csv');
    is $res->{headers}{'content-disposition'}, 'attachment; filename="ledger-entries.csv"',
        'ledger attachment';
    my $rows = csv_rows($res->{body});
    is_deeply $rows->[0], [qw(id requestId batchId type amount currency createdAt)], 'header';
    is_deeply [ @{ $rows->[1] }[1, 3, 4, 5] ], [ $req[1], 'OBLIGATION', '10.00', 'EUR' ],
        'the entry';
    $res = get("/api/v1/ledger/entries?requestId=$req[0]", Accept => 'text/csv');
    is $res->{body}, "id,requestId,batchId,type,amount,currency,createdAt\r\n",
        'no match: the header alone';
    $res = get("/api/v1/audit?objectType=request&objectId=$req[1]", Accept => 'text/csv');
    is $res->{headers}{'content-disposition'}, 'attachment; filename="audit.csv"', 'audit';
    $rows = csv_rows($res->{body});
    is_deeply $rows->[0], [qw(id at actorId action objectType objectId idempotencyKey
        correlationId data hash prevHash credential)], 'header';
    is_deeply [ map { $_->[3] } @$rows[1 .. $#$rows] ],
        [qw(request.approved request.submitted request.created)], 'its events, newest first';
};

subtest 'audit filters: objectType with objectId names one object' => sub {
    my $all = ok_data('all', get("/api/v1/audit?objectId=$bid&limit=200"), 200);
    my %types = map { $_->{objectType} => 1 } @$all;
    my $only = ok_data('batch', get("/api/v1/audit?objectId=$bid&objectType=batch"), 200);
    is_deeply [ sort keys %{ { map { $_->{objectType} => 1 } @$only } } ], ['batch'],
        'only the batch';
    is_deeply [ map { $_->{action} } @$only ], [qw(batch.submitted batch.created)],
        'its events';
    my $by = ok_data('actor', get("/api/v1/audit?actorId=$id{approver}"), 200);
    is_deeply [ map { $_->{action} } @$by ], ['request.approved'], 'actorId';
    my $act = ok_data('action', get('/api/v1/audit?action=request.created'), 200);
    is scalar @$act, 4, 'action';
    is_deeply [ sort { $a <=> $b } map { $_->{objectId} } @$act ], [ sort { $a <=> $b } @req ],
        'the four requests';
    my $everything = ok_data('all', get('/api/v1/audit?limit=200'), 200);
    my $both = ok_data('both', get("/api/v1/audit?action=user.created&actorId=$id{admin}"),
        200);
    is_deeply $both, [ grep { $_->{action} eq 'user.created' && ($_->{actorId} // '') eq
        $id{admin} } @$everything ], 'filters combine';
    cmp_ok scalar @$both, '>=', 4, 'the users the admin made';
    is_deeply ok_data('foreign', get("/api/v1/audit?actorId=$other->{userId}"), 200), [],
        'another organisation\'s actor: empty';
    is_deeply ok_data('junk', get('/api/v1/audit?actorId=abc'), 200), [], 'no id: empty';
    for my $bad ('objectType=Batch', 'objectType=', 'action=request.eaten', 'action=',
        'objectType=batch&objectType=request') {
        my $res = get("/api/v1/audit?$bad");
        is_error $res, 400, 'VALIDATION_ERROR', $bad;
        my ($name) = $bad =~ /^(\w+)/;
        ok exists $res->{json}{error}{details}{$name}, "names $name";
    }
};

done_testing;
