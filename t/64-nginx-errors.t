use strict;
use warnings;

use Test::More;
use Remit::Test;

# nginx's own errors (issue 9 item 6, API §8): every answer nginx makes itself is the JSON
# envelope with X-Request-Id, never its HTML page, and reaches no worker.
my $s = Remit::Test->stack;
my $ID_RE = qr/^[A-Za-z0-9._:+\/=\@~-]{1,128}$/;

sub nginx_error_ok {
    my ($raw, $status, $code, $name) = @_;
    my $r = parse_http_response($s->raw_http($raw));
    subtest $name => sub {
        is_error $r, $status, $code, "$status $code";
        like $r->{headers}{'x-request-id'} // '', $ID_RE, 'X-Request-Id';
        unlike $r->{body}, qr/<html/i, 'no HTML';
    };
    return $r;
}

my $before = -s $s->log_path;
nginx_error_ok("TRACE /api/v1/me HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    405, 'METHOD_NOT_ALLOWED', 'TRACE');
nginx_error_ok("GET /api/v1/me HTTP/3.0\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    505, 'HTTP_VERSION_NOT_SUPPORTED', 'an HTTP/3.0 request line');
nginx_error_ok("GET /api/v1/me HTTP/2.0\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    505, 'HTTP_VERSION_NOT_SUPPORTED', 'an HTTP/2.0 request line over HTTP/1');
my $r = nginx_error_ok("TRACE /api/v1/me HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    . "X-Request-Id: trace-me-42\r\n\r\n", 405, 'METHOD_NOT_ALLOWED', 'TRACE with a request id');
is $r->{headers}{'x-request-id'}, 'trace-me-42', "the client's well-formed id is echoed";
nginx_error_ok("GET /api/v1/me HTTP/1.1\r\nConnection: close\r\n\r\n", 400, 'BAD_REQUEST',
    'no Host header');
nginx_error_ok("GET /" . ('a' x 9000) . " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    414, 'URI_TOO_LONG', 'a URI too long');
is -s $s->log_path, $before, 'no request reached the pool';

done_testing;
