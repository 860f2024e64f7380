use strict;
use warnings;
use utf8;

use Test::More;
use Digest::SHA qw(sha256_hex);
use Remit::Test;

# doc/openapi.yaml#Authentication, #paths (me, users, tokens): bearer tokens, roles, organisation isolation, and
# tokens stored only as their SHA-256.

binmode(Test::More->builder->$_, ':encoding(UTF-8)') for qw(output failure_output todo_output);

my $s = Remit::Test->stack;
my $org = $s->new_org;
my $admin = $org->{token};
my $other = $s->new_org;    # a second organisation, never visible from the first

my $TIME_RE = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
my $TOKEN_RE = qr/^[A-Za-z0-9_-]{22,}$/;    # ≥ 128 bits of base64url, whatever the prefix
my @ROLES = qw(ADMIN CREATOR APPROVER TREASURER VIEWER);
my $seq = 0;

sub count {
    my ($sql, @bind) = @_;
    return scalar $s->dbh->selectrow_array($sql, undef, @bind);
}

sub users_of  { count('SELECT COUNT(*) FROM users WHERE org_id = ?', $_[0]{orgId}) }
sub tokens_of { count('SELECT COUNT(*) FROM tokens WHERE org_id = ?', $_[0]{orgId}) }
sub events_of { count('SELECT COUNT(*) FROM audit_events WHERE org_id = ?', $_[0]{orgId}) }
sub state_of  { join ' ', 'users=' . users_of($_[0]), 'tokens=' . tokens_of($_[0]),
    'audit=' . events_of($_[0]) }

# The id of the tokens row whose hash is the token's SHA-256.
sub token_id { count('SELECT id FROM tokens WHERE token_hash = UNHEX(?)', sha256_hex($_[0])) }

sub email { my $n = ++$seq; "user$n-$$\@example.test" }

sub create_user {
    my ($token, %u) = @_;
    return $s->req(POST => '/api/v1/users', token => $token, idem => 1,
        json => { email => email(), name => "User $seq", roles => ['VIEWER'], %u });
}

