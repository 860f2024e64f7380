use strict;
use warnings;
use utf8;

use File::Temp qw(tempdir);
use POSIX ();
use Storable qw(nstore retrieve);
use Test::More;
use Remit::Test;
use Remit::Fixture qw(ok_req ready_request);

binmode Test::More->builder->$_, ":encoding(UTF-8)" for qw(output failure_output todo_output);

# Payment files (API §9 up to the bank's answer): debtor accounts, making a file with every
# check in its order, the pain.001 against the EPC schema with awkward names, the CSV with
# its formula guard, confirm, void, mark-paid of a filed request, the ledger, and sixteen
# creations at once that share requests.
my $s = Remit::Test->stack;
# The EPC's schema, copied from shared/iso20022 (CI has no shared/ beside the clone).
my $XSD = 't/data/pain.001.001.09.xsd';

my @IBANS = qw(DE89370400440532013000 FR1420041010050500013M02606 NL91ABNA0417164300
    ES9121000418450200051332 BE68539007547034 AT611904300234573201 GB82WEST12345698765432);

# An organisation with one user per job (tokens, and their ids as NAME_id); maker may both
# make a request and file it.
sub team {
    return Remit::Fixture::team($s, creator => ['CREATOR'], approver => ['APPROVER'],
        treasurer => ['TREASURER'], treasurer2 => ['TREASURER'], maker => ['CREATOR', 'TREASURER'],
        viewer => ['VIEWER']);
}

sub put_accounts {
    my ($t, @acc) = @_;
    return $s->req(PUT => '/api/v1/debtor-accounts', token => $t->{admin},
        json => { accounts => \@acc });
}

# An APPROVED request that the maker (CREATOR and TREASURER) made.
sub made_by_maker {
    my ($t) = @_;
    return ready_request($s, $t->{maker}, [ $t->{approver} ], amount => '1', currency => 'EUR',
        beneficiaryName => 'M', beneficiaryAccount => $IBANS[1]);
}

