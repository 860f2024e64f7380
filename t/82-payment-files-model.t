use strict;
use warnings;

use Digest::MD5 qw(md5_hex);
use IO::Handle;
use POSIX ();
use Test::More;
use Remit::Test;
use Remit::Fixture qw(person people debtor_account ready_requests);

# A model test of payment files (API §9): seeded and reproducible in its choices, several
# forked clients at once, each round every client takes one random step (make a file of a
# few APPROVED requests, void a file, confirm a file, mark a request paid by hand, post a
# pain.002 status report for a file: repeated, late, out of order, at once; now and then with
# a bank's own reason (Rsn/Prtry) or naming another payment information, which must be
# refused with 409 MESSAGE_MISMATCH and change nothing), and after every
# round the invariants are checked against the database:
#   - each request is in at most one live (INCLUDED or PAID) item;
#   - the PAID amount never exceeds the APPROVED (obligated) amount, and every PAID request
#     has its OBLIGATION;
#   - SETTLEMENT entries are exactly the PAID requests, one each;
#   - a live item agrees with its request (INCLUDED: APPROVED; PAID: PAID); a SETTLED file
#     has no INCLUDED item, a VOIDED file only VOIDED ones;
#   - obligated − settled = the APPROVED requests not yet paid;
#   - every file's items, parsed back out of its pain.001 (IBAN, amount, end-to-end id),
#     equal the file's items;
#   - a file's reports_applied is the number of reports kept for it, a VOIDED file has none;
#   - the items of a file never confirmed equal its kept reports replayed in the order they
#     were applied (first final status stands, bankStatus the latest, a payment or group
#     RJCT returns the rest), and the file is SETTLED exactly when none is INCLUDED.
# REMIT_MODEL_STEPS (default 1500) and REMIT_MODEL_SEED (default 25) set the run; the last
# test names the steps run and the violations found.
my $STEPS = $ENV{REMIT_MODEL_STEPS} // 1500;
my $SEED = $ENV{REMIT_MODEL_SEED} // 25;
my $CLIENTS = 3;
my $POOL = 40;    # APPROVED requests kept available

my $s = Remit::Test->stack(conf => { workers => 4 });
my $dbh = $s->dbh;
my $org = $s->new_org;
my $admin = $org->{token};
my ($creator, $approver) = @{ people($s, $admin, qw(creator approver)) }{qw(creator approver)};
my @treasurers = map { person($s, $admin, 'TREASURER') } 1 .. $CLIENTS;
my @IBANS = qw(DE89370400440532013000 FR1420041010050500013M02606 NL91ABNA0417164300
    ES9121000418450200051332 BE68539007547034 AT611904300234573201);

debtor_account($s, $admin, name => 'Acme & Söhne', iban => $IBANS[0], bic => 'COBADEFFXXX');

# Tops the organisation's APPROVED requests that are in no live file up to $POOL.
my $made = 0;
sub replenish {
    my $free = $dbh->selectrow_array(q{SELECT COUNT(*) FROM payment_requests r WHERE
        r.org_id = ? AND r.status = 'APPROVED' AND NOT EXISTS (SELECT 1 FROM payment_file_items i
        WHERE i.live_request_id = r.id)}, undef, $org->{orgId});
    return if $free >= $POOL / 2;
    ready_requests($s, $creator, [ $approver ], map {
        $made++;
        +{ amount => sprintf('%d.%02d', 1 + $made % 97, $made % 100), currency => 'EUR',
            beneficiaryName => "Bénéficiaire $made & Co", beneficiaryAccount => $IBANS[$made % @IBANS],
            purpose => "model $made" }
    } 1 .. $POOL - $free);
}

# ---- one client's step -------------------------------------------------------------------

sub ids_of {
    my ($h, $sql) = @_;
    return @{ $h->selectcol_arrayref($sql, undef, $org->{orgId}) };
}

# The report number $n for file $f: the same bytes whenever ($f, $n) is drawn again, so a
# repeat is a true repeat; its choices come from a hash, not from the step's rand.
my @TX = ((('ACSC') x 5), (('ACCC') x 2), (('RJCT') x 4), (('ACSP') x 3), (('PDNG') x 2),
    (('ACCP') x 2), 'RCVD', 'ACTC', 'ACWC');