sub unauthenticated_ok {
    my ($r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_error $r, 401, 'UNAUTHENTICATED', "$name: 401 UNAUTHENTICATED";
    like $r->{headers}{'www-authenticate'} // '', qr/^Bearer\b/, "$name: WWW-Authenticate: Bearer";
    is_deeply $r->{json}{error}{details}, {}, "$name: details {}";
}

# ---- 401 -------------------------------------------------------------------------------

subtest '401 with WWW-Authenticate: Bearer for a missing Authorization header' => sub {
    unauthenticated_ok($s->req(GET => '/api/v1/me'), 'GET /api/v1/me');
    my $before = state_of($org);
    unauthenticated_ok($s->req(POST => '/api/v1/users', idem => 1,
        json => { email => email(), name => 'X', roles => ['ADMIN'] }), 'POST /api/v1/users');
    is state_of($org), $before, 'nothing changed';
};

subtest '401 for a wrong scheme' => sub {
    for my $h ("Basic " . 'YWRtaW46YWRtaW4=', "Token $admin", "Bearer", "Bearer ", $admin,
        "Bearer:$admin", "Bearertoken $admin") {
        unauthenticated_ok($s->req(GET => '/api/v1/me', headers => { Authorization => $h }),
            "Authorization: " . substr($h, 0, 20));
    }
};

subtest 'the scheme is case-insensitive (RFC 9110 §11.1)' => sub {
    for my $scheme (qw(bearer BEARER)) {
        my $r = $s->req(GET => '/api/v1/me', headers => { Authorization => "$scheme $admin" });
        is $r->{status}, 200, "$scheme: 200";
    }
};

subtest '401 for an unknown token' => sub {
    # The same shape as a real one, with other characters.
    # The same prefix and length as a real one, other characters.
    my ($prefix, $rest) = $admin =~ /^([a-z]+_)(.*)$/ or die "token shape: $admin";
    (my $unknown = $rest) =~ tr/A-Za-z0-9/B-ZAb-za1-90/;
    $unknown = $prefix . $unknown;
    isnt $unknown, $admin, 'a different token';
    is length $unknown, length $admin, 'of the same length';
    unauthenticated_ok($s->req(GET => '/api/v1/me', token => $unknown), 'unknown token');
    my $before = state_of($org);
    unauthenticated_ok($s->req(POST => '/api/v1/users', token => $unknown, idem => 1,
        json => { email => email(), name => 'X', roles => ['ADMIN'] }), 'unknown token, POST');
    is state_of($org), $before, 'nothing changed';
};

subtest '401 for a malformed token' => sub {
    my @bad = (
        [ 'too short'          => substr($admin, 0, -1) ],
        [ 'too long'           => $admin . 'A' ],
        [ 'a space inside'     => substr($admin, 0, 10) . ' ' . substr($admin, 11) ],
        [ 'non-ASCII'          => 'é' x 10 ],
        [ 'empty-looking'      => '""' ],
        [ 'another prefix'     => 'xxx_' . substr($admin, 4) ],
        [ 'two tokens'         => "$admin,$admin" ],
    );
    for my $c (@bad) {
        my $v = $c->[1];
        utf8::encode($v);
        my $r = parse_http_response($s->raw_http("GET /api/v1/me HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\nAuthorization: Bearer $v\r\n\r\n"));
        unauthenticated_ok($r, $c->[0]);
    }
};

subtest 'DELETE /api/v1/tokens/{id} revokes: 204, then 401; again 204 and no second event' => sub {
    my $u = $s->new_user($admin, roles => ['VIEWER']);
    is $s->req(GET => '/api/v1/me', token => $u->{token})->{status}, 200, 'the token works';
    my $id = token_id($u->{token});
    ok $id, 'its row';
    my $revoked = sub {
        count("SELECT COUNT(*) FROM audit_events WHERE org_id = ? AND action = 'token.revoked'"
            . ' AND object_id = ?', $org->{orgId}, $id);
    };
    is $revoked->(), 0, 'no token.revoked event yet';

    my $r = $s->req(DELETE => "/api/v1/tokens/$id", token => $admin);
    is $r->{status}, 204, 'status 204';
    is $r->{body}, '', 'no body';
    like $r->{headers}{'x-request-id'} // '', qr/\S/, 'X-Request-Id';
    unauthenticated_ok($s->req(GET => '/api/v1/me', token => $u->{token}), 'the revoked token');
    ok count('SELECT revoked_at IS NOT NULL FROM tokens WHERE id = ?', $id), 'revoked_at is set';
    is $revoked->(), 1, 'one token.revoked event';
    my $actor = count("SELECT actor_id FROM audit_events WHERE org_id = ? AND action = 'token.revoked'"
        . ' AND object_id = ?', $org->{orgId}, $id);
    is $actor, $org->{userId}, 'the event names the admin as actor';

    my $before = state_of($org);
    $r = $s->req(DELETE => "/api/v1/tokens/$id", token => $admin);
    is $r->{status}, 204, 'revoking again: 204';
    is $revoked->(), 1, 'still one token.revoked event';
    is state_of($org), $before, 'nothing else changed';
    unauthenticated_ok($s->req(GET => '/api/v1/me', token => $u->{token}), 'still revoked');

    my $t2 = $s->req(POST => "/api/v1/users/$u->{id}/tokens", token => $admin, json => {});
    is $t2->{status}, 201, 'the user gets a new token';
    is $s->req(GET => '/api/v1/me', token => $t2->{json}{data}{token})->{status}, 200,
        'which works';
};

subtest 'an admin may revoke their own token; it stops working at once' => sub {
    my $a2 = $s->new_user($admin, roles => ['ADMIN']);
    my $id = token_id($a2->{token});
    is $s->req(DELETE => "/api/v1/tokens/$id", token => $a2->{token})->{status}, 204, 'status 204';
    unauthenticated_ok($s->req(GET => '/api/v1/me', token => $a2->{token}), 'afterwards');
};

# ---- 403 -------------------------------------------------------------------------------

subtest '403 FORBIDDEN on every ADMIN route for each other role' => sub {
    my $target = $s->new_user($admin, roles => ['VIEWER']);
    my $tid = token_id($target->{token});
    my %u = map { $_ => $s->new_user($admin, roles => [$_]) } qw(CREATOR APPROVER TREASURER VIEWER);
    $u{'CREATOR+APPROVER+TREASURER+VIEWER'} = $s->new_user($admin,
        roles => [qw(CREATOR APPROVER TREASURER VIEWER)]);
    for my $role (sort keys %u) {
        my $t = $u{$role}{token};
        my $before = state_of($org);
        my $r = create_user($t);
        is_error $r, 403, 'FORBIDDEN', "$role: POST /api/v1/users";
        is_deeply $r->{json}{error}{details}, {}, "$role: POST /api/v1/users: details {}";
        is_error $s->req(GET => '/api/v1/users', token => $t), 403, 'FORBIDDEN',
            "$role: GET /api/v1/users";
        is_error $s->req(POST => "/api/v1/users/$target->{id}/tokens", token => $t, json => {}),
            403, 'FORBIDDEN', "$role: POST /api/v1/users/{id}/tokens";
        is_error $s->req(POST => "/api/v1/users/$u{$role}{id}/tokens", token => $t, json => {}),
            403, 'FORBIDDEN', "$role: POST tokens for oneself";
        is_error $s->req(DELETE => "/api/v1/tokens/$tid", token => $t), 403, 'FORBIDDEN',
            "$role: DELETE /api/v1/tokens/{id}";
        is state_of($org), $before, "$role: nothing changed";
    }
    is $s->req(GET => '/api/v1/me', token => $target->{token})->{status}, 200,
        'the target token still works';
    my $both = $s->new_user($admin, roles => [qw(VIEWER ADMIN)]);
    is create_user($both->{token})->{status}, 201, 'ADMIN with another role may create users';
};

# ---- GET /api/v1/me --------------------------------------------------------------------

subtest 'GET /api/v1/me answers {id, email, name, roles, orgId} for each role' => sub {
    my $r = $s->req(GET => '/api/v1/me', token => $admin);
    is $r->{status}, 200, 'bootstrap admin: 200';
    my $d = $r->{json}{data};
    is $d->{id}, $org->{userId}, 'bootstrap admin: id';
    is $d->{orgId}, $org->{orgId}, 'bootstrap admin: orgId';
    is_deeply $d->{roles}, ['ADMIN'], 'bootstrap admin: roles';
    for my $role (@ROLES, 'two roles') {
        my $roles = $role eq 'two roles' ? [qw(TREASURER CREATOR)] : [$role];
        my $u = $s->new_user($admin, roles => $roles, name => "Ünïcode $role 🙂");
        $r = $s->req(GET => '/api/v1/me', token => $u->{token});
        is $r->{status}, 200, "$role: 200";
        $d = $r->{json}{data};
        ok !grep({ !exists $d->{$_} } qw(id email name roles orgId)),
            "$role: has id, email, name, roles, orgId";
        ok !ref $d->{id} && !ref $d->{orgId}, "$role: ids are strings";
        is $d->{id}, $u->{id}, "$role: id";
        is $d->{email}, $u->{email}, "$role: email";
        is $d->{name}, "Ünïcode $role 🙂", "$role: name";
        is $d->{orgId}, $org->{orgId}, "$role: orgId";
        my %want = map { $_ => 1 } @$roles;
        is_deeply $d->{roles}, [ grep { $want{$_} } @ROLES ], "$role: roles";
        ok !exists $d->{token} && !exists $d->{tokenHash}, "$role: no token in it";
    }
};

# ---- POST /api/v1/users ----------------------------------------------------------------

subtest 'POST /api/v1/users: 201 with the user' => sub {
    my $before = users_of($org);
    my $email = 'Mixed.Case-' . $$ . '@Example.TEST';
    my $r = $s->req(POST => '/api/v1/users', token => $admin, idem => 1,
        json => { email => $email, name => 'Ada Lovelace', roles => [qw(VIEWER CREATOR)] });
    is $r->{status}, 201, 'status 201';
    my $d = $r->{json}{data};
    like $d->{id}, qr/^\S+$/, 'an id';
    is $d->{email}, $email, 'email as given';
    is $d->{name}, 'Ada Lovelace', 'name';
    is_deeply $d->{roles}, [qw(CREATOR VIEWER)], 'roles';
    is $d->{orgId}, $org->{orgId}, 'orgId';
    like $d->{createdAt} // '', $TIME_RE, 'createdAt RFC 3339 UTC with milliseconds'
        if exists $d->{createdAt};
    is users_of($org), $before + 1, 'one user more';
    is count("SELECT COUNT(*) FROM audit_events WHERE org_id = ? AND action = 'user.created'"
        . ' AND object_id = ?', $org->{orgId}, $d->{id}), 1, 'one user.created event';
    my ($row) = $s->dbh->selectall_array('SELECT org_id, email, roles FROM users WHERE id = ?',
        undef, $d->{id});
    is_deeply $row, [ $org->{orgId}, $email, 2 | 16 ], 'stored in the organisation';
};

subtest 'a duplicate email, compared case-insensitively, is 409 CONFLICT' => sub {
    my $email = "dup-$$\@example.test";
    is create_user($admin, email => $email)->{status}, 201, 'the first';
    for my $again ($email, uc $email, "Dup-$$\@Example.Test") {
        my $before = state_of($org);
        my $r = create_user($admin, email => $again);
        is_error $r, 409, 'CONFLICT', "$again: 409 CONFLICT";
        is state_of($org), $before, "$again: nothing changed";
    }
    is create_user($other->{token}, email => $email)->{status}, 201,
        'the same email in another organisation is fine';
    # Only A-Z are folded: É and é are different addresses.
    is create_user($admin, email => "\x{c9}-$$\@example.test")->{status}, 201, 'É…';
    is create_user($admin, email => "\x{e9}-$$\@example.test")->{status}, 201, 'é… is another';
};

subtest 'roles must be a non-empty array of known roles (VALIDATION_ERROR on roles)' => sub {
    my @bad = (
        [ 'empty'            => [] ],
        [ 'unknown'          => ['BOSS'] ],
        [ 'lower case'       => ['admin'] ],
        [ 'one unknown'      => [ 'VIEWER', 'ROOT' ] ],
        [ 'not an array'     => 'ADMIN' ],
        [ 'an object'        => { ADMIN => 1 } ],
        [ 'a number inside'  => [1] ],
        [ 'null inside'      => [undef] ],
        [ 'nested array'     => [['ADMIN']] ],
        [ 'null'             => undef ],
    );
    for my $c (@bad) {
        my $before = state_of($org);
        my $r = create_user($admin, roles => $c->[1]);
        is_error $r, 400, 'VALIDATION_ERROR', "roles $c->[0]: 400";
        is_deeply [ keys %{ $r->{json}{error}{details} // {} } ], ['roles'],
            "roles $c->[0]: details name roles";
        is state_of($org), $before, "roles $c->[0]: nothing changed";
    }
};

subtest 'email: one @, text on each side, at most 254 characters' => sub {
    my @bad = (
        [ 'no @'            => "noat$$.example.test" ],
        [ 'two @'           => "a\@b\@example.test" ],
        [ 'nothing before'  => '@example.test' ],
        [ 'nothing after'   => "a$$\@" ],
        [ 'only @'          => '@' ],
        [ 'empty'           => '' ],
        [ '255 characters'  => ('a' x 242) . '@example.test' ],
        [ 'a control char'  => "a\tb\@example.test" ],
        [ 'a number'        => 42 ],
    );
    for my $c (@bad) {
        my $before = state_of($org);
        my $r = create_user($admin, email => $c->[1]);
        is_error $r, 400, 'VALIDATION_ERROR', "email $c->[0]: 400";
        is_deeply [ keys %{ $r->{json}{error}{details} // {} } ], ['email'],
            "email $c->[0]: details name email";
        is state_of($org), $before, "email $c->[0]: nothing changed";
    }
    my $long = substr("l$$" . ('a' x 300), 0, 241) . '@example.test';
    is length $long, 254, 'a 254-character address';
    my $r = create_user($admin, email => $long);
    is $r->{status}, 201, '254 characters: 201';
    is $r->{json}{data}{email}, $long, '254 characters: stored whole';
    is create_user($admin, email => "a\@b")->{status}, 201, 'a@b: 201';
    my $emoji = ('😀' x 240) . "$seq\@x.y";
    $emoji = substr($emoji, length($emoji) - 254);
    is create_user($admin, email => $emoji)->{status}, 201,
        '254 code points of emoji (more than 254 bytes): 201';
};

subtest 'name: 1..140 characters' => sub {
    is_error create_user($admin, name => ''), 400, 'VALIDATION_ERROR', 'empty name';
    is_error create_user($admin, name => 'n' x 141), 400, 'VALIDATION_ERROR', '141 characters';
    is create_user($admin, name => 'n' x 140)->{status}, 201, '140: 201';
};

# ---- tokens ----------------------------------------------------------------------------

subtest 'POST /api/v1/users/{id}/tokens: 201 {id, token, createdAt}, no Idempotency-Key' => sub {
    my $r = create_user($admin, roles => [qw(CREATOR)]);
    my $uid = $r->{json}{data}{id};
    my $before = tokens_of($org);
    my $t = $s->req(POST => "/api/v1/users/$uid/tokens", token => $admin,
        json => { name => 'ci runner' });
    is $t->{status}, 201, '201 without an Idempotency-Key';
    my $d = $t->{json}{data};
    like $d->{id} // '', qr/^\S+$/, 'id';
    like $d->{token} // '', $TOKEN_RE, 'a long random token';
    like $d->{createdAt} // '', $TIME_RE, 'createdAt';
    is tokens_of($org), $before + 1, 'one token more';
    is count("SELECT COUNT(*) FROM audit_events WHERE org_id = ? AND action = 'token.created'"
        . ' AND object_id = ?', $org->{orgId}, $d->{id}), 1, 'one token.created event';
    is count('SELECT name FROM tokens WHERE id = ?', $d->{id}), 'ci runner', 'its name';

    my $me = $s->req(GET => '/api/v1/me', token => $d->{token});
    is $me->{status}, 200, 'the token works';
    is $me->{json}{data}{id}, $uid, 'for that user';
    is_deeply $me->{json}{data}{roles}, ['CREATOR'], 'with their roles';

    # The key is ignored: a replay would show the token twice.
    my @again = map { $s->req(POST => "/api/v1/users/$uid/tokens", token => $admin,
        idem => 'same-key', json => {}) } 1 .. 2;
    is_deeply [ map { $_->{status} } @again ], [ 201, 201 ], 'the same key twice: 201 twice';
    isnt $again[0]{json}{data}{token}, $again[1]{json}{data}{token}, 'two different tokens';
    ok !$again[1]{headers}{'idempotent-replayed'}, 'no replay';
    is tokens_of($org), $before + 3, 'three tokens made';
};

subtest 'token name: optional, at most 140 characters, no unknown fields' => sub {
    my $uid = create_user($admin)->{json}{data}{id};
    my $before = state_of($org);
    is_error $s->req(POST => "/api/v1/users/$uid/tokens", token => $admin,
        json => { name => 'n' x 141 }), 400, 'VALIDATION_ERROR', '141 characters';
    is_error $s->req(POST => "/api/v1/users/$uid/tokens", token => $admin,
        json => { name => 5 }), 400, 'VALIDATION_ERROR', 'a number';
    is_error $s->req(POST => "/api/v1/users/$uid/tokens", token => $admin,
        json => { label => 'x' }), 400, 'VALIDATION_ERROR', 'an unknown field';
    is_error $s->req(POST => "/api/v1/users/$uid/tokens", token => $admin,
        raw => '{"name":"a\u0007b"}'), 400, 'VALIDATION_ERROR', 'a control character';
    is state_of($org), $before, 'nothing changed';
    is $s->req(POST => "/api/v1/users/$uid/tokens", token => $admin,
        json => { name => 'n' x 140 })->{status}, 201, '140 characters: 201';
    is $s->req(POST => "/api/v1/users/$uid/tokens", token => $admin,
        json => { name => undef })->{status}, 201, 'null: 201';
};

subtest 'tokens are stored only as SHA-256' => sub {
    my $u = $s->new_user($admin, roles => ['VIEWER']);
    my $dbh = $s->dbh;
    for my $t ([ 'bootstrap' => $admin ], [ 'API' => $u->{token} ]) {
        my ($label, $token) = @$t;
        my $rows = $dbh->selectall_arrayref('SELECT * FROM tokens', { Slice => {} });
        my @leaks = grep { my $row = $_; grep { defined && index($_, $token) >= 0 } values %$row }
            @$rows;
        is scalar @leaks, 0, "$label: no column of tokens holds the token text";
        # Compared as hex: DBI would re-encode a binary Perl string bound as text.
        my $hex = $dbh->selectcol_arrayref('SELECT LOWER(HEX(token_hash)) FROM tokens');
        is scalar(grep { $_ eq sha256_hex($token) } @$hex), 1,
            "$label: one row has token_hash = sha256(token)";
        for my $table (qw(audit_events idempotency_keys users)) {
            my $all = $dbh->selectall_arrayref("SELECT * FROM $table");
            my $hits = grep { grep { defined && index($_, $token) >= 0 } @$_ } @$all;
            is $hits, 0, "$label: not in $table either";
        }
    }
    my ($n) = $dbh->selectrow_array('SELECT COUNT(*) FROM tokens WHERE LENGTH(token_hash) <> 32');
    is $n, 0, 'every hash is 32 bytes';
};

# ---- isolation -------------------------------------------------------------------------

subtest "another organisation's user id answers 404 exactly like an unknown id" => sub {
    my $foreign = $s->new_user($other->{token}, roles => ['VIEWER']);
    my $max = count('SELECT MAX(id) FROM users');
    my $before = join ' ', state_of($org), state_of($other);
    my $theirs = $s->req(POST => "/api/v1/users/$foreign->{id}/tokens", token => $admin,
        json => {});
    my $none = $s->req(POST => '/api/v1/users/' . ($max + 1000) . '/tokens', token => $admin,
        json => {});
    is_error $theirs, 404, 'NOT_FOUND', 'foreign user: 404';
    is_error $none, 404, 'NOT_FOUND', 'unknown user: 404';
    is $theirs->{body}, $none->{body}, 'the same body (code, message, details)';
    is $theirs->{headers}{'content-type'}, $none->{headers}{'content-type'}, 'same content type';
    is join(' ', state_of($org), state_of($other)), $before, 'no token made anywhere';
    # With a body that would fail validation: still the 404, not a different answer.
    my $theirs2 = $s->req(POST => "/api/v1/users/$foreign->{id}/tokens", token => $admin,
        json => { bogus => 1 });
    my $none2 = $s->req(POST => '/api/v1/users/' . ($max + 1000) . '/tokens', token => $admin,
        json => { bogus => 1 });
    is_error $theirs2, 404, 'NOT_FOUND', 'foreign user, bad body: 404';
    is $theirs2->{body}, $none2->{body}, 'same as an unknown id with that body';
};

subtest "another organisation's token id in DELETE answers 404 and stays valid" => sub {
    my $foreign = $s->new_user($other->{token}, roles => ['VIEWER']);
    my $tid = token_id($foreign->{token});
    my $max = count('SELECT MAX(id) FROM tokens');
    my $theirs = $s->req(DELETE => "/api/v1/tokens/$tid", token => $admin);
    my $none = $s->req(DELETE => '/api/v1/tokens/' . ($max + 1000), token => $admin);
    is_error $theirs, 404, 'NOT_FOUND', 'foreign token: 404';
    is $theirs->{body}, $none->{body}, 'identical to an unknown id';
    ok !count('SELECT revoked_at IS NOT NULL FROM tokens WHERE id = ?', $tid), 'not revoked';
    is $s->req(GET => '/api/v1/me', token => $foreign->{token})->{status}, 200, 'still works';
};

subtest 'GET /api/v1/users never lists a foreign user' => sub {
    my %foreign = map { $_ => 1 } @{ $s->dbh->selectcol_arrayref(
        'SELECT id FROM users WHERE org_id <> ?', undef, $org->{orgId}) };
    ok scalar(keys %foreign) >= 2, 'there are users in the other organisation';
    my (@ids, $cursor);
    for (1 .. 1000) {
        my $r = $s->req(GET => '/api/v1/users?limit=7' . (defined $cursor ? "&cursor=$cursor" : ''),
            token => $admin);
        is $r->{status}, 200, 'a page' or last;
        push @ids, map { $_->{id} } @{ $r->{json}{data} };
        ok !grep({ $_->{orgId} ne $org->{orgId} } @{ $r->{json}{data} }), 'only our orgId'
            or last;
        $cursor = $r->{json}{nextCursor} // last;
    }
    is scalar(grep { $foreign{$_} } @ids), 0, 'no foreign id';
    is scalar @ids, users_of($org), 'every user of ours';
    # And the other way round.
    my $r = $s->req(GET => '/api/v1/users?limit=200', token => $other->{token});
    my %ours = map { $_ => 1 } @ids;
    is scalar(grep { $ours{ $_->{id} } } @{ $r->{json}{data} }), 0, 'they do not see ours';
};

subtest 'GET /api/v1/users pages with limit and cursor, newest first' => sub {
    my $o = $s->new_org;
    my @made = ($o->{userId});
    push @made, create_user($o->{token}, name => "P$_")->{json}{data}{id} for 1 .. 6;
    my $all = $s->req(GET => '/api/v1/users', token => $o->{token});
    is $all->{status}, 200, 'default page: 200';
    is_deeply [ map { $_->{id} } @{ $all->{json}{data} } ], [ reverse @made ],
        'newest first, all 7';
    ok exists $all->{json}{nextCursor} && !defined $all->{json}{nextCursor}, 'nextCursor null';
    my $u = $all->{json}{data}[0];
    ok !grep({ !exists $u->{$_} } qw(id email name roles orgId)), 'users have the me shape';

    my (@pages, $cursor);
    for (1 .. 10) {
        my $r = $s->req(GET => '/api/v1/users?limit=3' . (defined $cursor ? "&cursor=$cursor" : ''),
            token => $o->{token});
        is $r->{status}, 200, 'page ' . (@pages + 1) or last;
        push @pages, [ map { $_->{id} } @{ $r->{json}{data} } ];
        ok exists $r->{json}{nextCursor}, 'nextCursor is present';
        $cursor = $r->{json}{nextCursor};
        last unless defined $cursor;
        ok !ref $cursor && length $cursor, 'an opaque string cursor';
    }
    is_deeply [ map { scalar @$_ } @pages ], [ 3, 3, 1 ], 'pages of 3, 3, 1';
    is_deeply [ map { @$_ } @pages ], [ reverse @made ], 'together: all, newest first, once';

    my $exact = $s->req(GET => '/api/v1/users?limit=7', token => $o->{token});
    is scalar @{ $exact->{json}{data} }, 7, 'limit = count: all';
    ok !defined $exact->{json}{nextCursor}, 'limit = count: nextCursor null';
    my $one = $s->req(GET => '/api/v1/users?limit=6', token => $o->{token});
    ok defined $one->{json}{nextCursor}, 'limit = count - 1: a cursor';
    my $last = $s->req(GET => "/api/v1/users?limit=6&cursor=$one->{json}{nextCursor}",
        token => $o->{token});
    is_deeply [ map { $_->{id} } @{ $last->{json}{data} } ], [ $made[0] ], 'then the oldest';
    ok !defined $last->{json}{nextCursor}, 'and null';
    # A cursor from another organisation's list shows nothing of theirs.
    my $mine = $s->req(GET => "/api/v1/users?limit=200&cursor=$one->{json}{nextCursor}",
        token => $admin);
    is $mine->{status}, 200, "another list's cursor: 200";
    ok !grep({ $_->{orgId} ne $org->{orgId} } @{ $mine->{json}{data} }), 'only our users';
};

done_testing;
