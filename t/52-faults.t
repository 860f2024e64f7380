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
use HTTP::Tiny;
use JSON::PP ();
use List::Util qw(sum0 min);
use POSIX ();
use Time::HiRes qw(time sleep);
use Remit::Test;

my $s = Remit::Test->stack;
my $JSON = JSON::PP->new->utf8->canonical;
my $tmp = tempdir(CLEANUP => 1);

my $CLIENTS = 6;
my $MAX_OPS = 600;       # logical operations per client and run
my $PACE = 0.02;         # seconds between a client's operations, on average
my $RUN_CAP = 40;        # seconds a client may run at most
my $OP_DEADLINE = 30;    # seconds one operation may keep retrying (spans a MariaDB restart)
my $MAX_ATTEMPTS = 80;
my $IBAN = 'DE89370400440532013000';

# ---- helpers -----------------------------------------------------------------------------


sub alive {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my ($state) = (<$fh> // '') =~ /\)\s+(\S)/;
    return defined $state && $state ne 'Z';
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

sub results {
    my ($file) = @_;
    open my $fh, '<', $file or return ();
    return map { $JSON->decode($_) } grep { /\S/ } <$fh>;
}

sub lines_in {
    my $n = 0;
    for my $f (@_) {
        open my $fh, '<', $f or next;
        $n++ while <$fh>;
    }
    return $n;
}

# Waits for the clients (at most $timeout s); returns how many exited 0.
sub reap_clients {
    my ($timeout, @pids) = @_;
    my %left = map { $_ => 1 } @pids;
    my $ok = 0;
    wait_for($timeout, sub {
        for my $p (keys %left) {
            my $r = waitpid $p, POSIX::WNOHANG();
            next unless $r == $p || $r < 0;
            $ok++ if $r == $p && $? == 0;
            delete $left{$p};
        }
        !%left;
    });
    kill 'KILL', keys %left;
    waitpid $_, 0 for keys %left;
    return $ok;
}

# Expected vs found, both lists of keys: (found beyond expected, expected not found).
sub compare_multisets {
    my ($expected, $found) = @_;
    my %n;
    $n{$_}++ for @$found;
    $n{$_}-- for @$expected;
    my ($extra, $missing) = (0, 0);
    for (values %n) { $extra += $_ if $_ > 0; $missing -= $_ if $_ < 0 }
    return ($extra, $missing);
}

# ---- the client --------------------------------------------------------------------------

my $http = HTTP::Tiny->new(keep_alive => 0, timeout => 20, max_redirect => 0,
    agent => 'remit-faults');

sub send_once {
    my ($method, $path, $token, $key, $body) = @_;
    my $content = $JSON->encode($body);
    my $res = $http->request($method, $s->url . $path, {
        headers => { Authorization => "Bearer $token", 'Idempotency-Key' => $key,
            'Content-Type' => 'application/json' },
        content => $content,
    });
    $res->{json} = eval { $JSON->decode($res->{content}) };
    return $res;
}

sub error_code { ref $_[0]{json} eq 'HASH' && ref $_[0]{json}{error} eq 'HASH'
    ? $_[0]{json}{error}{code} // '' : '' }

# Not a definitive answer: the operation may or may not have happened, ask again.
sub retryable {
    my ($res) = @_;
    return $res->{status} >= 500
        || ($res->{status} == 409 && error_code($res) eq 'IDEMPOTENCY_KEY_IN_PROGRESS');
}

# One logical operation: one key, retried until a definitive answer. Writes one record and
# returns the response's data when it is the expected success, else undef.
sub operation {
    my ($out, %o) = @_;
    my $key = Remit::Test::random_key();
    my ($res, @seen);
    my $t0 = time;
    while (1) {
        $res = send_once($o{method} // 'POST', $o{path}, $o{user}{token}, $key, $o{body} // {});
        last unless retryable($res);
        push @seen, $res->{status} == 409 ? '409-in-progress' : $res->{status};
        last if @seen >= $MAX_ATTEMPTS || time - $t0 > $OP_DEADLINE;
        sleep min(1, 0.05 * 2**min(scalar @seen, 5)) * (0.5 + rand);
    }
    my $data = ref $res->{json} eq 'HASH' ? $res->{json}{data} : undef;
    my $why = retryable($res) ? 'unresolved after ' . scalar(@seen) . ' retries'
        : $res->{status} != $o{status} ? "status $res->{status}: $res->{content}"
        : ref $data ne 'HASH' || !defined $data->{id} ? "no data.id: $res->{content}"
        : defined $o{want} && ($data->{status} // '') ne $o{want}
            ? "data.status is " . ($data->{status} // 'missing') . ", expected $o{want}"
        : undef;
    $out->(kind => $o{kind}, user => $o{user}{id}, key => $key, status => $res->{status},
        id => ref $data eq 'HASH' ? $data->{id} : undef, ok => $why ? 0 : 1, why => $why,
        attempts => 1 + @seen, seen => \@seen, audit => $o{audit},
        batch => $o{batch},
        replayed => ($res->{headers}{'idempotent-replayed'} // '') eq 'true' ? 1 : 0,
        secs => time - $t0);
    return $why ? undef : $data;
}

# Batches of three requests; every batch that fills up is submitted, each request approved
# by the client's approver, then all of them (even batches, which completes the batch) or
# only the first one (odd batches) marked paid by its treasurer.
sub load {
    my ($out, $c, $cl, $stop) = @_;
    my $t_end = time + $RUN_CAP;
    my $ops = 0;
    my $more = sub { $ops < $MAX_OPS && time < $t_end && !-e $stop };
    my $op = sub { $ops++; sleep rand 2 * $PACE; operation($out, @_) };
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
                    beneficiaryAccount => $IBAN, purpose => 'faults under load' }) or return;
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
            # Paying the last open request completes the batch: one event more.
            $op->(kind => 'pay', user => $cl->{treasurer},
                path => "/api/v1/requests/$pay[$i]/mark-paid", batch => $b->{id},
                body => { paymentReference => "REF-$c-$nb-$i" }, status => 200, want => 'PAID',
                audit => ($nb % 2 == 0 && $i == $#pay) ? 2 : 1) or return;
        }
    }
}

sub start_client {
    my ($file, $c, $cl, $stop) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    srand($$ ^ int(time * 1000));
    open my $out, '>', $file or POSIX::_exit(2);
    $out->autoflush(1);
    my $ok = eval { load(sub { print {$out} $JSON->encode({@_}), "\n" }, $c, $cl, $stop); 1 };
    print STDERR "client $$: $@" unless $ok;
    close $out;
    POSIX::_exit($ok ? 0 : 1);    # no END blocks: the stack belongs to the parent
}

# ---- one fault under load ------------------------------------------------------------------

my $run = 0;

# Starts the load on a fresh organisation, calls $fault once it is under way, lets the load
# go on after the fault, stops it and checks everything. $fault returns a short note.
sub under_load {
    my ($name, $fault, %o) = @_;
    subtest $name => sub {
        $run++;
        my $org = $s->new_org;
        my $admin = $org->{token};
        my @cl = map { {
            creator   => $s->new_user($admin, roles => ['CREATOR']),
            approver  => $s->new_user($admin, roles => ['APPROVER']),
            treasurer => $s->new_user($admin, roles => ['TREASURER']),
        } } 1 .. $CLIENTS;
        my $seq_before = $s->dbh->selectrow_array('SELECT seq FROM audit_heads WHERE org_id = ?',
            undef, $org->{orgId});
        is scalar($s->worker_pids), 4, 'four workers before the load';

        my $stop = "$tmp/stop-$run";
        my @files = map { "$tmp/run$run-client$_" } 1 .. $CLIENTS;
        my @pids = map { start_client($files[$_ - 1], $_, $cl[$_ - 1], $stop) } 1 .. $CLIENTS;
        ok wait_for(30, sub { lines_in(@files) >= 10 * $CLIENTS }), 'the load is under way';
        my $note = $fault->();
        my $after = lines_in(@files);
        my $t_fault = time;
        ok wait_for(40, sub { lines_in(@files) >= $after + 4 * $CLIENTS && time - $t_fault > 2 }),
            'the load goes on after the fault';
        open my $fh, '>', $stop or die "$stop: $!";
        close $fh;
        is reap_clients(60, @pids), $CLIENTS, 'every client finished';

        # ---- the pool serves again without help
        ok !defined $s->which_died, 'MariaDB, the pool and nginx all run'
            or diag $s->which_died . ' died';
        ok wait_for(30, sub { $s->req(GET => '/healthz')->{status} == 200 }), 'GET /healthz: 200';
        ok wait_for(40, sub { scalar($s->worker_pids) == 4 }), 'four workers';

        # ---- what the clients saw
        my @ops = map { results($_) } @files;
        my @ok = grep { $_->{ok} } @ops;
        my @bad = grep { !$_->{ok} } @ops;
        is_deeply [ map { "$_->{kind} $_->{key}: $_->{why}" } @bad ], [],
            scalar(@ops) . ' operations, each ended in its success';
        my %kinds;
        $kinds{ $_->{kind} }++ for @ok;
        my @seen = map { @{ $_->{seen} } } @ops;
        # A database that is gone is the client's to retry (503); 500 would be our bug.
        is scalar(grep { $_ eq '500' } @seen), 0, 'no 500 on the way';
        is scalar(@seen), 0, 'a graceful fault: no request needed a retry'
            if $o{graceful};
        ok $kinds{$_}, "some '$_' operations succeeded" for qw(batch request submit approve pay);

        # ---- the database (a connection made after the fault)
        my $dbh = $s->dbh;
        my %users = map { $_->{id} => 1 } map { values %$_ } @cl;
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
        is $dups, 0, 'no key stored twice';
        is $lost, 0, 'every key a client saw succeed is stored';
        is $wrong, 0, 'each stored under the status and id the client got';
        is $orphans, 0, 'no key stored that no client saw succeed';

        my $ids = sub { [ map { $_->{id} } grep { $_->{kind} eq $_[0] } @ok ] };
        my $col = sub { $dbh->selectcol_arrayref($_[0], undef, $org->{orgId}) };
        my @checks = (
            [ 'batches', $ids->('batch'), $col->('SELECT id FROM batches WHERE org_id = ?') ],
            [ 'payment requests', $ids->('request'),
                $col->('SELECT id FROM payment_requests WHERE org_id = ?') ],
            [ 'decisions', [ map { "$_->{id} $_->{user}" } grep { $_->{kind} eq 'approve' } @ok ],
                $col->("SELECT CONCAT(request_id, ' ', approver_id) FROM decisions"
                    . ' WHERE org_id = ?') ],
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
            [ 'audit events (per key)',
                [ map { my $o = $_; map { "$o->{user} $o->{key}" } 1 .. $o->{audit} } @ok ],
                $dbh->selectcol_arrayref("SELECT CONCAT(actor_id, ' ', COALESCE(idempotency_key,"
                    . " '-')) FROM audit_events WHERE org_id = ? AND seq > ?", undef,
                    $org->{orgId}, $seq_before) ],
        );
        for my $c (@checks) {
            my ($what, $expected, $found) = @$c;
            my ($extra, $missing) = compare_multisets($expected, $found);
            ok !$extra && !$missing, sprintf '%s: %d as the clients saw, %d found',
                $what, scalar @$expected, scalar @$found
                or diag "$what: $extra duplicated or unexpected, $missing lost";
            $dups += $extra;
            $lost += $missing;
        }
        my $per_creator = $dbh->selectall_arrayref('SELECT created_by, COUNT(*) FROM'
            . ' payment_requests WHERE org_id = ? GROUP BY created_by', undef, $org->{orgId});
        my %want;
        $want{ $_->{user} }++ for grep { $_->{kind} eq 'request' } @ok;
        is_deeply { map { @$_ } @$per_creator }, \%want,
            'payment requests per client: one per key that succeeded';
        is $dbh->selectrow_array('SELECT COUNT(*) FROM (SELECT 1 FROM ledger_entries'
            . ' WHERE org_id = ? GROUP BY request_id, type HAVING COUNT(*) > 1) d', undef,
            $org->{orgId}), 0, 'no two ledger entries of one type for a request';
        my $events = $dbh->selectrow_array('SELECT seq FROM audit_heads WHERE org_id = ?',
            undef, $org->{orgId}) - $seq_before;
        is $events, sum0(map { $_->{audit} } @ok), "audit events: $events, one per change";

        my $v = $s->remit('verify-audit');
        is $v->{exit}, 0, 'remit verify-audit exits 0' or diag $v->{stderr};

        # ---- a fresh mutation, and its replay
        my $key = Remit::Test::random_key();
        my $fresh = $s->req(POST => '/api/v1/batches', token => $cl[0]{creator}{token},
            idem => $key, json => { name => 'after the fault' });
        is $fresh->{status}, 201, 'a fresh mutation succeeds' or diag $fresh->{body};
        my $again = $s->req(POST => '/api/v1/batches', token => $cl[0]{creator}{token},
            idem => $key, json => { name => 'after the fault' });
        ok $again->{status} == 201 && $again->{body} eq $fresh->{body}
            && ($again->{headers}{'idempotent-replayed'} // '') eq 'true', 'and replays';

        # ---- the figures
        my %retry_causes;
        $retry_causes{$_}++ for @seen;
        diag sprintf '%s: %s; operations %d, requests sent %d, retried %d (%s), '
            . 'succeeded %d (%s; %d of them as replays), duplicates %d, lost %d, '
            . 'longest operation %.1f s',
            $name, $note, scalar @ops, sum0(map { $_->{attempts} } @ops),
            sum0(map { $_->{attempts} - 1 } @ops),
            join(', ', map { "$retry_causes{$_}× $_" } sort keys %retry_causes) || 'none',
            scalar @ok, join(', ', map { "$kinds{$_} $_" } sort keys %kinds),
            scalar(grep { $_->{replayed} } @ok), $dups, $lost,
            (sort { $b <=> $a } map { $_->{secs} } @ops)[0] // 0;
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
    for my $i (1 .. 6) {
        my @w = $s->worker_pids;
        if (@w) {
            my $victim = $w[rand @w];
            kill 'KILL', $victim;
            push @killed, $victim;
        }
        sleep 0.7 + rand 0.6;
    }
    ok wait_for(40, sub { !grep { alive($_) } @killed }), 'the killed workers are gone';
    return scalar(@killed) . ' workers SIGKILLed';
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
