use strict;
use warnings;

use File::Temp qw(tempdir);
use JSON::PP;
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use Remit::Test;

# Issue 23, items 2, 5 and 6 (API §7 v1.2): deactivation wins every race, a reactivated user
# needs a new invitation, and accepting one ends the API tokens the user made for themselves.
# Real forked clients mint tokens while an ADMIN deactivates and reactivates their owner.

my $s = Remit::Test->stack;
my $org = $s->new_org;
my $admin = $org->{token};
my $PW = 'correct horse battery staple';

sub one { scalar $s->dbh->selectrow_array($_[0], undef, @_[1 .. $#_]) }

sub set_active {
    my ($uid, $on) = @_;
    my $r = $s->req(PATCH => "/api/v1/users/$uid", token => $admin,
        json => { active => $on ? JSON::PP::true : JSON::PP::false });
    die "PATCH active: $r->{status} $r->{body}" unless $r->{status} == 200;
}

sub invite {
    my ($uid) = @_;
    my $r = $s->req(POST => "/api/v1/users/$uid/invitations", token => $admin, json => {});
    die "invite: $r->{status} $r->{body}" unless $r->{status} == 201;
    return $r->{json}{data}{token};
}

sub accept_inv {
    my ($inv) = @_;
    return $s->req(POST => '/api/v1/invitations/accept', json => { token => $inv, password => $PW });
}

sub sign_in {
    my ($u) = @_;
    return $s->req(POST => '/api/v1/sessions',
        json => { orgId => $org->{orgId}, email => $u->{email}, password => $PW });
}

sub admin_token_for {
    my ($uid) = @_;
    my $r = $s->req(POST => "/api/v1/users/$uid/tokens", token => $admin, json => {});
    die "mint: $r->{status} $r->{body}" unless $r->{status} == 201;
    return $r->{json}{data}{token};
}

# Forked clients that mint tokens with $token until it stops working; each minted token
# goes to a file of its own. Returns their pids.
sub minters {
    my ($dir, $token, $n) = @_;
    my @pids;
    for my $k (1 .. $n) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            open my $out, '>>', "$dir/minted-$$" or die $!;
            $out->autoflush(1);
            my $deadline = time + 20;
            while (time < $deadline) {
                my $r = $s->req(POST => '/api/v1/me/tokens', token => $token, json => { name => 'race' });
                if ($r->{status} == 201) { print $out "$r->{json}{data}{token}\n" }
                elsif ($r->{status} == 401) { last }
            }
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    return @pids;
}

subtest 'a token minted while its owner is deactivated is ended with the rest (6 rounds)' => sub {
    my $u = $s->new_user($admin, roles => ['VIEWER']);
    my $dir = tempdir(CLEANUP => 1);
    my $token = $u->{token};
    for my $round (1 .. 6) {
        my @pids = minters($dir, $token, 4);
        sleep 0.2 + rand 0.3;   # the clients are minting
        set_active($u->{id}, 0);
        waitpid $_, 0 for @pids;
        set_active($u->{id}, 1);
        $token = admin_token_for($u->{id});   # the next round's credential
    }
    my @minted = map { do { open my $f, '<', $_ or die $!; map { chomp; $_ } <$f> } } glob "$dir/minted-*";
    ok @minted > 20, scalar(@minted) . ' tokens were minted during the rounds';
    my @alive = grep { $s->req(GET => '/api/v1/me', token => $_)->{status} != 401 } @minted;
    is scalar(@alive), 0, 'none of them works after its owner was deactivated';
    is one(q{SELECT COUNT(*) FROM tokens WHERE user_id = ? AND kind = 'token' AND revoked_at IS NULL
        AND minted_by = user_id}, $u->{id}), 0, 'every token the user minted is revoked in the database';
};

subtest 'the database refuses a credential for a deactivated user, whoever inserts it' => sub {
    my $u = $s->new_user($admin, roles => ['VIEWER']);
    set_active($u->{id}, 0);
    my $ok = eval {
        $s->dbh->do(q{INSERT INTO tokens (org_id, user_id, token_hash) VALUES (?, ?, UNHEX(SHA2('x', 256)))},
            undef, $org->{orgId}, $u->{id});
        1;
    };
    ok !$ok, 'INSERT INTO tokens for an inactive user fails';
    like $s->dbh->errstr // '', qr/deactivated/, 'refused by the trigger';
    my $r = $s->req(POST => "/api/v1/users/$u->{id}/tokens", token => $admin, json => {});
    is $r->{status}, 409, 'the ADMIN route answers 409';
    is $r->{json}{error}{details}{reason}, 'USER_INACTIVE', 'USER_INACTIVE';
};

subtest 'an invitation accepted while its user is deactivated leaves no password' => sub {
    for my $round (1 .. 4) {
        my $u = $s->new_user($admin, roles => ['VIEWER']);
        my $inv = invite($u->{id});
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            accept_inv($inv);
            POSIX::_exit(0);
        }
        sleep rand 0.1;
        set_active($u->{id}, 0);
        waitpid $pid, 0;
        set_active($u->{id}, 1);
        is sign_in($u)->{status}, 401, "round $round: no sign-in after the race";
        is one('SELECT password_hash IS NULL FROM users WHERE id = ?', $u->{id}), 1,
            'no password is stored';
    }
};

subtest 'reactivation does not bring back the old password' => sub {
    my $u = $s->new_user($admin, roles => ['VIEWER']);
    is accept_inv(invite($u->{id}))->{status}, 200, 'accepted';
    is sign_in($u)->{status}, 201, 'signs in';
    set_active($u->{id}, 0);
    set_active($u->{id}, 1);
    my $r = sign_in($u);
    is $r->{status}, 401, 'the old password no longer signs in';
    is $r->{json}{error}{code}, 'INVALID_CREDENTIALS', 'INVALID_CREDENTIALS';
    is one('SELECT password_hash IS NULL FROM users WHERE id = ?', $u->{id}), 1, 'the hash is gone';
    is accept_inv(invite($u->{id}))->{status}, 200, 'a new invitation';
    is sign_in($u)->{status}, 201, 'then the user signs in again';
};

subtest 'accepting an invitation ends the tokens the user minted, not those an ADMIN made' => sub {
    my $u = $s->new_user($admin, roles => ['VIEWER']);   # its token: made by the ADMIN
    is accept_inv(invite($u->{id}))->{status}, 200, 'accepted';
    my $session = sign_in($u)->{json}{data}{token};
    my $r = $s->req(POST => '/api/v1/me/tokens', token => $session, json => { name => 'mine' });
    is $r->{status}, 201, 'a session mints a token';
    my $mine = $r->{json}{data}{token};
    is one('SELECT minted_by FROM tokens WHERE id = ?', $r->{json}{data}{id}), $u->{id},
        'recorded as the user\'s own';
    is one('SELECT minted_by FROM tokens WHERE user_id = ? AND kind = ? ORDER BY id LIMIT 1',
        $u->{id}, 'token'), one('SELECT MIN(id) FROM users WHERE org_id = ?', $org->{orgId}),
        'the ADMIN\'s token records the ADMIN';
    $r = accept_inv(invite($u->{id}));   # a password reset
    is $r->{status}, 200, 'a password reset';
    is $s->req(GET => '/api/v1/me', token => $mine)->{status}, 401, 'the token minted by the session is ended';
    is $s->req(GET => '/api/v1/me', token => $session)->{status}, 401, 'the session too';
    is $s->req(GET => '/api/v1/me', token => $u->{token})->{status}, 200, 'the ADMIN\'s token stays';
    my ($data) = one(q{SELECT data FROM audit_events WHERE org_id = ? AND action = 'user.password_set'
        AND object_id = ? ORDER BY id DESC LIMIT 1}, $org->{orgId}, $u->{id});
    is_deeply decode_json($data), { sessionsEnded => 1, tokensEnded => 1 }, 'the event counts both';
};

done_testing;
