use strict;
use warnings;
use utf8;

use Test::More;
use JSON::PP ();
use Remit::Test;

# doc/openapi.yaml#Conventions: every error status with its envelope and X-Request-Id, the checks on bodies,
# headers and query strings, and the order in which they apply. A rejected mutation changes
# nothing: no user, no idempotency key, no audit event.

binmode(Test::More->builder->$_, ':encoding(UTF-8)') for qw(output failure_output todo_output);

my $s = Remit::Test->stack;
my $org = $s->new_org;
my $admin = $org->{token};
my $viewer = $s->new_user($admin, roles => ['VIEWER']);

my $ID_RE = qr{^[A-Za-z0-9._:+/=\@~-]{1,128}$};
my $JSON = JSON::PP->new->utf8->canonical;
my $seq = 0;

# What a rejected mutation must leave as it was.
sub state_of {
    my $dbh = $s->dbh;
    my ($users) = $dbh->selectrow_array('SELECT COUNT(*) FROM users WHERE org_id = ?',
        undef, $org->{orgId});
    my ($keys) = $dbh->selectrow_array('SELECT COUNT(*) FROM idempotency_keys WHERE user_id = ?',
        undef, $org->{userId});
    my ($events) = $dbh->selectrow_array('SELECT COUNT(*) FROM audit_events WHERE org_id = ?',
        undef, $org->{orgId});
    return "users=$users keys=$keys audit=$events";
}

