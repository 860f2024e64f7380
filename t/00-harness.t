use strict;
use warnings;

use Test::More;
use Time::HiRes ();
use Remit::Test;

# The stack itself: MariaDB, the pool and nginx with the site from nginx/remit.conf.in.
my $s = Remit::Test->stack;

my $ID_RE = qr{^[A-Za-z0-9._:+/=\@~-]{1,128}$};

subtest 'GET /healthz answers 200 {"data":{"status":"ok"}}' => sub {
    my $r = $s->req(GET => '/healthz');
    is $r->{status}, 200, 'status';
    is_deeply $r->{json}, { data => { status => 'ok' } }, 'body';
    like $r->{headers}{'content-type'}, qr{^application/json}, 'content type';
    like $r->{headers}{'x-request-id'}, $ID_RE, 'a generated X-Request-Id';
};

subtest 'an unknown path under /api/v1 without a token is 401 UNAUTHENTICATED' => sub {
    my $r = $s->req(GET => '/api/v1/no-such-thing');
    is_error $r, 401, 'UNAUTHENTICATED';
    like $r->{headers}{'www-authenticate'} // '', qr/^Bearer\b/, 'WWW-Authenticate: Bearer';
};

subtest 'a client X-Request-Id is echoed back' => sub {
    my $r = $s->req(GET => '/healthz', headers => { 'X-Request-Id' => 'abc-123' });
    is $r->{headers}{'x-request-id'}, 'abc-123', 'from the app';
    $r = $s->req(POST => '/api/v1/batches', raw => 'x' x 65537,
        headers => { 'X-Request-Id' => 'abc-123' });
    is $r->{headers}{'x-request-id'}, 'abc-123', 'from an nginx error page';
};

subtest 'a malformed X-Request-Id is replaced by a generated one' => sub {
    for my $bad ('has space', 'x' x 129, 'semi;colon') {
        my $r = $s->req(GET => '/healthz', headers => { 'X-Request-Id' => $bad });
        my $got = $r->{headers}{'x-request-id'} // '';
        ok $got ne $bad && $got =~ $ID_RE, "'" . substr($bad, 0, 12) . "' → '$got'";
    }
};

subtest 'a body of 65,536 bytes reaches the app, 65,537 is 413 from nginx' => sub {
    my $r = $s->req(POST => '/api/v1/batches', raw => 'x' x 65536);
    is_error $r, 401, 'UNAUTHENTICATED', '65,536 bytes: the app answers';
    $r = $s->req(POST => '/api/v1/batches', raw => 'x' x 65537);
    is_error $r, 413, 'PAYLOAD_TOO_LARGE', '65,537 bytes: 413';
    like $r->{headers}{'x-request-id'}, $ID_RE, 'with an X-Request-Id';
};

subtest 'a chunked body is held to the same limit' => sub {
    my $chunked = sub {
        my ($size) = @_;
        my $half = int($size / 2);
        return "POST /api/v1/batches HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            . "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            . join('', map { sprintf("%x\r\n", $_) . ('x' x $_) . "\r\n" }
                $half, $size - $half)
            . "0\r\n\r\n";
    };
    my $r = parse_http_response($s->raw_http($chunked->(65536)));
    is_error $r, 401, 'UNAUTHENTICATED', '65,536 bytes: the app answers';
    $r = parse_http_response($s->raw_http($chunked->(65537)));
    is_error $r, 413, 'PAYLOAD_TOO_LARGE', '65,537 bytes: 413';
};

subtest 'a request nginx cannot parse is 400 BAD_REQUEST as JSON' => sub {
    my $r = parse_http_response($s->raw_http(
        "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n"));
    is_error $r, 400, 'BAD_REQUEST';
    like $r->{headers}{'x-request-id'}, $ID_RE, 'with an X-Request-Id';
};

subtest 'the pool down is 502 BAD_GATEWAY as JSON, and back after a restart' => sub {
    $s->stop_remit;
    my $r = $s->req(GET => '/healthz');
    is_error $r, 502, 'BAD_GATEWAY';
    $s->start_remit;
    is $s->req(GET => '/healthz')->{status}, 200, 'healthz 200 again';
};

subtest 'MariaDB down is 503 from /healthz, and back after a restart' => sub {
    $s->stop_db;
    my $r = $s->req(GET => '/healthz');
    is $r->{status}, 503, 'healthz 503 while MariaDB is stopped';
    $s->start_db;
    my $ok;
    for (1 .. 50) {
        last if $ok = $s->req(GET => '/healthz')->{status} == 200;
        Time::HiRes::sleep(0.1);
    }
    ok $ok, 'healthz 200 again once MariaDB is back';
    is $s->dbh->selectrow_array('SELECT 1'), 1, 'dbh reconnects';
};

done_testing;
