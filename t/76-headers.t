use strict;
use warnings;

use Test::More;
use Remit::Test;

# Issue 23, item 8: X-Content-Type-Options: nosniff on every JSON answer, the app's and
# nginx's own, and the frontend's CSP forbids <base> and forms posting elsewhere.

my $s = Remit::Test->stack;
my $org = $s->new_org;

sub nosniff {
    my ($r, $what) = @_;
    like $r->{headers}{'content-type'} // '', qr{^application/json}, "$what: JSON ($r->{status})";
    is $r->{headers}{'x-content-type-options'}, 'nosniff', "$what: nosniff";
}

nosniff($s->req(GET => '/api/v1/me', token => $org->{token}), 'the app\'s 200');
nosniff($s->req(GET => '/api/v1/me'), 'the app\'s 401');
nosniff($s->req(GET => '/api/v1/no-such-thing', token => $org->{token}), 'the app\'s 404');
nosniff($s->req(GET => '/healthz'), '/healthz');
nosniff($s->req(POST => '/api/v1/batches', token => $org->{token}, idem => 1,
    raw => 'x' x 70000), 'nginx\'s 413');
nosniff($s->req(POST => '/api/v1/openapi.yaml'), 'nginx\'s 405 of the contract');

subtest 'the frontend\'s CSP: base-uri none, form-action self' => sub {
    for my $path ('/', '/assets/icon.svg') {
        my $r = $s->req(GET => $path);
        is $r->{status}, 200, "$path: 200";
        my $csp = $r->{headers}{'content-security-policy'} // '';
        like $csp, qr/(?:^|; )base-uri 'none'(?:;|$)/, "$path: base-uri 'none'";
        like $csp, qr/(?:^|; )form-action 'self'(?:;|$)/, "$path: form-action 'self'";
        like $csp, qr/(?:^|; )frame-ancestors 'none'(?:;|$)/, "$path: still frame-ancestors 'none'";
        is $r->{headers}{'x-content-type-options'}, 'nosniff', "$path: nosniff";
    }
};

done_testing;
