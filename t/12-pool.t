use strict;
use warnings;

use Test::More;
use File::Temp qw(tempdir);
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);
use Remit::Test;

# README (script/server, script/test) and the pool (DESIGN "The pool"): the database going away and coming back, workers
# killed, SIGTERM draining, SIGHUP replacing the workers, and the bootstrap and verify-audit
# commands. Processes are signalled only by the pids the harness gives us.

my $s = Remit::Test->stack;
my $org = $s->new_org;
my $admin = $org->{token};
my $JSON = JSON::PP->new->utf8->canonical;
my $tmp = tempdir(CLEANUP => 1);
my $seq = 0;

# ---- helpers ---------------------------------------------------------------------------

sub workers { sort { $a <=> $b } $s->worker_pids }

# True while $pid is a live process (not gone, not a zombie).
sub alive {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my ($state) = (<$fh> // '') =~ /\)\s+(\S)/;
    return defined $state && $state ne 'Z';
}

sub count {
    my ($sql, @bind) = @_;
    return scalar $s->dbh->selectrow_array($sql, undef, @bind);
}

sub new_email { my $n = ++$seq; "pool$n-" . Remit::Test::random_key() . q(@example.test) }

sub post_user {
    my ($email) = @_;
    return $s->req(POST => '/api/v1/users', token => $admin, idem => 1,
        json => { email => $email, name => 'Pool', roles => ['VIEWER'] });
}

# Runs $code in a child that writes one JSON line per result to $file; returns its pid.
sub client {
    my ($file, $code) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    open my $out, '>', $file or POSIX::_exit(2);
    $out->autoflush(1);
    my $ok = eval { $code->(sub { print {$out} $JSON->encode({@_}), "\n" }); 1 };
    print STDERR "client $$: $@" unless $ok;
    close $out;
    POSIX::_exit($ok ? 0 : 1);    # no END blocks: the stack belongs to the parent
}

sub results {
    my ($file) = @_;
    open my $fh, '<', $file or return ();
    return map { $JSON->decode($_) } grep { /\S/ } <$fh>;
}

sub lines_in { scalar(() = results($_[0])) }

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

# The accept queue of the pool's listening socket (ss shows it as Recv-Q of the listener).
sub backlog {
    my $path = $s->socket_path;
    for (`ss -xlnH 2>/dev/null`) {
        my @f = split ' ';
        return $f[2] if @f > 4 && $f[4] eq $path;
    }
    return;
}

# nginx's error log from byte $from on: upstream errors only.
sub upstream_errors {
    my ($from) = @_;
    open my $fh, '<', $s->state_dir . '/nginx/error.log' or return ();
    seek $fh, $from, 0;
    return grep { /upstream|connect\(\) to unix/ } <$fh>;
}
sub nginx_log_size { -s($s->state_dir . '/nginx/error.log') // 0 }

# Stops what is left of the pool after a test stopped it, and starts a fresh one.
sub restart_pool {
    my $status = $s->stop_remit;
    $s->start_remit;
    ok wait_for(30, sub { $s->req(GET => '/healthz')->{status} == 200 }),
        'a new pool answers /healthz';
    return $status;
}

# ---- (e) the commands, on the fresh stack ----------------------------------------------

subtest 'remit bootstrap prints {orgId, userId, token, invitation} and exits 0' => sub {
    my $before = join ' ', map { count("SELECT COUNT(*) FROM $_") }
        qw(orgs users tokens audit_events);
    my $r = $s->remit('bootstrap', '--org', 'Acme Ltd', '--email', "Boss-$$\@Acme.test",
        '--name', 'The Boss');
    is $r->{exit}, 0, 'exit 0';
    is $r->{signal}, 0, 'no signal';
    my @lines = grep { /\S/ } split /\n/, $r->{stdout};
    is scalar @lines, 1, 'one line on stdout';
    my $j = eval { $JSON->decode($lines[0] // '') };
    is ref $j, 'HASH', 'a JSON object';
    is_deeply [ sort keys %{ $j // {} } ], [qw(invitation orgId token userId)], 'orgId, userId, token, invitation';
    ok !ref $j->{$_} && length($j->{$_} // ''), "$_ is a string" for qw(orgId userId token invitation);
    my $me = $s->req(GET => '/api/v1/me', token => $j->{token});
    is $me->{status}, 200, 'the token works';
    is $me->{json}{data}{id}, $j->{userId}, 'as that user';
    is $me->{json}{data}{orgId}, $j->{orgId}, 'of that organisation';
    is $me->{json}{data}{email}, "Boss-$$\@Acme.test", 'email';
    is $me->{json}{data}{name}, 'The Boss', 'name';
    is_deeply $me->{json}{data}{roles}, ['ADMIN'], 'an ADMIN';
    is count('SELECT name FROM orgs WHERE id = ?', $j->{orgId}), 'Acme Ltd', 'the organisation';
    is count('SELECT COUNT(*) FROM audit_events WHERE org_id = ?', $j->{orgId}), 4,
        'four audit events (org, user, token, invitation)';
    my @after = map { count("SELECT COUNT(*) FROM $_") } qw(orgs users tokens audit_events);
    my @b = split ' ', $before;
    is_deeply \@after, [ $b[0] + 1, $b[1] + 1, $b[2] + 1, $b[3] + 4 ],
        'one org, one user, one token, four events more';
};

subtest 'remit bootstrap with a bad email (or no --org) exits non-zero and creates nothing' => sub {
    my $state = sub { join ' ', map { count("SELECT COUNT(*) FROM $_") }
        qw(orgs users tokens audit_events audit_heads) };
    my $before = $state->();
    for my $case ([ 'no @' => 'no-at-sign.example' ], [ 'two @' => 'a@b@c.test' ],
        [ 'nothing before @' => '@example.test' ], [ 'nothing after @' => 'boss@' ],
        [ 'empty' => '' ], [ 'too long' => ('a' x 250) . '@b.cd' ],
        [ 'a control character' => "a\tb\@c.test" ]) {
        my $r = $s->remit('bootstrap', '--org', 'Bad', '--email', $case->[1]);
        isnt $r->{exit}, 0, "$case->[0]: non-zero exit";
        is $r->{stdout}, '', "$case->[0]: nothing on stdout";
        like $r->{stderr}, qr/\S/, "$case->[0]: says why on stderr";
    }
    my $r = $s->remit('bootstrap', '--email', "x$$\@y.test");
    isnt $r->{exit}, 0, 'no --org: non-zero exit';
    $r = $s->remit('bootstrap', '--org', '', '--email', "x$$\@y.test");
    isnt $r->{exit}, 0, 'an empty --org: non-zero exit';
    $r = $s->remit('bootstrap', '--org', 'o' x 141, '--email', "x$$\@y.test");
    isnt $r->{exit}, 0, 'a 141-character --org: non-zero exit';
    is $state->(), $before, 'nothing was created';
};

subtest 'bootstraps run side by side all succeed (a deadlock between them is retried)' => sub {
    my $before = count('SELECT COUNT(*) FROM orgs');
    my @pids;
    for my $i (1 .. 12) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my $r = $s->remit('bootstrap', '--org', "Side $i", '--email', "side$i-$$\@x.test");
            my $ok = $r->{exit} == 0 && $r->{stdout} =~ /"invitation":"/;
            if (!$ok && open my $fh, '>', $s->state_dir . "/bootstrap-$i.err") {
                print $fh "exit $r->{exit}: $r->{stderr}";
            }
            POSIX::_exit($ok ? 0 : 1);
        }
        push @pids, $pid;
    }
    my $failed = 0;
    for (@pids) { waitpid $_, 0; $failed++ if $? }
    is $failed, 0, 'all 12 exited 0 and printed their object' or do {
        for my $f (glob($s->state_dir . '/bootstrap-*.err')) {
            open my $fh, '<', $f or next;
            local $/;
            diag <$fh>;
        }
    };
    is count('SELECT COUNT(*) FROM orgs'), $before + 12, '12 organisations more';
    my $r = $s->remit('verify-audit');
    is $r->{exit}, 0, 'verify-audit: every chain intact' or diag $r->{stderr};
};

subtest 'remit verify-audit exits 0 on a fresh stack with events' => sub {
    my $u = post_user(new_email());
    is $u->{status}, 201, 'an API mutation too';
    ok count('SELECT COUNT(*) FROM audit_events') >= 7, 'there are events';
    my $r = $s->remit('verify-audit');
    is $r->{exit}, 0, 'exit 0' or diag $r->{stderr};
    is $r->{stderr}, '', 'nothing on stderr';
};

# ---- (a) the database stops and comes back ---------------------------------------------

subtest '/healthz is 503 while MariaDB is stopped and 200 again after, with the same pool' => sub {
    my $master = $s->master_pid;
    my @before = workers();
    is scalar @before, 4, 'four workers';
    is $s->req(GET => '/api/v1/me', token => $admin)->{status}, 200, 'API works before';

    $s->stop_db;
    for my $i (1 .. 8) {    # more requests than workers: each worker finds the server gone
        my $r = $s->req(GET => '/healthz');
        is_error $r, 503, 'SERVICE_UNAVAILABLE', "healthz $i: 503 SERVICE_UNAVAILABLE";
        like $r->{headers}{'x-request-id'} // '', qr/\S/, "healthz $i: X-Request-Id";
    }
    is_error $s->req(GET => '/api/v1/me', token => $admin), 503, 'SERVICE_UNAVAILABLE',
        'GET /api/v1/me: 503';
    is_error post_user(new_email()), 503, 'SERVICE_UNAVAILABLE', 'POST /api/v1/users: 503';
    is $s->master_pid, $master, 'the master still runs';
    ok alive($master), 'and is alive';

    $s->start_db;
    ok wait_for(30, sub { $s->req(GET => '/healthz')->{status} == 200 }),
        '/healthz answers 200 again';
    my @st = map { $s->req(GET => '/healthz')->{status} } 1 .. 12;
    is_deeply \@st, [ (200) x 12 ], 'and keeps answering 200 (every worker reconnected)';
    is $s->master_pid, $master, 'the same master';
    is_deeply [ workers() ], \@before, 'the same workers (reconnected, not restarted)';

    my @me = map { $s->req(GET => '/api/v1/me', token => $admin)->{status} } 1 .. 12;
    is_deeply \@me, [ (200) x 12 ], 'GET /api/v1/me works on every worker';
    my $email = new_email();
    my $r = post_user($email);
    is $r->{status}, 201, 'POST /api/v1/users works' or diag $r->{body};
    is count('SELECT COUNT(*) FROM users WHERE email = ?', $email), 1, 'and is stored';
};

# ---- (b) a worker killed -----------------------------------------------------------------

subtest 'a worker killed with SIGKILL is replaced; requests meanwhile all succeed' => sub {
    $s->expect_worker_kill(9);
    my $master = $s->master_pid;
    my @before = workers();
    is scalar @before, 4, 'four workers';
    my $victim = $before[0];
    # Sequential requests from here: none is in flight when the signal lands, so each one
    # must be answered, by a surviving worker or the replacement.
    my @st;
    push @st, $s->req(GET => '/api/v1/me', token => $admin)->{status} for 1 .. 5;
    kill 'KILL', $victim;
    push @st, $s->req(GET => '/api/v1/me', token => $admin)->{status} for 1 .. 45;
    is_deeply \@st, [ (200) x 50 ], '50 sequential GET /api/v1/me: all 200';
    ok wait_for(15, sub { !alive($victim) }), 'the victim is gone';
    ok wait_for(15, sub {
        my @now = workers();
        @now == 4 && !grep { $_ == $victim } @now;
    }), 'a replacement: four workers again';
    my %old = map { $_ => 1 } @before;
    my @new = grep { !$old{$_} } workers();
    is scalar @new, 1, 'exactly one new pid';
    is $s->master_pid, $master, 'the same master';
    is $s->req(GET => '/api/v1/me', token => $admin)->{status}, 200, 'still serving';
};

subtest 'all workers killed at once: queued requests are served by the replacements' => sub {
    $s->expect_worker_kill(9);
    my @before = workers();
    kill 'KILL', @before;
    my @st = map { $s->req(GET => '/api/v1/me', token => $admin)->{status} } 1 .. 10;
    is_deeply \@st, [ (200) x 10 ], '10 requests right after: all 200';
    ok wait_for(30, sub {
        my @now = workers();
        my %old = map { $_ => 1 } @before;
        @now == 4 && !grep { $old{$_} } @now;
    }), 'four new workers';
    ok !grep({ alive($_) } @before), 'none of the old ones lives';
};

subtest 'a worker killed inside a transaction: 502, nothing of it stays, the key can be retried' => sub {
    $s->expect_worker_kill(9);
    my @before = workers();
    # A user with the same email, inserted and not committed, stops the request inside its
    # transaction: after it claimed its key, its own INSERT waits for the unique key.
    my $key = Remit::Test::random_key();
    my $email = new_email();
    my $locker = $s->dbh->clone;
    $locker->{AutoCommit} = 0;
    $locker->do(q{INSERT INTO users (org_id, email, email_key, name, roles)
        VALUES (?, ?, ?, 'Locker', 4)}, undef, $org->{orgId}, $email, lc $email);
    my $dirty = $s->dbh->clone;
    $dirty->do('SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED');
    my $file = "$tmp/crash";
    my $pid = client($file, sub {
        my ($out) = @_;
        my $r = $s->req(POST => '/api/v1/users', token => $admin, idem => $key,
            json => { email => $email, name => 'Crash', roles => ['VIEWER'] });
        $out->(status => $r->{status}, body => $r->{body},
            ct => $r->{headers}{'content-type'});
    });
    my $uncommitted = sub {
        scalar $dirty->selectrow_array('SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = ?',
            undef, $key);
    };
    ok wait_for(15, sub { $uncommitted->() == 1 && $s->lock_waits == 1 }),
        'the request is inside its transaction (its key claimed, not committed; its user waits)';
    kill 'KILL', @before;    # one of them holds it
    is reap_clients(30, $pid), 1, 'the client got an answer';
    my ($res) = results($file);
    is_error { status => $res->{status}, headers => { 'content-type' => $res->{ct} },
        body => $res->{body}, json => eval { $JSON->decode($res->{body}) } },
        502, 'BAD_GATEWAY', 'the request cut off by the kill: 502 from nginx';
    $locker->rollback;
    $locker->disconnect;
    ok wait_for(60, sub { $uncommitted->() == 0 }), 'the dead transaction is rolled back';
    $dirty->disconnect;
    is count('SELECT COUNT(*) FROM users WHERE email = ?', $email), 0, 'no user';
    is count('SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = ?', $key), 0, 'no key';
    my $r = $s->remit('verify-audit');
    is $r->{exit}, 0, 'the audit chains verify' or diag $r->{stderr};
    ok wait_for(30, sub {
        my @now = workers();
        my %old = map { $_ => 1 } @before;
        @now == 4 && !grep { $old{$_} } @now;
    }), 'four new workers';
    my $again = $s->req(POST => '/api/v1/users', token => $admin, idem => $key,
        json => { email => $email, name => 'Crash', roles => ['VIEWER'] });
    is $again->{status}, 201, 'the same key again: 201';
    ok !$again->{headers}{'idempotent-replayed'}, 'run, not replayed';
    is count('SELECT COUNT(*) FROM users WHERE email = ?', $email), 1, 'one user';
};

# ---- (c) SIGTERM drains ------------------------------------------------------------------

subtest 'SIGTERM: requests held by workers and queued on the socket all complete' => sub {
    # Deterministic: a table lock holds every worker inside a request, more requests wait
    # in the socket's accept queue, and only then does the master get SIGTERM.
    my $master = $s->master_pid;
    my @w = workers();
    my $n = @w + 3;
    my $locker = $s->dbh->clone;
    $locker->do('LOCK TABLES users WRITE');
    my $log_from = nginx_log_size();
    my (@pids, @files);
    for my $i (1 .. $n) {
        my $file = "$tmp/held-$i";
        push @files, $file;
        push @pids, client($file, sub {
            my ($out) = @_;
            my $email = new_email();
            my $r = post_user($email);
            $out->(email => $email, status => $r->{status}, body => $r->{body});
        });
    }
    my $waiting = sub {
        scalar grep { ($_->[6] // '') =~ /Waiting for table/ }
            @{ $s->dbh->selectall_arrayref('SHOW PROCESSLIST') };
    };
    ok wait_for(15, sub { $waiting->() >= @w }), 'every worker is inside a request'
        or diag 'waiting: ' . $waiting->();
    SKIP: {
        skip 'ss (iproute2) is not installed: cannot read the accept queue', 1
            unless defined backlog();
        ok wait_for(15, sub { backlog() >= $n - @w }),
            ($n - @w) . ' requests wait in the accept queue' or diag 'backlog: ' . backlog();
    }

    kill 'TERM', $master;
    my $closed = ok wait_for(5, sub { !-e $s->socket_path }),
        'the pool stops taking connections: its socket is gone';
    SKIP: {
        # With the socket still there, the request would wait behind the lock.
        skip 'the socket is still there', 2 unless $closed;
        # A request after that is refused cleanly by nginx, without waiting for the drain.
        my $t0 = time;
        my $late = $s->req(GET => '/api/v1/me', token => $admin);
        is_error $late, 502, 'BAD_GATEWAY', 'a request after the pool closed: 502 from nginx';
        ok time - $t0 < 5, 'at once';
    }
    ok alive($master), 'the master waits for the requests in hand';

    $locker->do('UNLOCK TABLES');
    $locker->disconnect;
    is reap_clients(60, @pids), $n, 'every client finished';
    my @res = map { results($_) } @files;
    is scalar @res, $n, "$n answers";
    is_deeply [ map { $_->{status} } @res ], [ (201) x $n ], 'all 201'
        or diag join "\n", map { "$_->{status} $_->{body}" } @res;
    for my $r (grep { $_->{status} == 201 } @res) {
        my $d = eval { $JSON->decode($r->{body})->{data} } // {};
        is $d->{email}, $r->{email}, "$r->{email}: a complete body";
        is count('SELECT COUNT(*) FROM users WHERE id = ? AND email = ?', $d->{id}, $r->{email}),
            1, "$r->{email}: stored";
    }
    ok wait_for(10, sub { ($s->which_died // '') eq 'the remit pool' }), 'the master exits';
    ok wait_for(5, sub { !grep { alive($_) } @w }), 'no worker is left';
    my @errs = grep { !/connect\(\) to unix:\S+ failed \(2: No such file/ }
        upstream_errors($log_from);
    is_deeply \@errs, [], 'nginx saw no upstream error but the refused connect';
    is restart_pool(), 0, 'the master exited 0';
};

subtest 'SIGTERM under load: no request cut off, every 201 stored, master exits 0' => sub {
    my $master = $s->master_pid;
    my @w = workers();
    my $log_from = nginx_log_size();
    my $users_before = count('SELECT COUNT(*) FROM users WHERE org_id = ?', $org->{orgId});
    my (@pids, @files);
    for my $c (1 .. 8) {
        my $file = "$tmp/load-$c";
        push @files, $file;
        push @pids, client($file, sub {
            my ($out) = @_;
            for my $i (1 .. 20) {
                my $email = new_email();
                my $t0 = time;
                my $r = post_user($email);
                $out->(client => $c, i => $i, email => $email, t0 => $t0, t1 => time,
                    status => $r->{status}, body => $r->{body});
            }
        });
    }
    ok wait_for(30, sub { (count('SELECT COUNT(*) FROM users WHERE org_id = ?', $org->{orgId})
        - $users_before) >= 40 }), 'the clients are under way';
    my $t_term = time;
    kill 'TERM', $master;
    is reap_clients(120, @pids), 8, 'every client finished';
    ok wait_for(10, sub { ($s->which_died // '') eq 'the remit pool' }),
        'the master exits within 10 s';
    my $took = time - $t_term;
    ok wait_for(5, sub { !grep { alive($_) } @w }), 'no worker is left';

    my @res = map { results($_) } @files;
    is scalar @res, 160, '160 answers';
    my @created = grep { $_->{status} == 201 } @res;
    my @refused = grep { $_->{status} == 502 } @res;
    my @other = grep { $_->{status} != 201 && $_->{status} != 502 } @res;
    ok @created >= 40, scalar(@created) . ' created';
    is_deeply [ map { "$_->{status} $_->{body}" } @other ], [], 'nothing but 201 and 502';
    my $bad_502 = grep { my $j = eval { $JSON->decode($_->{body}) };
        !($j && ($j->{error}{code} // '') eq 'BAD_GATEWAY') } @refused;
    is $bad_502, 0, 'every 502 is the BAD_GATEWAY envelope';
    ok !grep({ $_->{t1} < $t_term } @refused), 'no 502 before SIGTERM';
    # Once the pool had closed it stayed closed: per client, 201s then 502s.
    for my $c (1 .. 8) {
        my $seq = join '', map { $_->{status} == 201 ? 'c' : 'r' }
            sort { $a->{i} <=> $b->{i} } grep { $_->{client} == $c } @res;
        like $seq, qr/^c*r*$/, "client $c: created, then refused ($seq)";
    }
    my $incomplete = 0;
    for my $r (@created) {
        my $d = eval { $JSON->decode($r->{body})->{data} } // {};
        $incomplete++ unless ($d->{email} // '') eq $r->{email}
            && count('SELECT COUNT(*) FROM users WHERE id = ? AND email = ?', $d->{id},
                $r->{email}) == 1;
    }
    is $incomplete, 0, 'every 201 is complete and stored';
    is count('SELECT COUNT(*) FROM users WHERE org_id = ?', $org->{orgId}) - $users_before,
        scalar @created, 'no user was made without its 201 reaching the client';
    my @errs = upstream_errors($log_from);
    my @cut = grep { !/connect\(\) to unix:\S+ failed \(2: No such file/ } @errs;
    is_deeply \@cut, [], 'no upstream error but refused connects (no request cut off)';
    is scalar(@errs), scalar(@refused), 'one refused connect per 502';
    is restart_pool(), 0, 'the master exited 0';
    note sprintf 'created %d, refused %d, master exited %.2f s after SIGTERM', scalar @created,
        scalar @refused, $took;
};

# ---- (d) SIGHUP --------------------------------------------------------------------------

subtest 'SIGHUP replaces every worker while requests keep succeeding' => sub {
    my $master = $s->master_pid;
    my @before = workers();
    is scalar @before, 4, 'four workers';
    my $stop = "$tmp/hup-stop";
    my (@pids, @files);
    for my $kind (qw(get post get)) {
        my $file = "$tmp/hup-" . (@files + 1);
        push @files, $file;
        push @pids, client($file, sub {
            my ($out) = @_;
            for my $i (1 .. 2000) {
                last if -e $stop;
                if ($kind eq 'get') {
                    my $r = $s->req(GET => '/api/v1/me', token => $admin);
                    $out->(kind => $kind, status => $r->{status}, body => $r->{body});
                } else {
                    my $email = new_email();
                    my $r = post_user($email);
                    $out->(kind => $kind, email => $email, status => $r->{status},
                        body => $r->{body});
                }
            }
        });
    }
    ok wait_for(30, sub { !grep { lines_in($_) < 5 } @files }), 'the clients are under way';
    kill 'HUP', $master;
    my %old = map { $_ => 1 } @before;
    ok wait_for(30, sub {
        my @now = workers();
        @now == 4 && !grep { $old{$_} } @now;
    }), 'four workers, all new';
    ok wait_for(30, sub { !grep { alive($_) } @before }), 'the old ones have exited';
    # A few more requests on the new workers, then stop.
    my %seen = map { $_ => lines_in($_) } @files;
    ok wait_for(30, sub { !grep { lines_in($_) < $seen{$_} + 5 } @files }),
        'requests go on after the replacement';
    open my $fh, '>', $stop or die;
    close $fh;
    is reap_clients(60, @pids), scalar @pids, 'the clients finished';
    my @res = map { results($_) } @files;
    my @bad = grep { $_->{status} != ($_->{kind} eq 'get' ? 200 : 201) } @res;
    is_deeply [ map { "$_->{status} $_->{body}" } @bad ], [], scalar(@res) . ' requests, all succeeded';
    my $missing = grep { $_->{kind} eq 'post'
        && count('SELECT COUNT(*) FROM users WHERE email = ?', $_->{email}) != 1 } @res;
    is $missing, 0, 'every created user is stored';
    is $s->master_pid, $master, 'the same master';
    ok alive($master), 'which still runs';
    my @now = workers();
    is scalar @now, 4, 'four workers';
};

# ---- the audit chains after all that -----------------------------------------------------

subtest 'remit verify-audit still exits 0 after kills, drains and restarts' => sub {
    my $r = $s->remit('verify-audit');
    is $r->{exit}, 0, 'exit 0' or diag $r->{stderr};
};

subtest 'remit verify-audit exits non-zero when a chain is broken' => sub {
    my $o = $s->new_org;    # a chain of its own to break
    my ($seq, $hash) = $s->dbh->selectrow_array(
        'SELECT seq, hash FROM audit_heads WHERE org_id = ?', undef, $o->{orgId});
    $s->dbh->do('INSERT INTO audit_events (org_id, seq, at, actor_id, action, object_type,'
        . ' object_id, correlation_id, data, hash, prev_hash)'
        . " VALUES (?, ?, NOW(3), ?, 'user.created', 'user', ?, 'forged', '{}', ?, ?)",
        undef, $o->{orgId}, $seq + 1, $o->{userId}, $o->{userId}, 'f' x 64, $hash);
    my $r = $s->remit('verify-audit');
    isnt $r->{exit}, 0, 'non-zero exit';
    like $r->{stderr}, qr/\b$o->{orgId}\b/, 'names the organisation';
};

done_testing;
