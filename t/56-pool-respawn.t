use strict;
use warnings;

# How the master replaces dead workers (issue 17; README "When something dies"): at once,
# slot by slot; only a slot whose workers keep dying right after they start is held back,
# with a growing delay, while the other slots serve; and never so long that the whole pool
# stands empty while a slot could run.

use Test::More;
use HTTP::Tiny;
use JSON::PP ();
use List::Util qw(max);
use Time::HiRes qw(time sleep);
use Remit::Test;

my $s = Remit::Test->stack;
$s->expect_worker_kill(9);
my $JSON = JSON::PP->new->utf8;
my $http = HTTP::Tiny->new(keep_alive => 0, timeout => 10);

sub alive {
    open my $fh, '<', "/proc/$_[0]/stat" or return 0;
    my ($st) = (<$fh> // '') =~ /\)\s+(\S)/;
    return defined $st && $st ne 'Z';
}

# The pool's log lines from byte $from on, decoded.
sub log_since {
    my ($from) = @_;
    open my $fh, '<', $s->log_path or return ();
    seek $fh, $from, 0;
    return grep { $_ } map { eval { $JSON->decode($_) } } grep { /^\{/ } <$fh>;
}

# The newest worker of each slot, from the log: slot => pid.
sub slots {
    my %pid;
    $pid{ $_->{slot} } = $_->{worker} for grep { ($_->{msg} // '') eq 'worker started' } log_since(0);
    return %pid;
}

sub four_workers { scalar(grep { alive($_) } values %{ { slots() } }) == 4 && scalar($s->worker_pids) == 4 }

sub healthz { $http->get($s->url . '/healthz')->{status} }

$s->wait_until('four workers', \&four_workers, 30);

subtest 'a worker killed after it has served is replaced at once' => sub {
    my %before = slots();
    sleep 1.1;    # older than a death on start
    my $from = -s $s->log_path;
    kill 'KILL', $before{2};
    my $t0 = time;
    $s->wait_until('slot 2 has a new worker', sub { my %now = slots(); $now{2} != $before{2} && alive($now{2}) });
    cmp_ok time - $t0, '<', 1, 'within a second';
    ok !grep({ ($_->{msg} // '') =~ /respawn delayed/ } log_since($from)), 'no backoff';
    is healthz(), 200, 'GET /healthz: 200';
};

subtest 'a slot whose workers die on start is held back; the other slots serve' => sub {
    my %before = slots();
    my $from = -s $s->log_path;
    my ($kills, $last, @status) = (0, 0);
    my $t_end = time + 6;
    while (time < $t_end) {
        my %now = slots();
        if ($now{0} != $last && alive($now{0})) {
            kill 'KILL', $now{0};    # before it is 1 s old: a crash on start
            $last = $now{0};
            $kills++;
        }
        push @status, healthz();
        sleep 0.02;
    }
    my @delays = map { $_->{delay_ms} }
        grep { ($_->{msg} // '') =~ /respawn delayed/ && $_->{slot} == 0 } log_since($from);
    ok @delays >= 3, 'slot 0 was held back: ' . join(' ', map { "${_}ms" } @delays);
    is_deeply \@delays, [sort { $a <=> $b } @delays], 'with a growing delay';
    cmp_ok $kills, '<=', 12, "$kills workers of slot 0 started in 6 s, not a fork loop";
    my %now = slots();
    is_deeply [map { $now{$_} } 1 .. 3], [map { $before{$_} } 1 .. 3], 'slots 1-3 kept their workers';
    is scalar(grep { $_ != 200 } @status), 0, scalar(@status) . ' GET /healthz meanwhile: all 200';
    $s->wait_until('slot 0 runs again once its workers live', \&four_workers, 15);
};

# One worker: the whole pool is the slot that crashes on start. Its backoff grows past a
# second, but with no worker running it is tried again every second at least.
subtest 'every slot dying on start: the pool never stays empty more than a second' => sub {
    $s->stop_remit;
    $s->conf_set(workers => 1);
    $s->start_remit;
    my $from = -s $s->log_path;
    my ($last, @empty) = (0);
    my $t_kill;
    for my $i (1 .. 9) {
        my $pid = wait_for(15, sub { my ($p) = $s->worker_pids; $p && $p != $last ? $p : 0 },
            0.01);   # Remit::Test's, polled every 10 ms: the respawn delays are measured
        push @empty, time - $t_kill if $t_kill;
        last unless $pid;
        kill 'KILL', $pid;    # before it is 1 s old: a crash on start
        ($last, $t_kill) = ($pid, time);
    }
    is scalar(@empty), 8, '9 workers started and killed on start';
    my @delays = map { $_->{delay_ms} } grep { ($_->{msg} // '') =~ /respawn delayed/ } log_since($from);
    ok((grep { $_ > 1000 } @delays), 'the backoff wanted more than a second: ' . join ' ', map { "${_}ms" } @delays);
    cmp_ok max(@empty), '<', 1.5, sprintf 'yet the pool stood empty at most %.2f s', max(@empty);
    $s->wait_until('a worker runs', sub { scalar $s->worker_pids }, 15);
    is healthz(), 200, 'GET /healthz: 200';
};

done_testing;
