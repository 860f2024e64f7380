use strict;
use warnings;

# Exactly-once across the load-balanced deployment (issue 14; API §3 "any number of app
# hosts sharing the database"): script/cluster's topology, three Galera nodes, two app hosts
# (pool + nginx each, host N preferring node N) and an nginx load balancer in front.
#
#   - 16 twins of one request, half sent to each app host at once (so over two Galera
#     nodes, where the key is decided by certification): one effect, every twin the same
#     answer or 409 in-progress, never a 5xx.
#   - an app host's pool killed (kill -9) while a request is inside it: the balancer passes
#     the request to the other host, which makes exactly one effect.
#   - a Galera node killed (kill -9) under mixed load from forked clients retrying with their
#     keys: nothing lost or duplicated, the service answers again within seconds, the node
#     rejoins and every node's audit chains verify.
#
# A table of the faults goes out as TAP diagnostics.

use Test::More;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);
use Remit::Cluster;
use Remit::Load;
use Remit::Test;

my $JSON = JSON::PP->new->utf8->canonical;
my $tmp = tempdir(CLEANUP => 1);
my $c = Remit::Cluster->new(name => 'cluster-faults');
$c->start;
my $lb = $c->front;
my @table;    # [fault, requests, retried, succeeded, duplicates, lost]


