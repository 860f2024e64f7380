use strict;
use warnings;

use Test::More;
use JSON::PP ();
use POSIX ();
use Remit::Test;

# Races (DESIGN.md: the database decides): forked clients released at the same moment on
# the same request or batch. Each case runs several rounds to give the race its chances.
my $s = Remit::Test->stack;
my $ROUNDS = 8;

my $o = $s->new_org;
my %tok;
for my $k (qw(creator a1 a2 a3 t1 t2 viewer)) {
    my $roles = $k =~ /^a/ ? ['APPROVER'] : $k =~ /^t/ ? ['TREASURER']
        : $k eq 'viewer' ? ['VIEWER'] : ['CREATOR'];
    $tok{$k} = $s->new_user($o->{token}, roles => $roles)->{token};
}
is $s->req(PUT => '/api/v1/approval-rules', token => $o->{token}, json => { rules => [
    { currency => 'USD', minAmount => '0', approvals => 2 } ] })->{status}, 200,
    'every USD request needs two approvals';

# Runs each job (a sub returning a response) in a process of its own; all wait at one gate
# and go when it opens. Returns [status, decoded body] per job, in order.
sub race {
    my @jobs = @_;
    pipe(my $gate_r, my $gate_w) or die "pipe: $!";
    my @kids;
    for my $job (@jobs) {
        pipe(my $res_r, my $res_w) or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $gate_w;
            close $res_r;
            sysread $gate_r, my $byte, 1;    # EOF when the parent closes the gate
            my $r = eval { $job->() } // { status => 599, body => "$@" };
            print {$res_w} "$r->{status}\n$r->{body}";
            close $res_w;
            POSIX::_exit(0);
        }
        close $res_w;
        push @kids, [ $pid, $res_r ];
    }
    close $gate_r;
    close $gate_w;
    my @out;
    for my $k (@kids) {
        my $fh = $k->[1];
        my $text = do { local $/; <$fh> };
        waitpid $k->[0], 0;
        my ($status, $body) = split /\n/, $text // '', 2;
        push @out, [ $status, eval { JSON::PP->new->utf8->decode($body) } ];
    }
    return @out;
}

sub batch_with {
    my (@amounts) = @_;
    my $b = $s->req(POST => '/api/v1/batches', token => $tok{creator}, idem => 1,
        json => { name => 'race' })->{json}{data}{id};
    my @q = map {
        $s->req(POST => "/api/v1/batches/$b/requests", token => $tok{creator}, idem => 1,
            json => { amount => $_, currency => 'USD', beneficiaryName => 'N',
                beneficiaryAccount => '1' })->{json}{data}{id}
    } @amounts;
    return ($b, @q);
}

sub submit { $s->req(POST => "/api/v1/batches/$_[0]/submit", token => $tok{creator}, idem => 1) }

sub act {
    my ($who, $id, $what) = @_;
    return sub {
        $s->req(POST => "/api/v1/requests/$id/$what", token => $tok{$who}, idem => 1,
            json => $what eq 'reject' ? { comment => 'no' } : {});
    };
}

sub entries {
    my ($id, $type) = @_;
    my $e = $s->req(GET => "/api/v1/ledger/entries?requestId=$id", token => $tok{viewer});
    return scalar grep { $_->{type} eq $type } @{ $e->{json}{data} };
}

sub request { $s->req(GET => "/api/v1/requests/$_[0]", token => $tok{viewer})->{json}{data} }
sub codes { join ' ', sort map { $_->[0] . ($_->[1]{error} ? " $_->[1]{error}{code}" : '') } @_ }

subtest 'two approvers give the last approval at once: APPROVED once, one OBLIGATION' => sub {
    for my $round (1 .. $ROUNDS) {
        my ($b, $q) = batch_with('10');
        submit($b);
        is act('a1', $q, 'approve')->()->{status}, 200, "round $round: first approval";
        my @r = race(act('a2', $q, 'approve'), act('a3', $q, 'approve'));
        is codes(@r), '200 409 INVALID_STATE', 'one 200, one 409 INVALID_STATE';
        my ($won) = grep { $_->[0] == 200 } @r;
        is $won->[1]{data}{status}, 'APPROVED', 'the winner approved it';
        my $q2 = request($q);
        is $q2->{approvalCount}, 2, 'two approvals';
        is $q2->{version}, 4, 'version: created, submitted, two approvals';
        is entries($q, 'OBLIGATION'), 1, 'exactly one OBLIGATION';
    }
};

subtest 'both approvals of a 2-approval request at once: both count, one OBLIGATION' => sub {
    for my $round (1 .. $ROUNDS) {
        my ($b, $q) = batch_with('10');
        submit($b);
        my @r = race(act('a1', $q, 'approve'), act('a2', $q, 'approve'));
        is codes(@r), '200 200', "round $round: both 200";
        is_deeply [ sort map { $_->[1]{data}{approvalCount} } @r ], [ 1, 2 ],
            'one saw 1, the other 2';
        is request($q)->{status}, 'APPROVED', 'APPROVED';
        is entries($q, 'OBLIGATION'), 1, 'exactly one OBLIGATION';
    }
};

subtest 'one approver twice at once with two keys: one 200, one ALREADY_DECIDED' => sub {
    for my $round (1 .. $ROUNDS) {
        my ($b, $q) = batch_with('10');
        submit($b);
        my @r = race(act('a1', $q, 'approve'), act('a1', $q, 'approve'));
        is codes(@r), '200 409 ALREADY_DECIDED', "round $round";
        is request($q)->{approvalCount}, 1, 'one approval';
    }
};

