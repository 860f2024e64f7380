#!/usr/bin/env perl
# The foreground part of script/server: one durable stack on a fixed port and state dir.
use strict;
use warnings;

use Getopt::Long qw(GetOptions);
use Remit::Stack;

my ($port, $state) = (8080, "$Remit::Stack::TOP/var");
GetOptions('port=i' => \$port, 'state=s' => \$state)
    or die "usage: script/server [--port N] [--state DIR]\n";

my $stop;
$SIG{INT} = $SIG{TERM} = sub { $stop = shift };

my $stack = Remit::Stack->new(state => $state, port => $port, durable => 1);
$stack->start;
$| = 1;
print 'REMIT_URL=', $stack->url, "\n";
printf STDERR "remit: config %s; logs %s, %s/mysqld.log, %s/nginx/; ^C stops\n",
    $stack->config_path, $stack->log_path, $stack->state_dir, $stack->state_dir;

my $died;
until ($stop) {
    sleep 1;
    $died = $stack->which_died and last;
}
warn $died ? "remit: $died exited on its own; stopping the rest\n"
    : "remit: caught SIG$stop, stopping\n";
$stack->stop;
print STDERR "remit: $_\n" for $stack->findings;
exit($died ? 1 : 0);