# A forked client per request, all released at once; the responses in order.
sub together {
    my (@reqs) = @_;
    pipe my $r, my $w or die "pipe: $!";
    my @kids;
    for my $i (0 .. $#reqs) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $w;
            my ($url, $method, $path, $h, $body) = @{ $reqs[$i] };
            my $http = HTTP::Tiny->new(keep_alive => 0, timeout => 60);
            sysread $r, my $buf, 1;    # blocks until the parent closes the pipe
            my $t0 = time;
            my $res = $http->request($method, "$url$path", { headers => $h,
                (defined $body ? (content => $JSON->encode($body)) : ()) });
            open my $fh, '>', "$tmp/together-$$" or POSIX::_exit(2);
            print {$fh} $JSON->encode({ status => $res->{status}, body => $res->{content},
                replayed => $res->{headers}{'idempotent-replayed'} // '', secs => time - $t0 });
            close $fh;
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    close $r;
    sleep 0.3;    # every child is blocked in sysread by now
    close $w;
    my @out;
    for my $pid (@kids) {
        waitpid $pid, 0;
        open my $fh, '<', "$tmp/together-$pid" or die "no answer from client $pid";
        push @out, $JSON->decode(do { local $/; <$fh> });
    }
    return @out;
}

sub status_sum {
    my ($name) = @_;
    my $n = 0;
    $n += $c->wsrep_status($_, $name) // 0 for 1 .. 3;
    return $n;
}

# Transactions the pools ran again (lost connection, 1213), summed over both app hosts.
sub pool_reruns {
    my $n = 0;
    for my $i (1, 2) {
        my $m = HTTP::Tiny->new->get($c->app($i)->url . '/metrics')->{content} // '';
        $n += $1 while $m =~ /^remit_tx_retries_total\{[^}]*\} (\d+)$/mg;
    }
    return $n;
}

my $org = $lb->new_org;
my $creator = $lb->new_user($org->{token}, roles => ['CREATOR']);

# ---- 1. the 16-way race ----------------------------------------------------------------------

subtest '16 twins over both app hosts (two Galera nodes): one effect, one answer' => sub {
    my ($requests, $in_progress, $effects, $dups, $lost, $slowest) = (0, 0, 0, 0, 0, 0);
    my $cert0 = status_sum('wsrep_local_cert_failures') + status_sum('wsrep_local_bf_aborts');
    my $reruns0 = pool_reruns();
    for my $round (1 .. 4) {
        my $key = Remit::Test::random_key();
        my $name = "race $round $key";
        my %h = (Authorization => "Bearer $creator->{token}", 'Idempotency-Key' => $key,
            'Content-Type' => 'application/json');
        my @res = together(map { [ $c->app($_ % 2 + 1)->url, 'POST', '/api/v1/batches', \%h,
            { name => $name } ] } 1 .. 16);
        $requests += @res;
        $slowest = $_->{secs} > $slowest ? $_->{secs} : $slowest for @res;
        my @ok = grep { $_->{status} == 201 } @res;
        my @busy = grep { $_->{status} == 409
            && eval { $JSON->decode($_->{body})->{error}{code} } eq 'IDEMPOTENCY_KEY_IN_PROGRESS' } @res;
        $in_progress += @busy;
        is @ok + @busy, 16, "round $round: every twin 201 or 409 in progress ("
            . scalar(@ok) . ' + ' . scalar(@busy) . ')'
            or diag join "\n", map { "$_->{status} $_->{body}" } @res;
        ok !grep({ $_->{status} >= 500 } @res), "round $round: no 5xx";
        my %bodies = map { $_->{body} => 1 } @ok;
        is keys %bodies, 1, "round $round: every 201 carries the same body";
        is scalar(grep { $_->{replayed} ne 'true' } @ok), 1, "round $round: one ran, the others replayed";
        for my $n (1 .. 3) {
            my $count = $c->node($n)->dbh->selectrow_array(
                'SELECT COUNT(*) FROM batches WHERE org_id = ? AND name = ?', undef,
                $org->{orgId}, $name);
            is $count, 1, "round $round: one batch on node $n";
            $dups += $count - 1 if $count > 1;
            $lost++ if $count < 1 && $n == 1;
        }
        $effects++;
    }
    my $cert = status_sum('wsrep_local_cert_failures') + status_sum('wsrep_local_bf_aborts') - $cert0;
    my $reruns = pool_reruns() - $reruns0;
    diag "16-way race x4: $in_progress twins answered 409 in progress; $cert certification"
        . " failures or brute-force aborts among the nodes; $reruns transactions run again;"
        . sprintf ' slowest twin %.2f s', $slowest;
    push @table, [ '16-way same-key race x4 (2 hosts, 2 nodes)', $requests, $in_progress + $reruns,
        $requests - $in_progress, $dups, $lost ];
};

subtest 'metrics: per app host, not through the balancer' => sub {
    is_error $lb->req(GET => '/metrics'), 404, 'NOT_FOUND', 'the balancer: 404';
    my $retries = 0;
    for my $i (1, 2) {
        my $res = HTTP::Tiny->new->get($c->app($i)->url . '/metrics');
        is $res->{status}, 200, "app host $i: 200";
        like $res->{content}, qr/^remit_workers_total 4$/m, "app host $i: 4 workers";
        $retries += $1 while $res->{content} =~ /^remit_tx_retries_total\{cause="deadlock"\} (\d+)$/mg;
    }
    diag "transactions re-run after 1213 (certification failures included) on both hosts: $retries";
};

# ---- 2. an app host's pool killed mid-request -------------------------------------------------

# The app host one of whose workers is in a LOCK WAIT on node 1 or 2, found by the waiting
# connection's client port: which node a host's workers use is only a preference (a worker
# that lost its node stays on the next), so the node that waits does not name the host.
sub waiting_host {
    for my $n (1, 2) {
        my $hosts = $c->node($n)->dbh->selectcol_arrayref(q{SELECT p.HOST
            FROM information_schema.innodb_trx t
            JOIN information_schema.processlist p ON p.ID = t.trx_mysql_thread_id
            WHERE t.trx_state = 'LOCK WAIT'});
        for my $port (map { /:(\d+)$/ ? $1 : () } @$hosts) {
            my $inode = socket_inode($port) // next;
            for my $a (1, 2) {
                my $app = $c->app($a);
                for my $pid ($app->worker_pids) {
                    return $a if grep { (readlink($_) // '') eq "socket:[$inode]" }
                        glob("/proc/$pid/fd/*");
                }
            }
        }
    }
    return 0;
}

# The inode of this host's TCP socket whose local port is $port (/proc/net/tcp, tcp6).
sub socket_inode {
    my ($port) = @_;
    for my $table ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $table or next;
        while (<$fh>) {
            my @f = split;
            next unless ($f[1] // '') =~ /:([0-9A-F]{4})$/ && hex($1) == $port;
            return $f[9];
        }
    }
    return undef;
}

subtest "an app host's pool killed mid-request: the balancer's retry makes one effect" => sub {
    my $b = $lb->req(POST => '/api/v1/batches', token => $creator->{token}, idem => 1,
        json => { name => 'pool kill' });
    is $b->{status}, 201, 'a batch' or return;
    my $batch = $b->{json}{data}{id};
    # The batch row locked on nodes 1 and 2 (locks are local to a node): the request blocks
    # in whichever app host the balancer picks, until the test lets go.
    my @lock = map {
        my $h = $c->node($_)->new_dbh(AutoCommit => 0);
        $h->selectall_arrayref('SELECT id FROM batches WHERE id = ? FOR UPDATE', undef, $batch);
        $h
    } 1, 2;
    my $from = $lb->access_log_size;
    my $key = Remit::Test::random_key();
    my $wait = $lb->req_bg(POST => "/api/v1/batches/$batch/requests", token => $creator->{token},
        idem => $key, json => { amount => '12.34', currency => 'EUR', beneficiaryName => 'Kill',
            beneficiaryAccount => 'DE89370400440532013000' });
    my $host = wait_for(10, sub { waiting_host() });
    ok $host, "the request waits inside app host $host\'s pool" or return;
    my $app = $c->app($host);
    $app->expect_worker_kill('KILL');
    my @pids = ($app->master_pid, $app->worker_pids);
    kill 'KILL', @pids;
    eval { $_->rollback; $_->disconnect } for @lock;
    my $res = $wait->();
    is $res->{status}, 201, 'the client gets 201' or diag $res->{body};
    my $retries = $lb->lb_retries($from);
    my ($ours) = grep { $_->[0] =~ m{/requests } } @$retries;
    ok $ours, 'the balancer passed it on to the other host'
        and diag "balancer: upstreams $ours->[1], statuses $ours->[2]";
    my ($dups, $lost) = (0, 0);
    for my $n (1 .. 3) {
        my $count = wait_for(5, sub { $c->node($n)->dbh->selectrow_array(
            'SELECT COUNT(*) FROM payment_requests WHERE batch_id = ?', undef, $batch) });
        is $count, 1, "one payment request on node $n";
        $dups += $count - 1 if $count > 1;
        $lost++ if !$count && $n == 1;
    }
    my $again = $lb->req(POST => "/api/v1/batches/$batch/requests", token => $creator->{token},
        idem => $key, json => { amount => '12.34', currency => 'EUR', beneficiaryName => 'Kill',
            beneficiaryAccount => 'DE89370400440532013000' });
    ok $again->{status} == 201 && $again->{body} eq $res->{body}
        && ($again->{headers}{'idempotent-replayed'} // '') eq 'true', 'the key replays it';
    push @table, [ 'kill -9 of app host pool mid-request', 1, $ours ? 1 : 0,
        $res->{status} == 201 ? 1 : 0, $dups, $lost ];
    $app->start_remit;
    ok wait_for(20, sub { HTTP::Tiny->new->get($app->url . '/healthz')->{status} == 200 }),
        'the pool, started again, serves';
};

# ---- 3. a Galera node killed under load -------------------------------------------------------

subtest 'a Galera node killed under load: nothing lost or duplicated, it rejoins' => sub {
    # The clients run until stop() below, however long the rejoin takes: run_cap is only
    # a safety net, so that 'the load goes on on three nodes' never meets a finished load.
    my $load = Remit::Load->new(url => $lb->url, dir => $tmp, clients => 6, run_cap => 600);
    my $from = $lb->access_log_size;
    my $reruns0 = pool_reruns();
    my $lorg = $lb->new_org;
    $load->start($lb, $lorg);
    ok wait_for(30, sub { $load->done >= 60 }), 'the load is under way';
    my $t_kill = time;
    $c->kill_node(1);
    # Answers again: a fresh request through the balancer succeeds.
    my $probe_user = $creator->{token};
    my $back = wait_for(30, sub {
        $lb->req(POST => '/api/v1/batches', token => $probe_user, idem => 1,
            json => { name => 'probe' })->{status} == 201 });
    my $t_back = time - $t_kill;
    ok $back, sprintf 'the service answers again %.1f s after the kill', $t_back;
    cmp_ok $t_back, '<', 15, 'within seconds';
    my $after = $load->done;
    ok wait_for(40, sub { $load->done >= $after + 60 }), 'the load goes on on two nodes';
    is $c->wsrep_status(2, 'wsrep_cluster_size'), 2, 'two nodes in the cluster';
    my $t_rejoin = time;
    $c->restart_node(1);
    $t_rejoin = time - $t_rejoin;
    ok 1, sprintf 'node 1 rejoined and synced in %.1f s', $t_rejoin;
    $after = $load->done;
    ok wait_for(40, sub { $load->done >= $after + 30 }), 'the load goes on on three nodes';
    is $load->stop(120), 6, 'every client finished';
    is $c->wsrep_status($_, 'wsrep_cluster_size'), 3, "node $_ sees three nodes" for 1 .. 3;

    my @bad = grep { !$_->{ok} } $load->ops;
    is_deeply [ map { "$_->{kind} $_->{key}: $_->{why}" } @bad ], [],
        scalar($load->ops) . ' operations, each ended in its success';
    is scalar(grep { $_ eq '500' } map { @{ $_->{seen} } } $load->ops), 0, 'no 500 on the way';
    my ($dups, $lost) = (0, 0);
    for my $n (1 .. 3) {
        my ($d, $l) = $load->check($c->node($n)->dbh, "node $n");
        ($dups, $lost) = ($dups + $d, $lost + $l);
        my $v = $c->node($n)->remit('verify-audit');
        is $v->{exit}, 0, "remit verify-audit passes on node $n" or diag $v->{stderr};
    }
    my $f = $load->figures;
    my $passed_on = @{ $lb->lb_retries($from) };
    my $reruns = pool_reruns() - $reruns0;
    diag sprintf 'node kill: back after %.1f s, rejoined in %.1f s; operations %d, requests %d,'
        . ' retried by the clients %d (%s), passed on by the balancer %d, run again by a pool'
        . ' %d, succeeded %d, longest operation %.1f s', $t_back, $t_rejoin, $f->{operations},
        $f->{requests}, $f->{retried}, $f->{causes}, $passed_on, $reruns, $f->{succeeded},
        $f->{longest};
    push @table, [ 'kill -9 of Galera node 1 under load', $f->{requests},
        $f->{retried} + $passed_on + $reruns, $f->{succeeded}, $dups, $lost ];
};

# ---- the table --------------------------------------------------------------------------------

# retried: sent again by a client (same key; for the race: answered 409 in progress), passed
# on to the other host by the balancer, or run again inside a pool (lost connection, 1213).
my @head = ('fault', 'requests', 'retried', 'succeeded', 'duplicates', 'lost');
diag sprintf '%-45s %9s %8s %10s %11s %5s', @head;
diag sprintf '%-45s %9d %8d %10d %11d %5d', @$_ for @table;

diag $c->log_tails unless Test::More->builder->is_passing;
my @found = grep { !/killed by signal 9/ } $c->stop;
ok !@found, 'no crash or sanitizer report in the logs' or diag join "\n", @found;
done_testing;
