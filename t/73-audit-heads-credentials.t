use strict;
use warnings;

use JSON::PP;
use Test::More;
use Remit::Test qw(:DEFAULT sql_error);

# Issue 23, items 3 and 9 (API §7 v1.2). verify-audit checks every organisation that has
# events, and the pool's own database account may not move or delete a chain's head (the
# append goes through audit_append, which owns it). Every audit event records the credential
# that made it, covered by the chain's hash.

my $s = Remit::Test->stack;
my $first = $s->new_org;
my $victim = $s->new_org;
my $admin = $victim->{token};
my $PW = 'correct horse battery staple';

my $app = $s->app_dbh;
my $root = $s->dbh;

sub one { scalar $root->selectrow_array($_[0], undef, @_[1 .. $#_]) }

# Runs SQL as the pool's user; the server's error number (0 when it succeeded).
sub as_app { sql_error($app, @_) }

my $u = $s->new_user($admin, roles => ['CREATOR']);
is $s->req(POST => '/api/v1/batches', token => $u->{token}, idem => 1, json => { name => 'B' })->{status},
    201, 'the victim organisation has events';

subtest 'the pool\'s account may not move or delete a chain head' => sub {
    my ($seq, $hash) = $root->selectrow_array('SELECT seq, hash FROM audit_heads WHERE org_id = ?',
        undef, $victim->{orgId});
    is as_app(q{INSERT INTO orgs (name) VALUES ('decoy')}), 0, 'it may still create an organisation';
    is as_app(q{UPDATE audit_heads SET org_id = LAST_INSERT_ID(), seq = 0, hash = REPEAT('0', 64)
        WHERE org_id = ?}, $victim->{orgId}), 1142, 'UPDATE audit_heads: command denied';
    is as_app('DELETE FROM audit_heads WHERE org_id = ?', $victim->{orgId}), 1142,
        'DELETE audit_heads: command denied';
    is_deeply [ $root->selectrow_array('SELECT seq, hash FROM audit_heads WHERE org_id = ?', undef,
        $victim->{orgId}) ], [ $seq, $hash ], 'the head is where it was';
    my $r = $s->req(POST => '/api/v1/batches', token => $u->{token}, idem => 1, json => { name => 'C' });
    is $r->{status}, 201, 'and the pool still appends through audit_append';
    is one('SELECT seq FROM audit_heads WHERE org_id = ?', $victim->{orgId}), $seq + 1, 'the head moved by one';
    $r = $s->remit('verify-audit');
    is $r->{exit}, 0, 'verify-audit: intact' or diag $r->{stderr};
};

subtest 'verify-audit checks an organisation whose head was moved away' => sub {
    # As an account that still could (the schema's owner): the review's reproduction.
    $root->do(q{INSERT INTO orgs (name) VALUES ('decoy')});
    $root->do(q{UPDATE audit_heads SET org_id = LAST_INSERT_ID(), seq = 0, hash = REPEAT('0', 64)
        WHERE org_id = ?}, undef, $victim->{orgId});
    my $r = $s->remit('verify-audit');
    isnt $r->{exit}, 0, 'verify-audit fails';
    unlike $r->{stdout}, qr/"audit":"ok"/, 'and does not print ok';
    like $r->{stderr}, qr/organisation $victim->{orgId}\b.*no chain head/, 'naming the organisation left without a head';
    my ($decoy) = $root->selectrow_array('SELECT org_id FROM audit_heads WHERE seq = 0 AND org_id > ?',
        undef, $victim->{orgId});
    $root->do(q{UPDATE audit_heads h JOIN (SELECT seq, hash FROM audit_events WHERE org_id = ?
        ORDER BY seq DESC LIMIT 1) e SET h.org_id = ?, h.seq = e.seq, h.hash = e.hash WHERE h.org_id = ?},
        undef, $victim->{orgId}, $victim->{orgId}, $decoy);
    $r = $s->remit('verify-audit');
    is $r->{exit}, 0, 'put back: intact again' or diag $r->{stderr};
};

subtest 'a head that does not match its last event is a break' => sub {
    $root->do('UPDATE audit_heads SET seq = seq - 1 WHERE org_id = ?', undef, $first->{orgId});
    my $r = $s->remit('verify-audit');
    isnt $r->{exit}, 0, 'verify-audit fails';
    like $r->{stderr}, qr/organisation $first->{orgId}\b/, 'naming it';
    $root->do('UPDATE audit_heads SET seq = seq + 1 WHERE org_id = ?', undef, $first->{orgId});
    is $s->remit('verify-audit')->{exit}, 0, 'put back';
};

# The last event the victim organisation recorded for object $id and action $action.
sub event_of {
    my ($action, $id) = @_;
    my $r = $s->req(GET => "/api/v1/audit?objectId=$id", token => $admin);
    die "audit: $r->{status}" unless $r->{status} == 200;
    my ($e) = grep { $_->{action} eq $action } @{ $r->{json}{data} };
    return $e;
}

subtest 'every event records its credential: {kind, id, mintedBy}' => sub {
    my $admin_id = $victim->{userId};
    my ($admin_tok) = one(q{SELECT MIN(id) FROM tokens WHERE user_id = ? AND kind = 'token'}, $admin_id);
    my $p = $s->new_user($admin, roles => ['APPROVER']);
    my ($p_tok) = one(q{SELECT MAX(id) FROM tokens WHERE user_id = ?}, $p->{id});

    is_deeply event_of('user.created', $p->{id})->{credential},
        { kind => 'token', id => "$admin_tok", mintedBy => undef },
        'the bootstrap token: a token made by nobody else';

    my $r = $s->req(POST => '/api/v1/me/tokens', token => $p->{token}, json => { name => 'x' });
    is $r->{status}, 201, 'a token made by an ADMIN mints one';
    is_deeply event_of('token.created', $r->{json}{data}{id})->{credential},
        { kind => 'token', id => "$p_tok", mintedBy => "$admin_id" },
        'with a token made by the ADMIN: mintedBy names the ADMIN';
    my $own = $r->{json}{data};
    $r = $s->req(DELETE => "/api/v1/tokens/$own->{id}", token => $own->{token});
    is $r->{status}, 204, 'its own token revokes itself';
    is_deeply event_of('token.revoked', $own->{id})->{credential},
        { kind => 'token', id => "$own->{id}", mintedBy => undef }, 'a token the user made: mintedBy null';

    my $inv = $s->req(POST => "/api/v1/users/$p->{id}/invitations", token => $admin, json => {})
        ->{json}{data}{token};
    is $s->req(POST => '/api/v1/invitations/accept', json => { token => $inv, password => $PW })->{status},
        200, 'accepted';
    is event_of('user.password_set', $p->{id})->{credential}, undef, 'accepting an invitation: null';
    $r = $s->req(POST => '/api/v1/sessions',
        json => { orgId => $victim->{orgId}, email => $p->{email}, password => $PW });
    is $r->{status}, 201, 'signed in';
    my $session = $r->{json}{data}{token};
    my ($sid) = one(q{SELECT MAX(id) FROM tokens WHERE user_id = ? AND kind = 'session'}, $p->{id});
    is event_of('session.created', $sid)->{credential}, undef, 'signing in: null';
    is $s->req(DELETE => '/api/v1/sessions/current', token => $session)->{status}, 204, 'signed out';
    is_deeply event_of('session.ended', $sid)->{credential},
        { kind => 'session', id => "$sid", mintedBy => undef }, 'a session: kind session';
    is event_of('org.created', $victim->{orgId})->{credential}, undef, 'the operator\'s bootstrap: null';

    my $v = $s->remit('verify-audit');
    is $v->{exit}, 0, 'verify-audit agrees with the procedure\'s hashes' or diag $v->{stderr};
};

subtest 'the credential is covered by the chain\'s hash' => sub {
    my ($id) = one(q{SELECT MAX(id) FROM audit_events WHERE org_id = ? AND cred_minted_by IS NOT NULL},
        $victim->{orgId});
    ok $id, "event $id was made with a token an ADMIN made";
    $root->do('DROP TRIGGER audit_no_update');
    $root->do('UPDATE audit_events SET cred_minted_by = NULL WHERE id = ?', undef, $id);
    my $r = $s->remit('verify-audit');
    isnt $r->{exit}, 0, 'hiding who made the token breaks the chain';
    like $r->{stderr}, qr/\bevent $id\b/, 'at that event';
    $root->do('UPDATE audit_events SET cred_minted_by = cred_id WHERE id = ?', undef, $id);
    $root->do(q{UPDATE audit_events e JOIN tokens t ON t.id = e.cred_id SET e.cred_minted_by = t.minted_by
        WHERE e.id = ?}, undef, $id);
    $root->do(q{CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_events FOR EACH ROW }
        . q{SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit events are append-only'});
    is $s->remit('verify-audit')->{exit}, 0, 'put back: intact';
};

$app->disconnect;
done_testing;
