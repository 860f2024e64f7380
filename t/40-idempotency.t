use strict;
use warnings;

# doc/openapi.yaml#Idempotency: the Idempotency-Key header on every POST under /api/v1 (token creation aside): its
# grammar, replays, 422 on another fingerprint, its scope, failed attempts, expiry and purge.
# Every subtest checks the status, the error code and what the database holds afterwards.

use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use Remit::Test;
use Remit::Fixture;

my $s = Remit::Test->stack(start => 0);
# Keys are purged only when a subtest asks for it, so expired rows can be counted.
$s->conf_set(purge_interval => 0);
$s->start;
my $dbh = $s->dbh;

my $org = $s->new_org;
my $admin = $org->{token};
# One user with every role but VIEWER: the same caller can use one key on several routes.
my $boss = $s->new_user($admin, roles => [qw(ADMIN CREATOR APPROVER TREASURER)]);
my $creator = $s->new_user($admin, roles => ['CREATOR']);
my $approver = $s->new_user($admin, roles => ['APPROVER']);
my $treasurer = $s->new_user($admin, roles => ['TREASURER']);
my $viewer = $s->new_user($admin, roles => ['VIEWER']);

my $seq = 0;
sub tag { sprintf '%d-%d-%s', $$, ++$seq, substr Remit::Test::random_key(), 2, 10 }
# The request the fixtures add here (Remit::Fixture::request's fields).
my %ADA = (amount => '12.50', currency => 'EUR', beneficiaryName => 'Ada',
    beneficiaryAccount => 'DE89 3704 0044 0532 0130 00');
sub new_key { 'k-' . tag() }
sub user_body {
    return { email => 'u-' . tag() . '@example.test', name => 'Idem User', roles => ['VIEWER'],
        @_ };
}

