package Remit::Load;

# Mixed load from forked clients that retry with their keys, and the exactly-once check of
# what it left in the database, against any URL (a single stack in t/52-faults.t, or the
# load balancer of Remit::Cluster in t/cluster/10-faults.t):
#
#   my $load = Remit::Load->new(url => $url, dir => $tmpdir);
#   $load->start($stack, $org);          # users of $org, one set per client; then forks
#   ... a fault ...
#   $load->stop;                         # waits for every client
#   my ($dups, $lost) = $load->check($dbh);   # Test::More assertions, returns the figures
#
# Each client creates DRAFT batches of three payment requests, submits every batch, approves
# each request (a second user) and marks some paid (a third). Every logical operation has one
# Idempotency-Key; an answer that is not definitive (5xx, 409 IDEMPOTENCY_KEY_IN_PROGRESS, no
# answer) is retried with that same key until it is.

use strict;
use warnings;

use HTTP::Tiny;
use JSON::PP ();
use List::Util qw(sum0 min);
use POSIX ();
use Test::More ();
use Time::HiRes qw(time sleep);

use Remit::Test;

my $JSON = JSON::PP->new->utf8->canonical;
my $IBAN = 'DE89370400440532013000';
my $RUNS = 0;

sub new {
    my ($class, %o) = @_;
    return bless {
        url => $o{url}, dir => $o{dir}, clients => $o{clients} // 6,
        pace => $o{pace} // 0.02, run_cap => $o{run_cap} // 60,
        max_ops => $o{max_ops},    # logical operations per client and run (undef: no cap)
        op_deadline => $o{op_deadline} // 40, max_attempts => $o{max_attempts} // 100,
        http_timeout => $o{http_timeout} // 30,
    }, $class;
}

# Users for each client in $org (made through $stack: a Remit::Test), then the clients.
sub start {
    my ($self, $stack, $org) = @_;
    my $admin = $org->{token};
    $self->{org} = $org;
    $self->{cl} = [ map { {
        creator   => $stack->new_user($admin, roles => ['CREATOR']),
        approver  => $stack->new_user($admin, roles => ['APPROVER']),
        treasurer => $stack->new_user($admin, roles => ['TREASURER']),
    } } 1 .. $self->{clients} ];
    my $run = ++$RUNS;   # unique over every Load of the process: its files and stop flag
    $self->{stop_file} = "$self->{dir}/stop-$run";
    $self->{files} = [ map { "$self->{dir}/run$run-client$_" } 1 .. $self->{clients} ];
    $self->{pids} = [ map { $self->_client($self->{files}[$_ - 1], $_, $self->{cl}[$_ - 1]) }
        1 .. $self->{clients} ];
    return $self;
}

# Operations finished so far, over all clients.
sub done {
    my ($self) = @_;
    my $n = 0;
    for my $f (@{ $self->{files} }) {
        open my $fh, '<', $f or next;
        $n++ while <$fh>;
    }
    return $n;
}

