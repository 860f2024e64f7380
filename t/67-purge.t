use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time);
use Remit::Test;

# The purge of expired Idempotency-Keys keeps up with any backlog (issue 9 item 9): it goes
# on while expired keys remain instead of deleting a fixed count per purge_interval (10,000
# a minute before, which ~166 mutations/s outgrow). Unexpired keys stay, and requests are
# served meanwhile. The rate against bench/run's write rate: BENCHMARKS.md "Purge".
my $BACKLOG = 30000;
my $s = Remit::Test->stack(start => 0, conf => { purge_interval => 60 });
$s->start;
my $o = $s->new_org;
my $root = $s->dbh;

sub fill {
    my ($n, $expires, $prefix) = @_;
    $root->do(qq{INSERT INTO idempotency_keys (user_id, idem_key, fingerprint, status, body,
        expires_at) SELECT ?, CONCAT(?, seq), UNHEX(SHA2(seq, 256)), 201, '{}', $expires
        FROM seq_1_to_$n}, undef, $o->{userId}, $prefix);
}
sub expired {
    scalar $root->selectrow_array(
        'SELECT COUNT(*) FROM idempotency_keys WHERE expires_at <= NOW(3)');
}
sub live {
    scalar $root->selectrow_array(
        q{SELECT COUNT(*) FROM idempotency_keys WHERE idem_key LIKE 'live-%'});
}

# Sign-in sessions and throttle rows, purged by the same pass: a session expired more than
# a day ago goes (the pool's role may not DELETE from tokens: a procedure does it, 0006);
# one expired an hour ago, a live one and an API token stay; so for throttle rows idle for
# two days and for an hour.
my %SESSIONS = ('2 DAY' => 1200, '1 HOUR' => 1, '-1 HOUR' => 1);   # expired … ago => rows
sub sessions {
    my ($ago) = @_;
    scalar $root->selectrow_array(q{SELECT COUNT(*) FROM tokens WHERE name = ?}, undef,
        "purge $ago");
}
sub throttle { scalar $root->selectrow_array(
    'SELECT COUNT(*) FROM sign_in_throttle WHERE failures = ?', undef, $_[0]) }

$s->stop_remit;
fill($BACKLOG, 'NOW(3) - INTERVAL 1 HOUR', 'old-');
fill(100, 'NOW(3) + INTERVAL 1 HOUR', 'live-');
is expired(), $BACKLOG, "$BACKLOG expired keys";
for my $ago (sort keys %SESSIONS) {
    my $when = $ago =~ /^-(.*)/ ? "NOW(3) + INTERVAL $1" : "NOW(3) - INTERVAL $ago";
    $root->do(qq{INSERT INTO tokens (org_id, user_id, name, token_hash, kind, expires_at)
        SELECT ?, ?, ?, UNHEX(SHA2(CONCAT(?, seq), 256)), 'session', $when
        FROM seq_1_to_$SESSIONS{$ago}}, undef, $o->{orgId}, $o->{userId}, "purge $ago", $ago);
}
$root->do(q{INSERT INTO sign_in_throttle (key_hash, failures, updated_at) VALUES
    (UNHEX(SHA2('idle', 256)), 2, NOW(3) - INTERVAL 2 DAY),
    (UNHEX(SHA2('recent', 256)), 3, NOW(3) - INTERVAL 1 HOUR)});

my $t0 = time;
$s->start_remit;
my $served = 0;
$s->wait_until("every expired key is purged well before the next purge_interval (60 s)",
    sub {
        $served++ if $s->req(GET => '/api/v1/me', token => $o->{token})->{status} == 200;
        expired() == 0;
    }, 30);
my $took = time - $t0;
diag sprintf "%d expired keys purged in %.1f s (%.0f keys/s, pool start included)",
    $BACKLOG, $took, $BACKLOG / $took;
ok $served > 0, "requests were served meanwhile ($served)";
is live(), 100, 'the unexpired keys are kept';

ok wait_for(30, sub { sessions('2 DAY') <= 200 }),
    'sessions expired two days ago are purged, 1,000 a pass (1,200 → ' . sessions('2 DAY') . ')';
is sessions('1 HOUR'), 1, 'a session expired an hour ago stays';
is sessions('-1 HOUR'), 1, 'a live session stays';
is $s->req(GET => '/api/v1/me', token => $o->{token})->{status}, 200,
    'the API token is untouched';
is throttle(2), 0, 'a throttle row idle for two days is purged';
is throttle(3), 1, 'one idle for an hour stays';

my $r = $s->req(POST => '/api/v1/users', token => $o->{token}, idem => 'live-7',
    json => { email => 'x@y.example', name => 'X', roles => ['VIEWER'] });
is_error $r, 422, 'IDEMPOTENCY_KEY_REUSED', 'an unexpired key still answers for its request';

done_testing;
