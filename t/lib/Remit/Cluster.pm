package Remit::Cluster;

# A load-balanced remit deployment on this one machine, every part on loopback:
#
#   client ─▶ front nginx (load balancer, nginx/lb.conf.in)
#                 ├─▶ app host 1: nginx (nginx/remit.conf.in) ─▶ pool ─▶ node 1, else 2, 3
#                 └─▶ app host 2: nginx (nginx/remit.conf.in) ─▶ pool ─▶ node 2, else 3, 1
#   nodes 1-3: a MariaDB Galera cluster (own datadir, port, socket, gcomm/IST/SST ports)
#
# Used by t/cluster/*.t, script/cluster and bench/run --cluster.
#
#   my $c = Remit::Cluster->new(name => 'faults');    # or state => DIR (kept)
#   $c->start;
#   $c->front->req(...), $c->front->new_org     # Remit::Test methods, through the balancer
#   $c->node(2)->dbh, $c->node(2)->remit('verify-audit')
#   $c->kill_node(2); $c->restart_node(2);
#   $c->app(1)->worker_pids, $c->app(1)->master_pid
#   $c->stop;                                   # balancer, app hosts, nodes; then findings
#
# Each part is a Remit::Stack (a node: Remit::Cluster::Node, whose mariadbd gets the wsrep
# options; an app host: a stack with no database of its own whose remit.conf lists the
# nodes; the front: Remit::Cluster::Front, a Remit::Test whose nginx is the balancer), so
# each is started and stopped by the pid recorded when it was started.

use strict;
use warnings;

use Carp qw(croak);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);

use Remit::Stack;

our $GALERA = $ENV{REMIT_GALERA} // '/usr/lib/galera/libgalera_smm.so';

my @LIVE;

