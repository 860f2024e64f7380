use strict;
use warnings;

# API §7: the sign-in throttle is kept in the database, so several pools and hosts share it.
# Two pools (two `remit serve` masters, as on two app hosts) on one database, behind one
# nginx upstream that takes turns between them: failures served by either pool add up to
# one count, and the lock one pool set is the lock the other answers 429 with. Each request
# carries its own X-Request-Id so the pools' logs tell which one served it.

use Test::More;
use Digest::SHA qw(sha256_hex);
use Remit::Test;

my $s = Remit::Test->stack(pools => 2, start => 0);
$s->conf_set(workers => 2);
$s->start;

my $org = $s->new_org;
my $PW = 'two pools, one password';
my $r = $s->req(POST => '/api/v1/invitations/accept', json => { token => $org->{invitation}, password => $PW });
is $r->{status}, 200, 'the ADMIN sets a password' or diag $r->{body};
my $email = $s->dbh->selectrow_array('SELECT email FROM users WHERE id = ?', undef, $org->{userId});

my $seq = 0;
sub served_by {
    my ($rid) = @_;
    for my $n (1, 2) {
        open my $fh, '<', $s->log_path($n) or next;
        return $n if grep { /"msg":"request"/ && /"rid":"\Q$rid\E"/ } <$fh>;
    }
    return 0;
}

# One sign-in with a fresh X-Request-Id: [response, the pool that served it].
sub attempt {
    my ($pw) = @_;
    my $rid = "two-pools-$$-" . ++$seq;
    my $x = $s->req(POST => '/api/v1/sessions', json => { orgId => $org->{orgId}, email => $email, password => $pw },
        headers => { 'X-Request-Id' => $rid });
    return [ $x, served_by($rid) ];
}

sub failures {
    return scalar $s->dbh->selectrow_array('SELECT COALESCE(SUM(failures), 0) FROM sign_in_throttle');
}

subtest 'failures served by both pools add up; the lock holds on both' => sub {
    my %pools;
    for my $i (1 .. 5) {
        my ($x, $pool) = @{ attempt("wrong password $i") };
        is $x->{status}, 401, "failure $i: 401 (pool $pool)";
        $pools{$pool}++;
    }
    ok $pools{1} && $pools{2}, 'both pools counted failures (' . join(', ', map { "pool $_: $pools{$_}" } sort keys %pools) . ')';
    is failures(), 5, 'one count of 5 in the database';
    my ($first, $p1) = @{ attempt($PW) };
    is $first->{status}, 429, "the right password: 429 (pool $p1)";
    is $first->{headers}{'retry-after'}, '1', 'Retry-After: 1';
    # The lock moved in the database from here, so that a slow machine cannot outrun it.
    $s->dbh->do('UPDATE sign_in_throttle SET locked_until = NOW(3) + INTERVAL 60 SECOND');
    my %locked = ($p1 => 1);
    for my $i (1 .. 4) {
        my ($x, $pool) = @{ attempt($PW) };
        is $x->{status}, 429, "the right password, attempt $i: 429 (pool $pool)";
        like $x->{headers}{'retry-after'}, qr/^(59|60)$/, 'Retry-After: the time left';
        $locked{$pool}++;
    }
    ok $locked{1} && $locked{2}, 'both pools answered 429';
    is failures(), 5, 'the 429s counted nothing';
    $s->dbh->do('UPDATE sign_in_throttle SET locked_until = NOW(3) - INTERVAL 1 SECOND');
    my ($x, $pool) = @{ attempt('wrong again, sixth') };
    is $x->{status}, 401, "failure 6: 401 (pool $pool)";
    my ($y, $other) = @{ attempt($PW) };
    ($y, $other) = @{ attempt($PW) } while $other == $pool && $y->{status} == 429 && $seq < 40;
    is $y->{status}, 429, "the other pool (pool $other) sees the lock";
    like $y->{headers}{'retry-after'}, qr/^[12]$/, 'Retry-After: 2 (2^1) or what is left of it';
    $s->dbh->do('UPDATE sign_in_throttle SET locked_until = NOW(3) - INTERVAL 1 SECOND');
    ($x, $pool) = @{ attempt($PW) };
    is $x->{status}, 201, "lock over: the right password signs in (pool $pool)";
    is failures(), 0, 'and clears the count for both';
};

subtest 'concurrent attempts split across both pools: one password check when a lock is due' => sub {
    $s->dbh->do('DELETE FROM sign_in_throttle');
    # 14 failures and no lock: the 15th locks for 900 s, whatever the timing.
    $s->dbh->do('INSERT INTO sign_in_throttle (key_hash, failures) VALUES (UNHEX(?), 14)', undef,
        sha256_hex(length($org->{orgId}) . ':' . length($email) . ":$org->{orgId}" . lc $email));
    my $rid = "together-$$";
    my $rs = $s->req_together(10, POST => '/api/v1/sessions',
        json => { orgId => $org->{orgId}, email => $email, password => 'not the password' },
        headers => { 'X-Request-Id' => $rid });
    my %n;
    $n{ $_->{status} }++ for @$rs;
    is $n{401}, 1, 'one answered 401' or diag explain \%n;
    is $n{429}, 9, '9 answered 429';
    is failures(), 15, 'a count of 15';
    my @served = map { my $n = $_; open my $fh, '<', $s->log_path($n) or die;
        scalar grep { /"msg":"request"/ && /"rid":"\Q$rid\E"/ } <$fh> } 1, 2;
    ok $served[0] && $served[1], "both pools served some ($served[0] + $served[1])";
};

done_testing;
