use strict;
use warnings;
use utf8;

use Test::More;
use Remit::Test;
use Remit::Fixture;
use Remit::BadInput;

# Hostile input, the fields (sections 7-9: wrong types, limits and formats, unknown fields, injection strings refused): one concern of the catalogue that t/lib/Remit/BadInput.pm describes
# and runs (every case its documented 4xx, nothing changed, no 5xx, no worker died).

# -- 7. wrong types, missing fields, limits and formats, field by field.
my @ANY_WRONG = (
    [ 'number 0' => \'0' ], [ 'number 1.5' => \'1.5' ], [ 'number -1' => \'-1' ],
    [ 'number 1e400' => \'1e400' ], [ 'true' => $T ], [ 'false' => $F ], [ '[]' => [] ],
    [ '["x"]' => ['x'] ], [ '{}' => {} ], [ '{"a":"b"}' => { a => 'b' } ],
);
my @CONTROL = ("\x{0}", "\x{1}", "\t", "\n", "\r\n", "\x{1B}[31m", "\x{1F}", "\x{7F}",
    "\x{80}", "\x{85}", "\x{9F}");
my @MONEY_BAD = ('', ' ', '-0', '-0.00', '-1', '+1', ' 1', '1 ', '1,000.00', '1_000', '0x10',
    'NaN', 'Infinity', '1e3', '1E3', '.5', '5.', '00.5', '01', '1.001', '1.2.3', '1..2', '$10',
    '10 USD', '1234567890123456', '1234567890123456.00', '9223372036854775807',
    '99999999999999999999', "\x{661}\x{662}", "\x{FF11}", "1\x{0}", '0.000000000000000000001',
    '1.00000000000000000000');
my @MONEY_BAD_NUM = ('-0', '-0.0', '-1', '1e3', '1E3', '1e-2', '1.0e2', '0.1e1', '1.001',
    '1234567890123456', '1e400', '-1e400', '1' . ('0' x 400), '123456789012345.999',
    '0.000000000000000000001', '-10.00');
my @CURRENCY_BAD = ('usd', 'Usd', 'US', 'USDD', '', 'XXX', 'ZZZ', 'ABC', ' USD', 'USD ',
    "\x{FF35}\x{FF33}\x{FF24}", "US\x{0}", '123', 'EUR,USD', 'USD;', "U\x{301}SD");
my @EMAIL_BAD = ('no-at', 'a@@b', '@b', 'a@', 'a@b@c', '@', ('x' x 250) . '@e.test', '');
my @ACCOUNT_BAD = ('', 'x' x 35, "\x{E9}" x 35, 'GB82WEST12345698765433', 'GB82-WEST-1234-5698-7654-32',
    'GB82 WEST 1234 5698 7654 32 0000 0000 0000 00', "GB82WEST1234569876543\x{E9}", "acct\t1",
    'GB00', 'GB82WEST12345698765432' . ('0' x 13));
my @ROLES_BAD = ('VIEWER', \'1', $T, {}, { 0 => 'VIEWER' }, [], [1], [undef], ['viewer'],
    ['VIEWER '], [' VIEWER'], [['VIEWER']], [{ role => 'VIEWER' }], [qw(ADMIN NOPE)],
    ['SUPERUSER'], [''], [$T], ["VIEWER\x{0}"], ['ADMIN,VIEWER'], ["\x{0130}MIN"]);
my @APPROVALS_BAD = ('0', '11', '-1', '2.0', '2e0', '2E0', '1e400', '99999999999999999999',
    '1.5', '"2"', 'true', '[]', '{}', '100', '-0', '1e1', '"two"');