sub new {
    my ($class, %o) = @_;
    my $self = bless {
        owner   => $$,
        nodes   => $o{nodes} // 3,
        hosts   => $o{hosts} // 2,
        workers => $o{workers} // 4,
        durable => $o{durable} ? 1 : 0,
        bin     => $o{bin},
        port    => $o{port},
        conf    => { %{ $o{conf} // {} } },
        deliver => $o{deliver} ? 1 : 0,   # each app host runs `remit deliver` too
    }, $class;
    if (defined $o{state}) {
        $self->{state} = File::Spec->rel2abs($o{state});
        make_path($self->{state});
        $self->{keep} = 1;
    } else {
        my $name = substr(($o{name} // 'cluster') =~ s/[^\w.-]+/_/gr, 0, 16);
        $self->{state} = tempdir("$name-XXXX", DIR => Remit::Stack::_tmp_base());
        # nginx's unprivileged workers must traverse it to reach each app host's socket.
        chmod 0711, $self->{state};
        $self->{keep} = $ENV{REMIT_KEEP} ? 1 : 0;
    }
    my %common = (durable => $self->{durable}, (defined $o{bin} ? (bin => $o{bin}) : ()));
    $self->{node} = [ map {
        Remit::Cluster::Node->new(%common, state => "$self->{state}/n$_", index => $_)
    } 1 .. $self->{nodes} ];
    $self->{app} = [ map {
        Remit::Stack->new(%common, state => "$self->{state}/a$_")
    } 1 .. $self->{hosts} ];
    # The front is a Remit::Test (req, new_org, ...) in a test that loaded Remit::Test, a plain
    # Remit::Stack elsewhere: Test::More in script/cluster or bench/cluster would make them exit
    # 255 ("no tests run").
    @Remit::Cluster::Front::ISA = $INC{'Remit/Test.pm'} ? ('Remit::Test') : ('Remit::Stack');
    $self->{front} = Remit::Cluster::Front->new(%common, state => "$self->{state}/lb",
        (defined $o{port} ? (port => $o{port}) : ()));
    $_->{keep} = $self->{keep} for $self->parts;
    push @LIVE, $self;
    Scalar::Util::weaken($LIVE[-1]);
    return $self;
}

sub node  { $_[0]{node}[ $_[1] - 1 ] }
sub app   { $_[0]{app}[ $_[1] - 1 ] }
sub front { $_[0]{front} }
sub url   { $_[0]{front}->url }
sub nodes { @{ $_[0]{node} } }
sub apps  { @{ $_[0]{app} } }
sub parts { my $s = shift; ($s->{front}, @{ $s->{app} }, @{ $s->{node} }) }
sub state_dir { $_[0]{state} }

# "127.0.0.1:P1,127.0.0.1:P2,..." beginning with node $first: app host N prefers node N.
sub db_nodes {
    my ($self, $first) = @_;
    my @n = map { ($first - 1 + $_) % $self->{nodes} + 1 } 0 .. $self->{nodes} - 1;
    return join ',', map { '127.0.0.1:' . $self->node($_)->db_port } @n;
}

sub start {
    my ($self) = @_;
    my @nodes = $self->nodes;
    # Each node's group communication, IST and SST ports, known before any starts.
    for my $n (@nodes) {
        $n->{wsrep_ports} = [ map { Remit::Stack::_free_port() } 1 .. 3 ];
    }
    my $gcomm = 'gcomm://' . join ',', map { "127.0.0.1:$_->{wsrep_ports}[0]" } @nodes;
    $_->{gcomm} = $gcomm for @nodes;

    $self->_share_secrets;
    # Node 1 bootstraps the cluster and gets the schema; the others join by SST.
    $nodes[0]{new_cluster} = 1;
    _start_node($nodes[0]);
    $nodes[0]{new_cluster} = 0;
    $nodes[0]->create_database;
    $nodes[0]->write_config;
    $nodes[0]->migrate;
    # The pool's user holds the role remit_app only, as on a single stack (README, "Database
    # accounts"); accounts and grants replicate to the joiners.
    $nodes[0]->grant_app;
    for my $n (@nodes[1 .. $#nodes]) {
        _start_node($n);
        $n->write_config;
    }

    for my $i (1 .. $self->{hosts}) {
        my $app = $self->app($i);
        $app->conf_set(db_nodes => $self->db_nodes(($i - 1) % $self->{nodes} + 1),
            db_socket => '',
            db_connect_timeout => 1, workers => $self->{workers}, tx_retries => 10,
            # Faults, not shedding, as in Remit::Test: on a busy host a twin may wait past
            # the 250 ms budget for a worker without the pool being past its capacity.
            shed_after_ms => 10000,
            %{ $self->{conf} });
        $app->write_config;
        # SKIP LOCKED locks are a node's own: deliverers that claim on one node (the first
        # reachable of the same list) never send one event to one endpoint twice at once.
        $app->{deliver} = $self->{deliver};
        $app->{deliver_conf} = { db_nodes => $self->db_nodes(1) };
        $app->start_remit;
        $app->start_nginx;
    }
    my $front = $self->{front};
    $front->{upstreams} = [ map { $_->port } $self->apps ];
    # The front's remit.conf serves `remit bootstrap` and friends, through node 1.
    $front->conf_set(db_socket => $nodes[0]->db_socket);
    $front->write_config;
    $front->start_nginx;
    return $self;
}

# kill -9 of a node's mariadbd; returns its pid.
sub kill_node {
    my ($self, $i) = @_;
    my $n = $self->node($i);
    my $pid = $n->db_pid or croak "node $i is not running";
    kill 'KILL', $pid;
    $n->_wait_until_exited('db', 10);
    $n->_forget('db');
    delete $n->{dbh};
    return $pid;
}

# Starts a node that was stopped or killed; it rejoins the others. As Debian's
# mariadb.service does (galera_recovery), the position it had is recovered first, so it asks
# the donor only for what it missed (IST from the donor's gcache), not for a full copy (SST).
sub restart_node {
    my ($self, $i) = @_;
    my $n = $self->node($i);
    local $n->{start_position} = $n->recover_position;
    _start_node($n);
    return $self;
}

# Starts a node and waits until it is synced. Its IST and SST ports are picked afresh for
# each attempt: the machine is shared, and a port free when it was picked can be taken by
# the time the joiner's SST script binds it ("Address already in use"), which fails the join
# (seen once in t/cluster on a busy machine).
sub _start_node {
    my ($n) = @_;
    for my $try (1 .. 3) {
        my $ok = eval { $n->start_db; $n->wait_synced; 1 };
        return $n if $ok;
        die $@ if $try == 3;
        warn "node $n->{index} did not join (attempt $try), trying again on other IST/SST ports\n";
        $n->_stop_child('db', 'KILL', 10) if $n->_running('db');
        $n->_forget('db');
        @{ $n->{wsrep_ports} }[1, 2] = map { Remit::Stack::_free_port() } 1, 2;
    }
}

# One set of database accounts for the whole cluster, since Galera replicates them: every
# part (node, app host, front) keeps node 1's passwords in its state dir.
sub _share_secrets {
    my ($self) = @_;
    my $first = $self->node(1);
    my $old = umask 077;
    for my $part ($self->nodes, $self->apps, $self->{front}) {
        next if $part == $first;
        Remit::Stack::_spew($part->state_dir . "/.db-$_-password", $first->_secret($_))
            for qw(owner app);
    }
    umask $old;
}

# wsrep status of node $i (or undef when it does not answer).
sub wsrep_status {
    my ($self, $i, $name) = @_;
    return $self->node($i)->wsrep_status($name);
}

sub stop {
    my ($self) = @_;
    return if $$ != $self->{owner} || $self->{stopped}++;
    my @found;
    for my $p ($self->parts) {
        push @found, $p->stop;
    }
    remove_tree($self->{state}) unless $self->{keep};
    $self->{findings} = \@found;
    return @found;
}

sub findings { @{ $_[0]{findings} // [] } }

# The warnings and errors each part logged (last 40 lines apiece), for a failing test to
# print before stop() removes the state dirs.
sub log_tails {
    my ($self) = @_;
    my @logs = ((map { [ "node $_->{index}", $_->state_dir . '/mysqld.log' ] } $self->nodes),
        (map { [ "app host $_ remit", $self->app($_)->log_path ],
               [ "app host $_ nginx", $self->app($_)->state_dir . '/nginx/error.log' ] }
            1 .. $self->{hosts}),
        [ 'balancer nginx', $self->{front}->state_dir . '/nginx/error.log' ]);
    my $out = '';
    for (@logs) {
        my ($what, $path) = @$_;
        open my $fh, '<', $path or next;
        my @l = grep { /\[(ERROR|Warning)\]|\b(error|crit|alert|emerg|warn)\b|exited|killed/i } <$fh>;
        splice @l, 0, @l - 40 if @l > 40;
        $out .= "---- $what ($path)\n" . join '', @l;
    }
    return $out;
}

END { $_ && $_->stop for @LIVE }

# ---- a Galera node -------------------------------------------------------------------

package Remit::Cluster::Node;

use parent -norequire, 'Remit::Stack';
use Carp qw(croak);
use POSIX ();
use Time::HiRes qw(sleep time);

sub new {
    my ($class, %o) = @_;
    my $index = delete $o{index};
    my $self = Remit::Stack::new($class, %o);
    $self->{index} = $index;
    return $self;
}

# The wsrep options on top of a standalone server's. Failure detection is tightened from
# the defaults (a node is suspected after 5 s, evicted after 15 s) so that the survivors
# stop waiting for a killed node within about two seconds: on loopback, silence that long
# means dead. SST is by mariabackup (rsync SST runs its daemon as nobody, which cannot write
# into a root-owned datadir); a node that comes back after a kill -9 starts from its
# recovered position (restart_node) and gets IST from the donor's gcache.
sub _db_args {
    my ($self) = @_;
    my ($gport, $ist, $sst) = @{ $self->{wsrep_ports} };
    my $opts = join ';', "gmcast.listen_addr=tcp://127.0.0.1:$gport",
        "ist.recv_addr=127.0.0.1:$ist", 'gcache.size=64M',
        'evs.keepalive_period=PT0.3S', 'evs.suspect_timeout=PT1.5S',
        'evs.inactive_timeout=PT3S', 'evs.inactive_check_period=PT0.5S',
        'evs.install_timeout=PT3S', 'pc.wait_prim_timeout=PT30S';
    # The SST scripts read their settings with my_print_defaults: from a file of the node's
    # own rather than /etc/mysql (whose mysqld_safe "syslog" would send mariabackup's
    # messages to a syslog that may not exist). --defaults-file must come first.
    my $cnf = $self->state_dir . '/my.cnf';
    Remit::Stack::_spew($cnf, "# written by t/lib/Remit/Cluster.pm\n[mysqld]\n[sst]\nsst-syslog=-1\n");
    # mariabackup (SST donor) parses the server's options too and refuses the ones it does
    # not know, --loose- or not: the buffer pool keeps its default size on a node.
    my @args = grep { $_ ne '--no-defaults' && !/^--innodb-buffer-pool-size/ }
        $self->SUPER::_db_args;
    return (
        "--defaults-file=$cnf", @args,
        '--wsrep-on=ON',
        "--wsrep-provider=$Remit::Cluster::GALERA",
        "--wsrep-cluster-address=$self->{gcomm}",
        '--wsrep-cluster-name=remit',
        "--wsrep-node-name=node$self->{index}",
        "--wsrep-node-address=127.0.0.1:$gport",
        "--wsrep-node-incoming-address=127.0.0.1:" . $self->db_port,
        "--wsrep-provider-options=$opts",
        '--wsrep-sst-method=mariabackup', '--wsrep-sst-auth=root:',
        "--wsrep-sst-receive-address=127.0.0.1:$sst",
        '--wsrep-slave-threads=2',
        '--binlog-format=ROW',
        # Galera replicates as if binary logging were on: the owner (not SUPER) may create
        # the migrations' triggers only with this (README, "Database accounts").
        '--log-bin-trust-function-creators=1',
        '--innodb-autoinc-lock-mode=2',
        '--default-storage-engine=InnoDB',
        ($self->{new_cluster} ? ('--wsrep-new-cluster') : ()),
        ($self->{start_position} ? ("--wsrep-start-position=$self->{start_position}") : ()),
    );
}

# The last committed position (uuid:seqno) of a stopped node's datadir, read as
# galera_recovery reads it: mariadbd --wsrep-recover runs InnoDB's crash recovery, logs the
# position and exits. undef when there is none, or no answer within a minute (the node then
# asks for a full SST).
sub recover_position {
    my ($self) = @_;
    my $log = $self->state_dir . '/wsrep-recover.log';
    unlink $log;
    my $pid = Remit::Stack::_spawn($log, 'mariadbd', $self->_db_args, "--log-error=$log",
        '--wsrep-recover');
    my $deadline = time + 60;
    my $reaped;
    sleep 0.05 until ($reaped = waitpid($pid, POSIX::WNOHANG()) == $pid) || time > $deadline;
    if (!$reaped) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
        return undef;
    }
    open my $fh, '<', $log or return undef;
    my ($pos) = map { /WSREP: Recovered position: ([-0-9a-f]+:\d+)\s*$/ ? $1 : () } <$fh>;
    return $pos;
}

# A joiner's mariadbd answers only once SST is done; until then _wait_db's minute is what
# it has, which is plenty for a test database.
sub wsrep_status {
    my ($self, $name) = @_;
    return undef unless $self->db_pid && -S $self->db_socket;
    my $out = `mariadb --no-defaults --socket=@{[$self->db_socket]} --user=root --connect-timeout=2 -N -B -e "SHOW STATUS LIKE '$name'" 2>/dev/null`;
    my (undef, $v) = split /\t/, $out // '';
    chomp $v if defined $v;
    return $v;
}

sub wait_synced {
    my ($self, $timeout) = @_;
    my $deadline = time + ($timeout // 90);
    while (time < $deadline) {
        croak "node $self->{index} exited (log " . $self->state_dir . "/mysqld.log)"
            unless $self->_running('db');
        my $s = $self->wsrep_status('wsrep_local_state_comment') // '';
        return $self if $s eq 'Synced' && ($self->wsrep_status('wsrep_ready') // '') eq 'ON';
        sleep 0.2;
    }
    croak "node $self->{index} not synced within " . ($timeout // 90) . ' s';
}

# ---- the front: a load balancer ------------------------------------------------------

package Remit::Cluster::Front;

use Carp qw(croak);

sub _write_nginx_conf {
    my ($self, $dir) = @_;
    my $site = Remit::Stack::_slurp("$Remit::Stack::TOP/nginx/lb.conf.in")
        // croak "read nginx/lb.conf.in: $!";
    my $servers = join '', map {
        "    server 127.0.0.1:$_ max_fails=1 fail_timeout=2s;\n"
    } @{ $self->{upstreams} };
    my %subst = (PORT => $self->{port}, SERVERS => $servers);
    $site =~ s{\@([A-Z_]+)\@}{$subst{$1} // croak "nginx/lb.conf.in: unknown \@$1\@"}ge;
    Remit::Stack::_spew("$dir/site.conf", $site);
    Remit::Stack::_write_nginx_main($dir,
        about => 't/lib/Remit/Cluster.pm: the load balancer in front of the app hosts',
        user => $> == 0 ? "user root;\n" : '', connections => 1024, http => <<"EOF");
    log_format lb '\$remote_addr "\$request" \$status up=\$upstream_addr st=\$upstream_status rt=\$request_time';
    access_log $dir/access.log lb;
EOF
}

# Requests the balancer passed on to a second app host: [request line, upstream addrs,
# upstream statuses] from its access log, from byte $from on.
sub lb_retries {
    my ($self, $from) = @_;
    open my $fh, '<', "$self->{state}/nginx/access.log" or return [];
    seek $fh, $from // 0, 0;
    my @r;
    while (<$fh>) {
        next unless /"([^"]*)" \d+ up=(.*?) st=(.*?) rt=/;
        my ($req, $up, $st) = ($1, $2, $3);
        push @r, [ $req, $up, $st ] if $up =~ /,/;
    }
    return \@r;
}

sub access_log_size { -s "$_[0]{state}/nginx/access.log" // 0 }

1;
