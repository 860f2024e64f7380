use strict;
use warnings;
use utf8;

use Test::More;
use Remit::Test;
use Remit::Fixture;
use Remit::BadInput;

# Hostile input, that must succeed (section 14: valid but unusual input is stored as sent; SQL and header injection strings are stored byte for byte, never run): one concern of the catalogue that t/lib/Remit/BadInput.pm describes
# and runs (every case its documented 4xx, nothing changed, no 5xx, no worker died).

# ---- what must succeed -----------------------------------------------------------------


subtest 'valid but unusual input succeeds and is stored as sent' => sub {
    my $emoji = "\x{1F600}\x{1F468}\x{200D}\x{1F469}\x{200D}\x{1F467}";
    my $name140 = join '', map { ("\x{1F4B8}", "\x{4E2D}", 'a', "\x{E9}")[$_ % 4] } 1 .. 140;
    is length $name140, 140, '140 code points';

    my $r = $s->req(POST => '/api/v1/users', token => $admin, idem => 1,
        json => { email => "emoji$$\@example.test", name => $name140, roles => ['VIEWER'] });
    is $r->{status}, 201, 'user: a 140-code-point name (emoji, CJK, accents): 201' or diag $r->{body};
    is $r->{json}{data}{name}, $name140, 'user: the name as sent';
    is stored('SELECT name FROM users WHERE id = ?', $r->{json}{data}{id}), $name140,
        'user: stored as full UTF-8';

    $r = $s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => 1,
        json => { name => "\x{1F600}" x 140, description => "$emoji " x 100 });
    is $r->{status}, 201, 'batch: 140 emoji as the name: 201' or diag $r->{body};
    my $bid = $r->{json}{data}{id};
    is stored('SELECT name FROM batches WHERE id = ?', $bid), "\x{1F600}" x 140, 'batch: stored';
    is stored('SELECT description FROM batches WHERE id = ?', $bid), "$emoji " x 100,
        'batch: ZWJ sequences in the description, stored';

    my @money = (
        [ '1000.00 as a JSON number'    => \'1000.00', 'USD', '1000.00' ],
        [ '1000 as a JSON number'       => \'1000',    'USD', '1000.00' ],
        [ '"5" USD'                     => '5',        'USD', '5.00' ],
        [ 'JPY without decimals'        => '1000',     'JPY', '1000' ],
        [ 'JPY as a JSON number'        => \'1500',    'JPY', '1500' ],
        [ 'KWD with 3 decimals'         => '1.234',    'KWD', '1.234' ],
        [ 'KWD "5"'                     => '5',        'KWD', '5.000' ],
        [ 'BHD 0.001 as a JSON number'  => \'0.001',   'BHD', '0.001' ],
        [ '15 integer digits'           => '999999999999999.99', 'USD', '999999999999999.99' ],
        [ 'the smallest USD amount'     => '0.01',     'USD', '0.01' ],
        [ 'one decimal'                 => '5.1',      'USD', '5.10' ],
    );
    for my $m (@money) {
        my ($name, $amount, $cur, $want) = @$m;
        my $body = body_with({ base => {%REQ} }, amount => $amount, currency => $cur);
        $r = $s->req(POST => "/api/v1/batches/$bid/requests", token => $creator->{token}, idem => 1,
            raw => $body);
        is $r->{status}, 201, "request: $name: 201" or diag $r->{body};
        is $r->{json}{data}{amount}, $want, "request: $name: amount $want";
    }
    $r = $s->req(POST => "/api/v1/batches/$bid/requests", token => $creator->{token}, idem => 1,
        raw => '{"amount":"10.00","currency":"US\u0044","beneficiaryName":"\ud83d\ude00 Ann \/ \"Q\"",'
            . '"beneficiaryAccount":"gb82 west 1234 5698 7654 32","purpose":"\u00e9t\u00e9 \u2028"}');
    is $r->{status}, 201, 'request: escapes, a surrogate pair, U+2028 (not Cc): 201' or diag $r->{body};
    is $r->{json}{data}{currency}, 'USD', 'request: US\u0044 is USD';
    is $r->{json}{data}{beneficiaryName}, "\x{1F600} Ann / \"Q\"", 'request: decoded name';
    is $r->{json}{data}{beneficiaryAccount}, $IBAN, 'request: the IBAN normalised';
    is $r->{json}{data}{purpose}, "\x{e9}t\x{e9} \x{2028}", 'request: purpose';
    my $rid = $r->{json}{data}{id};
    $r = $s->req(POST => "/api/v1/batches/$bid/requests", token => $creator->{token}, idem => 1,
        json => { %REQ, beneficiaryName => $name140, purpose => 'p' x 140,
            beneficiaryAccount => "\x{4E2D}" x 34 });
    is $r->{status}, 201, 'request: 140-code-point name, 140 purpose, 34-character account: 201'
        or diag $r->{body};

    my $v = version_of(requests => $rid);
    $r = $s->req(PATCH => "/api/v1/requests/$rid", token => $creator->{token},
        json => { purpose => undef, amount => undef });
    is $r->{status}, 200, 'PATCH of nulls only: 200';
    is $r->{json}{data}{version}, $v, 'PATCH of nulls only: no new version';
    $r = $s->req(PATCH => "/api/v1/requests/$rid", token => $creator->{token}, raw => '{}');
    is $r->{status}, 200, 'PATCH {}: 200';
    is $r->{json}{data}{version}, $v, 'PATCH {}: no new version';

    $r = $s->req(POST => "/api/v1/users/$viewer->{id}/tokens", token => $admin,
        json => { name => undef }, headers => { 'Idempotency-Key' => 'a b' });
    is $r->{status}, 201, 'token: name null, an invalid Idempotency-Key (ignored): 201';
    $r = $s->req(PUT => '/api/v1/approval-rules', token => $admin,
        raw => '{"rules":[{"currency":"GBP","minAmount":0,"approvals":2},'
            . '{"currency":"KWD","minAmount":"0.5","approvals":10}]}');
    is $r->{status}, 200, 'rules: minAmount 0 as a number, approvals 10: 200' or diag $r->{body};
    is_deeply [ map { $_->{minAmount} } @{ $r->{json}{data}{rules} } ], [ '0.00', '0.500' ],
        'rules: minAmount normalised';

    my $pb = batch($s, $creator, name => 'Fixture')->{id};
    my @p = map { request($s, $creator, $pb, %REQ)->{id} } 1 .. 2;
    submit($s, $creator, $pb);
    $r = $s->req(POST => "/api/v1/requests/$p[0]/approve", token => $approver->{token}, idem => 1,
        json => { comment => "\x{1F44D}" x 500 });
    is $r->{status}, 200, 'approve: a 500-emoji comment: 200' or diag $r->{body};
    $r = $s->req(POST => "/api/v1/requests/$p[0]/mark-paid", token => $treasurer->{token}, idem => 1,
        json => { paymentReference => "\x{20AC}" x 35 });
    is $r->{status}, 200, 'mark-paid: a 35-character reference: 200' or diag $r->{body};
    $r = $s->req(POST => "/api/v1/requests/$p[1]/reject", token => $approver->{token}, idem => 1,
        json => { comment => 'c' x 500 });
    is $r->{status}, 200, 'reject: a 500-character comment: 200' or diag $r->{body};
};

