use strict;
use warnings;

# The bank's answer exactly once across app hosts and crashes (API §9, §3). Two pools (two
# `remit serve` masters, as on two app hosts) share one database behind one nginx upstream:
# the same report posted by eight clients at once, each under its own key, split across both,
# is applied once. Then a worker killed with SIGKILL while applying a report, after its
# writes (it waits on the organisation's audit chain, which the test holds), leaves nothing
# applied; the retry with the same key applies it, and the same report under another key
# afterwards changes nothing.

use Test::More;
use Remit::Test;
use Remit::Fixture qw(ok_req people debtor_account ready_requests);

my $CLIENTS = 8;
my $s = Remit::Test->crash_stack(pools => 2);
my $dbh = $s->dbh;

my $org = $s->new_org;
my $admin = $org->{token};
my %u = %{ people($s, $admin, qw(creator approver treasurer)) };
my $NS = 'urn:iso:std:iso:20022:tech:xsd:pain.002.001.10';

sub one { scalar $dbh->selectrow_array($_[0], undef, @_[1 .. $#_]) }

debtor_account($s, $admin);

my $seq = 0;
sub file_of {
    my @ids = map { $_->{id} } ready_requests($s, $u{creator}, [ $u{approver} ],
        map { { amount => "$_.00", currency => 'EUR', beneficiaryName => "N$_",
            beneficiaryAccount => 'FR1420041010050500013M02606' } } 1 .. 3);
    return ok_req($s, 201, POST => '/api/v1/payment-files', token => $u{treasurer}{token}, idem => 1,
        json => { requestIds => \@ids });
}

# Item 1 settled, item 2 returned (AM04), item 3 pending.
sub report {
    my ($f) = @_;
    my @e = map { $_->{endToEndId} } @{ $f->{items} };
    return qq{<Document xmlns="$NS"><CstmrPmtStsRpt><GrpHdr><MsgId>BANK-$$-} . ++$seq
        . "</MsgId></GrpHdr><OrgnlGrpInfAndSts><OrgnlMsgId>$f->{messageId}</OrgnlMsgId></OrgnlGrpInfAndSts>"
        . "<OrgnlPmtInfAndSts><TxInfAndSts><OrgnlEndToEndId>$e[0]</OrgnlEndToEndId><TxSts>ACSC</TxSts></TxInfAndSts>"
        . "<TxInfAndSts><OrgnlEndToEndId>$e[1]</OrgnlEndToEndId><TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>AM04</Cd></Rsn></StsRsnInf></TxInfAndSts>"
        . "<TxInfAndSts><OrgnlEndToEndId>$e[2]</OrgnlEndToEndId><TxSts>PDNG</TxSts></TxInfAndSts>"
        . '</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>';
}

sub post {
    my ($f, $xml, $key, %o) = @_;
    return $s->req(POST => "/api/v1/payment-files/$f->{id}/status-reports", token => $u{treasurer}{token},
        idem => $key // 1, raw => $xml, headers => { 'Content-Type' => 'application/xml', %{ $o{headers} // {} } });
}

# Everything a report changes, in one string.
sub state_of {
    my ($f) = @_;
    return join '|', one('SELECT CONCAT(status, version, reports_applied) FROM payment_files WHERE id = ?', $f->{id}),
        @{ $dbh->selectcol_arrayref(q{SELECT CONCAT_WS(',', i.status, i.bank_status, i.reason_code,
            i.live_request_id, r.status, r.version) FROM payment_file_items i
            JOIN payment_requests r ON r.id = i.request_id WHERE i.file_id = ? ORDER BY i.id}, undef, $f->{id}) },
        one('SELECT COUNT(*) FROM payment_status_reports WHERE file_id = ?', $f->{id}),
        one(q{SELECT COUNT(*) FROM ledger_entries WHERE type = 'SETTLEMENT' AND org_id = ?}, $org->{orgId}),
        one('SELECT COUNT(*) FROM audit_events WHERE org_id = ?', $org->{orgId});
}

sub applied_once {
    my ($f) = @_;
    my $items = $dbh->selectall_arrayref(q{SELECT status, bank_status, reason_code FROM payment_file_items
        WHERE file_id = ? ORDER BY position}, undef, $f->{id});
    is_deeply $items, [['PAID', 'ACSC', undef], ['RETURNED', 'RJCT', 'AM04'], ['INCLUDED', 'PDNG', undef]],
        'the items as the report says';
    is one('SELECT COUNT(*) FROM payment_status_reports WHERE file_id = ?', $f->{id}), 1, 'one report kept';
    is one('SELECT reports_applied FROM payment_files WHERE id = ?', $f->{id}), 1, 'applied once';
    is one(q{SELECT COUNT(*) FROM ledger_entries WHERE type = 'SETTLEMENT' AND request_id = ?},
        $f->{items}[0]{requestId}), 1, 'one SETTLEMENT for the settled item';
    is one(q{SELECT COUNT(*) FROM audit_events WHERE action = 'payment_file.report_applied' AND object_id = ?},
        $f->{id}), 1, 'one report_applied event';
    is one(q{SELECT COUNT(*) FROM audit_events WHERE action = 'request.returned' AND object_id = ?},
        $f->{items}[1]{requestId}), 1, 'one request.returned event';
}

subtest "one report from $CLIENTS clients at once, across two app hosts, each with its own key" => sub {
    my $f = file_of();
    my $rid = "twins-$$";
    my $res = $s->req_together($CLIENTS, POST => "/api/v1/payment-files/$f->{id}/status-reports",
        token => $u{treasurer}{token}, idem => 1, raw => report($f),
        headers => { 'Content-Type' => 'application/xml', 'X-Request-Id' => $rid });
    is_deeply [map { $_->{status} } @$res], [(200) x $CLIENTS], "$CLIENTS × 200";
    my @served = map { my $n = $_; open my $fh, '<', $s->log_path($n) or die;
        scalar grep { /"msg":"request"/ && /"rid":"\Q$rid\E"/ } <$fh> } 1, 2;
    ok $served[0] && $served[1], "both hosts served some ($served[0] + $served[1])";
    applied_once($f);
    is_deeply [map { $_->{json}{data}{version} } @$res], [($res->[0]{json}{data}{version}) x $CLIENTS],
        'every answer shows the file as applied';
};

subtest 'a worker killed while applying a report: nothing applied; the retry applies it once' => sub {
    my $f = file_of();
    my $xml = report($f);
    my $before = state_of($f);
    $s->wait_until('all 8 workers run', sub { scalar($s->worker_pids) == 8 }, 40);
    my $h = $s->new_dbh(AutoCommit => 0);
    $h->do('SET SESSION innodb_lock_wait_timeout = 60');
    $h->selectrow_array('SELECT seq FROM audit_heads WHERE org_id = ? FOR UPDATE', undef, $org->{orgId});
    my $key = Remit::Test::random_key();
    my $first = $s->req_bg(POST => "/api/v1/payment-files/$f->{id}/status-reports", token => $u{treasurer}{token},
        idem => $key, raw => $xml, headers => { 'Content-Type' => 'application/xml' });
    $s->kill_lock_waiter($h, $first, waits => 'the attempt waits for the audit chain the test holds',
        rows => 6, written => 'items, requests, ledger, report, file');
    is state_of($f), $before, 'nothing applied: items, requests, ledger, reports, audit as before';

    my $retry = post($f, $xml, $key);
    is $retry->{status}, 200, 'the retry with the same key applies it' or diag $retry->{body};
    ok !exists $retry->{headers}{'idempotent-replayed'}, 'a first run, not a replay';
    applied_once($f);
    my $after = state_of($f);
    my $other = post($f, $xml);
    is $other->{status}, 200, 'the same report under another key: 200';
    is state_of($f), $after, 'and nothing changed';
    is post($f, $xml, $key)->{headers}{'idempotent-replayed'}, 'true', 'the first key replays';
};

done_testing;