my @REASONS = qw(AC01 AC04 AC06 AG01 AM04 AM05 BE04 MD07 MS02 MS03 RC01 RR01);
sub report_xml {
    my ($h, $f, $n) = @_;
    my ($msg_id, @e2e) = @{ $h->selectcol_arrayref(q{SELECT message_id FROM payment_files
        WHERE id = ? UNION ALL SELECT * FROM (SELECT end_to_end_id FROM payment_file_items
        WHERE file_id = ? ORDER BY position) x}, undef, $f, $f) };
    my $d = sub { hex substr md5_hex("$SEED-$f-$n-$_[0]"), 0, 8 };
    my $rsn = sub { my $k = $d->("r$_[0]"); my $code = $REASONS[$k % @REASONS];
        !($k % 5) ? '' : $k % 2 ? "<StsRsnInf><Rsn><Cd>$code</Cd></Rsn></StsRsnInf>"
            : qq{<StsRsnInf><Rsn><Prtry>Bank "$code" \\ $k</Prtry></Rsn></StsRsnInf>} };
    my $tx = join '', map {
        my $e = $e2e[$_];
        $d->("in$e") % 10 < 7 ? do { my $st = $TX[$d->("st$e") % @TX];
            "<TxInfAndSts><OrgnlEndToEndId>$e</OrgnlEndToEndId><TxSts>$st</TxSts>"
            . ($st eq 'RJCT' ? $rsn->($e) : '') . '</TxInfAndSts>' } : ''
    } 0 .. $#e2e;
    my $pmt = $d->('pmt') % 100 < 8 ? '<PmtInfSts>RJCT</PmtInfSts>' . $rsn->('pmt') : '';
    my $grp = $d->('grp') % 100 < 5 ? '<GrpSts>RJCT</GrpSts>' . $rsn->('grp') : '';
    my $pmt_id = $d->('pmtid') % 100 < 5 ? 'REMIT-0' : $msg_id;    # 409 MESSAGE_MISMATCH
    return '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><CstmrPmtStsRpt>'
        . "<GrpHdr><MsgId>BANK-$f-$n</MsgId><CreDtTm>2026-12-07T10:00:00</CreDtTm></GrpHdr>"
        . "<OrgnlGrpInfAndSts><OrgnlMsgId>$msg_id</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>$grp</OrgnlGrpInfAndSts>"
        . "<OrgnlPmtInfAndSts><OrgnlPmtInfId>$pmt_id</OrgnlPmtInfId>$pmt$tx</OrgnlPmtInfAndSts>"
        . '</CstmrPmtStsRpt></Document>';
}

