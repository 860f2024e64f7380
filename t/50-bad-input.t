use strict;
use warnings;
use utf8;

use Test::More;
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes qw(time);
use Remit::Test;

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

binmode(Test::More->builder->$_, ':encoding(UTF-8)') for qw(output failure_output todo_output);

my $s = Remit::Test->stack;
my $JSON = JSON::PP->new->utf8->canonical;
my $T = JSON::PP::true;
my $F = JSON::PP::false;

# ---- the organisation and its fixtures -------------------------------------------------

my $org = $s->new_org;
my $admin = $org->{token};
my $creator = $s->new_user($admin, roles => ['CREATOR']);
my $approver = $s->new_user($admin, roles => ['APPROVER']);
my $approver2 = $s->new_user($admin, roles => ['APPROVER']);
my $treasurer = $s->new_user($admin, roles => ['TREASURER']);
my $viewer = $s->new_user($admin, roles => ['VIEWER']);
my $maker = $s->new_user($admin, roles => [qw(CREATOR APPROVER)]);

my $IBAN = 'GB82WEST12345698765432';
my %REQ = (amount => '10.00', currency => 'USD', beneficiaryName => 'Ann',
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

sub new_batch { must(post($_[0] // $creator, '/api/v1/batches', { name => 'Fixture' }), 201, 'batch')->{id} }

sub add_request {
    my ($bid, $who, %f) = @_;
    return must(post($who // $creator, "/api/v1/batches/$bid/requests", { %REQ, %f }), 201,
        'request')->{id};
}

sub submit { must(post($_[1] // $creator, "/api/v1/batches/$_[0]/submit"), 200, 'submit') }

sub act {
    my ($who, $id, $what, $json) = @_;
    return must(post($who, "/api/v1/requests/$id/$what", $json // {}), 200, $what);
}

# Rules applied at submit: GBP needs two approvals (for ALREADY_DECIDED below).
must($s->req(PUT => '/api/v1/approval-rules', token => $admin,
    json => { rules => [ { currency => 'GBP', minAmount => '0', approvals => 2 } ] }), 200, 'rules');

my $draft_batch = new_batch();
my $draft_req = add_request($draft_batch);
my $empty_batch = new_batch();
my $pending_batch = new_batch();
my $pending_req = add_request($pending_batch);
submit($pending_batch);
my $approved_batch = new_batch();
my $approved_req = add_request($approved_batch);
submit($approved_batch);
# A key that has been used once, successfully, by the creator and by the approver.
my $USED_KEY = 'used-' . Remit::Test::random_key();
must($s->req(POST => "/api/v1/requests/$approved_req/approve", token => $approver->{token},
    idem => $USED_KEY, json => {}), 200, 'approve');
must($s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => $USED_KEY,
    json => { name => 'Keyed' }), 201, 'keyed batch');
my $cancelled_batch = new_batch();
must(post($creator, "/api/v1/batches/$cancelled_batch/cancel"), 200, 'cancel');
my $gbp_batch = new_batch();
my $gbp_req = add_request($gbp_batch, undef, currency => 'GBP');
submit($gbp_batch);
act($approver, $gbp_req, 'approve');    # one of two: still PENDING_APPROVAL
my $own_batch = new_batch($maker);       # made and submitted by maker (CREATOR + APPROVER)
my $own_req = add_request($own_batch, $maker);
submit($own_batch, $maker);
my $sub_batch = new_batch();             # made by creator, submitted by maker
my $sub_req = add_request($sub_batch);
submit($sub_batch, $maker);
# A revoked token of an ADMIN.
my $revoked = $s->new_user($admin, roles => ['ADMIN']);
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
my @ROUTES = (
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
my %ROUTE = map { $_->{name} => $_ } @ROUTES;
$_->{token} = ref $_->{who} ? $_->{who}{token} : $_->{who} for @ROUTES;

# ---- body construction -----------------------------------------------------------------

# The route's base body with fields replaced. A value given as \"text" is spliced in as raw
# JSON bytes (numbers as written, invalid UTF-8, deep nesting); a key mapped to undef-ref
# (\undef) is deleted; 'rules[0].x' reaches into the first rule. Returns bytes.
my $SPLICE = 0;
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

my @SNAP = (
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
my $SNAP_SQL = 'SELECT ' . join ', ', map { "(SELECT $_->[1])" } @SNAP;

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

my @CASES;

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
my @FULL = @ROUTE{qw(users rules patch)};
my @TURN = grep { $_->{name} !~ /^(users|rules|patch)$/ } @ROUTES;
my $turn = 0;
sub spread {
    my ($items, $make, $full, $others) = @_;
    $full //= \@FULL;
    $others //= \@TURN;
    for my $item (@$items) {
        $make->($_, $item) for @$full, $others->[ $turn++ % @$others ];
    }
}

# -- 1. truncated JSON: every prefix for two routes, six cut points for the others.
for my $r (@ROUTES) {
    my $t = template($r);
    my @cuts = ($r->{name} =~ /^(users|add-request)$/) ? (1 .. length($t) - 1)
        : do { my %u = map { (1 + int(($_ / 6) * (length($t) - 2))) => 1 } 0 .. 5; sort { $a <=> $b } keys %u };
    malformed($r, "truncated to $_ of " . length($t) . ' bytes', substr($t, 0, $_)) for @cuts;
}

# -- 2. invalid JSON: generic bodies and surgery on each route's template.
my @SYNTAX = (
    [ 'single quotes'            => sub { (my $t = $_[0]) =~ tr/"/'/; $t } ],
    [ 'unquoted member names'    => sub { (my $t = $_[0]) =~ s/"(\w+)":/$1:/g; $t } ],
    [ 'trailing comma'           => sub { substr($_[0], 0, -1) . ',}' } ],
    [ 'leading comma'            => sub { '{,' . substr($_[0], 1) } ],
    [ 'double comma'             => sub { $_[0] =~ /,/ ? $_[0] =~ s/,/,,/r : substr($_[0], 0, -1) . ',,"z":1}' } ],
    [ 'missing colon'            => sub { (my $t = $_[0]) =~ s/":/" /; $t } ],
    [ '= for :'                  => sub { (my $t = $_[0]) =~ s/":/"=/; $t } ],
    [ '; for ,'                  => sub { substr($_[0], 0, -1) . ';"z":1}' } ],
    [ 'block comment'            => sub { '{/* c */' . substr($_[0], 1) } ],
    [ 'line comment'             => sub { "{// c\n" . substr($_[0], 1) } ],
    [ 'hash comment'             => sub { "{# c\n" . substr($_[0], 1) } ],
    [ 'extra closing brace'      => sub { $_[0] . '}' } ],
    [ 'wrapped in braces'        => sub { '{' . $_[0] . '}' } ],
    [ 'two objects'              => sub { $_[0] . $_[0] } ],
    [ 'two objects, comma'       => sub { $_[0] . ',' . $_[0] } ],
    [ 'trailing garbage'         => sub { $_[0] . ' x' } ],
    [ 'trailing null'            => sub { $_[0] . ' null' } ],
    [ 'in an array'              => sub { '[' . $_[0] . ']' } ],
    [ 'as a JSON string'         => sub { $JSON->encode([ $_[0] ]) =~ s/^\[|\]$//gr } ],
    [ 'object closed by ]'       => sub { substr($_[0], 0, -1) . ']' } ],
    [ 'missing opening brace'    => sub { substr($_[0], 1) } ],
    [ 'byte-order mark'          => sub { "\xEF\xBB\xBF" . $_[0] } ],
    [ 'UTF-16 BE byte-order mark' => sub { "\xFE\xFF" . $_[0] } ],
    [ 'UTF-16 LE encoding'       => sub { join '', map { "$_\0" } split //, $_[0] } ],
    [ 'raw NUL before'           => sub { "\0" . $_[0] } ],
    [ 'raw NUL after'            => sub { $_[0] . "\0" } ],
    [ 'raw NUL after {'          => sub { "{\0" . substr($_[0], 1) } ],
    [ 'U+FEFF between tokens'    => sub { "{\xEF\xBB\xBF" . substr($_[0], 1) } ],
    [ 'U+00A0 between tokens'    => sub { "{\xC2\xA0" . substr($_[0], 1) } ],
    [ 'vertical tab as space'    => sub { "{\x0B" . substr($_[0], 1) } ],
    [ 'form feed as space'       => sub { "{\x0C" . substr($_[0], 1) } ],
    [ 'fullwidth left brace'     => sub { "\xEF\xBD\x9B" . substr($_[0], 1) } ],
    [ 'overlong { (C1 BB)'       => sub { "\xC1\xBB" . substr($_[0], 1) } ],
    [ 'overlong " (C0 A2) as quote' => sub { (my $t = $_[0]) =~ s/"/\xC0\xA2/; $t } ],
);
my @GENERIC = (
    '{"z":NaN}', '{"z":Infinity}', '{"z":-Infinity}', '{"z":undefined}', '{"z":01}',
    '{"z":-01}', '{"z":+1}', '{"z":.5}', '{"z":1.}', '{"z":0x10}', '{"z":1e}', '{"z":1e+}',
    '{"z":-}', '{"z":--1}', '{"z":1.e5}', '{"z":1_000}', '{"z":1 000}', '{"z":tru}',
    '{"z":True}', '{"z":NULL}', '{"z":nul}', '{"z":truefalse}', '{"z":"abc}', '{"z":"a"b"}',
    "{\"z\":\"a\tb\"}", "{\"z\":\"a\nb\"}", "{\"z\":\"a\rb\"}", "{\"z\":\"a\x01b\"}",
    "{\"z\":\"a\x1Fb\"}", "{\"z\":\"a\0b\"}", "{\"z\x00\":1}", '{"z":"\x41"}', '{"z":"\u12"}',
    '{"z":"\u12G4"}', '{"z":"\U0041"}', '{"z":"\a"}', q({"z":"\\'"}), '{"z":"\0"}',
    '{"z":"\"}', '{"z"}', '{"z":}', '{:1}', '{1:1}', '{null:1}', '{true:1}', '{"z":1,}',
    '{"z":[1,]}', '{"z":[,1]}', '{"z":[1 2]}', '{"z":{"a"}}', '{"z":{"a":}}', '}{', '{]',
    '[}', '{"z":1]', '{"z":[1}', '{"z":[}', '{"z":{]}', '{{}}', '{"z"::1}', '{"z":1:2}',
    '{""}', '{"z":1"y":2}', '{"z":"a""b"}', '[]', '[{}]', '"{}"', '""', '0', '-0', '1e400',
    'null', 'true', 'false', ' ', " \t\r\n ", "\0", '{', '}', '{"', '"', ',', ':', 'x',
    '{}}', '{}{}', '{} {}', '{},', '{"a":1}x', '{"z":/re/}', "{'z':1}", '{z:1}',
    "{\"z\":\"\xEF\xBB\xBF\"\xEF\xBB\xBF}",
);
spread(\@SYNTAX, sub { my ($r, $x) = @_; malformed($r, $x->[0], $x->[1]->(template($r))) });
spread(\@GENERIC, sub { my ($r, $x) = @_; malformed($r, "body '$x'", $x) });

# -- 3. invalid UTF-8 and lone surrogates, in a value, in a member name, and outside.
my @BAD_UTF8 = (
    [ 'FF' => "\xFF" ], [ 'FE' => "\xFE" ], [ 'C0 80 (overlong NUL)' => "\xC0\x80" ],
    [ 'C0 AF (overlong /)' => "\xC0\xAF" ], [ 'C0 A2 (overlong ")' => "\xC0\xA2" ],
    [ 'C1 BF' => "\xC1\xBF" ], [ 'E0 80 80' => "\xE0\x80\x80" ], [ 'E0 80 AF' => "\xE0\x80\xAF" ],
    [ 'E0 9F BF (overlong U+07FF)' => "\xE0\x9F\xBF" ], [ 'F0 80 80 80' => "\xF0\x80\x80\x80" ],
    [ 'F0 80 80 AF' => "\xF0\x80\x80\xAF" ], [ 'F0 8F BF BF (overlong U+FFFF)' => "\xF0\x8F\xBF\xBF" ],
    [ 'ED A0 80 (U+D800)' => "\xED\xA0\x80" ], [ 'ED AF BF (U+DBFF)' => "\xED\xAF\xBF" ],
    [ 'ED B0 80 (U+DC00)' => "\xED\xB0\x80" ], [ 'ED BF BF (U+DFFF)' => "\xED\xBF\xBF" ],
    [ 'CESU-8 surrogate pair' => "\xED\xA0\xBD\xED\xB8\x80" ],
    [ 'F4 90 80 80 (U+110000)' => "\xF4\x90\x80\x80" ], [ 'F5 80 80 80' => "\xF5\x80\x80\x80" ],
    [ 'F7 BF BF BF' => "\xF7\xBF\xBF\xBF" ], [ 'F8 88 80 80 80 (5 bytes)' => "\xF8\x88\x80\x80\x80" ],
    [ 'FC 84 80 80 80 80 (6 bytes)' => "\xFC\x84\x80\x80\x80\x80" ],
    [ 'lone continuation 80' => "\x80" ], [ 'lone continuation BF' => "\xBF" ],
    [ 'C3 then ASCII' => "\xC3A" ], [ 'E2 82 then ASCII' => "\xE2\x82A" ],
    [ 'F0 9F 98 then ASCII' => "\xF0\x9F\x98A" ], [ 'C3 C3' => "\xC3\xC3" ],
    [ 'E2 28 A1' => "\xE2\x28\xA1" ], [ 'latin-1 e-acute' => "caf\xE9" ],
    [ 'truncated 4-byte before the quote' => "x\xF0\x9F\x98" ], [ 'C2 alone' => "x\xC2" ],
);
my @BAD_ESCAPES = (
    '\ud800', '\udbff', '\udc00', '\udfff', '\uD800', '\ud800\u0041', '\ud800x',
    '\udc00\ud800', '\ud800\ud800', '\ud83d\\\\ude00', '\ud83d\n', '\ud83d\u00e9',
);
spread(\@BAD_UTF8, sub {
    my ($r, $u) = @_;
    malformed($r, "$u->[0] in $r->{probe}", in_probe($r, $u->[1]));
    malformed($r, "$u->[0] in a member name", in_key($r, $u->[1]));
});
spread(\@BAD_ESCAPES, sub {
    my ($r, $e) = @_;
    malformed($r, "escaped '$e' in $r->{probe}", in_probe($r, $e));
    malformed($r, "escaped '$e' in a member name", in_key($r, $e));
});
for my $r (@ROUTES) {
    malformed($r, 'FF after the object', template($r) . "\xFF");
    malformed($r, 'body cut inside a 4-byte sequence', substr(in_probe($r, "\xF0\x9F\x98\x80"), 0,
        index(in_probe($r, "\xF0\x9F\x98\x80"), "\xF0") + 2));
}

# -- 4. NUL: raw (a grammar error) and escaped (a control character in a field).
for my $r (@ROUTES) {
    my $p = $r->{probe_path} // $r->{probe};
    malformed($r, "raw NUL in $r->{probe}", in_probe($r, "\0"));
    malformed($r, 'raw NUL in a member name', in_key($r, "\0"));
    invalid($r, "escaped \\u0000 in $r->{probe}", in_probe($r, '\u0000'), [$p]);
    invalid($r, "escaped \\u0000 at the end of $r->{probe}",
        in_probe($r, 'x\u0000') =~ s/x\\u0000(.*?)"/$1\\u0000"/r, [$p]);
    invalid($r, 'a member name holding \u0000', body_with($r, "a\0b" => 1), ['(field)']);
}

# -- 5. nesting: the body object is level 1; 32 levels parse, 33 do not.
for my $r (@ROUTES) {
    for my $shape (qw(arrays objects mixed)) {
        my $nest = sub {
            my ($levels) = @_;    # total levels including the body object
            my $n = $levels - 1;
            return $shape eq 'arrays' ? ('[' x $n) . (']' x $n)
                : $shape eq 'objects' ? ('{"a":' x ($n - 1)) . '{}' . ('}' x ($n - 1))
                : join('', map { $_ % 2 ? '{"a":' : '[' } 1 .. $n - 1) . ($n % 2 ? '{}' : '[]')
                    . join('', map { $_ % 2 ? '}' : ']' } reverse 1 .. $n - 1);
        };
        invalid($r, "32 levels of $shape in an unknown field",
            body_with($r, deep => \$nest->(32)), ['deep']);
        malformed($r, "33 levels of $shape", body_with($r, deep => \$nest->(33)));
    }
    my $known = $r->{probe};
    invalid($r, "32 levels in $known", body_with($r, $known => \(('[' x 31) . (']' x 31))),
        [ $r->{probe_path} // $known ]) unless $r->{name} eq 'rules';
    malformed($r, '1000 levels', body_with($r, deep => \(('[' x 999) . (']' x 999))));
    malformed($r, '32,000 unclosed levels', '{"deep":' . ('[' x 32000));
    malformed($r, '32,000 levels', '{"deep":' . ('[' x 32000) . (']' x 32000) . '}');
}

# -- 6. duplicate member names (one object; after escapes are decoded) and near-duplicates.
for my $r (@ROUTES) {
    my $t = template($r);
    my @keys = $r->{name} eq 'rules' ? () : sort keys %{ $r->{base} };
    for my $k (@keys) {
        my $v = $JSON->encode([ $r->{base}{$k} ]) =~ s/^\[|\]$//gr;
        malformed($r, "$k twice, same value", substr($t, 0, -1) . ",\"$k\":$v}");
        malformed($r, "$k twice, other value", substr($t, 0, -1) . ",\"$k\":\"other\"}");
        malformed($r, "$k twice, once escaped",
            substr($t, 0, -1) . ',"' . sprintf('\u%04x', ord $k) . substr($k, 1) . "\":$v}");
        malformed($r, "$k twice, once null", substr($t, 0, -1) . ",\"$k\":null}");
        invalid($r, "$k and a case variant", substr($t, 0, -1) . ',"' . ucfirst($k) . "\":$v}",
            [ ucfirst $k ]) if ucfirst($k) ne $k;
    }
    malformed($r, 'an unknown field twice', substr($t, 0, -1) . ',"zz":1,"zz":2}');
    malformed($r, 'duplicate in a nested object', substr($t, 0, -1) . ',"zz":{"a":1,"a":1}}');
    malformed($r, 'duplicate at level 32',
        body_with($r, deep => \(('{"a":' x 30) . '{"b":1,"b":2}' . ('}' x 30))));
    invalid($r, 'decomposed and precomposed e-acute are two names',
        body_with($r, "\x{e9}" => 1, "e\x{301}" => 1), [ "\x{e9}", "e\x{301}" ]);
}
malformed($ROUTE{rules}, 'duplicate currency in rules[0]',
    '{"rules":[{"currency":"SEK","currency":"NOK","minAmount":"1","approvals":1}]}');
malformed($ROUTE{rules}, 'duplicate approvals in rules[1]',
    '{"rules":[{"currency":"SEK","minAmount":"1","approvals":1},'
    . '{"currency":"NOK","minAmount":"1","approvals":1,"approvals":2}]}');

# -- 7. wrong types, missing fields, limits and formats, field by field.
my @ANY_WRONG = (
    [ 'number 0' => \'0' ], [ 'number 1.5' => \'1.5' ], [ 'number -1' => \'-1' ],
    [ 'number 1e400' => \'1e400' ], [ 'true' => $T ], [ 'false' => $F ], [ '[]' => [] ],
    [ '["x"]' => ['x'] ], [ '{}' => {} ], [ '{"a":"b"}' => { a => 'b' } ],
);
my @CONTROL = ("\x{0}", "\x{1}", "\t", "\n", "\r\n", "\x{1B}[31m", "\x{1F}", "\x{7F}",
    "\x{80}", "\x{85}", "\x{9F}");
my @MONEY_BAD = ('', ' ', '-0', '-0.00', '-1', '+1', ' 1', '1 ', '1,000.00', '1_000', '0x10',
    'NaN', 'Infinity', '1e3', '1E3', '.5', '5.', '00.5', '01', '1.001', '1.2.3', '1..2', '$10',
    '10 USD', '1234567890123456', '1234567890123456.00', '9223372036854775807',
    '99999999999999999999', "\x{661}\x{662}", "\x{FF11}", "1\x{0}", '0.000000000000000000001',
    '1.00000000000000000000');
my @MONEY_BAD_NUM = ('-0', '-0.0', '-1', '1e3', '1E3', '1e-2', '1.0e2', '0.1e1', '1.001',
    '1234567890123456', '1e400', '-1e400', '1' . ('0' x 400), '123456789012345.999',
    '0.000000000000000000001', '-10.00');
my @CURRENCY_BAD = ('usd', 'Usd', 'US', 'USDD', '', 'XXX', 'ZZZ', 'ABC', ' USD', 'USD ',
    "\x{FF35}\x{FF33}\x{FF24}", "US\x{0}", '123', 'EUR,USD', 'USD;', "U\x{301}SD");
my @EMAIL_BAD = ('no-at', 'a@@b', '@b', 'a@', 'a@b@c', '@', ('x' x 250) . '@e.test', '');
my @ACCOUNT_BAD = ('', 'x' x 35, "\x{E9}" x 35, 'GB82WEST12345698765433', 'GB82-WEST-1234-5698-7654-32',
    'GB82 WEST 1234 5698 7654 32 0000 0000 0000 00', "GB82WEST1234569876543\x{E9}", "acct\t1",
    'GB00', 'GB82WEST12345698765432' . ('0' x 13));
my @ROLES_BAD = ('VIEWER', \'1', $T, {}, { 0 => 'VIEWER' }, [], [1], [undef], ['viewer'],
    ['VIEWER '], [' VIEWER'], [['VIEWER']], [{ role => 'VIEWER' }], [qw(ADMIN NOPE)],
    ['SUPERUSER'], [''], [$T], ["VIEWER\x{0}"], ['ADMIN,VIEWER'], ["\x{0130}MIN"]);
my @APPROVALS_BAD = ('0', '11', '-1', '2.0', '2e0', '2E0', '1e400', '99999999999999999999',
    '1.5', '"2"', 'true', '[]', '{}', '100', '-0', '1e1', '"two"');

sub text_wrong {
    my ($r, $f, $path, $min, $max) = @_;
    for my $w (@ANY_WRONG) { invalid($r, "$f: $w->[0]", body_with($r, $f => $w->[1]), [$path]) }
    invalid($r, "$f: empty", body_with($r, $f => ''), [$path]) if $min >= 1;
    invalid($r, "$f: " . ($max + 1) . ' ASCII characters', body_with($r, $f => 'x' x ($max + 1)), [$path]);
    invalid($r, "$f: " . ($max + 1) . ' emoji', body_with($r, $f => "\x{1F600}" x ($max + 1)), [$path]);
    invalid($r, "$f: " . ($max + 1) . ' combining marks', body_with($r, $f => "e" . ("\x{301}" x $max)), [$path]);
    invalid($r, "$f: 60,000 characters (within the body limit)", body_with($r, $f => 'y' x 60000), [$path]);
    invalid($r, "$f: 16,000 emoji (64,000 bytes)", body_with($r, $f => "\x{1F600}" x 16000), [$path]);
    case($r, "$f: 100,000 characters (over the body limit)", body => body_with($r, $f => 'z' x 100000),
        expect => [ 413, 'PAYLOAD_TOO_LARGE' ], details => {});
    for my $c (@CONTROL) {
        invalid($r, "$f: control character " . label($c), body_with($r, $f => "a${c}b"), [$path]);
    }
    invalid($r, "$f: escaped \\u0085 (NEL)", body_with($r, $f => \'"a\u0085b"'), [$path]);
    invalid($r, "$f: header injection \\r\\nSet-Cookie", body_with($r, $f => "x\r\nSet-Cookie: a=b"), [$path]);
}

for my $r (@ROUTES) {
    my %req = map { $_ => 1 } @{ $r->{required} };
    for my $fd (@{ $r->{fields} }) {
        my ($f, $type, $min, $max) = @$fd;
        my $path = path_of($r, $f);
        if ($req{$f}) {
            invalid($r, "$f missing", body_with($r, $f => \undef), [$path]);
            invalid($r, "$f null", body_with($r, $f => \'null'), [$path]);
        }
        if ($type eq 'text') {
            text_wrong($r, $f, $path, $min, $max);
        } elsif ($type eq 'email') {
            text_wrong($r, $f, $path, 1, 254);
            invalid($r, "email: '$_'", body_with($r, email => $_), ['email']) for @EMAIL_BAD;
        } elsif ($type eq 'money') {
            for my $w (grep { $_->[0] !~ /^number/ } @ANY_WRONG) {
                invalid($r, "amount: $w->[0]", body_with($r, amount => $w->[1]), ['amount']);
            }
            invalid($r, "amount: string '$_'", body_with($r, amount => $_), ['amount']) for @MONEY_BAD, '0', '0.00';
            invalid($r, "amount: number $_", body_with($r, amount => \$_), ['amount']) for @MONEY_BAD_NUM, '0', '0.00';
            invalid($r, "amount: 1.5 JPY", body_with($r, amount => '1.5', currency => 'JPY'), ['amount']);
            invalid($r, "amount: 1.0 JPY", body_with($r, amount => '1.0', currency => 'JPY'), ['amount']);
            invalid($r, "amount: 1.0001 KWD", body_with($r, amount => '1.0001', currency => 'KWD'), ['amount']);
            invalid($r, "amount: number 10.0001 KWD", body_with($r, amount => \'10.0001', currency => 'KWD'), ['amount']);
        } elsif ($type eq 'currency') {
            for my $w (@ANY_WRONG) {
                invalid($r, "currency: $w->[0]", body_with($r, currency => $w->[1]), ['currency']);
            }
            invalid($r, 'currency: ' . label("'$_'"), body_with($r, currency => $_), ['currency']) for @CURRENCY_BAD;
        } elsif ($type eq 'account') {
            for my $w (@ANY_WRONG) {
                invalid($r, "beneficiaryAccount: $w->[0]", body_with($r, $f => $w->[1]), [$f]);
            }
            invalid($r, 'beneficiaryAccount: ' . label("'$_'"), body_with($r, $f => $_), [$f]) for @ACCOUNT_BAD;
            invalid($r, 'beneficiaryAccount: control character', body_with($r, $f => "12\x{0}34"), [$f]);
        } elsif ($type eq 'roles') {
            for my $v (@ROLES_BAD) {
                invalid($r, 'roles: ' . label(ref $v eq 'SCALAR' ? $$v : JSON::PP->new->allow_nonref->encode($v)),
                    body_with($r, roles => $v), ['roles']);
            }
            invalid($r, 'roles: 6,000 VIEWER then one NOPE',
                body_with($r, roles => [ ('VIEWER') x 6000, 'NOPE' ]), ['roles']);
        } elsif ($type eq 'rules') {
            my $ok = { currency => 'SEK', minAmount => '1', approvals => 1 };
            my @bad = (
                [ 'a string'      => '"x"', ['rules'] ], [ 'a number' => '1', ['rules'] ],
                [ 'true'          => 'true', ['rules'] ], [ 'an object' => '{}', ['rules'] ],
                [ 'an object rule' => $JSON->encode($ok), ['rules'] ],
                [ '[1]'           => '[1]', ['rules[0]'] ], [ '["x"]' => '["x"]', ['rules[0]'] ],
                [ '[null]'        => '[null]', ['rules[0]'] ], [ '[[]]' => '[[]]', ['rules[0]'] ],
                [ '[true]'        => '[true]', ['rules[0]'] ],
                [ '101 rules'     => '[' . join(',', ($JSON->encode($ok)) x 101) . ']', ['rules'] ],
                [ 'rules[1] bad'  => '[' . $JSON->encode($ok) . ',' . $JSON->encode({ %$ok, approvals => 0 }) . ']',
                    ['rules[1].approvals'] ],
                [ 'rules[2] not an object' => '[' . join(',', ($JSON->encode($ok)) x 2) . ',"x"]', ['rules[2]'] ],
            );
            invalid($r, "rules: $_->[0]", body_with($r, rules => \$_->[1]), $_->[2]) for @bad;
            for my $k (qw(currency minAmount approvals)) {
                invalid($r, "rules[0].$k missing", body_with($r, "rules[0].$k" => \undef), ["rules[0].$k"]);
                invalid($r, "rules[0].$k null", body_with($r, "rules[0].$k" => \'null'), ["rules[0].$k"]);
            }
            for my $k (qw(id orgId position currency2 Currency)) {
                invalid($r, "rules[0] with unknown field $k", body_with($r, "rules[0].$k" => 1), ["rules[0].$k"]);
            }
            for my $w (@ANY_WRONG) {
                invalid($r, "rules[0].currency: $w->[0]", body_with($r, 'rules[0].currency' => $w->[1]),
                    ['rules[0].currency']);
                next if $w->[0] =~ /^number/;
                invalid($r, "rules[0].minAmount: $w->[0]", body_with($r, 'rules[0].minAmount' => $w->[1]),
                    ['rules[0].minAmount']);
            }
            invalid($r, 'rules[0].currency: ' . label("'$_'"), body_with($r, 'rules[0].currency' => $_),
                ['rules[0].currency']) for @CURRENCY_BAD;
            invalid($r, "rules[0].minAmount: string '$_'", body_with($r, 'rules[0].minAmount' => $_),
                ['rules[0].minAmount']) for @MONEY_BAD;
            invalid($r, "rules[0].minAmount: number $_", body_with($r, 'rules[0].minAmount' => \$_),
                ['rules[0].minAmount']) for @MONEY_BAD_NUM;
            invalid($r, 'rules[0].minAmount: 1.001 SEK', body_with($r, 'rules[0].minAmount' => '1.001'),
                ['rules[0].minAmount']);
            invalid($r, 'rules[0].minAmount: 1.5 JPY', body_with($r, 'rules[0].minAmount' => '1.5',
                'rules[0].currency' => 'JPY'), ['rules[0].minAmount']);
            invalid($r, "rules[0].approvals: $_", body_with($r, 'rules[0].approvals' => \$_),
                ['rules[0].approvals']) for @APPROVALS_BAD;
            malformed($r, 'rules[0].approvals: 02 (a leading zero is not JSON)',
                body_with($r, 'rules[0].approvals' => \'02'));
        }
    }
    # Every required field missing at once; an empty object; an empty body where one is needed.
    if (@{ $r->{required} }) {
        invalid($r, 'empty object', '{}', [ map { path_of($r, $_) } @{ $r->{required} } ]);
        if ($r->{method} eq 'POST') {
            case($r, 'empty body (same as {})', body => '', expect => [ 400, 'VALIDATION_ERROR' ],
                fields => $r->{required});
        }
    }
    if ($r->{method} ne 'POST') {
        malformed($r, 'empty body', '');
        malformed($r, 'empty body, no Content-Type', '', headers => { 'Content-Type' => undef });
        malformed($r, 'empty body, text/plain', '', headers => { 'Content-Type' => 'text/plain' });
    }
}

# -- 8. unknown fields, mass assignment among them.
spread([ qw(id orgId status version createdBy createdAt approvalCount requiredApprovals
        snapshot paidAt paidBy submittedBy token tokenHash role isAdmin __proto__ constructor
        prototype $where), '', ' ', "\x{1F600}", 'x' x 1000 ], sub {
    my ($r, $k) = @_;
    invalid($r, 'unknown field ' . label("'$k'"), body_with($r, $k => 'SUBMITTED'), [$k])
        unless exists $r->{base}{$k};
});
for my $r (@ROUTES) {
    invalid($r, 'unknown field with an object value', body_with($r, status => { '$ne' => 1 }), ['status']);
    invalid($r, 'two unknown fields', body_with($r, aa => 1, bb => 2), [qw(aa bb)]);
    case($r, '5,000 unknown fields (details capped)',
        body => substr(template($r), 0, -1) . join('', map { ",\"k$_\":0" } 1 .. 5000) . '}',
        expect => [ 400, 'VALIDATION_ERROR' ]);
}

# -- 9. SQL and header injection strings in every text field: refused because of another
#       field (never because of their content alone when the field is free text), and never
#       run. Section 14 stores them.
my @INJECT = (
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
my $nth = 0;
for my $r (@ROUTES) {
    for my $fd (@{ $r->{fields} }) {
        my ($f, $type, $min, $max) = @$fd;
        next if $type eq 'roles' || $type eq 'rules';
        # A third of the strings per field, in turn (section 14 stores all of them).
        my $k = $nth++ % 3;
        for my $v ((grep { $k++ % 3 == 0 } @INJECT), "x\r\nX-Injected: 1") {
            my $path = path_of($r, $f);
            my @fields = ('zzz');
            if ($type eq 'text') {
                push @fields, $path unless free_text_ok($v, $min, $max);
            } elsif ($type eq 'email') {
                push @fields, $path unless ($v =~ tr/@//) == 1 && $v !~ /^\@|\@\z/ && free_text_ok($v, 1, 254);
            } elsif ($type eq 'account') {
                push @fields, $path unless free_text_ok($v, 1, 34);
            } else {
                push @fields, $path;    # money and currency: never
            }
            invalid($r, "$f = " . label($v) . ' with an unknown field', body_with($r, $f => $v, zzz => 1),
                [ sort @fields ]);
        }
    }
}
for my $v (@INJECT) {
    my $r = $ROUTE{rules};
    invalid($r, 'rules[0].currency = ' . label($v), body_with($r, 'rules[0].currency' => $v),
        ['rules[0].currency']);
    invalid($r, 'rules[0].minAmount = ' . label($v), body_with($r, 'rules[0].minAmount' => $v),
        ['rules[0].minAmount']);
    invalid($ROUTE{users}, 'roles = [' . label($v) . ']', body_with($ROUTE{users}, roles => [$v]), ['roles']);
    invalid($ROUTE{users}, 'a field named ' . label($v), body_with($ROUTE{users}, $v => 1), [$v]);
}

# -- 10. headers: Idempotency-Key and If-Match, overlong and CR/LF-bearing (raw sockets).
my $BAD_REQUEST = [ 400, 'BAD_REQUEST' ];
my $KEY_INVALID = [ 400, 'IDEMPOTENCY_KEY_INVALID' ];
my @KEY_LINES = (
    [ '256 characters'            => 'k' x 256,                           $KEY_INVALID ],
    [ '1,000 characters'          => 'k' x 1000,                          $KEY_INVALID ],
    [ '5,000 characters'          => 'k' x 5000,                          $KEY_INVALID ],
    [ 'a 258-character sf-string' => '"' . ('k' x 256) . '"',             $KEY_INVALID ],
    [ '9,000 characters (nginx)'  => 'k' x 9000,                          $BAD_REQUEST ],
    [ 'a bare CR inside'          => "abc\rdef",                          $BAD_REQUEST ],
    [ 'CR CR LF (nginx drops a CR)' => "a b\r",                            $KEY_INVALID ],
    [ 'obs-fold (CRLF SP)'        => "abc\r\n def",                       $BAD_REQUEST ],
    [ 'obs-fold (CRLF HT)'        => "abc\r\n\tdef",                      $BAD_REQUEST ],
    [ 'a NUL inside'              => "a\0b",                              $BAD_REQUEST ],
    [ 'a bare LF ending an invalid key' => "a b\nX-Injected: 1",          $KEY_INVALID ],
    [ 'a bare LF inside a quote'  => "\"abc\nX-Injected: 1\"",            $KEY_INVALID ],
    [ 'a bare LF right away'      => "\nX-Injected: 1",                   $KEY_INVALID ],
    [ 'a DEL'                     => "k\x7Fy",                            $KEY_INVALID ],
    [ 'a tab'                     => "k\ty",                              $KEY_INVALID ],
    [ 'latin-1 byte'              => "k\xE9y",                            $KEY_INVALID ],
    [ 'UTF-8 bytes'               => "k\xC3\xA9y",                        $KEY_INVALID ],
    [ 'an overlong UTF-8 slash'   => "k\xC0\xAFy",                        $KEY_INVALID ],
    [ 'empty'                     => '',                                  $KEY_INVALID ],
    [ 'only spaces'               => '   ',                               $KEY_INVALID ],
    [ 'an empty sf-string'        => '""',                                $KEY_INVALID ],
    [ 'an unterminated sf-string' => '"abc',                              $KEY_INVALID ],
    [ 'a bad escape'              => '"a\nb"',                            $KEY_INVALID ],
    [ 'bytes after the quote'     => '"abc";x',                           $KEY_INVALID ],
    [ 'a list'                    => 'a, b',                              $KEY_INVALID ],
    [ 'a space inside'            => 'a b',                               $KEY_INVALID ],
);
my @IF_MATCH = (
    [ '5,000 digits'         => '"' . ('1' x 5000) . '"' ],
    [ 'a weak current tag'   => 'W/"%v"' ],
    [ 'unquoted current'     => '%v' ],
    [ 'unterminated'         => '"%v' ],
    [ 'garbage after'        => '"%v" x' ],
    [ 'an empty tag'         => '""' ],
    [ 'a space in the tag'   => '"%v "' ],
    [ 'a leading zero'       => '"0%v"' ],
    [ 'negative'             => '"-1"' ],
    [ '23 digits'            => '"99999999999999999999999"' ],
    [ 'a latin-1 byte'       => "\"\xE9\"" ],
    [ 'a stale tag, then LF and a header' => "\"999\"\nX-Injected: 1" ],
    [ 'a list of stale tags' => '"998", "999"' ],
    [ 'a semicolon list'     => '"%v";"%v"' ],
    [ 'a star in a list'     => '"999", *' ],
    [ 'a stale tag'          => '"999"' ],
    [ 'a stale tag, CR CR LF (nginx drops a CR)' => "\"999\"\r" ],
);
my @IF_MATCH_NGINX = (
    [ '9,000 characters' => '"' . ('1' x 9000) . '"' ],
    [ 'CR inside'        => "\"%v\rX\"" ],
    [ 'obs-fold'         => "\"999\"\r\n \"%v\"" ],
    [ 'a NUL'            => "\"%v\0\"" ],
    [ 'two headers'      => "\"%v\"\r\nIf-Match: \"%v\"" ],
);
my @OBJECT_ROUTES = grep { $_->{version} } @ROUTES;
my $delete_route = { name => 'delete', method => 'DELETE', path => "/api/v1/requests/$draft_req",
    token => $creator->{token}, version => [ requests => $draft_req ], base => {} };
my @IDEM_ROUTES = grep { $_->{idem} } @ROUTES;
spread(\@KEY_LINES, sub {
    my ($r, $k) = @_;
    case($r, 'Idempotency-Key ' . $k->[0], expect => $k->[2], details => {},
        raw => raw_request($r, body => valid_body($r),
            lines => [ 'Content-Type: application/json', "Idempotency-Key: $k->[1]" ]));
}, [ $ROUTE{users} ], [ grep { $_->{name} ne 'users' } @IDEM_ROUTES ]);
for my $r (@IDEM_ROUTES) {
    my $body = valid_body($r);
    case($r, 'two Idempotency-Key headers (one value each, combined: a list)',
        expect => $KEY_INVALID, details => {}, raw => raw_request($r, body => $body,
            lines => [ 'Content-Type: application/json', 'Idempotency-Key: ' . Remit::Test::random_key(),
                'Idempotency-Key: ' . Remit::Test::random_key() ]));
    case($r, 'Idempotency_Key (underscore): no key', expect => [ 400, 'IDEMPOTENCY_KEY_MISSING' ],
        details => {}, raw => raw_request($r, body => $body,
            lines => [ 'Content-Type: application/json', 'Idempotency_Key: k-underscore' ]));
}
my %VERSION = map { $_->{name} => version_of(@{ $_->{version} }) } @OBJECT_ROUTES, $delete_route;
sub if_match_case {
    my ($r, $m, $expect) = @_;
    my $v = $VERSION{ $r->{name} };
    my $body = $r->{method} eq 'DELETE' ? undef : valid_body($r);
    (my $val = $m->[1]) =~ s/%v/$v/g;
    case($r, "If-Match $m->[0]" . ($expect ? ' (nginx)' : ''),
        expect => $expect // [ 412, 'VERSION_CONFLICT' ],
        details => $expect ? {} : { currentVersion => $v },
        raw => raw_request($r, body => $body, lines => [
            ($body ? 'Content-Type: application/json' : ()),
            ($r->{idem} ? 'Idempotency-Key: ' . Remit::Test::random_key() : ()),
            "If-Match: $val" ]));
}
my @IF_OTHERS = ((grep { $_->{name} ne 'patch' } @OBJECT_ROUTES), $delete_route);
spread(\@IF_MATCH, sub { if_match_case(@_) }, [ $ROUTE{patch} ], \@IF_OTHERS);
spread(\@IF_MATCH_NGINX, sub { if_match_case(@_, $BAD_REQUEST) }, [ $ROUTE{patch} ], \@IF_OTHERS);

# -- 11. Content-Type: wrong, missing, empty, repeated.
my @CT_BAD = ('text/plain', 'text/json', 'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x', 'application/json; charset=latin1',
    'application/json; charset=utf-16', 'application/json; charset="latin1"',
    'application/json;charset=utf-8;x=y', 'application/json; charset=utf-8; charset=latin1',
    'application/jsonp', 'application/json-patch+json', 'application/merge-patch+json',
    'application/problem+json', 'application/ld+json', 'application/vnd.api+json',
    'application/*', '*/*', 'application/json, text/plain', 'application / json', 'json',
    'application/json;', 'application/json; charset=', 'application/json; foo',
    'application/xml', 'text/html; charset=utf-8', 'application/octet-stream');
spread(\@CT_BAD, sub {
    my ($r, $ct) = @_;
    case($r, "Content-Type: $ct", body => valid_body($r), headers => { 'Content-Type' => $ct },
        expect => [ 415, 'UNSUPPORTED_MEDIA_TYPE' ], details => {});
});
for my $r (@ROUTES) {
    my $body = valid_body($r);
    my @key = $r->{idem} ? ('Idempotency-Key: ' . Remit::Test::random_key()) : ();
    case($r, 'no Content-Type', expect => [ 415, 'UNSUPPORTED_MEDIA_TYPE' ], details => {},
        raw => raw_request($r, body => $body, lines => [@key]));
    case($r, 'an empty Content-Type', expect => [ 415, 'UNSUPPORTED_MEDIA_TYPE' ], details => {},
        raw => raw_request($r, body => $body, lines => [ @key, 'Content-Type:' ]));
    case($r, 'Content-Type text/plain then application/json',
        expect => [ 415, 'UNSUPPORTED_MEDIA_TYPE' ], details => {},
        raw => raw_request($r, body => $body,
            lines => [ @key, 'Content-Type: text/plain', 'Content-Type: application/json' ]));
    case($r, 'Content-Type application/json then text/plain',
        expect => [ 415, 'UNSUPPORTED_MEDIA_TYPE' ], details => {},
        raw => raw_request($r, body => $body,
            lines => [ @key, 'Content-Type: application/json', 'Content-Type: text/plain' ]));
    case($r, 'Content-Type with a NUL (nginx)', expect => $BAD_REQUEST, details => {},
        raw => raw_request($r, body => $body, lines => [ @key, "Content-Type: application/json\0" ]));
}

# -- 12. Content-Length lies, framing, and bodies over the limit (raw sockets).
for my $r (@ROUTES) {
    my $body = template($r);
    my @key = $r->{idem} ? ('Idempotency-Key: ' . Remit::Test::random_key()) : ();
    my @ct = ('Content-Type: application/json', @key);
    case($r, 'Content-Length half the body', expect => [ 400, 'MALFORMED_JSON' ], details => {},
        raw => raw_request($r, body => $body, cl => int(length($body) / 2), lines => \@ct));
    case($r, 'Content-Length 1', expect => [ 400, 'MALFORMED_JSON' ], details => {},
        raw => raw_request($r, body => $body, cl => 1, lines => \@ct));
    case($r, 'Content-Length one short', expect => [ 400, 'MALFORMED_JSON' ], details => {},
        raw => raw_request($r, body => $body, cl => length($body) - 1, lines => \@ct));
    if (!$r->{empty_ok}) {
        if ($r->{method} eq 'POST') {
            case($r, 'Content-Length 0 with a body (empty: same as {})',
                expect => [ 400, 'VALIDATION_ERROR' ], fields => $r->{required},
                raw => raw_request($r, body => $body, cl => 0, lines => \@ct));
        } else {
            case($r, 'Content-Length 0 with a body (empty)', expect => [ 400, 'MALFORMED_JSON' ],
                details => {}, raw => raw_request($r, body => $body, cl => 0, lines => \@ct));
        }
    }
    # A smuggled second request inside the announced body is body, not a request; one after
    # the announced body on a Connection: close is never run.
    my $smuggled = "POST /api/v1/batches HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
        . "$creator->{token}\r\nContent-Type: application/json\r\nIdempotency-Key: smuggle\r\n"
        . "Content-Length: 15\r\n\r\n{\"name\":\"Smug\"}";
    case($r, 'Content-Length covering a smuggled request', expect => [ 400, 'MALFORMED_JSON' ],
        details => {}, raw => raw_request($r, body => $body . $smuggled, lines => \@ct));
    case($r, 'Content-Length short, a request after it (Connection: close)',
        expect => [ 400, 'MALFORMED_JSON' ], details => {},
        raw => raw_request($r, body => substr($body, 0, -1), lines => \@ct) . $smuggled);
    case($r, 'Content-Length longer than the body, client gives up', half_close => 1,
        any => [ [0], $BAD_REQUEST, [ 408, undef ] ],
        raw => raw_request($r, body => $body, cl => length($body) + 100, lines => \@ct));
    for my $cl ('-1', 'abc', '+10', '0x10', '1e2', '99999999999999999999') {
        case($r, "Content-Length '$cl' (nginx)", expect => $BAD_REQUEST, details => {},
            raw => raw_request($r, body => $body, cl => $cl, lines => \@ct));
    }
    case($r, 'two different Content-Lengths (nginx)', expect => $BAD_REQUEST, details => {},
        raw => raw_request($r, body => $body, lines => [ @ct, 'Content-Length: 3' ]));
    case($r, 'Content-Length and chunked (nginx)', expect => $BAD_REQUEST, details => {},
        raw => raw_request($r, body => sprintf("%x\r\n%s\r\n0\r\n\r\n", length $body, $body),
            lines => [ @ct, 'Transfer-Encoding: chunked' ], cl => 10));
    case($r, 'a bad chunk size (nginx)', expect => $BAD_REQUEST, details => {},
        raw => raw_request($r, body => "zz\r\n$body\r\n0\r\n\r\n", cl => undef,
            lines => [ @ct, 'Transfer-Encoding: chunked' ]));
    case($r, 'Transfer-Encoding gzip (nginx)', expect => [ 501, 'NOT_IMPLEMENTED' ], details => {},
        raw => raw_request($r, body => $body, cl => undef, lines => [ @ct, 'Transfer-Encoding: gzip' ]));
    case($r, 'chunked, a truncated JSON body', expect => [ 400, 'MALFORMED_JSON' ], details => {},
        raw => raw_request($r, body => sprintf("%x\r\n%s\r\n0\r\n\r\n", length($body) - 1,
            substr($body, 0, -1)), cl => undef, lines => [ @ct, 'Transfer-Encoding: chunked' ]));
    # Over the limit: 65,537 bytes of an otherwise valid body, announced or chunked, and a
    # Content-Length that announces more than the limit.
    my $valid = valid_body($r);
    my $pad = $valid . (' ' x (65537 - length $valid));
    case($r, '65,537 bytes', body => $pad, expect => [ 413, 'PAYLOAD_TOO_LARGE' ], details => {});
    case($r, '65,537 bytes chunked', expect => [ 413, 'PAYLOAD_TOO_LARGE' ], details => {},
        raw => raw_request($r, body => sprintf("%x\r\n%s\r\n0\r\n\r\n", length $pad, $pad), cl => undef,
            lines => [ @ct, 'Transfer-Encoding: chunked' ]));
    case($r, 'Content-Length 70,000, a short body', expect => [ 413, 'PAYLOAD_TOO_LARGE' ],
        details => {}, raw => raw_request($r, body => $body, cl => 70000, lines => \@ct));
    case($r, '1 MB', expect => [ 413, 'PAYLOAD_TOO_LARGE' ], details => {},
        raw => raw_request($r, body => $valid . (' ' x 1_000_000), lines => \@ct));
    # 65,536 bytes are read and parsed: an unknown field makes it fail validation.
    my $edge = body_with($r, zz => 1);
    invalid($r, '65,536 bytes (not 413)', $edge . (' ' x (65536 - length $edge)), ['zz']);
}

# -- 13. query strings on mutations, wrong states, and precedence (the order in doc/openapi.yaml#Conventions).
for my $r (@ROUTES) {
    my $body = valid_body($r);
    for my $q ('dryRun=1', 'status=PAID', 'limit=5', 'x', '%ff=1', 'a=%00', 'a=%zz', 'a=1&a=1') {
        my ($name) = $q =~ /^([^=]*)/;
        my $field = $q =~ /^%ff/ ? 'query' : $name;
        invalid($r, "query ?$q", $body, [$field], path => "$r->{path}?$q");
    }
    # 401 before everything.
    case($r, 'no token, everything else wrong too', body => '{bad', idem => 0, token => '',
        headers => { 'Content-Type' => 'text/plain' }, expect => [ 401, 'UNAUTHENTICATED' ],
        details => {});
    case($r, 'a revoked token', body => $body, token => $revoked->{token},
        expect => [ 401, 'UNAUTHENTICATED' ], details => {});
    case($r, 'an unknown token of the right shape', body => $body,
        token => 'rmt_' . ('A' x 43), expect => [ 401, 'UNAUTHENTICATED' ], details => {});
    # 403 before 415, MALFORMED_JSON and the key.
    case($r, 'a VIEWER, text/plain, bad JSON, no key', body => '{bad', idem => 0,
        token => $viewer->{token}, headers => { 'Content-Type' => 'text/plain' },
        expect => [ 403, 'FORBIDDEN' ], details => {});
    # 415 before MALFORMED_JSON and the key.
    case($r, 'text/plain, bad JSON, no key', body => '{bad', idem => 0,
        headers => { 'Content-Type' => 'text/plain' }, expect => [ 415, 'UNSUPPORTED_MEDIA_TYPE' ],
        details => {});
    next unless $r->{idem};
    # MALFORMED_JSON before the key; the key before validation.
    malformed($r, 'bad JSON, no key', '{bad', idem => 0);
    malformed($r, 'bad JSON, a bad key', '{bad', idem => 'a b');
    case($r, 'no key, an unknown field', body => body_with($r, zz => 1), idem => 0,
        expect => [ 400, 'IDEMPOTENCY_KEY_MISSING' ], details => {});
    case($r, 'a bad key, an unknown field', body => body_with($r, zz => 1), idem => '',
        expect => [ 400, 'IDEMPOTENCY_KEY_INVALID' ], details => {});
}
# The key's reuse (422) comes before the object's 404, the 412 and validation.
{
    my @reuse = (
        [ $ROUTE{'add-request'}, '/api/v1/batches/999999999/requests', '{"zz":1}' ],
        [ $ROUTE{approve}, '/api/v1/requests/999999999/approve', '{"zz":1}' ],
        [ $ROUTE{batches}, '/api/v1/batches', '{"name":"Keyed","zz":1}' ],
        [ $ROUTE{submit}, "/api/v1/batches/$draft_batch/submit", '{}' ],
        [ $ROUTE{reject}, "/api/v1/requests/$pending_req/reject", '{}' ],
    );
    for my $u (@reuse) {
        my ($r, $path, $body) = @$u;
        case($r, "a used key on $path", path => $path, body => $body, idem => $USED_KEY,
            headers => { 'If-Match' => '"999"' },
            expect => [ 422, 'IDEMPOTENCY_KEY_REUSED' ], details => {});
    }
}
# An unknown object before 412 and validation; 412 before validation; validation before state.
for my $r (@OBJECT_ROUTES) {
    (my $gone = $r->{path}) =~ s{/(batches|requests)/\d+}{/$1/999999999};
    case($r, 'an unknown object, a stale If-Match, invalid fields', path => $gone,
        body => body_with($r, zz => 1), headers => { 'If-Match' => '"999"' },
        expect => [ 404, 'NOT_FOUND' ], details => {});
    case($r, 'a stale If-Match, invalid fields', body => body_with($r, zz => 1),
        headers => { 'If-Match' => '"999"' }, expect => [ 412, 'VERSION_CONFLICT' ],
        details => { currentVersion => $VERSION{ $r->{name} } });
}
{
    my %wrong = (    # route => [path in the wrong state, its status]
        'add-request' => [ "/api/v1/batches/$pending_batch/requests", 'SUBMITTED' ],
        submit        => [ "/api/v1/batches/$pending_batch/submit", 'SUBMITTED' ],
        cancel        => [ "/api/v1/batches/$cancelled_batch/cancel", 'CANCELLED' ],
        patch         => [ "/api/v1/requests/$pending_req", 'PENDING_APPROVAL' ],
        approve       => [ "/api/v1/requests/$approved_req/approve", 'APPROVED' ],
        reject        => [ "/api/v1/requests/$draft_req/reject", 'DRAFT' ],
        'mark-paid'   => [ "/api/v1/requests/$pending_req/mark-paid", 'PENDING_APPROVAL' ],
    );
    for my $name (sort keys %wrong) {
        my $r = $ROUTE{$name};
        my ($path, $status) = @{ $wrong{$name} };
        my $valid = valid_body($r);
        case($r, "$status: a valid body", path => $path, body => $valid,
            expect => [ 409, 'INVALID_STATE' ], details => { status => $status });
        invalid($r, "$status: an invalid body (validation first)", body_with($r, zz => 1), ['zz'],
            path => $path);
    }
    case($ROUTE{cancel}, 'a batch with an APPROVED request',
        path => "/api/v1/batches/$approved_batch/cancel", body => '{}',
        expect => [ 409, 'INVALID_STATE' ], details => { status => 'SUBMITTED' });
    case($ROUTE{submit}, 'an empty batch', path => "/api/v1/batches/$empty_batch/submit", body => '{}',
        expect => [ 409, 'INVALID_STATE' ], details => { status => 'DRAFT' });
    case($delete_route, 'PENDING_APPROVAL', path => "/api/v1/requests/$pending_req",
        expect => [ 409, 'INVALID_STATE' ], details => { status => 'PENDING_APPROVAL' });
    for my $what (qw(approve reject)) {
        my $r = $ROUTE{$what};
        case($r, 'own request (made it)', path => "/api/v1/requests/$own_req/$what",
            token => $maker->{token}, body => valid_body($r),
            expect => [ 403, 'SELF_APPROVAL_FORBIDDEN' ], details => {});
        case($r, 'own request (submitted its batch)', path => "/api/v1/requests/$sub_req/$what",
            token => $maker->{token}, body => valid_body($r),
            expect => [ 403, 'SELF_APPROVAL_FORBIDDEN' ], details => {});
        case($r, 'APPROVED, decided by them: state first', path => "/api/v1/requests/$approved_req/$what",
            token => $approver->{token}, body => valid_body($r),
            expect => [ 409, 'INVALID_STATE' ], details => { status => 'APPROVED' });
        case($r, 'already decided', path => "/api/v1/requests/$gbp_req/$what",
            token => $approver->{token}, body => valid_body($r),
            expect => [ 409, 'ALREADY_DECIDED' ], details => {});
        invalid($r, 'already decided, an invalid body', body_with($r, zz => 1), ['zz'],
            path => "/api/v1/requests/$gbp_req/$what");
    }
    my ($admin_email) = $s->dbh->selectrow_array('SELECT email FROM users WHERE id = ?', undef,
        $org->{userId});
    case($ROUTE{users}, 'an existing email in upper case',
        body => body_with($ROUTE{users}, email => uc $admin_email),
        expect => [ 409, 'CONFLICT' ], fields => ['email']);
}

# ---- running the catalogue -------------------------------------------------------------

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

# ---- what must succeed -----------------------------------------------------------------

# The stored value of a column, decoded from UTF-8.
sub stored {
    my ($sql, @bind) = @_;
    my ($v) = $s->dbh->selectrow_array($sql, undef, @bind);
    utf8::decode($v) if defined $v && !utf8::is_utf8($v);
    return $v;
}

subtest 'valid but unusual input succeeds and is stored as sent' => sub {
    my $emoji = "\x{1F600}\x{1F468}\x{200D}\x{1F469}\x{200D}\x{1F467}";
    my $name140 = join '', map { ("\x{1F4B8}", "\x{4E2D}", 'a', "\x{E9}")[$_ % 4] } 1 .. 140;
    is length $name140, 140, '140 code points';

    my $r = $s->req(POST => '/api/v1/users', token => $admin, idem => 1,
        json => { email => "emoji$$\@example.test", name => $name140, roles => ['VIEWER'] });
    is $r->{status}, 201, 'user: a 140-code-point name (emoji, CJK, accents): 201' or diag $r->{body};
    is $r->{json}{data}{name}, $name140, 'user: the name as sent';
    is stored('SELECT name FROM users WHERE id = ?', $r->{json}{data}{id}), $name140,
        'user: stored as full UTF-8';

    $r = $s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => 1,
        json => { name => "\x{1F600}" x 140, description => "$emoji " x 100 });
    is $r->{status}, 201, 'batch: 140 emoji as the name: 201' or diag $r->{body};
    my $bid = $r->{json}{data}{id};
    is stored('SELECT name FROM batches WHERE id = ?', $bid), "\x{1F600}" x 140, 'batch: stored';
    is stored('SELECT description FROM batches WHERE id = ?', $bid), "$emoji " x 100,
        'batch: ZWJ sequences in the description, stored';

    my @money = (
        [ '1000.00 as a JSON number'    => \'1000.00', 'USD', '1000.00' ],
        [ '1000 as a JSON number'       => \'1000',    'USD', '1000.00' ],
        [ '"5" USD'                     => '5',        'USD', '5.00' ],
        [ 'JPY without decimals'        => '1000',     'JPY', '1000' ],
        [ 'JPY as a JSON number'        => \'1500',    'JPY', '1500' ],
        [ 'KWD with 3 decimals'         => '1.234',    'KWD', '1.234' ],
        [ 'KWD "5"'                     => '5',        'KWD', '5.000' ],
        [ 'BHD 0.001 as a JSON number'  => \'0.001',   'BHD', '0.001' ],
        [ '15 integer digits'           => '999999999999999.99', 'USD', '999999999999999.99' ],
        [ 'the smallest USD amount'     => '0.01',     'USD', '0.01' ],
        [ 'one decimal'                 => '5.1',      'USD', '5.10' ],
    );
    for my $m (@money) {
        my ($name, $amount, $cur, $want) = @$m;
        my $body = body_with({ base => {%REQ} }, amount => $amount, currency => $cur);
        $r = $s->req(POST => "/api/v1/batches/$bid/requests", token => $creator->{token}, idem => 1,
            raw => $body);
        is $r->{status}, 201, "request: $name: 201" or diag $r->{body};
        is $r->{json}{data}{amount}, $want, "request: $name: amount $want";
    }
    $r = $s->req(POST => "/api/v1/batches/$bid/requests", token => $creator->{token}, idem => 1,
        raw => '{"amount":"10.00","currency":"US\u0044","beneficiaryName":"\ud83d\ude00 Ann \/ \"Q\"",'
            . '"beneficiaryAccount":"gb82 west 1234 5698 7654 32","purpose":"\u00e9t\u00e9 \u2028"}');
    is $r->{status}, 201, 'request: escapes, a surrogate pair, U+2028 (not Cc): 201' or diag $r->{body};
    is $r->{json}{data}{currency}, 'USD', 'request: US\u0044 is USD';
    is $r->{json}{data}{beneficiaryName}, "\x{1F600} Ann / \"Q\"", 'request: decoded name';
    is $r->{json}{data}{beneficiaryAccount}, $IBAN, 'request: the IBAN normalised';
    is $r->{json}{data}{purpose}, "\x{e9}t\x{e9} \x{2028}", 'request: purpose';
    my $rid = $r->{json}{data}{id};
    $r = $s->req(POST => "/api/v1/batches/$bid/requests", token => $creator->{token}, idem => 1,
        json => { %REQ, beneficiaryName => $name140, purpose => 'p' x 140,
            beneficiaryAccount => "\x{4E2D}" x 34 });
    is $r->{status}, 201, 'request: 140-code-point name, 140 purpose, 34-character account: 201'
        or diag $r->{body};

    my $v = version_of(requests => $rid);
    $r = $s->req(PATCH => "/api/v1/requests/$rid", token => $creator->{token},
        json => { purpose => undef, amount => undef });
    is $r->{status}, 200, 'PATCH of nulls only: 200';
    is $r->{json}{data}{version}, $v, 'PATCH of nulls only: no new version';
    $r = $s->req(PATCH => "/api/v1/requests/$rid", token => $creator->{token}, raw => '{}');
    is $r->{status}, 200, 'PATCH {}: 200';
    is $r->{json}{data}{version}, $v, 'PATCH {}: no new version';

    $r = $s->req(POST => "/api/v1/users/$viewer->{id}/tokens", token => $admin,
        json => { name => undef }, headers => { 'Idempotency-Key' => 'a b' });
    is $r->{status}, 201, 'token: name null, an invalid Idempotency-Key (ignored): 201';
    $r = $s->req(PUT => '/api/v1/approval-rules', token => $admin,
        raw => '{"rules":[{"currency":"GBP","minAmount":0,"approvals":2},'
            . '{"currency":"KWD","minAmount":"0.5","approvals":10}]}');
    is $r->{status}, 200, 'rules: minAmount 0 as a number, approvals 10: 200' or diag $r->{body};
    is_deeply [ map { $_->{minAmount} } @{ $r->{json}{data}{rules} } ], [ '0.00', '0.500' ],
        'rules: minAmount normalised';

    my $pb = new_batch();
    my @p = map { add_request($pb) } 1 .. 2;
    submit($pb);
    $r = $s->req(POST => "/api/v1/requests/$p[0]/approve", token => $approver->{token}, idem => 1,
        json => { comment => "\x{1F44D}" x 500 });
    is $r->{status}, 200, 'approve: a 500-emoji comment: 200' or diag $r->{body};
    $r = $s->req(POST => "/api/v1/requests/$p[0]/mark-paid", token => $treasurer->{token}, idem => 1,
        json => { paymentReference => "\x{20AC}" x 35 });
    is $r->{status}, 200, 'mark-paid: a 35-character reference: 200' or diag $r->{body};
    $r = $s->req(POST => "/api/v1/requests/$p[1]/reject", token => $approver->{token}, idem => 1,
        json => { comment => 'c' x 500 });
    is $r->{status}, 200, 'reject: a 500-character comment: 200' or diag $r->{body};
};

# ---- injection strings are stored byte for byte ----------------------------------------

subtest 'SQL and header injection strings are stored verbatim, never run' => sub {
    my @tables = map { $_->[0] } @{ $s->dbh->selectall_arrayref('SHOW TABLES') };
    my $before = snapshot();
    my $n = @INJECT;
    my $ib = new_batch();
    my @ids = map { add_request($ib) } 1 .. 3 * $n;
    submit($ib);
    my @pending = splice @ids, 0, 2 * $n;
    act($approver2, $_, 'approve') for @ids;    # approved, for mark-paid
    my $stored = 0;
    # One request's value: 2xx, echoed as sent (when the response holds it), stored as sent.
    my $check = sub {
        my ($what, $res, $field, $sql, $id, $want) = @_;
        my @why;
        push @why, "status $res->{status}: $res->{body}" unless $res->{status} =~ /^20[01]$/;
        my $echo = defined $field && ref $res->{json} eq 'HASH' ? $res->{json}{data}{$field} : $want;
        push @why, 'the response holds ' . label($echo // 'undef') if ($echo // "\0") ne $want;
        my $got = defined $id ? stored($sql, $id) : undef;
        push @why, 'stored ' . label($got // 'undef') if ($got // "\0") ne $want;
        $stored++ unless @why;
        ok !@why, label("$what = $want: stored verbatim") or diag join "\n", @why;
    };
    for my $i (0 .. $#INJECT) {
        my $v = $INJECT[$i];
        my $short = substr $v, 0, 34;
        my $r = $s->req(POST => '/api/v1/users', token => $admin, idem => 1,
            json => { email => "inj$i-$$\@example.test", name => $v, roles => ['VIEWER'] });
        $check->('user name', $r, 'name', 'SELECT name FROM users WHERE id = ?', $r->{json}{data}{id}, $v);
        (my $local = $v) =~ s/[\@\s\x{0}-\x{1F}]//g;
        my $email = "x$local$i\@example.test";
        $r = $s->req(POST => '/api/v1/users', token => $admin, idem => 1,
            json => { email => $email, name => 'I', roles => ['VIEWER'] });
        $check->('user email', $r, 'email', 'SELECT email FROM users WHERE id = ?', $r->{json}{data}{id}, $email);
        $r = $s->req(POST => "/api/v1/users/$viewer->{id}/tokens", token => $admin, json => { name => $v });
        $check->('token name', $r, 'name', 'SELECT name FROM tokens WHERE id = ?', $r->{json}{data}{id}, $v);
        $r = $s->req(POST => '/api/v1/batches', token => $creator->{token}, idem => 1,
            json => { name => $v, description => $v });
        my $bid = $r->{json}{data}{id};
        $check->('batch name', $r, 'name', 'SELECT name FROM batches WHERE id = ?', $bid, $v);
        $check->('batch description', $r, 'description', 'SELECT description FROM batches WHERE id = ?', $bid, $v);
        $r = $s->req(POST => "/api/v1/batches/$bid/requests", token => $creator->{token},
            idem => 1, json => { %REQ, beneficiaryName => $v, purpose => $v, beneficiaryAccount => $short });
        my $rid = $r->{json}{data}{id};
        $check->('beneficiaryName', $r, 'beneficiaryName',
            'SELECT beneficiary_name FROM payment_requests WHERE id = ?', $rid, $v);
        $check->('purpose', $r, 'purpose', 'SELECT purpose FROM payment_requests WHERE id = ?', $rid, $v);
        $check->('beneficiaryAccount', $r, 'beneficiaryAccount',
            'SELECT beneficiary_account FROM payment_requests WHERE id = ?', $rid, $short);
        $r = $s->req(PATCH => "/api/v1/requests/$rid", token => $creator->{token},
            json => { beneficiaryName => "$v!", purpose => "!$v" });
        $check->('PATCH beneficiaryName', $r, 'beneficiaryName',
            'SELECT beneficiary_name FROM payment_requests WHERE id = ?', $rid, "$v!");
        $check->('PATCH purpose', $r, 'purpose', 'SELECT purpose FROM payment_requests WHERE id = ?', $rid, "!$v");
        $r = $s->req(POST => "/api/v1/requests/$pending[$i]/approve", token => $approver->{token},
            idem => 1, json => { comment => $v });
        $check->('approve comment', $r, undef, 'SELECT comment FROM decisions WHERE request_id = ?',
            $pending[$i], $v);
        $r = $s->req(POST => "/api/v1/requests/$pending[$n + $i]/reject", token => $approver->{token},
            idem => 1, json => { comment => $v });
        $check->('reject comment', $r, undef, 'SELECT comment FROM decisions WHERE request_id = ?',
            $pending[$n + $i], $v);
        $r = $s->req(POST => "/api/v1/requests/$ids[$i]/mark-paid", token => $treasurer->{token},
            idem => 1, json => { paymentReference => $short });
        $check->('paymentReference', $r, 'paymentReference',
            'SELECT payment_reference FROM payment_requests WHERE id = ?', $ids[$i], $short);
    }
    my @after_tables = map { $_->[0] } @{ $s->dbh->selectall_arrayref('SHOW TABLES') };
    is_deeply \@after_tables, \@tables, 'every table is still there';
    my $after = snapshot();
    ok !(grep { $after->{$_} < $before->{$_} } keys %$after), 'no table lost a row';
    diag "injection strings: " . scalar(@INJECT) . " strings, $stored values stored verbatim";
    my $v = $s->remit('verify-audit');
    is $v->{exit}, 0, 'the audit chains still verify' or diag $v->{stdout}, $v->{stderr};
};

done_testing;
