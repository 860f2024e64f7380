use strict;
use warnings;
use utf8;

use Test::More;
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(time);
use Remit::Test;

# API §7 and the v1.1 rows of §5: invitations, passwords, sessions, sign-out, the sign-in
# throttle, own API tokens and their revocation, deactivation and the last active ADMIN.
# The clock is moved through the database (expires_at, locked_until), never with sleeps.

binmode(Test::More->builder->$_, ':encoding(UTF-8)') for qw(output failure_output todo_output);

my $s = Remit::Test->stack;
my $org = $s->new_org;
my $admin = $org->{token};

my $TIME_RE = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
my $PW = 'correct horse battery staple';
my @USER_KEYS = sort qw(id email name roles orgId createdAt active);

sub one { scalar $s->dbh->selectrow_array($_[0], undef, @_[1 .. $#_]) }
sub events { one('SELECT COUNT(*) FROM audit_events WHERE org_id = ? AND action = ?', $_[0], $_[1]) }

sub email_of { one('SELECT email FROM users WHERE id = ?', $_[0]) }

sub invite {
    my ($uid, $token) = @_;
    my $r = $s->req(POST => "/api/v1/users/$uid/invitations", token => $token // $admin, json => {});
    die "invite: $r->{status} $r->{body}" unless $r->{status} == 201;
    return $r->{json}{data}{token};
}

sub accept_inv {
    my ($inv, $pw, %o) = @_;
    return $s->req(POST => '/api/v1/invitations/accept', json => { token => $inv, password => $pw }, %o);
}

sub sign_in {
    my ($org_id, $email, $pw, %o) = @_;
    return $s->req(POST => '/api/v1/sessions',
        json => { orgId => $org_id, email => $email, password => $pw }, %o);
}

# A user with an API token and a password: {id, token, email, password}.
sub person {
    my ($roles, $adm) = @_;
    my $u = $s->new_user($adm // $admin, roles => $roles // ['VIEWER']);
    my $r = accept_inv(invite($u->{id}, $adm), $PW);
    die "accept: $r->{status} $r->{body}" unless $r->{status} == 200;
    return { %$u, password => $PW };
}

sub session_of {
    my ($u, $org_id) = @_;
    my $r = sign_in($org_id // $org->{orgId}, $u->{email}, $u->{password});
    die "sign in: $r->{status} $r->{body}" unless $r->{status} == 201;
    return $r->{json}{data}{token};
}

sub clear_throttle { $s->dbh->do('DELETE FROM sign_in_throttle') }

# What a client can tell apart in a response, X-Request-Id and Date aside.
sub shape {
    my ($r) = @_;
    my %h = %{ $r->{headers} };
    return join "\n", "status $r->{status}", (map { "$_: $h{$_}" }
        grep { !/^(x-request-id|date|content-length|connection|server)$/ } sort keys %h), $r->{body};
}

# ---- invitations and passwords -----------------------------------------------------------

subtest 'bootstrap prints an invitation that lets the first ADMIN set a password' => sub {
    like $org->{invitation}, qr/^[A-Za-z0-9_-]{22,}$/, 'bootstrap printed "invitation", a token string';
    is one('SELECT COUNT(*) FROM invitations WHERE token_hash = UNHEX(?)', sha256_hex($org->{invitation})),
        1, 'stored as its SHA-256';
    is one('SELECT COUNT(*) FROM invitations WHERE HEX(token_hash) LIKE ?', '%' . unpack('H*', $org->{invitation}) . '%'),
        0, 'never in clear';
    my $before = events($org->{orgId}, 'user.password_set');
    my $r = accept_inv($org->{invitation}, $PW);
    is $r->{status}, 200, 'accept: 200' or diag $r->{body};
    is_deeply [ sort keys %{ $r->{json}{data} } ], \@USER_KEYS, 'the user, with active';
    is $r->{json}{data}{id}, $org->{userId}, 'the bootstrap ADMIN';
    like one('SELECT password_hash FROM users WHERE id = ?', $org->{userId}), qr/^\$argon2id\$v=19\$m=65536,t=2,p=1\$/,
        'stored as Argon2id at the default cost (64 MiB, 2 passes)';
    unlike $r->{body}, qr/password|argon/i, 'neither password nor hash in the answer';
    is events($org->{orgId}, 'user.password_set'), $before + 1, 'user.password_set audited';
    is one('SELECT actor_id FROM audit_events WHERE org_id = ? AND action = ? ORDER BY id DESC LIMIT 1',
        $org->{orgId}, 'user.password_set'), $org->{userId}, 'the actor is the user';
    $org->{email} = email_of($org->{userId});
    is sign_in($org->{orgId}, $org->{email}, $PW)->{status}, 201, 'the ADMIN signs in';
    clear_throttle();
};

subtest 'an invitation is one-time: used, it answers INVITATION_INVALID' => sub {
    my $u = $s->new_user($admin);
    my $inv = invite($u->{id});
    is accept_inv($inv, $PW)->{status}, 200, 'first use: 200';
    my $hash = one('SELECT password_hash FROM users WHERE id = ?', $u->{id});
    is_error accept_inv($inv, 'another password 12'), 400, 'INVITATION_INVALID', 'second use: 400 INVITATION_INVALID';
    is one('SELECT password_hash FROM users WHERE id = ?', $u->{id}), $hash, 'password unchanged';
    ok one('SELECT used_at IS NOT NULL FROM invitations WHERE token_hash = UNHEX(?)', sha256_hex($inv)), 'marked used';
};

subtest 'POST /users/{id}/invitations: 201 {token, expiresAt, mail} 72 h; a new one voids the old' => sub {
    my $u = $s->new_user($admin);
    my $n = events($org->{orgId}, 'user.invited');
    my $r = $s->req(POST => "/api/v1/users/$u->{id}/invitations", token => $admin, json => {});
    is $r->{status}, 201, '201 without an Idempotency-Key';
    is_deeply [ sort keys %{ $r->{json}{data} } ], [qw(expiresAt mail token)], 'exactly {token, expiresAt, mail}';
    is $r->{json}{data}{mail}, 'off', 'mail "off": no smtp_url, the ADMIN passes the link on';
    is one('SELECT COUNT(*) FROM invitation_mails WHERE user_id = ?', $u->{id}), 0, 'and no token kept for a mail';
    like $r->{json}{data}{expiresAt}, $TIME_RE, 'expiresAt is a timestamp';
    is one('SELECT TIMESTAMPDIFF(SECOND, created_at, expires_at) FROM invitations WHERE token_hash = UNHEX(?)',
        sha256_hex($r->{json}{data}{token})), 72 * 3600, 'valid 72 h';
    is events($org->{orgId}, 'user.invited'), $n + 1, 'user.invited audited';
    my $old = $r->{json}{data}{token};
    my $new = invite($u->{id});
    is_error accept_inv($old, $PW), 400, 'INVITATION_INVALID', 'the earlier one is void';
    ok one('SELECT voided_at IS NOT NULL FROM invitations WHERE token_hash = UNHEX(?)', sha256_hex($old)), 'voided_at set';
    is accept_inv($new, $PW)->{status}, 200, 'the new one works';
    my $replay = $s->req(POST => "/api/v1/users/$u->{id}/invitations", token => $admin, json => {},
        idem => 'same-key');
    my $again = $s->req(POST => "/api/v1/users/$u->{id}/invitations", token => $admin, json => {},
        idem => 'same-key');
    isnt $again->{json}{data}{token}, $replay->{json}{data}{token}, 'an Idempotency-Key is ignored: a new secret';
};

subtest 'invitations: roles, unknown users, bad bodies, deactivated users' => sub {
    my $v = $s->new_user($admin, roles => ['CREATOR']);
    my $other = $s->new_org;
    my $n = one('SELECT COUNT(*) FROM invitations');
    is_error $s->req(POST => "/api/v1/users/$v->{id}/invitations", token => $v->{token}, json => {}),
        403, 'FORBIDDEN', 'a CREATOR: 403';
    is_error $s->req(POST => '/api/v1/users/999999/invitations', token => $admin, json => {}),
        404, 'NOT_FOUND', 'unknown user: 404';
    is_error $s->req(POST => "/api/v1/users/$other->{userId}/invitations", token => $admin, json => {}),
        404, 'NOT_FOUND', "another organisation's user: 404";
    my $r = $s->req(POST => "/api/v1/users/$v->{id}/invitations", token => $admin, json => { x => 1 });
    is_error $r, 400, 'VALIDATION_ERROR', 'an unknown field: 400';
    is_error $s->req(POST => "/api/v1/users/$v->{id}/invitations", json => {}),
        401, 'UNAUTHENTICATED', 'no token: 401';
    is one('SELECT COUNT(*) FROM invitations'), $n, 'no invitation made';
    is $s->req(PATCH => "/api/v1/users/$v->{id}", token => $admin, json => { active => JSON::PP::false })->{status},
        200, 'deactivated';
    $r = $s->req(POST => "/api/v1/users/$v->{id}/invitations", token => $admin, json => {});
    is_error $r, 409, 'INVALID_STATE', 'inviting a deactivated user: 409';
    is $r->{json}{error}{details}{reason}, 'USER_INACTIVE', 'reason USER_INACTIVE';
    is one('SELECT COUNT(*) FROM invitations'), $n, 'still none';
};

subtest 'an invitation expires after 72 h (clock moved in the database)' => sub {
    my $u = $s->new_user($admin);
    my $inv = invite($u->{id});
    $s->dbh->do('UPDATE invitations SET created_at = created_at - INTERVAL 72 HOUR,'
        . ' expires_at = expires_at - INTERVAL 72 HOUR WHERE token_hash = UNHEX(?)', undef, sha256_hex($inv));
    is_error accept_inv($inv, $PW), 400, 'INVITATION_INVALID', 'expired: 400 INVITATION_INVALID';
    ok !defined one('SELECT password_hash FROM users WHERE id = ?', $u->{id}), 'no password set';
    $inv = invite($u->{id});
    $s->dbh->do('UPDATE invitations SET created_at = created_at - INTERVAL 72 HOUR,'
        . ' expires_at = expires_at - INTERVAL 72 HOUR + INTERVAL 2 SECOND WHERE token_hash = UNHEX(?)',
        undef, sha256_hex($inv));
    is accept_inv($inv, $PW)->{status}, 200, 'a second before its end it still works';
};

subtest 'accept checks types, then the token, then the password rules' => sub {
    my $u = $s->new_user($admin);
    my $inv = invite($u->{id});
    my $email = $u->{email};
    my %cases = (
        'no body'               => [ {}, 'VALIDATION_ERROR', [qw(password token)] ],
        'token a number'        => [ { token => 5, password => $PW }, 'VALIDATION_ERROR', ['token'] ],
        'password null'         => [ { token => $inv, password => undef }, 'VALIDATION_ERROR', ['password'] ],
        'unknown field'         => [ { token => $inv, password => $PW, x => 1 }, 'VALIDATION_ERROR', ['x'] ],
        'unknown token, short password' => [ { token => 'rmi_nope', password => 'short' }, 'INVITATION_INVALID' ],
        'an API token'          => [ { token => $admin, password => $PW }, 'INVITATION_INVALID' ],
        '11 characters'         => [ { token => $inv, password => 'a' x 11 }, 'VALIDATION_ERROR', ['password'] ],
        '257 characters'        => [ { token => $inv, password => 'a' x 257 }, 'VALIDATION_ERROR', ['password'] ],
        'a control character'   => [ { token => $inv, password => "abcdefghijkl\tm" }, 'VALIDATION_ERROR', ['password'] ],
        'U+0085 (C1 control)'   => [ { token => $inv, password => "abcdefghijkl\x{85}" }, 'VALIDATION_ERROR', ['password'] ],
        'the email'             => [ { token => $inv, password => $email }, 'VALIDATION_ERROR', ['password'] ],
        'the email, upper-case' => [ { token => $inv, password => uc $email }, 'VALIDATION_ERROR', ['password'] ],
    );
    for my $name (sort keys %cases) {
        my ($body, $code, $fields) = @{ $cases{$name} };
        my $r = $s->req(POST => '/api/v1/invitations/accept', json => $body);
        is_error $r, 400, $code, "$name: 400 $code";
        is_deeply [ sort keys %{ $r->{json}{error}{details} } ], $fields, "$name: details name @$fields"
            if $fields;
    }
    ok !defined one('SELECT password_hash FROM users WHERE id = ?', $u->{id}), 'no password set';
    ok !one('SELECT used_at IS NOT NULL FROM invitations WHERE token_hash = UNHEX(?)', sha256_hex($inv)),
        'the invitation is still unused';
    # 12 code points of 4 bytes each: lengths count characters, not bytes.
    my $r = accept_inv($inv, "😀" x 12);
    is $r->{status}, 200, '12 emoji: 200' or diag $r->{body};
    my $v = $s->new_user($admin);
    is accept_inv(invite($v->{id}), 'é' x 256)->{status}, 200, '256 characters: 200';
    is sign_in($org->{orgId}, $u->{email}, "😀" x 12)->{status}, 201, 'and signs in with it';
};

subtest 'accepting ends the user\'s sessions and clears the failure count' => sub {
    my $u = person();
    my $sess = session_of($u);
    my $tok_ok = $s->req(GET => '/api/v1/me', token => $u->{token})->{status};
    sign_in($org->{orgId}, $u->{email}, 'wrong password here') for 1 .. 3;
    my $key_rows = one('SELECT COUNT(*) FROM sign_in_throttle');
    ok $key_rows >= 1, 'failures counted';
    is accept_inv(invite($u->{id}), 'a brand new password')->{status}, 200, 'accept: 200';
    is_error $s->req(GET => '/api/v1/me', token => $sess), 401, 'UNAUTHENTICATED', 'the old session: 401';
    is $s->req(GET => '/api/v1/me', token => $u->{token})->{status}, $tok_ok, 'API tokens are untouched';
    is one('SELECT COUNT(*) FROM sign_in_throttle'), $key_rows - 1, 'its count cleared';
    is_error sign_in($org->{orgId}, $u->{email}, $PW), 401, 'INVALID_CREDENTIALS', 'the old password fails';
    is sign_in($org->{orgId}, $u->{email}, 'a brand new password')->{status}, 201, 'the new one works';
    clear_throttle();
};

# ---- sessions ----------------------------------------------------------------------------

subtest 'POST /sessions: 201 {token, expiresAt, user}, 12 h; a bearer token like any other' => sub {
    my $u = person(['CREATOR']);
    my $n = events($org->{orgId}, 'session.created');
    my $r = sign_in($org->{orgId}, uc $u->{email}, $PW, headers => { 'Idempotency-Key' => 'ignored' });
    is $r->{status}, 201, '201, the email compared case-insensitively' or diag $r->{body};
    my $d = $r->{json}{data};
    is_deeply [ sort keys %$d ], [qw(expiresAt token user)], 'exactly {token, expiresAt, user}';
    is_deeply [ sort keys %{ $d->{user} } ], \@USER_KEYS, 'the user representation';
    is $d->{user}{id}, $u->{id}, 'the user';
    like $d->{expiresAt}, $TIME_RE, 'expiresAt';
    my $row = $s->dbh->selectrow_hashref('SELECT kind, TIMESTAMPDIFF(SECOND, created_at, expires_at) AS life,'
        . ' user_id FROM tokens WHERE token_hash = UNHEX(?)', undef, sha256_hex($d->{token}));
    is_deeply $row, { kind => 'session', life => 12 * 3600, user_id => $u->{id} }, 'stored hashed, 12 h';
    is events($org->{orgId}, 'session.created'), $n + 1, 'session.created audited';
    my $me = $s->req(GET => '/api/v1/me', token => $d->{token});
    is $me->{status}, 200, 'GET /me with the session';
    is $me->{json}{data}{authenticatedBy}, 'session', 'authenticatedBy session';
    is $me->{json}{data}{expiresAt}, $d->{expiresAt}, 'expiresAt of the session';
    $me = $s->req(GET => '/api/v1/me', token => $u->{token});
    is $me->{json}{data}{authenticatedBy}, 'token', 'with an API token: token';
    ok exists $me->{json}{data}{expiresAt} && !defined $me->{json}{data}{expiresAt}, 'expiresAt null';
    is $s->req(POST => '/api/v1/batches', token => $d->{token}, idem => 1, json => { name => 'by a person' })->{status},
        201, 'the session carries the roles';
    $s->dbh->do('UPDATE tokens SET expires_at = NOW(3) - INTERVAL 1 SECOND WHERE token_hash = UNHEX(?)',
        undef, sha256_hex($d->{token}));
    is_error $s->req(GET => '/api/v1/me', token => $d->{token}), 401, 'UNAUTHENTICATED', 'expired: 401';
};

subtest 'the four ways to fail are one INVALID_CREDENTIALS, alike in body' => sub {
    my $u = person();
    my $nopw = $s->new_user($admin);
    my $gone = person();
    $s->req(PATCH => "/api/v1/users/$gone->{id}", token => $admin, json => { active => JSON::PP::false });
    my $n = one('SELECT COUNT(*) FROM tokens WHERE kind = ?', 'session');
    my $ev = one('SELECT COUNT(*) FROM audit_events');
    my %cases = (
        'unknown organisation' => [ '999999', $u->{email}, $PW ],
        'an orgId that is no id' => [ 'acme', $u->{email}, $PW ],
        'unknown email'        => [ $org->{orgId}, "nobody-$$\@example.test", $PW ],
        'inactive user'        => [ $org->{orgId}, $gone->{email}, $PW ],
        'no password yet'      => [ $org->{orgId}, $nopw->{email}, $PW ],
        'wrong password'       => [ $org->{orgId}, $u->{email}, "$PW!" ],
        'password of another org user' => [ $org->{orgId}, $u->{email}, 'matrix password 2' ],
    );
    my %shapes;
    for my $name (sort keys %cases) {
        my $r = sign_in(@{ $cases{$name} });
        is_error $r, 401, 'INVALID_CREDENTIALS', "$name: 401 INVALID_CREDENTIALS";
        $shapes{ shape($r) }++;
    }
    is scalar(keys %shapes), 1, 'every failure looks the same (status, headers, body)'
        or diag join "\n---\n", keys %shapes;
    is one('SELECT COUNT(*) FROM tokens WHERE kind = ?', 'session'), $n, 'no session made';
    is one('SELECT COUNT(*) FROM audit_events'), $ev, 'failed sign-ins are not audited';
    clear_throttle();
};

subtest 'sign-in: bad bodies, and the no-token exceptions are exactly those methods' => sub {
    for my $case ([ {}, [qw(email orgId password)] ], [ { orgId => 1, email => 'a@b', password => 'x' }, ['orgId'] ],
        [ { orgId => '1', email => 'a@b', password => 'x', remember => JSON::PP::true }, ['remember'] ]) {
        my $r = $s->req(POST => '/api/v1/sessions', json => $case->[0]);
        is_error $r, 400, 'VALIDATION_ERROR', 'VALIDATION_ERROR naming ' . "@{ $case->[1] }";
        is_deeply [ sort keys %{ $r->{json}{error}{details} } ], $case->[1], 'details';
    }
    is_error $s->req(POST => '/api/v1/sessions', raw => '{bad'), 400, 'MALFORMED_JSON', 'bad JSON: 400';
    is_error $s->req(POST => '/api/v1/sessions', raw => '{}', headers => { 'Content-Type' => 'text/plain' }),
        415, 'UNSUPPORTED_MEDIA_TYPE', 'text/plain: 415';
    is_error $s->req(GET => '/api/v1/sessions'), 401, 'UNAUTHENTICATED', 'GET /sessions without a token: 401';
    is_error $s->req(GET => '/api/v1/sessions', token => $admin), 405, 'METHOD_NOT_ALLOWED', 'with one: 405';
    is_error $s->req(GET => '/api/v1/invitations/accept'), 401, 'UNAUTHENTICATED', 'GET accept without a token: 401';
    is_error $s->req(DELETE => '/api/v1/sessions/current'), 401, 'UNAUTHENTICATED', 'sign-out without a token: 401';
    is_error $s->req(POST => '/api/v1/sessions/current', json => {}), 401, 'UNAUTHENTICATED', 'POST /sessions/current: 401';
    clear_throttle();
};

subtest 'DELETE /sessions/current ends that session only; with an API token 404' => sub {
    my $u = person();
    my ($one, $two) = (session_of($u), session_of($u));
    my $n = events($org->{orgId}, 'session.ended');
    my $revoked = one('SELECT COUNT(*) FROM tokens WHERE revoked_at IS NOT NULL');
    is_error $s->req(DELETE => '/api/v1/sessions/current', token => $u->{token}), 404, 'NOT_FOUND',
        'with an API token: 404';
    is one('SELECT COUNT(*) FROM tokens WHERE revoked_at IS NOT NULL'), $revoked, 'nothing revoked';
    my $r = $s->req(DELETE => '/api/v1/sessions/current', token => $one);
    is $r->{status}, 204, 'sign-out: 204';
    is $r->{body}, '', 'no body';
    is_error $s->req(GET => '/api/v1/me', token => $one), 401, 'UNAUTHENTICATED', 'that session: 401';
    is $s->req(GET => '/api/v1/me', token => $two)->{status}, 200, 'the other session lives';
    is $s->req(GET => '/api/v1/me', token => $u->{token})->{status}, 200, 'the API token lives';
    is events($org->{orgId}, 'session.ended'), $n + 1, 'session.ended audited';
    is_error $s->req(DELETE => '/api/v1/sessions/current', token => $one), 401, 'UNAUTHENTICATED', 'twice: 401';
};

# ---- the throttle ------------------------------------------------------------------------

sub throttle_key {
    my ($org_id, $email) = @_;
    return sha256_hex(length($org_id) . ':' . length($email) . ':' . $org_id . lc_az($email));
}

sub throttle_row {
    my ($org_id, $email) = @_;
    my $key = throttle_key($org_id, $email);
    return $s->dbh->selectrow_hashref('SELECT failures, locked_until,'
        . ' TIMESTAMPDIFF(MICROSECOND, NOW(3), locked_until) / 1e6 AS left_s'
        . ' FROM sign_in_throttle WHERE key_hash = UNHEX(?)', undef, $key);
}
sub lc_az { my $e = shift; $e =~ tr/A-Z/a-z/; $e }
sub unlock { $s->dbh->do('UPDATE sign_in_throttle SET locked_until = NOW(3) - INTERVAL 1 SECOND') }

subtest 'throttle: 5 failures, then 429 TOO_MANY_ATTEMPTS with Retry-After doubling to 900 s' => sub {
    clear_throttle();
    my $u = person();
    my @f = ($org->{orgId}, $u->{email});
    for my $i (1 .. 5) {
        is_error sign_in(@f, "wrong $i password"), 401, 'INVALID_CREDENTIALS', "failure $i: 401";
    }
    my $row = throttle_row(@f);
    is $row->{failures}, 5, 'five failures counted';
    my $r = sign_in(@f, $PW);
    is_error $r, 429, 'TOO_MANY_ATTEMPTS', 'the right password now: 429';
    is $r->{headers}{'retry-after'}, '1', 'Retry-After: 1 (2^0)';
    my $after = throttle_row(@f);
    is_deeply [ @$after{qw(failures locked_until)} ], [ @$row{qw(failures locked_until)} ],
        'a 429 neither counts nor extends the lock';
    # From here the lock is moved in the database, so that a slow machine cannot outrun it.
    $s->dbh->do('UPDATE sign_in_throttle SET locked_until = NOW(3) + INTERVAL 60 SECOND');
    $row = throttle_row(@f);
    is_error sign_in($f[0], uc $f[1], 'x' x 20), 429, 'TOO_MANY_ATTEMPTS', 'the email in upper case: same key';
    is_error sign_in(@f, 'wrong again!'), 429, 'TOO_MANY_ATTEMPTS', 'a wrong password: 429 as well';
    $after = throttle_row(@f);
    is_deeply [ @$after{qw(failures locked_until)} ], [ @$row{qw(failures locked_until)} ],
        'neither counted nor extended';
    for my $n (6 .. 15) {
        unlock();
        is_error sign_in(@f, 'still wrong pass'), 401, 'INVALID_CREDENTIALS', "failure $n: 401";
        my $want = 2**($n - 5) > 900 ? 900 : 2**($n - 5);
        $row = throttle_row(@f);
        ok $row->{left_s} > $want - 1.5 && $row->{left_s} <= $want,
            "locked for $want s from the failure's answer (left: $row->{left_s} s)";
        my $r429 = sign_in(@f, $PW);
        is $r429->{status}, 429, "after failure $n: 429";
        # The time left, rounded up: $want, or one less when a second went by meanwhile.
        like $r429->{headers}{'retry-after'} // '', qr/^(?:$want|@{[ $want - 1 ]})$/, "Retry-After $want";
    }
    is $row->{failures}, 15, '15 failures counted';
    $s->dbh->do('UPDATE sign_in_throttle SET locked_until = NOW(3) + INTERVAL 2500000 MICROSECOND');
    is sign_in(@f, $PW)->{headers}{'retry-after'}, '3', 'Retry-After is the time left, rounded up';
    unlock();
    is sign_in(@f, $PW)->{status}, 201, 'lock over, right password: 201';
    ok !defined throttle_row(@f), 'a success clears the count';
    is_error sign_in(@f, 'wrong again pass'), 401, 'INVALID_CREDENTIALS', 'a failure after: 401';
    is throttle_row(@f)->{failures}, 1, 'counting starts over';
    clear_throttle();
};

subtest 'throttle: unknown addresses and organisations count exactly like known ones' => sub {
    clear_throttle();
    for my $f ([ $org->{orgId}, "ghost-$$\@example.test" ], [ '987654', "ghost-$$\@example.test" ]) {
        is sign_in(@$f, 'any password 1')->{status}, 401, "$f->[0]/$f->[1]: 401" for 1 .. 5;
        my $r = sign_in(@$f, 'any password 1');
        is_error $r, 429, 'TOO_MANY_ATTEMPTS', "$f->[0]: the 6th: 429";
        is $r->{headers}{'retry-after'}, '1', 'Retry-After: 1';
    }
    clear_throttle();
};

subtest 'throttle: concurrent attempts get no more password checks than the count allows' => sub {
    clear_throttle();
    my $u = person();
    # 14 failures and the lock over: the next failure (the 15th) locks for 900 s, so the
    # outcome does not depend on how the 12 requests spread in time on a loaded machine.
    $s->dbh->do('INSERT INTO sign_in_throttle (key_hash, failures) VALUES (UNHEX(?), 14)', undef,
        throttle_key($org->{orgId}, $u->{email}));
    my $rs = $s->req_together(12, POST => '/api/v1/sessions',
        json => { orgId => $org->{orgId}, email => $u->{email}, password => 'wrong password!!' });
    my %n;
    $n{ $_->{status} }++ for @$rs;
    is $n{401}, 1, 'one of 12 concurrent wrong attempts had its password checked (401)'
        or diag explain \%n;
    is $n{429}, 11, 'the other 11: 429 without a hash';
    my $row = throttle_row($org->{orgId}, $u->{email});
    is $row->{failures}, 15, '15 failures counted';
    ok $row->{left_s} > 890, 'locked for 900 s';
    clear_throttle();
};

subtest 'indistinguishable in time: unknown email within 3x of a wrong password (20 tries each)' => sub {
    clear_throttle();
    my $u = person();
    my %t = (unknown => 0, wrong => 0);
    for my $i (1 .. 20) {
        for my $kind (qw(wrong unknown)) {
            clear_throttle();
            my $t0 = time;
            my $r = $kind eq 'wrong' ? sign_in($org->{orgId}, $u->{email}, "wrong password $i")
                : sign_in($org->{orgId}, "nobody-$i\@example.test", "wrong password $i");
            $t{$kind} += time - $t0;
            die "$kind: $r->{status}" unless $r->{status} == 401;
        }
    }
    my $ratio = $t{unknown} / $t{wrong};
    diag sprintf 'unknown email %.1f ms, wrong password %.1f ms per attempt (ratio %.2f)',
        $t{unknown} * 50, $t{wrong} * 50, $ratio;
    ok $ratio > 1 / 3 && $ratio < 3, 'unknown / wrong within 3x either way';
    ok $t{wrong} / 20 > 0.02, 'a wrong password costs a real hash (> 20 ms)';
    clear_throttle();
};

# ---- own API tokens ----------------------------------------------------------------------

subtest 'POST/GET /me/tokens: the caller\'s own tokens, admin-made ones included, never sessions' => sub {
    my $u = person(['VIEWER']);
    my $sess = session_of($u);
    my $r = $s->req(POST => '/api/v1/me/tokens', token => $sess, json => { name => 'laptop' });
    is $r->{status}, 201, 'a VIEWER mints a token for themselves, no Idempotency-Key' or diag $r->{body};
    is_deeply [ sort keys %{ $r->{json}{data} } ], [qw(createdAt id name token)], '{id, token, name, createdAt}';
    my $mine = $r->{json}{data};
    is $s->req(GET => '/api/v1/me', token => $mine->{token})->{json}{data}{id}, $u->{id}, 'it is theirs';
    is one('SELECT user_id FROM tokens WHERE token_hash = UNHEX(?)', sha256_hex($mine->{token})), $u->{id}, 'owner';
    is $s->req(POST => '/api/v1/me/tokens', token => $sess)->{status}, 201, 'an empty POST: {} (no name)';
    is_error $s->req(POST => '/api/v1/me/tokens', token => $sess, json => { name => 'x' x 141 }),
        400, 'VALIDATION_ERROR', 'name of 141: 400';
    $r = $s->req(GET => '/api/v1/me/tokens', token => $sess);
    is $r->{status}, 200, 'GET: 200';
    my @ids = map { $_->{id} } @{ $r->{json}{data} };
    my @want = @{ $s->dbh->selectcol_arrayref(
        q{SELECT id FROM tokens WHERE user_id = ? AND kind = 'token' AND revoked_at IS NULL ORDER BY id DESC},
        undef, $u->{id}) };
    is_deeply \@ids, \@want, 'exactly the unrevoked API tokens, newest first (the admin-made one too)';
    is scalar(@want), 3, 'three of them';
    ok !(grep { exists $_->{token} } @{ $r->{json}{data} }), 'no secret';
    is_deeply [ sort keys %{ $r->{json}{data}[0] } ], [qw(createdAt id name)], '{id, name, createdAt}';
    is $r->{json}{nextCursor}, undef, 'nextCursor null';
    my $p = $s->req(GET => '/api/v1/me/tokens?limit=2', token => $sess);
    is scalar(@{ $p->{json}{data} }), 2, 'paged';
    my $q = $s->req(GET => "/api/v1/me/tokens?limit=2&cursor=$p->{json}{nextCursor}", token => $sess);
    is_deeply [ map { $_->{id} } @{ $p->{json}{data} }, @{ $q->{json}{data} } ], \@want, 'pages join up';
    is_error $s->req(GET => '/api/v1/me/tokens?x=1', token => $sess), 400, 'VALIDATION_ERROR', 'unknown parameter';
};

subtest 'DELETE /tokens/{id}: owner or ADMIN; 404 before 403; sessions are no tokens' => sub {
    my $u = person(['CREATOR']);
    my $other = person(['APPROVER']);
    my $mk = sub { $s->req(POST => '/api/v1/me/tokens', token => $_[0]{token}, json => {})->{json}{data}{id} };
    my $n = events($org->{orgId}, 'token.revoked');
    my $theirs = $mk->($other);
    my $revoked = one('SELECT COUNT(*) FROM tokens WHERE revoked_at IS NOT NULL');
    is_error $s->req(DELETE => "/api/v1/tokens/$theirs", token => $u->{token}), 403, 'FORBIDDEN',
        "someone else's, not ADMIN: 403";
    is_error $s->req(DELETE => '/api/v1/tokens/99999999', token => $u->{token}), 404, 'NOT_FOUND', 'unknown: 404';
    my $foreign = $s->new_org;
    my $fid = one('SELECT id FROM tokens WHERE token_hash = UNHEX(?)', sha256_hex($foreign->{token}));
    is_error $s->req(DELETE => "/api/v1/tokens/$fid", token => $u->{token}), 404, 'NOT_FOUND', 'another org: 404';
    is_error $s->req(DELETE => "/api/v1/tokens/$fid", token => $admin), 404, 'NOT_FOUND', 'another org, ADMIN: 404';
    my $sess = session_of($other);
    my $sid = one('SELECT id FROM tokens WHERE token_hash = UNHEX(?)', sha256_hex($sess));
    is_error $s->req(DELETE => "/api/v1/tokens/$sid", token => $other->{token}), 404, 'NOT_FOUND',
        "a session's id: 404";
    is one('SELECT COUNT(*) FROM tokens WHERE revoked_at IS NOT NULL'), $revoked, 'nothing revoked';
    my $own = $mk->($u);
    is $s->req(DELETE => "/api/v1/tokens/$own", token => $u->{token})->{status}, 204, 'own: 204';
    is $s->req(DELETE => "/api/v1/tokens/$theirs", token => $admin)->{status}, 204, "ADMIN, someone else's: 204";
    is $s->req(DELETE => "/api/v1/tokens/$theirs", token => $admin)->{status}, 204, 'again: 204';
    is events($org->{orgId}, 'token.revoked'), $n + 2, 'two token.revoked events (none for the repeat)';
    my $data = one(q{SELECT data FROM audit_events WHERE org_id = ? AND action = 'token.revoked' ORDER BY id DESC LIMIT 1},
        $org->{orgId});
    is $data, qq({"userId":"$other->{id}"}), 'the event names the owner';
    is $s->req(GET => '/api/v1/me', token => $sess)->{status}, 200, 'sessions are not touched';
};

# ---- PATCH /users/{id}: name, roles, active ------------------------------------------------

subtest 'PATCH /users/{id}: name and roles; a PATCH that changes nothing writes no event' => sub {
    my $u = $s->new_user($admin, roles => ['VIEWER']);
    my $n = events($org->{orgId}, 'user.updated');
    my $r = $s->req(PATCH => "/api/v1/users/$u->{id}", token => $admin,
        json => { name => 'Renamed', roles => [qw(CREATOR APPROVER)] });
    is $r->{status}, 200, 'PATCH: 200' or diag $r->{body};
    is_deeply [ sort keys %{ $r->{json}{data} } ], \@USER_KEYS, 'the user';
    is $r->{json}{data}{name}, 'Renamed', 'name';
    is_deeply $r->{json}{data}{roles}, [qw(CREATOR APPROVER)], 'roles';
    is events($org->{orgId}, 'user.updated'), $n + 1, 'user.updated audited';
    is $s->req(POST => '/api/v1/batches', token => $u->{token}, idem => 1, json => { name => 'x' })->{status},
        201, 'the new role takes effect at once';
    $r = $s->req(PATCH => "/api/v1/users/$u->{id}", token => $admin,
        json => { name => 'Renamed', roles => [qw(APPROVER CREATOR)], active => JSON::PP::true });
    is $r->{status}, 200, 'the same again: 200';
    $r = $s->req(PATCH => "/api/v1/users/$u->{id}", token => $admin, json => { name => undef });
    is $r->{status}, 200, 'null: 200';
    is events($org->{orgId}, 'user.updated'), $n + 1, 'no event for either';
    my $before = one('SELECT CONCAT(name, roles, active) FROM users WHERE id = ?', $u->{id});
    for my $bad ([ { active => 'no' }, 'active' ], [ { roles => [] }, 'roles' ], [ { roles => ['BOSS'] }, 'roles' ],
        [ { name => '' }, 'name' ], [ { name => 'x' x 141 }, 'name' ], [ { email => 'a@b' }, 'email' ]) {
        my $r2 = $s->req(PATCH => "/api/v1/users/$u->{id}", token => $admin, json => $bad->[0]);
        is_error $r2, 400, 'VALIDATION_ERROR', "bad $bad->[1]: 400";
        is_deeply [ keys %{ $r2->{json}{error}{details} } ], [ $bad->[1] ], "details name $bad->[1]";
    }
    is_error $s->req(PATCH => "/api/v1/users/$u->{id}", token => $admin, raw => ''), 400, 'MALFORMED_JSON',
        'an empty body: 400 MALFORMED_JSON';
    is_error $s->req(PATCH => "/api/v1/users/$u->{id}", token => $u->{token}, json => { name => 'me' }),
        403, 'FORBIDDEN', 'not an ADMIN: 403';
    is_error $s->req(PATCH => '/api/v1/users/99999999', token => $admin, json => { name => 'x' }),
        404, 'NOT_FOUND', 'unknown: 404';
    is one('SELECT CONCAT(name, roles, active) FROM users WHERE id = ?', $u->{id}), $before, 'nothing changed';
};

subtest 'deactivation cuts a live session off on its next request, and every credential for good' => sub {
    my $u = person(['CREATOR']);
    my $sess = session_of($u);
    my $tok2 = $s->req(POST => '/api/v1/me/tokens', token => $sess, json => {})->{json}{data}{token};
    my $inv = invite($u->{id});
    is $s->req(GET => '/api/v1/me', token => $sess)->{status}, 200, 'the session works';
    my $r = $s->req(PATCH => "/api/v1/users/$u->{id}", token => $admin, json => { active => JSON::PP::false });
    is $r->{status}, 200, 'active: false → 200';
    is $r->{json}{data}{active}, JSON::PP::false, 'active false';
    for my $t ([ session => $sess ], [ 'admin-made token' => $u->{token} ], [ 'own token' => $tok2 ]) {
        is_error $s->req(GET => '/api/v1/me', token => $t->[1]), 401, 'UNAUTHENTICATED', "$t->[0]: 401 at once";
    }
    is one('SELECT COUNT(*) FROM tokens WHERE user_id = ? AND revoked_at IS NULL', $u->{id}), 0, 'all revoked';
    is_error accept_inv($inv, 'a fresh password!'), 400, 'INVITATION_INVALID', 'the unused invitation is void';
    is_error sign_in($org->{orgId}, $u->{email}, $PW), 401, 'INVALID_CREDENTIALS', 'cannot sign in';
    my $list = $s->req(GET => '/api/v1/users?limit=200', token => $admin);
    my ($row) = grep { $_->{id} eq $u->{id} } @{ $list->{json}{data} };
    is $row->{active}, JSON::PP::false, 'the list shows active false';
    ok !(grep { !defined $_->{active} } @{ $list->{json}{data} }), 'every user in the list carries active';
    is $s->req(PATCH => "/api/v1/users/$u->{id}", token => $admin, json => { active => JSON::PP::true })->{status},
        200, 'reactivated';
    for my $t ($sess, $u->{token}, $tok2) {
        is_error $s->req(GET => '/api/v1/me', token => $t), 401, 'UNAUTHENTICATED', 'reactivating restores none';
    }
    is_error sign_in($org->{orgId}, $u->{email}, $PW), 401, 'INVALID_CREDENTIALS',
        'nor the password (v1.2: a new invitation is needed; t/72)';
    my $g = $s->new_user($admin);
    $s->req(PATCH => "/api/v1/users/$g->{id}", token => $admin, json => { active => JSON::PP::false });
    my $n = one('SELECT COUNT(*) FROM tokens WHERE user_id = ?', $g->{id});
    my $t = $s->req(POST => "/api/v1/users/$g->{id}/tokens", token => $admin, json => {});
    is_error $t, 409, 'INVALID_STATE', 'no token is minted for a deactivated user';
    is $t->{json}{error}{details}{reason}, 'USER_INACTIVE', 'reason USER_INACTIVE';
    is one('SELECT COUNT(*) FROM tokens WHERE user_id = ?', $g->{id}), $n, 'none stored';
    clear_throttle();
};

subtest 'the last active ADMIN cannot be demoted or deactivated' => sub {
    my $o = $s->new_org;
    my $r = $s->req(PATCH => "/api/v1/users/$o->{userId}", token => $o->{token}, json => { roles => ['VIEWER'] });
    is_error $r, 409, 'INVALID_STATE', 'demoting the only ADMIN: 409';
    is $r->{json}{error}{details}{reason}, 'LAST_ACTIVE_ADMIN', 'reason LAST_ACTIVE_ADMIN';
    $r = $s->req(PATCH => "/api/v1/users/$o->{userId}", token => $o->{token}, json => { active => JSON::PP::false });
    is_error $r, 409, 'INVALID_STATE', 'deactivating the only ADMIN: 409';
    is one('SELECT CONCAT(roles, active) FROM users WHERE id = ?', $o->{userId}), '11', 'unchanged';
    my $b = $s->new_user($o->{token}, roles => [qw(ADMIN VIEWER)]);
    is $s->req(PATCH => "/api/v1/users/$o->{userId}", token => $b->{token}, json => { roles => ['VIEWER'] })->{status},
        200, 'with a second ADMIN, the first can be demoted';
    is_error $s->req(PATCH => "/api/v1/users/$b->{id}", token => $b->{token}, json => { active => JSON::PP::false }),
        409, 'INVALID_STATE', 'now the second is the last one';
    my $c = $s->new_user($b->{token}, roles => ['ADMIN']);
    $s->req(PATCH => "/api/v1/users/$c->{id}", token => $b->{token}, json => { active => JSON::PP::false });
    is_error $s->req(PATCH => "/api/v1/users/$b->{id}", token => $b->{token}, json => { roles => ['CREATOR'] }),
        409, 'INVALID_STATE', 'an inactive ADMIN does not count';
    # Two ADMINs demoting each other at once: exactly one may win.
    my $d = $s->new_user($b->{token}, roles => ['ADMIN']);
    for my $round (1 .. 3) {
        my $pid = fork // die;
        my $f = $s->state_dir . "/race-$round";
        if (!$pid) {
            my $x = $s->req(PATCH => "/api/v1/users/$b->{id}", token => $d->{token}, json => { roles => ['VIEWER'] });
            open my $fh, '>', $f; print $fh $x->{status}; close $fh;
            POSIX::_exit(0);
        }
        my $y = $s->req(PATCH => "/api/v1/users/$d->{id}", token => $b->{token}, json => { roles => ['VIEWER'] });
        waitpid $pid, 0;
        open my $fh, '<', $f; my $xs = <$fh>; close $fh;
        # The loser is refused by the last-ADMIN rule (409), or, when the winner committed
        # before its request was even authenticated, for no longer being an ADMIN (403).
        like join(' ', sort $xs, $y->{status}), qr/^200 40[39]$/, "round $round: one 200, the other refused";
        is one(q{SELECT COUNT(*) FROM users WHERE org_id = ? AND active = 1 AND roles & 1}, $o->{orgId}), 1,
            'one active ADMIN left';
        # Make both ADMINs again through the survivor.
        my ($alive) = grep { one('SELECT roles & 1 FROM users WHERE id = ?', $_->{id}) } $b, $d;
        $s->req(PATCH => "/api/v1/users/$_->{id}", token => $alive->{token}, json => { roles => ['ADMIN'] }) for $b, $d;
    }
};

# ---- the operator's invitation ------------------------------------------------------------

subtest 'remit invite --org ID --email EMAIL: a new invitation for a forgotten password' => sub {
    my $o = $s->new_org;
    my $email = email_of($o->{userId});
    my $r = $s->remit('invite', '--org', $o->{orgId}, '--email', uc $email);
    is $r->{exit}, 0, 'exit 0' or diag $r->{stderr};
    my $out = JSON::PP->new->decode($r->{stdout});
    is_deeply [ sort keys %$out ], [qw(expiresAt invitation orgId userId)], 'prints {orgId, userId, invitation, expiresAt}';
    is $out->{userId}, $o->{userId}, 'that user';
    like $out->{expiresAt}, $TIME_RE, 'expiresAt';
    is_error accept_inv($o->{invitation}, $PW), 400, 'INVITATION_INVALID', "bootstrap's invitation is void now";
    is accept_inv($out->{invitation}, 'recovered password')->{status}, 200, 'the new one sets the password';
    is sign_in($o->{orgId}, $email, 'recovered password')->{status}, 201, 'and the ADMIN is back';
    ok !defined one(q{SELECT actor_id FROM audit_events WHERE org_id = ? AND action = 'user.invited'
        ORDER BY id DESC LIMIT 1}, $o->{orgId}) || one(q{SELECT actor_id FROM audit_events WHERE org_id = ?
        AND action = 'user.invited' ORDER BY id DESC LIMIT 1}, $o->{orgId}) == 0, 'audited without an actor';
    for my $bad ([ '--org', $o->{orgId}, '--email', "nobody\@example.test" ], [ '--org', 'x', '--email', $email ],
        [ '--org', '999999', '--email', $email ], [ '--email', $email ]) {
        my $x = $s->remit('invite', @$bad);
        isnt $x->{exit}, 0, "invite @$bad: fails";
        is $x->{stdout}, '', 'prints nothing on stdout';
    }
    clear_throttle();
};

subtest 'every event is in the hash chain' => sub {
    my $r = $s->remit('verify-audit');
    is $r->{exit}, 0, 'verify-audit: ok' or diag $r->{stderr};
    for my $a (qw(user.invited user.password_set user.updated session.created session.ended)) {
        ok events($org->{orgId}, $a) > 0, "$a events present";
    }
};

# ---- memory ------------------------------------------------------------------------------

sub status_kib {
    my ($pid, $field) = @_;
    open my $fh, '<', "/proc/$pid/status" or return;
    while (my $line = <$fh>) { return $1 if $line =~ /^$field:\s+(\d+)\s+kB/ }
    return;
}

# A stack of one worker that purges every second.
my $one = Remit::Test->stack(conf => { workers => 1, purge_interval => 1 });
my $o = $one->new_org;
my $email = scalar $one->dbh->selectrow_array('SELECT email FROM users WHERE id = ?', undef, $o->{userId});
is $one->req(POST => '/api/v1/invitations/accept', json => { token => $o->{invitation}, password => $PW })->{status},
    200, 'one worker: a password set';
my $in = sub { $one->req(POST => '/api/v1/sessions', json => { orgId => $o->{orgId}, email => $email, password => $_[0] }) };

# True when the binary under test is built with AddressSanitizer, whose shadow memory and
# quarantine make RSS figures meaningless (t/53-resources.t skips likewise).
sub sanitized {
    my $bin = $one->bin;
    return 1 if $bin =~ m{/_build/asan/};
    open my $fh, '<:raw', $bin or return 0;
    local $/;
    return index(<$fh> // '', '__asan_init') >= 0;
}

subtest "the worker's RSS comes back to its baseline after sign-ins (64 MiB each while hashing)" => sub {
    plan skip_all => 'the sanitizer build: RSS figures need the plain binary' if sanitized();
    my ($worker) = $one->worker_pids;
    is $in->($PW)->{status}, 201, 'warm-up sign-in';
    is $in->('wrong password here')->{status}, 401, 'warm-up failure';
    my $base = status_kib($worker, 'VmRSS');
    my %st;
    $st{ $in->($_ % 3 ? $PW : 'wrong password here')->{status} }++ for 1 .. 30;
    is_deeply \%st, { 201 => 20, 401 => 10 }, '20 sign-ins, 10 failures';
    my $after = status_kib($worker, 'VmRSS');
    my $peak = status_kib($worker, 'VmHWM');
    is_deeply [ $one->worker_pids ], [$worker], 'one worker served them all';
    cmp_ok $after - $base, '<', 512, "VmRSS $base KiB before, $after KiB after (peak $peak KiB)";
    cmp_ok $peak - $base, '>', 60 * 1024, 'the peak shows the 64 MiB of Argon2id, given back after each hash';
};

subtest 'a new cost in the config reaches a user at their next sign-in' => sub {
    my $hash = sub { scalar $one->dbh->selectrow_array('SELECT password_hash FROM users WHERE id = ?', undef, $o->{userId}) };
    like $hash->(), qr/\$m=65536,t=2,p=1\$/, 'made at the default cost';
    $one->conf_set(pw_opslimit => 3, pw_memlimit => 32 * 1024 * 1024);
    $one->stop_remit;
    $one->start_remit;
    is $in->($PW)->{status}, 201, 'sign-in with the old hash: 201';
    like $hash->(), qr/\$m=32768,t=3,p=1\$/, 'stored again at the new cost';
    is $in->($PW)->{status}, 201, 'and it verifies';
    is $in->('not the password')->{status}, 401, 'a wrong one still fails';
};

subtest 'throttle rows idle for a day are purged; recent ones are kept' => sub {
    $one->dbh->do('DELETE FROM sign_in_throttle');
    is $in->('not the password')->{status}, 401, 'a failure';
    my $rows = sub { scalar $one->dbh->selectrow_array('SELECT COUNT(*) FROM sign_in_throttle') };
    is $rows->(), 1, 'one row';
    $one->req(POST => '/api/v1/sessions', json => { orgId => $o->{orgId}, email => "idle\@example.test", password => 'x' x 12 });
    is $rows->(), 2, 'two rows';
    my $idle = 'idle@example.test';
    is $one->dbh->do('UPDATE sign_in_throttle SET updated_at = NOW(3) - INTERVAL 25 HOUR WHERE key_hash = UNHEX(?)',
        undef, sha256_hex(length($o->{orgId}) . ':' . length($idle) . ":$o->{orgId}$idle")), 1, 'one row idle for 25 h';
    $one->wait_until('the idle row is purged', sub { $rows->() == 1 }, 10);
    sleep 2;
    is $rows->(), 1, 'the recent one stays';
};

done_testing;