sub post_user {
    my ($token, $key, $body, %o) = @_;
    return $s->req(POST => '/api/v1/users' . ($o{query} // ''), token => $token,
        (defined $key ? (idem => $key) : ()),
        (ref $body ? (json => $body) : (raw => $body)), headers => $o{headers} // {});
}

my @TABLES = qw(users tokens batches payment_requests decisions ledger_entries audit_events
    idempotency_keys);
sub counts { return { map { $_ => $dbh->selectrow_array("SELECT COUNT(*) FROM $_") } @TABLES } }
sub plus {
    my ($before, %delta) = @_;
    return { map { $_ => $before->{$_} + ($delta{$_} // 0) } keys %$before };
}

sub key_rows {
    my ($key) = @_;
    return $dbh->selectall_arrayref(
        'SELECT user_id, status, etag, body FROM idempotency_keys WHERE idem_key = ? ORDER BY id',
        { Slice => {} }, $key);
}

sub replayed { ($_[0]{headers}{'idempotent-replayed'} // '') eq 'true' }

# Fixtures; the domain handlers landed one by one, and a subtest whose route still answers
# 501 (a stub) skips.
# ---- the header ------------------------------------------------------------------------

subtest 'a POST without Idempotency-Key is 400 IDEMPOTENCY_KEY_MISSING and changes nothing' => sub {
    my $before = counts();
    is_error post_user($admin, undef, user_body()), 400, 'IDEMPOTENCY_KEY_MISSING', 'POST /users';
    is_error $s->req(POST => '/api/v1/batches', token => $creator->{token},
        json => { name => 'no key' }), 400, 'IDEMPOTENCY_KEY_MISSING', 'POST /batches';
    is_error $s->req(POST => '/api/v1/requests/999999999/approve', token => $approver->{token}),
        400, 'IDEMPOTENCY_KEY_MISSING', 'POST /requests/{unknown}/approve: before the 404';
    is_deeply counts(), $before, 'no row written';
};

subtest 'a malformed Idempotency-Key is 400 IDEMPOTENCY_KEY_INVALID and changes nothing' => sub {
    my $before = counts();
    my %bad = (
        'empty'                     => '',
        'an empty sf-string ""'     => '""',
        '256 characters'            => 'x' x 256,
        '256 characters quoted'     => '"' . 'x' x 256 . '"',
        'a space inside'            => 'a b',
        'a space inside the quotes' => '"a b"',
        'an unterminated quote'     => '"abc',
        'a lone quote'              => '"',
        'an escape other than \" and \\\\' => '"a\\qb"',
        'a backslash at the end of a quoted key' => '"abc\\"',
        'text after the closing quote' => '"abc"d',
    );
    for my $what (sort keys %bad) {
        is_error post_user($admin, $bad{$what}, user_body()), 400, 'IDEMPOTENCY_KEY_INVALID', $what;
    }
    # Bytes HTTP::Tiny refuses to send: through a raw connection.
    my %raw = ('a tab' => "a\tb", 'a control character' => "a\x01b", 'DEL' => "a\x7fb",
        'a non-ASCII byte' => "caf\xc3\xa9");
    my $body = JSON::PP->new->canonical->encode(user_body());
    for my $what (sort keys %raw) {
        my $res = parse_http_response($s->raw_http(join "\r\n",
            'POST /api/v1/users HTTP/1.1', 'Host: localhost', 'Connection: close',
            "Authorization: Bearer $admin", 'Content-Type: application/json',
            "Idempotency-Key: $raw{$what}", 'Content-Length: ' . length($body), '', $body));
        is_error $res, 400, 'IDEMPOTENCY_KEY_INVALID', "$what (raw)";
    }
    # Two field lines are one value "k1, k2" (RFC 9110 §5.3), which is no key; taking either
    # line would let the same request run once under each.
    my $res = parse_http_response($s->raw_http(join "\r\n",
        'POST /api/v1/users HTTP/1.1', 'Host: localhost', 'Connection: close',
        "Authorization: Bearer $admin", 'Content-Type: application/json',
        'Idempotency-Key: ' . new_key(), 'Idempotency-Key: ' . new_key(),
        'Content-Length: ' . length($body), '', $body));
    is_error $res, 400, 'IDEMPOTENCY_KEY_INVALID', 'two Idempotency-Key lines (raw)';
    is_deeply counts(), $before, 'no row written';
};

subtest 'a key of 255 characters is accepted and stored whole' => sub {
    my $key = substr(new_key() . ('x' x 255), 0, 255);
    my $before = counts();
    my $body = user_body();
    my $r = post_user($admin, $key, $body);
    is $r->{status}, 201, '255 characters: 201';
    my $rows = key_rows($key);
    is scalar @$rows, 1, 'one key row, holding all 255 characters';
    is_deeply counts(), plus($before, users => 1, audit_events => 1, idempotency_keys => 1),
        'one user, one audit event, one key';
    my $again = post_user($admin, qq("$key"), $body);
    ok $again->{status} == 201 && replayed($again) && $again->{body} eq $r->{body},
        'the same 255 characters quoted (257 bytes) replay it';
    is $dbh->selectrow_array('SELECT idempotency_key FROM audit_events ORDER BY id DESC LIMIT 1'),
        $key, 'the audit event carries the key';
    # The limit counts the key, not the escapes that spell it.
    my $escaped = substr(new_key() . ('y' x 255), 0, 253);
    my $r2 = post_user($admin, qq("$escaped\\\\\\""), user_body());
    is $r2->{status}, 201, '253 characters and the escapes \\\\ and \\" (259 bytes): 201';
    is scalar @{ key_rows($escaped . '\\"') }, 1, 'stored as the 255 characters they spell';
    is_error post_user($admin, qq("$escaped\\\\\\"x"), user_body()), 400,
        'IDEMPOTENCY_KEY_INVALID', 'one character more: 256, too long';
};

subtest 'a quoted key is the same key as the bare one' => sub {
    my $key = new_key();
    my $body = user_body();
    my $before = counts();
    my $r = post_user($admin, qq("$key"), $body);
    is $r->{status}, 201, '"key": 201';
    my $again = post_user($admin, $key, $body);
    is $again->{status}, 201, 'key: 201';
    ok replayed($again), 'a replay';
    is $again->{body}, $r->{body}, 'of the same body';
    is_deeply [ map { $_->{body} } @{ key_rows($key) } ], [ $r->{body} ],
        'one row, stored without the quotes';
    is_deeply counts(), plus($before, users => 1, audit_events => 1, idempotency_keys => 1),
        'one effect';
};

subtest 'keys are compared byte for byte: abc and ABC are two keys' => sub {
    my $key = new_key();
    my $body = user_body();
    my $lower = post_user($admin, lc $key, $body);
    my $upper = post_user($admin, uc $key, user_body());
    is $lower->{status}, 201, 'lower case: 201';
    is $upper->{status}, 201, 'upper case, another body: 201, not 422';
    ok !replayed($upper), 'not a replay';
};

subtest 'the escapes \" and \\\\ in a quoted key' => sub {
    my $tag = tag();
    my $key = qq(q"x\\y-$tag);    # q"x\y-...
    my $body = user_body();
    my $r = post_user($admin, qq("q\\"x\\\\y-$tag"), $body);
    is $r->{status}, 201, '"q\"x\\\\y": 201';
    is scalar @{ key_rows($key) }, 1, 'stored as q"x\y';
    my $again = post_user($admin, $key, $body);
    ok $again->{status} == 201 && replayed($again) && $again->{body} eq $r->{body},
        'the bare q"x\y replays it';
    my $other = post_user($admin, qq("q\\"x\\\\y-$tag\\\\"), user_body());
    is $other->{status}, 201, 'one more escaped backslash is another key';
    ok !replayed($other), 'not a replay';
};

# ---- replays ---------------------------------------------------------------------------

subtest 'a replay: the stored status and body, Idempotent-Replayed, no effect' => sub {
    my $key = new_key();
    my $body = user_body(roles => [qw(CREATOR APPROVER)]);
    my $before = counts();
    my $r = post_user($admin, $key, $body);
    is $r->{status}, 201, 'first: 201';
    ok !exists $r->{headers}{'idempotent-replayed'}, 'first: no Idempotent-Replayed';
    my $after = counts();
    is_deeply $after, plus($before, users => 1, audit_events => 1, idempotency_keys => 1),
        'first: one user, one audit event, one key';
    my $row = key_rows($key)->[0];
    is $row->{status}, 201, 'the key row holds the status';
    is $row->{body}, $r->{body}, 'and the body';
    for my $n (2, 3) {
        my $again = post_user($admin, $key, $body);
        is $again->{status}, 201, "attempt $n: 201";
        is $again->{body}, $r->{body}, "attempt $n: byte-identical body";
        is $again->{headers}{'idempotent-replayed'}, 'true',
            "attempt $n: Idempotent-Replayed: true";
        ok !exists $again->{headers}{etag}, "attempt $n: no ETag, as the first had none";
        like $again->{headers}{'content-type'} // '', qr{^application/json}, "attempt $n: JSON";
    }
    is_deeply counts(), $after, 'no new row';
};

subtest 'a replay of POST /batches carries the stored ETag and body, not the current ones' => sub {
    my $key = new_key();
    my $name = 'ETag ' . tag();
    my $first = $s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => $key,
        json => { name => $name });
    plan skip_all => "POST /batches answers $first->{status}" unless $first->{status} == 201;
    like $first->{headers}{etag} // '', qr/^"\d+"$/, 'first: an ETag';
    my $id = $first->{json}{data}{id};
    my $before = counts();
    my $again = $s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => $key,
        json => { name => $name });
    is $again->{status}, 201, 'replay: 201';
    ok replayed($again), 'replay: Idempotent-Replayed';
    is $again->{headers}{etag}, $first->{headers}{etag}, 'replay: the same ETag';
    is $again->{body}, $first->{body}, 'replay: the same body';
    is_deeply counts(), $before, 'no new row';
    # Change the batch: the replay still answers what the first attempt answered.
    request($s, $creator, $id, %ADA)->{id} or return;
    my $now = $s->req(GET => "/api/v1/batches/$id", token => $creator->{token});
    isnt $now->{headers}{etag}, $first->{headers}{etag}, 'the batch has another version now';
    my $later = $s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => $key,
        json => { name => $name });
    is $later->{headers}{etag}, $first->{headers}{etag}, 'a later replay: the stored ETag';
    is $later->{body}, $first->{body}, 'and the stored body';
};

subtest 'the same JSON with other member order and white space replays' => sub {
    my $key = new_key();
    my $email = 'order-' . tag() . '@example.test';
    my $r = post_user($admin, $key,
        qq({"email":"$email","name":"B\x{c3}\x{b6}b Order","roles":["CREATOR","VIEWER"]}));
    is $r->{status}, 201, 'first: 201';
    my $before = counts();
    my %same = (
        'other member order' =>
            qq({"roles":["CREATOR","VIEWER"],"name":"B\x{c3}\x{b6}b Order","email":"$email"}),
        'white space' => qq(\n{ "email" : "$email",\t"name":"B\x{c3}\x{b6}b Order" ,\r\n)
            . qq( "roles" : [ "CREATOR" , "VIEWER" ] }\n),
        'escapes for the same text' =>
            qq({"email":"$email","name":"B\\u00f6b \\u004frder","roles":["CREATOR","VIEWER"]}),
    );
    for my $what (sort keys %same) {
        my $again = post_user($admin, $key, $same{$what});
        ok $again->{status} == 201 && replayed($again) && $again->{body} eq $r->{body},
            "$what: a replay" or diag "$again->{status} $again->{body}";
    }
    my $swapped = post_user($admin, $key,
        qq({"email":"$email","name":"B\x{c3}\x{b6}b Order","roles":["VIEWER","CREATOR"]}));
    is_error $swapped, 422, 'IDEMPOTENCY_KEY_REUSED',
        'array elements in another order: another body';
    is_deeply counts(), $before, 'no new row';
};

subtest 'the query string is not part of the fingerprint' => sub {
    my $key = new_key();
    my $body = user_body();
    my $r = post_user($admin, $key, $body);
    is $r->{status}, 201, 'first: 201';
    my $before = counts();
    my $again = post_user($admin, $key, $body, query => '?x=1');
    # Replay comes before VALIDATION_ERROR (an unknown query parameter) in the error order.
    ok $again->{status} == 201 && replayed($again) && $again->{body} eq $r->{body},
        '?x=1: a replay, not 400 or 422' or diag "$again->{status} $again->{body}";
    is_error post_user($admin, $key, user_body(), query => '?x=1'), 422,
        'IDEMPOTENCY_KEY_REUSED', '?x=1 with another body: 422';
    is_deeply counts(), $before, 'no new row';
};

# ---- another fingerprint ---------------------------------------------------------------

subtest '422 IDEMPOTENCY_KEY_REUSED for another body' => sub {
    my $key = new_key();
    my $body = user_body();
    my $r = post_user($admin, $key, $body);
    is $r->{status}, 201, 'first: 201';
    my $before = counts();
    my $stored = key_rows($key);
    my $reused = post_user($admin, $key, user_body());
    is_error $reused, 422, 'IDEMPOTENCY_KEY_REUSED', 'another email';
    ok !exists $reused->{headers}{'idempotent-replayed'}, 'no Idempotent-Replayed on a 422';
    is_error post_user($admin, $key, { %$body, roles => ['ADMIN'] }), 422,
        'IDEMPOTENCY_KEY_REUSED', 'another role';
    is_error post_user($admin, $key, { %$body, name => 'x' x 141 }), 422,
        'IDEMPOTENCY_KEY_REUSED', 'an invalid body: 422 comes before VALIDATION_ERROR';
    is_error post_user($admin, $key, ''), 422, 'IDEMPOTENCY_KEY_REUSED', 'an empty body ({})';
    is_deeply counts(), $before, 'no new row';
    is_deeply key_rows($key), $stored, 'the stored response is untouched';
    my $again = post_user($admin, $key, $body);
    ok $again->{status} == 201 && replayed($again) && $again->{body} eq $r->{body},
        'the first body still replays';
};

subtest '422 IDEMPOTENCY_KEY_REUSED for another route' => sub {
    my $key = new_key();
    my $r = post_user($boss->{token}, $key, user_body());
    is $r->{status}, 201, 'POST /users: 201';
    my $before = counts();
    is_error $s->req(POST => '/api/v1/batches', token => $boss->{token}, idem => $key,
        json => { name => 'Other route' }), 422, 'IDEMPOTENCY_KEY_REUSED', 'then POST /batches';
    is_error $s->req(POST => '/api/v1/batches/999999999/requests', token => $boss->{token},
        idem => $key, json => {}), 422, 'IDEMPOTENCY_KEY_REUSED',
        'then POST /batches/{unknown}/requests: 422 comes before 404';
    is_error $s->req(POST => '/api/v1/requests/999999999/approve', token => $boss->{token},
        idem => $key), 422, 'IDEMPOTENCY_KEY_REUSED', 'then POST /requests/{unknown}/approve';
    is_deeply counts(), $before, 'no new row';
};

subtest '422 IDEMPOTENCY_KEY_REUSED for the same action on another object' => sub {
    my @batches = grep { defined } map { batch($s, $creator, name => 'Batch ' . tag())->{id} } 1 .. 2;
    plan skip_all => 'POST /batches is not ready' unless @batches == 2;
    my $key = new_key();
    my %req = (amount => '7.00', currency => 'USD', beneficiaryName => 'Bo',
        beneficiaryAccount => '12345678');
    my $r = $s->req(POST => "/api/v1/batches/$batches[0]/requests", token => $creator->{token},
        idem => $key, json => \%req);
    plan skip_all => "POST /batches/{id}/requests answers $r->{status}" unless $r->{status} == 201;
    my $before = counts();
    is_error $s->req(POST => "/api/v1/batches/$batches[1]/requests", token => $creator->{token},
        idem => $key, json => \%req), 422, 'IDEMPOTENCY_KEY_REUSED', 'add to another batch';
    is_deeply counts(), $before, 'no new row';

    # Two requests' approve with one key.
    my @rq = ($r->{json}{data}{id}, request($s, $creator, $batches[0], %ADA)->{id});
    submit($s, $creator, $batches[0]) or return;
    my $k2 = new_key();
    my $a = $s->req(POST => "/api/v1/requests/$rq[0]/approve", token => $approver->{token},
        idem => $k2, json => {});
    is $a->{status}, 200, 'approve the first request: 200' or return;
    $before = counts();
    is_error $s->req(POST => "/api/v1/requests/$rq[1]/approve", token => $approver->{token},
        idem => $k2, json => {}), 422, 'IDEMPOTENCY_KEY_REUSED', 'approve the second with that key';
    is_deeply counts(), $before, 'no new row';
    is $s->req(GET => "/api/v1/requests/$rq[1]", token => $approver->{token})->{json}{data}{status},
        'PENDING_APPROVAL', 'the second request is still PENDING_APPROVAL';
};

# ---- scope and failures ----------------------------------------------------------------

subtest 'the key is scoped to the user: two users with one key get two objects' => sub {
    my $key = new_key();
    my $admin2 = $s->new_user($admin, roles => ['ADMIN']);
    my $other_org = $s->new_org;
    my $before = counts();
    my $body = user_body();
    my $a = post_user($admin, $key, $body);
    my $b = post_user($admin2->{token}, $key, user_body());
    my $c = post_user($other_org->{token}, $key, $body);
    is $_->[0]{status}, 201, "$_->[1]: 201" for [$a, 'first admin'], [$b, 'second admin'],
        [$c, 'the admin of another organisation, same body'];
    ok !replayed($b) && !replayed($c), 'neither is a replay';
    my %ids = map { ($_->{json}{data}{id} // '') => 1 } $a, $b, $c;
    is scalar keys %ids, 3, 'three users';
    is_deeply counts(), plus($before, users => 3, audit_events => 3, idempotency_keys => 3),
        'three users, three audit events, three keys';
    is scalar @{ key_rows($key) }, 3, 'three key rows';
    my $tok = $s->req(POST => "/api/v1/users/$admin2->{id}/tokens", token => $admin, json => {});
    my $again = post_user($tok->{json}{data}{token}, $key, user_body());
    is_error $again, 422, 'IDEMPOTENCY_KEY_REUSED',
        'the second admin with another token of theirs: the same key (another body: 422)';
};

subtest 'a failed attempt does not use the key up' => sub {
    my $before = counts();
    my $key = new_key();
    is_error post_user($admin, $key, { email => 'x@example.test', name => 'No roles' }), 400,
        'VALIDATION_ERROR', 'a body without roles: 400';
    is_error post_user($admin, $key, '{"email":'), 400, 'MALFORMED_JSON', 'broken JSON: 400';
    is_error post_user($admin, $key, user_body(), query => '?limit=5'), 400, 'VALIDATION_ERROR',
        'an unknown query parameter: 400';
    is_error post_user($viewer->{token}, $key, user_body()), 403, 'FORBIDDEN',
        'a VIEWER: 403';
    is_deeply counts(), $before, 'nothing written, no key row';
    my $r = post_user($admin, $key, user_body());
    is $r->{status}, 201, 'then a good body with the same key: 201';
    ok !replayed($r), 'not a replay';
    is_deeply counts(), plus($before, users => 1, audit_events => 1, idempotency_keys => 1),
        'one user';

    my $taken = user_body();
    is post_user($admin, new_key(), $taken)->{status}, 201, 'a user';
    my $k2 = new_key();
    $before = counts();
    my $dup = post_user($admin, $k2, { %$taken, name => 'Twin' });
    is_error $dup, 409, 'CONFLICT', 'the same email again: 409';
    is_error post_user($admin, $k2, { %$taken, name => 'Twin' }), 409, 'CONFLICT',
        'the same request and key again: 409 again, not a replay';
    is_deeply counts(), $before, 'nothing written';
    my $ok = post_user($admin, $k2, user_body());
    ok $ok->{status} == 201 && !replayed($ok), 'the key with another email: 201';
};

subtest 'approving a DRAFT request is 409, and the same key works after submit' => sub {
    my $batch = batch($s, $creator, name => 'Batch ' . tag())->{id};
    my $rq = $batch && request($s, $creator, $batch, %ADA)->{id};
    plan skip_all => 'POST /batches or /batches/{id}/requests is not ready' unless $rq;
    my $key = new_key();
    my $before = counts();
    my $r = $s->req(POST => "/api/v1/requests/$rq/approve", token => $approver->{token},
        idem => $key, json => {});
    plan skip_all => "approve answers $r->{status}" if $r->{status} == 501;
    is_error $r, 409, 'INVALID_STATE', 'approve while DRAFT: 409';
    is_deeply counts(), $before, 'nothing written, no key row';
    ok submit($s, $creator, $batch), 'submit the batch';
    $before = counts();
    my $ok = $s->req(POST => "/api/v1/requests/$rq/approve", token => $approver->{token},
        idem => $key, json => {});
    is $ok->{status}, 200, 'the same key after submit: 200';
    ok !replayed($ok), 'not a replay';
    is $ok->{json}{data}{status}, 'APPROVED', 'APPROVED';
    my $after = counts();
    cmp_ok $after->{audit_events}, '>', $before->{audit_events}, 'audit events written';
    is_deeply $after, plus($before, decisions => 1, ledger_entries => 1, idempotency_keys => 1,
        audit_events => $after->{audit_events} - $before->{audit_events}),
        'one decision, one ledger entry, one key';

    # Replay comes before INVALID_STATE: the request is PAID now, the key still replays.
    is $s->req(POST => "/api/v1/requests/$rq/mark-paid", token => $treasurer->{token},
        idem => 1, json => {})->{status}, 200, 'the request is paid';
    $before = counts();
    my $again = $s->req(POST => "/api/v1/requests/$rq/approve", token => $approver->{token},
        idem => $key, raw => '');
    ok $again->{status} == 200 && replayed($again) && $again->{body} eq $ok->{body},
        'the key again, with an empty body for {}: the stored 200, not 409 INVALID_STATE'
        or diag "$again->{status} $again->{body}";
    is $again->{headers}{etag}, $ok->{headers}{etag}, 'with the stored ETag';
    is_deeply counts(), $before, 'no new row';
};

subtest 'a replay comes before If-Match: a stale If-Match still replays' => sub {
    my $batch = batch($s, $creator, name => 'Batch ' . tag())->{id};
    plan skip_all => 'POST /batches or /batches/{id}/requests is not ready'
        unless $batch && request($s, $creator, $batch, %ADA)->{id};
    my $v = $s->req(GET => "/api/v1/batches/$batch", token => $creator->{token})
        ->{json}{data}{version};
    my $key = new_key();
    my %submit = (token => $creator->{token}, idem => $key, headers => { 'If-Match' => qq("$v") });
    my $r = $s->req(POST => "/api/v1/batches/$batch/submit", %submit);
    plan skip_all => "submit answers $r->{status}" if $r->{status} == 501;
    is $r->{status}, 200, qq(submit with If-Match: "$v": 200);
    isnt $r->{headers}{etag}, qq("$v"), 'the version moved';
    my $before = counts();
    my $again = $s->req(POST => "/api/v1/batches/$batch/submit", %submit);
    ok $again->{status} == 200 && replayed($again) && $again->{body} eq $r->{body},
        'the same again (its If-Match stale now): a replay, not 412' or diag $again->{body};
    my $other = $s->req(POST => "/api/v1/batches/$batch/submit", %submit,
        headers => { 'If-Match' => '"999"' });
    ok $other->{status} == 200 && replayed($other), 'If-Match is no part of the fingerprint';
    is_deeply counts(), $before, 'no new row';
};

subtest 'token creation ignores Idempotency-Key' => sub {
    my $user = $s->new_user($admin);
    my $key = new_key();
    my $before = counts();
    my @r = map {
        $s->req(POST => "/api/v1/users/$user->{id}/tokens", token => $admin, idem => $key,
            json => { name => 'same key' })
    } 1 .. 2;
    is $_->{status}, 201, 'with the key: 201' for @r;
    ok !grep({ replayed($_) } @r), 'no replay';
    isnt $r[0]{json}{data}{token}, $r[1]{json}{data}{token}, 'two tokens';
    isnt $r[0]{json}{data}{id}, $r[1]{json}{data}{id}, 'two ids';
    my $bad = $s->req(POST => "/api/v1/users/$user->{id}/tokens", token => $admin,
        idem => '"unterminated', json => {});
    is $bad->{status}, 201, 'a malformed key: 201';
    my $none = $s->req(POST => "/api/v1/users/$user->{id}/tokens", token => $admin, json => {});
    is $none->{status}, 201, 'no key: 201';
    is_deeply counts(), plus($before, tokens => 4, audit_events => 4), 'four tokens, no key row';
    is $dbh->selectrow_array(
        q{SELECT COUNT(*) FROM audit_events WHERE action = 'token.created' AND object_id IN (?, ?)
          AND idempotency_key IS NULL}, undef, map { $_->{json}{data}{id} } @r), 2,
        'their audit events carry no key';
};

subtest 'error order: the key comes after 401, 404, 405, 403, 415 and MALFORMED_JSON' => sub {
    my $before = counts();
    is_error $s->req(POST => '/api/v1/users', json => user_body()), 401, 'UNAUTHENTICATED',
        'no token, no key: 401';
    is_error $s->req(POST => '/api/v1/no-such', token => $admin, json => {}), 404, 'NOT_FOUND',
        'unknown path, no key: 404';
    is_error $s->req(POST => '/api/v1/me', token => $admin, json => {}), 405,
        'METHOD_NOT_ALLOWED', 'POST /me, no key: 405';
    is_error post_user($viewer->{token}, undef, user_body()), 403, 'FORBIDDEN',
        'a VIEWER, no key: 403';
    is_error post_user($admin, undef, '{}', headers => { 'Content-Type' => 'text/plain' }), 415,
        'UNSUPPORTED_MEDIA_TYPE', 'text/plain, no key: 415';
    is_error post_user($admin, undef, '[1]'), 400, 'MALFORMED_JSON', 'not an object, no key';
    is_error post_user($admin, '"bad', '{'), 400, 'MALFORMED_JSON', 'broken JSON, invalid key';
    is_error post_user($admin, undef, { bogus => 1 }), 400, 'IDEMPOTENCY_KEY_MISSING',
        'an invalid body without a key: the key first';
    is_error post_user($admin, 'a b', { bogus => 1 }), 400, 'IDEMPOTENCY_KEY_INVALID',
        'an invalid body with an invalid key: the key first';
    is_deeply counts(), $before, 'nothing written';
};

# ---- expiry ----------------------------------------------------------------------------

sub restart_pool {
    my (%conf) = @_;
    $s->stop_remit;
    $s->conf_set(%conf);
    $s->start_remit;
}

# Polls until every key row of $key has expired by the database's clock.
sub wait_expired {
    my (@keys) = @_;
    my $deadline = time + 15;
    while (time < $deadline) {
        my $live = $dbh->selectrow_array(
            'SELECT COUNT(*) FROM idempotency_keys WHERE expires_at > NOW(3) AND idem_key IN ('
            . join(',', ('?') x @keys) . ')', undef, @keys);
        return 1 if !$live;
        sleep 0.1;
    }
    return 0;
}

subtest 'an expired key is a new key' => sub {
    restart_pool(idem_retention => 2);
    my $key = new_key();
    my $first = post_user($admin, $key, user_body());
    is $first->{status}, 201, 'first: 201';
    ok wait_expired($key), 'the key expires after idem_retention (2 s)';
    my $before = counts();
    my $second = post_user($admin, $key, user_body());
    is $second->{status}, 201, 'the same key with another body: 201';
    ok !replayed($second), 'not a replay';
    isnt $second->{json}{data}{id}, $first->{json}{data}{id}, 'a new user';
    is_deeply counts(), plus($before, users => 1, audit_events => 1),
        'one more user; the key row replaced';
    my $rows = key_rows($key);
    is scalar @$rows, 1, 'one key row';
    is $rows->[0]{body}, $second->{body}, 'holding the new response';
};

subtest 'remit purge-idempotency deletes expired keys and keeps live ones' => sub {
    restart_pool(idem_retention => 2);
    my @expiring = map { new_key() } 1 .. 3;
    is post_user($admin, $_, user_body())->{status}, 201, "key $_: 201" for @expiring;
    ok wait_expired(@expiring), 'they expire';
    restart_pool(idem_retention => 86400);
    my @live = map { new_key() } 1 .. 2;
    my %live_res = map { $_ => post_user($admin, $_, user_body()) } @live;
    is $live_res{$_}{status}, 201, "live key $_: 201" or diag $live_res{$_}{body} for @live;
    my $expired = $dbh->selectrow_array(
        'SELECT COUNT(*) FROM idempotency_keys WHERE expires_at <= NOW(3)');
    my $total = $dbh->selectrow_array('SELECT COUNT(*) FROM idempotency_keys');
    cmp_ok $expired, '>=', 3, "$expired expired rows before the purge";
    my $r = $s->remit('purge-idempotency');
    is $r->{exit}, 0, 'exit 0' or diag $r->{stderr};
    is_deeply eval { JSON::PP->new->decode($r->{stdout}) }, { deleted => $expired },
        "it reports {\"deleted\":$expired}";
    is $dbh->selectrow_array('SELECT COUNT(*) FROM idempotency_keys WHERE expires_at <= NOW(3)'),
        0, 'no expired row is left';
    is $dbh->selectrow_array('SELECT COUNT(*) FROM idempotency_keys'), $total - $expired,
        'every live row is kept';
    is scalar @{ key_rows($_) }, 0, "expired $_ is gone" for @expiring;
    for my $k (@live) {
        my $again = post_user($admin, $k, user_body());
        is_error $again, 422, 'IDEMPOTENCY_KEY_REUSED', "live $k still holds its fingerprint";
    }
    $r = $s->remit('purge-idempotency');
    is $r->{stdout}, qq({"deleted":0}\n), 'a second purge deletes nothing';
};

# A range DELETE would lock the first live key after the expired ones too, and that may be
# the claim of a request still running.
subtest 'the purge does not wait for a request that is running' => sub {
    restart_pool(idem_retention => 2);
    my @expiring = map { new_key() } 1 .. 2;
    is post_user($admin, $_, user_body())->{status}, 201, "key $_: 201" for @expiring;
    ok wait_expired(@expiring), 'they expire';
    # The running request's key is the first live one in expiry order (other keys live a day),
    # right after the expired ones. It has claimed its key and waits for the audit head.
    restart_pool(idem_retention => 60);
    my $h = $s->new_dbh(AutoCommit => 0);
    $h->selectrow_array('SELECT seq FROM audit_heads WHERE org_id = ? FOR UPDATE', undef,
        $org->{orgId});
    my $running = $s->req_bg(POST => '/api/v1/users', token => $admin, idem => new_key(),
        json => user_body());
    $s->wait_until('a request waits inside its transaction', sub { $s->lock_waits == 1 });
    my $t0 = time;
    my $r = $s->remit('purge-idempotency');
    my $took = time - $t0;
    is $r->{exit}, 0, 'purge-idempotency exits 0' or diag $r->{stderr};
    (my $out = $r->{stdout}) =~ s/\n\z//;
    like $out, qr/^\{"deleted":[1-9]\d*\}$/, "it deleted the expired keys: $out";
    cmp_ok $took, '<', 2, sprintf 'without waiting for the running request (%.2f s)', $took;
    is scalar @{ key_rows($_) }, 0, "expired $_ is gone" for @expiring;
    $h->rollback;
    $h->disconnect;
    is $running->()->{status}, 201, 'the running request then ends with 201';
    restart_pool(idem_retention => 86400);
};

subtest 'the pool purges expired keys every purge_interval seconds' => sub {
    restart_pool(idem_retention => 1, purge_interval => 1);
    my $key = new_key();
    is post_user($admin, $key, user_body())->{status}, 201, 'a key';
    my $deadline = time + 15;
    sleep 0.2 while @{ key_rows($key) } && time < $deadline;
    is scalar @{ key_rows($key) }, 0, 'its row is gone once it expired';
    restart_pool(idem_retention => 86400, purge_interval => 0);
};

subtest 'the audit chain still verifies' => sub {
    my $r = $s->remit('verify-audit');
    is $r->{exit}, 0, 'remit verify-audit exits 0' or diag $r->{stderr};
};

done_testing;
