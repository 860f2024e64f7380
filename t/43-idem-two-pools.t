use strict;
use warnings;

# doc/openapi.yaml#Idempotency: "This holds for any number of FastCGI workers, nginx instances and app hosts sharing
# the database: the database decides, never a per-process cache." Two pools (two `remit
# serve` masters, as on two app hosts) on one database, behind one nginx upstream that takes
# turns between them; twins of one request split across both still have one effect.

use Test::More;
use Remit::Test qw(:DEFAULT tag count_delta);
use Remit::Fixture qw(people);

my $TWINS = 16;
my $ROUNDS = 3;

my $s = Remit::Test->stack(pools => 2, conf => { workers => $TWINS / 2 });
my $dbh = $s->dbh;

my $org = $s->new_org;
my $admin = $org->{token};
my ($creator, $approver) = @{ people($s, $admin, qw(creator approver)) }{qw(creator approver)};

# The request lines of pool $n's log that carry X-Request-Id $rid.
sub served_by {
    my ($n, $rid) = @_;
    open my $fh, '<', $s->log_path($n) or return 0;
    return scalar grep { /"msg":"request"/ && /"rid":"\Q$rid\E"/ } <$fh>;
}

# $TWINS copies of one request, one key, all with one X-Request-Id so the logs tell which
# pool served each. Returns the change in row counts.
sub twins_across_pools {
    my ($token, $path, $status, $body) = @_;
    my $rid = 'twins-' . tag();
    my $before = $s->row_counts;
    my $res = $s->req_together($TWINS, POST => $path, token => $token, idem => 'k-' . tag(),
        json => $body, headers => { 'X-Request-Id' => $rid });
    is_twins $res, $status, "$TWINS twins of POST $path";
    my @served = map { served_by($_, $rid) } 1, 2;
    ok $served[0] && $served[1], "both pools served some ($served[0] + $served[1])";
    is $served[0] + $served[1], $TWINS, 'together all of them';
    return count_delta($before, $s->row_counts);
}

subtest 'the two pools are two masters with workers of their own, on two sockets' => sub {
    isnt $s->master_pid(1), $s->master_pid(2), 'two masters';
    ok -S $s->socket_path(1) && -S $s->socket_path(2), 'two sockets';
    my @w1 = $s->worker_pids(1);
    my @w2 = $s->worker_pids(2);
    is scalar @w1, $TWINS / 2, 'pool 1 runs its workers';
    is scalar @w2, $TWINS / 2, 'pool 2 runs its workers';
    my %pool1 = map { $_ => 1 } @w1;
    ok !grep({ $pool1{$_} } @w2), 'no worker in both';
};

subtest "$TWINS twins of POST /users across both pools create one user" => sub {
    for my $round (1 .. $ROUNDS) {
        my $body = { email => 'pools-' . tag() . '@example.test', name => 'Pools',
            roles => ['VIEWER'] };
        my $d = twins_across_pools($admin, '/api/v1/users', 201, $body);
        is_deeply $d, { users => 1, audit_events => 1, idempotency_keys => 1, batches => 0,
            payment_requests => 0, decisions => 0, ledger_entries => 0 },
            "round $round: one user, one audit event, one key";
    }
};

# The domain handlers land one by one; a step that still answers 501 skips the subtest.
sub step {
    my ($path, $token, $want, $json) = @_;
    my $r = $s->req(POST => $path, token => $token, idem => 1, json => $json // {});
    return $r->{status} == $want ? $r->{json}{data} : undef;
}
sub submitted_request {
    my $b = step('/api/v1/batches', $creator->{token}, 201, { name => 'Pools ' . tag() }) or return;
    my $r = step("/api/v1/batches/$b->{id}/requests", $creator->{token}, 201,
        { amount => '99.99', currency => 'GBP', beneficiaryName => 'Two Pools Ltd',
          beneficiaryAccount => 'GB82 WEST 1234 5698 7654 32' }) or return;
    step("/api/v1/batches/$b->{id}/submit", $creator->{token}, 200) or return;
    return $r;
}

subtest "$TWINS twins of POST /requests/{id}/approve across both pools approve once" => sub {
    my $first = submitted_request();
    plan skip_all => 'batches, requests or submit are not ready' unless $first;
    plan skip_all => 'approve is not ready'
        unless step("/api/v1/requests/$first->{id}/approve", $approver->{token}, 200);
    for my $round (1 .. $ROUNDS) {
        my $rq = submitted_request();
        my $d = twins_across_pools($approver->{token}, "/api/v1/requests/$rq->{id}/approve",
            200, { comment => "round $round" });
        is $d->{decisions}, 1, "round $round: one decision";
        is $d->{ledger_entries}, 1, "round $round: one ledger entry";
        is_deeply $dbh->selectcol_arrayref('SELECT type FROM ledger_entries WHERE request_id = ?',
            undef, $rq->{id}), ['OBLIGATION'], "round $round: the request's OBLIGATION";
        is $d->{idempotency_keys}, 1, "round $round: one key";
    }
};

subtest 'each pool logged only its own workers' => sub {
    for my $n (1, 2) {
        open my $fh, '<', $s->log_path($n) or die "open: $!";
        my %pids = map { /"pid":(\d+)/ ? ($1 => 1) : () } grep { /"msg":"request"/ } <$fh>;
        my %mine = map { $_ => 1 } $s->worker_pids($n);
        ok %pids && !grep({ !$mine{$_} } keys %pids),
            "pool $n: request lines from " . scalar(keys %pids) . ' of its workers';
    }
};

subtest 'the audit chain still verifies' => sub {
    my $r = $s->remit('verify-audit');
    is $r->{exit}, 0, 'remit verify-audit exits 0' or diag $r->{stderr};
};

done_testing;
