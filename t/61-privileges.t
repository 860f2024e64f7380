use strict;
use warnings;

use DBI;
use Test::More;
use Remit::Test;

# Least privilege (issue 9 item 2): the pool connects as its own MariaDB user holding only
# the role remit_app (INSERT and SELECT on ledger and audit rows, no DDL), `remit migrate`
# runs as the schema's owner, root has no password-less TCP account, the pool's socket is
# 0660 for nginx's group and nginx's workers are not root.
my $s = Remit::Test->stack;
my $o = $s->new_org;
my $creator = $s->new_user($o->{token}, roles => ['CREATOR']);
my $approver = $s->new_user($o->{token}, roles => ['APPROVER']);

my $bid = $s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => 1,
    json => { name => 'B' })->{json}{data}{id};
my $q = $s->req(POST => "/api/v1/batches/$bid/requests", token => $creator->{token}, idem => 1,
    json => { amount => '5', currency => 'USD', beneficiaryName => 'N', beneficiaryAccount => '1' })
    ->{json}{data}{id};
is $s->req(POST => "/api/v1/batches/$bid/submit", token => $creator->{token}, idem => 1)->{status},
    200, 'submitted';
is $s->req(POST => "/api/v1/requests/$q/approve", token => $approver->{token}, idem => 1)->{status},
    200, 'approved: the pool writes the ledger with its own user';

my %conf = map { /^(\w+) = (.*)$/ ? ($1 => $2) : () } split /\n/, do {
    open my $f, '<', $s->config_path or die $!;
    local $/;
    <$f>;
};
isnt $conf{db_user}, 'root', "the pool's user is not root ($conf{db_user})";
isnt $conf{db_user}, $conf{migrate_user}, 'and not the owner';
is sprintf('%04o', (stat $s->config_path)[2] & 07777), '0600', 'remit.conf (passwords) is 0600';

my $app = $s->new_dbh(user => $conf{db_user}, password => $conf{db_password});
my $root = $s->dbh;
my ($entry) = $root->selectrow_array(
    'SELECT id FROM ledger_entries WHERE request_id = ?', undef, $q);
my ($event) = $root->selectrow_array(
    'SELECT MAX(id) FROM audit_events WHERE org_id = ?', undef, $o->{orgId});
ok $entry && $event, 'a ledger entry and an audit event exist';

# Runs SQL as the pool's user; the server's error number (0 when it succeeded).
sub as_app {
    my ($sql, @bind) = @_;
    return eval { $app->do($sql, undef, @bind); 1 } ? 0 : $app->err;
}

subtest 'the pool\'s user may not change ledger or audit rows, nor drop a trigger' => sub {
    is as_app('UPDATE ledger_entries SET amount = amount + 1 WHERE id = ?', $entry), 1142,
        'UPDATE ledger_entries: command denied';
    is as_app('DELETE FROM ledger_entries WHERE id = ?', $entry), 1142, 'DELETE ledger_entries';
    is as_app('UPDATE audit_events SET data = ? WHERE id = ?', '{}', $event), 1142,
        'UPDATE audit_events';
    is as_app('DELETE FROM audit_events WHERE id = ?', $event), 1142, 'DELETE audit_events';
    is as_app('UPDATE decisions SET decision = ? WHERE request_id = ?', 'REJECTED', $q), 1142,
        'UPDATE decisions';
    is as_app('DROP TRIGGER ledger_no_update'), 1142, 'DROP TRIGGER: denied';
    is as_app('ALTER TABLE ledger_entries ADD COLUMN x INT'), 1142, 'ALTER TABLE: denied';
    is as_app('DROP TABLE idempotency_keys'), 1142, 'DROP TABLE: denied';
    my ($n) = $root->selectrow_array(q{SELECT COUNT(*) FROM information_schema.TRIGGERS
        WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME = 'ledger_no_update'});
    is $n, 1, 'the trigger is still there';
};

