use strict;
use warnings;

use Test::More;
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep time);
use Remit::Test;

# `remit verify-audit` on a live database (issue 16): while forked writers commit to the
# same organisations, it reads each organisation's head and chain in one snapshot and so
# reports no break that is not there; a row an attacker with the database owner's rights
# rewrote is named, and only that one.
my $s = Remit::Test->stack;

my @ORGS = map {
    my $o = $s->new_org;
    my $creator = $s->new_user($o->{token}, roles => ['CREATOR']);
    my $b = $s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => 1,
        json => { name => "live $_" });
    die "POST /api/v1/batches: $b->{status} $b->{body}" unless $b->{status} == 201;
    { org => $o->{orgId}, token => $creator->{token}, batch => $b->{json}{data}{id} }
} 1 .. 3;

my $body = JSON::PP->new->utf8->canonical->encode({ amount => '1.00', currency => 'EUR',
    beneficiaryName => 'Live GmbH', beneficiaryAccount => 'DE89 3704 0044 0532 0130 00' });

# Two writers per organisation, adding requests until the stop file appears. Each exits with
# the number of answers that were not 201 (at most 255).
my $stop = $s->state_dir . '/stop-writers';
my @writers;
my $parent = $$;
for my $o (@ORGS, @ORGS) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 30);
        my ($bad, $n) = (0, 0);
        until (-e $stop || getppid() != $parent) {
            my $key = "live-$$-" . ++$n;
            my $r;
            # As a client would: a 5xx is retried with the same key (a shed or a lock wait
            # that outlasted its retries while the trigger was being replaced).
            for my $try (1 .. 10) {
                $r = $http->request(POST => $s->url . "/api/v1/batches/$o->{batch}/requests", {
                    headers => { Authorization => "Bearer $o->{token}",
                        'Content-Type' => 'application/json', 'Idempotency-Key' => $key },
                    content => $body });
                last if $r->{status} < 500;
                sleep 0.2;
            }
            next if $r->{status} == 201;
            $bad++;
            if (open my $log, '>>', "$stop.bad") { print $log "$r->{status} $r->{content}\n" }
        }
        POSIX::_exit($bad > 255 ? 255 : $bad);
    }
    push @writers, $pid;
}

sub events { $s->dbh->selectrow_array('SELECT COUNT(*) FROM audit_events') }

sub stop_writers {
    open my $fh, '>', $stop or die "$stop: $!";
    close $fh;
    my $bad = 0;
    for my $pid (@writers) {
        waitpid $pid, 0;
        $bad += $? >> 8;
    }
    @writers = ();
    if ($bad && open my $log, '<', "$stop.bad") { Test::More::diag("not 201: $_") while <$log> }
    return $bad;
}

subtest 'verify-audit while writers commit: 0 false reports in at least 20 runs under commits' => sub {
    my $start = events();
    $s->wait_until('the writers are committing', sub { events() > $start + 20 }, 30);
    # A run proves something only if commits landed while it read: run until 20 did (a loaded
    # machine may stall the writers now and then), at most 60 runs.
    my ($false, $grew, $runs) = (0, 0, 0);
    while ($grew < 20 && $runs < 60) {
        my $run = ++$runs;
        my $before = events();
        my $r = $s->remit('verify-audit');
        $grew++ if events() > $before;
        next if $r->{exit} == 0 && $r->{stdout} =~ /"audit":"ok"/;
        $false++;
        diag "run $run: exit $r->{exit}: $r->{stderr}";
    }
    is $false, 0, "every run reports every chain intact ($runs runs)";
    cmp_ok $grew, '>=', 20, "commits landed during $grew of $runs runs";
};

subtest 'a row rewritten by the database owner is named, and nothing else' => sub {
    my $dbh = $s->dbh;
    # An event in the middle of organisation 2's chain, with events after it.
    my ($id, $seq) = $dbh->selectrow_array('SELECT id, seq FROM audit_events WHERE org_id = ?'
        . ' AND seq = (SELECT FLOOR(MAX(seq) / 2) FROM audit_events WHERE org_id = ?)', undef,
        $ORGS[1]{org}, $ORGS[1]{org});
    ok $id, "event $id (seq $seq) of organisation $ORGS[1]{org}";
    ok !eval { $dbh->do(q{UPDATE audit_events SET data = '{"amount":"9999.00"}' WHERE id = ?},
        undef, $id); 1 }, 'the trigger refuses the UPDATE';
    # What an attacker with the owner's rights does: lift the trigger, rewrite, put it back.
    $dbh->do('DROP TRIGGER audit_no_update');
    is $dbh->do(q{UPDATE audit_events SET data = '{"amount":"9999.00"}' WHERE id = ?}, undef,
        $id), 1, 'the row is rewritten';
    $dbh->do(q{CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_events FOR EACH ROW }
        . q{SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit events are append-only'});
    # Still under load: the report must not change with commits landing.
    for my $run (1 .. 3) {
        my $r = $s->remit('verify-audit');
        is $r->{exit}, 1, "run $run: exit 1";
        my @lines = grep { /\S/ } split /\n/, $r->{stderr};
        is_deeply \@lines, ["audit chain of organisation $ORGS[1]{org} broken at event $id "
            . "(seq $seq): hash does not match the event's contents"],
            "run $run: names exactly event $id";
        is $r->{stdout}, '', "run $run: no ok";
    }
    is stop_writers(), 0, 'every write of the writers answered 201';
};

stop_writers() if @writers;
done_testing;
