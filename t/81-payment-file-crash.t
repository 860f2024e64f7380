use strict;
use warnings;

# A worker killed while making a payment file (API §9) leaves no file and no request marked:
# the file row is written and the worker then waits on a lock the test holds (the unique
# messageId that an open transaction of the test has taken); SIGKILL, and the database rolls
# the whole attempt back. The retry with the same key is a first run that makes one file.

use Test::More;
use Remit::Test;

my $s = Remit::Test->stack(start => 0);
$s->conf_set(workers => 4, idem_wait => 15, purge_interval => 0);
$s->start;
$s->expect_worker_kill(9);
my $dbh = $s->dbh;

my $org = $s->new_org;
my $admin = $org->{token};
my %u = map { $_ => $s->new_user($admin, roles => [uc $_]) } qw(creator approver treasurer);

sub ok_req {
    my ($want, @req) = @_;
    my $r = $s->req(@req);
    die "$req[0] $req[1]: $r->{status} $r->{body}" unless $r->{status} == $want;
    return $r->{json}{data};
}

ok_req(200, PUT => '/api/v1/debtor-accounts', token => $admin, json => { accounts => [
    { currency => 'EUR', name => 'Acme', iban => 'DE89370400440532013000' } ] });
my $bid = ok_req(201, POST => '/api/v1/batches', token => $u{creator}{token}, idem => 1,
    json => { name => 'B' })->{id};
my @ids = map { ok_req(201, POST => "/api/v1/batches/$bid/requests", token => $u{creator}{token},
    idem => 1, json => { amount => "$_.00", currency => 'EUR', beneficiaryName => "N$_",
        beneficiaryAccount => 'FR1420041010050500013M02606' })->{id} } 1 .. 3;
ok_req(200, POST => "/api/v1/batches/$bid/submit", token => $u{creator}{token}, idem => 1);
ok_req(200, POST => "/api/v1/requests/$_/approve", token => $u{approver}{token}, idem => 1)
    for @ids;

sub versions { [ map { $s->req(GET => "/api/v1/requests/$_", token => $admin)->{json}{data}{version} } @ids ] }

# The workers holding an accepted FastCGI connection (as t/42 counts them).
sub busy_workers {
    my %sockets;
    for my $pid ($s->worker_pids) {
        opendir my $d, "/proc/$pid/fd" or next;
        $sockets{$pid} = grep { (readlink("/proc/$pid/fd/$_") // '') =~ /^socket:/ } readdir $d;
    }
    my $idle = (sort { $a <=> $b } values %sockets)[0] // 0;
    return grep { $sockets{$_} > $idle } keys %sockets;
}

my $before = versions();
$s->wait_until('all 4 workers run', sub { scalar($s->worker_pids) == 4 }, 40);

# The test's own file row takes the next id, and the messageId of the one after it.
my $h = $s->new_dbh(AutoCommit => 0);
$h->do('SET SESSION innodb_lock_wait_timeout = 60');
$h->do(q{INSERT INTO payment_files (org_id, currency, item_count, total, execution_date,
    debtor_name, debtor_iban, created_by) VALUES (?, 'EUR', 1, 1, CURDATE(), 'x', 'x', ?)},
    undef, $org->{orgId}, $org->{userId});
my $mine = $h->last_insert_id;
$h->do('UPDATE payment_files SET message_id = ? WHERE id = ?', undef, 'REMIT-' . ($mine + 1), $mine);

my $key = Remit::Test::random_key();
my %req = (token => $u{treasurer}{token}, idem => $key, json => { requestIds => \@ids });
my $first = $s->req_bg(POST => '/api/v1/payment-files', %req);
$s->wait_until('the attempt waits for the messageId the test holds', sub { $s->lock_waits == 1 });
my $rows = $dbh->selectrow_array(q{SELECT trx_rows_modified FROM information_schema.INNODB_TRX
    WHERE trx_state = 'LOCK WAIT'});
cmp_ok $rows // 0, '>=', 2, "it has written already ($rows rows: the key, its file)";
my @busy = busy_workers();
is scalar @busy, 1, 'one worker is serving it';
kill 'KILL', @busy;
is_error $first->(), 502, 'BAD_GATEWAY', 'its client gets 502';
$h->rollback;
$h->disconnect;

$s->wait_until('the killed attempt is rolled back', sub {
    !$dbh->selectrow_array('SELECT COUNT(*) FROM information_schema.INNODB_TRX') });
is $dbh->selectrow_array('SELECT COUNT(*) FROM payment_files WHERE org_id = ?', undef,
    $org->{orgId}), 0, 'no file';
is $dbh->selectrow_array('SELECT COUNT(*) FROM payment_file_items WHERE org_id = ?', undef,
    $org->{orgId}), 0, 'no item';
is_deeply versions(), $before, 'no request changed';
is $s->req(GET => "/api/v1/requests/$ids[0]", token => $admin)->{json}{data}{paymentFileId},
    undef, 'none in a file';

my $retry = $s->req(POST => '/api/v1/payment-files', %req);
is $retry->{status}, 201, 'the retry with the same key makes the file' or diag $retry->{body};
ok !exists $retry->{headers}{'idempotent-replayed'}, 'a first run, not a replay';
is scalar @{ $retry->{json}{data}{items} }, 3, 'with the three requests';
is $dbh->selectrow_array('SELECT COUNT(*) FROM payment_files WHERE org_id = ?', undef,
    $org->{orgId}), 1, 'one file';
my $again = $s->req(POST => '/api/v1/payment-files', %req);
is $again->{headers}{'idempotent-replayed'}, 'true', 'and the next attempt replays it';
is $again->{body}, $retry->{body}, 'byte-identical';

done_testing;
