use strict;
use warnings;
use utf8;

use Test::More;
use Remit::Test;

# Character set (issue 9 item 4): every table states utf8mb4 and `remit migrate` refuses a
# database that is not utf8mb4. Emails (item 5) compare after lower-casing A-Z only: no
# PAD SPACE collation makes "p1@a.example " equal "p1@a.example".
my $s = Remit::Test->stack;
my $o = $s->new_org;
my $creator = $s->new_user($o->{token}, roles => ['CREATOR']);
my $root = $s->dbh;
binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);

# Runs `remit migrate` on database $db (same accounts): {exit, stderr}.
sub migrate_on {
    my ($db) = @_;
    my $conf = $s->state_dir . "/migrate-$db.conf";
    open my $in, '<', $s->config_path or die $!;
    open my $out, '>', $conf or die $!;
    while (<$in>) {
        s/^db_name = .*/db_name = $db/;
        print $out $_;
    }
    close $out;
    my $err = $s->state_dir . "/migrate-$db.err";
    system("'${\ $s->bin}' --config '$conf' migrate >/dev/null 2>'$err'");
    my $rc = $? >> 8;
    open my $e, '<', $err or die $!;
    local $/;
    return { exit => $rc, stderr => scalar <$e> };
}

sub tables_in {
    return scalar $root->selectrow_array(
        'SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', undef, $_[0]);
}

subtest 'migrate refuses a latin1 database and creates nothing in it' => sub {
    $root->do('CREATE DATABASE remit_latin1 CHARACTER SET latin1');
    $root->do("GRANT ALL ON remit_latin1.* TO ?\@'localhost' WITH GRANT OPTION", undef,
        $Remit::Stack::OWNER_USER);
    my $r = migrate_on('remit_latin1');
    isnt $r->{exit}, 0, 'exit status non-zero';
    like $r->{stderr}, qr/remit_latin1 has character set latin1, remit needs utf8mb4/,
        'a clear message';
    is tables_in('remit_latin1'), 0, 'no table created';
};

subtest 'migrate on a utf8mb4 database creates every table as utf8mb4' => sub {
    $root->do('CREATE DATABASE remit_second CHARACTER SET utf8mb4');
    $root->do("GRANT ALL ON remit_second.* TO ?\@'localhost' WITH GRANT OPTION", undef,
        $Remit::Stack::OWNER_USER);
    my $r = migrate_on('remit_second');
    is $r->{exit}, 0, 'migrated' or diag $r->{stderr};
    ok tables_in('remit_second') > 10, 'tables created';
};

subtest 'every table and text column is utf8mb4 (codes ascii)' => sub {
    my $bad = $root->selectcol_arrayref(q{SELECT TABLE_NAME FROM information_schema.TABLES
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_COLLATION NOT LIKE 'utf8mb4%'});
    is_deeply $bad, [], 'no table defaults to another character set';
    my $cols = $root->selectcol_arrayref(q{SELECT CONCAT(TABLE_NAME, '.', COLUMN_NAME, ' ',
        CHARACTER_SET_NAME) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()
        AND CHARACTER_SET_NAME IS NOT NULL AND CHARACTER_SET_NAME NOT IN ('utf8mb4', 'ascii')});
    is_deeply $cols, [], 'no latin1 or utf8mb3 column';
};

subtest 'emoji are stored as sent' => sub {
    my $name = "Payroll 💸 ✓";
    my $r = $s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => 1,
        json => { name => $name, description => '🏦' });
    is $r->{status}, 201, 'created';
    is $r->{json}{data}{name}, $name, 'answered as sent';
    my $row = $root->selectrow_arrayref(
        'SELECT name, description FROM batches WHERE id = ?', undef, $r->{json}{data}{id});
    utf8::decode($_) for @$row;
    is_deeply $row, [$name, '🏦'], 'stored as sent';
};

sub add_user {
    my ($email) = @_;
    return $s->req(POST => '/api/v1/users', token => $o->{token}, idem => 1,
        json => { email => $email, name => 'P', roles => ['VIEWER'] });
}

sub with_key {
    my ($email) = @_;
    return scalar $root->selectrow_array(
        'SELECT COUNT(*) FROM users WHERE org_id = ? AND email = ?', undef, $o->{orgId}, $email);
}

subtest 'emails: a trailing space is another address; A-Z are lower-cased' => sub {
    is add_user('p1@a.example')->{status}, 201, 'p1@a.example';
    my $r = add_user('p1@a.example ');
    is $r->{status}, 201, '"p1@a.example " is another address';
    is $r->{json}{data}{email}, 'p1@a.example ', 'kept as sent';
    my ($n) = $root->selectrow_array(
        q{SELECT COUNT(*) FROM users WHERE org_id = ? AND email_key IN ('p1@a.example',
        'p1@a.example ')}, undef, $o->{orgId});
    is $n, 2, 'two users';
    is_error add_user('P1@A.EXAMPLE'), 409, 'CONFLICT', 'upper-case A-Z collides';
    is add_user("p1\@a.example  ")->{status}, 201, 'two trailing spaces: a third address';
    is add_user('ü@a.example')->{status}, 201, 'ü@a.example';
    is add_user('Ü@a.example')->{status}, 201, 'Ü is not lower-cased: another address';
    ($n) = $root->selectrow_array('SELECT COUNT(*) FROM users WHERE org_id = ?', undef,
        $o->{orgId});
    is $n, 7, 'the admin, the creator and five users';
};

done_testing;
