use strict;
use warnings;

# GET /metrics (API §8): Prometheus text, loopback only, one view over every worker of the
# pool (counters in shared memory owned by the master), moving as requests are made.

use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use Remit::Test;

# 40 concurrent scrapes and requests: room for all of them in the pool (no shedding).
my $s = Remit::Test->stack(in_flight => 64);

# name{labels} → value, from the exposition text.
sub scrape {
    my $res = $s->req(GET => '/metrics');
    die "GET /metrics: $res->{status} $res->{body}" unless $res->{status} == 200;
    my %m;
    for (split /\n/, $res->{body}) {
        next if /^#/ || !/\S/;
        my ($k, $v) = /^(\S+)\s+(\S+)$/ or die "not an exposition line: '$_'";
        $m{$k} = $v;
    }
    return \%m;
}

sub delta { ($_[1]{ $_[2] } // 0) - ($_[0]{ $_[2] } // 0) }

my $HEALTHZ = 'remit_http_requests_total{method="GET",route="/healthz",status="200"}';
my $CREATED = 'remit_http_requests_total{method="POST",route="/api/v1/batches",status="201"}';
my $REPLAYS = 'remit_idempotent_replays_total';
my $REUSED = 'remit_idempotency_key_outcomes_total{outcome="reused"}';
my $IN_PROGRESS = 'remit_idempotency_key_outcomes_total{outcome="in_progress"}';

subtest 'Prometheus text format' => sub {
    my $res = $s->req(GET => '/metrics');
    is $res->{status}, 200, 'GET /metrics: 200';
    like $res->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4}, 'text/plain; version=0.0.4';
    like $res->{body}, qr/^# TYPE remit_http_requests_total counter$/m, 'requests counter';
    like $res->{body}, qr/^# TYPE remit_http_request_duration_seconds histogram$/m, 'latency histogram';
    like $res->{body}, qr/^remit_http_request_duration_seconds_bucket\{le="\+Inf"\} \d+$/m, '+Inf bucket';
    for my $name (qw(remit_idempotent_replays_total remit_idempotency_key_outcomes_total
        remit_tx_retries_total remit_db_errors_total remit_workers_busy remit_workers_total)) {
        like $res->{body}, qr/^\Q$name\E(\{[^}]*\})? \d+$/m, $name;
    }
    my $m = scrape();
    is $m->{remit_workers_total}, 4, 'four workers alive';
    cmp_ok $m->{remit_workers_busy}, '>=', 1, 'at least the one answering is busy';
};

subtest 'requests served by several workers add up in one view' => sub {
    my $before = scrape();
    my $log_from = -s $s->log_path;
    my $n = 40;
    my @res = @{ $s->req_together($n, GET => "/healthz") };
    is scalar(grep { $_->{status} == 200 } @res), $n, "$n concurrent GET /healthz: 200";
    my $after = scrape();
    is delta($before, $after, $HEALTHZ), $n, "the /healthz 200 counter moved by $n";
    is delta($before, $after, 'remit_http_request_duration_seconds_count'), $n + 1,
        'the histogram counted them (and the scrape before)';
    open my $fh, '<', $s->log_path or die;
    seek $fh, $log_from, 0;
    my %pids = map { /"pid":(\d+)/ ? ($1 => 1) : () } grep { /"path":"\/healthz"/ } <$fh>;
    cmp_ok scalar(keys %pids), '>=', 2, scalar(keys %pids) . ' workers served them';
};

subtest 'mutations, replays and 422 key outcomes' => sub {
    my $org = $s->new_org;
    my $creator = $s->new_user($org->{token}, roles => ['CREATOR']);
    my $before = scrape();
    my $key = Remit::Test::random_key();
    my %post = (token => $creator->{token}, idem => $key, json => { name => 'metrics' });
    is $s->req(POST => '/api/v1/batches', %post)->{status}, 201, 'created';
    is $s->req(POST => '/api/v1/batches', %post)->{status}, 201, 'replayed';
    is $s->req(POST => '/api/v1/batches', %post, json => { name => 'other' })->{status}, 422,
        'same key, other body: 422';
    my $after = scrape();
    is delta($before, $after, $CREATED), 2, 'POST /api/v1/batches 201: +2 (one replay)';
    is delta($before, $after, $REPLAYS), 1, 'replays +1';
    is delta($before, $after, $REUSED), 1, '422 reused +1';
    is delta($before, $after,
        'remit_http_requests_total{method="POST",route="/api/v1/batches",status="422"}'), 1,
        'POST /api/v1/batches 422: +1';
};

subtest 'a busy worker and a 409 in progress' => sub {
    my $org = $s->new_org;
    my $creator = $s->new_user($org->{token}, roles => ['CREATOR']);
    $s->conf_set(idem_wait => 5);   # a wide window for the scrape on a loaded machine
    $s->stop_remit;
    $s->start_remit;
    # The key claimed by a transaction that stays open: a request with that key waits for it
    # (busy) and answers 409 after idem_wait.
    my $key = Remit::Test::random_key();
    my $dbh = $s->new_dbh(AutoCommit => 0);
    $dbh->do('INSERT INTO idempotency_keys (user_id, idem_key, fingerprint, expires_at)'
        . ' VALUES (?, ?, ?, NOW(3) + INTERVAL 1 DAY)', undef, $creator->{id}, $key, 'x' x 32);
    my $before = scrape();
    my $first = $s->req_bg(POST => '/api/v1/batches', token => $creator->{token}, idem => $key,
        json => { name => 'busy' });
    ok poll(sub { $s->lock_waits >= 1 }), 'the request waits for the key';
    my $m = scrape();
    cmp_ok $m->{remit_workers_busy}, '>=', 2,
        "workers busy: $m->{remit_workers_busy} (the waiting one and the scrape)";
    my $res = $first->();
    is $res->{status}, 409, 'it answers 409 after idem_wait' or diag $res->{body};
    $dbh->rollback;
    $dbh->disconnect;
    is delta($before, scrape(), $IN_PROGRESS), 1, '409 in progress +1';
};

subtest 'loopback only' => sub {
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $s->port,
        LocalAddr => '127.0.0.2', Proto => 'tcp', Timeout => 5);
    plan skip_all => "cannot connect from 127.0.0.2: $!" unless $sock;
    print {$sock} "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    local $/;
    my $raw = <$sock>;
    my $res = parse_http_response($raw);
    is_error $res, 403, 'FORBIDDEN', 'from 127.0.0.2: the JSON 403';
    unlike $res->{body}, qr/remit_/, 'and no metrics';
};

sub poll {
    my ($cond) = @_;
    my $deadline = time + 10;
    # MariaDB refreshes INNODB_TRX only when unread for 100 ms (Remit::Test::lock_waits).
    while (time < $deadline) { return 1 if $cond->(); sleep 0.15 }
    return 0;
}

done_testing;
