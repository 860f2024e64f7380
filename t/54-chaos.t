use strict;
use warnings;

# Chaos (issue 17; README "When something dies"): forked clients add payment requests, each
# with a key of its own, retrying the same key on a 5xx, a reset or a timeout, while the
# test first SIGKILLs a random worker about every 300 ms for 30 s, then SIGKILLs MariaDB
# three times and brings it back the way script/server does (Remit::Stack::supervise: the
# same datadir, InnoDB crash recovery). Exactly-once must hold (nothing lost, nothing twice,
# no client giving up, one reply per key, the audit chain verifies); availability too: no
# whole second of the worker phase without a 2xx, and after each database crash a 2xx again
# within 15 s, every answer meanwhile a 2xx or a JSON 503 with Retry-After, none refused.

use Test::More;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP ();
use List::Util qw(min max sum0 first);
use POSIX ();
use Time::HiRes qw(time sleep);
use Remit::Test;

my $CLIENTS = 8;
my $PACE = 0.04;            # seconds between a client's operations
my $KILL_EVERY = 0.3;       # seconds between two worker kills
my $KILL_PHASE = 30;        # seconds of worker kills
my $DB_CRASHES = 3;
my $DB_RECOVERY_MAX = 15;   # seconds from a MariaDB kill to the first 2xx again
my $GIVE_UP = 60;           # seconds a client keeps retrying one key before it gives up
my $IBAN = 'DE89370400440532013000';

my $s = Remit::Test->stack;
$s->expect_worker_kill(9);
my $JSON = JSON::PP->new->utf8->canonical;
my $tmp = tempdir(CLEANUP => 1);
my $stop = "$tmp/stop";

my $org = $s->new_org;
my $creator = $s->new_user($org->{token}, roles => ['CREATOR']);
my @batches = map {
    my $r = $s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => 1,
        json => { name => "chaos client $_" });
    $r->{status} == 201 or BAIL_OUT("POST /batches: $r->{status} $r->{body}");
    $r->{json}{data}{id};
} 1 .. $CLIENTS;

# ---- the client ----------------------------------------------------------------------------

my $http = HTTP::Tiny->new(keep_alive => 0, timeout => 10, max_redirect => 0,
    agent => 'remit-chaos');

sub send_once {
    my ($batch, $key, $body) = @_;
    my $res = $http->request(POST => $s->url . "/api/v1/batches/$batch/requests", {
        headers => { Authorization => "Bearer $creator->{token}", 'Idempotency-Key' => $key,
            'Content-Type' => 'application/json' },
        content => $JSON->encode($body),
    });
    $res->{json} = eval { $JSON->decode($res->{content}) };
    return $res;
}