sub text_wrong {
    my ($r, $f, $path, $min, $max) = @_;
    for my $w (@ANY_WRONG) { invalid($r, "$f: $w->[0]", body_with($r, $f => $w->[1]), [$path]) }
    invalid($r, "$f: empty", body_with($r, $f => ''), [$path]) if $min >= 1;
    invalid($r, "$f: " . ($max + 1) . ' ASCII characters', body_with($r, $f => 'x' x ($max + 1)), [$path]);
    invalid($r, "$f: " . ($max + 1) . ' emoji', body_with($r, $f => "\x{1F600}" x ($max + 1)), [$path]);
    invalid($r, "$f: " . ($max + 1) . ' combining marks', body_with($r, $f => "e" . ("\x{301}" x $max)), [$path]);
    invalid($r, "$f: 60,000 characters (within the body limit)", body_with($r, $f => 'y' x 60000), [$path]);
    invalid($r, "$f: 16,000 emoji (64,000 bytes)", body_with($r, $f => "\x{1F600}" x 16000), [$path]);
    case($r, "$f: 100,000 characters (over the body limit)", body => body_with($r, $f => 'z' x 100000),
        expect => [ 413, 'PAYLOAD_TOO_LARGE' ], details => {});
    for my $c (@CONTROL) {
        invalid($r, "$f: control character " . label($c), body_with($r, $f => "a${c}b"), [$path]);
    }
    invalid($r, "$f: escaped \\u0085 (NEL)", body_with($r, $f => \'"a\u0085b"'), [$path]);
    invalid($r, "$f: header injection \\r\\nSet-Cookie", body_with($r, $f => "x\r\nSet-Cookie: a=b"), [$path]);
}