subtest 'immutability holds even when someone else dropped the triggers' => sub {
    $root->do('DROP TRIGGER ledger_no_update');
    $root->do('DROP TRIGGER audit_no_update');
    is as_app('UPDATE ledger_entries SET amount = amount + 1 WHERE id = ?', $entry), 1142,
        'UPDATE ledger_entries still denied';
    is as_app('UPDATE audit_events SET data = ? WHERE id = ?', '{}', $event), 1142,
        'UPDATE audit_events still denied';
    my ($amount) = $root->selectrow_array('SELECT amount FROM ledger_entries WHERE id = ?',
        undef, $entry);
    is $amount, 500, 'the amount is unchanged';
    $root->do(q{CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger_entries FOR EACH ROW
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'ledger entries are append-only'});
    $root->do(q{CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_events FOR EACH ROW
        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit events are append-only'});
};

subtest 'the schema belongs to the owner that migrated it' => sub {
    my $definers = $root->selectcol_arrayref(q{SELECT DISTINCT DEFINER FROM
        information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()
        AND TRIGGER_NAME IN ('decisions_not_maker', 'requests_paid_not_maker')});
    is_deeply $definers, ["$conf{migrate_user}\@localhost"], 'triggers defined by the owner';
    my $grants = $app->selectcol_arrayref('SHOW GRANTS');
    ok !(grep { /\bALL PRIVILEGES\b|\bSUPER\b|\bDROP\b|\bALTER\b|\bTRIGGER\b/ } @$grants),
        'the pool\'s user holds no ALL, SUPER, DROP, ALTER or TRIGGER'
        or diag explain $grants;
    my ($role) = $app->selectrow_array('SELECT CURRENT_ROLE()');
    is $role, 'remit_app', 'its default role is remit_app';
};

subtest 'no password-less root over TCP; the pool\'s user works over TCP' => sub {
    my $tcp = sprintf 'DBI:MariaDB:database=remit;host=127.0.0.1;port=%d', $s->db_port;
    my $h = DBI->connect($tcp, 'root', '', { PrintError => 0, RaiseError => 0 });
    ok !$h, 'root without a password over 127.0.0.1 is refused';
    like $DBI::errstr // '', qr/denied|not allowed/i, 'access denied';
    $h = DBI->connect($tcp, $conf{db_user}, $conf{db_password}, { PrintError => 0 });
    ok $h, 'the pool\'s user connects over TCP with its password';
    $h->disconnect if $h;
};

subtest 'the socket is 0660 for nginx\'s group; nginx\'s workers are not root' => sub {
    my @st = stat $s->socket_path;
    is sprintf('%04o', $st[2] & 07777), '0660', 'socket mode 0660';
    my @workers = map { _status($_) } _kids($s->nginx_pid);
    ok @workers, 'nginx has workers';
    for my $w (@workers) {
        if ($> == 0) {
            isnt $w->{uid}, 0, "worker $w->{pid} runs as uid $w->{uid}, not root";
            is $st[5], $w->{gid}, 'the socket belongs to the worker\'s group';
        } else {
            is $w->{uid}, $>, "worker $w->{pid} keeps our uid";
        }
    }
    is $s->req(GET => '/api/v1/me', token => $creator->{token})->{status}, 200,
        'and they reach the pool';
};

sub _kids {
    my ($ppid) = @_;
    opendir my $d, '/proc' or return;
    my @kids;
    for my $pid (grep { /^\d+$/ } readdir $d) {
        open my $f, '<', "/proc/$pid/stat" or next;    # gone in between
        my ($rest) = <$f> =~ /\)\s+(.*)$/s or next;
        push @kids, $pid if (split ' ', $rest)[1] == $ppid;
    }
    return @kids;
}

sub _status {
    my ($pid) = @_;
    open my $f, '<', "/proc/$pid/status" or return;
    my %st = map { /^(\w+):\s+(\d+)/ ? ($1 => $2) : () } <$f>;
    return { pid => $pid, uid => $st{Uid}, gid => $st{Gid} };
}

$app->disconnect;
done_testing;
