use strict;
use warnings;
use utf8;

use Test::More;
use Remit::Test;
use Remit::Fixture;
use Remit::BadInput;

# Hostile input, the transport (sections 10-13: Idempotency-Key and If-Match, Content-Type, Content-Length and framing, query strings, wrong states and the order of the checks): one concern of the catalogue that t/lib/Remit/BadInput.pm describes
# and runs (every case its documented 4xx, nothing changed, no 5xx, no worker died).

# -- 10. headers: Idempotency-Key and If-Match, overlong and CR/LF-bearing (raw sockets).
my $BAD_REQUEST = [ 400, 'BAD_REQUEST' ];
my $KEY_INVALID = [ 400, 'IDEMPOTENCY_KEY_INVALID' ];
my @KEY_LINES = (
    [ '256 characters'            => 'k' x 256,                           $KEY_INVALID ],
    [ '1,000 characters'          => 'k' x 1000,                          $KEY_INVALID ],
    [ '5,000 characters'          => 'k' x 5000,                          $KEY_INVALID ],
    [ 'a 258-character sf-string' => '"' . ('k' x 256) . '"',             $KEY_INVALID ],
    [ '9,000 characters (nginx)'  => 'k' x 9000,                          $BAD_REQUEST ],
    [ 'a bare CR inside'          => "abc\rdef",                          $BAD_REQUEST ],
    [ 'CR CR LF (nginx drops a CR)' => "a b\r",                            $KEY_INVALID ],
    [ 'obs-fold (CRLF SP)'        => "abc\r\n def",                       $BAD_REQUEST ],
    [ 'obs-fold (CRLF HT)'        => "abc\r\n\tdef",                      $BAD_REQUEST ],
    [ 'a NUL inside'              => "a\0b",                              $BAD_REQUEST ],
    [ 'a bare LF ending an invalid key' => "a b\nX-Injected: 1",          $KEY_INVALID ],
    [ 'a bare LF inside a quote'  => "\"abc\nX-Injected: 1\"",            $KEY_INVALID ],
    [ 'a bare LF right away'      => "\nX-Injected: 1",                   $KEY_INVALID ],
    [ 'a DEL'                     => "k\x7Fy",                            $KEY_INVALID ],
    [ 'a tab'                     => "k\ty",                              $KEY_INVALID ],
    [ 'latin-1 byte'              => "k\xE9y",                            $KEY_INVALID ],
    [ 'UTF-8 bytes'               => "k\xC3\xA9y",                        $KEY_INVALID ],
    [ 'an overlong UTF-8 slash'   => "k\xC0\xAFy",                        $KEY_INVALID ],
    [ 'empty'                     => '',                                  $KEY_INVALID ],
    [ 'only spaces'               => '   ',                               $KEY_INVALID ],
    [ 'an empty sf-string'        => '""',                                $KEY_INVALID ],
    [ 'an unterminated sf-string' => '"abc',                              $KEY_INVALID ],
    [ 'a bad escape'              => '"a\nb"',                            $KEY_INVALID ],
    [ 'bytes after the quote'     => '"abc";x',                           $KEY_INVALID ],
    [ 'a list'                    => 'a, b',                              $KEY_INVALID ],
    [ 'a space inside'            => 'a b',                               $KEY_INVALID ],
);
my @IF_MATCH = (
    [ '5,000 digits'         => '"' . ('1' x 5000) . '"' ],
    [ 'a weak current tag'   => 'W/"%v"' ],
    [ 'unquoted current'     => '%v' ],
    [ 'unterminated'         => '"%v' ],
    [ 'garbage after'        => '"%v" x' ],
    [ 'an empty tag'         => '""' ],
    [ 'a space in the tag'   => '"%v "' ],
    [ 'a leading zero'       => '"0%v"' ],
    [ 'negative'             => '"-1"' ],
    [ '23 digits'            => '"99999999999999999999999"' ],
    [ 'a latin-1 byte'       => "\"\xE9\"" ],
    [ 'a stale tag, then LF and a header' => "\"999\"\nX-Injected: 1" ],
    [ 'a list of stale tags' => '"998", "999"' ],
    [ 'a semicolon list'     => '"%v";"%v"' ],
    [ 'a star in a list'     => '"999", *' ],
    [ 'a stale tag'          => '"999"' ],
    [ 'a stale tag, CR CR LF (nginx drops a CR)' => "\"999\"\r" ],
);
my @IF_MATCH_NGINX = (
    [ '9,000 characters' => '"' . ('1' x 9000) . '"' ],
    [ 'CR inside'        => "\"%v\rX\"" ],
    [ 'obs-fold'         => "\"999\"\r\n \"%v\"" ],
    [ 'a NUL'            => "\"%v\0\"" ],
    [ 'two headers'      => "\"%v\"\r\nIf-Match: \"%v\"" ],
);
my @OBJECT_ROUTES = grep { $_->{version} } @ROUTES;
my $delete_route = { name => 'delete', method => 'DELETE', path => "/api/v1/requests/$draft_req",
    token => $creator->{token}, version => [ requests => $draft_req ], base => {} };
