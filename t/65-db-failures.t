use strict;
use warnings;

use Test::More;
use Remit::Test;

# Database failures are told apart from bad input (issue 9 item 7): a failure while a worker
# first reads its currency table is a 5xx, never 400 VALIDATION_ERROR; a key re-claim that
# runs out of retries is 503, not 500. No retries here (tx_retries = 0), so each case runs
# out at once; lock waits give up after 1 s.
my $s = Remit::Test->stack(start => 0, conf => { tx_retries => 0, idem_wait => 1 });
$s->start;
my $o = $s->new_org;
my $creator = $s->new_user($o->{token}, roles => ['CREATOR']);
my $root = $s->dbh;

sub req {
    my ($method, $path, $json, %o) = @_;
    return $s->req($method => $path, token => $creator->{token}, idem => $o{idem} // 1,
        (defined $json ? (json => $json) : ()));
}
my $bid = req(POST => '/api/v1/batches', { name => 'B' })->{json}{data}{id};
my %REQ = (amount => '1.50', currency => 'EUR', beneficiaryName => 'N', beneficiaryAccount => '1');
sub n_requests {
    scalar $root->selectrow_array('SELECT COUNT(*) FROM payment_requests WHERE batch_id = ?',
        undef, $bid);
}

# Fresh workers: none has read the currency table yet.
sub fresh_pool { $s->stop_remit; $s->start_remit }

subtest 'the currency table locked while a fresh worker reads it: 503, not 400' => sub {
    fresh_pool();
    my $lock = $s->new_dbh;
    $lock->do('LOCK TABLES currencies WRITE');
    my $r = req(POST => "/api/v1/batches/$bid/requests", \%REQ);
    $lock->do('UNLOCK TABLES');
    $lock->disconnect;
    is_error $r, 503, 'SERVICE_UNAVAILABLE', 'a 503, not a 400';
    is $r->{headers}{'retry-after'}, '1', 'Retry-After: 1';
    is n_requests(), 0, 'no request added';
    is req(POST => "/api/v1/batches/$bid/requests", \%REQ)->{status}, 201, 'then it works';
    is n_requests(), 1, 'one request';
};

subtest 'the currency table unreadable: 500, not 400 VALIDATION_ERROR' => sub {
    fresh_pool();
    $root->do('RENAME TABLE currencies TO currencies_gone');
    my $r = req(POST => "/api/v1/batches/$bid/requests", \%REQ);
    $root->do('RENAME TABLE currencies_gone TO currencies');
    is_error $r, 500, 'INTERNAL_ERROR', 'a 500, not a 400';
    is n_requests(), 1, 'no request added';
    is req(POST => "/api/v1/batches/$bid/requests", \%REQ)->{status}, 201, 'then it works';
};

subtest 'an expired key re-claimed past the retries: 503, then the key works' => sub {
    my $key = Remit::Test::random_key();
    my $first = req(POST => '/api/v1/batches', { name => 'K' }, idem => $key);
    is $first->{status}, 201, 'first use of the key';
    $root->do(q{UPDATE idempotency_keys SET expires_at = NOW(3) - INTERVAL 1 SECOND
        WHERE idem_key = ?}, undef, $key);
    my ($before) = $root->selectrow_array('SELECT COUNT(*) FROM batches');
    my $r = req(POST => '/api/v1/batches', { name => 'K' }, idem => $key);
    is_error $r, 503, 'SERVICE_UNAVAILABLE', '503 once the re-claim is out of retries';
    is $r->{headers}{'retry-after'}, '1', 'Retry-After: 1';
    my ($after) = $root->selectrow_array('SELECT COUNT(*) FROM batches');
    is $after, $before, 'no batch created';
    my $again = req(POST => '/api/v1/batches', { name => 'K' }, idem => $key);
    is $again->{status}, 201, 'the retry runs as a new key';
    isnt $again->{json}{data}{id}, $first->{json}{data}{id}, 'a new batch';
};

done_testing;
