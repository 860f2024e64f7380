use strict;
use warnings;

use Digest::MD5 qw(md5_hex);
use IO::Handle;
use POSIX ();
use Test::More;
use Remit::Test;

# A model test of payment files (API §9): seeded and reproducible in its choices, several
# forked clients at once, each round every client takes one random step (make a file of a
# few APPROVED requests, void a file, confirm a file, mark a request paid by hand), and
# after every round the invariants are checked against the database:
#   - each request is in at most one live (INCLUDED or PAID) item;
#   - the PAID amount never exceeds the APPROVED (obligated) amount, and every PAID request
#     has its OBLIGATION;
#   - SETTLEMENT entries are exactly the PAID requests, one each;
#   - a live item agrees with its request (INCLUDED: APPROVED; PAID: PAID); a SETTLED file
#     has no INCLUDED item, a VOIDED file only VOIDED ones;
#   - obligated − settled = the APPROVED requests not yet paid;
#   - every file's items, parsed back out of its pain.001 (IBAN, amount, end-to-end id),
#     equal the file's items.
# REMIT_MODEL_STEPS (default 1500) and REMIT_MODEL_SEED (default 25) set the run; the last
# test names the steps run and the violations found.
my $STEPS = $ENV{REMIT_MODEL_STEPS} // 1500;
my $SEED = $ENV{REMIT_MODEL_SEED} // 25;
my $CLIENTS = 3;
my $POOL = 40;    # APPROVED requests kept available

my $s = Remit::Test->stack(start => 0);
$s->conf_set(workers => 4);
$s->start;
my $dbh = $s->dbh;
my $org = $s->new_org;
my $admin = $org->{token};
my $creator = $s->new_user($admin, roles => ['CREATOR']);
my $approver = $s->new_user($admin, roles => ['APPROVER']);
my @treasurers = map { $s->new_user($admin, roles => ['TREASURER']) } 1 .. $CLIENTS;
my @IBANS = qw(DE89370400440532013000 FR1420041010050500013M02606 NL91ABNA0417164300
    ES9121000418450200051332 BE68539007547034 AT611904300234573201);

sub ok_req {
    my ($want, @req) = @_;
    my $r = $s->req(@req);
    die "$req[0] $req[1]: $r->{status} $r->{body}" unless $r->{status} == $want;
    return $r->{json}{data};
}
ok_req(200, PUT => '/api/v1/debtor-accounts', token => $admin, json => { accounts => [
    { currency => 'EUR', name => 'Acme & Söhne', iban => $IBANS[0], bic => 'COBADEFFXXX' } ] });

# Tops the organisation's APPROVED requests that are in no live file up to $POOL.
my $made = 0;
sub replenish {
    my $free = $dbh->selectrow_array(q{SELECT COUNT(*) FROM payment_requests r WHERE
        r.org_id = ? AND r.status = 'APPROVED' AND NOT EXISTS (SELECT 1 FROM payment_file_items i
        WHERE i.live_request_id = r.id)}, undef, $org->{orgId});
    return if $free >= $POOL / 2;
    my $bid = ok_req(201, POST => '/api/v1/batches', token => $creator->{token}, idem => 1,
        json => { name => 'model' })->{id};
    my @ids = map {
        $made++;
        ok_req(201, POST => "/api/v1/batches/$bid/requests", token => $creator->{token},
            idem => 1, json => { amount => sprintf('%d.%02d', 1 + $made % 97, $made % 100),
                currency => 'EUR', beneficiaryName => "Bénéficiaire $made & Co",
                beneficiaryAccount => $IBANS[$made % @IBANS], purpose => "model $made" })->{id}
    } 1 .. $POOL - $free;
    ok_req(200, POST => "/api/v1/batches/$bid/submit", token => $creator->{token}, idem => 1);
    ok_req(200, POST => "/api/v1/requests/$_/approve", token => $approver->{token}, idem => 1)
        for @ids;
}

# ---- one client's step -------------------------------------------------------------------

sub ids_of {
    my ($h, $sql) = @_;
    return @{ $h->selectcol_arrayref($sql, undef, $org->{orgId}) };
}