for my $r (@ROUTES) {
    my %req = map { $_ => 1 } @{ $r->{required} };
    for my $fd (@{ $r->{fields} }) {
        my ($f, $type, $min, $max) = @$fd;
        my $path = path_of($r, $f);
        if ($req{$f}) {
            invalid($r, "$f missing", body_with($r, $f => \undef), [$path]);
            invalid($r, "$f null", body_with($r, $f => \'null'), [$path]);
        }
        if ($type eq 'text') {
            text_wrong($r, $f, $path, $min, $max);
        } elsif ($type eq 'email') {
            text_wrong($r, $f, $path, 1, 254);
            invalid($r, "email: '$_'", body_with($r, email => $_), ['email']) for @EMAIL_BAD;
        } elsif ($type eq 'money') {
            for my $w (grep { $_->[0] !~ /^number/ } @ANY_WRONG) {
                invalid($r, "amount: $w->[0]", body_with($r, amount => $w->[1]), ['amount']);
            }
            invalid($r, "amount: string '$_'", body_with($r, amount => $_), ['amount']) for @MONEY_BAD, '0', '0.00';
            invalid($r, "amount: number $_", body_with($r, amount => \$_), ['amount']) for @MONEY_BAD_NUM, '0', '0.00';
            invalid($r, "amount: 1.5 JPY", body_with($r, amount => '1.5', currency => 'JPY'), ['amount']);
            invalid($r, "amount: 1.0 JPY", body_with($r, amount => '1.0', currency => 'JPY'), ['amount']);
            invalid($r, "amount: 1.0001 KWD", body_with($r, amount => '1.0001', currency => 'KWD'), ['amount']);
            invalid($r, "amount: number 10.0001 KWD", body_with($r, amount => \'10.0001', currency => 'KWD'), ['amount']);
        } elsif ($type eq 'currency') {
            for my $w (@ANY_WRONG) {
                invalid($r, "currency: $w->[0]", body_with($r, currency => $w->[1]), ['currency']);
            }
            invalid($r, 'currency: ' . label("'$_'"), body_with($r, currency => $_), ['currency']) for @CURRENCY_BAD;
        } elsif ($type eq 'account') {
            for my $w (@ANY_WRONG) {
                invalid($r, "beneficiaryAccount: $w->[0]", body_with($r, $f => $w->[1]), [$f]);
            }
            invalid($r, 'beneficiaryAccount: ' . label("'$_'"), body_with($r, $f => $_), [$f]) for @ACCOUNT_BAD;
            invalid($r, 'beneficiaryAccount: control character', body_with($r, $f => "12\x{0}34"), [$f]);
        } elsif ($type eq 'roles') {
            for my $v (@ROLES_BAD) {
                invalid($r, 'roles: ' . label(ref $v eq 'SCALAR' ? $$v : JSON::PP->new->allow_nonref->encode($v)),
                    body_with($r, roles => $v), ['roles']);
            }
            invalid($r, 'roles: 6,000 VIEWER then one NOPE',
                body_with($r, roles => [ ('VIEWER') x 6000, 'NOPE' ]), ['roles']);
        } elsif ($type eq 'rules') {
            my $ok = { currency => 'SEK', minAmount => '1', approvals => 1 };
            my @bad = (
                [ 'a string'      => '"x"', ['rules'] ], [ 'a number' => '1', ['rules'] ],
                [ 'true'          => 'true', ['rules'] ], [ 'an object' => '{}', ['rules'] ],
                [ 'an object rule' => $JSON->encode($ok), ['rules'] ],
                [ '[1]'           => '[1]', ['rules[0]'] ], [ '["x"]' => '["x"]', ['rules[0]'] ],
                [ '[null]'        => '[null]', ['rules[0]'] ], [ '[[]]' => '[[]]', ['rules[0]'] ],
                [ '[true]'        => '[true]', ['rules[0]'] ],
                [ '101 rules'     => '[' . join(',', ($JSON->encode($ok)) x 101) . ']', ['rules'] ],
                [ 'rules[1] bad'  => '[' . $JSON->encode($ok) . ',' . $JSON->encode({ %$ok, approvals => 0 }) . ']',
                    ['rules[1].approvals'] ],
                [ 'rules[2] not an object' => '[' . join(',', ($JSON->encode($ok)) x 2) . ',"x"]', ['rules[2]'] ],
            );
            invalid($r, "rules: $_->[0]", body_with($r, rules => \$_->[1]), $_->[2]) for @bad;
            for my $k (qw(currency minAmount approvals)) {
                invalid($r, "rules[0].$k missing", body_with($r, "rules[0].$k" => \undef), ["rules[0].$k"]);
                invalid($r, "rules[0].$k null", body_with($r, "rules[0].$k" => \'null'), ["rules[0].$k"]);
            }
            for my $k (qw(id orgId position currency2 Currency)) {
                invalid($r, "rules[0] with unknown field $k", body_with($r, "rules[0].$k" => 1), ["rules[0].$k"]);
            }
            for my $w (@ANY_WRONG) {
                invalid($r, "rules[0].currency: $w->[0]", body_with($r, 'rules[0].currency' => $w->[1]),
                    ['rules[0].currency']);
                next if $w->[0] =~ /^number/;
                invalid($r, "rules[0].minAmount: $w->[0]", body_with($r, 'rules[0].minAmount' => $w->[1]),
                    ['rules[0].minAmount']);
            }
            invalid($r, 'rules[0].currency: ' . label("'$_'"), body_with($r, 'rules[0].currency' => $_),
                ['rules[0].currency']) for @CURRENCY_BAD;
            invalid($r, "rules[0].minAmount: string '$_'", body_with($r, 'rules[0].minAmount' => $_),
                ['rules[0].minAmount']) for @MONEY_BAD;
            invalid($r, "rules[0].minAmount: number $_", body_with($r, 'rules[0].minAmount' => \$_),
                ['rules[0].minAmount']) for @MONEY_BAD_NUM;
            invalid($r, 'rules[0].minAmount: 1.001 SEK', body_with($r, 'rules[0].minAmount' => '1.001'),
                ['rules[0].minAmount']);
            invalid($r, 'rules[0].minAmount: 1.5 JPY', body_with($r, 'rules[0].minAmount' => '1.5',
                'rules[0].currency' => 'JPY'), ['rules[0].minAmount']);
            invalid($r, "rules[0].approvals: $_", body_with($r, 'rules[0].approvals' => \$_),
                ['rules[0].approvals']) for @APPROVALS_BAD;
            malformed($r, 'rules[0].approvals: 02 (a leading zero is not JSON)',
                body_with($r, 'rules[0].approvals' => \'02'));
        }
    }
    # Every required field missing at once; an empty object; an empty body where one is needed.
    if (@{ $r->{required} }) {
        invalid($r, 'empty object', '{}', [ map { path_of($r, $_) } @{ $r->{required} } ]);
        if ($r->{method} eq 'POST') {
            case($r, 'empty body (same as {})', body => '', expect => [ 400, 'VALIDATION_ERROR' ],
                fields => $r->{required});
        }
    }
    if ($r->{method} ne 'POST') {
        malformed($r, 'empty body', '');
        malformed($r, 'empty body, no Content-Type', '', headers => { 'Content-Type' => undef });
        malformed($r, 'empty body, text/plain', '', headers => { 'Content-Type' => 'text/plain' });
    }
}