my @IDEM_ROUTES = grep { $_->{idem} } @ROUTES;
spread(\@KEY_LINES, sub {
    my ($r, $k) = @_;
    case($r, 'Idempotency-Key ' . $k->[0], expect => $k->[2], details => {},
        raw => raw_request($r, body => valid_body($r),
            lines => [ 'Content-Type: application/json', "Idempotency-Key: $k->[1]" ]));
}, [ $ROUTE{users} ], [ grep { $_->{name} ne 'users' } @IDEM_ROUTES ]);
for my $r (@IDEM_ROUTES) {
    my $body = valid_body($r);
    case($r, 'two Idempotency-Key headers (one value each, combined: a list)',
        expect => $KEY_INVALID, details => {}, raw => raw_request($r, body => $body,
            lines => [ 'Content-Type: application/json', 'Idempotency-Key: ' . Remit::Test::random_key(),
                'Idempotency-Key: ' . Remit::Test::random_key() ]));
    case($r, 'Idempotency_Key (underscore): no key', expect => [ 400, 'IDEMPOTENCY_KEY_MISSING' ],
        details => {}, raw => raw_request($r, body => $body,
            lines => [ 'Content-Type: application/json', 'Idempotency_Key: k-underscore' ]));
}
my %VERSION = map { $_->{name} => version_of(@{ $_->{version} }) } @OBJECT_ROUTES, $delete_route;
sub if_match_case {
    my ($r, $m, $expect) = @_;
    my $v = $VERSION{ $r->{name} };
    my $body = $r->{method} eq 'DELETE' ? undef : valid_body($r);
    (my $val = $m->[1]) =~ s/%v/$v/g;
    case($r, "If-Match $m->[0]" . ($expect ? ' (nginx)' : ''),
        expect => $expect // [ 412, 'VERSION_CONFLICT' ],
        details => $expect ? {} : { currentVersion => $v },
        raw => raw_request($r, body => $body, lines => [
            ($body ? 'Content-Type: application/json' : ()),
            ($r->{idem} ? 'Idempotency-Key: ' . Remit::Test::random_key() : ()),
            "If-Match: $val" ]));
}
my @IF_OTHERS = ((grep { $_->{name} ne 'patch' } @OBJECT_ROUTES), $delete_route);
spread(\@IF_MATCH, sub { if_match_case(@_) }, [ $ROUTE{patch} ], \@IF_OTHERS);
spread(\@IF_MATCH_NGINX, sub { if_match_case(@_, $BAD_REQUEST) }, [ $ROUTE{patch} ], \@IF_OTHERS);