# One random step; returns "action status code" (code '' for success).
sub step {
    my ($h, $tok) = @_;
    my $dice = rand;
    my ($what, $r);
    if ($dice < 0.45) {
        my @free = ids_of($h, q{SELECT id FROM payment_requests WHERE org_id = ?
            AND status = 'APPROVED' ORDER BY id});
        return 'create none' unless @free;
        my @pick = map { $free[rand @free] } 1 .. 1 + int rand 5;
        my %seen;
        @pick = grep { !$seen{$_}++ } @pick;
        ($what, $r) = (create => $s->req(POST => '/api/v1/payment-files', token => $tok,
            idem => 1, json => { requestIds => [map {"$_"} @pick] }));
    } elsif ($dice < 0.65) {
        my @files = ids_of($h, q{SELECT id FROM payment_files WHERE org_id = ? AND status = 'CREATED'});
        return 'void none' unless @files;
        ($what, $r) = (void => $s->req(POST => "/api/v1/payment-files/$files[rand @files]/void",
            token => $tok, idem => 1, json => { reason => 'model' }));
    } elsif ($dice < 0.85) {
        my @files = ids_of($h, q{SELECT id FROM payment_files WHERE org_id = ? AND status = 'CREATED'});
        return 'confirm none' unless @files;
        ($what, $r) = (confirm => $s->req(POST => "/api/v1/payment-files/$files[rand @files]/confirm",
            token => $tok, idem => 1, json => {}));
    } else {
        my @appr = ids_of($h, q{SELECT id FROM payment_requests WHERE org_id = ? AND status = 'APPROVED'});
        return 'pay none' unless @appr;
        ($what, $r) = (pay => $s->req(POST => "/api/v1/requests/$appr[rand @appr]/mark-paid",
            token => $tok, idem => 1, json => {}));
    }
    my $code = ref $r->{json} eq 'HASH' && $r->{json}{error}
        ? ($r->{json}{error}{details}{reason} // $r->{json}{error}{details}{status}
            // $r->{json}{error}{code}) : '';
    return "$what $r->{status} $code";
}

# A client: waits for a line per round on its pipe, answers with its step's outcome.
sub client {
    my ($i) = @_;
    pipe my $cmd_r, my $cmd_w or die $!;
    pipe my $res_r, my $res_w or die $!;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $cmd_w;
        close $res_r;
        $res_w->autoflush(1);
        my $h = $s->new_dbh;
        while (defined(my $round = <$cmd_r>)) {
            chomp $round;
            # drand48 gives close seeds close first draws: mix them first.
            srand(hex substr md5_hex("$SEED-$round-$i"), 0, 8);
            my $out = eval { step($h, $treasurers[$i]{token}) } // "died $@";
            $out =~ s/\n/ /g;
            print $res_w "$out\n";
        }
        POSIX::_exit(0);
    }
    close $cmd_r;
    close $res_w;
    $cmd_w->autoflush(1);
    return { pid => $pid, cmd => $cmd_w, res => $res_r };
}

# ---- the invariants ------------------------------------------------------------------------

my %pain_checked;
sub violations {
    my @v;
    my $one = sub { my ($sql, $what) = @_;
        my $n = $dbh->selectrow_array($sql, undef, $org->{orgId});
        push @v, "$what ($n)" if $n };
    $one->(q{SELECT COUNT(*) FROM (SELECT request_id FROM payment_file_items WHERE org_id = ?
        AND status IN ('INCLUDED', 'PAID') GROUP BY request_id HAVING COUNT(*) > 1) x},
        'a request in two live items');
    $one->(q{SELECT COUNT(*) FROM payment_requests r WHERE r.org_id = ? AND r.status = 'PAID'
        AND NOT EXISTS (SELECT 1 FROM ledger_entries l WHERE l.request_id = r.id
        AND l.type = 'OBLIGATION')}, 'PAID without OBLIGATION');
    my ($paid, $obligated, $settled, $open) = $dbh->selectrow_array(q{SELECT
        (SELECT COALESCE(SUM(amount), 0) FROM payment_requests WHERE org_id = o.id AND status = 'PAID'),
        (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE org_id = o.id AND type = 'OBLIGATION'),
        (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE org_id = o.id AND type = 'SETTLEMENT'),
        (SELECT COALESCE(SUM(amount), 0) FROM payment_requests WHERE org_id = o.id AND status = 'APPROVED')
        FROM orgs o WHERE o.id = ?}, undef, $org->{orgId});
    push @v, "PAID $paid exceeds APPROVED $obligated" if $paid > $obligated;
    push @v, "obligated $obligated - settled $settled != approved and unpaid $open"
        if $obligated - $settled != $open;
    $one->(q{SELECT COUNT(*) FROM payment_requests r WHERE r.org_id = ? AND
        (r.status = 'PAID') <> EXISTS (SELECT 1 FROM ledger_entries l WHERE l.request_id = r.id
        AND l.type = 'SETTLEMENT')}, 'SETTLEMENT entries differ from the PAID requests');
    $one->(q{SELECT COUNT(*) FROM (SELECT request_id FROM ledger_entries WHERE org_id = ?
        AND type = 'SETTLEMENT' GROUP BY request_id HAVING COUNT(*) > 1) x}, 'two SETTLEMENTs');
    $one->(q{SELECT COUNT(*) FROM payment_file_items i JOIN payment_requests r ON r.id = i.request_id
        WHERE i.org_id = ? AND ((i.status = 'INCLUDED' AND r.status <> 'APPROVED')
        OR (i.status = 'PAID' AND r.status <> 'PAID'))}, 'a live item disagrees with its request');
    $one->(q{SELECT COUNT(*) FROM payment_files f JOIN payment_file_items i ON i.file_id = f.id
        WHERE f.org_id = ? AND ((f.status = 'SETTLED' AND i.status = 'INCLUDED')
        OR (f.status = 'VOIDED' AND i.status <> 'VOIDED'))}, 'an item disagrees with its file');
    push @v, pain_mismatches();
    return @v;
}

