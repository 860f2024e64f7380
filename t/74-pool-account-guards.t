use strict;
use warnings;

use Test::More;
use Remit::Test qw(:DEFAULT sql_error);

# Issue 23, item 4: the pool's own database account cannot undo separation of duties. Makers
# are INSERT-only for it (adding goes through the procedures maker_add and makers_add_batch),
# a trigger keeps every maker row where it is with a bit set that only grows, and another
# refuses any request status change the lifecycle table does not allow. Both checked as the
# pool's account, which is what the review used.

my $s = Remit::Test->stack;
my $o = $s->new_org;
my $creator = $s->new_user($o->{token}, roles => ['CREATOR', 'APPROVER']);
my $approver = $s->new_user($o->{token}, roles => ['APPROVER']);
my $treasurer = $s->new_user($o->{token}, roles => ['TREASURER']);

my $app = $s->app_dbh;
my $root = $s->dbh;

sub one { scalar $root->selectrow_array($_[0], undef, @_[1 .. $#_]) }

sub as_app { sql_error($app, @_) }

sub as_root { sql_error($root, @_) }

# A batch of $n requests by the creator, submitted: the requests' ids.
sub submitted {
    my ($n) = @_;
    my $bid = $s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => 1,
        json => { name => 'B' })->{json}{data}{id};
    my @q = map {
        $s->req(POST => "/api/v1/batches/$bid/requests", token => $creator->{token}, idem => 1,
            json => { amount => '5', currency => 'USD', beneficiaryName => 'N', beneficiaryAccount => '1' })
            ->{json}{data}{id}
    } 1 .. $n;
    my $r = $s->req(POST => "/api/v1/batches/$bid/submit", token => $creator->{token}, idem => 1);
    die "submit: $r->{status} $r->{body}" unless $r->{status} == 200;
    return @q;
}

subtest 'the pool\'s account may not move a maker to someone else' => sub {
    my ($q) = submitted(1);
    is one('SELECT made FROM request_makers WHERE request_id = ? AND user_id = ?', $q, $creator->{id}),
        5, 'the creator is a maker (created, submitted)';
    is as_app('UPDATE request_makers SET user_id = ? WHERE request_id = ? AND user_id = ?',
        $approver->{id}, $q, $creator->{id}), 1142, 'UPDATE request_makers SET user_id: command denied';
    is as_app('UPDATE request_makers SET made = 1 WHERE request_id = ?', $q), 1142,
        'UPDATE request_makers SET made: command denied';
    is as_app('DELETE FROM request_makers WHERE request_id = ?', $q), 1142, 'DELETE: command denied';
    my $r = $s->req(POST => "/api/v1/requests/$q/approve", token => $creator->{token}, idem => 1);
    is $r->{status}, 403, 'the creator still may not decide';
    is $r->{json}{error}{code}, 'SELF_APPROVAL_FORBIDDEN', 'SELF_APPROVAL_FORBIDDEN';
    is one('SELECT COUNT(*) FROM decisions WHERE request_id = ?', $q), 0, 'no decision recorded';
    is one('SELECT status FROM payment_requests WHERE id = ?', $q), 'PENDING_APPROVAL', 'still pending';
};

subtest 'a maker row never moves and never loses a bit, whoever updates it' => sub {
    my ($q) = submitted(1);
    is as_root('UPDATE request_makers SET user_id = ? WHERE request_id = ?', $approver->{id}, $q),
        1644, 'moving it: refused by the trigger';
    is as_root('UPDATE request_makers SET made = 1 WHERE request_id = ?', $q), 1644, 'unmaking a bit: refused';
    is as_root('UPDATE request_makers SET made = 7 WHERE request_id = ?', $q), 0, 'adding one is allowed';
};

subtest 'the pool\'s account may not change a status the lifecycle does not allow' => sub {
    my ($pending, $approved, $other) = submitted(3);
    for my $q ($approved) {
        my $r = $s->req(POST => "/api/v1/requests/$q/approve", token => $approver->{token}, idem => 1);
        die "approve: $r->{status} $r->{body}" unless $r->{status} == 200;
    }
    is as_app(q{UPDATE payment_requests SET status = 'PAID', paid_at = NOW(3), paid_by = ?
        WHERE id = ?}, $treasurer->{id}, $pending), 1644, 'PENDING_APPROVAL to PAID: refused';
    is as_app(q{UPDATE payment_requests SET status = 'DRAFT' WHERE id = ?}, $pending), 1644,
        'PENDING_APPROVAL back to DRAFT: refused';
    is as_app(q{UPDATE payment_requests SET status = 'PENDING_APPROVAL' WHERE id = ?}, $approved), 1644,
        'APPROVED back to PENDING_APPROVAL: refused';
    is as_app(q{UPDATE payment_requests SET status = 'CANCELLED' WHERE id = ?}, $approved), 1644,
        'APPROVED to CANCELLED: refused';
    like $app->errstr, qr/lifecycle/, 'the trigger says why';
    is one('SELECT status FROM payment_requests WHERE id = ?', $pending), 'PENDING_APPROVAL', 'unchanged';
    is one('SELECT status FROM payment_requests WHERE id = ?', $approved), 'APPROVED', 'unchanged';
    is as_app(q{UPDATE payment_requests SET status = 'REJECTED' WHERE id = ?}, $other), 0,
        'an allowed change (PENDING_APPROVAL to REJECTED) passes';
    is as_app(q{UPDATE payment_requests SET status = 'APPROVED' WHERE id = ?}, $other), 1644,
        'but REJECTED is final';
    my $r = $s->req(POST => "/api/v1/requests/$approved/mark-paid", token => $treasurer->{token}, idem => 1);
    is $r->{status}, 200, 'the API still pays an approved request';
};

$app->disconnect;
done_testing;