sub code_of { my $j = $_[0]{json}; ref $j eq 'HASH' && ref $j->{error} eq 'HASH' ? $j->{error}{code} // '' : '' }

# Not a definitive answer: the request may or may not have happened, ask again.
sub retryable {
    my ($res) = @_;
    return $res->{status} >= 500
        || ($res->{status} == 409 && code_of($res) eq 'IDEMPOTENCY_KEY_IN_PROGRESS');
}

# One attempt as a line: when its answer came, its status, and for an error whether it was
# the JSON envelope (599 is HTTP::Tiny's: refused, reset or timed out).
sub attempt_line {
    my ($res, $sent) = @_;
    return { s => $sent, t => time, st => $res->{status}, code => code_of($res),
        ra => defined $res->{headers}{'retry-after'} ? 1 : 0,
        why => $res->{status} == 599 ? substr($res->{content}, 0, 80) : '' };
}

# Adds requests until the stop file appears, each with its key until a 201, then sends
# again a sample of the keys (all that needed retries) and compares the replies.
sub client {
    my ($c, $out) = @_;
    my @done;
    for (my $n = 0; !-e $stop; $n++) {
        my $tag = sprintf 'c%d-%d-%s', $c, $n, substr Remit::Test::random_key(), 2, 10;
        my $body = { amount => sprintf('%d.%02d', 1 + $n, $c), currency => 'USD',
            beneficiaryName => "Beneficiary $c", beneficiaryAccount => $IBAN, purpose => $tag };
        my ($res, $tries, $t0) = (undef, 0, time);
        while (1) {
            my $sent = time;
            $res = send_once($batches[$c], $tag, $body);
            $out->({ a => attempt_line($res, $sent) });
            last unless retryable($res);
            $tries++;
            last if time - $t0 > $GIVE_UP;
            sleep min(0.5, 0.02 * 2**min($tries, 5)) * (0.5 + rand);
        }
        my $ok = $res->{status} == 201 && ref $res->{json} eq 'HASH' && $res->{json}{data}{id};
        $out->({ op => { tag => $tag, id => $ok ? $res->{json}{data}{id} : undef,
            status => $res->{status}, retries => $tries, gave_up => retryable($res) ? 1 : 0 } });
        push @done, [$tag, $body, $res->{content}, $tries] if $ok;
        sleep $PACE;
    }
    for my $d (grep { $_->[3] > 0 || rand() < 0.1 } @done) {
        my $res = send_once($batches[$c], $d->[0], $d->[1]);
        $out->({ replay => { tag => $d->[0], same => $res->{content} eq $d->[2] ? 1 : 0,
            status => $res->{status},
            marked => ($res->{headers}{'idempotent-replayed'} // '') eq 'true' ? 1 : 0 } });
    }
}

sub start_client {
    my ($c) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    srand($$ ^ int(time * 1000));
    open my $fh, '>', "$tmp/client-$c" or POSIX::_exit(2);
    $fh->autoflush(1);
    my $ok = eval { client($c, sub { print {$fh} $JSON->encode($_[0]), "\n" }); 1 };
    print STDERR "client $c: $@" unless $ok;
    close $fh;
    POSIX::_exit($ok ? 0 : 1);    # no END blocks: the stack belongs to the parent
}

# What the clients wrote so far (read on from where the last call stopped).
my (%offset, @REC, @OK);
sub records {
    for my $c (0 .. $CLIENTS - 1) {
        open my $fh, '<', "$tmp/client-$c" or next;
        seek $fh, $offset{$c} // 0, 0;
        while (my $line = <$fh>) {
            last unless $line =~ /\n$/;    # a line still being written
            $offset{$c} += length $line;
            my $r = $JSON->decode($line);
            push @REC, $r;
            push @OK, $r->{a} if $r->{a} && $r->{a}{st} >= 200 && $r->{a}{st} < 300;
        }
    }
    return @REC;
}

# The first 2xx to a request sent at $t or later.
sub twoxx_since {
    my ($t) = @_;
    records();
    return first { $_->{s} >= $t } @OK;
}

# ---- the chaos -----------------------------------------------------------------------------

my @pids = map { start_client($_) } 0 .. $CLIENTS - 1;
my $t_start = time;
ok wait_for(30, sub { twoxx_since($t_start) }), 'the load is under way';

my $kills = 0;
my $t_kills = time;
while (time < $t_kills + $KILL_PHASE) {
    my @w = $s->worker_pids;
    $kills += kill 'KILL', $w[rand @w] if @w;
    sleep $KILL_EVERY;
}
my $t_kills_end = time;

my @crashes;
for my $i (1 .. $DB_CRASHES) {
    my $since = time;
    ok wait_for(20, sub { twoxx_since($since) }), "before MariaDB crash $i: the pool serves";
    sleep 1;
    my $t_kill = time;
    my $pid = $s->crash_db;
    my @log = $s->supervise;    # what script/server does every half second
    note "supervise: $_" for @log;
    ok $s->db_pid && $s->db_pid != $pid, "MariaDB $i restarted on its datadir"
        or diag explain \@log;
    my $back = wait_for($DB_RECOVERY_MAX + 5, sub { twoxx_since($t_kill) });
    push @crashes, { t => $t_kill, back => $back ? $back->{t} : undef };
}
sleep 1;

open my $fh, '>', $stop or die "touch $stop: $!";
close $fh;
my %exit;
for my $pid (@pids) {
    my $deadline = time + 120;
    while (time < $deadline) {
        last if waitpid($pid, POSIX::WNOHANG()) == $pid;
        sleep 0.1;
    }
    $exit{$pid} = $?;
}

# ---- what the clients saw ------------------------------------------------------------------

my @rec = records();
my @att = map { $_->{a} // () } @rec;
my @ops = map { $_->{op} // () } @rec;
my @replays = map { $_->{replay} // () } @rec;
my $retries = sum0 map { $_->{retries} } @ops;

is scalar(grep { $_ != 0 } values %exit), 0, 'every client finished its run';
is scalar(grep { $_->{gave_up} } @ops), 0, '0 clients gave up on a key';
is scalar(grep { !$_->{id} } @ops), 0, 'every key ended in 201'
    or diag explain [grep { !$_->{id} } @ops];

subtest 'exactly once: 0 lost, 0 duplicated (the database)' => sub {
    my $dbh = $s->dbh;
    my $rows = $dbh->selectall_arrayref('SELECT purpose, COUNT(*), MIN(id) FROM payment_requests'
        . ' WHERE batch_id IN (' . join(',', ('?') x @batches) . ') GROUP BY purpose',
        undef, @batches);
    my %db = map { $_->[0] => { n => $_->[1], id => $_->[2] } } @$rows;
    my %seen = map { $_->{tag} => $_ } grep { $_->{id} } @ops;
    my @lost = grep { !$db{$_} || $db{$_}{id} != $seen{$_}{id} } keys %seen;
    my @twice = grep { $db{$_}{n} > 1 } keys %db;
    my @unknown = grep { !$seen{$_} } keys %db;
    is scalar(@lost), 0, '0 lost (each 201 is in the database under the id the client got)';
    is scalar(@twice), 0, '0 duplicated';
    is scalar(@unknown), 0, 'nothing the client did not see succeed';
    my $audit = $dbh->selectrow_array(q{SELECT COUNT(*) FROM audit_events
        WHERE object_type = 'request' AND action = 'request.created' AND org_id = ?},
        undef, $org->{orgId});
    is $audit, scalar(keys %db), 'one audit event per request';
};

ok @replays > 0, 'some keys sent again after the chaos';
is scalar(grep { !($_->{status} == 201 && $_->{same} && $_->{marked}) } @replays), 0,
    'replies for one key identical (replayed, byte for byte)';

my $v = $s->remit('verify-audit');
is $v->{exit}, 0, 'verify-audit ok' or diag $v->{stdout}, $v->{stderr};

# ---- availability --------------------------------------------------------------------------

my @ok_t = sort { $a <=> $b } map { $_->{t} } grep { $_->{st} >= 200 && $_->{st} < 300 } @att;

subtest 'workers killed: no whole second without a 2xx' => sub {
    my @in = grep { $_ >= $t_kills && $_ < $t_kills_end } @ok_t;
    my %second = map { int($_ - $t_kills) => 1 } @in;
    my @empty = grep { !$second{$_} } 0 .. int($t_kills_end - $t_kills) - 1;
    is scalar(@empty), 0, 'every second of the phase has a 2xx'
        or diag "seconds without a 2xx: @empty";
    my @edges = ($t_kills, @in, $t_kills_end);
    my ($gap, $at) = (0, 0);
    for my $i (1 .. $#edges) {
        ($gap, $at) = ($edges[$i] - $edges[$i - 1], $edges[$i - 1] - $t_kills)
            if $edges[$i] - $edges[$i - 1] > $gap;
    }
    diag sprintf 'chaos: %d workers killed in %.1f s; longest gap between 2xx: %.2f s (from %.2f s on)',
        $kills, $t_kills_end - $t_kills, $gap, $at;
    my %st;
    $st{$_->{st}}++ for grep { $_->{t} >= $t_kills && $_->{t} < $t_kills_end } @att;
    diag 'chaos: answers while workers were killed: '
        . join ', ', map { "$_ x$st{$_}" } sort keys %st;
};

for my $i (0 .. $#crashes) {
    my $c = $crashes[$i];
    subtest 'MariaDB crash ' . ($i + 1) . ': 2xx again within 15 s, only 2xx or JSON 503 meanwhile' => sub {
        ok defined $c->{back}, 'a 2xx after the kill';
        my $took = defined $c->{back} ? $c->{back} - $c->{t} : 'inf';
        cmp_ok $took, '<=', $DB_RECOVERY_MAX, 'within 15 s of the kill';
        my $end = $c->{back} // time;
        my @mean = grep { $_->{t} >= $c->{t} && $_->{t} < $end } @att;
        my @bad = grep { !($_->{st} >= 200 && $_->{st} < 300)
            && !($_->{st} == 503 && $_->{code} eq 'SERVICE_UNAVAILABLE' && $_->{ra}) } @mean;
        is scalar(@bad), 0, 'every answer a 2xx or a JSON 503 with Retry-After, none refused'
            or diag explain [@bad[0 .. min(9, $#bad)]];
        diag sprintf 'chaos: MariaDB kill %d: first 2xx after %.2f s; %d answers meanwhile (%d 503)',
            $i + 1, $took, scalar @mean, scalar grep { $_->{st} == 503 } @mean;
    };
}

diag sprintf 'chaos: %d clients, %d requests added, %d attempts, %d retries, %d replays checked',
    $CLIENTS, scalar(grep { $_->{id} } @ops), scalar @att, $retries, scalar @replays;

done_testing;
