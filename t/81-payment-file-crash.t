use strict;
use warnings;

# A worker killed while making a payment file (API §9) leaves no file and no request marked:
# the file row is written and the worker then waits on a lock the test holds (the unique
# messageId that an open transaction of the test has taken); SIGKILL, and the database rolls
# the whole attempt back. The retry with the same key is a first run that makes one file.

use Test::More;
use Remit::Test;
use Remit::Fixture qw(people debtor_account ready_requests);

my $s = Remit::Test->crash_stack;
my $dbh = $s->dbh;

my $org = $s->new_org;
my $admin = $org->{token};
my %u = %{ people($s, $admin, qw(creator approver treasurer)) };
debtor_account($s, $admin);
my @ids = map { $_->{id} } ready_requests($s, $u{creator}, [ $u{approver} ],
    map { { amount => "$_.00", currency => 'EUR', beneficiaryName => "N$_",
        beneficiaryAccount => 'FR1420041010050500013M02606' } } 1 .. 3);

sub versions { [ map { $s->req(GET => "/api/v1/requests/$_", token => $admin)->{json}{data}{version} } @ids ] }

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
$s->kill_lock_waiter($h, $first, waits => 'the attempt waits for the messageId the test holds',
    rows => 2, written => 'the key, its file');
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