# -- 11. Content-Type: wrong, missing, empty, repeated.
my @CT_BAD = ('text/plain', 'text/json', 'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x', 'application/json; charset=latin1',
    'application/json; charset=utf-16', 'application/json; charset="latin1"',
    'application/json;charset=utf-8;x=y', 'application/json; charset=utf-8; charset=latin1',
    'application/jsonp', 'application/json-patch+json', 'application/merge-patch+json',
    'application/problem+json', 'application/ld+json', 'application/vnd.api+json',
    'application/*', '*/*', 'application/json, text/plain', 'application / json', 'json',
    'application/json;', 'application/json; charset=', 'application/json; foo',
    'application/xml', 'text/html; charset=utf-8', 'application/octet-stream');
spread(\@CT_BAD, sub {
    my ($r, $ct) = @_;
    case($r, "Content-Type: $ct", body => valid_body($r), headers => { 'Content-Type' => $ct },
        expect => [ 415, 'UNSUPPORTED_MEDIA_TYPE' ], details => {});
});
for my $r (@ROUTES) {
    my $body = valid_body($r);
    my @key = $r->{idem} ? ('Idempotency-Key: ' . Remit::Test::random_key()) : ();
    case($r, 'no Content-Type', expect => [ 415, 'UNSUPPORTED_MEDIA_TYPE' ], details => {},
        raw => raw_request($r, body => $body, lines => [@key]));
    case($r, 'an empty Content-Type', expect => [ 415, 'UNSUPPORTED_MEDIA_TYPE' ], details => {},
        raw => raw_request($r, body => $body, lines => [ @key, 'Content-Type:' ]));
    case($r, 'Content-Type text/plain then application/json',
        expect => [ 415, 'UNSUPPORTED_MEDIA_TYPE' ], details => {},
        raw => raw_request($r, body => $body,
            lines => [ @key, 'Content-Type: text/plain', 'Content-Type: application/json' ]));
    case($r, 'Content-Type application/json then text/plain',
        expect => [ 415, 'UNSUPPORTED_MEDIA_TYPE' ], details => {},
        raw => raw_request($r, body => $body,
            lines => [ @key, 'Content-Type: application/json', 'Content-Type: text/plain' ]));
    case($r, 'Content-Type with a NUL (nginx)', expect => $BAD_REQUEST, details => {},
        raw => raw_request($r, body => $body, lines => [ @key, "Content-Type: application/json\0" ]));
}

