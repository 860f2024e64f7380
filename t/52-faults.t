use strict;
use warnings;

# Faults under load (doc/openapi.yaml#Idempotency, DESIGN "The pool", "One transaction per mutation"). Forked
# clients create payment requests in DRAFT batches of their own and drive some through
# submit, approve (a second user) and mark-paid (a treasurer); every logical operation has
# one Idempotency-Key, and an answer that is not definitive (5xx, 409
# IDEMPOTENCY_KEY_IN_PROGRESS, a connection error) is retried with that same key until it
# is. While they run, one fault per subtest: MariaDB restarted, workers SIGKILLed, nginx
# reloaded, the pool SIGHUPed. Afterwards the database must hold each effect a client saw
# succeed exactly once, under the id the client got, nothing it did not see succeed, one
# audit event per change, a chain that verifies, and a pool that serves again by itself.

use Test::More;
use File::Temp qw(tempdir);
use Time::HiRes qw(time sleep);
use Remit::Load;
use Remit::Test;

my $s = Remit::Test->stack;
my $tmp = tempdir(CLEANUP => 1);

my $CLIENTS = 6;
# At most 600 logical operations per client and run, 40 s; an operation keeps retrying for
# up to 30 s (that spans a MariaDB restart), 80 attempts.
my %LOAD = (clients => $CLIENTS, max_ops => 600, pace => 0.02, run_cap => 40,
    op_deadline => 30, max_attempts => 80, http_timeout => 20);

# ---- helpers -----------------------------------------------------------------------------