# The error envelope (is_error), X-Request-Id, and details exactly as given when asked.
sub error_ok {
    my ($r, $status, $code, $name, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_error $r, $status, $code, "$name: $status $code";
    like $r->{headers}{'x-request-id'} // '', $ID_RE, "$name: X-Request-Id";
    is_deeply $r->{json}{error}{details}, $o{details}, "$name: details"
        if exists $o{details};
    if ($o{fields}) {
        my $d = ref $r->{json} eq 'HASH' && ref $r->{json}{error} eq 'HASH'
            ? $r->{json}{error}{details} : undef;
        my @got = ref $d eq 'HASH' ? sort keys %$d : ();
        is_deeply \@got, [ sort @{ $o{fields} } ], "$name: details name @{ $o{fields} }";
        ok !(grep { ref $d->{$_} || !length($d->{$_} // '') } @got),
            "$name: each detail is a message" if @got;
    }
}

# A POST /api/v1/users that must be refused without changing anything.
sub refused {
    my ($name, $status, $code, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $token = exists $o{token} ? delete $o{token} : $admin;
    my $path = delete $o{path} // '/api/v1/users';
    my %check = map { exists $o{$_} ? ($_ => delete $o{$_}) : () } qw(fields details);
    my $before = state_of();
    my $r = $s->req(POST => $path, token => $token,
        (exists $o{idem} ? () : (idem => 1)), %o);
    error_ok($r, $status, $code, $name, %check);
    is state_of(), $before, "$name: nothing changed";
    return $r;
}

sub a_user {
    my $n = ++$seq;
    return { email => "u$n-$$\@example.test", name => "User $n", roles => ['VIEWER'], @_ };
}

sub created_ok {
    my ($r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is $r->{status}, 201, "$name: 201" or diag $r->{body};
    like $r->{headers}{'x-request-id'} // '', $ID_RE, "$name: X-Request-Id";
}

# ---- 404 and 405 -----------------------------------------------------------------------

subtest '404 NOT_FOUND for an unknown path under /api/v1 with a token' => sub {
    for my $path ('/api/v1/no-such-thing', '/api/v1', '/api/v1/', '/api/v1/users/1/tokens/2',
        '/api/v1/users/', '/api/v1/me/') {
        error_ok($s->req(GET => $path, token => $admin), 404, 'NOT_FOUND', "GET $path",
            details => {});
    }
    error_ok($s->req(POST => '/api/v1/nothing-here', token => $admin, idem => 1, json => {}),
        404, 'NOT_FOUND', 'POST to an unknown path', details => {});
};

subtest '404 NOT_FOUND for an unknown path outside /api/v1, without a token' => sub {
    error_ok($s->req(GET => '/no-such-page'), 404, 'NOT_FOUND', 'GET /no-such-page',
        details => {});
};

subtest '404 NOT_FOUND for an unknown id' => sub {
    my $before = state_of();
    error_ok($s->req(POST => '/api/v1/users/999999/tokens', token => $admin, json => {}),
        404, 'NOT_FOUND', 'POST /api/v1/users/999999/tokens', details => {});
    error_ok($s->req(POST => '/api/v1/users/not-an-id/tokens', token => $admin, json => {}),
        404, 'NOT_FOUND', 'POST /api/v1/users/not-an-id/tokens', details => {});
    error_ok($s->req(DELETE => '/api/v1/tokens/999999', token => $admin),
        404, 'NOT_FOUND', 'DELETE /api/v1/tokens/999999', details => {});
    is state_of(), $before, 'nothing changed';
    my ($tokens) = $s->dbh->selectrow_array('SELECT COUNT(*) FROM tokens WHERE org_id = ?',
        undef, $org->{orgId});
    is $tokens, 2, 'no token was created (the bootstrap one and the viewer\'s)';
};

subtest '405 METHOD_NOT_ALLOWED with an Allow header listing the methods' => sub {
    my %cases = (
        'PUT /api/v1/users'            => [ PUT    => '/api/v1/users',        [qw(GET POST)] ],
        'DELETE /api/v1/users'         => [ DELETE => '/api/v1/users',        [qw(GET POST)] ],
        'POST /api/v1/me'              => [ POST   => '/api/v1/me',           ['GET'] ],
        'GET /api/v1/users/1/tokens'   => [ GET    => '/api/v1/users/1/tokens', ['POST'] ],
        'GET /api/v1/tokens/1'         => [ GET    => '/api/v1/tokens/1',     ['DELETE'] ],
        'PATCH /api/v1/approval-rules' => [ PATCH  => '/api/v1/approval-rules', [qw(GET PUT)] ],
    );
    for my $name (sort keys %cases) {
        my ($method, $path, $allow) = @{ $cases{$name} };
        my $before = state_of();
        my $r = $s->req($method => $path, token => $admin, idem => 1,
            ($method =~ /^(PUT|PATCH|POST)$/ ? (json => {}) : ()));
        error_ok($r, 405, 'METHOD_NOT_ALLOWED', $name, details => {});
        my @got = sort split /\s*,\s*/, $r->{headers}{allow} // '';
        is_deeply \@got, [ sort @$allow ], "$name: Allow: @$allow";
        is state_of(), $before, "$name: nothing changed";
    }
    my $r = $s->req(POST => '/healthz');
    error_ok($r, 405, 'METHOD_NOT_ALLOWED', 'POST /healthz (no token needed)', details => {});
    is $r->{headers}{allow}, 'GET', 'POST /healthz: Allow: GET';
};

# ---- 413 -------------------------------------------------------------------------------

subtest '413 PAYLOAD_TOO_LARGE from nginx for 65,537 bytes; 65,536 bytes are accepted' => sub {
    my $json = $JSON->encode(a_user());
    my $pad = sub { my ($n) = @_; $json . (' ' x ($n - length $json)) };
    my $r = refused('65,537 bytes', 413, 'PAYLOAD_TOO_LARGE', raw => $pad->(65537),
        details => {});
    my $before = state_of();
    $r = $s->req(POST => '/api/v1/users', token => $admin, idem => 1, raw => $pad->(65536));
    created_ok($r, '65,536 bytes');
    is $r->{json}{data}{email}, $JSON->decode($json)->{email}, '65,536 bytes: the user is made';
    isnt state_of(), $before, '65,536 bytes: the user exists';
};

subtest "nginx's own errors are the envelope too: 414 URI_TOO_LONG, 400 BAD_REQUEST" => sub {
    error_ok($s->req(GET => '/api/v1/users?x=' . ('a' x 9000), token => $admin), 414,
        'URI_TOO_LONG', 'a 9,000-byte URI', details => {});
    error_ok($s->req(GET => '/api/v1/me', token => $admin, headers => { 'X-Big' => 'b' x 9000 }),
        400, 'BAD_REQUEST', 'a 9,000-byte header', details => {});
};

# ---- 415 -------------------------------------------------------------------------------

subtest '415 UNSUPPORTED_MEDIA_TYPE for a body that is not application/json' => sub {
    for my $ct ('text/plain', 'application/json; charset=latin1', 'application/jsonx',
        'application/json; charset=utf-8; x=y', 'application/x-www-form-urlencoded',
        'application/json;foo=bar') {
        refused("Content-Type: $ct", 415, 'UNSUPPORTED_MEDIA_TYPE',
            json => a_user(), headers => { 'Content-Type' => $ct }, details => {});
    }
};

subtest '415 UNSUPPORTED_MEDIA_TYPE for a body without Content-Type' => sub {
    my $body = $JSON->encode(a_user());
    my $before = state_of();
    my $raw = "POST /api/v1/users HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        . "Authorization: Bearer $admin\r\nIdempotency-Key: " . Remit::Test::random_key()
        . "\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
    my $r = parse_http_response($s->raw_http($raw));
    error_ok($r, 415, 'UNSUPPORTED_MEDIA_TYPE', 'no Content-Type', details => {});
    is state_of(), $before, 'nothing changed';
};

subtest 'application/json with charset=utf-8 (any case) is accepted' => sub {
    for my $ct ('application/json', 'application/json; charset=utf-8',
        'application/json; charset=UTF-8', 'application/json;charset=utf-8',
        'Application/JSON; Charset="utf-8"') {
        my $r = $s->req(POST => '/api/v1/users', token => $admin, idem => 1, json => a_user(),
            headers => { 'Content-Type' => $ct });
        created_ok($r, "Content-Type: $ct");
    }
};

subtest 'an empty POST without Content-Type is not checked for its type (same as {})' => sub {
    # POST /users with {} fails validation, not 415; a token POST with no body succeeds.
    my $r = refused('empty POST /api/v1/users', 400, 'VALIDATION_ERROR',
        headers => { 'Content-Type' => undef }, fields => [qw(email name roles)]);
    $r = $s->req(POST => "/api/v1/users/$viewer->{id}/tokens", token => $admin,
        headers => { 'Content-Type' => undef });
    created_ok($r, 'empty POST /api/v1/users/{id}/tokens');
    $r = refused('empty POST with Content-Type: text/plain', 400, 'VALIDATION_ERROR',
        headers => { 'Content-Type' => 'text/plain' }, raw => '',
        fields => [qw(email name roles)]);
};

# ---- 400 MALFORMED_JSON ----------------------------------------------------------------

subtest '400 MALFORMED_JSON for each malformed body' => sub {
    my $user = '"email":"m@example.test","name":"M","roles":["VIEWER"]';
    my @cases = (
        [ 'invalid JSON'                  => '{"email":}' ],
        [ 'unterminated object'           => '{' . $user ],
        [ 'single quotes'                 => "{'email':'m\@example.test'}" ],
        [ 'trailing comma'                => "{$user,}" ],
        [ 'a comment'                     => "{$user /* hi */}" ],
        [ 'invalid UTF-8 (FF)'            => "{$user,\"x\":\"\xFF\"}" ],
        [ 'invalid UTF-8 in a name'       => "{\"name\":\"a\xE9b\",\"email\":\"m\@e.t\",\"roles\":[\"VIEWER\"]}" ],
        [ 'overlong form C0 AF'           => "{$user,\"x\":\"\xC0\xAF\"}" ],
        [ 'overlong form E0 80 AF'        => "{$user,\"x\":\"\xE0\x80\xAF\"}" ],
        [ 'lone surrogate raw (ED A0 80)' => "{$user,\"x\":\"\xED\xA0\x80\"}" ],
        [ 'escaped lone surrogate \ud800' => "{$user,\"x\":\"\\ud800\"}" ],
        [ 'escaped lone low surrogate \udc00' => "{$user,\"x\":\"\\udc00\"}" ],
        [ 'escaped \ud800 then not a low surrogate' => "{$user,\"x\":\"\\ud800\\u0041\"}" ],
        [ 'escaped lone surrogate in a member name' => "{$user,\"\\ud800\":1}" ],
        [ 'a byte-order mark'             => "\xEF\xBB\xBF{$user}" ],
        [ 'duplicate member names'        => "{$user,\"email\":\"n\@example.test\"}" ],
        [ 'duplicate member names, one escaped' => "{$user,\"em\\u0061il\":\"n\@example.test\"}" ],
        [ 'duplicate member names in a nested object' => "{$user,\"x\":{\"a\":1,\"a\":2}}" ],
        [ 'a top-level array'             => "[{$user}]" ],
        [ 'a top-level string'            => '"hello"' ],
        [ 'a top-level number'            => '42' ],
        [ 'a top-level null'              => 'null' ],
        [ 'a top-level true'              => 'true' ],
        [ 'trailing garbage'              => "{$user} x" ],
        [ 'two objects'                   => "{$user}{}" ],
        [ 'only white space'              => '   ' ],
    );
    for my $c (@cases) {
        refused($c->[0], 400, 'MALFORMED_JSON', raw => $c->[1], details => {});
    }
};

subtest 'nesting: 32 levels parse (then fail validation), 33 are MALFORMED_JSON' => sub {
    my $nest = sub {    # the body object is level 1; each array adds one
        my ($levels) = @_;
        my $n = $levels - 1;
        return '{"deep":' . ('[' x $n) . (']' x $n) . '}';
    };
    refused('32 levels', 400, 'VALIDATION_ERROR', raw => $nest->(32),
        fields => [qw(deep email name roles)]);
    refused('33 levels', 400, 'MALFORMED_JSON', raw => $nest->(33), details => {});
    my $objs = sub {
        my ($levels) = @_;
        return ('{"a":' x ($levels - 1)) . '{}' . ('}' x ($levels - 1));
    };
    refused('32 levels of objects', 400, 'VALIDATION_ERROR', raw => $objs->(32),
        fields => [qw(a email name roles)]);
    refused('33 levels of objects', 400, 'MALFORMED_JSON', raw => $objs->(33), details => {});
    refused('1000 levels', 400, 'MALFORMED_JSON', raw => $nest->(1000), details => {});
};

subtest 'valid escapes and a surrogate pair are accepted' => sub {
    my $r = $s->req(POST => '/api/v1/users', token => $admin, idem => 1,
        raw => '{"email":"esc' . $$ . '@example.test","name":"A \ud83d\ude00 \u00e9 \/ \"q\"",'
            . '"roles":["VIEWER"]}');
    created_ok($r, 'escapes');
    is $r->{json}{data}{name}, "A \x{1F600} \x{e9} / \"q\"", 'decoded name';
};

subtest 'PUT and PATCH need a body: an empty one is MALFORMED_JSON, whatever its type' => sub {
    my $creator = $s->new_user($admin, roles => ['CREATOR']);
    for my $ct (undef, 'application/json', 'text/plain') {
        my $shown = $ct // 'no Content-Type';
        error_ok($s->req(PUT => '/api/v1/approval-rules', token => $admin,
            headers => { 'Content-Type' => $ct }), 400, 'MALFORMED_JSON',
            "empty PUT /api/v1/approval-rules, $shown", details => {});
        # MALFORMED_JSON comes before the 404 of an object that does not exist.
        error_ok($s->req(PATCH => '/api/v1/requests/999999', token => $creator->{token},
            headers => { 'Content-Type' => $ct }), 400, 'MALFORMED_JSON',
            "empty PATCH /api/v1/requests/999999, $shown", details => {});
    }
    my ($rules) = $s->dbh->selectrow_array(
        'SELECT COUNT(*) FROM approval_rules WHERE org_id = ?', undef, $org->{orgId});
    is $rules, 0, 'no approval rule was stored';
};

subtest 'a chunked body is read whole (no Content-Length from the client)' => sub {
    my $body = $JSON->encode(a_user());
    my $half = int(length($body) / 2);
    my $raw = "POST /api/v1/users HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        . "Authorization: Bearer $admin\r\nIdempotency-Key: " . Remit::Test::random_key()
        . "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        . sprintf("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", $half, substr($body, 0, $half),
            length($body) - $half, substr($body, $half));
    my $r = parse_http_response($s->raw_http($raw));
    created_ok($r, 'chunked');
    is $r->{json}{data}{email}, $JSON->decode($body)->{email}, 'chunked: the user as sent';
};

# ---- 400 IDEMPOTENCY_KEY_* -------------------------------------------------------------

subtest '400 IDEMPOTENCY_KEY_MISSING on POST /api/v1/users without the header' => sub {
    refused('no Idempotency-Key', 400, 'IDEMPOTENCY_KEY_MISSING', json => a_user(),
        idem => undef, details => {});
};

subtest '400 IDEMPOTENCY_KEY_INVALID for a malformed key' => sub {
    my @bad = (
        [ 'empty'                 => '' ],
        [ 'empty sf-string'       => '""' ],
        [ 'unterminated quote'    => '"abc' ],
        [ 'a space inside'        => 'a b' ],
        [ 'a quoted space'        => '"a b"' ],
        [ '256 characters'        => 'k' x 256 ],
        [ 'a bad escape'          => '"a\\nb"' ],
        [ 'bytes after the quote' => '"abc"d' ],
        [ 'a control character'   => "\"a\tb\"" ],
    );
    for my $c (@bad) {
        my $r = refused("Idempotency-Key $c->[0]", 400, 'IDEMPOTENCY_KEY_INVALID',
            json => a_user(), idem => $c->[1], details => {});
    }
    # HTTP::Tiny refuses to send a byte outside ASCII in a header: write the request out.
    my $body = $JSON->encode(a_user());
    my $before = state_of();
    my $r = parse_http_response($s->raw_http("POST /api/v1/users HTTP/1.1\r\n"
        . "Host: localhost\r\nConnection: close\r\nAuthorization: Bearer $admin\r\n"
        . "Idempotency-Key: k\xE9y\r\nContent-Type: application/json\r\n"
        . 'Content-Length: ' . length($body) . "\r\n\r\n$body"));
    error_ok($r, 400, 'IDEMPOTENCY_KEY_INVALID', 'Idempotency-Key a non-ASCII byte',
        details => {});
    is state_of(), $before, 'Idempotency-Key a non-ASCII byte: nothing changed';
};

subtest 'a 255-character key, a quoted key and escapes in it are accepted' => sub {
    created_ok($s->req(POST => '/api/v1/users', token => $admin, json => a_user(),
        idem => 'k' . ('x' x 249) . sprintf('%05d', $$ % 100000)), '255 characters');
    created_ok($s->req(POST => '/api/v1/users', token => $admin, json => a_user(),
        idem => "\"q-$$-\\\"-\\\\\""), 'sf-string with escapes');
};

# ---- 400 VALIDATION_ERROR --------------------------------------------------------------

subtest '400 VALIDATION_ERROR names an unknown field' => sub {
    refused('unknown field', 400, 'VALIDATION_ERROR', json => a_user(nickname => 'x'),
        fields => ['nickname']);
    refused('two unknown fields', 400, 'VALIDATION_ERROR', json => a_user(x => 1, y => undef),
        fields => [qw(x y)]);
};

subtest '400 VALIDATION_ERROR names each missing required field' => sub {
    refused('no fields', 400, 'VALIDATION_ERROR', json => {}, fields => [qw(email name roles)]);
    for my $f (qw(email name roles)) {
        my $u = a_user();
        delete $u->{$f};
        refused("no $f", 400, 'VALIDATION_ERROR', json => $u, fields => [$f]);
        refused("$f null", 400, 'VALIDATION_ERROR', json => a_user($f => undef), fields => [$f]);
    }
};

subtest '400 VALIDATION_ERROR names each field of the wrong type' => sub {
    refused('name a number', 400, 'VALIDATION_ERROR', json => a_user(name => 5),
        fields => ['name']);
    refused('email an array', 400, 'VALIDATION_ERROR', json => a_user(email => ['a@b.c']),
        fields => ['email']);
    refused('name an object', 400, 'VALIDATION_ERROR', json => a_user(name => { a => 1 }),
        fields => ['name']);
    refused('name true', 400, 'VALIDATION_ERROR', json => a_user(name => JSON::PP::true),
        fields => ['name']);
    refused('roles a string', 400, 'VALIDATION_ERROR', json => a_user(roles => 'VIEWER'),
        fields => ['roles']);
    refused('all three wrong', 400, 'VALIDATION_ERROR',
        json => { email => 1, name => [], roles => {} }, fields => [qw(email name roles)]);
};

subtest 'too long counts code points: 140 emoji pass, 141 fail' => sub {
    my $emoji = "\x{1F600}";
    my $r = $s->req(POST => '/api/v1/users', token => $admin, idem => 1,
        json => a_user(name => $emoji x 140));
    created_ok($r, '140 emoji');
    is $r->{json}{data}{name}, $emoji x 140, '140 emoji: the name as sent';
    my ($stored) = $s->dbh->selectrow_array('SELECT name FROM users WHERE id = ?', undef,
        $r->{json}{data}{id});
    utf8::decode($stored) unless utf8::is_utf8($stored);
    is $stored, $emoji x 140, '140 emoji: stored as full UTF-8';
    refused('141 emoji', 400, 'VALIDATION_ERROR', json => a_user(name => $emoji x 141),
        fields => ['name']);
    created_ok($s->req(POST => '/api/v1/users', token => $admin, idem => 1,
        json => a_user(name => 'é' x 140)), '140 two-byte characters');
    refused('141 ASCII', 400, 'VALIDATION_ERROR', json => a_user(name => 'n' x 141),
        fields => ['name']);
    refused('empty name', 400, 'VALIDATION_ERROR', json => a_user(name => ''),
        fields => ['name']);
};

subtest 'control characters are refused (U+0000 escaped, U+001F, U+007F, U+0085)' => sub {
    my $u = '"email":"c@example.test","roles":["VIEWER"]';
    my @cases = (
        [ 'U+0000 escaped \u0000' => "{$u,\"name\":\"a\\u0000b\"}" ],
        [ 'U+001F escaped'        => "{$u,\"name\":\"a\\u001fb\"}" ],
        [ 'U+000A escaped \n'     => "{$u,\"name\":\"a\\nb\"}" ],
        [ 'U+007F raw'            => "{$u,\"name\":\"a\x7Fb\"}" ],
        [ 'U+007F escaped'        => "{$u,\"name\":\"a\\u007fb\"}" ],
        [ 'U+0085 raw (C2 85)'    => "{$u,\"name\":\"a\xC2\x85b\"}" ],
        [ 'U+0085 escaped'        => "{$u,\"name\":\"a\\u0085b\"}" ],
        [ 'U+009F escaped'        => "{$u,\"name\":\"a\\u009Fb\"}" ],
    );
    for my $c (@cases) {
        refused($c->[0], 400, 'VALIDATION_ERROR', raw => $c->[1], fields => ['name']);
    }
    refused('U+0000 in the email', 400, 'VALIDATION_ERROR',
        raw => '{"email":"c\u0000@example.test","name":"C","roles":["VIEWER"]}',
        fields => ['email']);
    created_ok($s->req(POST => '/api/v1/users', token => $admin, idem => 1,
        json => a_user(name => "a\x{A0}b\x{2028}c")), 'U+00A0 and U+2028 are not Cc: accepted');
};

subtest '400 VALIDATION_ERROR for a bad limit on GET /api/v1/users' => sub {
    for my $q ('limit=0', 'limit=201', 'limit=abc', 'limit=', 'limit=-1', 'limit=1.5',
        'limit=01', 'limit=1&limit=2', 'limit=99999999999999999999') {
        error_ok($s->req(GET => "/api/v1/users?$q", token => $admin), 400, 'VALIDATION_ERROR',
            "?$q", fields => ['limit']);
    }
    for my $q ('limit=1', 'limit=200') {
        is $s->req(GET => "/api/v1/users?$q", token => $admin)->{status}, 200, "?$q: 200";
    }
};

subtest '400 VALIDATION_ERROR names an unknown query parameter' => sub {
    error_ok($s->req(GET => '/api/v1/users?foo=1', token => $admin), 400, 'VALIDATION_ERROR',
        'GET /api/v1/users?foo=1', fields => ['foo']);
    error_ok($s->req(GET => '/api/v1/users?limit=5&bar', token => $admin), 400,
        'VALIDATION_ERROR', 'GET /api/v1/users?limit=5&bar', fields => ['bar']);
    error_ok($s->req(GET => '/api/v1/users?cursor=xyz', token => $admin), 400,
        'VALIDATION_ERROR', 'a bad cursor', fields => ['cursor']);
    error_ok($s->req(GET => '/api/v1/me?x=1', token => $admin), 400, 'VALIDATION_ERROR',
        'GET /api/v1/me?x=1', fields => ['x']);
    refused('POST /api/v1/users?dryRun=1', 400, 'VALIDATION_ERROR',
        path => '/api/v1/users?dryRun=1', json => a_user(), fields => ['dryRun']);
};

subtest 'GET /healthz refuses an unknown query parameter too' => sub {
    error_ok($s->req(GET => '/healthz?verbose=1'), 400, 'VALIDATION_ERROR', '/healthz?verbose=1',
        fields => ['verbose']);
    is $s->req(GET => '/healthz')->{status}, 200, '/healthz: 200';
};

# ---- precedence ------------------------------------------------------------------------

subtest 'precedence: no token + unknown path → 401' => sub {
    my $r = $s->req(GET => '/api/v1/no-such-thing');
    error_ok($r, 401, 'UNAUTHENTICATED', 'no token, unknown path', details => {});
    like $r->{headers}{'www-authenticate'} // '', qr/^Bearer\b/, 'WWW-Authenticate: Bearer';
    error_ok($s->req(PUT => '/api/v1/users', json => {}), 401, 'UNAUTHENTICATED',
        'no token, wrong method');
    refused('no token, bad body, no key', 401, 'UNAUTHENTICATED', token => undef,
        raw => '{bad', idem => undef, headers => { 'Content-Type' => 'text/plain' });
};

subtest 'precedence: unknown path / wrong method before the role' => sub {
    error_ok($s->req(GET => '/api/v1/nope', token => $viewer->{token}), 404, 'NOT_FOUND',
        'VIEWER, unknown path');
    error_ok($s->req(DELETE => '/api/v1/users', token => $viewer->{token}), 405,
        'METHOD_NOT_ALLOWED', 'VIEWER, wrong method on an ADMIN route');
};

subtest 'precedence: wrong role + bad body → 403' => sub {
    refused('VIEWER, bad JSON', 403, 'FORBIDDEN', token => $viewer->{token}, raw => '{bad',
        details => {});
    refused('VIEWER, text/plain', 403, 'FORBIDDEN', token => $viewer->{token},
        json => a_user(), headers => { 'Content-Type' => 'text/plain' });
    refused('VIEWER, no key, invalid fields', 403, 'FORBIDDEN', token => $viewer->{token},
        json => { bogus => 1 }, idem => undef);
};

subtest 'precedence: bad Content-Type + bad JSON → 415' => sub {
    refused('text/plain and bad JSON', 415, 'UNSUPPORTED_MEDIA_TYPE', raw => '{bad',
        headers => { 'Content-Type' => 'text/plain' }, idem => undef);
};

subtest 'precedence: bad JSON + missing key → MALFORMED_JSON' => sub {
    refused('bad JSON, no key', 400, 'MALFORMED_JSON', raw => '{bad', idem => undef);
    refused('bad JSON, bad key', 400, 'MALFORMED_JSON', raw => '[]', idem => 'a b');
};

subtest 'precedence: missing key + invalid fields → IDEMPOTENCY_KEY_MISSING' => sub {
    refused('no key, invalid fields', 400, 'IDEMPOTENCY_KEY_MISSING', json => { bogus => 1 },
        idem => undef);
    refused('bad key, invalid fields', 400, 'IDEMPOTENCY_KEY_INVALID', json => { bogus => 1 },
        idem => '');
};

subtest 'precedence: unknown id before validation (404 before VALIDATION_ERROR)' => sub {
    error_ok($s->req(POST => '/api/v1/users/999999/tokens', token => $admin,
        json => { bogus => 1, name => 5 }), 404, 'NOT_FOUND', 'unknown user, bad body',
        details => {});
};

subtest 'details is always an object' => sub {
    my @r = (
        $s->req(GET => '/api/v1/me'),
        $s->req(GET => '/api/v1/nope', token => $admin),
        $s->req(PUT => '/api/v1/me', token => $admin, json => {}),
        $s->req(POST => '/api/v1/users', token => $viewer->{token}, idem => 1, json => {}),
        $s->req(POST => '/api/v1/users', token => $admin, idem => 1, raw => 'x' x 70000),
        $s->req(POST => '/api/v1/users', token => $admin, idem => 1, raw => '{}',
            headers => { 'Content-Type' => 'text/plain' }),
        $s->req(POST => '/api/v1/users', token => $admin, idem => 1, raw => '[1]'),
        $s->req(POST => '/api/v1/users', token => $admin, json => {}),
        $s->req(POST => '/api/v1/users', token => $admin, idem => 1, json => {}),
    );
    for my $r (@r) {
        my $e = ref $r->{json} eq 'HASH' ? $r->{json}{error} : undef;
        ok ref $e eq 'HASH' && ref $e->{details} eq 'HASH',
            "$r->{status} " . ($e->{code} // '?') . ': details is an object';
    }
};

done_testing;