# -- 12. Content-Length lies, framing, and bodies over the limit (raw sockets).
for my $r (@ROUTES) {
    my $body = template($r);
    my @key = $r->{idem} ? ('Idempotency-Key: ' . Remit::Test::random_key()) : ();
    my @ct = ('Content-Type: application/json', @key);
    case($r, 'Content-Length half the body', expect => [ 400, 'MALFORMED_JSON' ], details => {},
        raw => raw_request($r, body => $body, cl => int(length($body) / 2), lines => \@ct));
    case($r, 'Content-Length 1', expect => [ 400, 'MALFORMED_JSON' ], details => {},
        raw => raw_request($r, body => $body, cl => 1, lines => \@ct));
    case($r, 'Content-Length one short', expect => [ 400, 'MALFORMED_JSON' ], details => {},
        raw => raw_request($r, body => $body, cl => length($body) - 1, lines => \@ct));
    if (!$r->{empty_ok}) {
        if ($r->{method} eq 'POST') {
            case($r, 'Content-Length 0 with a body (empty: same as {})',
                expect => [ 400, 'VALIDATION_ERROR' ], fields => $r->{required},
                raw => raw_request($r, body => $body, cl => 0, lines => \@ct));
        } else {
            case($r, 'Content-Length 0 with a body (empty)', expect => [ 400, 'MALFORMED_JSON' ],
                details => {}, raw => raw_request($r, body => $body, cl => 0, lines => \@ct));
        }
    }
    # A smuggled second request inside the announced body is body, not a request; one after
    # the announced body on a Connection: close is never run.
    my $smuggled = "POST /api/v1/batches HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
        . "$creator->{token}\r\nContent-Type: application/json\r\nIdempotency-Key: smuggle\r\n"
        . "Content-Length: 15\r\n\r\n{\"name\":\"Smug\"}";
    case($r, 'Content-Length covering a smuggled request', expect => [ 400, 'MALFORMED_JSON' ],
        details => {}, raw => raw_request($r, body => $body . $smuggled, lines => \@ct));
    case($r, 'Content-Length short, a request after it (Connection: close)',
        expect => [ 400, 'MALFORMED_JSON' ], details => {},
        raw => raw_request($r, body => substr($body, 0, -1), lines => \@ct) . $smuggled);
    case($r, 'Content-Length longer than the body, client gives up', half_close => 1,
        any => [ [0], $BAD_REQUEST, [ 408, undef ] ],
        raw => raw_request($r, body => $body, cl => length($body) + 100, lines => \@ct));
    for my $cl ('-1', 'abc', '+10', '0x10', '1e2', '99999999999999999999') {
        case($r, "Content-Length '$cl' (nginx)", expect => $BAD_REQUEST, details => {},
            raw => raw_request($r, body => $body, cl => $cl, lines => \@ct));
    }
    case($r, 'two different Content-Lengths (nginx)', expect => $BAD_REQUEST, details => {},
        raw => raw_request($r, body => $body, lines => [ @ct, 'Content-Length: 3' ]));
    case($r, 'Content-Length and chunked (nginx)', expect => $BAD_REQUEST, details => {},
        raw => raw_request($r, body => sprintf("%x\r\n%s\r\n0\r\n\r\n", length $body, $body),
            lines => [ @ct, 'Transfer-Encoding: chunked' ], cl => 10));
    case($r, 'a bad chunk size (nginx)', expect => $BAD_REQUEST, details => {},
        raw => raw_request($r, body => "zz\r\n$body\r\n0\r\n\r\n", cl => undef,
            lines => [ @ct, 'Transfer-Encoding: chunked' ]));
    case($r, 'Transfer-Encoding gzip (nginx)', expect => [ 501, 'NOT_IMPLEMENTED' ], details => {},
        raw => raw_request($r, body => $body, cl => undef, lines => [ @ct, 'Transfer-Encoding: gzip' ]));
    case($r, 'chunked, a truncated JSON body', expect => [ 400, 'MALFORMED_JSON' ], details => {},
        raw => raw_request($r, body => sprintf("%x\r\n%s\r\n0\r\n\r\n", length($body) - 1,
            substr($body, 0, -1)), cl => undef, lines => [ @ct, 'Transfer-Encoding: chunked' ]));
    # Over the limit: 65,537 bytes of an otherwise valid body, announced or chunked, and a
    # Content-Length that announces more than the limit.
    my $valid = valid_body($r);
    my $pad = $valid . (' ' x (65537 - length $valid));
    case($r, '65,537 bytes', body => $pad, expect => [ 413, 'PAYLOAD_TOO_LARGE' ], details => {});
    case($r, '65,537 bytes chunked', expect => [ 413, 'PAYLOAD_TOO_LARGE' ], details => {},
        raw => raw_request($r, body => sprintf("%x\r\n%s\r\n0\r\n\r\n", length $pad, $pad), cl => undef,
            lines => [ @ct, 'Transfer-Encoding: chunked' ]));
    case($r, 'Content-Length 70,000, a short body', expect => [ 413, 'PAYLOAD_TOO_LARGE' ],
        details => {}, raw => raw_request($r, body => $body, cl => 70000, lines => \@ct));
    case($r, '1 MB', expect => [ 413, 'PAYLOAD_TOO_LARGE' ], details => {},
        raw => raw_request($r, body => $valid . (' ' x 1_000_000), lines => \@ct));
    # 65,536 bytes are read and parsed: an unknown field makes it fail validation.
    my $edge = body_with($r, zz => 1);
    invalid($r, '65,536 bytes (not 413)', $edge . (' ' x (65536 - length $edge)), ['zz']);
}