# Approved requests (each [amount, currency, name, account, purpose]), made by $by (creator).
sub approved {
    my ($t, @reqs) = @_;
    my $by = $t->{creator};
    my $bid = ok_req($s, 201, POST => '/api/v1/batches', token => $by, idem => 1,
        json => { name => 'B' })->{id};
    my @ids = map {
        ok_req($s, 201, POST => "/api/v1/batches/$bid/requests", token => $by, idem => 1,
            json => { amount => $_->[0], currency => $_->[1] // 'EUR',
                beneficiaryName => $_->[2] // 'Ann', beneficiaryAccount => $_->[3] // $IBANS[0],
                purpose => $_->[4] // 'invoice 1' })->{id}
    } @reqs;
    ok_req($s, 200, POST => "/api/v1/batches/$bid/submit", token => $by, idem => 1);
    ok_req($s, 200, POST => "/api/v1/requests/$_/approve", token => $t->{approver}, idem => 1)
        for @ids;
    return @ids;
}

sub create {
    my ($tok, %body) = @_;
    return $s->req(POST => '/api/v1/payment-files', token => $tok, idem => 1, json => \%body);
}

sub db_count {
    my ($sql, @bind) = @_;
    return scalar $s->dbh->selectrow_array($sql, undef, @bind);
}

sub request { $s->req(GET => "/api/v1/requests/$_[0]", token => $_[1])->{json}{data} }

sub today { POSIX::strftime('%Y-%m-%d', gmtime($_[0] // time)) }

my $t = team();
my $other = team();

subtest 'debtor accounts: the whole set, ADMIN only, checked field by field' => sub {
    is_deeply ok_req($s, 200, GET => '/api/v1/debtor-accounts', token => $t->{viewer}),
        { accounts => [] }, 'none at first';
    is_error $s->req(PUT => '/api/v1/debtor-accounts', token => $t->{treasurer},
        json => { accounts => [] }), 403, 'FORBIDDEN';
    my $r = put_accounts($t, { currency => 'EUR', name => 'A', iban => $IBANS[0] },
        { currency => 'EUR', name => 'B', iban => $IBANS[1] });
    is_error $r, 400, 'VALIDATION_ERROR', 'a second account for one currency';
    ok exists $r->{json}{error}{details}{'accounts[1].currency'}, 'named accounts[1].currency';
    for my $bad ([iban => 'DE89370400440532013001'], [iban => '12345'], [bic => 'COBADEFF1'],
        [bic => 'COBA1EFF'], [name => 'x' x 71], [name => ''], [currency => 'XXX'], [extra => 1]) {
        my %acc = (currency => 'EUR', name => 'Acme', iban => $IBANS[0], @$bad);
        my $r = put_accounts($t, \%acc);
        is_error $r, 400, 'VALIDATION_ERROR', "bad $bad->[0]";
        ok exists $r->{json}{error}{details}{"accounts[0].$bad->[0]"}, "named accounts[0].$bad->[0]";
    }
    is db_count('SELECT COUNT(*) FROM debtor_accounts WHERE org_id = ?', $t->{org}), 0,
        'nothing stored';
    $r = put_accounts($t, { currency => 'EUR', name => 'Acme Gmbh & Co', iban => 'de89 3704 0044 0532 0130 00',
        bic => 'cobadeffxxx' }, { currency => 'USD', name => 'Acme Inc', iban => $IBANS[6], bic => undef });
    is $r->{status}, 200, 'stored';
    is_deeply $r->{json}{data}{accounts}, [
        { currency => 'EUR', name => 'Acme Gmbh & Co', iban => $IBANS[0], bic => 'COBADEFFXXX' },
        { currency => 'USD', name => 'Acme Inc', iban => $IBANS[6], bic => undef } ],
        'IBAN and BIC normalised';
    is db_count(q{SELECT COUNT(*) FROM audit_events WHERE org_id = ? AND action = 'debtor_accounts.replaced'},
        $t->{org}), 1, 'audited';
    put_accounts($other, { currency => 'EUR', name => 'Other', iban => $IBANS[2] });
};

subtest 'bad bodies: 400 naming the field, nothing made' => sub {
    my ($id) = approved($t, ['1.00']);
    my $files = db_count('SELECT COUNT(*) FROM payment_files');
    my @cases = (
        [{}, 'requestIds'], [{ requestIds => [] }, 'requestIds'],
        [{ requestIds => [map {"$_"} 1 .. 2001] }, 'requestIds'],
        [{ requestIds => [$id, $id] }, 'requestIds'], [{ requestIds => $id }, 'requestIds'],
        [{ requestIds => [0 + $id] }, 'requestIds'],
        [{ requestIds => [$id], executionDate => '2020-01-01' }, 'executionDate'],
        [{ requestIds => [$id], executionDate => today(time + 367 * 86400) }, 'executionDate'],
        [{ requestIds => [$id], executionDate => '2026-02-30' }, 'executionDate'],
        [{ requestIds => [$id], executionDate => 'tomorrow' }, 'executionDate'],
        [{ requestIds => [$id], other => 1 }, 'other'],
    );
    for my $c (@cases) {
        my $r = create($t->{treasurer}, %{ $c->[0] });
        is_error $r, 400, 'VALIDATION_ERROR', "400 for $c->[1]";
        ok exists $r->{json}{error}{details}{ $c->[1] }, "names $c->[1]" or diag $r->{body};
    }
    is db_count('SELECT COUNT(*) FROM payment_files'), $files, 'no file made';
    is_error create($t->{creator}, requestIds => [$id]), 403, 'FORBIDDEN', 'CREATOR may not';
};

subtest 'the checks in their order: 404, NOT_APPROVED, IN_PAYMENT_FILE, MIXED_CURRENCIES, NO_DEBTOR_ACCOUNT, SELF_PAYMENT' => sub {
    my ($a, $b) = approved($t, ['1.00'], ['2.00']);
    my ($foreign) = approved($other, ['3.00']);
    my $r = create($t->{treasurer}, requestIds => [$a, $foreign, '999999999', 'nope']);
    is_error $r, 404, 'NOT_FOUND', 'unknown and foreign ids';
    is_deeply $r->{json}{error}{details}{requestIds}, [$foreign, '999999999', 'nope'],
        'details.requestIds lists them in order';

    my $bid = ok_req($s, 201, POST => '/api/v1/batches', token => $t->{creator}, idem => 1,
        json => { name => 'P' })->{id};
    my $pending = ok_req($s, 201, POST => "/api/v1/batches/$bid/requests", token => $t->{creator},
        idem => 1, json => { amount => '1', currency => 'EUR', beneficiaryName => 'P',
            beneficiaryAccount => $IBANS[0] })->{id};
    $r = create($t->{treasurer}, requestIds => [$a, $pending]);
    is_error $r, 409, 'INVALID_STATE', 'a DRAFT request';
    is $r->{json}{error}{details}{reason}, 'NOT_APPROVED', 'NOT_APPROVED';
    is_deeply $r->{json}{error}{details}{requestIds}, [$pending], 'naming it';

    my $f = create($t->{treasurer}, requestIds => [$a]);
    is $f->{status}, 201, 'a file with a';
    $r = create($t->{treasurer2}, requestIds => [$b, $a]);
    is_error $r, 409, 'INVALID_STATE', 'a again';
    is $r->{json}{error}{details}{reason}, 'IN_PAYMENT_FILE', 'IN_PAYMENT_FILE';
    is_deeply $r->{json}{error}{details}{requestIds}, [$a], 'naming it';
    $r = create($t->{treasurer2}, requestIds => [$a, $pending]);
    is $r->{json}{error}{details}{reason}, 'NOT_APPROVED', 'NOT_APPROVED comes first';

    my ($usd) = approved($t, ['5.00', 'USD', 'Bob', '12345678']);
    $r = create($t->{treasurer}, requestIds => [$b, $usd]);
    is_error $r, 409, 'INVALID_STATE', 'EUR and USD';
    is $r->{json}{error}{details}{reason}, 'MIXED_CURRENCIES', 'MIXED_CURRENCIES';

    my ($gbp) = approved($t, ['5.00', 'GBP']);
    $r = create($t->{treasurer}, requestIds => [$gbp]);
    is_error $r, 409, 'INVALID_STATE', 'GBP';
    is $r->{json}{error}{details}{reason}, 'NO_DEBTOR_ACCOUNT', 'NO_DEBTOR_ACCOUNT';

    # maker: the user with CREATOR and TREASURER creates a request and tries to file it.
    my $mine = made_by_maker($t)->{id};
    $r = create($t->{maker}, requestIds => [$b, $mine]);
    is_error $r, 403, 'SELF_PAYMENT_FORBIDDEN', 'a maker of one of them';
    is_deeply $r->{json}{error}{details}{requestIds}, [$mine], 'naming it';
    is db_count('SELECT COUNT(*) FROM payment_file_items WHERE request_id IN (?, ?, ?, ?)',
        $b, $usd, $gbp, $mine), 0, 'none of them filed';
};

# Names the SEPA character set has to fold, and what the bank will see.
my @AWKWARD = (
    ['Würth & Söhne <GmbH> 😀', 'Wurth + Sohne GmbH'],
    ['Straße Æon Œuvre Øre Łódź Đakovo', 'Strasse AEon OEuvre Ore Lodz Dakovo'],
    ['François  "Le" Büro', 'Francois Le Buro'],
    ['😀😀', 'NOTPROVIDED'],
    ['N' x 75 . 'é' x 65, 'N' x 70],
    ["O'Brien (UK) / 1-2?:.,+", "O'Brien (UK) / 1-2?:.,+"],
);

my ($file, @ids);
subtest 'a file: 201 CREATED, items in order, nameInFile, the requests marked' => sub {
    @ids = approved($t, map { [sprintf('%d.%02d', 10 + $_, $_), 'EUR', $AWKWARD[$_][0],
        $IBANS[$_ % 6], $_ == 0 ? '' : "Rechnung Nr. $_ – Ärger & <Spaß>"] } 0 .. $#AWKWARD);
    my @before = map { request($_, $t->{viewer})->{version} } @ids;
    my @order = reverse @ids;
    my $r = create($t->{treasurer}, requestIds => \@order, executionDate => today(time + 86400));
    is $r->{status}, 201, "created" or diag $r->{body};
    $file = $r->{json}{data};
    is $r->{headers}{etag}, qq{"$file->{version}"}, 'ETag';
    is $file->{status}, 'CREATED', 'CREATED';
    is $file->{count}, scalar @ids, 'count';
    my $total = 0;
    $total += 100 * (10 + $_) + $_ for 0 .. $#AWKWARD;
    is $file->{total}, sprintf('%d.%02d', $total / 100, $total % 100), 'total';
    is $file->{executionDate}, today(time + 86400), 'executionDate';
    like $file->{messageId}, qr/^[A-Za-z0-9-]{1,35}$/, 'messageId';
    is_deeply $file->{debtor}, { name => 'Acme Gmbh & Co', iban => $IBANS[0], bic => 'COBADEFFXXX' },
        'a copy of the debtor account';
    is_deeply [map { $_->{requestId} } @{ $file->{items} }], \@order, 'items in the order given';
    my %e2e;
    for my $i (0 .. $#order) {
        my $it = $file->{items}[$i];
        my $k = $#AWKWARD - $i;
        is $it->{nameInFile}, $AWKWARD[$k][1], "nameInFile of '$AWKWARD[$k][0]'";
        is $it->{beneficiaryName}, $AWKWARD[$k][0], 'beneficiaryName as typed';
        is $it->{status}, 'INCLUDED', 'INCLUDED';
        like $it->{endToEndId}, qr/^[A-Za-z0-9-]{1,35}$/, 'endToEndId';
        $e2e{ $it->{endToEndId} }++;
    }
    is scalar keys %e2e, scalar @ids, 'end-to-end ids distinct';
    for my $i (0 .. $#ids) {
        my $q = request($ids[$i], $t->{viewer});
        is $q->{paymentFileId}, $file->{id}, 'paymentFileId';
        is $q->{version}, $before[$i] + 1, 'version bumped';
        is $q->{status}, 'APPROVED', 'still APPROVED';
    }
    is_deeply ok_req($s, 200, GET => "/api/v1/payment-files/$file->{id}", token => $t->{viewer}),
        $file, 'GET answers the same';
    my $list = $s->req(GET => '/api/v1/payment-files?status=CREATED', token => $t->{viewer});
    ok((grep { $_->{id} eq $file->{id} } @{ $list->{json}{data} }), 'listed as CREATED');
    is_error $s->req(GET => "/api/v1/payment-files/$file->{id}", token => $other->{viewer}),
        404, 'NOT_FOUND', 'another organisation sees nothing';
    is_error $s->req(GET => '/api/v1/payment-files?status=PAID', token => $t->{viewer}),
        400, 'VALIDATION_ERROR', 'bad status filter';
    is db_count(q{SELECT COUNT(*) FROM audit_events WHERE object_id = ? AND action = 'payment_file.created'},
        $file->{id}), 1, 'audited';
};

# The pain.001's transactions: {e2e => [iban, amount, name, ustrd]}.
sub pain_items {
    my ($xml) = @_;
    my %tx;
    while ($xml =~ m{<CdtTrfTxInf>(.*?)</CdtTrfTxInf>}sg) {
        my $t = $1;
        my ($e2e) = $t =~ m{<EndToEndId>([^<]*)<};
        my ($amt) = $t =~ m{<InstdAmt Ccy="EUR">([^<]*)<};
        my ($nm) = $t =~ m{<Cdtr>\s*<Nm>([^<]*)<};
        my ($iban) = $t =~ m{<CdtrAcct>\s*<Id>\s*<IBAN>([^<]*)<};
        my ($ustrd) = $t =~ m{<Ustrd>([^<]*)<};
        $tx{$e2e} = [$iban, $amt, $nm, $ustrd];
    }
    return \%tx;
}

subtest 'pain.001: valid against the EPC schema, byte-identical, the items as filed' => sub {
    my $path = "/api/v1/payment-files/$file->{id}/pain.001";
    my $r = $s->req(GET => $path, token => $t->{viewer});
    is $r->{status}, 200, "200 OK";
    like $r->{headers}{'content-type'}, qr{^application/xml; charset=utf-8$}i, 'XML';
    is $r->{headers}{'content-disposition'}, qq{attachment; filename="$file->{messageId}.xml"},
        'attachment <messageId>.xml';
    my $dir = tempdir(CLEANUP => 1);
    open my $fh, '>:raw', "$dir/f.xml" or die $!;
    print $fh $r->{body};
    close $fh;
    my $out = `xmllint --noout --schema $XSD $dir/f.xml 2>&1`;
    is $?, 0, 'xmllint --schema: valid' or diag $out;
    unlike $r->{body}, qr/[^\x09\x0a\x0d\x20-\x7e]/, 'nothing outside ASCII';
    my $tx = pain_items($r->{body});
    for my $it (@{ $file->{items} }) {
        my $got = $tx->{ $it->{endToEndId} };
        is_deeply [@$got[0 .. 2]], [$it->{beneficiaryAccount}, $it->{amount}, $it->{nameInFile}],
            "transaction $it->{endToEndId}: IBAN, amount, name";
    }
    like $r->{body}, qr{<MsgId>\Q$file->{messageId}\E</MsgId>}, 'MsgId';
    like $r->{body}, qr{<PmtInfId>\Q$file->{messageId}\E</PmtInfId>}, 'PmtInfId';
    like $r->{body}, qr{<CtrlSum>\Q$file->{total}\E</CtrlSum>}, 'CtrlSum';
    like $r->{body}, qr{<BICFI>COBADEFFXXX</BICFI>}, 'BICFI';
    like $r->{body}, qr{<Ustrd>Rechnung Nr\. 1 Arger \+ Spass</Ustrd>}, 'Ustrd folded';
    my $first = $file->{items}[-1];   # the request with the empty purpose
    ok !defined $tx->{ $first->{endToEndId} }[3], 'an empty purpose: no Ustrd';
    my $again = $s->req(GET => $path, token => $t->{treasurer});
    is $again->{body}, $r->{body}, 'byte-identical on the next download';
    put_accounts($t, { currency => 'EUR', name => 'Renamed', iban => $IBANS[1] },
        { currency => 'USD', name => 'Acme Inc', iban => $IBANS[6] });
    is $s->req(GET => $path, token => $t->{viewer})->{body}, $r->{body},
        'and after the debtor account changed';
    is_error $s->req(GET => "$path?x=1", token => $t->{viewer}), 400, 'VALIDATION_ERROR',
        'unknown query parameter';
    is_error $s->req(GET => '/api/v1/payment-files/999999/pain.001', token => $t->{viewer}),
        404, 'NOT_FOUND', 'unknown file';
};

subtest 'CSV: RFC 4180, the formula guard, byte-identical' => sub {
    my @evil = approved($t, ['1.00', 'USD', '=HYPERLINK("x")', '12345', '+1'],
        ['2.00', 'USD', '@SUM(A1)', '-12', "a,b"], ['3.00', 'USD', "-1 Minus", 'x', 'say "hi"']);
    my $r = create($t->{treasurer}, requestIds => \@evil);
    is $r->{status}, 201, 'a USD file' or diag $r->{body};
    my $f = $r->{json}{data};
    my $path = "/api/v1/payment-files/$f->{id}/csv";
    my $csv = $s->req(GET => $path, token => $t->{viewer});
    is $csv->{status}, 200, "200 OK";
    like $csv->{headers}{'content-type'}, qr{^text/csv; charset=utf-8$}i, 'text/csv';
    is $csv->{headers}{'content-disposition'}, qq{attachment; filename="$f->{messageId}.csv"},
        'attachment <messageId>.csv';
    my @lines = split /\r\n/, $csv->{body}, -1;
    is $lines[0], 'endToEndId,requestId,batchId,beneficiaryName,beneficiaryAccount,amount,currency,purpose,executionDate',
        'the header';
    is $lines[-1], '', 'every row ends with CRLF';
    my $bid = request($evil[0], $t->{viewer})->{batchId};
    my $d = $f->{executionDate};
    my $e = $f->{items};
    is $lines[1], qq{$e->[0]{endToEndId},$evil[0],$bid,"'=HYPERLINK(""x"")",12345,1.00,USD,'+1,$d}, 'row 1';
    is $lines[2], qq{$e->[1]{endToEndId},$evil[1],$bid,'\@SUM(A1),'-12,2.00,USD,"a,b",$d}, 'row 2';
    is $lines[3], qq{$e->[2]{endToEndId},$evil[2],$bid,'-1 Minus,x,3.00,USD,"say ""hi""",$d}, 'row 3';
    is $s->req(GET => $path, token => $t->{viewer})->{body}, $csv->{body}, 'byte-identical';
    my $p = $s->req(GET => "/api/v1/payment-files/$f->{id}/pain.001", token => $t->{viewer});
    is_error $p, 409, 'INVALID_STATE', 'no pain.001 for USD';
    is $p->{json}{error}{details}{reason}, 'NOT_SEPA', 'NOT_SEPA';
    my $eur_csv = $s->req(GET => "/api/v1/payment-files/$file->{id}/csv", token => $t->{viewer});
    is scalar(split /\r\n/, $eur_csv->{body}), 1 + @ids, 'the EUR file has its CSV too';
};

subtest 'a filed request: mark-paid 409 with the file, not in the treasurer\'s queue' => sub {
    my $r = $s->req(POST => "/api/v1/requests/$ids[0]/mark-paid", token => $t->{treasurer2},
        idem => 1, json => {});
    is_error $r, 409, 'INVALID_STATE', 'mark-paid refused';
    is $r->{json}{error}{details}{reason}, 'IN_PAYMENT_FILE', 'IN_PAYMENT_FILE';
    is $r->{json}{error}{details}{paymentFileId}, $file->{id}, 'paymentFileId';
    my $q = $s->req(GET => '/api/v1/requests?actionableBy=me&limit=200', token => $t->{treasurer2});
    my %listed = map { $_->{id} => 1 } @{ $q->{json}{data} };
    ok !(grep { $listed{$_} } @ids), 'no filed request in the queue';
    my ($free) = approved($t, ['9.00']);
    $q = $s->req(GET => '/api/v1/requests?actionableBy=me&limit=200', token => $t->{treasurer2});
    ok((grep { $_->{id} eq $free } @{ $q->{json}{data} }), 'an unfiled one is');
    my $e = eval { $s->dbh->do(q{UPDATE payment_requests SET status = 'PAID', paid_at = NOW(3),
        paid_by = ? WHERE id = ?}, undef, $t->{treasurer2_id}, $ids[0]); 1 } ? '' : $s->dbh->errstr;
    like $e, qr/live payment file/, 'the database refuses to pay a filed request by hand';
    $e = eval { $s->dbh->do(q{INSERT INTO payment_file_items (org_id, file_id, position, request_id,
        live_request_id, batch_id, end_to_end_id, amount, currency, beneficiary_name, name_in_file,
        beneficiary_account, purpose) SELECT org_id, file_id, 99, request_id, request_id, batch_id,
        'X-1', amount, currency, beneficiary_name, name_in_file, beneficiary_account, purpose
        FROM payment_file_items WHERE request_id = ?}, undef, $ids[0]); 1 } ? '' : $s->dbh->errstr;
    like $e, qr/Duplicate entry/, 'and a second live item for it';
};

sub balances {
    my ($tok) = @_;
    return { map { $_->{currency} => $_ } @{ ok_req($s, 200, GET => '/api/v1/ledger/balances', token => $tok) } };
}

subtest 'confirm: every item and request PAID, one SETTLEMENT each, in one go' => sub {
    my $path = "/api/v1/payment-files/$file->{id}/confirm";
    is_error $s->req(POST => $path, token => $t->{treasurer}, idem => 1, json => {},
        headers => { 'If-Match' => '"99"' }), 412, 'VERSION_CONFLICT', 'stale If-Match';
    is_error $s->req(POST => $path, token => $t->{treasurer}, idem => 1, json => { x => 1 }),
        400, 'VALIDATION_ERROR', 'unknown field';
    my $before = balances($t->{viewer})->{EUR};
    my $r = $s->req(POST => $path, token => $t->{treasurer2}, idem => 1, json => {});
    is $r->{status}, 200, "200 OK" or diag $r->{body};
    my $f = $r->{json}{data};
    is $f->{status}, 'SETTLED', 'SETTLED';
    ok $f->{settledAt}, 'settledAt';
    is_deeply [map { $_->{status} } @{ $f->{items} }], [('PAID') x @ids], 'items PAID';
    for my $it (@{ $f->{items} }) {
        my $q = request($it->{requestId}, $t->{viewer});
        is $q->{status}, 'PAID', 'request PAID';
        is $q->{paidBy}, $t->{treasurer2_id}, 'paidBy the caller';
        is $q->{paymentReference}, $it->{endToEndId}, 'paymentReference its endToEndId';
        is $q->{paymentFileId}, $f->{id}, 'still its file';
    }
    is db_count(q{SELECT COUNT(*) FROM ledger_entries WHERE type = 'SETTLEMENT' AND request_id IN (}
        . join(',', ('?') x @ids) . ')', @ids), scalar @ids, 'one SETTLEMENT each';
    my $after = balances($t->{viewer})->{EUR};
    is $after->{settled} - $before->{settled}, $file->{total}, 'settled grew by the total';
    cmp_ok $after->{obligated} - $after->{settled}, '==', $after->{outstanding}, 'obligated - settled = outstanding';
    is db_count(q{SELECT COUNT(*) FROM audit_events WHERE action = 'request.paid' AND object_id IN (}
        . join(',', ('?') x @ids) . ')', @ids), scalar @ids, 'request.paid per request';
    is_error $s->req(POST => $path, token => $t->{treasurer}, idem => 1, json => {}), 409,
        'INVALID_STATE', 'confirm again';
    my $v = $s->req(POST => "/api/v1/payment-files/$file->{id}/void", token => $t->{treasurer},
        idem => 1, json => { reason => 'x' });
    is_error $v, 409, 'INVALID_STATE', 'void a SETTLED file';
    is $v->{json}{error}{details}{status}, 'SETTLED', 'details.status';
};

subtest 'confirm by a maker of an item: 403, nothing paid' => sub {
    my $mine = made_by_maker($t)->{id};
    my $f = ok_req($s, 201, POST => '/api/v1/payment-files', token => $t->{treasurer}, idem => 1,
        json => { requestIds => [$mine] });
    my $r = $s->req(POST => "/api/v1/payment-files/$f->{id}/confirm", token => $t->{maker},
        idem => 1, json => {});
    is_error $r, 403, 'SELF_PAYMENT_FORBIDDEN', 'refused';
    is request($mine, $t->{viewer})->{status}, 'APPROVED', 'not paid';
    ok_req($s, 200, POST => "/api/v1/payment-files/$f->{id}/void", token => $t->{treasurer},
        idem => 1, json => { reason => 'cleanup' });
};

subtest 'void: the requests are free again, a new file gives new end-to-end ids' => sub {
    my @v = approved($t, ['4.00'], ['5.00']);
    my $f = ok_req($s, 201, POST => '/api/v1/payment-files', token => $t->{treasurer}, idem => 1,
        json => { requestIds => \@v });
    my $path = "/api/v1/payment-files/$f->{id}/void";
    for my $bad ({}, { reason => '' }, { reason => 'x' x 501 }, { reason => 5 }) {
        is_error $s->req(POST => $path, token => $t->{treasurer}, idem => 1, json => $bad),
            400, 'VALIDATION_ERROR', 'bad reason';
    }
    my $versions = request($v[0], $t->{viewer})->{version};
    my $r = $s->req(POST => $path, token => $t->{treasurer}, idem => 1,
        json => { reason => 'wrong execution date' });
    is $r->{status}, 200, "200 OK" or diag $r->{body};
    is $r->{json}{data}{status}, 'VOIDED', 'VOIDED';
    is $r->{json}{data}{voidReason}, 'wrong execution date', 'voidReason';
    is $r->{json}{data}{voidedBy}, $t->{treasurer_id}, 'voidedBy';
    is_deeply [map { $_->{status} } @{ $r->{json}{data}{items} }], ['VOIDED', 'VOIDED'], 'items VOIDED';
    my $q = request($v[0], $t->{viewer});
    is $q->{paymentFileId}, undef, 'paymentFileId null';
    is $q->{version}, $versions + 1, 'version bumped';
    is $q->{status}, 'APPROVED', 'APPROVED';
    my $v2 = $s->req(POST => $path, token => $t->{treasurer}, idem => 1, json => { reason => 'again' });
    is_error $v2, 409, 'INVALID_STATE', 'void again';
    is $v2->{json}{error}{details}{status}, 'VOIDED', 'details.status';
    is_error $s->req(POST => "/api/v1/payment-files/$f->{id}/confirm", token => $t->{treasurer},
        idem => 1, json => {}), 409, 'INVALID_STATE', 'confirm a VOIDED file';
    is $s->req(GET => "/api/v1/payment-files/$f->{id}/pain.001", token => $t->{viewer})->{status},
        200, 'its pain.001 still downloads';
    my $g = ok_req($s, 201, POST => '/api/v1/payment-files', token => $t->{treasurer2}, idem => 1,
        json => { requestIds => \@v });
    my %old = map { $_->{endToEndId} => 1 } @{ $f->{items} };
    ok !(grep { $old{ $_->{endToEndId} } } @{ $g->{items} }), 'new end-to-end ids';
    isnt $g->{messageId}, $f->{messageId}, 'a new messageId';
    my $pay = $s->req(POST => "/api/v1/requests/$v[0]/mark-paid", token => $t->{treasurer},
        idem => 1, json => {});
    is $pay->{json}{error}{details}{paymentFileId}, $g->{id}, 'mark-paid names the new file';
    is db_count(q{SELECT COUNT(*) FROM audit_events WHERE object_id = ? AND action = 'payment_file.voided'},
        $f->{id}), 1, 'audited';
};

# Sends each body from its own forked client at one instant; the responses in order.
sub together {
    my ($tok, @bodies) = @_;
    pipe my $go_r, my $go_w or die $!;
    my $dir = tempdir(CLEANUP => 1);
    my @pids;
    for my $i (0 .. $#bodies) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $go_w;
            sysread $go_r, my $x, 1;
            my $r = eval { $s->req(POST => '/api/v1/payment-files', token => $tok, idem => 1,
                json => $bodies[$i]) } // { status => 599, headers => {}, body => "$@" };
            nstore($r, "$dir/$i");
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $go_r;
    select undef, undef, undef, 0.3;
    close $go_w;
    waitpid $_, 0 for @pids;
    my @res = map { retrieve("$dir/$_") } 0 .. $#bodies;
    $s->openapi_check(POST => '/api/v1/payment-files', $_) for @res;
    return @res;
}

subtest 'sixteen creations at once that share requests: each request in exactly one file' => sub {
    my @pool = approved($t, map { [sprintf '%d.00', $_] } 1 .. 24);
    my $files = db_count('SELECT COUNT(*) FROM payment_files');
    # Each body takes a window of 6 requests; windows overlap with their neighbours.
    my @bodies = map { { requestIds => [@pool[($_ * 3 % 19) .. ($_ * 3 % 19) + 5]] } } 0 .. 15;
    my @res = together($t->{treasurer}, @bodies);
    my @won = grep { $_->{status} == 201 } @res;
    my @lost = grep { $_->{status} == 409 } @res;
    is @won + @lost, 16, 'each 201 or 409' or diag join "\n", map {"$_->{status} $_->{body}"} @res;
    ok @won >= 1, scalar(@won) . ' won';
    is scalar(grep { ($_->{json}{error}{details}{reason} // '') eq 'IN_PAYMENT_FILE' } @lost),
        scalar @lost, 'the others: IN_PAYMENT_FILE';
    my %in;
    for my $w (@won) { $in{ $_->{requestId} }++ for @{ $w->{json}{data}{items} } }
    ok !(grep { $_ > 1 } values %in), 'no request in two winning files';
    is db_count('SELECT COUNT(*) FROM payment_files') - $files, scalar @won, 'one file per 201';
    is db_count('SELECT COUNT(*) FROM payment_file_items WHERE request_id IN ('
        . join(',', ('?') x @pool) . ') AND live_request_id IS NOT NULL', @pool),
        scalar keys %in, 'the live items are exactly the winners\'';
    is db_count(q{SELECT COUNT(*) FROM payment_files f WHERE NOT EXISTS
        (SELECT 1 FROM payment_file_items i WHERE i.file_id = f.id)}), 0, 'no file without items';
};

subtest 'the audit chain verifies' => sub {
    my $r = $s->remit('verify-audit');
    is $r->{exit}, 0, 'verify-audit: every chain intact' or diag $r->{stderr};
};

done_testing;
