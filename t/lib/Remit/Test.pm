package Remit::Test;

# Test helpers on top of Remit::Stack: one stack per test file, an HTTP client that speaks
# the API's conventions, assertions for the error envelope, and organisations and users to
# test with. When the file finishes (done_testing, or the END of a file that died) every
# stack is stopped and its server log checked: a sanitizer report or a worker killed by a
# signal the test did not declare fails the file.
#
# Every response a client helper here receives is checked against doc/openapi.yaml
# (Remit::OpenAPI): a response the document does not describe — a status not listed for the
# route and method, a body its schema refuses, a required header missing — is a failing test
# in the file that got it. Responses of forked clients are checked when the parent collects
# them. REMIT_OPENAPI_TALLY=FILE appends "<file> <checked> <undescribed>" per test file
# (script/test sums it); REMIT_OPENAPI=0 turns the check off.
#
#   use Test::More;
#   use Remit::Test;
#   my $s = Remit::Test->stack;
#   my $org = $s->new_org;
#   my $res = $s->req(POST => '/api/v1/batches', token => $org->{token}, idem => 1,
#                     json => { name => 'May payroll' });
#   is $res->{status}, 201;

use strict;
use warnings;

use parent 'Remit::Stack';

use Carp qw(croak);
use Exporter 'import';
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use Remit::OpenAPI;
use Storable qw(nstore retrieve);
use Test::More ();
use Test2::API qw(test2_add_callback_testing_done test2_stack);
use Time::HiRes qw(time);

our @EXPORT = qw(is_error is_twins parse_http_response wait_for);
our @EXPORT_OK = qw(tag count_delta sql_error slurp);

my $JSON = JSON::PP->new->utf8->canonical;
my @STACKS;    # every stack this file made, checked when it finishes
my $SEQ = 0;
my $OPENAPI;           # the loaded document, on first use
my %CHECKED = (responses => 0, undescribed => 0);

# A started stack (pass start => 0 to call conf_set first and start it yourself). Other
# options go to Remit::Stack->new.
sub stack {
    my ($class, %o) = @_;
    my $start = exists $o{start} ? delete $o{start} : 1;
    my $self = $class->new(%o);
    # Tests fire a few concurrent clients at a pool of four: no shedding unless asked for.
    # Neither by count nor by wait: two suites share two cores, and a request may wait
    # more than a second for a worker there without the pool being past its capacity
    # (t/58-load-shed.t sets its own bounds).
    $self->{in_flight} //= $self->in_flight < 32 ? 32 : $self->in_flight;
    $self->{conf}{shed_after_ms} //= 10000;
    push @STACKS, $self;
    $self->start if $start;
    return $self;
}

# A started stack whose workers a test SIGKILLs in the middle of a request (t/42, t/81,
# t/84); pools => 2 for two app hosts. Four workers a pool; idem_wait, every lock wait's
# bound, long enough (15 s) that nothing times out while the test holds a lock; no purge by
# the pool, so the only lock waits are the test's; SIGKILL of a worker declared.
sub crash_stack {
    my ($class, %o) = @_;
    my $self = $class->stack(%o, start => 0);
    $self->conf_set(workers => 4, idem_wait => 15, purge_interval => 0);
    $self->start;
    $self->expect_worker_kill(9);
    return $self;
}

test2_add_callback_testing_done(\&_finish);

sub _finish {
    _tally();
    for my $s (@STACKS) {
        next if $s->{owner} != $$ || $s->{checked}++;
        my @found = $s->stop;
        Test::More::diag("state of the stack kept in " . $s->state_dir) if $s->{keep};
        # A fixed plan leaves no room for one more passing test.
        my $plan = test2_stack()->top->plan // '';
        next if $plan eq 'SKIP' || ($plan =~ /^\d+$/ && !@found);
        Test::More::ok(!@found, 'no crash or sanitizer report in server log')
            or Test::More::diag(join "\n", @found);
    }
}

# ---- HTTP ------------------------------------------------------------------------------