# Tells the clients to stop and waits (at most $timeout s); returns how many exited 0.
sub stop {
    my ($self, $timeout) = @_;
    open my $fh, '>', $self->{stop_file} or die "$self->{stop_file}: $!";
    close $fh;
    my %left = map { $_ => 1 } @{ $self->{pids} };
    my $ok = 0;
    my $deadline = time + ($timeout // 90);
    while (%left && time < $deadline) {
        for my $p (keys %left) {
            my $r = waitpid $p, POSIX::WNOHANG();
            next unless $r == $p || $r < 0;
            $ok++ if $r == $p && $? == 0;
            delete $left{$p};
        }
        sleep 0.1 if %left;
    }
    kill 'KILL', keys %left;
    waitpid $_, 0 for keys %left;
    $self->{ops} = [ map { _results($_) } @{ $self->{files} } ];
    return $ok;
}

sub ops { @{ $_[0]{ops} } }

# The users of each client: ({creator, approver, treasurer}, ...), each {id, token}.
sub users { @{ $_[0]{cl} } }

# ---- the client --------------------------------------------------------------------------

sub _results {
    my ($file) = @_;
    open my $fh, '<', $file or return ();
    return map { $JSON->decode($_) } grep { /\S/ } <$fh>;
}

sub _error_code { ref $_[0]{json} eq 'HASH' && ref $_[0]{json}{error} eq 'HASH'
    ? $_[0]{json}{error}{code} // '' : '' }

sub _retryable {
    my ($res) = @_;
    return $res->{status} >= 500
        || ($res->{status} == 409 && _error_code($res) eq 'IDEMPOTENCY_KEY_IN_PROGRESS');
}

# One logical operation: one key, retried until a definitive answer; writes one record.
sub _operation {
    my ($self, $out, %o) = @_;
    my $http = $self->{http} //= HTTP::Tiny->new(keep_alive => 0,
        timeout => $self->{http_timeout}, max_redirect => 0, agent => 'remit-load');
    my $key = Remit::Test::random_key();
    my ($res, @seen);
    my $t0 = time;
    while (1) {
        $res = $http->request('POST', $self->{url} . $o{path}, {
            headers => { Authorization => "Bearer $o{user}{token}", 'Idempotency-Key' => $key,
                'Content-Type' => 'application/json' },
            content => $JSON->encode($o{body} // {}) });
        $res->{json} = eval { $JSON->decode($res->{content}) };
        last unless _retryable($res);
        push @seen, $res->{status} == 409 ? '409-in-progress' : $res->{status};
        last if @seen >= $self->{max_attempts} || time - $t0 > $self->{op_deadline};
        sleep min(1, 0.05 * 2**min(scalar @seen, 5)) * (0.5 + rand);
    }
    my $data = ref $res->{json} eq 'HASH' ? $res->{json}{data} : undef;
    my $why = _retryable($res) ? 'unresolved after ' . scalar(@seen) . ' retries'
        : $res->{status} != $o{status} ? "status $res->{status}: $res->{content}"
        : ref $data ne 'HASH' || !defined $data->{id} ? "no data.id: $res->{content}"
        : defined $o{want} && ($data->{status} // '') ne $o{want}
            ? 'data.status is ' . ($data->{status} // 'missing') . ", expected $o{want}"
        : undef;
    $out->(kind => $o{kind}, user => $o{user}{id}, key => $key, status => $res->{status},
        id => ref $data eq 'HASH' ? $data->{id} : undef, ok => $why ? 0 : 1, why => $why,
        attempts => 1 + @seen, seen => \@seen, audit => $o{audit}, batch => $o{batch},
        replayed => ($res->{headers}{'idempotent-replayed'} // '') eq 'true' ? 1 : 0,
        secs => time - $t0, t0 => $t0);
    return $why ? undef : $data;
}

sub _load {
    my ($self, $out, $c, $cl) = @_;
    my $t_end = time + $self->{run_cap};
    my $ops = 0;
    my $more = sub { (!$self->{max_ops} || $ops < $self->{max_ops}) && time < $t_end
        && !-e $self->{stop_file} };
    my $op = sub { $ops++; sleep rand 2 * $self->{pace}; $self->_operation($out, @_) };
    for (my $nb = 0; $more->(); $nb++) {
        my $b = $op->(kind => 'batch', user => $cl->{creator}, path => '/api/v1/batches',
            body => { name => "client $c batch $nb" }, status => 201, want => 'DRAFT',
            audit => 1) or return;
        my @reqs;
        while (@reqs < 3 && $more->()) {
            my $r = $op->(kind => 'request', user => $cl->{creator},
                path => "/api/v1/batches/$b->{id}/requests", status => 201, want => 'DRAFT',
                audit => 1, body => { amount => sprintf('%d.%02d', 1 + int rand 9999, rand 100),
                    currency => 'USD', beneficiaryName => "Beneficiary $c-$nb-" . @reqs,
                    beneficiaryAccount => $IBAN, purpose => 'load' }) or return;
            push @reqs, $r->{id};
        }
        last if @reqs < 3;
        # From here the lifecycle is finished even after the stop: at most 10 more.
        $op->(kind => 'submit', user => $cl->{creator}, path => "/api/v1/batches/$b->{id}/submit",
            status => 200, want => 'SUBMITTED', audit => 1 + @reqs) or return;
        for my $r (@reqs) {
            $op->(kind => 'approve', user => $cl->{approver}, path => "/api/v1/requests/$r/approve",
                body => { comment => 'ok' }, status => 200, want => 'APPROVED', audit => 1)
                or return;
        }
        my @pay = $nb % 2 ? ($reqs[0]) : @reqs;
        for my $i (0 .. $#pay) {
            $op->(kind => 'pay', user => $cl->{treasurer},
                path => "/api/v1/requests/$pay[$i]/mark-paid", batch => $b->{id},
                body => { paymentReference => "REF-$c-$nb-$i" }, status => 200, want => 'PAID',
                audit => ($nb % 2 == 0 && $i == $#pay) ? 2 : 1) or return;
        }
    }
}

sub _client {
    my ($self, $file, $c, $cl) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    srand($$ ^ int(time * 1000));
    open my $out, '>', $file or POSIX::_exit(2);
    $out->autoflush(1);
    my $ok = eval { $self->_load(sub { print {$out} $JSON->encode({@_}), "\n" }, $c, $cl); 1 };
    print STDERR "client $$: $@" unless $ok;
    close $out;
    POSIX::_exit($ok ? 0 : 1);    # no END blocks: the stacks belong to the parent
}

# ---- the check -----------------------------------------------------------------------------

sub _compare {
    my ($expected, $found) = @_;
    my %n;
    $n{$_}++ for @$found;
    $n{$_}-- for @$expected;
    my ($extra, $missing) = (0, 0);
    for (values %n) { $extra += $_ if $_ > 0; $missing -= $_ if $_ < 0 }
    return ($extra, $missing);
}

# Every operation a client saw succeed is in the database once, under the id it got, and
# nothing else is; $label names the database (a node). Returns (duplicates, lost).
sub check {
    my ($self, $dbh, $label) = @_;
    my $org = $self->{org}{orgId};
    my @ok = grep { $_->{ok} } $self->ops;
    my %users = map { $_->{id} => 1 } map { values %$_ } @{ $self->{cl} };
    my $in = join ',', map { $dbh->quote($_) } sort keys %users;
    my $rows = $dbh->selectall_arrayref(
        "SELECT user_id, idem_key, status, body FROM idempotency_keys WHERE user_id IN ($in)",
        { Slice => {} });
    my %idem;
    push @{ $idem{"$_->{user_id} $_->{idem_key}"} }, $_ for @$rows;
    my ($dups, $lost, $wrong) = (0, 0, 0);
    my %seen_key;
    for my $op (@ok) {
        my $k = "$op->{user} $op->{key}";
        $seen_key{$k} = 1;
        my $r = $idem{$k} // [];
        $lost++ unless @$r;
        $dups += @$r - 1 if @$r > 1;
        next unless @$r == 1;
        my $stored = eval { $JSON->decode($r->[0]{body} // '')->{data}{id} } // '';
        $wrong++ unless ($r->[0]{status} // 0) == $op->{status} && $stored eq $op->{id};
    }
    my $orphans = grep { !$seen_key{$_} } keys %idem;
    Test::More::is($dups + $orphans, 0, "$label: no key stored twice, none no client saw");
    Test::More::is($lost, 0, "$label: every key a client saw succeed is stored");
    Test::More::is($wrong, 0, "$label: each under the status and id the client got");
    $dups += $orphans;

    my $ids = sub { [ map { $_->{id} } grep { $_->{kind} eq $_[0] } @ok ] };
    my $col = sub { $dbh->selectcol_arrayref($_[0], undef, $org) };
    my @checks = (
        [ 'batches', $ids->('batch'), $col->('SELECT id FROM batches WHERE org_id = ?') ],
        [ 'payment requests', $ids->('request'),
            $col->('SELECT id FROM payment_requests WHERE org_id = ?') ],
        [ 'decisions', [ map { "$_->{id} $_->{user}" } grep { $_->{kind} eq 'approve' } @ok ],
            $col->("SELECT CONCAT(request_id, ' ', approver_id) FROM decisions WHERE org_id = ?") ],
        [ 'ledger entries', [ map { $_->{kind} eq 'approve' ? "$_->{id} OBLIGATION"
                : "$_->{id} SETTLEMENT" } grep { $_->{kind} =~ /^(approve|pay)$/ } @ok ],
            $col->("SELECT CONCAT(request_id, ' ', type) FROM ledger_entries WHERE org_id = ?") ],
        [ 'submitted batches', $ids->('submit'),
            $col->("SELECT id FROM batches WHERE org_id = ? AND status <> 'DRAFT'") ],
        [ 'completed batches',
            [ map { $_->{batch} } grep { $_->{kind} eq 'pay' && $_->{audit} == 2 } @ok ],
            $col->("SELECT id FROM batches WHERE org_id = ? AND status = 'COMPLETED'") ],
        [ 'paid requests', $ids->('pay'),
            $col->("SELECT id FROM payment_requests WHERE org_id = ? AND status = 'PAID'") ],
        [ 'payment requests per client', [ map { $_->{user} } grep { $_->{kind} eq 'request' } @ok ],
            $col->('SELECT created_by FROM payment_requests WHERE org_id = ?') ],
        [ 'audit events (per key)',
            [ map { my $o = $_; map { "$o->{user} $o->{key}" } 1 .. $o->{audit} } @ok ],
            $col->("SELECT CONCAT(actor_id, ' ', COALESCE(idempotency_key, '-'))"
                . " FROM audit_events WHERE org_id = ? AND actor_id IN ($in)") ],
    );
    for my $c (@checks) {
        my ($what, $expected, $found) = @$c;
        my ($extra, $missing) = _compare($expected, $found);
        Test::More::ok(!$extra && !$missing, sprintf '%s: %s: %d as the clients saw, %d found',
            $label, $what, scalar @$expected, scalar @$found)
            or Test::More::diag("$what: $extra duplicated or unexpected, $missing lost");
        $dups += $extra;
        $lost += $missing;
    }
    my $twice = $dbh->selectrow_array('SELECT COUNT(*) FROM (SELECT 1 FROM ledger_entries'
        . ' WHERE org_id = ? GROUP BY request_id, type HAVING COUNT(*) > 1) d', undef, $org);
    Test::More::is($twice, 0, "$label: no two ledger entries of one type for a request");
    return ($dups + $twice, $lost);
}

# {requests, retried, succeeded, replays, causes} of the last run.
sub figures {
    my ($self) = @_;
    my @ops = $self->ops;
    my %causes;
    $causes{$_}++ for map { @{ $_->{seen} } } @ops;
    return {
        operations => scalar @ops,
        requests   => sum0(map { $_->{attempts} } @ops),
        retried    => sum0(map { $_->{attempts} - 1 } @ops),
        succeeded  => scalar(grep { $_->{ok} } @ops),
        replays    => scalar(grep { $_->{replayed} && $_->{ok} } @ops),
        causes     => join(', ', map { "$causes{$_}x $_" } sort keys %causes) || 'none',
        longest    => (sort { $b <=> $a } map { $_->{secs} } @ops)[0] // 0,
    };
}

1;
