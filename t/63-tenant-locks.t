use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time);
use Remit::Test;

# Tenancy before locks (issue 9 item 3): while organisation A holds its rows FOR UPDATE,
# B's requests on A's ids answer 404 at once, as for an unknown id, on every route that
# locks: they never wait on A's locks (which would tell B that the id exists and is busy).
my $s = Remit::Test->stack;

my $a = $s->new_org;
my $a_all = $s->new_user($a->{token}, roles => ['CREATOR', 'APPROVER']);
my $b = $s->new_org;
my $b_all = $s->new_user($b->{token}, roles => ['ADMIN', 'CREATOR', 'APPROVER', 'TREASURER']);

sub made {
    my ($path, $json) = @_;
    my $r = $s->req(POST => $path, token => $a_all->{token}, idem => 1, json => $json);
    die "$path: $r->{status} $r->{body}" unless $r->{status} == 201;
    return $r->{json}{data}{id};
}
my $draft = made('/api/v1/batches', { name => 'draft' });
my $dreq = made("/api/v1/batches/$draft/requests",
    { amount => '1', currency => 'USD', beneficiaryName => 'N', beneficiaryAccount => '1' });
my $sub = made('/api/v1/batches', { name => 'submitted' });
my $sreq = made("/api/v1/batches/$sub/requests",
    { amount => '1', currency => 'USD', beneficiaryName => 'N', beneficiaryAccount => '1' });
my $other = $s->new_user($a->{token}, roles => ['CREATOR']);
is $s->req(POST => "/api/v1/batches/$sub/submit", token => $other->{token}, idem => 1)->{status},
    200, 'A submitted a batch';
my $tok = $s->req(POST => "/api/v1/users/$a_all->{id}/tokens", token => $a->{token}, json => {})
    ->{json}{data}{id};
ok $tok, 'A has a token to revoke';

my $unknown = '999999999';
my @routes = (
    [POST => '/api/v1/batches/%s/submit', $draft, undef],
    [POST => '/api/v1/batches/%s/cancel', $sub, undef],
    [POST => '/api/v1/batches/%s/requests', $draft,
        { amount => '1', currency => 'USD', beneficiaryName => 'N', beneficiaryAccount => '1' }],
    [PATCH => '/api/v1/requests/%s', $dreq, { purpose => 'x' }],
    [DELETE => '/api/v1/requests/%s', $dreq, undef],
    [POST => '/api/v1/requests/%s/approve', $sreq, {}],
    [POST => '/api/v1/requests/%s/reject', $sreq, { comment => 'no' }],
    [POST => '/api/v1/requests/%s/mark-paid', $sreq, {}],
    [DELETE => '/api/v1/tokens/%s', $tok, undef],
);

sub b_req {
    my ($rt, $id) = @_;
    my ($method, $path, undef, $json) = @$rt;
    my $t0 = time;
    my $r = $s->req($method => sprintf($path, $id), token => $b_all->{token}, idem => 1,
        (defined $json ? (json => $json) : ()));
    return ($r, time - $t0);
}

# A's transaction holds every row B will name.
my $holder = $s->new_dbh(AutoCommit => 0);
$holder->do('SELECT id FROM batches WHERE id IN (?, ?) FOR UPDATE', undef, $draft, $sub);
$holder->do('SELECT id FROM payment_requests WHERE id IN (?, ?) FOR UPDATE', undef, $dreq, $sreq);
$holder->do('SELECT id FROM tokens WHERE id = ? FOR UPDATE', undef, $tok);
my $versions = $s->dbh->selectall_arrayref('SELECT id, version, status FROM batches ORDER BY id');

for my $rt (@routes) {
    my $name = "$rt->[0] " . sprintf($rt->[1], '{id}');
    subtest $name => sub {
        my ($u, $tu) = b_req($rt, $unknown);
        is_error $u, 404, 'NOT_FOUND', 'an unknown id: 404';
        my ($r, $t) = b_req($rt, $rt->[2]);
        is_error $r, 404, 'NOT_FOUND', "A's locked id: 404";
        # A wait on A's lock would last the pool's whole lock wait bound (idem_wait, 5 s):
        # a fifth of it tells the two apart on a busy machine, under the sanitizers too.
        cmp_ok $t, '<', 1, sprintf("A's locked id answered in %.0f ms (unknown: %.0f ms)",
            $t * 1000, $tu * 1000);
    };
}

$holder->rollback;
$holder->disconnect;
is_deeply $s->dbh->selectall_arrayref('SELECT id, version, status FROM batches ORDER BY id'),
    $versions, 'no batch changed';
my ($revoked) = $s->dbh->selectrow_array('SELECT revoked_at FROM tokens WHERE id = ?', undef, $tok);
is $revoked, undef, "A's token is not revoked";
my ($n) = $s->dbh->selectrow_array('SELECT COUNT(*) FROM payment_requests WHERE batch_id = ?',
    undef, $draft);
is $n, 1, "no request added to A's batch";

done_testing;
