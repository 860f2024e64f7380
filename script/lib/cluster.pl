#!/usr/bin/env perl
# The foreground part of script/cluster (see there).
use strict;
use warnings;

use File::Path qw(remove_tree);
use Getopt::Long qw(GetOptions);
use Remit::Cluster;

my ($state, $port, $workers) = ("$Remit::Stack::TOP/var/cluster", undef, 4);
GetOptions('state=s' => \$state, 'port=i' => \$port, 'workers=i' => \$workers)
    or die "usage: script/cluster [--state DIR] [--port N] [--workers N]\n";

my $stop;
$SIG{INT} = $SIG{TERM} = sub { $stop = shift };

# Fresh nodes each run: see script/cluster.
remove_tree(map { "$state/$_" } qw(n1 n2 n3));
my $c = Remit::Cluster->new(state => $state, durable => 1, workers => $workers, deliver => 1,
    (defined $port ? (port => $port) : ()));
$c->start;
$| = 1;
print 'REMIT_URL=', $c->url, "\n";
printf STDERR "remit: balancer %s; app hosts %s; Galera nodes on ports %s (state %s)\n",
    $c->url, join(', ', map { $_->url } $c->apps), join(', ', map { $_->db_port } $c->nodes),
    $c->state_dir;
printf STDERR "remit: %s --config %s bootstrap --org NAME --email EMAIL; ^C stops\n",
    $c->front->bin, $c->front->config_path;

my $died;
until ($stop) {
    sleep 1;
    for my $p ($c->parts) {
        my $what = $p->which_died or next;
        $died = "$what of " . $p->state_dir;
        last;
    }
    last if $died;
}
warn $died ? "remit: $died exited on its own; stopping the rest\n"
    : "remit: caught SIG$stop, stopping\n";
my @found = $c->stop;
print STDERR "remit: $_\n" for @found;
exit($died ? 1 : 0);