# Files not checked yet: their pain.001 (stored bytes) against their items.
sub pain_mismatches {
    my @v;
    my $files = $dbh->selectall_arrayref(q{SELECT id, pain_001 FROM payment_files WHERE org_id = ?},
        undef, $org->{orgId});
    for my $f (grep { !$pain_checked{ $_->[0] } } @$files) {
        my ($id, $xml) = @$f;
        my %got;
        while ($xml =~ m{<CdtTrfTxInf>(.*?)</CdtTrfTxInf>}sg) {
            my $t = $1;
            my ($e2e) = $t =~ m{<EndToEndId>([^<]*)<};
            my ($amt) = $t =~ m{<InstdAmt Ccy="EUR">([^<]*)<};
            my ($iban) = $t =~ m{<IBAN>([^<]*)<};
            $got{$e2e} = "$iban $amt";
        }
        my %want = map { $_->[0] => sprintf('%s %d.%02d', $_->[1], int($_->[2] / 100), $_->[2] % 100) }
            @{ $dbh->selectall_arrayref(q{SELECT end_to_end_id, beneficiary_account, amount
                FROM payment_file_items WHERE file_id = ?}, undef, $id) };
        my $a = join ';', map {"$_=$got{$_}"} sort keys %got;
        my $b = join ';', map {"$_=$want{$_}"} sort keys %want;
        push @v, "file $id: pain.001 [$a] != items [$b]" if $a ne $b;
        $pain_checked{$id} = 1;
    }
    return @v;
}

# ---- the run -------------------------------------------------------------------------------

replenish();
my @clients = map { client($_) } 0 .. $CLIENTS - 1;
my ($steps, @violations, %tally) = (0);
my $rounds = int(($STEPS + $CLIENTS - 1) / $CLIENTS);
for my $round (1 .. $rounds) {
    print { $_->{cmd} } "$round\n" for @clients;
    for my $c (@clients) {
        my $out = readline $c->{res} // 'client gone';
        chomp $out;
        $steps++;
        (my $kind = $out) =~ s/^(\S+ \S+(?: \S+)?).*/$1/;
        $tally{$kind}++;
        push @violations, "round $round: unexpected '$out'"
            if $out !~ /^(?:create 201|create 409 (?:IN_PAYMENT_FILE|NOT_APPROVED)|void 200|void 409 (?:SETTLED|VOIDED)|confirm 200|confirm 409 (?:SETTLED|VOIDED)|pay 200|pay 409 (?:IN_PAYMENT_FILE|PAID)|\w+ none)/;
    }
    push @violations, map {"round $round: $_"} violations();
    last if @violations > 20;
    replenish() if $round % 10 == 0;
}
close $_->{cmd} for @clients;
waitpid $_->{pid}, 0 for @clients;

diag join ', ', map {"$tally{$_}× $_"} sort keys %tally;
ok $tally{'create 201'} && $tally{'confirm 200'} && $tally{'void 200'} && $tally{'pay 200'},
    'every kind of step succeeded at least once';
ok $tally{'create 409'} || grep({ /^create 409/ } keys %tally), 'and creations collided';
is_deeply \@violations, [], "$steps steps by $CLIENTS clients (seed $SEED): "
    . scalar(@violations) . ' violations';
diag $_ for @violations[0 .. ($#violations < 9 ? $#violations : 9)];
my $r = $s->remit('verify-audit');
is $r->{exit}, 0, 'verify-audit: the chain holds' or diag $r->{stderr};

done_testing;
