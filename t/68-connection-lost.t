use strict;
use warnings;

use Test::More;
use Remit::Test;

# A worker's database connection killed by the server (KILL CONNECTION: a failover, an
# administrator, a proxy) while the mutation waits at its end (src/tx.c: finish):
#
#   - before the statement that commits (a submit's first audit events, each its own CALL
#     audit_append): nothing can have committed, so the worker reconnects and runs the
#     mutation again: 200, one effect.
#   - in the statement that commits (CALL tx_finish): from the worker's side it may have
#     committed, so it is not run again: 503 with Retry-After. The server rolled it back,
#     so nothing is there, and the client's retry with the key is a normal first run.
#
# The organisation's audit chain head, held FOR UPDATE by the test, stops the request where
# it should be killed.
my $s = Remit::Test->stack;
my $o = $s->new_org;
my $creator = $s->new_user($o->{token}, roles => ['CREATOR']);
my $root = $s->dbh;
my %REQ = (amount => '2.50', currency => 'EUR', beneficiaryName => 'N', beneficiaryAccount => '1');

sub count { scalar $root->selectrow_array(@_) }

# Holds the audit head, sends the request, kills the connection that waits for the head,
# lets go, and returns the response and the killed connection's id.
sub killed_at_head {
    my (@req) = @_;
    my $holder = $s->new_dbh(AutoCommit => 0);
    $holder->selectall_arrayref('SELECT seq FROM audit_heads WHERE org_id = ? FOR UPDATE',
        undef, $o->{orgId});
    my $wait = $s->req_bg(@req);
    # INNODB_TRX is refreshed only when it was not read for 100 ms: a row of it can be of a
    # connection that has stopped waiting, or is gone. PROCESSLIST is live: the connection
    # must be running the head's locking read (the statement inside the CALL) right now.
    my $victim = wait_for(10, sub { scalar $root->selectrow_array(
        q{SELECT t.trx_mysql_thread_id FROM information_schema.INNODB_TRX t
          JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
          WHERE t.trx_state = 'LOCK WAIT' AND p.INFO LIKE '%FROM audit_heads%FOR UPDATE'}) });
    $root->do("KILL CONNECTION $victim") if $victim;
    $holder->rollback;
    $holder->disconnect;
    return ($wait->(), $victim);
}

subtest 'killed before the statement that commits: run again, one effect' => sub {
    my $bid = $s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => 1,
        json => { name => 'to submit' })->{json}{data}{id};
    for (1, 2) {
        is $s->req(POST => "/api/v1/batches/$bid/requests", token => $creator->{token},
            idem => 1, json => \%REQ)->{status}, 201, "request $_ added";
    }
    my $events = count('SELECT COUNT(*) FROM audit_events WHERE org_id = ?', undef, $o->{orgId});
    my $key = Remit::Test::random_key();
    my ($r, $victim) = killed_at_head(POST => "/api/v1/batches/$bid/submit",
        token => $creator->{token}, idem => $key);
    ok $victim, "the submit waited for the audit head (connection $victim), and was killed";
    is $r->{status}, 200, 'the submit answers 200: run again on a new connection'
        or diag $r->{body};
    is $r->{json}{data}{status}, 'SUBMITTED', 'the batch it answers is SUBMITTED';
    is count('SELECT status FROM batches WHERE id = ?', undef, $bid), 'SUBMITTED',
        'and so is the stored one';
    is count('SELECT COUNT(*) FROM audit_events WHERE org_id = ?', undef, $o->{orgId}),
        $events + 3, 'three audit events (batch.submitted, two request.submitted), once';
    is count('SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = ?', undef, $key), 1,
        'one key row';
    my $again = $s->req(POST => "/api/v1/batches/$bid/submit", token => $creator->{token},
        idem => $key);
    ok $again->{status} == 200 && ($again->{headers}{'idempotent-replayed'} // '') eq 'true'
        && $again->{body} eq $r->{body}, 'the key replays that answer';
};

subtest 'killed in the statement that commits: 503, nothing stays, the retry runs once' => sub {
    my $key = Remit::Test::random_key();
    my $name = "killed at commit $key";
    my @req = (POST => '/api/v1/batches', token => $creator->{token}, idem => $key,
        json => { name => $name });
    my ($r, $victim) = killed_at_head(@req);
    ok $victim, "the create waited for the audit head in CALL tx_finish (connection $victim)";
    is_error $r, 503, 'SERVICE_UNAVAILABLE', 'a 503: the worker cannot tell whether it committed';
    is $r->{headers}{'retry-after'}, '1', 'Retry-After: 1';
    is count('SELECT COUNT(*) FROM batches WHERE name = ?', undef, $name), 0,
        'the server rolled it back: no batch';
    is count('SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = ?', undef, $key), 0,
        'and no key row';
    my $again = $s->req(@req);
    is $again->{status}, 201, 'the retry with the key: 201' or diag $again->{body};
    ok !exists $again->{headers}{'idempotent-replayed'}, 'a normal run, not a replay';
    is count('SELECT COUNT(*) FROM batches WHERE name = ?', undef, $name), 1, 'one batch';
};

my $v = $s->remit('verify-audit');
is $v->{exit}, 0, 'verify-audit: the chain is intact' or diag $v->{stderr};

done_testing;