# $s->req($method, $path, token => T, json => DATA | raw => BYTES, headers => {...},
#         idem => KEY | 1)
# Returns {status, reason, headers (lower-case names), body (bytes), json (or undef)}.
# A body (json or raw) gets Content-Type: application/json unless headers say otherwise;
# a header given as undef is not sent. idem => 1 sends a fresh random Idempotency-Key.
sub req {
    my ($self, $method, $path, %o) = @_;
    my %h;
    $h{Authorization} = "Bearer $o{token}" if defined $o{token};
    $h{'Idempotency-Key'} = $o{idem} eq '1' ? random_key() : $o{idem} if defined $o{idem};

    my $body;
    if (exists $o{json}) {
        $body = $JSON->encode($o{json});
    } elsif (exists $o{raw}) {
        $body = $o{raw};
        croak 'raw body must be bytes' if utf8::is_utf8($body) && !utf8::downgrade($body, 1);
    }
    $h{'Content-Type'} = 'application/json' if defined $body;

    my %given = %{ $o{headers} // {} };
    for my $name (keys %given) {
        delete $h{$_} for grep { lc eq lc $name } keys %h;
        $h{$name} = $given{$name} if defined $given{$name};
    }

    my $http = HTTP::Tiny->new(keep_alive => 0, timeout => 60, max_redirect => 0,
        agent => 'remit-tests');
    my $res = $http->request($method, $self->url . $path, {
        headers => \%h,
        (defined $body && length $body ? (content => $body) : ()),
    });
    my $r = _response($res->{status}, $res->{reason}, $res->{headers}, $res->{content});
    # 599 is HTTP::Tiny's own: no response came back to check.
    $self->openapi_check($method, $path, $r) if $$ == $self->{owner} && $r->{status} != 599;
    return $r;
}

# One failing test when doc/openapi.yaml does not describe the response $res got for
# $method $target (nothing when it does); counts it. For helpers that talk to the stack
# in their own way.
sub openapi_check {
    my ($self, $method, $target, $res) = @_;
    return if ($ENV{REMIT_OPENAPI} // 1) eq '0';
    $OPENAPI //= Remit::OpenAPI->load;
    $CHECKED{responses}++;
    my ($what, @why) = $OPENAPI->check($method, $target, $res);
    return 1 unless defined $what;
    $CHECKED{undescribed}++;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::ok(0, "doc/openapi.yaml describes $what");
    Test::More::diag(join "\n", "$method $target", @why,
        'body: ' . substr($res->{body} // '', 0, 2000));
    return 0;
}

sub _tally {
    return if $CHECKED{reported}++ || !$ENV{REMIT_OPENAPI_TALLY};
    return unless grep { $_->{owner} == $$ } @STACKS;
    open my $fh, '>>', $ENV{REMIT_OPENAPI_TALLY} or return;
    # One short line in append mode: parallel test files never interleave.
    syswrite $fh, sprintf "%s %d %d\n", $0, $CHECKED{responses}, $CHECKED{undescribed};
    close $fh;
}

# Sends $bytes as they are on a new connection and returns the raw response (everything
# until the server closes, at most $timeout seconds). For requests HTTP::Tiny refuses to
# send; say "Connection: close" in them, or wait for the timeout.
sub raw_http {
    my ($self, $bytes, %o) = @_;
    my $timeout = $o{timeout} // 10;
    my ($method, $target) = $bytes =~ m{^([A-Z]+) (\S+) HTTP/1\.[01]\r?\n};
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->port,
        Proto => 'tcp', Timeout => 5) or croak "connect to nginx: $!";
    $sock->autoflush(1);
    while (length $bytes) {
        my $n = syswrite $sock, $bytes;
        last unless defined $n;    # the server closed: read what it said
        substr $bytes, 0, $n, '';
    }
    my $sel = IO::Select->new($sock);
    my $deadline = time + $timeout;
    my $out = '';
    while (time < $deadline && $sel->can_read($deadline - time)) {
        my $n = sysread $sock, $out, 65536, length $out;
        last unless $n;
    }
    close $sock;
    # A well-formed request line names a route: check what came back. Requests without one
    # are nginx's alone to refuse (its 400), and checked as such.
    my $res = parse_http_response($out);
    $self->openapi_check($method // 'GET', $target // '/', $res)
        if $$ == $self->{owner} && $res->{status} != 599;
    return $out;
}

# Sends one request from a forked client and returns at once; the returned code ref waits
# for the response and returns it (as req does). For a request that blocks inside the pool
# while the test does something else.
sub req_bg {
    my ($self, $method, $path, %o) = @_;
    my $file = sprintf '%s/bg-%d-%d', $self->state_dir, $$, ++$SEQ;
    my $pid = $self->_req_child($file, undef, $method, $path, %o);
    return sub { waitpid $pid, 0; return $self->_child_response($file, $method, $path) };
}

# Sends one request from $n forked clients at the same instant: each gets ready, then blocks
# on a pipe until the parent closes it. Returns the $n responses in client order. idem => 1
# would give each client its own key: pass the shared one.
sub req_together {
    my ($self, $n, $method, $path, %o) = @_;
    pipe my $go_r, my $go_w or croak "pipe: $!";
    pipe my $ready_r, my $ready_w or croak "pipe: $!";
    my $base = sprintf '%s/together-%d-%d', $self->state_dir, $$, ++$SEQ;
    my $wait = sub {
        close $go_w;
        close $ready_r;
        syswrite $ready_w, '.';
        sysread $go_r, my $eof, 1;    # returns when the parent closes its end
    };
    my @pids = map { $self->_req_child("$base-$_", $wait, $method, $path, %o) } 1 .. $n;
    close $go_r;
    close $ready_w;
    my $ready = 0;
    while ($ready < $n) {
        my $got = sysread $ready_r, my $buf, $n or last;
        $ready += $got;
    }
    close $go_w;
    waitpid $_, 0 for @pids;
    return [ map { $self->_child_response("$base-$_", $method, $path) } 1 .. $n ];
}

# Forks a client that runs $before (if any), sends the request and stores the response in
# $file.
sub _req_child {
    my ($self, $file, $before, @req) = @_;
    my $pid = fork // croak "fork: $!";
    return $pid if $pid;
    $before->() if $before;
    my $res = eval { $self->req(@req) }
        // { status => 599, reason => "client died: $@", headers => {}, body => '' };
    nstore($res, $file);
    POSIX::_exit(0);    # no END blocks, no Test2 hooks in the clients
}

sub _child_response {
    my ($self, $file, $method, $path) = @_;
    my $res = -e $file ? retrieve($file)
        : { status => 599, reason => 'the client stored no response', headers => {}, body => '' };
    unlink $file;
    $self->openapi_check($method, $path, $res) if $res->{status} != 599;
    return $res;
}

# The raw bytes of one HTTP response → the same hash req returns (chunked bodies joined).
sub parse_http_response {
    my ($raw) = @_;
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my ($status_line, @lines) = split /\r\n/, $head // '';
    my ($status, $reason) = ($status_line // '') =~ m{^HTTP/\d\.\d (\d{3}) ?(.*)$}
        or return _response(599, 'no HTTP response', {}, $raw);
    my %headers;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
        $k = lc $k;
        $headers{$k} = exists $headers{$k}
            ? [ ref $headers{$k} ? @{ $headers{$k} } : $headers{$k}, $v ] : $v;
    }
    $body //= '';
    if (($headers{'transfer-encoding'} // '') =~ /chunked/i) {
        my $joined = '';
        while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $len = hex $1 or last;
            $joined .= substr $body, 0, $len, '';
            $body =~ s/^\r\n//;
        }
        $body = $joined;
    }
    return _response($status, $reason, \%headers, $body);
}

sub _response {
    my ($status, $reason, $headers, $body) = @_;
    $body //= '';
    my $json = eval { $JSON->decode($body) };
    return { status => $status, reason => $reason, headers => $headers, body => $body,
        json => $json };
}

# Polls $cond every $interval seconds (0.15) until it returns true or $timeout seconds have
# passed; returns its last value. Not a test itself (wait_until is). Not faster by default:
# MariaDB refreshes information_schema.INNODB_TRX only when it was not read for 100 ms, so a
# faster poll of lock waits never sees one.
sub wait_for {
    my ($timeout, $cond, $interval) = @_;
    my $deadline = time + $timeout;
    while (1) {
        my $v = $cond->();
        return $v if $v || time >= $deadline;
        Time::HiRes::sleep($interval // 0.15);
    }
}

# A file's contents; '' when it cannot be read (not written yet).
sub slurp { open my $fh, '<', $_[0] or return ''; local $/; scalar <$fh> }

# A random Idempotency-Key (from the kernel, so forked clients never repeat each other).
sub random_key {
    open my $fh, '<:raw', '/dev/urandom' or croak "open /dev/urandom: $!";
    read($fh, my $bytes, 16) == 16 or croak "read /dev/urandom: $!";
    return 'k-' . unpack 'H*', $bytes;
}

# ---- the database -----------------------------------------------------------------------

# The tables an API write leaves rows in, and their row counts now: {table => rows}. With
# count_delta, what a request (or sixteen twins of it) wrote.
our @WRITE_TABLES = qw(users batches payment_requests decisions ledger_entries audit_events
    idempotency_keys);
sub row_counts {
    my ($self) = @_;
    my $dbh = $self->dbh;
    return { map { $_ => scalar $dbh->selectrow_array("SELECT COUNT(*) FROM $_") } @WRITE_TABLES };
}

# The server's error number for $sql run on $dbh (e.g. 1142 for a privilege refused, 1644 for
# a trigger's SIGNAL): 0 when it succeeded.
sub sql_error {
    my ($dbh, $sql, @bind) = @_;
    return eval { $dbh->do($sql, undef, @bind); 1 } ? 0 : $dbh->err;
}

# {table => rows in $after - rows in $before}, of two row_counts.
sub count_delta {
    my ($before, $after) = @_;
    return { map { $_ => $after->{$_} - $before->{$_} } keys %$before };
}

# The pids of the workers holding an accepted FastCGI connection: one socket more than the
# listening socket and the database connection every worker of their pool has.
sub busy_workers {
    my ($self) = @_;
    my %sockets;
    for my $pid ($self->worker_pids) {
        opendir my $d, "/proc/$pid/fd" or next;
        $sockets{$pid} = grep { (readlink("/proc/$pid/fd/$_") // '') =~ /^socket:/ } readdir $d;
    }
    my %idle;    # the fewest sockets a worker of the same pool has
    for my $n (1 .. $self->pools) {
        my @mine = grep { exists $sockets{$_} } $self->worker_pids($n);
        $idle{$_} = (sort { $a <=> $b } map { $sockets{$_} } @mine)[0] // 0 for @mine;
    }
    return grep { $sockets{$_} > $idle{$_} } keys %sockets;
}

# Five tests: the request $pending (of req_bg) waits for a lock the test's transaction $h
# holds ($o{waits} names the wait), having written at least $o{rows} rows ($o{written} says
# which); one worker serves it; SIGKILLed, its client gets 502; then $h is rolled back and
# disconnected, and the killed attempt is rolled back by the database.
sub kill_lock_waiter {
    my ($self, $h, $pending, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $dbh = $self->dbh;
    $self->wait_until($o{waits}, sub { $self->lock_waits == 1 });
    my $rows = $dbh->selectrow_array(q{SELECT trx_rows_modified FROM information_schema.INNODB_TRX
        WHERE trx_state = 'LOCK WAIT'});
    Test::More::cmp_ok($rows // 0, '>=', $o{rows},
        "it has written already (@{[ $rows // 0 ]} rows: $o{written})");
    my @busy = $self->busy_workers;
    Test::More::is(scalar @busy, 1, 'one worker is serving it');
    kill 'KILL', @busy;
    is_error($pending->(), 502, 'BAD_GATEWAY', 'its client gets 502');
    $h->rollback;
    $h->disconnect;
    $self->wait_until('the killed attempt is rolled back', sub {
        !$dbh->selectrow_array('SELECT COUNT(*) FROM information_schema.INNODB_TRX') });
}

# How many transactions wait for a row lock now. MariaDB refreshes INNODB_TRX only when it
# has not been read for 100 ms: poll it more slowly than that (wait_until does).
sub lock_waits {
    my ($self) = @_;
    return scalar $self->dbh->selectrow_array(
        q{SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'});
}

# One test: polls $cond every 150 ms until it is true, at most $timeout seconds (10).
sub wait_until {
    my ($self, $what, $cond, $timeout) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $deadline = time + ($timeout // 10);
    until ($cond->()) {
        return Test::More::ok(0, "$what (timed out)") if time > $deadline;
        Time::HiRes::sleep(0.15);
    }
    return Test::More::ok(1, $what);
}

# ---- assertions ------------------------------------------------------------------------

# One test: the status, a JSON content type, and exactly the envelope
# {"error":{"code":$code,"message":"...","details":{...}}}.
sub is_error {
    my ($res, $status, $code, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @why;
    push @why, "status is $res->{status}, expected $status" if $res->{status} != $status;
    push @why, 'Content-Type is ' . ($res->{headers}{'content-type'} // 'missing')
        unless ($res->{headers}{'content-type'} // '') =~ m{^application/json\b}i;
    my $j = $res->{json};
    my $e = ref $j eq 'HASH' ? $j->{error} : undef;
    if (!defined $j) {
        push @why, 'body is not JSON';
    } elsif (ref $j ne 'HASH' || join(',', sort keys %$j) ne 'error' || ref $e ne 'HASH') {
        push @why, 'body is not {"error":{...}}';
    } else {
        my @keys = sort keys %$e;
        push @why, "error has keys (@keys), expected (code details message)"
            if "@keys" ne 'code details message';
        push @why, 'error.code is ' . _show($e->{code}) . ", expected $code"
            if ($e->{code} // '') ne $code || ref $e->{code};
        push @why, 'error.message is not a non-empty string'
            if ref $e->{message} || !length($e->{message} // '');
        push @why, 'error.details is not an object' if ref $e->{details} ne 'HASH';
    }
    my $ok = Test::More::ok(!@why, $name // "$status $code");
    Test::More::diag(join("\n", @why, "body: $res->{body}")) unless $ok;
    return $ok;
}

# One test: responses to one request sent several times with one Idempotency-Key are each
# either the success ($status, byte-identical bodies and ETags, exactly one of them not
# marked Idempotent-Replayed: true) or 409 IDEMPOTENCY_KEY_IN_PROGRESS with Retry-After: 1.
# Returns the success's decoded body (undef when there is none).
sub is_twins {
    my ($responses, $status, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my (@why, @ok, $first);
    for my $i (0 .. $#$responses) {
        my $r = $responses->[$i];
        if ($r->{status} == $status) {
            push @ok, $r;
            $first //= $r;
            push @why, "response $i: body differs from response 0 of the successes"
                if $r->{body} ne $first->{body};
            push @why, "response $i: ETag differs"
                if ($r->{headers}{etag} // '') ne ($first->{headers}{etag} // '');
        } elsif ($r->{status} == 409) {
            my $code = ref $r->{json} eq 'HASH' ? $r->{json}{error}{code} // '' : '';
            push @why, "response $i: 409 $code, expected IDEMPOTENCY_KEY_IN_PROGRESS"
                if $code ne 'IDEMPOTENCY_KEY_IN_PROGRESS';
            push @why, "response $i: 409 without Retry-After: 1"
                if ($r->{headers}{'retry-after'} // '') ne '1';
        } else {
            push @why, "response $i: status $r->{status}: $r->{body}";
        }
    }
    my @fresh = grep { ($_->{headers}{'idempotent-replayed'} // '') ne 'true' } @ok;
    push @why, 'no success' unless @ok;
    push @why, scalar(@fresh) . ' successes not marked Idempotent-Replayed, expected 1'
        if @ok && @fresh != 1;
    my %tally;
    $tally{ $_->{status} }++ for @$responses;
    my $ok = Test::More::ok(!@why, ($name // "twins: one $status, the rest replays or 409")
        . ' (' . join(', ', map { "$tally{$_}× $_" } sort keys %tally) . ')');
    Test::More::diag(join "\n", @why) unless $ok;
    return $first && $first->{json};
}

sub _show { defined $_[0] ? (ref $_[0] ? 'not a string' : "'$_[0]'") : 'missing' }

# ---- organisations and users -----------------------------------------------------------

# A string no other call (in this process or another) returns: for names, emails and keys.
sub tag { sprintf '%d-%d-%s', $$, ++$SEQ, substr random_key(), 2, 10 }

# A new organisation and its first ADMIN: {orgId, userId, token}.
sub new_org {
    my ($self, %o) = @_;
    my $tag = tag();
    return $self->bootstrap(
        org   => $o{org} // "Org $tag",
        email => $o{email} // "admin-$tag\@example.test",
        (defined $o{name} ? (name => $o{name}) : ()),
    );
}

# A user of the admin's organisation with a token: {id, token, email, name, roles}.
sub new_user {
    my ($self, $admin_token, %o) = @_;
    my $tag = tag();
    my %user = (
        email => $o{email} // "user-$tag\@example.test",
        name  => $o{name} // "User $tag",
        roles => $o{roles} // ['VIEWER'],
    );
    my $res = $self->req(POST => '/api/v1/users', token => $admin_token, idem => 1,
        json => \%user);
    croak "POST /api/v1/users: $res->{status} $res->{body}" unless $res->{status} == 201;
    my $id = $res->{json}{data}{id};
    my $tok = $self->req(POST => "/api/v1/users/$id/tokens", token => $admin_token,
        json => {});
    croak "POST /api/v1/users/$id/tokens: $tok->{status} $tok->{body}"
        unless $tok->{status} == 201;
    return { %user, id => $id, token => $tok->{json}{data}{token} };
}

1;
