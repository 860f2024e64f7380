#!/usr/bin/env perl
# The foreground part of script/server: one durable stack on a fixed port and state dir.
use strict;
use warnings;

use Getopt::Long qw(GetOptions);
use POSIX qw(strftime);
use Time::HiRes qw(sleep);
use Remit::Stack;

my ($port, $state) = (8080, "$Remit::Stack::TOP/var");
GetOptions('port=i' => \$port, 'state=s' => \$state)
    or die "usage: script/server [--port N] [--state DIR]\n";

# As root, MariaDB runs as mysql and the pool and the deliverer as remit (issue 23; README
# "Running as root"): the users are created when missing, like Debian's packages would.
if ($> == 0) {
    for my $user ($Remit::Stack::DB_OS_USER, $Remit::Stack::POOL_OS_USER) {
        next if defined getpwnam $user;
        system('useradd', '--system', '--user-group', '--no-create-home', '--home-dir',
            '/nonexistent', '--shell', '/usr/sbin/nologin', $user) == 0
            or die "script/server: useradd $user failed\n";
        warn "remit: created the system user $user\n";
    }
}

my $stop;
$SIG{INT} = $SIG{TERM} = sub { $stop = shift };

# `remit deliver` beside the pool; webhooks may reach this loopback stack's own receivers.
my $stack = Remit::Stack->new(state => $state, port => $port, durable => 1, deliver => 1,
    unprivileged => 1,
    conf => { webhook_allow_http => 'yes', webhook_allow_private => 'yes' });
$stack->start;
$| = 1;
print 'REMIT_URL=', $stack->url, "\n";
printf STDERR "remit: config %s; logs %s, %s/mysqld.log, %s/nginx/; ^C stops\n",
    $stack->config_path, $stack->log_path, $stack->state_dir, $stack->state_dir;

# Whatever dies is started again (MariaDB on the same datadir, with a bounded restart rate);
# the rest keeps serving meanwhile: 503 with Retry-After while the database is away.
until ($stop) {
    sleep 0.5;
    $stack->supervise(sub {
        printf STDERR "remit: %s %s\n", strftime('%Y-%m-%dT%H:%M:%SZ', gmtime), $_[0];
    });
}
warn "remit: caught SIG$stop, stopping\n";
$stack->stop;
print STDERR "remit: $_\n" for $stack->findings;
exit 0;
