package Remit::BadInput;

# What the hostile-input catalogue of t/50-bad-input-*.t shares: one stack, its organisation
# and fixtures (a batch and a request in every state the routes need), the mutation routes
# with their fields, body construction, raw HTTP, the snapshot of every business table, the
# catalogue itself (case, malformed, invalid, spread) and run_catalogue, which sends every
# case and checks its status, error code, that nothing changed, that no answer is a 5xx and
# that no worker died. Each t/50-bad-input-*.t adds the cases of one concern, then runs them.

# Hostile input (doc/openapi.yaml#Conventions, #Idempotency, #paths): a data-driven catalogue, in the spirit of Test::Nginx's
# blocks. Each case is one HTTP request to one of the mutation routes of src/router.c (users,
# tokens, approval-rules PUT, batches, add-request, submit, cancel, PATCH request, approve,
# reject, mark-paid; DELETE request for If-Match) with the status and error code doc/openapi.yaml#Conventions says
# it must get, by its order of precedence. For every case the database must stay as it was
# (row counts of every business table, and the version sums of batches and requests, which
# move on any UPDATE), no answer may be a 5xx, and no worker may die. Most cases are
# generated: every field of every route gets every wrong type, length and format; every
# malformed body goes to the POST, PUT and PATCH routes and, in turn, to one of the others.
# The figures (cases, statuses, 5xx, worker deaths, row changes) are printed at the end. A
# positive section then checks unusual input that must succeed, and that SQL and header
# injection strings are stored byte for byte.

use strict;
use warnings;
use utf8;

use Exporter 'import';
use Test::More;
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes qw(time);
use Remit::Test;
use Remit::Fixture;

our @EXPORT = qw(
    $F $IBAN $JSON $SNAP_SQL $SPLICE $T $USED_KEY $admin
    $approved_batch $approved_req $approver $approver2 $cancelled_batch $creator $draft_batch $draft_req
    $empty_batch $gbp_batch $gbp_req $maker $org $own_batch $own_req $pending_batch
    $pending_req $revoked $s $sub_batch $sub_req $treasurer $turn $viewer
    %REQ %ROUTE @CASES @FULL @INJECT @ROUTES @SNAP @TURN
    act body_with case complete free_text_ok in_key in_probe invalid
    label malformed must path_of post raw_request raw_send snap_diff
    snapshot spread template valid_body version_of workers run_catalogue stored
);

binmode(Test::More->builder->$_, ':encoding(UTF-8)') for qw(output failure_output todo_output);

our $s = Remit::Test->stack;
our $JSON = JSON::PP->new->utf8->canonical;
our $T = JSON::PP::true;
our $F = JSON::PP::false;

# ---- the organisation and its fixtures -------------------------------------------------

our $org = $s->new_org;
our $admin = $org->{token};
our $creator = $s->new_user($admin, roles => ['CREATOR']);
our $approver = $s->new_user($admin, roles => ['APPROVER']);
our $approver2 = $s->new_user($admin, roles => ['APPROVER']);
our $treasurer = $s->new_user($admin, roles => ['TREASURER']);
our $viewer = $s->new_user($admin, roles => ['VIEWER']);
our $maker = $s->new_user($admin, roles => [qw(CREATOR APPROVER)]);

our $IBAN = 'GB82WEST12345698765432';
our %REQ = (amount => '10.00', currency => 'USD', beneficiaryName => 'Ann',
    beneficiaryAccount => $IBAN, purpose => 'rent');

sub must {
    my ($r, $status, $what) = @_;
    die "$what: $r->{status} $r->{body}\n" unless $r->{status} == $status;
    return $r->{json}{data};
}

sub post {
    my ($who, $path, $json) = @_;
    return $s->req(POST => $path, token => $who->{token} // $who, idem => 1,
        (defined $json ? (json => $json) : ()));
}