# ---- injection strings are stored byte for byte ----------------------------------------

subtest 'SQL and header injection strings are stored verbatim, never run' => sub {
    my @tables = map { $_->[0] } @{ $s->dbh->selectall_arrayref('SHOW TABLES') };
    my $before = snapshot();
    my $n = @INJECT;
    my $ib = batch($s, $creator, name => 'Fixture')->{id};
    my @ids = map { request($s, $creator, $ib, %REQ)->{id} } 1 .. 3 * $n;
    submit($s, $creator, $ib);
    my @pending = splice @ids, 0, 2 * $n;
    act($approver2, $_, 'approve') for @ids;    # approved, for mark-paid
    my $stored = 0;
    # One request's value: 2xx, echoed as sent (when the response holds it), stored as sent.
    my $check = sub {
        my ($what, $res, $field, $sql, $id, $want) = @_;
        my @why;
        push @why, "status $res->{status}: $res->{body}" unless $res->{status} =~ /^20[01]$/;
        my $echo = defined $field && ref $res->{json} eq 'HASH' ? $res->{json}{data}{$field} : $want;
        push @why, 'the response holds ' . label($echo // 'undef') if ($echo // "\0") ne $want;
        my $got = defined $id ? stored($sql, $id) : undef;
        push @why, 'stored ' . label($got // 'undef') if ($got // "\0") ne $want;
        $stored++ unless @why;
        ok !@why, label("$what = $want: stored verbatim") or diag join "\n", @why;
    };
    for my $i (0 .. $#INJECT) {
        my $v = $INJECT[$i];
        my $short = substr $v, 0, 34;
        my $r = $s->req(POST => '/api/v1/users', token => $admin, idem => 1,
            json => { email => "inj$i-$$\@example.test", name => $v, roles => ['VIEWER'] });
        $check->('user name', $r, 'name', 'SELECT name FROM users WHERE id = ?', $r->{json}{data}{id}, $v);
        (my $local = $v) =~ s/[\@\s\x{0}-\x{1F}]//g;
        my $email = "x$local$i\@example.test";
        $r = $s->req(POST => '/api/v1/users', token => $admin, idem => 1,
            json => { email => $email, name => 'I', roles => ['VIEWER'] });
        $check->('user email', $r, 'email', 'SELECT email FROM users WHERE id = ?', $r->{json}{data}{id}, $email);
        $r = $s->req(POST => "/api/v1/users/$viewer->{id}/tokens", token => $admin, json => { name => $v });
        $check->('token name', $r, 'name', 'SELECT name FROM tokens WHERE id = ?', $r->{json}{data}{id}, $v);
        $r = $s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => 1,
            json => { name => $v, description => $v });
        my $bid = $r->{json}{data}{id};
        $check->('batch name', $r, 'name', 'SELECT name FROM batches WHERE id = ?', $bid, $v);
        $check->('batch description', $r, 'description', 'SELECT description FROM batches WHERE id = ?', $bid, $v);
        $r = $s->req(POST => "/api/v1/batches/$bid/requests", token => $creator->{token},
            idem => 1, json => { %REQ, beneficiaryName => $v, purpose => $v, beneficiaryAccount => $short });
        my $rid = $r->{json}{data}{id};
        $check->('beneficiaryName', $r, 'beneficiaryName',
            'SELECT beneficiary_name FROM payment_requests WHERE id = ?', $rid, $v);
        $check->('purpose', $r, 'purpose', 'SELECT purpose FROM payment_requests WHERE id = ?', $rid, $v);
        $check->('beneficiaryAccount', $r, 'beneficiaryAccount',
            'SELECT beneficiary_account FROM payment_requests WHERE id = ?', $rid, $short);
        $r = $s->req(PATCH => "/api/v1/requests/$rid", token => $creator->{token},
            json => { beneficiaryName => "$v!", purpose => "!$v" });
        $check->('PATCH beneficiaryName', $r, 'beneficiaryName',
            'SELECT beneficiary_name FROM payment_requests WHERE id = ?', $rid, "$v!");
        $check->('PATCH purpose', $r, 'purpose', 'SELECT purpose FROM payment_requests WHERE id = ?', $rid, "!$v");
        $r = $s->req(POST => "/api/v1/requests/$pending[$i]/approve", token => $approver->{token},
            idem => 1, json => { comment => $v });
        $check->('approve comment', $r, undef, 'SELECT comment FROM decisions WHERE request_id = ?',
            $pending[$i], $v);
        $r = $s->req(POST => "/api/v1/requests/$pending[$n + $i]/reject", token => $approver->{token},
            idem => 1, json => { comment => $v });
        $check->('reject comment', $r, undef, 'SELECT comment FROM decisions WHERE request_id = ?',
            $pending[$n + $i], $v);
        $r = $s->req(POST => "/api/v1/requests/$ids[$i]/mark-paid", token => $treasurer->{token},
            idem => 1, json => { paymentReference => $short });
        $check->('paymentReference', $r, 'paymentReference',
            'SELECT payment_reference FROM payment_requests WHERE id = ?', $ids[$i], $short);
    }
    my @after_tables = map { $_->[0] } @{ $s->dbh->selectall_arrayref('SHOW TABLES') };
    is_deeply \@after_tables, \@tables, 'every table is still there';
    my $after = snapshot();
    ok !(grep { $after->{$_} < $before->{$_} } keys %$after), 'no table lost a row';
    diag "injection strings: " . scalar(@INJECT) . " strings, $stored values stored verbatim";
    my $v = $s->remit('verify-audit');
    is $v->{exit}, 0, 'the audit chains still verify' or diag $v->{stdout}, $v->{stderr};
};


done_testing;