sub alive {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my ($state) = (<$fh> // '') =~ /\)\s+(\S)/;
    return defined $state && $state ne 'Z';
}

sub wchan {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/wchan" or return '';
    return <$fh> // '';
}

# A worker inside a request, found within half a second: one not blocked in epoll_pwait for
# the next connection (its /proc wchan says where it sleeps, on any architecture). Else any
# worker. Returns (pid, 1 if it was inside a request), or () when no worker runs.
sub busy_worker {
    my @w;
    my $deadline = time + 0.5;
    while (time < $deadline) {
        @w = $s->worker_pids or return ();
        my @busy = grep { wchan($_) !~ /epoll/ } @w;
        return ($busy[rand @busy], 1) if @busy;
        sleep 0.002;
    }
    return ($w[rand @w], 0);
}

# Live children of $ppid, from /proc.
sub children {
    my ($ppid) = @_;
    opendir my $d, '/proc' or return;
    my @kids;
    for my $pid (grep { /^\d+$/ } readdir $d) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my ($state, $parent) = (<$fh> // '') =~ /\)\s+(\S)\s+(\d+)/ or next;
        push @kids, $pid if $parent == $ppid && $state ne 'Z';
    }
    return @kids;
}

# ---- one fault under load ------------------------------------------------------------------

# Starts the load (Remit::Load: batches of three requests, submitted, approved, some paid) on
# a fresh organisation, calls $fault once it is under way, lets the load go on after the
# fault, stops it and checks everything. $fault returns a short note.
sub under_load {
    my ($name, $fault, %o) = @_;
    subtest $name => sub {
        my $org = $s->new_org;
        my $load = Remit::Load->new(url => $s->url, dir => $tmp, %LOAD);
        is scalar($s->worker_pids), 4, 'four workers before the load';
        $load->start($s, $org);
        ok wait_for(30, sub { $load->done >= 10 * $CLIENTS }), 'the load is under way';
        my $note = $fault->();
        my $after = $load->done;
        my $t_fault = time;
        ok wait_for(40, sub { $load->done >= $after + 4 * $CLIENTS && time - $t_fault > 2 }),
            'the load goes on after the fault';
        is $load->stop(60), $CLIENTS, 'every client finished';

        # ---- the pool serves again without help
        ok !defined $s->which_died, 'MariaDB, the pool and nginx all run'
            or diag $s->which_died . ' died';
        ok wait_for(30, sub { $s->req(GET => '/healthz')->{status} == 200 }), 'GET /healthz: 200';
        ok wait_for(40, sub { scalar($s->worker_pids) == 4 }), 'four workers';

        # ---- what the clients saw
        my @ops = $load->ops;
        my @bad = grep { !$_->{ok} } @ops;
        is_deeply [ map { "$_->{kind} $_->{key}: $_->{why}" } @bad ], [],
            scalar(@ops) . ' operations, each ended in its success';
        my %kinds;
        $kinds{ $_->{kind} }++ for grep { $_->{ok} } @ops;
        my @seen = map { @{ $_->{seen} } } @ops;
        # A database that is gone is the client's to retry (503); 500 would be our bug.
        is scalar(grep { $_ eq '500' } @seen), 0, 'no 500 on the way';
        is scalar(@seen), 0, 'a graceful fault: no request needed a retry'
            if $o{graceful};
        ok $kinds{$_}, "some '$_' operations succeeded" for qw(batch request submit approve pay);

        # ---- the database (a connection made after the fault): each effect once
        my ($dups, $lost) = $load->check($s->dbh, 'the database');
        my $v = $s->remit('verify-audit');
        is $v->{exit}, 0, 'remit verify-audit exits 0' or diag $v->{stderr};

        # ---- a fresh mutation, and its replay
        my $key = Remit::Test::random_key();
        my $creator = ($load->users)[0]{creator}{token};
        my $fresh = $s->req(POST => '/api/v1/batches', token => $creator, idem => $key,
            json => { name => 'after the fault' });
        is $fresh->{status}, 201, 'a fresh mutation succeeds' or diag $fresh->{body};
        my $again = $s->req(POST => '/api/v1/batches', token => $creator, idem => $key,
            json => { name => 'after the fault' });
        ok $again->{status} == 201 && $again->{body} eq $fresh->{body}
            && ($again->{headers}{'idempotent-replayed'} // '') eq 'true', 'and replays';

        # ---- the figures
        my $f = $load->figures;
        diag sprintf '%s: %s; operations %d, requests sent %d, retried %d (%s), '
            . 'succeeded %d (%s; %d of them as replays), duplicates %d, lost %d, '
            . 'longest operation %.1f s', $name, $note, $f->{operations}, $f->{requests},
            $f->{retried}, $f->{causes}, $f->{succeeded},
            join(', ', map { "$kinds{$_} $_" } sort keys %kinds), $f->{replays}, $dups, $lost,
            $f->{longest};
        return ($dups, $lost);
    };
}

# ---- the faults ----------------------------------------------------------------------------

under_load 'MariaDB restarted in the middle of the load' => sub {
    my $t0 = time;
    $s->stop_db;
    sleep 1;
    $s->start_db;
    return sprintf 'MariaDB down for %.1f s', time - $t0;
};

under_load 'workers SIGKILLed several times during the load' => sub {
    $s->expect_worker_kill(9);
    my @killed;
    my $inside = 0;
    for my $i (1 .. 6) {
        my ($victim, $busy) = busy_worker();
        if ($victim) {
            kill 'KILL', $victim;
            push @killed, $victim;
            $inside += $busy;
        }
        sleep 0.7 + rand 0.6;
    }
    ok wait_for(40, sub { !grep { alive($_) } @killed }), 'the killed workers are gone';
    cmp_ok $inside, '>', 0, 'at least one was killed inside a request';
    return sprintf '%d workers SIGKILLed, %d of them inside a request', scalar @killed, $inside;
};

under_load 'nginx reloaded during the load' => sub {
    my $nginx = $s->nginx_pid;
    for my $i (1 .. 2) {
        my %old = map { $_ => 1 } children($nginx);
        ok kill('HUP', $nginx), "SIGHUP $i to the nginx master";
        ok wait_for(30, sub { my @now = children($nginx); @now && !grep { $old{$_} } @now }),
            "SIGHUP $i: its workers were replaced";
        sleep 1;
    }
    ok alive($nginx), 'the same nginx master runs';
    return 'nginx reloaded twice';
}, graceful => 1;

under_load 'the pool SIGHUPed (rolling replacement) during the load' => sub {
    my $master = $s->master_pid;
    for my $i (1 .. 2) {
        my @before = $s->worker_pids;
        ok kill('HUP', $master), "SIGHUP $i to the master";
        my %old = map { $_ => 1 } @before;
        ok wait_for(30, sub {
            my @now = $s->worker_pids;
            @now == 4 && !grep { $old{$_} } @now;
        }), "SIGHUP $i: four workers, all new";
        sleep 1;
    }
    is $s->master_pid, $master, 'the same master';
    return 'pool SIGHUPed twice';
}, graceful => 1;

done_testing;