sub act {
    my ($who, $id, $what, $json) = @_;
    return must(post($who, "/api/v1/requests/$id/$what", $json // {}), 200, $what);
}

# Rules applied at submit: GBP needs two approvals (for ALREADY_DECIDED below).
must($s->req(PUT => '/api/v1/approval-rules', token => $admin,
    json => { rules => [ { currency => 'GBP', minAmount => '0', approvals => 2 } ] }), 200, 'rules');

our $draft_batch = batch($s, $creator, name => 'Fixture')->{id};
our $draft_req = request($s, $creator, $draft_batch, %REQ)->{id};
our $empty_batch = batch($s, $creator, name => 'Fixture')->{id};
our $pending_batch = batch($s, $creator, name => 'Fixture')->{id};
our $pending_req = request($s, $creator, $pending_batch, %REQ)->{id};
submit($s, $creator, $pending_batch);
our $approved_batch = batch($s, $creator, name => 'Fixture')->{id};
our $approved_req = request($s, $creator, $approved_batch, %REQ)->{id};
submit($s, $creator, $approved_batch);
# A key that has been used once, successfully, by the creator and by the approver.
our $USED_KEY = 'used-' . Remit::Test::random_key();
must($s->req(POST => "/api/v1/requests/$approved_req/approve", token => $approver->{token},
    idem => $USED_KEY, json => {}), 200, 'approve');
must($s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => $USED_KEY,
    json => { name => 'Keyed' }), 201, 'keyed batch');
our $cancelled_batch = batch($s, $creator, name => 'Fixture')->{id};
must(post($creator, "/api/v1/batches/$cancelled_batch/cancel"), 200, 'cancel');
our $gbp_batch = batch($s, $creator, name => 'Fixture')->{id};
our $gbp_req = request($s, $creator, $gbp_batch, %REQ, currency => 'GBP')->{id};
submit($s, $creator, $gbp_batch);
act($approver, $gbp_req, 'approve');    # one of two: still PENDING_APPROVAL
our $own_batch = batch($s, $maker, name => 'Fixture')->{id};       # made and submitted by maker (CREATOR + APPROVER)
our $own_req = request($s, $maker, $own_batch, %REQ)->{id};
submit($s, $maker, $own_batch);
our $sub_batch = batch($s, $creator, name => 'Fixture')->{id};             # made by creator, submitted by maker
our $sub_req = request($s, $creator, $sub_batch, %REQ)->{id};
submit($s, $maker, $sub_batch);
# A revoked token of an ADMIN.
our $revoked = $s->new_user($admin, roles => ['ADMIN']);
{
    my ($tid) = $s->dbh->selectrow_array(
        'SELECT id FROM tokens WHERE user_id = ? ORDER BY id DESC LIMIT 1', undef, $revoked->{id});
    die 'revoke' unless $s->req(DELETE => "/api/v1/tokens/$tid", token => $admin)->{status} == 204;
}

sub version_of {
    my ($kind, $id) = @_;
    my $r = $s->req(GET => "/api/v1/$kind/$id", token => $viewer->{token});
    return $r->{json}{data}{version};
}

# ---- the routes ------------------------------------------------------------------------

# Field types: text (min, max), email, roles, rules, money, currency, account. `required`
# as in doc/openapi.yaml#paths (PATCH: nothing is). `probe` is the string field the byte-level cases write
# into, and `probe_path` how an error in it is named.
our @ROUTES = (
    { name => 'users', method => 'POST', path => '/api/v1/users', who => $admin, idem => 1,
      base => { email => 'base@example.test', name => 'Base', roles => ['VIEWER'] },
      fields => [ [ email => 'email' ], [ name => text => 1, 140 ], [ roles => 'roles' ] ],
      required => [qw(email name roles)], probe => 'name' },
    { name => 'tokens', method => 'POST', path => "/api/v1/users/$viewer->{id}/tokens",
      who => $admin, idem => 0, empty_ok => 1,
      base => { name => 'laptop' }, fields => [ [ name => text => 0, 140 ] ],
      required => [], probe => 'name' },
    { name => 'rules', method => 'PUT', path => '/api/v1/approval-rules', who => $admin, idem => 0,
      base => { rules => [ { currency => 'SEK', minAmount => '100.00', approvals => 2 } ] },
      fields => [ [ rules => 'rules' ] ], required => ['rules'], probe => 'currency',
      probe_path => 'rules[0].currency' },
    { name => 'batches', method => 'POST', path => '/api/v1/batches', who => $creator, idem => 1,
      base => { name => 'B', description => 'D' },
      fields => [ [ name => text => 1, 140 ], [ description => text => 0, 1000 ] ],
      required => ['name'], probe => 'name' },
    { name => 'add-request', method => 'POST', path => "/api/v1/batches/$draft_batch/requests",
      who => $creator, idem => 1, base => {%REQ}, version => [ batches => $draft_batch ],
      fields => [ [ amount => 'money' ], [ currency => 'currency' ],
          [ beneficiaryName => text => 1, 140 ], [ beneficiaryAccount => 'account' ],
          [ purpose => text => 0, 140 ] ],
      required => [qw(amount currency beneficiaryName beneficiaryAccount)],
      probe => 'beneficiaryName' },
    { name => 'submit', method => 'POST', path => "/api/v1/batches/$draft_batch/submit",
      who => $creator, idem => 1, empty_ok => 1, base => {}, tmpl => { note => 'x' }, fields => [],
      required => [], probe => 'note', version => [ batches => $draft_batch ] },
    { name => 'cancel', method => 'POST', path => "/api/v1/batches/$draft_batch/cancel",
      who => $creator, idem => 1, empty_ok => 1, base => {}, tmpl => { note => 'x' }, fields => [],
      required => [], probe => 'note', version => [ batches => $draft_batch ] },
    { name => 'patch', method => 'PATCH', path => "/api/v1/requests/$draft_req", who => $creator,
      idem => 0, base => { %REQ, beneficiaryName => 'Bob' }, version => [ requests => $draft_req ],
      fields => [ [ amount => 'money' ], [ currency => 'currency' ],
          [ beneficiaryName => text => 1, 140 ], [ beneficiaryAccount => 'account' ],
          [ purpose => text => 0, 140 ] ],
      required => [], probe => 'beneficiaryName' },
    { name => 'approve', method => 'POST', path => "/api/v1/requests/$pending_req/approve",
      who => $approver, idem => 1, empty_ok => 1, base => { comment => 'ok' },
      version => [ requests => $pending_req ],
      fields => [ [ comment => text => 0, 500 ] ], required => [], probe => 'comment' },
    { name => 'reject', method => 'POST', path => "/api/v1/requests/$pending_req/reject",
      who => $approver, idem => 1, base => { comment => 'no' },
      version => [ requests => $pending_req ],
      fields => [ [ comment => text => 1, 500 ] ], required => ['comment'], probe => 'comment' },
    { name => 'mark-paid', method => 'POST', path => "/api/v1/requests/$approved_req/mark-paid",
      who => $treasurer, idem => 1, empty_ok => 1, base => { paymentReference => 'REF-1' },
      version => [ requests => $approved_req ],
      fields => [ [ paymentReference => text => 0, 35 ] ], required => [],
      probe => 'paymentReference' },
);
our %ROUTE = map { $_->{name} => $_ } @ROUTES;
$_->{token} = ref $_->{who} ? $_->{who}{token} : $_->{who} for @ROUTES;

# ---- body construction -----------------------------------------------------------------

# The route's base body with fields replaced. A value given as \"text" is spliced in as raw
# JSON bytes (numbers as written, invalid UTF-8, deep nesting); a key mapped to undef-ref
# (\undef) is deleted; 'rules[0].x' reaches into the first rule. Returns bytes.
our $SPLICE = 0;
sub body_with {
    my ($r, %set) = @_;
    my $b = JSON::PP->new->decode(JSON::PP->new->encode($r->{base}));    # deep copy
    my %raw;
    for my $k (sort keys %set) {
        my $v = $set{$k};
        if (ref $v eq 'SCALAR' && defined $$v) {
            my $mark = "\x{E000}splice" . ++$SPLICE . "\x{E000}";
            $raw{$mark} = $$v;
            $v = $mark;
        }
        my ($hash, $key) = ($b, $k);
        if ($k =~ /^rules\[(\d+)\]\.(.*)$/) {
            $hash = $b->{rules}[$1] //= {};
            $key = $2;
        }
        if (ref $v eq 'SCALAR') { delete $hash->{$key} } else { $hash->{$key} = $v }
    }
    my $bytes = $JSON->encode($b);
    for my $mark (keys %raw) {
        my $m = $JSON->encode([$mark]);
        $m = substr $m, 1, -1;
        my $i = index $bytes, $m;
        die "splice mark not found" if $i < 0;
        substr($bytes, $i, length $m, $raw{$mark});
    }
    return $bytes;
}

# The bytes the syntax cases cut into: the base body, or for submit and cancel (whose base is
# {}) one with an unknown field, so that no mutation of it is a valid request.
sub template { $JSON->encode($_[0]{tmpl} // $_[0]{base}) }

# A body that would succeed: the cases that send it test one check that must stop it.
sub valid_body { $JSON->encode($_[0]{base}) }

# Bytes inserted at the start of the probe field's value (inside its quotes).
sub in_probe {
    my ($r, $bytes) = @_;
    my $body = template($r);
    my $at = index $body, "\"$r->{probe}\":\"";
    die "probe $r->{probe} not found in $body" if $at < 0;
    substr($body, $at + length("\"$r->{probe}\":\""), 0, $bytes);
    return $body;
}

# Bytes inserted at the start of the first member name.
sub in_key {
    my ($r, $bytes) = @_;
    my $body = template($r);
    substr($body, 2, 0, $bytes);
    return $body;
}

# A test name in ASCII.
sub label {
    my ($t) = @_;
    $t = substr($t, 0, 110) . '...(' . length($t) . ')' if length $t > 120;
    $t =~ s/([^\x20-\x7e])/ord $1 > 255 ? sprintf '\\x{%x}', ord $1 : sprintf '\\x%02X', ord $1/ge;
    return $t;
}

# ---- raw HTTP --------------------------------------------------------------------------

# One request as bytes: method, path, Host, Connection: close, Authorization, then the given
# header lines as they are (CR, LF and all), then Content-Length (unless cl => undef or a
# value to lie with), then the body.
sub raw_request {
    my ($r, %o) = @_;
    my $body = $o{body} // '';
    my $h = "$r->{method} " . ($o{path} // $r->{path}) . " HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\nAuthorization: Bearer " . ($o{token} // $r->{token}) . "\r\n";
    $h .= "$_\r\n" for @{ $o{lines} // [] };
    my $cl = exists $o{cl} ? $o{cl} : length $body;
    $h .= "Content-Length: $cl\r\n" if defined $cl;
    return "$h\r\n$body";
}

# Sends bytes on a new connection and reads one response: until its Content-Length (or last
# chunk) is in, the server closes, or $timeout. half_close shuts our side after sending, as
# a client that sent less than it announced and gave up.
sub raw_send {
    my ($bytes, %o) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $s->port,
        Proto => 'tcp', Timeout => 5) or die "connect: $!";
    binmode $sock;
    my $off = 0;
    while ($off < length $bytes) {
        my $n = syswrite $sock, $bytes, 65536, $off;
        last unless $n;
        $off += $n;
    }
    shutdown($sock, 1) if $o{half_close};
    my $sel = IO::Select->new($sock);
    my $deadline = time + ($o{timeout} // 10);
    my $out = '';
    while (!complete($out) && time < $deadline && $sel->can_read($deadline - time)) {
        my $n = sysread $sock, $out, 65536, length $out;
        last unless $n;
    }
    close $sock;
    return $out;
}

sub complete {
    my ($out) = @_;
    my $i = index $out, "\r\n\r\n";
    return 0 if $i < 0;
    my $head = substr $out, 0, $i;
    return length($out) - $i - 4 >= $1 if $head =~ /^Content-Length:\s*(\d+)/mi;
    return $out =~ /\r\n0\r\n\r\n\z/ if $head =~ /^Transfer-Encoding:\s*chunked/mi;
    return 0;
}

# ---- the state that must not move ------------------------------------------------------

our @SNAP = (
    [ users            => 'COUNT(*) FROM users' ],
    [ tokens           => 'COUNT(*) FROM tokens' ],
    [ tokens_revoked   => 'COUNT(*) FROM tokens WHERE revoked_at IS NOT NULL' ],
    [ approval_rules   => 'COUNT(*) FROM approval_rules' ],
    [ batches          => 'COUNT(*) FROM batches' ],
    [ batch_versions   => 'COALESCE(SUM(version), 0) FROM batches' ],
    [ payment_requests => 'COUNT(*) FROM payment_requests' ],
    [ request_versions => 'COALESCE(SUM(version), 0) FROM payment_requests' ],
    [ decisions        => 'COUNT(*) FROM decisions' ],
    [ ledger_entries   => 'COUNT(*) FROM ledger_entries' ],
    [ audit_events     => 'COUNT(*) FROM audit_events' ],
    [ idempotency_keys => 'COUNT(*) FROM idempotency_keys' ],
);
our $SNAP_SQL = 'SELECT ' . join ', ', map { "(SELECT $_->[1])" } @SNAP;

sub snapshot {
    my @v = $s->dbh->selectrow_array($SNAP_SQL);
    return { map { $SNAP[$_][0] => $v[$_] } 0 .. $#SNAP };
}

sub snap_diff {
    my ($a, $b) = @_;
    return join ', ', map { "$_ $a->{$_} -> $b->{$_}" } grep { $a->{$_} != $b->{$_} }
        map { $_->[0] } @SNAP;
}

sub workers { join ',', sort { $a <=> $b } $s->worker_pids }

# ---- the catalogue ---------------------------------------------------------------------

our @CASES;

# case(route, name, expect => [status, code], body => bytes | undef, ...):
#   headers => {...} (via HTTP::Tiny; undef values are not sent), idem => 0 to send no key
#   or a key to send, token => another token, path => another path,
#   raw => bytes (sent as is on a socket), half_close => 1,
#   fields => [detail names] (VALIDATION_ERROR), details => {...} (exact),
#   any => [[status, code], ...] (any of these; [0] = no response at all)
sub case {
    my ($r, $name, %c) = @_;
    push @CASES, { route => $r, name => "$r->{name}: $name", %c };
}

sub malformed { my ($r, $name, $body, %o) = @_; case($r, $name, body => $body,
    expect => [ 400, 'MALFORMED_JSON' ], details => {}, %o) }

sub invalid { my ($r, $name, $body, $fields, %o) = @_; case($r, $name, body => $body,
    expect => [ 400, 'VALIDATION_ERROR' ], fields => $fields, %o) }

sub path_of {
    my ($r, $field) = @_;
    return $r->{name} eq 'rules' && $field ne 'rules' ? "rules[0].$field" : $field;
}

# The body parser is the same for every route, but the way to it is not (POST, PUT, PATCH;
# an object to find or not): each route-independent body goes to the three routes of the
# three methods (users, rules, patch) and, in turn, to one of the others, so that every
# route gets a share without sending each body eleven times.
our @FULL = @ROUTE{qw(users rules patch)};
our @TURN = grep { $_->{name} !~ /^(users|rules|patch)$/ } @ROUTES;
our $turn = 0;
sub spread {
    my ($items, $make, $full, $others) = @_;
    $full //= \@FULL;
    $others //= \@TURN;
    for my $item (@$items) {
        $make->($_, $item) for @$full, $others->[ $turn++ % @$others ];
    }
}

our @INJECT = (
    q{' OR '1'='1}, q{'; DROP TABLE users; --}, q{" OR 1=1 --}, q{1; DELETE FROM batches},
    q{\'; SHUTDOWN; --}, q{%27%20OR%201%3D1}, q{' UNION SELECT token_hash FROM tokens --},
    q{Robert'); DROP TABLE payment_requests;--}, q{admin'/*}, q{`id`}, q{$(rm -rf /)},
    q{<script>alert(1)</script>}, q{{{7*7}}}, q{%s%s%s%n}, q{../../etc/passwd},
    q{x%0d%0aSet-Cookie:a=b}, qq{\x{2028}\x{2029}}, q{0x27 OR 0x31=0x31}, qq{\x{2BC} OR 1=1},
    qq{\x{FF07} OR 1=1}, q{\\'}, q{'||(SELECT SLEEP(5))||'}, q{1' AND BENCHMARK(99999999,SHA1(1))#},
);
sub free_text_ok {
    my ($v, $min, $max) = @_;
    my $n = length $v;
    return $n >= $min && $n <= $max && $v !~ /[\x{0}-\x{1F}\x{7F}-\x{9F}]/;
}

# Sends every case of @CASES, checks each, then prints and checks the figures.
sub run_catalogue {

    my (%tally, %codes);
    my ($fivexx, $deaths, $row_changes, $updates, $slowest) = (0, 0, 0, 0, [ 0, '' ]);
    my $t0 = time;
    diag sprintf 'setup and %d cases generated in %.1f s', scalar @CASES, $t0 - $^T;

    subtest 'the catalogue: every case its documented 4xx, nothing changed, no 5xx' => sub {
        my $before = snapshot();
        my $w_before = workers();
        my $n = 0;
        for my $c (@CASES) {
            my $r = $c->{route};
            my $started = time;
            my $res;
            if (defined $c->{raw}) {
                my $raw = raw_send($c->{raw}, half_close => $c->{half_close}, timeout => 10);
                $res = length $raw ? parse_http_response($raw) : { status => 0, headers => {}, body => '' };
                # Checked against doc/openapi.yaml like every response of Remit::Test's helpers.
                $s->openapi_check($1, $2, $res)
                    if $res->{status} && $c->{raw} =~ m{^([A-Z]+) (\S+) HTTP/1\.[01]\r\n};
            } else {
                my $token = exists $c->{token} ? $c->{token} : $r->{token};
                my $idem = exists $c->{idem} ? $c->{idem} : $r->{idem} ? 1 : undef;
                $idem = undef if defined $idem && $idem eq '0';
                $res = $s->req($r->{method}, $c->{path} // $r->{path},
                    (length($token // '') ? (token => $token) : ()),
                    (defined $idem ? (idem => $idem) : ()),
                    (defined $c->{body} ? (raw => $c->{body}) : ()),
                    headers => $c->{headers} // {});
            }
            my $took = time - $started;
            $slowest = [ $took, $c->{name} ] if $took > $slowest->[0];
            my $code = ref $res->{json} eq 'HASH' && ref $res->{json}{error} eq 'HASH'
                ? $res->{json}{error}{code} : undef;
            $tally{ $res->{status} }++;
            $codes{ "$res->{status} " . ($code // '-') }++;
            # nginx's 501 for an unknown transfer coding is RFC 9112 §6.1's answer, and expected
            # as such (Transfer-Encoding: gzip); any other 5xx is a failure.
            $fivexx++ if $res->{status} >= 500 && !($res->{status} == 501 && ($code // '') eq 'NOT_IMPLEMENTED'
                && $c->{name} =~ /Transfer-Encoding gzip/);

            my @why;
            my @ok = $c->{any} ? @{ $c->{any} } : ($c->{expect});
            my ($match) = grep { $_->[0] == $res->{status} && (!defined $_->[1] || ($code // '') eq $_->[1]) } @ok;
            push @why, "got $res->{status} " . ($code // '(no code)') . ', expected '
                . join(' or ', map { "$_->[0] " . ($_->[1] // '') } @ok) unless $match;
            if ($res->{status}) {
                push @why, 'not the error envelope' unless ref $res->{json} eq 'HASH'
                    && join(',', sort keys %{ $res->{json} }) eq 'error'
                    && join(',', sort keys %{ $res->{json}{error} }) eq 'code,details,message'
                    && ref $res->{json}{error}{details} eq 'HASH'
                    && !ref $res->{json}{error}{message} && length $res->{json}{error}{message};
                push @why, 'Content-Type is not JSON'
                    unless ($res->{headers}{'content-type'} // '') =~ m{^application/json}i;
            }
            my $details = ref $res->{json} eq 'HASH' && ref $res->{json}{error} eq 'HASH'
                ? $res->{json}{error}{details} : undef;
            if ($c->{fields} && ref $details eq 'HASH') {
                my $got = join ',', sort keys %$details;
                my $want = join ',', sort @{ $c->{fields} };
                push @why, "details name ($got), expected ($want)" if $got ne $want;
            }
            if ($c->{details} && ref $details eq 'HASH') {
                push @why, 'details are ' . $JSON->encode($details) . ', expected '
                    . $JSON->encode($c->{details})
                    if $JSON->encode($details) ne $JSON->encode($c->{details});
            }
            my $after = snapshot();
            if (my $d = snap_diff($before, $after)) {
                push @why, "the database changed: $d";
                for my $k (map { $_->[0] } @SNAP) {
                    my $delta = abs($after->{$k} - $before->{$k});
                    if ($k =~ /versions$/) { $updates += $delta } else { $row_changes += $delta }
                }
            }
            $before = $after;
            if (++$n % 40 == 0 || $n == @CASES) {
                my $w = workers();
                if ($w ne $w_before) {
                    push @why, "the workers changed: ($w_before) -> ($w)";
                    my %was = map { $_ => 1 } split /,/, $w_before;
                    $deaths += grep { !$was{$_} } split /,/, $w;
                }
                $w_before = $w;
            }
            ok !@why, label("$c->{name} -> " . join(' | ', map { "$_->[0] " . ($_->[1] // '') } @ok))
                or diag join "\n", @why, 'body: ' . label(substr($res->{body} // '', 0, 300));
        }
    };

    my $elapsed = time - $t0;
    my %routes_seen = map { $_->{route}{name} => 1 } @CASES;
    diag sprintf 'catalogue: %d cases over %d routes in %.1f s (slowest %.2f s: %s)',
        scalar @CASES, scalar keys %routes_seen, $elapsed, $slowest->[0], label($slowest->[1]);
    diag 'statuses seen: ' . join ', ', map { "$_ x$tally{$_}" } sort { $a <=> $b } keys %tally;
    diag 'codes seen: ' . join ', ', map { "$_ x$codes{$_}" } sort keys %codes;
    diag "5xx: $fivexx (besides nginx's " . ($tally{501} // 0) . " x 501 for Transfer-Encoding: gzip), "
        . "worker deaths: $deaths, row changes: $row_changes, version updates: $updates";
    is $fivexx, 0, 'no 5xx in the catalogue';
    is $deaths, 0, 'no worker died';
    is $row_changes + $updates, 0, 'no row of any business table changed';

}

# The stored value of a column, decoded from UTF-8.
sub stored {
    my ($sql, @bind) = @_;
    my ($v) = $s->dbh->selectrow_array($sql, undef, @bind);
    utf8::decode($v) if defined $v && !utf8::is_utf8($v);
    return $v;
}

1;
