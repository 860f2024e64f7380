use strict;
use warnings;

use POSIX ();
use Storable qw(nstore retrieve);
use Test::More;
use Time::HiRes qw(time sleep);
use Remit::Test;

# A batch at the size limit (issue 9 item 8): submitting it writes one audit event per
# request under the organisation's audit chain lock, while other writers of that
# organisation keep working: none of them may time out into 503. One request more than the
# limit is refused. Figures are printed as diagnostics (durations on a shared machine are
# not asserted).
my $LIMIT = 5000;
my $WRITERS = 4;
my $s = Remit::Test->stack(durable => 1);
my $o = $s->new_org;
my $creator = $s->new_user($o->{token}, roles => ['CREATOR']);
my $root = $s->dbh;

sub req {
    my ($method, $path, $json) = @_;
    return $s->req($method => $path, token => $creator->{token}, idem => 1,
        (defined $json ? (json => $json) : ()));
}
my %REQ = (amount => '1.00', currency => 'USD', beneficiaryName => 'N', beneficiaryAccount => '1');

# The batch is filled straight in the database (5,000 POSTs would only measure the setup);
# the database's triggers record the makers and the batch's count as the API would leave
# them. Then one request through the API.
my $bid = req(POST => '/api/v1/batches', { name => 'big' })->{json}{data}{id};
$root->do(q{INSERT INTO payment_requests (org_id, batch_id, amount, currency, beneficiary_name,
    beneficiary_account, created_by) SELECT ?, ?, 100 + seq, 'USD', CONCAT('Payee ', seq), '1', ?
    FROM seq_1_to_} . ($LIMIT - 1), undef, $o->{orgId}, $bid, $creator->{id});
is req(POST => "/api/v1/batches/$bid/requests", \%REQ)->{status}, 201, "request $LIMIT added";

subtest 'one request over the limit is refused, nothing changes' => sub {
    my ($version) = $root->selectrow_array('SELECT version FROM batches WHERE id = ?', undef, $bid);
    my $r = req(POST => "/api/v1/batches/$bid/requests", \%REQ);
    is_error $r, 409, 'BATCH_FULL', '409 BATCH_FULL';
    is $r->{json}{error}{details}{limit}, $LIMIT, 'details.limit';
    my ($n) = $root->selectrow_array('SELECT COUNT(*) FROM payment_requests WHERE batch_id = ?',
        undef, $bid);
    is $n, $LIMIT, "still $LIMIT requests";
    is scalar $root->selectrow_array('SELECT version FROM batches WHERE id = ?', undef, $bid),
        $version, 'version unchanged';
};

# Writers of the same organisation: each creates a batch and adds requests to it, in a loop,
# until told to stop; each records every response's status and its slowest response.
my $stop = $s->state_dir . '/stop-writers';
my @pids;
for my $w (1 .. $WRITERS) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my (%status, $slowest, $n);
        $slowest = 0;
        until (-e $stop) {
            my $t0 = time;
            my $r = req(POST => '/api/v1/batches', { name => "w$w" });
            $status{ $r->{status} }++;
            if ($r->{status} == 201) {
                my $r2 = req(POST => "/api/v1/batches/$r->{json}{data}{id}/requests", \%REQ);
                $status{ $r2->{status} }++;
            }
            my $dt = time - $t0;
            $slowest = $dt if $dt > $slowest;
            $n++;
        }
        nstore({ status => \%status, slowest => $slowest, n => $n },
            $s->state_dir . "/writer-$w");
        POSIX::_exit(0);
    }
    push @pids, $pid;
}
sleep 0.5;    # the writers are under way

my $t0 = time;
my $submit = req(POST => "/api/v1/batches/$bid/submit");
my $took = time - $t0;
sleep 0.5;
open my $f, '>', $stop or die $!;
close $f;
waitpid $_, 0 for @pids;

is $submit->{status}, 200, "the $LIMIT-request batch is submitted" or diag $submit->{body};
my %status;
my $slowest = 0;
my $ops = 0;
for my $w (1 .. $WRITERS) {
    my $r = retrieve($s->state_dir . "/writer-$w");
    $status{$_} += $r->{status}{$_} for keys %{ $r->{status} };
    $slowest = $r->{slowest} if $r->{slowest} > $slowest;
    $ops += $r->{n};
}
is_deeply [sort keys %status], [201], 'every writer\'s request succeeded (no 503)'
    or diag explain \%status;
diag sprintf "submit of %d requests: %.2f s; %d writers did %d operations meanwhile, "
    . "slowest %.2f s; statuses %s", $LIMIT, $took, $WRITERS, $ops, $slowest,
    join(', ', map { "$_ x$status{$_}" } sort keys %status);

my ($pending) = $root->selectrow_array(q{SELECT COUNT(*) FROM payment_requests
    WHERE batch_id = ? AND status = 'PENDING_APPROVAL'}, undef, $bid);
is $pending, $LIMIT, "all $LIMIT requests PENDING_APPROVAL";
my ($events) = $root->selectrow_array(q{SELECT COUNT(*) FROM audit_events
    WHERE org_id = ? AND action = 'request.submitted'}, undef, $o->{orgId});
is $events, $LIMIT, 'one request.submitted event each';
my $v = $s->remit('verify-audit');
is $v->{exit}, 0, 'the audit chain verifies' or diag $v->{stderr};

done_testing;
