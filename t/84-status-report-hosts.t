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

my $CLIENTS = 8;
my $s = Remit::Test->stack(pools => 2, start => 0);
$s->conf_set(workers => 4, idem_wait => 15, purge_interval => 0);
$s->start;
$s->expect_worker_kill(9);
my $dbh = $s->dbh;

my $org = $s->new_org;
my $admin = $org->{token};
my %u = map { $_ => $s->new_user($admin, roles => [uc $_]) } qw(creator approver treasurer);
my $NS = 'urn:iso:std:iso:20022:tech:xsd:pain.002.001.10';

sub ok_req {
    my ($want, @req) = @_;
    my $r = $s->req(@req);
    die "$req[0] $req[1]: $r->{status} $r->{body}" unless $r->{status} == $want;
    return $r->{json}{data};
}
sub one { scalar $dbh->selectrow_array($_[0], undef, @_[1 .. $#_]) }

ok_req(200, PUT => '/api/v1/debtor-accounts', token => $admin, json => { accounts => [
    { currency => 'EUR', name => 'Acme', iban => 'DE89370400440532013000' } ] });

my $seq = 0;
sub file_of {
    my $bid = ok_req(201, POST => '/api/v1/batches', token => $u{creator}{token}, idem => 1,
        json => { name => 'B' })->{id};
    my @ids = map { ok_req(201, POST => "/api/v1/batches/$bid/requests", token => $u{creator}{token},
        idem => 1, json => { amount => "$_.00", currency => 'EUR', beneficiaryName => "N$_",
            beneficiaryAccount => 'FR1420041010050500013M02606' })->{id} } 1 .. 3;
    ok_req(200, POST => "/api/v1/batches/$bid/submit", token => $u{creator}{token}, idem => 1);
    ok_req(200, POST => "/api/v1/requests/$_/approve", token => $u{approver}{token}, idem => 1) for @ids;
    return ok_req(201, POST => '/api/v1/payment-files', token => $u{treasurer}{token}, idem => 1,
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

# The workers holding an accepted FastCGI connection (as t/42 counts them).
sub busy_workers {
    my %sockets;
    for my $pid ($s->worker_pids) {
        opendir my $d, "/proc/$pid/fd" or next;
        $sockets{$pid} = grep { (readlink("/proc/$pid/fd/$_") // '') =~ /^socket:/ } readdir $d;
    }
    my %idle;
    for my $n (1, 2) {
        my @mine = grep { exists $sockets{$_} } $s->worker_pids($n);
        $idle{$_} = (sort { $a <=> $b } map { $sockets{$_} } @mine)[0] // 0 for @mine;
    }
    return grep { $sockets{$_} > $idle{$_} } keys %sockets;
}

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
    $s->wait_until('the attempt waits for the audit chain the test holds', sub { $s->lock_waits == 1 });
    my $rows = $dbh->selectrow_array(q{SELECT trx_rows_modified FROM information_schema.INNODB_TRX
        WHERE trx_state = 'LOCK WAIT'});
    cmp_ok $rows // 0, '>=', 6, "it has written already ($rows rows: items, requests, ledger, report, file)";
    my @busy = busy_workers();
    is scalar @busy, 1, 'one worker is serving it';
    kill 'KILL', @busy;
    is_error $first->(), 502, 'BAD_GATEWAY', 'its client gets 502';
    $h->rollback;
    $h->disconnect;
    $s->wait_until('the killed attempt is rolled back', sub {
        !$dbh->selectrow_array('SELECT COUNT(*) FROM information_schema.INNODB_TRX') });
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