# -- 8. unknown fields, mass assignment among them.
spread([ qw(id orgId status version createdBy createdAt approvalCount requiredApprovals
        snapshot paidAt paidBy submittedBy token tokenHash role isAdmin __proto__ constructor
        prototype $where), '', ' ', "\x{1F600}", 'x' x 1000 ], sub {
    my ($r, $k) = @_;
    invalid($r, 'unknown field ' . label("'$k'"), body_with($r, $k => 'SUBMITTED'), [$k])
        unless exists $r->{base}{$k};
});
for my $r (@ROUTES) {
    invalid($r, 'unknown field with an object value', body_with($r, status => { '$ne' => 1 }), ['status']);
    invalid($r, 'two unknown fields', body_with($r, aa => 1, bb => 2), [qw(aa bb)]);
    case($r, '5,000 unknown fields (details capped)',
        body => substr(template($r), 0, -1) . join('', map { ",\"k$_\":0" } 1 .. 5000) . '}',
        expect => [ 400, 'VALIDATION_ERROR' ]);
}

# -- 9. SQL and header injection strings in every text field: refused because of another
#       field (never because of their content alone when the field is free text), and never
#       run. Section 14 stores them.
my $nth = 0;
for my $r (@ROUTES) {
    for my $fd (@{ $r->{fields} }) {
        my ($f, $type, $min, $max) = @$fd;
        next if $type eq 'roles' || $type eq 'rules';
        # A third of the strings per field, in turn (section 14 stores all of them).
        my $k = $nth++ % 3;
        for my $v ((grep { $k++ % 3 == 0 } @INJECT), "x\r\nX-Injected: 1") {
            my $path = path_of($r, $f);
            my @fields = ('zzz');
            if ($type eq 'text') {
                push @fields, $path unless free_text_ok($v, $min, $max);
            } elsif ($type eq 'email') {
                push @fields, $path unless ($v =~ tr/@//) == 1 && $v !~ /^\@|\@\z/ && free_text_ok($v, 1, 254);
            } elsif ($type eq 'account') {
                push @fields, $path unless free_text_ok($v, 1, 34);
            } else {
                push @fields, $path;    # money and currency: never
            }
            invalid($r, "$f = " . label($v) . ' with an unknown field', body_with($r, $f => $v, zzz => 1),
                [ sort @fields ]);
        }
    }
}
for my $v (@INJECT) {
    my $r = $ROUTE{rules};
    invalid($r, 'rules[0].currency = ' . label($v), body_with($r, 'rules[0].currency' => $v),
        ['rules[0].currency']);
    invalid($r, 'rules[0].minAmount = ' . label($v), body_with($r, 'rules[0].minAmount' => $v),
        ['rules[0].minAmount']);
    invalid($ROUTE{users}, 'roles = [' . label($v) . ']', body_with($ROUTE{users}, roles => [$v]), ['roles']);
    invalid($ROUTE{users}, 'a field named ' . label($v), body_with($ROUTE{users}, $v => 1), [$v]);
}


run_catalogue();

done_testing;
