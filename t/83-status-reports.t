use strict;
use warnings;
use utf8;

use JSON::PP ();
use Test::More;
use Remit::Test;
use Remit::Fixture qw(ok_req debtor_account ready_request ready_requests);

binmode Test::More->builder->$_, ":encoding(UTF-8)" for qw(output failure_output todo_output);

# The bank's answer (API §9): pain.002 status reports. Settled, accepted, pending, rejected,
# payment- and group-level rejections and mixed reports, each checked in the database; the
# same report twice, at once from several clients and later; reports that do not fit the
# file; a returned request filed again and paid.
my $s = Remit::Test->stack;
my $NS = 'urn:iso:std:iso:20022:tech:xsd:pain.002.001.10';
my $IBAN = 'DE89370400440532013000';

# An organisation with one user per job (tokens, and their ids as NAME_id) and an EUR debtor
# account; maker may both make a request and post the bank's answer.
sub team {
    my $t = Remit::Fixture::team($s, creator => ['CREATOR'], approver => ['APPROVER'],
        treasurer => ['TREASURER'], maker => ['CREATOR', 'TREASURER'], viewer => ['VIEWER']);
    debtor_account($s, $t->{admin}, iban => 'FR1420041010050500013M02606');
    return $t;
}

sub one { scalar $s->dbh->selectrow_array($_[0], undef, @_[1 .. $#_]) }

# A CREATED file of approved requests (amounts), made by the team's creator.
sub file_of {
    my ($t, @amounts) = @_;
    my @ids = map { $_->{id} } ready_requests($s, $t->{creator}, [ $t->{approver} ],
        map { { amount => $_, currency => 'EUR', beneficiaryName => 'Ann',
            beneficiaryAccount => $IBAN, purpose => 'inv' } } @amounts);
    return ok_req($s, 201, POST => '/api/v1/payment-files', token => $t->{treasurer}, idem => 1,
        json => { requestIds => \@ids });
}

my $SEQ = 0;
sub xml_text { $_[0] =~ s/&/&amp;/gr =~ s/</&lt;/gr =~ s/>/&gt;/gr }
# A reason: a code (Rsn/Cd), or { prtry => text, cd => code? } for the bank's own (Rsn/Prtry).
sub rsn {
    my ($r) = @_;
    return '' unless defined $r;
    return "<StsRsnInf><Rsn><Cd>$r</Cd></Rsn></StsRsnInf>" unless ref $r;
    return '<StsRsnInf><Orgtr><Nm>Bank</Nm></Orgtr><Rsn>' . '<Prtry>' . xml_text($r->{prtry}) . '</Prtry>'
        . (defined $r->{cd} ? "<Cd>$r->{cd}</Cd>" : '') . '</Rsn><AddtlInf>x</AddtlInf></StsRsnInf>';
}

# A pain.002.001.10 for file $f: tx => [[e2e, status, reason?]...], grp/pmt => [status, reason?];
# pmtid => the OrgnlPmtInfId (undef: none; default the file's messageId), more => XML after
# the OrgnlPmtInfAndSts (another one, say). Characters, not bytes: utf8::encode before posting.
sub pain002 {
    my ($f, %o) = @_;
    my $msg = $o{msg} // 'RPT-' . $$ . '-' . ++$SEQ;
    my $rsn = \&rsn;
    my $grp = $o{grp} ? "<GrpSts>$o{grp}[0]</GrpSts>" . $rsn->($o{grp}[1]) : '';
    my $pmt = $o{pmt} ? "<PmtInfSts>$o{pmt}[0]</PmtInfSts>" . $rsn->($o{pmt}[1]) : '';
    my $tx = join '', map {
        "<TxInfAndSts><StsId>S$_->[0]</StsId><OrgnlEndToEndId>$_->[0]</OrgnlEndToEndId>"
            . "<TxSts>$_->[1]</TxSts>" . $rsn->($_->[2]) . '</TxInfAndSts>'
    } @{ $o{tx} // [] };
    my $orig = $o{orig} // $f->{messageId};
    my $pmtid = exists $o{pmtid} ? $o{pmtid} : $f->{messageId};
    $pmtid = defined $pmtid ? "<OrgnlPmtInfId>$pmtid</OrgnlPmtInfId>" : '';
    return qq{<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="$NS"><CstmrPmtStsRpt>}
        . "<GrpHdr><MsgId>$msg</MsgId><CreDtTm>2026-12-07T10:00:00</CreDtTm></GrpHdr>"
        . "<OrgnlGrpInfAndSts><OrgnlMsgId>$orig</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>$grp</OrgnlGrpInfAndSts>"
        . "<OrgnlPmtInfAndSts>$pmtid$pmt$tx</OrgnlPmtInfAndSts>" . ($o{more} // '')
        . "</CstmrPmtStsRpt></Document>\n";
}

sub post {
    my ($t, $f, $xml, %o) = @_;
    return $s->req(POST => "/api/v1/payment-files/$f->{id}/status-reports",
        token => $o{token} // $t->{treasurer}, idem => exists $o{idem} ? $o{idem} : 1, raw => $xml,
        headers => { 'Content-Type' => $o{type} // 'application/xml' });
}

sub e2e { map { $_->{endToEndId} } @{ $_[0]{items} } }
sub request { ok_req($s, 200, GET => "/api/v1/requests/$_[1]", token => $_[0]{viewer}) }
sub settlements { one(q{SELECT COUNT(*) FROM ledger_entries WHERE type = 'SETTLEMENT' AND request_id = ?}, $_[0]) }
sub events { one('SELECT COUNT(*) FROM audit_events WHERE action = ? AND object_id = ?', @_) }
# Everything a report could change, for "nothing changed".
sub state_of {
    my ($fid) = @_;
    return join '|', one('SELECT CONCAT(status, version, reports_applied) FROM payment_files WHERE id = ?', $fid),
        @{ $s->dbh->selectcol_arrayref(q{SELECT CONCAT_WS(',', i.status, i.bank_status, i.reason_code,
            i.live_request_id, r.status, r.version) FROM payment_file_items i
            JOIN payment_requests r ON r.id = i.request_id WHERE i.file_id = ? ORDER BY i.id}, undef, $fid) },
        one('SELECT COUNT(*) FROM payment_status_reports WHERE file_id = ?', $fid),
        one(q{SELECT COUNT(*) FROM ledger_entries WHERE type = 'SETTLEMENT'}),
        one('SELECT COUNT(*) FROM audit_events WHERE org_id = (SELECT org_id FROM payment_files WHERE id = ?)', $fid);
}

my $t = team();

subtest 'settled: ACSC and ACCC pay items and requests, the file SETTLED' => sub {
    my $f = file_of($t, '10.00', '20.00');
    my @e = e2e($f);
    my $r = post($t, $f, pain002($f, tx => [[$e[0], 'ACSC'], [$e[1], 'ACCC']]));
    is $r->{status}, 200, 'answers 200' or diag $r->{body};
    my $d = $r->{json}{data};
    is $d->{status}, 'SETTLED', 'file SETTLED';
    ok $d->{settledAt}, 'settledAt';
    is_deeply [map { [$_->{status}, $_->{bankStatus}] } @{ $d->{items} }], [['PAID', 'ACSC'], ['PAID', 'ACCC']],
        'items PAID with their bank status';
    for my $it (@{ $d->{items} }) {
        my $q = request($t, $it->{requestId});
        is $q->{status}, 'PAID', 'request PAID';
        is $q->{paidBy}, $t->{treasurer_id}, 'paidBy the poster';
        is $q->{paymentReference}, $it->{endToEndId}, 'paymentReference the end-to-end id';
        is settlements($it->{requestId}), 1, 'one SETTLEMENT';
        is events('request.paid', $it->{requestId}), 1, 'request.paid audited';
    }
    is events('payment_file.report_applied', $f->{id}), 1, 'report_applied audited';
    is events('payment_file.settled', $f->{id}), 1, 'settled audited';
    is $r->{headers}{etag}, qq{"$d->{version}"}, 'ETag';
};

subtest 'accepted or pending is not paid; a late ACCC pays; the file can no longer be voided' => sub {
    my $f = file_of($t, '1.00', '2.00', '3.00', '4.00', '5.00', '6.00');
    my @e = e2e($f);
    my @st = qw(ACCP ACSP ACWC ACTC PDNG RCVD);
    my $r = post($t, $f, pain002($f, tx => [map { [$e[$_], $st[$_]] } 0 .. 5]));
    is $r->{status}, 200, 'answers 200' or diag $r->{body};
    is $r->{json}{data}{status}, 'CREATED', 'file still CREATED';
    is_deeply [map { $_->{bankStatus} } @{ $r->{json}{data}{items} }], \@st, 'bankStatus recorded';
    is_deeply [map { $_->{status} } @{ $r->{json}{data}{items} }], [('INCLUDED') x 6], 'items INCLUDED';
    for my $it (@{ $r->{json}{data}{items} }) {
        is request($t, $it->{requestId})->{status}, 'APPROVED', 'request not paid';
        is settlements($it->{requestId}), 0, 'no SETTLEMENT';
    }
    my $v = $s->req(POST => "/api/v1/payment-files/$f->{id}/void", token => $t->{treasurer}, idem => 1,
        json => { reason => 'oops' });
    is_error $v, 409, 'INVALID_STATE', 'void after a report';
    is $v->{json}{error}{details}{reason}, 'REPORT_APPLIED', 'REPORT_APPLIED';
    $r = post($t, $f, pain002($f, tx => [map { [$_, 'ACCC'] } @e]));
    is $r->{json}{data}{status}, 'SETTLED', 'a later ACCC report settles it';
    is settlements($_->{requestId}), 1, 'one SETTLEMENT each' for @{ $r->{json}{data}{items} };
    is one('SELECT COUNT(*) FROM payment_status_reports WHERE file_id = ?', $f->{id}), 2, 'both reports kept';
};

my $returned;    # a request returned by the bank, for the last subtest
subtest 'rejected: the item RETURNED, the request APPROVED again with lastReturn, no SETTLEMENT' => sub {
    my $f = file_of($t, '7.00', '8.00');
    my @e = e2e($f);
    my $r = post($t, $f, pain002($f, tx => [[$e[0], 'RJCT', 'AC04'], [$e[1], 'ACSC']]));
    is $r->{status}, 200, 'answers 200' or diag $r->{body};
    my ($a, $b) = @{ $r->{json}{data}{items} };
    is_deeply [$a->{status}, $a->{bankStatus}, $a->{reasonCode}], ['RETURNED', 'RJCT', 'AC04'], 'item RETURNED AC04';
    is $b->{status}, 'PAID', 'the other PAID';
    is $r->{json}{data}{status}, 'SETTLED', 'nothing INCLUDED: SETTLED';
    my $q = request($t, $a->{requestId});
    is $q->{status}, 'APPROVED', 'request APPROVED';
    is $q->{paymentFileId}, undef, 'paymentFileId null';
    is $q->{lastReturn}{paymentFileId}, $f->{id}, 'lastReturn.paymentFileId';
    is $q->{lastReturn}{reasonCode}, 'AC04', 'lastReturn.reasonCode';
    ok $q->{lastReturn}{at}, 'lastReturn.at';
    is settlements($a->{requestId}), 0, 'no SETTLEMENT';
    is one(q{SELECT COUNT(*) FROM ledger_entries WHERE type = 'OBLIGATION' AND request_id = ?}, $a->{requestId}), 1,
        'the OBLIGATION stays';
    is one('SELECT live_request_id FROM payment_file_items WHERE end_to_end_id = ?', $e[0]), undef, 'live id cleared';
    is events('request.returned', $a->{requestId}), 1, 'request.returned audited';
    $returned = $a->{requestId};
};

subtest 'payment-information and group RJCT return every item still INCLUDED' => sub {
    my $f = file_of($t, '1.00', '2.00', '3.00');
    my @e = e2e($f);
    my $r = post($t, $f, pain002($f, pmt => ['RJCT', 'AM04'], tx => [[$e[0], 'ACSC']]));
    is_deeply [map { [$_->{status}, $_->{reasonCode}] } @{ $r->{json}{data}{items} }],
        [['PAID', undef], ['RETURNED', 'AM04'], ['RETURNED', 'AM04']], 'PmtInfSts RJCT: the rest RETURNED AM04';
    is $r->{json}{data}{status}, 'SETTLED', 'SETTLED';
    my $back = $r->{json}{data}{items}[1]{requestId};
    my $paid = $s->req(POST => "/api/v1/requests/$back/mark-paid", token => $t->{treasurer}, idem => 1,
        json => { paymentReference => 'BY-HAND-1' });
    is $paid->{status}, 200, 'a returned request may be paid by hand' or diag $paid->{body};
    is settlements($back), 1, 'one SETTLEMENT';
    is request($t, $back)->{lastReturn}{reasonCode}, 'AM04', 'its last return still shown';
    my $g = file_of($t, '4.00', '5.00');
    my @ge = e2e($g);
    $r = post($t, $g, pain002($g, grp => ['RJCT', 'MS03'], tx => [[$ge[1], 'RJCT', 'AC01']]));
    is_deeply [map { [$_->{status}, $_->{reasonCode}] } @{ $r->{json}{data}{items} }],
        [['RETURNED', 'MS03'], ['RETURNED', 'AC01']], 'GrpSts RJCT with its reason; a tx reason of its own stands';
    is request($t, $_->{requestId})->{status}, 'APPROVED', 'requests APPROVED' for @{ $r->{json}{data}{items} };
    my $h = file_of($t, '6.00');
    $r = post($t, $h, pain002($h, grp => ['PART'], pmt => ['ACSP']));
    is $r->{json}{data}{items}[0]{status}, 'INCLUDED', 'other group statuses change nothing';
    is $r->{json}{data}{items}[0]{bankStatus}, undef, 'and an item no TxInfAndSts names keeps its bankStatus';
    my $k = file_of($t, '7.00', '8.00', '9.00');
    my @ke = e2e($k);
    $r = post($t, $k, pain002($k, tx => [[$ke[1], 'ACSP']]));
    is_deeply [map { $_->{bankStatus} } @{ $r->{json}{data}{items} }], [undef, 'ACSP', undef],
        'only the items named change';
};

subtest 'mixed reports: the first final status stands, bankStatus follows the latest' => sub {
    my $f = file_of($t, '1.00', '2.00', '3.00');
    my @e = e2e($f);
    post($t, $f, pain002($f, tx => [[$e[0], 'ACSC'], [$e[1], 'RJCT', 'AC06'], [$e[2], 'PDNG']]));
    my $r = post($t, $f, pain002($f, tx => [[$e[0], 'RJCT', 'MD07'], [$e[1], 'ACSC'], [$e[2], 'ACSP']]));
    is_deeply [map { [$_->{status}, $_->{bankStatus}, $_->{reasonCode}] } @{ $r->{json}{data}{items} }],
        [['PAID', 'RJCT', undef], ['RETURNED', 'ACSC', 'AC06'], ['INCLUDED', 'ACSP', undef]], 'first final stands';
    my @req = map { $_->{requestId} } @{ $r->{json}{data}{items} };
    is request($t, $req[0])->{status}, 'PAID', 'a paid request is not put back';
    is settlements($req[1]), 0, 'a returned one is not paid';
    is $r->{json}{data}{status}, 'CREATED', 'one INCLUDED: CREATED';
};

subtest 'the same report twice, under any key, at once from four clients, or later: applied once' => sub {
    my $f = file_of($t, '1.00', '2.00');
    my @e = e2e($f);
    my $xml = pain002($f, tx => [[$e[0], 'ACSC'], [$e[1], 'PDNG']]);
    my $res = $s->req_together(4, POST => "/api/v1/payment-files/$f->{id}/status-reports",
        token => $t->{treasurer}, idem => 1, raw => $xml, headers => { 'Content-Type' => 'application/xml' });
    is_deeply [map { $_->{status} } @$res], [200, 200, 200, 200], 'four 200s';
    is one('SELECT COUNT(*) FROM payment_status_reports WHERE file_id = ?', $f->{id}), 1, 'one report kept';
    is one('SELECT reports_applied FROM payment_files WHERE id = ?', $f->{id}), 1, 'applied once';
    is settlements($f->{items}[0]{requestId}), 1, 'one SETTLEMENT';
    is events('payment_file.report_applied', $f->{id}), 1, 'one report_applied event';
    is_deeply [map { $_->{json}{data}{version} } @$res], [($res->[0]{json}{data}{version}) x 4],
        'every answer shows the file as applied';
    my $before = state_of($f->{id});
    my $again = post($t, $f, $xml, type => 'text/xml; charset=utf-8');
    is $again->{status}, 200, 'later, another key, text/xml: 200';
    is state_of($f->{id}), $before, 'nothing changed';
    post($t, $f, pain002($f, tx => [[$e[1], 'ACCC']]));
    $before = state_of($f->{id});
    is post($t, $f, $xml)->{status}, 200, 'after a newer report: 200';
    is state_of($f->{id}), $before, 'nothing changed (the PDNG does not come back)';
    my $key = 'rpt-' . $$;
    my $first = post($t, $f, $xml, idem => $key);
    my $replay = post($t, $f, $xml, idem => $key);
    is $replay->{headers}{'idempotent-replayed'}, 'true', 'the same key replays';
    is $replay->{body}, $first->{body}, 'byte-identical';
    is_error post($t, $f, $xml . ' ', idem => $key), 422, 'IDEMPOTENCY_KEY_REUSED', 'other bytes, same key';
};

subtest 'reports that do not fit: 404, 400 naming the element, 409, 403, 415; nothing changed' => sub {
    my $f = file_of($t, '1.00', '2.00');
    my @e = e2e($f);
    my $other = team();
    my $before = state_of($f->{id});
    is_error post($other, $f, pain002($f, tx => [[$e[0], 'ACSC']])), 404, 'NOT_FOUND', 'another organisation';
    my $r = post($t, $f, pain002($f, tx => [['NOPE-1', 'ACSC']]));
    is_error $r, 400, 'VALIDATION_ERROR', 'unknown end-to-end id';
    ok exists $r->{json}{error}{details}{'OrgnlPmtInfAndSts[0]/TxInfAndSts[0]/OrgnlEndToEndId'}, 'named by its path';
    $r = post($t, $f, pain002($f, tx => [[$e[0], 'XXXX']]));
    is_error $r, 400, 'VALIDATION_ERROR', 'unknown status code';
    ok exists $r->{json}{error}{details}{'OrgnlPmtInfAndSts[0]/TxInfAndSts[0]/TxSts'}, 'TxSts named';
    $r = post($t, $f, pain002($f, msg => '', tx => [[$e[0], 'ACSC']]) =~ s{<MsgId></MsgId>}{}r);
    is_error $r, 400, 'VALIDATION_ERROR', 'no GrpHdr/MsgId';
    ok exists $r->{json}{error}{details}{'GrpHdr/MsgId'}, 'GrpHdr/MsgId named';
    $r = post($t, $f, pain002($f, orig => 'REMIT-0', tx => [[$e[0], 'ACSC']]));
    is_error $r, 409, 'INVALID_STATE', 'another file\'s message';
    is $r->{json}{error}{details}{reason}, 'MESSAGE_MISMATCH', 'MESSAGE_MISMATCH';
    is $r->{json}{error}{details}{element}, 'OrgnlGrpInfAndSts/OrgnlMsgId', 'details.element';
    is_error post($t, $f, pain002($f, tx => [[$e[0], 'ACSC']]), token => $t->{viewer}), 403, 'FORBIDDEN', 'a VIEWER';
    is_error post($t, $f, pain002($f, tx => [[$e[0], 'ACSC']]), type => 'text/plain'), 415,
        'UNSUPPORTED_MEDIA_TYPE', 'text/plain';
    is_error post($t, $f, pain002($f, tx => [[$e[0], 'ACSC']]), type => 'application/json'), 415,
        'UNSUPPORTED_MEDIA_TYPE', 'application/json';
    is state_of($f->{id}), $before, 'nothing changed';

    # A maker of one of the file's requests (who is a TREASURER too) may not post the answer.
    my $rid = ready_request($s, $t->{maker}, [ $t->{approver} ], amount => '3.00', currency => 'EUR',
        beneficiaryName => 'Bo', beneficiaryAccount => $IBAN)->{id};
    my $m = ok_req($s, 201, POST => '/api/v1/payment-files', token => $t->{treasurer}, idem => 1,
        json => { requestIds => [$rid] });
    $before = state_of($m->{id});
    $r = post($t, $m, pain002($m, tx => [[e2e($m), 'RJCT', 'AC04']]), token => $t->{maker});
    is_error $r, 403, 'SELF_PAYMENT_FORBIDDEN', 'a maker posts a forged RJCT';
    is_deeply $r->{json}{error}{details}{requestIds}, [$rid], 'details.requestIds';
    is state_of($m->{id}), $before, 'nothing changed';

    my $v = file_of($t, '4.00');
    ok_req($s, 200, POST => "/api/v1/payment-files/$v->{id}/void", token => $t->{treasurer}, idem => 1,
        json => { reason => 'never sent' });
    $r = post($t, $v, pain002($v, tx => [[e2e($v), 'ACSC']]));
    is_error $r, 409, 'INVALID_STATE', 'a VOIDED file';
    is $r->{json}{error}{details}{status}, 'VOIDED', 'details.status';
    is one('SELECT COUNT(*) FROM payment_status_reports WHERE file_id = ?', $v->{id}), 0, 'no report kept';
};

subtest q{a bank's own reason (Rsn/Prtry) is kept as the reason code, as it is} => sub {
    my $f = file_of($t, '1.00', '2.00', '3.00', '4.00');
    my @e = e2e($f);
    my $words = q{Konto gelöscht & "gesperrt" <\\>};
    my $xml = pain002($f, pmt => ['RJCT', { prtry => 'BLOCK-9' }],
        tx => [[$e[0], 'RJCT', { prtry => ' FOCR-77 ' }], [$e[1], 'RJCT', { prtry => $words }],
            [$e[2], 'RJCT', { prtry => 'NARR', cd => 'AC01' }]]);
    utf8::encode($xml);
    my $r = post($t, $f, $xml);
    is $r->{status}, 200, 'answers 200' or diag $r->{body};
    my @want = ('FOCR-77', $words, 'AC01', 'BLOCK-9');
    is_deeply [map { [$_->{status}, $_->{bankStatus}, $_->{reasonCode}] } @{ $r->{json}{data}{items} }],
        [map { ['RETURNED', 'RJCT', $_] } @want],
        'Prtry trimmed and kept as it is (XML escapes undone); a Cd beside it wins; PmtInfSts Prtry for the rest';
    is_deeply $s->dbh->selectcol_arrayref('SELECT reason_code FROM payment_file_items WHERE file_id = ? ORDER BY position',
        undef, $f->{id}), \@want, 'stored as reason_code';
    for my $i (0 .. 3) {
        my $rid = $r->{json}{data}{items}[$i]{requestId};
        is request($t, $rid)->{lastReturn}{reasonCode}, $want[$i], "lastReturn.reasonCode $i";
        my $ev = one(q{SELECT data FROM audit_events WHERE action = 'request.returned' AND object_id = ?}, $rid);
        is(JSON::PP->new->decode($ev)->{reasonCode}, $want[$i], "request.returned audited with it $i");
    }
    is $r->{json}{data}{status}, 'SETTLED', 'SETTLED';
    my $g = file_of($t, '5.00');
    my $long = 'é' x 35;    # 35 characters, 70 bytes
    $xml = pain002($g, grp => ['RJCT', { prtry => $long }]);
    utf8::encode($xml);
    $r = post($t, $g, $xml);
    is $r->{status}, 200, 'a group Prtry of 35 characters' or diag $r->{body};
    is $r->{json}{data}{items}[0]{reasonCode}, $long, 'kept whole';
    is one('SELECT reason_code FROM payment_file_items WHERE file_id = ?', $g->{id}), $long, 'stored whole';
};

subtest q{a reason that is not 1..35 characters of text (Prtry) or 1..4 letters or digits (Cd): 400} => sub {
    my $f = file_of($t, '1.00');
    my ($e) = e2e($f);
    my $tx = 'OrgnlPmtInfAndSts[0]/TxInfAndSts[0]/StsRsnInf/Rsn';
    my @cases = (
        ['36 characters', "$tx/Prtry", tx => [[$e, 'RJCT', { prtry => 'x' x 36 }]]],
        ['only white space', "$tx/Prtry", tx => [[$e, 'RJCT', { prtry => '   ' }]]],
        ['a tab inside', "$tx/Prtry", tx => [[$e, 'RJCT', { prtry => "A\tB" }]]],
        ['a C1 control (U+0085)', "$tx/Prtry", tx => [[$e, 'RJCT', { prtry => "A\x{85}B" }]]],
        ['payment information, 36 characters', 'OrgnlPmtInfAndSts[0]/StsRsnInf/Rsn/Prtry',
            pmt => ['RJCT', { prtry => 'é' x 36 }]],
        ['group, empty', 'OrgnlGrpInfAndSts/StsRsnInf/Rsn/Prtry', grp => ['RJCT', { prtry => '' }]],
        ['a Cd of 5', "$tx/Cd", tx => [[$e, 'RJCT', 'AC041']]],
        ['a Cd with a Prtry beside it is still a Cd', "$tx/Cd", tx => [[$e, 'RJCT', { prtry => 'OK', cd => 'A-1' }]]],
    );
    my $before = state_of($f->{id});
    for my $c (@cases) {
        my ($name, $path, %o) = @$c;
        my $xml = pain002($f, %o);
        utf8::encode($xml);
        my $r = post($t, $f, $xml);
        is_error $r, 400, 'VALIDATION_ERROR', $name;
        is_deeply [keys %{ $r->{json}{error}{details} // {} }], [$path], "names $path";
    }
    is state_of($f->{id}), $before, 'nothing changed';
};

subtest 'a report for another payment information: 409 MESSAGE_MISMATCH, nothing changed' => sub {
    my $f = file_of($t, '1.00', '2.00');
    my $o = file_of($t, '3.00');    # another file of the organisation
    my @e = e2e($f);
    my ($before, $before_o) = (state_of($f->{id}), state_of($o->{id}));
    my $msg = "PMT-$$";
    my $theirs = "<OrgnlPmtInfAndSts><OrgnlPmtInfId>$o->{messageId}</OrgnlPmtInfId><PmtInfSts>RJCT</PmtInfSts>"
        . '</OrgnlPmtInfAndSts>';
    my @cases = (
        ['an unknown payment information id', 0, pmtid => 'REMIT-0', tx => [[$e[0], 'ACSC']]],
        [q{another file's, with a payment-information RJCT}, 0, pmtid => $o->{messageId}, pmt => ['RJCT', 'AM04']],
        [q{another file's, returning one item}, 0, pmtid => $o->{messageId}, tx => [[$e[1], 'RJCT', 'AC04']]],
        [q{a second payment information, another file's RJCT}, 1, tx => [[$e[0], 'ACSC']], more => $theirs],
        ['this id in another case', 0, pmtid => lc $f->{messageId}, pmt => ['RJCT']],
    );
    for my $c (@cases) {
        my ($name, $at, %o) = @$c;
        my $r = post($t, $f, pain002($f, msg => $msg, %o));
        is_error $r, 409, 'INVALID_STATE', $name;
        is $r->{json}{error}{details}{reason}, 'MESSAGE_MISMATCH', 'MESSAGE_MISMATCH';
        is $r->{json}{error}{details}{element}, "OrgnlPmtInfAndSts[$at]/OrgnlPmtInfId", 'names the element';
        is $r->{json}{error}{details}{messageId}, $f->{messageId}, "details.messageId the file's";
    }
    is state_of($f->{id}), $before, 'nothing changed';
    is state_of($o->{id}), $before_o, 'nor in the other file';
    is one('SELECT COUNT(*) FROM payment_status_reports WHERE message_id = ?', $msg), 0, 'no report kept';
    my $r = post($t, $f, pain002($f, msg => $msg, pmt => ['RJCT', 'AM04'], tx => [[$e[0], 'ACSC']]));
    is $r->{status}, 200, q{the same MsgId naming this file's payment information is applied} or diag $r->{body};
    is_deeply [map { [$_->{status}, $_->{reasonCode}] } @{ $r->{json}{data}{items} }],
        [['PAID', undef], ['RETURNED', 'AM04']], 'as it says';
    my $h = file_of($t, '4.00');
    $r = post($t, $h, pain002($h, pmtid => undef, tx => [[e2e($h), 'ACSC']]));
    is $r->{status}, 200, 'an OrgnlPmtInfAndSts without OrgnlPmtInfId is the file\'s (OrgnlMsgId names it)';
    is $r->{json}{data}{items}[0]{status}, 'PAID', 'and applied';
};

subtest 'hostile XML: 400 MALFORMED_XML (or 413), nothing changed' => sub {
    my $f = file_of($t, '1.00');
    my ($e) = e2e($f);
    my $good = pain002($f, tx => [[$e, 'RJCT', 'AC04']]);
    my $body = $good =~ s/^<\?xml[^>]*>\n//r;
    my $lol = '<!DOCTYPE Document [<!ENTITY a "aaaaaaaaaa">'
        . join('', map { my $p = $_ - 1; qq{<!ENTITY l$_ "} . ("&l$p;" x 10) . '">' } 1 .. 9) =~ s/&l0;/&a;/gr
        . ']>';
    my $deep = sub {
        my ($n) = @_;    # elements in all, Document and CstmrPmtStsRpt included
        my $open = join '', map {"<X$_>"} 1 .. $n - 2;
        my $close = join '', map {"</X$_>"} reverse 1 .. $n - 2;
        return qq{<Document xmlns="$NS"><CstmrPmtStsRpt>$open$close</CstmrPmtStsRpt></Document>};
    };
    my @cases = (
        ['empty', ''],
        ['not well-formed', '<Document'],
        ['DOCTYPE with a file entity', qq{<?xml version="1.0"?>\n<!DOCTYPE Document [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n}
            . ($body =~ s{<MsgId>[^<]*</MsgId>}{<MsgId>&x;</MsgId>}r)],
        ['billion laughs', $lol . ($body =~ s{<MsgId>[^<]*</MsgId>}{<MsgId>&l9;</MsgId>}r)],
        ['external DTD', qq{<!DOCTYPE Document SYSTEM "http://127.0.0.1:1/x.dtd">\n$body}],
        ['a bare DOCTYPE', "<!DOCTYPE Document>\n$body"],
        ['wrong namespace', $body =~ s/pain\.002\.001\.10/pain.002.001.03/r],
        ['no namespace', $body =~ s/ xmlns="[^"]*"//r],
        ['wrong root', $body =~ s/CstmrPmtStsRpt/FIToFIPmtStsRpt/gr],
        ['invalid UTF-8', $body =~ s{<Cd>AC04</Cd>}{<Cd>A\xC3\x28</Cd>}r],
        ['overlong UTF-8', $body =~ s{<Cd>AC04</Cd>}{<Cd>\xC0\xAF</Cd>}r],
        ['33 levels', $deep->(33)],
        ['undefined entity', $body =~ s{<Cd>AC04</Cd>}{<Cd>&x;</Cd>}r],
    );
    my $before = state_of($f->{id});
    for my $c (@cases) {
        my $r = post($t, $f, $c->[1]);
        is_error $r, 400, 'MALFORMED_XML', $c->[0];
    }
    my $r = post($t, $f, $deep->(32));
    is_error $r, 400, 'VALIDATION_ERROR', '32 levels parse (then the report lacks its ids)';
    $r = post($t, $f, 'x' x (5 * 1024 * 1024 + 1));
    is_error $r, 413, 'PAYLOAD_TOO_LARGE', '5 MiB + 1 byte';
    $r = post($t, $f, '<a>' . ('x' x (50 * 1024 * 1024)) . '</a>');
    is_error $r, 413, 'PAYLOAD_TOO_LARGE', '50 MB';
    is_error post($t, $f, $body, idem => undef), 400, 'IDEMPOTENCY_KEY_MISSING', 'a good report still needs a key';
    is_error post($t, $f, '<x', idem => undef), 400, 'MALFORMED_XML', 'MALFORMED_XML comes before the key';
    is state_of($f->{id}), $before, 'nothing changed';
    my $big = $body =~ s{</OrgnlPmtInfAndSts>}{'<SplmtryData>' . ('<Envlp>' . ('p' x 1000) . '</Envlp>') x 5000 . '</SplmtryData></OrgnlPmtInfAndSts>'}er;
    ok length($big) > 5_000_000 && length($big) <= 5 * 1024 * 1024, 'a report of 5 MB';
    $r = post($t, $f, $big);
    is $r->{status}, 200, 'is taken' or diag $r->{body};
    is $r->{json}{data}{items}[0]{status}, 'RETURNED', 'and applied';
};

subtest 'kept reports: listed, and their exact bytes' => sub {
    my $f = file_of($t, '1.00');
    my ($e) = e2e($f);
    my $xml = pain002($f, msg => "Ünïcode-$$", tx => [[$e, 'ACSP']]);
    utf8::encode($xml);
    is post($t, $f, $xml)->{status}, 200, 'posted';
    my $l = $s->req(GET => "/api/v1/payment-files/$f->{id}/status-reports", token => $t->{viewer});
    is $l->{status}, 200, 'listed';
    is scalar @{ $l->{json}{data} }, 1, 'one';
    my $rp = $l->{json}{data}[0];
    is $rp->{messageId}, "Ünïcode-$$", 'messageId';
    is $rp->{createdBy}, $t->{treasurer_id}, 'createdBy';
    my $g = $s->req(GET => "/api/v1/payment-files/$f->{id}/status-reports/$rp->{id}", token => $t->{viewer});
    is $g->{status}, 200, 'read';
    like $g->{headers}{'content-type'}, qr{^application/xml}, 'application/xml';
    is $g->{body}, $xml, 'the exact bytes';
    is_error $s->req(GET => "/api/v1/payment-files/$f->{id}/status-reports/$rp->{id}", token => team()->{viewer}),
        404, 'NOT_FOUND', 'not for another organisation';
    is_error $s->req(GET => "/api/v1/payment-files/$f->{id}/status-reports?x=1", token => $t->{viewer}),
        400, 'VALIDATION_ERROR', 'unknown parameter';
};

subtest 'a returned request goes into a new file with a new end-to-end id and is paid' => sub {
    my $g = ok_req($s, 201, POST => '/api/v1/payment-files', token => $t->{treasurer}, idem => 1,
        json => { requestIds => [$returned] });
    my $old = one(q{SELECT end_to_end_id FROM payment_file_items WHERE request_id = ? AND status = 'RETURNED'}, $returned);
    isnt $g->{items}[0]{endToEndId}, $old, 'a new end-to-end id';
    is request($t, $returned)->{paymentFileId}, $g->{id}, 'in the new file';
    my $r = post($t, $g, pain002($g, tx => [[e2e($g), 'ACSC']]));
    is $r->{json}{data}{status}, 'SETTLED', 'SETTLED';
    my $q = request($t, $returned);
    is $q->{status}, 'PAID', 'request PAID';
    is $q->{lastReturn}{reasonCode}, 'AC04', 'its last return still shown';
    is settlements($returned), 1, 'exactly one SETTLEMENT';
};

done_testing;
