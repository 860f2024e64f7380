# E-mail from the audit chain (API §12), through `remit deliver`, to a real SMTP server on
# loopback (Debian's python3-aiosmtpd, a Maildir): the invitation link, "waiting for your
# approval" to the APPROVERs who may decide, "rejected" to the creator, "returned by the bank"
# to every active TREASURER when a pain.002 returns a request; a retry after the SMTP server
# was down, or of a pass that sent but did not commit, carries the same Message-ID.
use strict;
use warnings;
use Test::More;
use Remit::Test;
use Remit::Webhook;
use POSIX ();
use Time::HiRes qw(sleep);

my $smtp_port = Remit::Stack::_free_port();
my $s = Remit::Test->stack(conf => { smtp_url => "smtp://127.0.0.1:$smtp_port",
    mail_from => 'remit@example.test', public_url => 'https://remit.example.test',
    webhook_time_scale => 1000, deliver_poll_ms => 20 });
my $dbh = $s->dbh;
my $box = $s->state_dir . '/maildir';
my $smtp;

sub smtp_start {
    $smtp = fork // die "fork: $!";
    if (!$smtp) {
        setpgrp(0, 0);
        open STDOUT, '>>', $s->state_dir . '/smtp.log';
        open STDERR, '>&', \*STDOUT;
        exec('/usr/bin/python3', '-m', 'aiosmtpd', '-n', '-l', "127.0.0.1:$smtp_port",
            '-c', 'aiosmtpd.handlers.Mailbox', $box) or POSIX::_exit(127);
    }
    wait_for(10, sub { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$smtp_port") });
}

sub smtp_stop { kill 'KILL', $smtp; waitpid $smtp, 0 }

# Every message in the Maildir: {to, subject, id, body}.
sub mails {
    my @m;
    for my $f (glob("$box/new/*"), glob("$box/cur/*")) {
        open my $fh, '<', $f or next;
        local $/;
        my $text = <$fh>;
        my %h;
        $h{ lc $1 } = $2 while $text =~ /^([A-Za-z-]+): (.*?)\r?$/mg;
        push @m, { to => $h{to}, subject => $h{subject}, id => $h{'message-id'}, body => $text };
    }
    return @m;
}

sub mails_to { my $to = shift; grep { $_->{to} eq $to } mails() }

smtp_start();
my $d = Remit::Webhook::deliverer($s);
my $org = $s->new_org;
my $admin = $org->{token};

subtest 'the first ADMIN gets the invitation of remit bootstrap' => sub {
    my $email = $dbh->selectrow_array('SELECT email FROM users WHERE id = ?', undef, $org->{userId});
    $s->wait_until('mailed', sub { mails_to($email) });
    my ($m) = mails_to($email);
    like $m->{body}, qr{https://remit\.example\.test/#/accept\?token=\Q$org->{invitation}\E},
        'the link carries the invitation';
    like $m->{body}, qr{Content-Type: text/plain}, 'plain text';
    like $m->{body}, qr{Content-Type: text/html}, 'and HTML';
    like $m->{id}, qr/^<remit\.event-\d+\.user-$org->{userId}\@remit>$/, 'Message-ID from the event';
    # The SMTP server has the mail before the deliverer commits what it did (its priority is
    # below the pool's): the row goes with that commit.
    $s->wait_until('the token kept for the mail is gone once mailed', sub {
        $dbh->selectrow_array('SELECT COUNT(*) FROM invitation_mails WHERE user_id = ?', undef,
            $org->{userId}) == 0 });
};

my $creator = $s->new_user($admin, roles => ['CREATOR']);
my @approvers = map { $s->new_user($admin, roles => ['APPROVER']) } 1 .. 2;
my $inactive = $s->new_user($admin, roles => ['APPROVER']);
is $s->req(PATCH => "/api/v1/users/$inactive->{id}", token => $admin,
    json => { active => JSON::PP::false })->{status}, 200, 'an approver deactivated';

subtest 'an invitation is mailed with its link' => sub {
    my $u = $s->new_user($admin, roles => ['VIEWER']);
    my $res = $s->req(POST => "/api/v1/users/$u->{id}/invitations", token => $admin);
    is $res->{status}, 201, 'invited';
    is $res->{json}{data}{mail}, 'queued', 'the answer says the link is mailed ("queued")';
    $s->wait_until('mailed', sub { mails_to($u->{email}) });
    my ($m) = mails_to($u->{email});
    like $m->{body}, qr{/#/accept\?token=\Q$res->{json}{data}{token}\E}, 'this invitation\'s token';
    is $m->{subject}, 'Your invitation to remit', 'subject';
};

my ($batch, $request);
subtest 'a submitted batch: each APPROVER who may decide hears of it' => sub {
    my $ct = $creator->{token};
    $batch = $s->req(POST => '/api/v1/batches', token => $ct, idem => 1,
        json => { name => 'June <suppliers>' })->{json}{data}{id};
    $request = $s->req(POST => "/api/v1/batches/$batch/requests", token => $ct, idem => 1,
        json => { amount => '12.34', currency => 'EUR', beneficiaryName => 'Acme GmbH',
            beneficiaryAccount => 'DE89 3704 0044 0532 0130 00', purpose => 'invoice 7' })->{json}{data}{id};
    is $s->req(POST => "/api/v1/batches/$batch/submit", token => $ct, idem => 1)->{status}, 200,
        'submitted';
    $s->wait_until('both approvers mailed', sub { (grep { mails_to($_->{email}) } @approvers) == 2 });
    for my $a (@approvers) {
        my ($m) = mails_to($a->{email});
        is $m->{subject}, 'A batch is waiting for your approval', "$a->{email}: subject";
        like $m->{body}, qr{/#/batches/$batch}, 'links the batch';
        like $m->{body}, qr{June &lt;suppliers&gt;}, 'the HTML part escapes the name';
    }
    sleep 0.5;
    is scalar(mails_to($inactive->{email})), 0, 'not the deactivated approver';
    is scalar(mails_to($creator->{email})), 0, 'not the creator, who is no approver';
};

subtest 'a rejected request: its creator hears of it' => sub {
    is $s->req(POST => "/api/v1/requests/$request/reject", token => $approvers[0]{token}, idem => 1,
        json => { comment => 'wrong amount' })->{status}, 200, 'rejected';
    $s->wait_until('mailed', sub { mails_to($creator->{email}) });
    my ($m) = mails_to($creator->{email});
    is $m->{subject}, 'A payment request was rejected', 'subject';
    like $m->{body}, qr{Acme GmbH}, 'names the beneficiary';
};

# A pain.002 rejecting (RJCT) the items of payment file $f, in order, with @reasons (undef: none).
my $reports = 0;
sub pain002_rjct {
    my ($f, @reasons) = @_;
    my $tx = join '', map {
        my $why = $reasons[$_] // '';
        "<TxInfAndSts><OrgnlEndToEndId>$f->{items}[$_]{endToEndId}</OrgnlEndToEndId><TxSts>RJCT</TxSts>"
            . ($why ne '' ? "<StsRsnInf><Rsn><Cd>$why</Cd></Rsn></StsRsnInf>" : '') . '</TxInfAndSts>'
    } 0 .. $#{ $f->{items} };
    $reports++;
    return '<?xml version="1.0" encoding="UTF-8"?>'
        . '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><CstmrPmtStsRpt>'
        . "<GrpHdr><MsgId>RPT-$$-$reports</MsgId><CreDtTm>2026-12-07T10:00:00</CreDtTm></GrpHdr>"
        . "<OrgnlGrpInfAndSts><OrgnlMsgId>$f->{messageId}</OrgnlMsgId>"
        . '<OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts>'
        . "<OrgnlPmtInfAndSts><OrgnlPmtInfId>$f->{messageId}</OrgnlPmtInfId>$tx</OrgnlPmtInfAndSts>"
        . '</CstmrPmtStsRpt></Document>';
}

my (@treasurers, $returned);
# An approved request of $amount EUR to $name in a payment file: [request id, file].
sub in_a_file {
    my ($amount, $name) = @_;
    my $ct = $creator->{token};
    my $b = $s->req(POST => '/api/v1/batches', token => $ct, idem => 1,
        json => { name => "For $name" })->{json}{data}{id};
    my $rq = $s->req(POST => "/api/v1/batches/$b/requests", token => $ct, idem => 1,
        json => { amount => $amount, currency => 'EUR', beneficiaryName => $name,
            beneficiaryAccount => 'DE89 3704 0044 0532 0130 00', purpose => 'invoice 8' })->{json}{data}{id};
    is $s->req(POST => "/api/v1/batches/$b/submit", token => $ct, idem => 1)->{status}, 200, 'submitted';
    is $s->req(POST => "/api/v1/requests/$rq/approve", token => $approvers[0]{token}, idem => 1)
        ->{status}, 200, 'approved';
    my $f = $s->req(POST => '/api/v1/payment-files', token => $treasurers[0]{token}, idem => 1,
        json => { requestIds => [$rq] });
    is $f->{status}, 201, 'in a payment file' or diag $f->{body};
    return ($rq, $f->{json}{data});
}

sub report {
    my ($f, @reasons) = @_;
    my $r = $s->req(POST => "/api/v1/payment-files/$f->{id}/status-reports",
        token => $treasurers[0]{token}, idem => 1, raw => pain002_rjct($f, @reasons),
        headers => { 'Content-Type' => 'application/xml' });
    is $r->{status}, 200, 'the report returns the request' or diag $r->{body};
}

subtest 'a request returned by the bank: every active TREASURER hears of it, once' => sub {
    @treasurers = map { $s->new_user($admin, roles => ['TREASURER']) } 1 .. 2;
    push @treasurers, $s->new_user($admin, roles => ['CREATOR', 'TREASURER']);
    my $gone = $s->new_user($admin, roles => ['TREASURER']);
    is $s->req(PATCH => "/api/v1/users/$gone->{id}", token => $admin,
        json => { active => JSON::PP::false })->{status}, 200, 'a treasurer deactivated';
    is $s->req(PUT => '/api/v1/debtor-accounts', token => $admin, json => { accounts => [{
        currency => 'EUR', name => 'Acme', iban => 'FR1420041010050500013M02606' }] })->{status},
        200, 'a debtor account';
    my ($rq, $f) = in_a_file('1234.5', 'Zeta & Sons');
    report($f, 'AC04');
    my $event = $dbh->selectrow_array(q{SELECT id FROM audit_events WHERE action = 'request.returned'
        AND object_id = ?}, undef, $rq);
    ok $event, 'request.returned audited';
    $returned = sub { grep { $_->{subject} eq 'A payment was returned by the bank' } mails_to($_[0]) };
    $s->wait_until('every treasurer mailed', sub { (grep { $returned->($_->{email}) } @treasurers) == 3 });
    sleep 0.5;   # a second mail to anyone would have come by now
    for my $u (@treasurers) {
        my @m = $returned->($u->{email});
        is scalar(@m), 1, "$u->{email}: exactly one mail";
        is $m[0]{id}, "<remit.event-$event.user-$u->{id}\@remit>", 'Message-ID from the event and the treasurer';
        like $m[0]{body}, qr{payment request $rq of 1234\.50 EUR to Zeta &amp; Sons}, 'HTML: id, amount, beneficiary escaped';
        like $m[0]{body}, qr{request $rq of 1234\.50 EUR to Zeta & Sons was returned by the bank: AC04 \(account closed\)},
            'plain text: the reason in words';
        like $m[0]{body}, qr{https://remit\.example\.test/#/requests/$rq}, 'links the request';
        like $m[0]{body}, qr{Content-Type: text/html}, 'and an HTML part';
    }
    for my $u ($gone, $creator, @approvers, { email => $dbh->selectrow_array(
            'SELECT email FROM users WHERE id = ?', undef, $org->{userId}) }) {
        is scalar($returned->($u->{email})), 0, "not $u->{email}, no active treasurer";
    }

    # The deliverer killed after the SMTP server took the mails but before its cursor moved:
    # the next one mails the event again, recognisably the same mail.
    Remit::Webhook::stop_deliverer($d);
    $dbh->do(q{UPDATE mail_cursors SET cursor_seq = (SELECT seq - 1 FROM audit_events WHERE id = ?)
        WHERE org_id = ?}, undef, $event, $org->{orgId});
    $d = Remit::Webhook::deliverer($s);
    $s->wait_until('mailed again', sub { (grep { $returned->($_->{email}) == 2 } @treasurers) == 3 });
    for my $u (@treasurers) {
        my @ids = map { $_->{id} } $returned->($u->{email});
        is $ids[1], $ids[0], "$u->{email}: the retry has the same Message-ID";
    }
};

subtest 'returned without a reason code, or with one remit has no words for' => sub {
    for my $case ([undef, qr/was returned by the bank \(no reason given\)\./],
            ['XY12', qr/was returned by the bank: XY12\./]) {
        my ($rq, $f) = in_a_file('7', 'Omega Ltd');
        report($f, $case->[0]);
        my $mine = sub { grep { $_->{body} =~ m{/#/requests/$rq\b} } $returned->($_[0]) };
        $s->wait_until('every treasurer mailed', sub { (grep { $mine->($_->{email}) } @treasurers) == 3 });
        for my $u (@treasurers) {
            my @m = $mine->($u->{email});
            is scalar(@m), 1, "$u->{email}: one mail";
            like $m[0]{body}, qr/request $rq of 7\.00 EUR to Omega Ltd $case->[1]/, 'what the bank said'
                or diag $m[0]{body};
        }
    }
};

subtest 'SMTP down: retried on the schedule, nothing lost' => sub {
    smtp_stop();
    my $u = $s->new_user($admin, roles => ['VIEWER']);
    my $res = $s->req(POST => "/api/v1/users/$u->{id}/invitations", token => $admin);
    is $res->{status}, 201, 'invited while SMTP is down';
    $s->wait_until('the mail cursor counts failures', sub {
        $dbh->selectrow_array('SELECT failures FROM mail_cursors WHERE org_id = ?', undef,
            $org->{orgId}) >= 2 });
    is scalar(mails_to($u->{email})), 0, 'nothing sent yet';
    smtp_start();
    $s->wait_until('mailed once SMTP is back', sub { mails_to($u->{email}) }, 30);
    $s->wait_until('the failures start again (with the commit after the mail)', sub {
        $dbh->selectrow_array('SELECT failures FROM mail_cursors WHERE org_id = ?', undef,
            $org->{orgId}) == 0 });
};

Remit::Webhook::stop_deliverer($d);
smtp_stop();
is_deeply [Remit::Webhook::findings()], [], 'no error in the deliverer\'s log';
done_testing;
