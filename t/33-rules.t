use strict;
use warnings;

use Test::More;
use Remit::Test;

# Approval rules (doc/openapi.yaml#paths): GET and PUT (replace all), validation by path, audit, scope.
my $s = Remit::Test->stack;
my $org = $s->new_org;
my $admin = $org->{token};
my $viewer = $s->new_user($admin, roles => ['VIEWER'])->{token};
my $creator = $s->new_user($admin, roles => ['CREATOR'])->{token};
my $approver = $s->new_user($admin, roles => ['APPROVER'])->{token};

sub put { $s->req(PUT => '/api/v1/approval-rules', token => $_[1] // $admin, json => $_[0]) }
sub get { $s->req(GET => '/api/v1/approval-rules', token => $_[0] // $viewer) }

sub rule { my ($cur, $min, $n) = @_; return { currency => $cur, minAmount => $min, approvals => $n } }

subtest 'no rules at first' => sub {
    my $r = get();
    is $r->{status}, 200, 'any role reads';
    is_deeply $r->{json}, { data => { rules => [] } }, '{"rules":[]}';
    is $r->{headers}{etag}, undef, 'no ETag: not a batch or a request';
};

subtest 'PUT stores the rules, normalised, in order' => sub {
    my $r = put({ rules => [ rule('USD', '10000', 2), rule('JPY', '0', 3),
        rule('KWD', '1.5', 10), rule('EUR', 0.5, 1), rule('USD', '0.00', 1) ] });
    is $r->{status}, 200, 'status 200';
    my $want = { rules => [ rule('USD', '10000.00', 2), rule('JPY', '0', 3),
        rule('KWD', '1.500', 10), rule('EUR', '0.50', 1), rule('USD', '0.00', 1) ] };
    is_deeply $r->{json}{data}, $want, 'the stored rules, minAmount normalised';
    is_deeply get()->{json}{data}, $want, 'GET shows the same';
};

subtest 'PUT replaces every rule' => sub {
    put({ rules => [ rule('USD', '1', 2), rule('EUR', '1', 2) ] });
    my $r = put({ rules => [ rule('GBP', '5', 4) ] });
    is_deeply $r->{json}{data}{rules}, [ rule('GBP', '5.00', 4) ], 'one rule left';
    $r = put({ rules => [] });
    is_deeply $r->{json}{data}{rules}, [], 'an empty list clears them';
    is_deeply get()->{json}{data}{rules}, [], 'GET agrees';
};

subtest '100 rules are accepted, 101 are not' => sub {
    my @rules = map { rule('USD', "$_", 1 + $_ % 10) } 1 .. 100;
    my $r = put({ rules => \@rules });
    is $r->{status}, 200, '100 rules';
    is scalar @{ get()->{json}{data}{rules} }, 100, 'all stored';
    $r = put({ rules => [ @rules, rule('USD', '1', 1) ] });
    is_error $r, 400, 'VALIDATION_ERROR', '101 rules';
    ok exists $r->{json}{error}{details}{rules}, 'details.rules';
    is scalar @{ get()->{json}{data}{rules} }, 100, 'nothing changed';
};

subtest 'fields inside rules are named by their path' => sub {
    my @cases = (
        [ [ rule('USD', '1', 0) ], 'rules[0].approvals' ],
        [ [ rule('USD', '1', 11) ], 'rules[0].approvals' ],
        [ [ rule('USD', '1', '2') ], 'rules[0].approvals' ],
        [ [ rule('USD', '1', 2.5) ], 'rules[0].approvals' ],
        [ [ rule('USD', '1', -1) ], 'rules[0].approvals' ],
        [ [ rule('USD', '1', undef) ], 'rules[0].approvals' ],
        [ [ rule('USD', '1', 1), rule('USD', '-1', 1) ], 'rules[1].minAmount' ],
        [ [ rule('USD', '1.001', 1) ], 'rules[0].minAmount' ],
        [ [ rule('JPY', '0.5', 1) ], 'rules[0].minAmount' ],
        [ [ rule('USD', '1e3', 1) ], 'rules[0].minAmount' ],
        [ [ rule('USD', '1234567890123456', 1) ], 'rules[0].minAmount' ],
        [ [ { currency => 'USD', approvals => 1 } ], 'rules[0].minAmount' ],
        [ [ rule('usd', '1', 1) ], 'rules[0].currency' ],
        [ [ rule('XXX', '1', 1) ], 'rules[0].currency' ],
        [ [ { minAmount => '1', approvals => 1 } ], 'rules[0].currency' ],
        [ [ { %{ rule('USD', '1', 1) }, note => 'x' } ], 'rules[0].note' ],
        [ [ 'USD' ], 'rules[0]' ],
        [ [ rule('USD', '1', 1), [] ], 'rules[1]' ],
    );
    for my $c (@cases) {
        my $r = put({ rules => $c->[0] });
        is_error $r, 400, 'VALIDATION_ERROR', $c->[1];
        is_deeply [ keys %{ $r->{json}{error}{details} } ], [ $c->[1] ], "details.$c->[1]";
    }
    my $r = put({ rules => [ rule('usd', '0.001', 0), rule('EUR', '1', 1),
        rule('GBP', 'x', 99), rule('XXX', '-1', 1) ] });
    is_deeply [ sort keys %{ $r->{json}{error}{details} } ],
        [ 'rules[0].approvals', 'rules[0].currency', 'rules[2].approvals', 'rules[2].minAmount',
          'rules[3].currency', 'rules[3].minAmount' ],
        'every problem at once (with a bad currency, minAmount is checked in form only)';
};

subtest 'the body: rules required and an array; nothing else' => sub {
    for my $c ([{}, 'rules'], [{ rules => undef }, 'rules'], [{ rules => {} }, 'rules'],
        [{ rules => 'x' }, 'rules'], [{ rules => [], extra => 1 }, 'extra']) {
        my $r = put($c->[0]);
        is_error $r, 400, 'VALIDATION_ERROR', "details.$c->[1]";
        ok exists $r->{json}{error}{details}{ $c->[1] }, 'named';
    }
    my $r = $s->req(PUT => '/api/v1/approval-rules', token => $admin);
    is_error $r, 400, 'MALFORMED_JSON', 'an empty body';
    $r = $s->req(PUT => '/api/v1/approval-rules?x=1', token => $admin, json => { rules => [] });
    is_error $r, 400, 'VALIDATION_ERROR', 'unknown query parameter';
    $r = $s->req(GET => '/api/v1/approval-rules?x=1', token => $viewer);
    is_error $r, 400, 'VALIDATION_ERROR', 'GET: unknown query parameter';
};

subtest 'only ADMINs replace rules' => sub {
    for my $tok ($viewer, $creator, $approver) {
        is_error put({ rules => [] }, $tok), 403, 'FORBIDDEN';
    }
};

subtest 'one audit event approval_rules.replaced with the new rules' => sub {
    put({ rules => [ rule('CHF', '100', 2) ] });
    my $r = $s->req(GET => '/api/v1/audit?limit=1', token => $viewer);
    my $e = $r->{json}{data}[0];
    is $e->{action}, 'approval_rules.replaced', 'action';
    is $e->{objectType}, 'approval_rules', 'objectType';
    is $e->{objectId}, $org->{orgId}, 'objectId: the organisation';
    is_deeply $e->{data}, { rules => [ rule('CHF', '100.00', 2) ] }, 'data';
    is $e->{idempotencyKey}, undef, 'a PUT has no Idempotency-Key';
    put({ rules => [ rule('USD', 1, 1) ] }, $viewer);
    is $s->req(GET => '/api/v1/audit?limit=1', token => $viewer)->{json}{data}[0]{id}, $e->{id},
        'a refused PUT writes nothing';
};

subtest 'rules belong to one organisation and apply at submit' => sub {
    put({ rules => [ rule('USD', '0', 3) ] });
    my $o = $s->new_org;
    is_deeply get($o->{token})->{json}{data}{rules}, [], 'another organisation sees none';
    my $c2 = $s->new_user($o->{token}, roles => ['CREATOR'])->{token};
    my $mk = sub {
        my ($tok) = @_;
        my $b = $s->req(POST => '/api/v1/batches', token => $tok, idem => 1,
            json => { name => 'x' })->{json}{data}{id};
        my $q = $s->req(POST => "/api/v1/batches/$b/requests", token => $tok, idem => 1,
            json => { amount => '1', currency => 'USD', beneficiaryName => 'a',
                beneficiaryAccount => '1' })->{json}{data}{id};
        return ($b, $q);
    };
    my ($b2, $q2) = $mk->($c2);
    $s->req(POST => "/api/v1/batches/$b2/submit", token => $c2, idem => 1);
    is $s->req(GET => "/api/v1/requests/$q2", token => $c2)->{json}{data}{requiredApprovals}, 1,
        "another organisation's rules do not apply";
    my ($b, $q) = $mk->($creator);
    put({ rules => [ rule('USD', '0', 2) ] });
    $s->req(POST => "/api/v1/batches/$b/submit", token => $creator, idem => 1);
    is $s->req(GET => "/api/v1/requests/$q", token => $viewer)->{json}{data}{requiredApprovals},
        2, 'the rules in force at submit, not at creation';
};

done_testing;