# One random step; returns "action status code" (code '' for success).
sub step {
    my ($h, $tok) = @_;
    my $dice = rand;
    my ($what, $r);
    if ($dice < 0.38) {
        my @free = ids_of($h, q{SELECT id FROM payment_requests WHERE org_id = ?
            AND status = 'APPROVED' ORDER BY id});
        return 'create none' unless @free;
        my @pick = map { $free[rand @free] } 1 .. 1 + int rand 5;
        my %seen;
        @pick = grep { !$seen{$_}++ } @pick;
        ($what, $r) = (create => $s->req(POST => '/api/v1/payment-files', token => $tok,
            idem => 1, json => { requestIds => [map {"$_"} @pick] }));
    } elsif ($dice < 0.50) {
        my @files = ids_of($h, q{SELECT id FROM payment_files WHERE org_id = ? AND status = 'CREATED'});
        return 'void none' unless @files;
        ($what, $r) = (void => $s->req(POST => "/api/v1/payment-files/$files[rand @files]/void",
            token => $tok, idem => 1, json => { reason => 'model' }));
    } elsif ($dice < 0.60) {
        my @files = ids_of($h, q{SELECT id FROM payment_files WHERE org_id = ? AND status = 'CREATED'});
        return 'confirm none' unless @files;
        my $f = $files[rand @files];
        ($what, $r) = (confirm => $s->req(POST => "/api/v1/payment-files/$f/confirm",
            token => $tok, idem => 1, json => {}));
        return "confirm 200 file $f" if $r->{status} == 200;
    } elsif ($dice < 0.85) {
        # Mostly a file the bank may answer (CREATED or already SETTLED: late), now and then
        # a VOIDED one; report numbers 0..3 come in any order and again.
        my $sql = rand() < 0.9
            ? q{SELECT id FROM payment_files WHERE org_id = ? AND status <> 'VOIDED'}
            : q{SELECT id FROM payment_files WHERE org_id = ? AND status = 'VOIDED'};
        my @files = ids_of($h, $sql);
        return 'report none' unless @files;
        my $f = $files[rand @files];
        ($what, $r) = (report => $s->req(POST => "/api/v1/payment-files/$f/status-reports",
            token => $tok, idem => 1, raw => report_xml($h, $f, int rand 4),
            headers => { 'Content-Type' => 'application/xml' }));
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

my (%pain_checked, %confirmed);
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
    $one->(q{SELECT COUNT(*) FROM payment_files f WHERE f.org_id = ? AND (f.reports_applied <>
        (SELECT COUNT(*) FROM payment_status_reports p WHERE p.file_id = f.id)
        OR (f.status = 'VOIDED' AND f.reports_applied > 0))}, 'reports_applied differs from the reports kept');
    push @v, replay_mismatches();
    return @v;
}

# Each file that was never confirmed, against its kept reports replayed in the order applied.
sub replay_mismatches {
    my @v;
    my $files = $dbh->selectall_arrayref(q{SELECT id, status FROM payment_files WHERE org_id = ?
        AND status <> 'VOIDED'}, undef, $org->{orgId});
    for my $f (grep { !$confirmed{ $_->[0] } } @$files) {
        my ($id, $fstatus) = @$f;
        my $items = $dbh->selectall_arrayref(q{SELECT end_to_end_id, status, bank_status,
            reason_code FROM payment_file_items WHERE file_id = ? ORDER BY position}, undef, $id);
        my %m = map { $_->[0] => ['INCLUDED', undef, undef] } @$items;
        my $set = sub { my ($e, $st, $rc) = @_;
            $m{$e}[1] = $st;
            return if $m{$e}[0] ne 'INCLUDED';
            $m{$e} = ['PAID', $st, undef] if $st eq 'ACSC' || $st eq 'ACCC';
            $m{$e} = ['RETURNED', $st, $rc] if $st eq 'RJCT' };
        for my $body (@{ $dbh->selectcol_arrayref(q{SELECT body FROM payment_status_reports
                WHERE file_id = ? ORDER BY id}, undef, $id) }) {
            my $rc = sub { $_[0] =~ m{<StsRsnInf><Rsn><(?:Cd|Prtry)>([^<]*)</} ? $1 : undef };
            while ($body =~ m{<TxInfAndSts>(.*?)</TxInfAndSts>}g) {
                my $t = $1;
                $set->($t =~ m{<OrgnlEndToEndId>([^<]*)<}, $t =~ m{<TxSts>([^<]*)<}, $rc->($t));
            }
            for my $level ($body =~ m{<PmtInfSts>RJCT</PmtInfSts>((?:<StsRsnInf>.*?</StsRsnInf>)?)},
                    $body =~ m{<GrpSts>RJCT</GrpSts>((?:<StsRsnInf>.*?</StsRsnInf>)?)}) {
                $m{$_}[0] eq 'INCLUDED' and $set->($_, 'RJCT', $rc->($level)) for keys %m;
            }
        }
        my $show = sub { join ',', map { $_ // '-' } @_ };
        my $got = join ' ', map { $show->(@$_[1 .. 3]) } @$items;
        my $want = join ' ', map { $show->(@{ $m{ $_->[0] } }) } @$items;
        push @v, "file $id: items [$got] != its reports replayed [$want]" if $got ne $want;
        my $settled = !grep { $_->[1] eq 'INCLUDED' } @$items;
        push @v, "file $id: $fstatus with" . ($settled ? ' no' : '') . ' item INCLUDED'
            if ($fstatus eq 'SETTLED') != $settled;
    }
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
        $confirmed{$1} = 1 if $out =~ s/ file (\d+)$/ /;
        (my $kind = $out) =~ s/^(\S+ \S+(?: \S+)?).*/$1/;
        $tally{$kind}++;
        push @violations, "round $round: unexpected '$out'"
            if $out !~ /^(?:create 201|create 409 (?:IN_PAYMENT_FILE|NOT_APPROVED)|void 200|void 409 (?:SETTLED|VOIDED|REPORT_APPLIED)|confirm 200|confirm 409 (?:SETTLED|VOIDED)|pay 200|pay 409 (?:IN_PAYMENT_FILE|PAID)|report 200|report 409 (?:VOIDED|MESSAGE_MISMATCH)|\w+ none)/;

    }
    push @violations, map {"round $round: $_"} violations();
    last if @violations > 20;
    replenish() if $round % 10 == 0;
}
close $_->{cmd} for @clients;
waitpid $_->{pid}, 0 for @clients;

diag join ', ', map {"$tally{$_}× $_"} sort keys %tally;
my $kept = $dbh->selectrow_array('SELECT COUNT(*) FROM payment_status_reports');
diag "$kept reports applied of " . ($tally{'report 200'} // 0) . ' posts answered 200';
ok $kept < ($tally{'report 200'} // 0), 'some reports came again and changed nothing';
ok $tally{'create 201'} && $tally{'confirm 200'} && $tally{'void 200'} && $tally{'pay 200'}
    && $tally{'report 200'},
    'every kind of step succeeded at least once';
ok $tally{'create 409'} || grep({ /^create 409/ } keys %tally), 'and creations collided';
ok $tally{'report 409 MESSAGE_MISMATCH'}, 'and reports for another payment information were refused';
ok $dbh->selectrow_array(q{SELECT COUNT(*) FROM payment_file_items WHERE reason_code LIKE 'Bank "%'}),
    q{and a bank's own reasons kept};
is_deeply \@violations, [], "$steps steps by $CLIENTS clients (seed $SEED): "
    . scalar(@violations) . ' violations';
diag $_ for @violations[0 .. ($#violations < 9 ? $#violations : 9)];
my $r = $s->remit('verify-audit');
is $r->{exit}, 0, 'verify-audit: the chain holds' or diag $r->{stderr};

done_testing;
