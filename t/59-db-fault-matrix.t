use strict;
use warnings;

use Test::More;
use Remit::Test;

# Every database error a mutation can meet, at every statement it sends (issue 29): no 500,
# and once the client retries with its key, exactly one effect.
#
# The pool runs with fault_injection = 1, which honours "X-Remit-Fault: ERRNO@N" (the N-th
# statement of the request, auth's query first, fails with ERRNO, once) and "ERRNO@N/after"
# (the statement reaches the server and runs, then the connection goes: the server's session
# ends and rolls back whatever the statement did, unless it committed). For each error and
# each statement N until one the request never reaches, the test sends the mutation with the
# fault, then once more with the same key and no fault, and checks:
#   - the first answer is a 2xx (the transaction was run again) or the JSON 503 with
#     Retry-After (or, for a lock wait timeout on the key's claim, the contract's 409
#     IDEMPOTENCY_KEY_IN_PROGRESS: a twin holds the key), never anything else;
#   - the retry answers the 2xx, replayed when the first one was a 2xx;
#   - the database holds the effect exactly once: one row, one key, the audit events of one
#     run (and for an approval one decision and one ledger entry).
# The table of what the first attempt got is printed at the end (note).

my $s = Remit::Test->stack(start => 0);
$s->conf_set(workers => 2, fault_injection => 1, tx_retries => 5);
$s->start;
my $root = $s->dbh;
my $o = $s->new_org;
my $creator = $s->new_user($o->{token}, roles => ['CREATOR']);
my $approver = $s->new_user($o->{token}, roles => ['APPROVER']);

# The connection is lost (before the server got the statement, or after it ran it), the node
# is not ready, the server refuses (read-only, no connection left, access denied after a
# restart, COMMIT failed, query killed), or contention (deadlock, lock wait timeout, the
# AUTO-INC lock's wait failing: 1467).
my @LOST = (2006, 2013, 2055, 1927, 1047);
my @FAULTS = ((map { [$_, 0] } @LOST, 1213, 1205, 1467, 1290, 1040, 1045, 1180, 1317, 1020),
    map { [$_, 1] } @LOST);

sub one { scalar $root->selectrow_array(@_) }

sub log_size { -s $s->log_path // 0 }

# True when the pool's log shows an injected fault after byte $from.
sub fired {
    my ($from) = @_;
    open my $fh, '<', $s->log_path or return 0;
    seek $fh, $from, 0;
    local $/;
    my $text = <$fh> // '';
    return $text =~ /"msg":"fault injected"/ ? 1 : 0;
}

my %BODY = (amount => '3.25', currency => 'EUR', beneficiaryAccount => 'DE89 3704 0044 0532 0130 00');

# A fresh batch to add requests to (each case adds one).
my $draft = $s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => 1,
    json => { name => 'fault matrix: adds' })->{json}{data}{id};

# A request ready to be approved: submitted batches of 25, made as needed.
my @ready;
sub ready_request {
    unless (@ready) {
        my $b = $s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => 1,
            json => { name => 'fault matrix: approvals' })->{json}{data}{id};
        for (1 .. 25) {
            my $r = $s->req(POST => "/api/v1/batches/$b/requests", token => $creator->{token},
                idem => 1, json => { %BODY, beneficiaryName => "to approve $_" });
            die "add: $r->{status} $r->{body}" unless $r->{status} == 201;
            push @ready, $r->{json}{data}{id};
        }
        my $r = $s->req(POST => "/api/v1/batches/$b/submit", token => $creator->{token}, idem => 1);
        die "submit: $r->{status} $r->{body}" unless $r->{status} == 200;
    }
    return shift @ready;
}

# The two mutations: what to send, and how many times its effect is in the database.
my %MUTATION = (
    add => {
        ok => 201,
        send => sub {
            my ($key, $tag, $fault) = @_;
            return $s->req(POST => "/api/v1/batches/$draft/requests", token => $creator->{token},
                idem => $key, json => { %BODY, beneficiaryName => $tag },
                headers => { 'X-Remit-Fault' => $fault });
        },
        effects => sub {
            my ($key, $tag) = @_;
            return (one('SELECT COUNT(*) FROM payment_requests WHERE beneficiary_name = ?',
                undef, $tag));
        },
        make => sub { "fault $_[0]" },
    },
    approve => {
        ok => 200,
        send => sub {
            my ($key, $id, $fault) = @_;
            return $s->req(POST => "/api/v1/requests/$id/approve", token => $approver->{token},
                idem => $key, json => {}, headers => { 'X-Remit-Fault' => $fault });
        },
        effects => sub {
            my ($key, $id) = @_;
            return (one('SELECT COUNT(*) FROM decisions WHERE request_id = ?', undef, $id),
                one(q{SELECT COUNT(*) FROM ledger_entries WHERE request_id = ? AND type = 'OBLIGATION'},
                    undef, $id),
                one(q{SELECT COUNT(*) FROM payment_requests WHERE id = ? AND status = 'APPROVED'},
                    undef, $id));
        },
        make => sub { ready_request() },
    },
);

