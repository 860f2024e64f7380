use strict;
use warnings;

use Test::More;
use File::Spec;
use File::Temp qw(tempdir);
use Remit::Test;

# Resources of a worker over many requests (DESIGN "House style": who allocates frees; the
# arena is reset per request). Two stacks of one worker each, driven by the same mix of
# requests — every route, successes, replays, and bad inputs:
#   (a) the pool under valgrind: after a few thousand requests and a SIGTERM (the worker
#       leaves through its normal cleanup), no definite leak and no memory error;
#   (b) the plain binary: the worker's VmRSS after a warm-up, and after ten times as many
#       requests again, grows by less than 1 MiB.
# Nothing here is timed. Both parts skip under the sanitizer build: ASan and valgrind do not
# mix, and ASan's quarantine makes RSS meaningless. REMIT_VALGRIND_REQUESTS and
# REMIT_RSS_WARMUP change the request counts (for a quick try, or a longer soak).

my $VALGRIND_REQUESTS = $ENV{REMIT_VALGRIND_REQUESTS} // 3000;
my $WARMUP = $ENV{REMIT_RSS_WARMUP} // 1000;
my $RSS_BOUND_KIB = 1024;

my $real_bin = File::Spec->rel2abs($ENV{REMIT_BIN} // "$Remit::Stack::TOP/src/remit");
plan skip_all => 'the sanitizer build: valgrind and RSS figures need the plain binary'
    if sanitized($real_bin);

# True when $bin is built with AddressSanitizer (the _build/asan binary, or any other).
sub sanitized {
    my ($bin) = @_;
    return 1 if $bin =~ m{/_build/asan/};
    open my $fh, '<:raw', $bin or return 0;
    local $/;
    my $bytes = <$fh> // '';
    return index($bytes, '__asan_init') >= 0;
}

# ---- the workload ------------------------------------------------------------------------

# Users of a new organisation, and the approval rules the workload relies on (USD 10,000 and
# above needs two approvals).
sub setup {
    my ($s) = @_;
    my $org = $s->new_org;
    my %u = (admin => $org->{token});
    for my $role (qw(CREATOR APPROVER TREASURER)) {
        $u{ lc $role } = $s->new_user($org->{token}, roles => [$role])->{token};
    }
    $u{approver2} = $s->new_user($org->{token}, roles => ['APPROVER'])->{token};
    my $r = $s->req(PUT => '/api/v1/approval-rules', token => $u{admin},
        json => { rules => [ { currency => 'USD', minAmount => '10000.00', approvals => 2 } ] });
    die "PUT approval-rules: $r->{status} $r->{body}" unless $r->{status} == 200;
    return \%u;
}

# Runs rounds of the mix until at least $n requests have been sent. Every response is
# checked against the status the contract gives it; $tally counts requests and collects the
# ones that were not as expected. $after->($count) runs after each round.
sub drive {
    my ($s, $u, $n, $tally, $after) = @_;
    my $target = $tally->{n} + $n;
    while ($tally->{n} < $target) {
        round($s, $u, $tally);
        $after->($tally->{n}) if $after;
    }
}

sub round {
    my ($s, $u, $t) = @_;
    my $i = ++$t->{round};
    my $want = sub {
        my ($status, $what, $method, $path, %o) = @_;
        my $r = $s->req($method, $path, %o);
        $t->{n}++;
        push @{ $t->{bad} }, "round $i, $what: $r->{status} (want $status) $r->{body}"
            if $r->{status} != $status;
        return $r;
    };
    my $id = sub { $_[0]{json} && ref $_[0]{json}{data} eq 'HASH' ? $_[0]{json}{data}{id} // 0 : 0 };
    my ($cr, $ap, $ap2, $tr, $ad) = @$u{qw(creator approver approver2 treasurer admin)};

    # A batch, its requests, edits, submit, decisions, payment; replays along the way.
    my $key = Remit::Test::random_key();
    my $b = $id->($want->(201, 'create batch', POST => '/api/v1/batches', token => $cr,
        idem => $key, json => { name => "Payroll $i", description => 'Monthly salaries' }));
    my $rb = $want->(201, 'replay create batch', POST => '/api/v1/batches', token => $cr,
        idem => $key, json => { description => 'Monthly salaries', name => "Payroll $i" });
    push @{ $t->{bad} }, "round $i: replay not marked"
        unless ($rb->{headers}{'idempotent-replayed'} // '') eq 'true';
    $want->(422, 'key reused with another body', POST => '/api/v1/batches', token => $cr,
        idem => $key, json => { name => "Other $i" });
    my $r1 = $id->($want->(201, 'add EUR request', POST => "/api/v1/batches/$b/requests",
        token => $cr, idem => 1, json => { amount => '1000.00', currency => 'EUR',
            beneficiaryName => "J\x{fc}rgen M\x{fc}ller \x{1F600}",
            beneficiaryAccount => 'de89 3704 0044 0532 0130 00', purpose => 'Invoice' }));
    my $r2 = $id->($want->(201, 'add USD request', POST => "/api/v1/batches/$b/requests",
        token => $cr, idem => 1, json => { amount => 25000, currency => 'USD',
            beneficiaryName => 'Acme Inc', beneficiaryAccount => '12345678' }));
    my $r3 = $id->($want->(201, 'add JPY request', POST => "/api/v1/batches/$b/requests",
        token => $cr, idem => 1, json => { amount => '5', currency => 'JPY',
            beneficiaryName => 'Tanaka', beneficiaryAccount => 'JP-1' }));
    $want->(204, 'delete a draft request', DELETE => "/api/v1/requests/$r3", token => $cr);
    $want->(200, 'patch a draft request', PATCH => "/api/v1/requests/$r1", token => $cr,
        headers => { 'If-Match' => '"1"' }, json => { purpose => "Invoice $i", amount => '999.5' });
    $want->(412, 'patch with a stale If-Match', PATCH => "/api/v1/requests/$r1", token => $cr,
        headers => { 'If-Match' => '"1"' }, json => { purpose => 'stale' });
    $want->(400, 'patch with a bad amount', PATCH => "/api/v1/requests/$r1", token => $cr,
        json => { amount => '1.001' });
    $want->(200, 'get batch', GET => "/api/v1/batches/$b", token => $cr);
    $want->(200, 'list its requests', GET => "/api/v1/batches/$b/requests?limit=10", token => $ap);
    my $skey = Remit::Test::random_key();
    $want->(200, 'submit', POST => "/api/v1/batches/$b/submit", token => $cr, idem => $skey);
    $want->(200, 'replay submit', POST => "/api/v1/batches/$b/submit", token => $cr, idem => $skey);
    $want->(409, 'patch a submitted request', PATCH => "/api/v1/requests/$r1", token => $cr,
        json => { purpose => 'late' });
    $want->(403, 'approve without the role', POST => "/api/v1/requests/$r1/approve",
        token => $cr, idem => 1);
    $want->(200, 'approve', POST => "/api/v1/requests/$r1/approve", token => $ap, idem => 1,
        json => { comment => 'fine' });
    $want->(409, 'approve an approved request', POST => "/api/v1/requests/$r1/approve",
        token => $ap, idem => 1);
    $want->(200, 'first of two approvals', POST => "/api/v1/requests/$r2/approve", token => $ap,
        idem => 1);
    $want->(409, 'approve twice', POST => "/api/v1/requests/$r2/approve", token => $ap, idem => 1);
    $want->(400, 'reject without a comment', POST => "/api/v1/requests/$r2/reject",
        token => $ap2, idem => 1, json => {});
    $want->(200, 'reject', POST => "/api/v1/requests/$r2/reject", token => $ap2, idem => 1,
        json => { comment => 'duplicate' });
    my $pkey = Remit::Test::random_key();
    $want->(200, 'mark paid', POST => "/api/v1/requests/$r1/mark-paid", token => $tr,
        idem => $pkey, json => { paymentReference => "REF-$i" });
    $want->(200, 'replay mark paid', POST => "/api/v1/requests/$r1/mark-paid", token => $tr,
        idem => $pkey, json => { paymentReference => "REF-$i" });
    $want->(200, 'get request', GET => "/api/v1/requests/$r1", token => $tr);
    $want->(200, 'approvals', GET => "/api/v1/requests/$r2/approvals", token => $tr);
    $want->(200, 'ledger entries', GET => "/api/v1/ledger/entries?requestId=$r1", token => $tr);
    $want->(200, 'ledger balances', GET => '/api/v1/ledger/balances', token => $tr);
    $want->(200, 'audit', GET => "/api/v1/audit?objectId=$b&limit=10", token => $ad);
    $want->(200, 'batches list', GET => '/api/v1/batches?status=COMPLETED&limit=10', token => $ap);
    $want->(200, 'me', GET => '/api/v1/me', token => $ap2);
    $want->(200, 'healthz', GET => '/healthz');

    # A batch cancelled; users, tokens and rules.
    my $b2 = $id->($want->(201, 'create another batch', POST => '/api/v1/batches', token => $cr,
        idem => 1, json => { name => "Spare $i" }));
    $want->(200, 'cancel it', POST => "/api/v1/batches/$b2/cancel", token => $cr, idem => 1);
    my $email = "user$i-$$\@example.test";
    my $user = $id->($want->(201, 'create user', POST => '/api/v1/users', token => $ad, idem => 1,
        json => { email => $email, name => "User $i", roles => ['VIEWER'] }));
    $want->(409, 'duplicate email', POST => '/api/v1/users', token => $ad, idem => 1,
        json => { email => uc $email, name => 'Again', roles => ['VIEWER'] });
    my $tok = $want->(201, 'create token', POST => "/api/v1/users/$user/tokens", token => $ad,
        json => { name => 'ci' });
    my $tid = $tok->{json} ? $tok->{json}{data}{id} // 0 : 0;
    $want->(204, 'revoke token', DELETE => "/api/v1/tokens/$tid", token => $ad);
    $want->(401, 'revoked token', GET => '/api/v1/me',
        token => $tok->{json} ? $tok->{json}{data}{token} // 'x' : 'x');
    $want->(200, 'users list', GET => '/api/v1/users?limit=5', token => $ad);
    $want->(200, 'rules', GET => '/api/v1/approval-rules', token => $ap);

    # Bad inputs, each refused at its own step of the pipeline.
    my %post = (token => $cr, idem => 1);
    $want->(400, 'truncated JSON', POST => '/api/v1/batches', %post, raw => '{"name":');
    $want->(400, 'byte-order mark', POST => '/api/v1/batches', %post, raw => "\xEF\xBB\xBF{}");
    $want->(400, 'overlong UTF-8', POST => '/api/v1/batches', %post, raw => "{\"name\":\"\xC0\xAF\"}");
    $want->(400, 'lone surrogate', POST => '/api/v1/batches', %post, raw => '{"name":"\ud800"}');
    $want->(400, 'duplicate member', POST => '/api/v1/batches', %post,
        raw => '{"name":"a","\u006eame":"b"}');
    $want->(400, '33 levels', POST => '/api/v1/batches', %post,
        raw => '{"a":' . ('[' x 32) . (']' x 32) . '}');
    $want->(400, 'not an object', POST => '/api/v1/batches', %post, raw => '["name"]');
    $want->(415, 'wrong content type', POST => '/api/v1/batches', %post, raw => '{}',
        headers => { 'Content-Type' => 'text/plain' });
    $want->(413, 'body too large', POST => '/api/v1/batches', %post,
        json => { name => 'x' x 70000 });
    $want->(400, 'no Idempotency-Key', POST => '/api/v1/batches', token => $cr, json => { name => 'n' });
    $want->(400, 'bad Idempotency-Key', POST => '/api/v1/batches', token => $cr, idem => 'a b',
        json => { name => 'n' });
    $want->(400, 'unknown field', POST => '/api/v1/batches', %post, json => { name => 'n', x => 1 });
    $want->(400, 'control character', POST => '/api/v1/batches', %post, json => { name => "a\x{85}b" });
    $want->(400, 'bad request fields', POST => "/api/v1/batches/$b2/requests", %post,
        json => { amount => '1e3', currency => 'usd', beneficiaryName => '',
            beneficiaryAccount => 'DE00 0000 0000 0000 0000 00' });
    $want->(400, 'bad rules', PUT => '/api/v1/approval-rules', token => $ad,
        json => { rules => [ { currency => 'USD', minAmount => '-1', approvals => 11 } ] });
    $want->(400, 'bad limit', GET => '/api/v1/batches?limit=0', token => $cr);
    $want->(400, 'bad cursor', GET => '/api/v1/batches?cursor=%ff%00', token => $cr);
    $want->(400, 'unknown query parameter', GET => '/api/v1/batches?x=1', token => $cr);
    $want->(404, 'unknown batch', GET => '/api/v1/batches/999999999999', token => $cr);
    $want->(404, 'unknown path', GET => '/api/v1/nothing/here', token => $cr);
    $want->(405, 'wrong method', PUT => "/api/v1/batches/$b", token => $cr, json => {});
    $want->(401, 'no token', GET => '/api/v1/batches');
    $want->(401, 'unknown token', GET => '/api/v1/batches', token => 'not-a-token');
}

# VmRSS of a process in KiB.
sub rss_kib {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return;
    while (<$fh>) {
        return $1 if /^VmRSS:\s+(\d+)\s+kB/;
    }
    return;
}

sub no_surprises {
    my ($tally, $what) = @_;
    my @bad = @{ $tally->{bad} // [] };
    ok !@bad, "$what: every response as the contract says ($tally->{n} requests)"
        or diag join "\n", grep { defined } @bad[0 .. 9];
}

# ---- (a) valgrind ------------------------------------------------------------------------

SKIP: {
    my $valgrind = `command -v valgrind 2>/dev/null`;
    chomp $valgrind;
    skip 'valgrind is not installed (script/bootstrap installs it)', 1 unless $valgrind;

    subtest 'under valgrind: no definite leak and no memory error in the worker' => sub {
        my $dir = tempdir('remit-vg-XXXXXX', TMPDIR => 1, CLEANUP => 1);
        # Only `serve` runs under valgrind; migrate and bootstrap run as they are. The
        # worker is a fork of the master, so it gets a log of its own (%p).
        my $wrapper = "$dir/remit";
        open my $fh, '>', $wrapper or die "write $wrapper: $!";
        print {$fh} <<"EOF";
#!/bin/sh
case " \$* " in
*" serve "*) exec valgrind --leak-check=full --errors-for-leak-kinds=definite \\
	--show-leak-kinds=definite --error-exitcode=99 --num-callers=30 \\
	--log-file='$dir/valgrind.%p.log' '$real_bin' "\$@" ;;
esac
exec '$real_bin' "\$@"
EOF
        close $fh or die "write $wrapper: $!";
        chmod 0755, $wrapper;

        my $s = Remit::Test->stack(bin => $wrapper, conf => { workers => 1 });
        my ($worker) = $s->worker_pids;
        ok $worker, "one worker (pid $worker)";
        my $u = setup($s);
        my %tally = (n => 0);
        drive($s, $u, $VALGRIND_REQUESTS, \%tally);
        no_surprises(\%tally, 'under valgrind');
        is_deeply [ $s->worker_pids ], [$worker], 'the same worker served them all';

        $s->stop_remit;    # SIGTERM: the master drains, the worker returns from worker_run
        my $log = do { local (@ARGV, $/) = $s->log_path; <> } // '';
        like $log, qr/"msg":"worker exited","worker":$worker,"status":0\b/,
            'the worker exited with status 0 (valgrind gives 99 on an error or a definite leak)';
        my $vg = do { local (@ARGV, $/) = "$dir/valgrind.$worker.log"; <> } // '';
        my ($errors) = $vg =~ /ERROR SUMMARY: (\d+) errors/;
        my ($definite) = $vg =~ /definitely lost: ([\d,]+) bytes/;
        $definite //= $vg =~ /All heap blocks were freed/ ? 0 : undef;
        is $errors, 0, 'valgrind: 0 errors';
        is defined $definite ? $definite =~ tr/,//dr : undef, 0, 'valgrind: 0 bytes definitely lost';
        my ($heap) = $vg =~ /(HEAP SUMMARY:.*?)(?:==\d+== \n)*==\d+== ERROR SUMMARY/s;
        diag "valgrind, worker $worker after $tally{n} requests:\n"
            . join("\n", map { s/^==\d+== ?//r } grep { /\S/ } split /\n/, $heap // $vg)
            . "\n" . ($vg =~ /(ERROR SUMMARY:.*)/)[0];
        $s->stop;
    };
}

# ---- (b) RSS -----------------------------------------------------------------------------

subtest "worker RSS grows by less than $RSS_BOUND_KIB KiB from $WARMUP to 11 x $WARMUP requests" => sub {
    my $s = Remit::Test->stack(conf => { workers => 1 });
    my ($worker) = $s->worker_pids;
    ok $worker, "one worker (pid $worker)";
    my $u = setup($s);
    my %tally = (n => 0);
    my @samples;    # [requests, KiB], about every $WARMUP requests
    my $sample = sub {
        my ($n) = @_;
        push @samples, [ $n, rss_kib($worker) ] if !@samples || $n - $samples[-1][0] >= $WARMUP;
    };
    drive($s, $u, $WARMUP, \%tally);
    my $base = [ $tally{n}, rss_kib($worker) ];
    @samples = ($base);
    drive($s, $u, 10 * $WARMUP, \%tally, $sample);
    my $end = [ $tally{n}, rss_kib($worker) ];
    push @samples, $end if $samples[-1][0] != $end->[0];
    no_surprises(\%tally, 'RSS run');
    is_deeply [ $s->worker_pids ], [$worker], 'the same worker served them all';
    ok defined $base->[1] && defined $end->[1], 'VmRSS read from /proc';
    my $growth = ($end->[1] // 0) - ($base->[1] // 0);
    cmp_ok $growth, '<', $RSS_BOUND_KIB,
        "VmRSS $base->[1] KiB after $base->[0] requests, $end->[1] KiB after $end->[0]";
    diag sprintf "worker VmRSS (KiB) by requests served: %s; growth %d KiB",
        join(', ', map { "$_->[0]: $_->[1]" } @samples), $growth;
};

done_testing;