subtest 'two mark-paid calls with different keys: one 200, one 409, one SETTLEMENT' => sub {
    for my $round (1 .. $ROUNDS) {
        my ($b, $q) = batch_with('10');
        submit($b);
        act('a1', $q, 'approve')->();
        act('a2', $q, 'approve')->();
        my @r = race(act('t1', $q, 'mark-paid'), act('t2', $q, 'mark-paid'));
        is codes(@r), '200 409 INVALID_STATE', "round $round: one 200, one INVALID_STATE";
        my ($lost) = grep { $_->[0] == 409 } @r;
        is $lost->[1]{error}{details}{status}, 'PAID', 'the loser saw PAID';
        is entries($q, 'SETTLEMENT'), 1, 'exactly one SETTLEMENT';
        is $s->req(GET => "/api/v1/batches/$b", token => $tok{viewer})->{json}{data}{status},
            'COMPLETED', 'the batch completed';
    }
};

subtest 'the last decisions on two requests of one batch at once: COMPLETED once' => sub {
    for my $round (1 .. $ROUNDS) {
        my ($b, $q1, $q2) = batch_with('10', '20');
        submit($b);
        my @r = race(act('a1', $q1, 'reject'), act('a2', $q2, 'reject'));
        is codes(@r), '200 200', "round $round: both rejected";
        my $batch = $s->req(GET => "/api/v1/batches/$b", token => $tok{viewer})->{json}{data};
        is $batch->{status}, 'COMPLETED', 'COMPLETED';
        is $batch->{version}, 3 + 1 + 2, 'version: 2 adds, submit, 2 rejections (completion included)';
        my $ev = $s->req(GET => "/api/v1/audit?objectId=$b", token => $tok{viewer})->{json}{data};
        is scalar(grep { $_->{action} eq 'batch.completed' } @$ev), 1, 'one batch.completed';
    }
};

subtest 'submit and cancel of one batch at once: one wins, the state is whole' => sub {
    for my $round (1 .. $ROUNDS) {
        my ($b, @q) = batch_with('1', '2', '3');
        my @r = race(sub { submit($b) },
            sub { $s->req(POST => "/api/v1/batches/$b/cancel", token => $tok{creator}, idem => 1) });
        my $final = $s->req(GET => "/api/v1/batches/$b", token => $tok{viewer})->{json}{data};
        my %st = map { request($_)->{status} => 1 } @q;
        if ($r[0][0] == 200 && $r[1][0] == 200) {
            is $final->{status}, 'CANCELLED', "round $round: submitted, then cancelled";
            is_deeply [ keys %st ], ['CANCELLED'], 'every request CANCELLED';
        } else {
            is codes(@r), '200 409 INVALID_STATE', "round $round: one won";
            my $want = $r[0][0] == 200 ? 'PENDING_APPROVAL' : 'CANCELLED';
            is_deeply [ keys %st ], [$want], "every request $want";
        }
    }
};

subtest 'requests added while the batch is submitted: never a DRAFT in a SUBMITTED batch' => sub {
    for my $round (1 .. $ROUNDS) {
        my ($b) = batch_with('1');
        my $add = sub {
            $s->req(POST => "/api/v1/batches/$b/requests", token => $tok{creator}, idem => 1,
                json => { amount => '5', currency => 'USD', beneficiaryName => 'late',
                    beneficiaryAccount => '1' });
        };
        my @r = race($add, sub { submit($b) }, $add);
        is $r[1][0], 200, "round $round: submitted";
        my $list = $s->req(GET => "/api/v1/batches/$b/requests", token => $tok{viewer});
        my @reqs = @{ $list->{json}{data} };
        is scalar(@reqs), 1 + grep({ $_->[0] == 201 } @r[0, 2]), 'each 201 added one request';
        is scalar(grep { $_->{status} ne 'PENDING_APPROVAL' } @reqs), 0, 'all were submitted';
        ok !(grep { $_->[0] != 201 && ($_->[1]{error}{code} // '') ne 'INVALID_STATE' } @r[0, 2]),
            'a late add is INVALID_STATE';
    }
};

subtest 'approval rules replaced by three admins at once: one whole set wins' => sub {
    my @sets = map { my $n = $_; [ map { { currency => 'EUR', minAmount => "$n$_", approvals => $n } }
        1 .. 3 * $n ] } 1 .. 3;
    for my $round (1 .. $ROUNDS) {
        my @r = race(map { my $set = $_; sub {
            $s->req(PUT => '/api/v1/approval-rules', token => $o->{token}, json => { rules => $set });
        } } @sets);
        is codes(@r), '200 200 200', "round $round: all 200";
        my $got = $s->req(GET => '/api/v1/approval-rules', token => $tok{viewer})->{json}{data}{rules};
        my ($match) = grep { scalar @{ $sets[$_] } == scalar @$got } 0 .. 2;
        ok defined $match && !(grep { $got->[$_]{approvals} != $match + 1 } 0 .. $#$got),
            'the stored rules are exactly one of the sets';
    }
};

subtest 'the audit chain is intact after the races' => sub {
    my $r = $s->remit('verify-audit');
    is $r->{exit}, 0, 'verify-audit exit 0' or diag $r->{stderr};
};

done_testing;