# How many audit events one run of each mutation writes under its key (no fault).
my %EVENTS;
for my $m (sort keys %MUTATION) {
    my $key = Remit::Test::random_key();
    my $r = $MUTATION{$m}{send}->($key, $MUTATION{$m}{make}->("baseline $m"), undef);
    is $r->{status}, $MUTATION{$m}{ok}, "$m without a fault answers $MUTATION{$m}{ok}";
    $EVENTS{$m} = one('SELECT COUNT(*) FROM audit_events WHERE idempotency_key = ?', undef, $key);
    ok $EVENTS{$m} >= 1, "$m writes $EVENTS{$m} audit event(s) under its key";
}

my %TABLE;    # "mutation errno mode" => [first status per statement]
my $seq = 0;

# One case: the mutation with a fault at statement $n. Returns false once the request sent
# fewer than $n statements (the fault never fired).
sub one_case {
    my ($m, $err, $after, $n) = @_;
    my $M = $MUTATION{$m};
    my $fault = "$err\@$n" . ($after ? '/after' : '');
    my $key = Remit::Test::random_key();
    my $obj = $M->{make}->("$fault #" . ++$seq);
    my $from = log_size();
    my $r1 = $M->{send}->($key, $obj, $fault);
    my $hit = fired($from);
    my $r2 = $M->{send}->($key, $obj, undef);
    my $name = "$m, $fault";
    my $first = $r1->{status};
    push @{ $TABLE{"$m $err" . ($after ? ' after' : '')} }, "$n:$first" if $hit;
    my @bad;
    my $code = $r1->{json}{error}{code} // '';
    # A lock wait timeout on the key's claim is a twin holding the key, as far as anyone can
    # tell: the contract's 409 IDEMPOTENCY_KEY_IN_PROGRESS, nothing done.
    push @bad, "first answer $first: $r1->{body}"
        unless $first == $M->{ok} || ($first == 503 && defined $r1->{headers}{'retry-after'}
            && $code eq 'SERVICE_UNAVAILABLE')
            || ($err == 1205 && $first == 409 && $code eq 'IDEMPOTENCY_KEY_IN_PROGRESS');
    push @bad, "retry answered $r2->{status}: $r2->{body}" unless $r2->{status} == $M->{ok};
    push @bad, 'retry of a 2xx not replayed'
        if $first == $M->{ok} && ($r2->{headers}{'idempotent-replayed'} // '') ne 'true';
    my @effects = $M->{effects}->($key, $obj);
    push @bad, "effects (@effects), want one each" if grep { $_ != 1 } @effects;
    my $keys = one('SELECT COUNT(*) FROM idempotency_keys WHERE idem_key = ?', undef, $key);
    push @bad, "$keys key rows" unless $keys == 1;
    my $events = one('SELECT COUNT(*) FROM audit_events WHERE idempotency_key = ?', undef, $key);
    push @bad, "$events audit events, want $EVENTS{$m}" unless $events == $EVENTS{$m};
    ok !@bad, "$name: " . ($hit ? "first $first, retry $r2->{status}, one effect" : 'not reached')
        or diag join "\n", @bad;
    return $hit;
}

for my $m (sort keys %MUTATION) {
    for my $f (@FAULTS) {
        my ($err, $after) = @$f;
        subtest "$m: $err" . ($after ? ' after the statement ran' : '') . ' at each statement' => sub {
            my $n = 1;
            $n++ while one_case($m, $err, $after, $n) && $n < 40;
            ok $n > 3 && $n < 40, "the fault met each of the " . ($n - 1) . ' statements';
        };
    }
}

is one(q{SELECT COUNT(*) FROM payment_requests WHERE batch_id = ?}, undef, $draft),
    one(q{SELECT COUNT(DISTINCT beneficiary_name) FROM payment_requests WHERE batch_id = ?},
        undef, $draft), 'no add ran twice';
my $v = $s->remit('verify-audit');
is $v->{exit}, 0, 'verify-audit: the chain is intact after every fault' or diag $v->{stderr};

note 'first answer per statement (statement:status), then the retry with the key answered '
    . "the 2xx with one effect:\n"
    . join "\n", map { sprintf '%-22s %s', $_, join ' ', @{ $TABLE{$_} } } sort keys %TABLE;

done_testing;
