use strict;
use warnings;
use utf8;

use Test::More;
use JSON::PP ();
use Remit::Test;

# Tenancy and authorisation (doc/openapi.yaml#Conventions, #Authentication, #paths). Nothing of another organisation is ever
# visible: its ids answer 404 exactly as ids that do not exist (same status, same body), and
# so do the ids of deleted things; no list ever holds another organisation's row, and a list
# filtered by another organisation's id is empty. A revoked token is 401 everywhere. Every
# route is tried with every role (and users with several); the matrix below is the roles of
# doc/openapi.yaml#paths, not the code's. Nothing refused may change anything.

binmode(Test::More->builder->$_, ':encoding(UTF-8)') for qw(output failure_output todo_output);

my $s = Remit::Test->stack;
my $JSON = JSON::PP->new->utf8->canonical;
my @ROLES = qw(ADMIN CREATOR APPROVER TREASURER VIEWER);
my %REQ = (amount => '10.00', currency => 'USD', beneficiaryName => 'Ann',
    beneficiaryAccount => 'GB82WEST12345698765432');

sub must {
    my ($r, $status, $what) = @_;
    die "$what: $r->{status} $r->{body}\n" unless $r->{status} == $status;
    return $r->{json}{data};
}

# An organisation with one user per role, one with all of them, and fixture users.
sub team {
    my $o = $s->new_org;
    my %t = (org => $o->{orgId}, admin => { id => $o->{userId}, token => $o->{token} });
    $t{lc $_} = $s->new_user($o->{token}, roles => [$_]) for grep { $_ ne 'ADMIN' } @ROLES;
    $t{approver2} = $s->new_user($o->{token}, roles => ['APPROVER']);
    $t{all} = $s->new_user($o->{token}, roles => [@ROLES]);
    return \%t;
}