# -- 13. query strings on mutations, wrong states, and precedence (the order in doc/openapi.yaml#Conventions).
for my $r (@ROUTES) {
    my $body = valid_body($r);
    for my $q ('dryRun=1', 'status=PAID', 'limit=5', 'x', '%ff=1', 'a=%00', 'a=%zz', 'a=1&a=1') {
        my ($name) = $q =~ /^([^=]*)/;
        my $field = $q =~ /^%ff/ ? 'query' : $name;
        invalid($r, "query ?$q", $body, [$field], path => "$r->{path}?$q");
    }
    # 401 before everything.
    case($r, 'no token, everything else wrong too', body => '{bad', idem => 0, token => '',
        headers => { 'Content-Type' => 'text/plain' }, expect => [ 401, 'UNAUTHENTICATED' ],
        details => {});
    case($r, 'a revoked token', body => $body, token => $revoked->{token},
        expect => [ 401, 'UNAUTHENTICATED' ], details => {});
    case($r, 'an unknown token of the right shape', body => $body,
        token => 'rmt_' . ('A' x 43), expect => [ 401, 'UNAUTHENTICATED' ], details => {});
    # 403 before 415, MALFORMED_JSON and the key.
    case($r, 'a VIEWER, text/plain, bad JSON, no key', body => '{bad', idem => 0,
        token => $viewer->{token}, headers => { 'Content-Type' => 'text/plain' },
        expect => [ 403, 'FORBIDDEN' ], details => {});
    # 415 before MALFORMED_JSON and the key.
    case($r, 'text/plain, bad JSON, no key', body => '{bad', idem => 0,
        headers => { 'Content-Type' => 'text/plain' }, expect => [ 415, 'UNSUPPORTED_MEDIA_TYPE' ],
        details => {});
    next unless $r->{idem};
    # MALFORMED_JSON before the key; the key before validation.
    malformed($r, 'bad JSON, no key', '{bad', idem => 0);
    malformed($r, 'bad JSON, a bad key', '{bad', idem => 'a b');
    case($r, 'no key, an unknown field', body => body_with($r, zz => 1), idem => 0,
        expect => [ 400, 'IDEMPOTENCY_KEY_MISSING' ], details => {});
    case($r, 'a bad key, an unknown field', body => body_with($r, zz => 1), idem => '',
        expect => [ 400, 'IDEMPOTENCY_KEY_INVALID' ], details => {});
}
# The key's reuse (422) comes before the object's 404, the 412 and validation.
{
    my @reuse = (
        [ $ROUTE{'add-request'}, '/api/v1/batches/999999999/requests', '{"zz":1}' ],
        [ $ROUTE{approve}, '/api/v1/requests/999999999/approve', '{"zz":1}' ],
        [ $ROUTE{batches}, '/api/v1/batches', '{"name":"Keyed","zz":1}' ],
        [ $ROUTE{submit}, "/api/v1/batches/$draft_batch/submit", '{}' ],
        [ $ROUTE{reject}, "/api/v1/requests/$pending_req/reject", '{}' ],
    );
    for my $u (@reuse) {
        my ($r, $path, $body) = @$u;
        case($r, "a used key on $path", path => $path, body => $body, idem => $USED_KEY,
            headers => { 'If-Match' => '"999"' },
            expect => [ 422, 'IDEMPOTENCY_KEY_REUSED' ], details => {});
    }
}
# An unknown object before 412 and validation; 412 before validation; validation before state.
for my $r (@OBJECT_ROUTES) {
    (my $gone = $r->{path}) =~ s{/(batches|requests)/\d+}{/$1/999999999};
    case($r, 'an unknown object, a stale If-Match, invalid fields', path => $gone,
        body => body_with($r, zz => 1), headers => { 'If-Match' => '"999"' },
        expect => [ 404, 'NOT_FOUND' ], details => {});
    case($r, 'a stale If-Match, invalid fields', body => body_with($r, zz => 1),
        headers => { 'If-Match' => '"999"' }, expect => [ 412, 'VERSION_CONFLICT' ],
        details => { currentVersion => $VERSION{ $r->{name} } });
}
{
    my %wrong = (    # route => [path in the wrong state, its status]
        'add-request' => [ "/api/v1/batches/$pending_batch/requests", 'SUBMITTED' ],
        submit        => [ "/api/v1/batches/$pending_batch/submit", 'SUBMITTED' ],
        cancel        => [ "/api/v1/batches/$cancelled_batch/cancel", 'CANCELLED' ],
        patch         => [ "/api/v1/requests/$pending_req", 'PENDING_APPROVAL' ],
        approve       => [ "/api/v1/requests/$approved_req/approve", 'APPROVED' ],
        reject        => [ "/api/v1/requests/$draft_req/reject", 'DRAFT' ],
        'mark-paid'   => [ "/api/v1/requests/$pending_req/mark-paid", 'PENDING_APPROVAL' ],
    );
    for my $name (sort keys %wrong) {
        my $r = $ROUTE{$name};
        my ($path, $status) = @{ $wrong{$name} };
        my $valid = valid_body($r);
        case($r, "$status: a valid body", path => $path, body => $valid,
            expect => [ 409, 'INVALID_STATE' ], details => { status => $status });
        invalid($r, "$status: an invalid body (validation first)", body_with($r, zz => 1), ['zz'],
            path => $path);
    }
    case($ROUTE{cancel}, 'a batch with an APPROVED request',
        path => "/api/v1/batches/$approved_batch/cancel", body => '{}',
        expect => [ 409, 'INVALID_STATE' ], details => { status => 'SUBMITTED' });
    case($ROUTE{submit}, 'an empty batch', path => "/api/v1/batches/$empty_batch/submit", body => '{}',
        expect => [ 409, 'INVALID_STATE' ], details => { status => 'DRAFT' });
    case($delete_route, 'PENDING_APPROVAL', path => "/api/v1/requests/$pending_req",
        expect => [ 409, 'INVALID_STATE' ], details => { status => 'PENDING_APPROVAL' });
    for my $what (qw(approve reject)) {
        my $r = $ROUTE{$what};
        case($r, 'own request (made it)', path => "/api/v1/requests/$own_req/$what",
            token => $maker->{token}, body => valid_body($r),
            expect => [ 403, 'SELF_APPROVAL_FORBIDDEN' ], details => {});
        case($r, 'own request (submitted its batch)', path => "/api/v1/requests/$sub_req/$what",
            token => $maker->{token}, body => valid_body($r),
            expect => [ 403, 'SELF_APPROVAL_FORBIDDEN' ], details => {});
        case($r, 'APPROVED, decided by them: state first', path => "/api/v1/requests/$approved_req/$what",
            token => $approver->{token}, body => valid_body($r),
            expect => [ 409, 'INVALID_STATE' ], details => { status => 'APPROVED' });
        case($r, 'already decided', path => "/api/v1/requests/$gbp_req/$what",
            token => $approver->{token}, body => valid_body($r),
            expect => [ 409, 'ALREADY_DECIDED' ], details => {});
        invalid($r, 'already decided, an invalid body', body_with($r, zz => 1), ['zz'],
            path => "/api/v1/requests/$gbp_req/$what");
    }
    my ($admin_email) = $s->dbh->selectrow_array('SELECT email FROM users WHERE id = ?', undef,
        $org->{userId});
    case($ROUTE{users}, 'an existing email in upper case',
        body => body_with($ROUTE{users}, email => uc $admin_email),
        expect => [ 409, 'CONFLICT' ], fields => ['email']);
}


run_catalogue();

done_testing;