sub post {
    my ($who, $path, $json) = @_;
    return $s->req(POST => $path, token => $who->{token}, idem => 1, json => $json // {});
}

sub batch_of { must(post($_[0]{creator}, '/api/v1/batches', { name => $_[1] // 'B' }), 201, 'batch')->{id} }

sub request_in {
    my ($t, $bid, %f) = @_;
    return must(post($t->{creator}, "/api/v1/batches/$bid/requests", { %REQ, %f }), 201, 'request')->{id};
}

sub submit { must(post($_[0]{creator}, "/api/v1/batches/$_[1]/submit"), 200, 'submit') }

sub pending {
    my ($t, %f) = @_;
    my $bid = batch_of($t);
    my $rid = request_in($t, $bid, %f);
    submit($t, $bid);
    return wantarray ? ($rid, $bid) : $rid;
}

sub approved {
    my ($t, %f) = @_;
    my ($rid, $bid) = pending($t, %f);
    must(post($t->{approver2}, "/api/v1/requests/$rid/approve"), 200, 'approve');
    return wantarray ? ($rid, $bid) : $rid;
}

sub paid {
    my ($t, %f) = @_;
    my ($rid, $bid) = approved($t, %f);
    must(post($t->{treasurer}, "/api/v1/requests/$rid/mark-paid", { paymentReference => 'P' }),
        200, 'mark-paid');
    return wantarray ? ($rid, $bid) : $rid;
}

sub new_token {
    my ($t, $user) = @_;
    my $r = $s->req(POST => "/api/v1/users/$user->{id}/tokens", token => $t->{admin}{token},
        json => { name => 'extra' });
    return must($r, 201, 'token');
}

sub invitation {
    my ($t, $user) = @_;
    return must($s->req(POST => "/api/v1/users/$user->{id}/invitations", token => $t->{admin}{token},
        json => {}), 201, 'invitation')->{token};
}

# The sign-in of a user of $t with a password, made once: {orgId, email, password}.
my %SIGNED_UP;
sub signed_up {
    my ($t) = @_;
    return $SIGNED_UP{$t} //= do {
        my $u = $s->new_user($t->{admin}{token});
        must($s->req(POST => '/api/v1/invitations/accept',
            json => { token => invitation($t, $u), password => 'matrix password 2' }), 200, 'accept');
        { orgId => $t->{org}, email => $u->{email}, password => 'matrix password 2' };
    };
}

sub revoke { must($s->req(DELETE => "/api/v1/tokens/$_[1]", token => $_[0]{admin}{token}), 204, 'revoke') }

sub dbcol {
    my ($sql, @bind) = @_;
    return [ map { $_->[0] } @{ $s->dbh->selectall_arrayref($sql, undef, @bind) } ];
}

my @SNAP = (
    [ users => 'COUNT(*) FROM users' ], [ tokens => 'COUNT(*) FROM tokens' ],
    [ user_state => "CONCAT(COALESCE(SUM(active), 0), '/', COALESCE(SUM(roles), 0), '/', COALESCE(SUM(LENGTH(name)), 0)) FROM users" ],
    [ invitations => 'COUNT(*) FROM invitations WHERE used_at IS NULL AND voided_at IS NULL' ],
    [ revoked => 'COUNT(*) FROM tokens WHERE revoked_at IS NOT NULL' ],
    [ rules => 'COUNT(*) FROM approval_rules' ],
    [ rules_sum => 'COALESCE(SUM(approvals * 1000 + min_amount), 0) FROM approval_rules' ],
    [ batches => 'COUNT(*) FROM batches' ], [ batch_versions => 'COALESCE(SUM(version), 0) FROM batches' ],
    [ requests => 'COUNT(*) FROM payment_requests' ],
    [ request_versions => 'COALESCE(SUM(version), 0) FROM payment_requests' ],
    [ decisions => 'COUNT(*) FROM decisions' ], [ ledger => 'COUNT(*) FROM ledger_entries' ],
    [ audit => 'COUNT(*) FROM audit_events' ], [ keys => 'COUNT(*) FROM idempotency_keys' ],
);
my $SNAP_SQL = 'SELECT ' . join ', ', map { "(SELECT $_->[1])" } @SNAP;
sub snapshot { join ' ', map { "$SNAP[$_][0]=" . $_[0][$_] } 0 .. $#SNAP }
sub state_now { snapshot([ $s->dbh->selectrow_array($SNAP_SQL) ]) }

sub label {
    my ($t) = @_;
    $t = substr($t, 0, 110) . "..." if length $t > 114;
    $t =~ s/([^\x20-\x7e])/sprintf '\\x{%x}', ord $1/ge;
    return $t;
}

# ---- two organisations and their things ------------------------------------------------

my $A = team();
my $B = team();

# A: one thing in each state, a deleted DRAFT request, an active and a revoked token, a
# currency (CHF) that B never uses, rules of its own.
must($s->req(PUT => '/api/v1/approval-rules', token => $A->{admin}{token},
    json => { rules => [ { currency => 'EUR', minAmount => '500.00', approvals => 2 } ] }), 200, 'A rules');
my %a;
$a{draft_batch} = batch_of($A, 'A draft');
$a{draft_req} = request_in($A, $a{draft_batch});
$a{deleted_req} = request_in($A, $a{draft_batch});
must($s->req(DELETE => "/api/v1/requests/$a{deleted_req}", token => $A->{creator}{token}), 204, 'delete');
($a{pending_req}, $a{submitted_batch}) = pending($A);
$a{approved_req} = approved($A);
($a{paid_req}, $a{completed_batch}) = paid($A, currency => 'CHF', amount => '77.70');
$a{rejected_req} = pending($A);
must(post($A->{approver}, "/api/v1/requests/$a{rejected_req}/reject", { comment => 'no' }), 200, 'reject');
$a{cancelled_batch} = batch_of($A, 'A cancelled');
$a{cancelled_req} = request_in($A, $a{cancelled_batch});
must(post($A->{creator}, "/api/v1/batches/$a{cancelled_batch}/cancel"), 200, 'cancel');
$a{token} = new_token($A, $A->{viewer})->{id};
$a{revoked_token} = new_token($A, $A->{viewer});
revoke($A, $a{revoked_token}{id});
my $revoked_auth = $a{revoked_token}{token};
$a{revoked_token} = $a{revoked_token}{id};

# B: enough of everything that each of its lists has rows of its own.
must($s->req(PUT => '/api/v1/approval-rules', token => $B->{admin}{token},
    json => { rules => [ { currency => 'USD', minAmount => '1000000.00', approvals => 3 } ] }), 200, 'B rules');
my $b_draft = batch_of($B, 'B draft');
request_in($B, $b_draft) for 1 .. 3;
my $b_paid = paid($B);
my $b_pending = pending($B);
must(post($B->{approver}, "/api/v1/requests/$b_pending/reject", { comment => 'B no' }), 200, 'B reject');
approved($B);

# ---- ids that are not there, and ids of the other organisation -------------------------

my %ID_KIND = (    # what the {id} of each route is
    user => [ map { $A->{$_}{id} } qw(admin viewer all) ],
    token => [ @a{qw(token revoked_token)} ],
    batch => [ @a{qw(draft_batch submitted_batch completed_batch cancelled_batch)} ],
    request => [ @a{qw(draft_req pending_req approved_req paid_req rejected_req cancelled_req deleted_req)} ],
);
my ($max) = $s->dbh->selectrow_array('SELECT GREATEST((SELECT MAX(id) FROM payment_requests),'
    . ' (SELECT MAX(id) FROM batches), (SELECT MAX(id) FROM users), (SELECT MAX(id) FROM tokens))');
# Ids that do not exist: absent numbers and strings that are no id at all.
my @NO_SUCH = ($max + 1000, '123456789012345678', '9' x 19, '0', '-1', 'abc', "0$a{draft_req}",
    "$a{draft_req}.0", '1e3', '%31', 'x' x 300, '%C3%A9', "$a{draft_batch}%20", '+1');
my $RANDOM = '999999999';

my @ID_ROUTES = (
    { method => 'POST',   path => '/api/v1/users/%s/tokens',      kind => 'user', json => {} },
    { method => 'DELETE', path => '/api/v1/tokens/%s',            kind => 'token', any_role => 1 },
    { method => 'PATCH',  path => '/api/v1/users/%s',             kind => 'user', json => { name => 'x' } },
    { method => 'POST',   path => '/api/v1/users/%s/invitations', kind => 'user', json => {} },
    { method => 'GET',    path => '/api/v1/batches/%s',           kind => 'batch' },
    { method => 'POST',   path => '/api/v1/batches/%s/requests',  kind => 'batch', json => {%REQ}, idem => 1 },
    { method => 'GET',    path => '/api/v1/batches/%s/requests',  kind => 'batch' },
    { method => 'POST',   path => '/api/v1/batches/%s/submit',    kind => 'batch', json => {}, idem => 1 },
    { method => 'POST',   path => '/api/v1/batches/%s/cancel',    kind => 'batch', json => {}, idem => 1 },
    { method => 'GET',    path => '/api/v1/requests/%s',          kind => 'request' },
    { method => 'PATCH',  path => '/api/v1/requests/%s',          kind => 'request', json => { purpose => 'x' } },
    { method => 'DELETE', path => '/api/v1/requests/%s',          kind => 'request' },
    { method => 'POST',   path => '/api/v1/requests/%s/approve',  kind => 'request', json => {}, idem => 1 },
    { method => 'POST',   path => '/api/v1/requests/%s/reject',   kind => 'request', json => { comment => 'x' }, idem => 1 },
    { method => 'POST',   path => '/api/v1/requests/%s/mark-paid', kind => 'request', json => {}, idem => 1 },
    { method => 'GET',    path => '/api/v1/requests/%s/approvals', kind => 'request' },
);

# One request to a route with an id; %o: json (replaces the route's body), raw, idem => 0,
# headers, query, token.
sub hit {
    my ($rt, $id, $who, %o) = @_;
    my $path = sprintf($rt->{path}, $id) . ($o{query} // '');
    my $json = exists $o{json} ? $o{json} : $rt->{json};
    my $idem = exists $o{idem} ? $o{idem} : $rt->{idem};
    return $s->req($rt->{method}, $path, token => $o{token} // $who->{token},
        ($idem ? (idem => 1) : ()),
        (defined $o{raw} ? (raw => $o{raw}) : defined $json ? (json => $json) : ()),
        headers => $o{headers} // {});
}

# The parts of a response a client could tell apart, X-Request-Id aside.
sub shape {
    my ($r) = @_;
    my %h = %{ $r->{headers} };
    return join "\n", "status $r->{status}", map({ "$_: " . (ref $h{$_} ? "@{ $h{$_} }" : $h{$_}) }
        grep { !/^(x-request-id|date|content-length|connection|server)$/ } sort keys %h), $r->{body};
}

my ($probes, $same) = (0, 0);

# Each case: the response for the given id must look exactly like the one for $RANDOM.
sub same_as_random {
    my ($rt, $who, $ids, $what, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ref = hit($rt, $RANDOM, $who, %o);
    my $want = shape($ref);
    for my $id (@$ids) {
        my $r = hit($rt, $id, $who, %o);
        $probes++;
        my $ok = shape($r) eq $want;
        $same++ if $ok;
        ok $ok, label("$rt->{method} " . sprintf($rt->{path}, $id) . ": $what: as for an unknown id")
            or diag "got:\n" . shape($r) . "\nfor $RANDOM:\n$want";
    }
    return $ref;
}

subtest "another organisation's ids answer 404 exactly like ids that do not exist" => sub {
    my $before = state_now();
    for my $rt (@ID_ROUTES) {
        my $ref = same_as_random($rt, $B->{all}, [ @{ $ID_KIND{ $rt->{kind} } }, @NO_SUCH ],
            "B's all-roles user, A's $rt->{kind} ids and ids that are none");
        is_error $ref, 404, 'NOT_FOUND', "$rt->{method} $rt->{path}: 404 NOT_FOUND for an unknown id";
        is_deeply $ref->{json}{error}{details}, {}, "$rt->{method} $rt->{path}: details {}";
        ok !exists $ref->{headers}{etag}, "$rt->{method} $rt->{path}: no ETag";
    }
    is state_now(), $before, 'nothing changed';
};

subtest 'the order of checks does not tell a foreign id from an unknown one' => sub {
    my $before = state_now();
    for my $rt (@ID_ROUTES) {
        my @ids = @{ $ID_KIND{ $rt->{kind} } };
        my $mut = $rt->{method} ne 'GET';
        # 404 comes before 412: a stale If-Match must not reveal a version.
        same_as_random($rt, $B->{all}, \@ids, 'a stale If-Match', headers => { 'If-Match' => '"999"' })
            if $mut;
        same_as_random($rt, $B->{all}, \@ids, 'invalid fields', json => { zz => [1] }) if $mut && $rt->{json};
        same_as_random($rt, $B->{all}, \@ids, 'an unknown query parameter', query => '?zz=1');
        same_as_random($rt, $B->{all}, \@ids, 'bad JSON', raw => '{bad') if $rt->{json};
        same_as_random($rt, $B->{all}, \@ids, 'no Idempotency-Key', idem => 0) if $rt->{idem};
        # The role comes before the object: B's VIEWER gets 403 for A's ids and unknown ones
        # alike; where any role may act on its own objects (revoking a token), 404 comes first.
        if ($mut) {
            my $ref = same_as_random($rt, $B->{viewer}, \@ids, "B's VIEWER");
            my @want = $rt->{any_role} ? (404, 'NOT_FOUND') : (403, 'FORBIDDEN');
            is_error $ref, @want, "$rt->{method} $rt->{path}: B's VIEWER: $want[0] for an unknown id";
        }
    }
    is state_now(), $before, 'nothing changed';
};

subtest 'a deleted DRAFT request is gone: 404 like an unknown id, within its own organisation' => sub {
    my $before = state_now();
    for my $rt (grep { $_->{kind} eq 'request' } @ID_ROUTES) {
        same_as_random($rt, $A->{all}, [ $a{deleted_req} ], "A's all-roles user, A's deleted request");
        same_as_random($rt, $A->{creator}, [ $a{deleted_req} ], "A's creator, who made it")
            if $rt->{method} =~ /^(GET|PATCH|DELETE)$/;
    }
    is state_now(), $before, 'nothing changed';
    my $r = $s->req(GET => "/api/v1/batches/$a{draft_batch}/requests", token => $A->{viewer}{token});
    ok !(grep { $_->{id} eq $a{deleted_req} } @{ $r->{json}{data} }), 'not in its batch\'s list';
    $r = $s->req(GET => "/api/v1/ledger/entries?requestId=$a{deleted_req}", token => $A->{viewer}{token});
    is_deeply $r->{json}{data}, [], 'no ledger entry for it';
};

subtest 'revoked tokens: their ids are 404 to others; revoking again is 204 (API §4)' => sub {
    # doc/openapi.yaml#Lifecycle: "revoking a revoked token is 204 with no event", so within its organisation a
    # revoked token's id still names a token; to any other organisation it is unknown.
    my $rt = (grep { $_->{kind} eq 'token' } @ID_ROUTES)[0];
    same_as_random($rt, $B->{admin}, [ $a{revoked_token} ], "B's admin, A's revoked token");
    my $events = sub { $s->dbh->selectrow_array('SELECT COUNT(*) FROM audit_events WHERE org_id = ?',
        undef, $A->{org}) };
    my $n = $events->();
    is $s->req(DELETE => "/api/v1/tokens/$a{revoked_token}", token => $A->{admin}{token})->{status},
        204, "A's admin: revoking A's revoked token again: 204";
    is $events->(), $n, 'no event';
    is $s->req(GET => '/api/v1/me', token => $A->{viewer}{token})->{status}, 200,
        "the A token B tried to revoke still works";
};

subtest 'a revoked token is 401 on every route, like an unknown token' => sub {
    my @paths = ([ GET => '/api/v1/me' ], [ GET => '/api/v1/nope' ], [ PUT => '/api/v1/me' ],
        map { [ $_->{method} => sprintf $_->{path}, $RANDOM ] } @ID_ROUTES);
    push @paths, map { [ @$_ ] } ([ POST => '/api/v1/users' ], [ GET => '/api/v1/users' ],
        [ GET => '/api/v1/approval-rules' ], [ PUT => '/api/v1/approval-rules' ],
        [ POST => '/api/v1/batches' ], [ GET => '/api/v1/batches' ], [ GET => '/api/v1/ledger/entries' ],
        [ GET => '/api/v1/ledger/balances' ], [ GET => '/api/v1/audit' ]);
    (my $unknown = $revoked_auth) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;
    my $before = state_now();
    for my $p (@paths) {
        my ($m, $path) = @$p;
        my %o = (idem => 1, ($m =~ /^(POST|PUT|PATCH)$/ ? (json => {}) : ()));
        my $r = $s->req($m, $path, token => $revoked_auth, %o);
        is_error $r, 401, 'UNAUTHENTICATED', "$m $path with a revoked token";
        like $r->{headers}{'www-authenticate'} // '', qr/^Bearer\b/, "$m $path: WWW-Authenticate: Bearer";
        is shape($r), shape($s->req($m, $path, token => $unknown, %o)), "$m $path: as for an unknown token";
    }
    is state_now(), $before, 'nothing changed';
    is $s->req(GET => '/healthz', token => $revoked_auth)->{status}, 200, '/healthz needs no token';
};

# ---- the role matrix (doc/openapi.yaml#paths) ----------------------------------------------------------

# Who may call what, from the roles of doc/openapi.yaml#paths; 'any' is every authenticated user.
my %MAY = (
    'GET /healthz' => 'any',    # needs no token at all
    'GET /api/v1/me' => 'any',
    'POST /api/v1/users' => 'ADMIN',
    'GET /api/v1/users' => 'ADMIN',
    'POST /api/v1/users/{id}/tokens' => 'ADMIN',
    'DELETE /api/v1/tokens/{id}' => 'any',    # its owner or an ADMIN (v1.1)
    'PATCH /api/v1/users/{id}' => 'ADMIN',
    'POST /api/v1/users/{id}/invitations' => 'ADMIN',
    'POST /api/v1/invitations/accept' => 'any',    # needs no token at all
    'POST /api/v1/sessions' => 'any',              # needs no token at all
    'DELETE /api/v1/sessions/current' => 'any',
    'POST /api/v1/me/tokens' => 'any',
    'GET /api/v1/me/tokens' => 'any',
    'GET /api/v1/approval-rules' => 'any',
    'PUT /api/v1/approval-rules' => 'ADMIN',
    'POST /api/v1/batches' => 'CREATOR',
    'GET /api/v1/batches' => 'any',
    'GET /api/v1/batches/{id}' => 'any',
    'POST /api/v1/batches/{id}/requests' => 'CREATOR',
    'GET /api/v1/batches/{id}/requests' => 'any',
    'POST /api/v1/batches/{id}/submit' => 'CREATOR',
    'POST /api/v1/batches/{id}/cancel' => 'CREATOR',
    'GET /api/v1/requests/{id}' => 'any',
    'PATCH /api/v1/requests/{id}' => 'CREATOR',
    'DELETE /api/v1/requests/{id}' => 'CREATOR',
    'POST /api/v1/requests/{id}/approve' => 'APPROVER',
    'POST /api/v1/requests/{id}/reject' => 'APPROVER',
    'POST /api/v1/requests/{id}/mark-paid' => 'TREASURER',
    'GET /api/v1/requests/{id}/approvals' => 'any',
    'GET /api/v1/ledger/entries' => 'any',
    'GET /api/v1/ledger/balances' => 'any',
    'GET /api/v1/audit' => 'any',
);

# For each route: a request that succeeds when the role allows it: [status, path, json].
# Mutations get a fresh object each time (made by A's fixture users, so that no tested user
# decides on a request they made or submitted).
my $seq = 0;
my %MAKE = (
    'GET /healthz' => sub { [ 200, '/healthz' ] },
    'GET /api/v1/me' => sub { [ 200, '/api/v1/me' ] },
    'POST /api/v1/users' => sub { $seq++; [ 201, '/api/v1/users',
        { email => "matrix$seq-$$\@example.test", name => "M$seq", roles => ['VIEWER'] } ] },
    'GET /api/v1/users' => sub { [ 200, '/api/v1/users' ] },
    'POST /api/v1/users/{id}/tokens' => sub { [ 201, "/api/v1/users/$A->{viewer}{id}/tokens", { name => 'm' } ] },
    'DELETE /api/v1/tokens/{id}' => sub { [ 204, '/api/v1/tokens/' . new_token($A, $_[0])->{id} ] },
    'PATCH /api/v1/users/{id}' => sub { $seq++; [ 200, "/api/v1/users/$A->{viewer}{id}", { name => "V$seq" } ] },
    'POST /api/v1/users/{id}/invitations' => sub { [ 201, "/api/v1/users/$A->{viewer}{id}/invitations", {} ] },
    'POST /api/v1/invitations/accept' => sub { [ 200, '/api/v1/invitations/accept',
        { token => invitation($A, $s->new_user($A->{admin}{token})), password => 'matrix password 1' } ] },
    'POST /api/v1/sessions' => sub { [ 201, '/api/v1/sessions', signed_up($A) ] },
    # Called with an API token, as the matrix does: not a session, nothing to end.
    'DELETE /api/v1/sessions/current' => sub { [ 404, '/api/v1/sessions/current' ] },
    'POST /api/v1/me/tokens' => sub { [ 201, '/api/v1/me/tokens', { name => 'm' } ] },
    'GET /api/v1/me/tokens' => sub { [ 200, '/api/v1/me/tokens' ] },
    'GET /api/v1/approval-rules' => sub { [ 200, '/api/v1/approval-rules' ] },
    'PUT /api/v1/approval-rules' => sub { [ 200, '/api/v1/approval-rules',
        { rules => [ { currency => 'EUR', minAmount => '500.00', approvals => 2 } ] } ] },
    'POST /api/v1/batches' => sub { [ 201, '/api/v1/batches', { name => 'M' } ] },
    'GET /api/v1/batches' => sub { [ 200, '/api/v1/batches' ] },
    'GET /api/v1/batches/{id}' => sub { [ 200, "/api/v1/batches/$a{draft_batch}" ] },
    'POST /api/v1/batches/{id}/requests' => sub { [ 201, "/api/v1/batches/$a{draft_batch}/requests", {%REQ} ] },
    'GET /api/v1/batches/{id}/requests' => sub { [ 200, "/api/v1/batches/$a{draft_batch}/requests" ] },
    'POST /api/v1/batches/{id}/submit' => sub { my $b = batch_of($A); request_in($A, $b);
        [ 200, "/api/v1/batches/$b/submit", {} ] },
    'POST /api/v1/batches/{id}/cancel' => sub { [ 200, '/api/v1/batches/' . batch_of($A) . '/cancel', {} ] },
    'GET /api/v1/requests/{id}' => sub { [ 200, "/api/v1/requests/$a{paid_req}" ] },
    'PATCH /api/v1/requests/{id}' => sub { [ 200, '/api/v1/requests/' . request_in($A, $a{draft_batch}),
        { purpose => 'patched' } ] },
    'DELETE /api/v1/requests/{id}' => sub { [ 204, '/api/v1/requests/' . request_in($A, $a{draft_batch}) ] },
    'POST /api/v1/requests/{id}/approve' => sub { [ 200, '/api/v1/requests/' . pending($A) . '/approve', {} ] },
    'POST /api/v1/requests/{id}/reject' => sub { [ 200, '/api/v1/requests/' . pending($A) . '/reject',
        { comment => 'm' } ] },
    'POST /api/v1/requests/{id}/mark-paid' => sub { [ 200, '/api/v1/requests/' . approved($A) . '/mark-paid', {} ] },
    'GET /api/v1/requests/{id}/approvals' => sub { [ 200, "/api/v1/requests/$a{paid_req}/approvals" ] },
    'GET /api/v1/ledger/entries' => sub { [ 200, '/api/v1/ledger/entries' ] },
    'GET /api/v1/ledger/balances' => sub { [ 200, '/api/v1/ledger/balances' ] },
    'GET /api/v1/audit' => sub { [ 200, '/api/v1/audit' ] },
);

subtest 'the role matrix: allowed is not 403, forbidden is 403 FORBIDDEN and changes nothing' => sub {
    is_deeply [ sort keys %MAKE ], [ sort keys %MAY ], 'a request for every route of the table';
    my %users = (
        ADMIN => $A->{admin}, CREATOR => $A->{creator}, APPROVER => $A->{approver},
        TREASURER => $A->{treasurer}, VIEWER => $A->{viewer},
        'CREATOR+APPROVER' => $s->new_user($A->{admin}{token}, roles => [qw(CREATOR APPROVER)]),
        'ADMIN+TREASURER+VIEWER' => $s->new_user($A->{admin}{token}, roles => [qw(ADMIN TREASURER VIEWER)]),
        'all five' => $A->{all},
    );
    my %roles_of = map { $_ => [ $_ eq 'all five' ? @ROLES : split /\+/ ] } keys %users;
    my (%shared, $cells, $allowed, $forbidden);
    for my $route (sort keys %MAY) {
        my ($method) = split ' ', $route;
        for my $who (sort keys %users) {
            my $may = $MAY{$route} eq 'any' || grep { $_ eq $MAY{$route} } @{ $roles_of{$who} };
            $cells++;
            # Forbidden calls all get one object; if one of them went through, the next would
            # see it changed, and the state check fails anyway.
            my $req = $may ? $MAKE{$route}->($users{$who})
                : ($shared{$route} //= $MAKE{$route}->($users{$who}));
            my ($status, $path, $json) = @$req;
            my %o = (token => $users{$who}{token}, ($method eq 'POST' ? (idem => 1) : ()),
                (defined $json ? (json => $json) : ()));
            my $before = state_now();
            my $r = $s->req($method, $path, %o);
            if ($may) {
                $allowed++;
                is $r->{status}, $status, "$who: $route: allowed, $status" or diag $r->{body};
                next;
            }
            $forbidden++;
            is_error $r, 403, 'FORBIDDEN', "$who: $route: 403 FORBIDDEN";
            is_deeply $r->{json}{error}{details}, {}, "$who: $route: details {}";
            # The role is checked before the body, the key, the query and the object.
            my $hostile = $s->req($method, ($path =~ s{/\d+(/|$)}{/999999999$1}r) . '?zz=1',
                token => $users{$who}{token},
                ($method =~ /^(POST|PUT|PATCH)$/ ? (raw => '{bad') : ()),
                headers => { 'Content-Type' => 'text/plain', 'If-Match' => '"0"' });
            is_error $hostile, 403, 'FORBIDDEN',
                "$who: $route: with no key, a bad body, a bad query and an unknown id: still 403";
            is state_now(), $before, "$who: $route: nothing changed";
        }
    }
    diag "role matrix: $cells cells ($allowed allowed, $forbidden forbidden) over "
        . scalar(keys %MAY) . ' routes and ' . scalar(keys %users) . ' users';
};

# ---- lists -----------------------------------------------------------------------------

# Every row of a list, following nextCursor with pages of $limit.
sub all_rows {
    my ($token, $path, $limit) = @_;
    my (@rows, $cursor, $pages);
    do {
        my $sep = $path =~ /\?/ ? '&' : '?';
        my $r = $s->req(GET => $path . $sep . "limit=$limit" . (defined $cursor ? "&cursor=$cursor" : ''),
            token => $token);
        die "GET $path: $r->{status} $r->{body}" unless $r->{status} == 200;
        push @rows, @{ $r->{json}{data} };
        $cursor = $r->{json}{nextCursor};
        die "GET $path: more than 1000 pages" if ++$pages > 1000;
    } while (defined $cursor);
    return \@rows;
}

sub ids_of { [ sort { $a <=> $b } map { $_->{id} } @{ $_[0] } ] }
sub sorted { [ sort { $a <=> $b } @{ $_[0] } ] }

my $lists = 0;

# The list as $who sees it equals what the database holds for $who's organisation.
sub list_is {
    my ($t, $path, $sql, @bind) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $want = sorted(dbcol($sql, @bind));
    for my $limit (2, 200) {
        is_deeply ids_of(all_rows($t->{all}{token}, $path, $limit)), $want,
            "org $t->{org}: GET $path (pages of $limit): exactly its own rows (" . scalar(@$want) . ')';
        $lists++;
    }
}

subtest 'no list holds a row of another organisation' => sub {
    for my $t ($A, $B) {
        my $org = $t->{org};
        list_is($t, '/api/v1/users', 'SELECT id FROM users WHERE org_id = ?', $org);
        list_is($t, '/api/v1/batches', 'SELECT id FROM batches WHERE org_id = ?', $org);
        for my $st (qw(DRAFT SUBMITTED COMPLETED CANCELLED)) {
            list_is($t, "/api/v1/batches?status=$st",
                'SELECT id FROM batches WHERE org_id = ? AND status = ?', $org, $st);
        }
        for my $bid (@{ dbcol('SELECT id FROM batches WHERE org_id = ?', $org) }) {
            list_is($t, "/api/v1/batches/$bid/requests",
                'SELECT id FROM payment_requests WHERE org_id = ? AND batch_id = ?', $org, $bid);
        }
        for my $rid (@{ dbcol('SELECT DISTINCT request_id FROM decisions WHERE org_id = ?', $org) }) {
            list_is($t, "/api/v1/requests/$rid/approvals",
                'SELECT id FROM decisions WHERE org_id = ? AND request_id = ?', $org, $rid);
        }
        list_is($t, '/api/v1/ledger/entries', 'SELECT id FROM ledger_entries WHERE org_id = ?', $org);
        list_is($t, '/api/v1/audit', 'SELECT id FROM audit_events WHERE org_id = ?', $org);

        my $bal = $s->req(GET => '/api/v1/ledger/balances', token => $t->{viewer}{token});
        my $want = $s->dbh->selectall_arrayref(
            "SELECT l.currency, SUM(CASE WHEN l.type = 'OBLIGATION' THEN l.amount ELSE 0 END),"
            . " SUM(CASE WHEN l.type = 'SETTLEMENT' THEN l.amount ELSE 0 END), cu.minor_unit"
            . ' FROM ledger_entries l JOIN currencies cu ON cu.code = l.currency WHERE l.org_id = ?'
            . ' GROUP BY l.currency, cu.minor_unit ORDER BY l.currency', undef, $org);
        my $fmt = sub { my ($v, $m) = @_; $m ? sprintf("%d.%0${m}d", int($v / 10**$m), $v % 10**$m) : "$v" };
        is_deeply [ map { [ $_->{currency}, $_->{obligated}, $_->{settled} ] } @{ $bal->{json}{data} } ],
            [ map { [ $_->[0], $fmt->($_->[1], $_->[3]), $fmt->($_->[2], $_->[3]) ] } @$want ],
            "org $org: GET /api/v1/ledger/balances: its own ledger only";
        $lists++;
        my $rules = $s->req(GET => '/api/v1/approval-rules', token => $t->{viewer}{token})->{json}{data}{rules};
        is_deeply [ map { $_->{currency} } @$rules ], dbcol(
            'SELECT currency FROM approval_rules WHERE org_id = ? ORDER BY position', $org),
            "org $org: GET /api/v1/approval-rules: its own rules";
        my $me = $s->req(GET => '/api/v1/me', token => $t->{all}{token})->{json}{data};
        is $me->{orgId}, $org, "org $org: GET /api/v1/me: its own organisation";
    }
    my $bal = $s->req(GET => '/api/v1/ledger/balances', token => $B->{viewer}{token});
    ok !(grep { $_->{currency} eq 'CHF' } @{ $bal->{json}{data} }), "B's balances: no CHF (only A pays in CHF)";
};

subtest "filters with another organisation's ids give empty lists" => sub {
    my @a_ids = map { @$_ } values %ID_KIND;
    push @a_ids, $A->{org};    # the object id of A's approval-rules events
    for my $id (@a_ids, @NO_SUCH, $RANDOM) {
        # What the service reads from the query string ('+' a space, %XX a byte).
        (my $decoded = $id) =~ tr/+/ /;
        $decoded =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
        my $id_num = $decoded =~ /^[1-9]\d{0,17}$/ ? $decoded : -1;
        my $r = $s->req(GET => "/api/v1/ledger/entries?requestId=$id", token => $B->{all}{token});
        is $r->{status}, 200, label("B: ledger ?requestId=$id: 200");
        is_deeply [ $r->{json}{data}, $r->{json}{nextCursor} ], [ [], undef ],
            label("B: ledger ?requestId=$id: an empty list");
        $r = $s->req(GET => "/api/v1/audit?objectId=$id", token => $B->{all}{token});
        is $r->{status}, 200, label("B: audit ?objectId=$id: 200");
        # Ids are numbers per table: one of A's may also be the id of an object of B's of another
        # type. Then B sees its own events for it, never A's.
        is_deeply ids_of($r->{json}{data}), sorted(dbcol(
            'SELECT id FROM audit_events WHERE org_id = ? AND object_id = ?', $B->{org}, $id_num)),
            label("B: audit ?objectId=$id: none of A's events");
    }
    my $empty = 0;
    for my $id (map { @$_ } values %ID_KIND) {
        $empty++ unless @{ dbcol('SELECT id FROM audit_events WHERE org_id = ? AND object_id = ?',
            $B->{org}, $id) };
    }
    ok $empty > 0, "most of A's ids are no object of B's at all ($empty of "
        . scalar(map { @$_ } values %ID_KIND) . ') and give an empty audit list';
    # And the other way: A filtering by B's ids.
    for my $rid (@{ dbcol('SELECT id FROM payment_requests WHERE org_id = ?', $B->{org}) }) {
        my $r = $s->req(GET => "/api/v1/ledger/entries?requestId=$rid", token => $A->{all}{token});
        is_deeply $r->{json}{data}, [], "A: ledger ?requestId=$rid (B's request): empty";
    }
    # A cursor is no key to another organisation's rows.
    my ($a_max) = $s->dbh->selectrow_array('SELECT MAX(id) FROM batches');
    my $r = $s->req(GET => '/api/v1/batches?cursor=' . ($a_max + 1), token => $B->{viewer}{token});
    is_deeply ids_of($r->{json}{data}), sorted(dbcol('SELECT id FROM batches WHERE org_id = ? ORDER BY id DESC LIMIT 50',
        $B->{org})), "B: batches from a cursor past everyone's ids: only B's";
};

subtest "B's writes never reach A" => sub {
    my $a_rules = $s->req(GET => '/api/v1/approval-rules', token => $A->{viewer}{token})->{body};
    must($s->req(PUT => '/api/v1/approval-rules', token => $B->{admin}{token}, json => { rules => [] }),
        200, 'B clears its rules');
    is $s->req(GET => '/api/v1/approval-rules', token => $A->{viewer}{token})->{body}, $a_rules,
        "A's rules unchanged by B's PUT";
    my ($rid) = pending($A, currency => 'EUR', amount => '600.00');
    is $s->req(GET => "/api/v1/requests/$rid", token => $A->{viewer}{token})->{json}{data}{requiredApprovals},
        2, "A's submit applies A's rule";
    my $email = $s->dbh->selectrow_array('SELECT email FROM users WHERE id = ?', undef, $A->{viewer}{id});
    my $r = $s->req(POST => '/api/v1/users', token => $B->{admin}{token}, idem => 1,
        json => { email => uc $email, name => 'Twin', roles => ['VIEWER'] });
    is $r->{status}, 201, "B may have a user with the email of A's user (unique per organisation)";
    is $r->{json}{data}{orgId}, $B->{org}, 'in B';
    # A key is the user's own (doc/openapi.yaml#Idempotency): B's use of A's key never replays A's response.
    my $key = 'shared-' . Remit::Test::random_key();
    my $ra = $s->req(POST => '/api/v1/batches', token => $A->{creator}{token}, idem => $key,
        json => { name => 'Same' });
    my $rb = $s->req(POST => '/api/v1/batches', token => $B->{creator}{token}, idem => $key,
        json => { name => 'Same' });
    is $rb->{status}, 201, "B, A's key and body: 201";
    ok !$rb->{headers}{'idempotent-replayed'}, 'not a replay';
    isnt $rb->{json}{data}{id}, $ra->{json}{data}{id}, "B's own batch, not A's";
    is $s->req(GET => "/api/v1/batches/$rb->{json}{data}{id}", token => $B->{viewer}{token})->{status},
        200, 'which B can read';
};

subtest 'path and method come before the role; the role before everything else' => sub {
    my $v = $A->{viewer}{token};
    is_error $s->req(POST => '/api/v1/nope', token => $v, idem => 1, json => {}), 404, 'NOT_FOUND',
        'VIEWER, an unknown path: 404, not 403';
    is_error $s->req(PUT => '/api/v1/batches', token => $v, json => {}), 405, 'METHOD_NOT_ALLOWED',
        'VIEWER, a wrong method on a CREATOR route: 405, not 403';
    is_error $s->req(POST => "/api/v1/batches/$a{draft_batch}", token => $v, idem => 1, json => {}), 405,
        'METHOD_NOT_ALLOWED', 'VIEWER, POST to a batch: 405';
    is $s->req(GET => '/healthz')->{status}, 200, '/healthz: no token, 200';
};

diag "tenancy: $probes id probes compared with an unknown id ($same identical), $lists list reads";

done_testing;
