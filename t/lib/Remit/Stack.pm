package Remit::Stack;

# One private remit stack: a MariaDB instance, the FastCGI pool (`remit serve`) and nginx in
# front of it, each started as a child of this process on its own socket and free port, and
# stopped by the pid recorded when it was started. Used by the tests (through Remit::Test)
# and by script/server.
#
#   my $st = Remit::Stack->new(durable => 1, state => 'var', port => 8080);
#   $st->start;            # MariaDB, database, remit.conf, migrate, serve, nginx
#   ... $st->url, $st->dbh, $st->remit('verify-audit') ...
#   $st->stop;             # nginx, the pool, MariaDB; then $st->findings
#
# in_flight => N is nginx's cap of requests in the pools at once (limit_conn; past it nginx
# answers the JSON 503). It is not what sheds a burst: the pool does, by waiting time
# (shed_after_ms, issue 29). By default the cap is what the pools' sockets can queue
# (listen_backlog of each pool), so that nginx never has a connect refused (a 502).
#
# pools => N starts N pools (`remit serve` masters), each with its own config, socket and
# log (remit.conf, remit-2.conf, ...), all on the one database, behind one nginx upstream
# that takes turns between them: what several app hosts sharing a database look like.
#
# unprivileged => 1 (script/server only; issue 23): run as root, MariaDB runs as the OS user
# mysql and the pool and the deliverer as remit (both must exist: script/server creates
# them), and MariaDB's root signs in only as OS root (unix_socket), so the pool's user cannot
# become the database's root through the socket it uses. Off by default, and without effect
# when we are not root: the tests run every part as root on purpose.

use strict;
use warnings;

use Carp qw(carp croak);
use Config;
use Cwd qw(abs_path);
use DBI;
use Fcntl qw(:flock);
use File::Basename qw(basename dirname);
use File::Path qw(make_path remove_tree);
use File::Spec;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken);
use Time::HiRes qw(sleep time);

our $TOP = abs_path(dirname(__FILE__) . '/../../..');

# sun_path holds 108 bytes; stay clear of it.
my $MAX_SOCKET_PATH = 100;

# The config keys in the order remit.conf lists them (others set by conf_set follow).
my @CONF_ORDER = qw(db_socket db_host db_port db_user db_password db_name migrate_user
    migrate_password listen listen_mode listen_group listen_backlog workers log_level max_body
    idem_wait idem_retention purge_interval tx_retries shed_after_ms);

# The database accounts (README "Database accounts"): the schema's owner runs `remit
# migrate`; the pool's user holds only the role remit_app that the migrations grant.
our $APP_USER = 'remit';
our $OWNER_USER = 'remit_owner';
my @DB_HOSTS = ('localhost', '127.0.0.1');    # the unix socket, and TCP on loopback

# When we run as root, nginx's workers run as nobody and its group owns the pool's socket.
my $NGINX_USER = 'nobody';

# The OS users of MariaDB and of the pool under unprivileged => 1.
our $DB_OS_USER = 'mysql';
our $POOL_OS_USER = 'remit';

# Fast and not crash-safe: good for a test database that lives for one test file.
my @TEST_DB_OPTIONS = qw(
    --innodb-buffer-pool-size=64M
    --innodb-log-file-size=16M
    --innodb-flush-log-at-trx-commit=2
    --innodb-doublewrite=0
    --skip-log-bin
);

# What the server log of a healthy run never contains.
my $SANITIZER_RE = qr/AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:/;

my @LIVE;    # weak references to stacks that may have processes running

sub new {
    my ($class, %o) = @_;
    my $self = bless {
        owner     => $$,
        durable   => $o{durable} ? 1 : 0,
        bin       => _abs($o{bin} // $ENV{REMIT_BIN} // "$TOP/src/remit"),
        port      => $o{port},
        port_auto => !defined $o{port},
        conf      => { %{ $o{conf} // {} } },
        pid       => {},       # component => pid of the child we started
        expected  => {},       # signals the caller declared it sends to workers
        findings  => [],
        pools     => $o{pools} // 1,
        deliver   => $o{deliver} ? 1 : 0,   # also run `remit deliver` beside the pool
        in_flight => $o{in_flight},
        unprivileged => $o{unprivileged} ? 1 : 0,
        log_from  => {},       # pool => offset in its log where this stack's run begins
        cmd_seq   => 0,
    }, $class;
    croak "pools must be a positive integer" unless $self->{pools} =~ /^[1-9]\d*$/;
    croak "in_flight must be a positive integer"
        if defined $o{in_flight} && $o{in_flight} !~ /^[1-9]\d*$/;

    if (defined $o{state}) {
        $self->{state} = _abs($o{state});
        make_path($self->{state});
        $self->{keep} = 1;     # a state dir the caller names holds data worth keeping
    } else {
        $self->{state} = _fresh_state_dir($o{name} // basename($0, '.t'));
        $self->{keep} = $ENV{REMIT_KEEP} ? 1 : 0;
    }

    my $state = $self->{state};
    for my $sock ($self->db_socket, map { $self->socket_path($_) } 1 .. $self->{pools}) {
        croak "socket path $sock is longer than $MAX_SOCKET_PATH bytes: choose a shorter state dir"
            if length $sock > $MAX_SOCKET_PATH;
    }

    # Two stacks on one state dir would share a datadir and sockets.
    open $self->{lock}, '>', "$state/.lock" or croak "open $state/.lock: $!";
    flock $self->{lock}, LOCK_EX | LOCK_NB
        or croak "state dir $state is in use by another stack";

    $self->{as} = $self->_run_as;
    push @LIVE, $self;
    weaken $LIVE[-1];
    _exit_on_signals();
    return $self;
}

# Our children run in process groups of their own, so a ^C or a SIGTERM reaches only this
# process: make it leave through exit, whose END block stops them, unless the program set
# its own handlers.
sub _exit_on_signals {
    my %number = (HUP => 1, INT => 2, TERM => 15);
    for my $sig (keys %number) {
        next if defined $SIG{$sig} && $SIG{$sig} ne 'DEFAULT';
        $SIG{$sig} = sub { warn "caught SIG$sig, stopping the stack\n"; exit 128 + $number{$sig} };
    }
}

# ---- accessors -------------------------------------------------------------------------

# The accessors of a pool take its number, 1 when left out.
sub state_dir   { $_[0]{state} }
sub pools       { $_[0]{pools} }
sub config_path { "$_[0]{state}/" . _pool($_[1]) . '.conf' }
sub log_path    { "$_[0]{state}/" . _pool($_[1]) . '.log' }
sub socket_path { "$_[0]{state}/" . _pool($_[1]) . '.sock' }
sub db_socket   { "$_[0]{state}/mysqld.sock" }
sub db_port     { $_[0]{db_port} }
sub port        { $_[0]{port} }
sub url         { "http://127.0.0.1:$_[0]{port}" }
sub bin         { $_[0]{bin} }
sub master_pid  { $_[0]{pid}{ _pool($_[1]) } }
sub db_pid      { $_[0]{pid}{db} }
sub nginx_pid   { $_[0]{pid}{nginx} }
sub findings    { @{ $_[0]{findings} } }

# nginx's cap of requests in the pools at once (@IN_FLIGHT@ in nginx/remit.conf.in): what
# their sockets queue. A request waits there; the worker that picks it up sheds it when it
# waited past shed_after_ms.
sub in_flight {
    my ($self) = @_;
    return $self->{in_flight} if $self->{in_flight};
    return ($self->_conf->{listen_backlog} || 1024) * $self->{pools};
}

# Pool 1 is "remit" (remit.conf, remit.sock, remit.log), pool N is "remit-N": the name of its
# files and of its master among the components.
sub _pool {
    my ($n) = @_;
    return !defined $n || $n == 1 ? 'remit' : "remit-$n";
}

# The workers of pool $n, or of every pool: live children of the masters, read from /proc.
sub worker_pids {
    my ($self, $n) = @_;
    my @masters = grep { $_ } map { $self->master_pid($_) } defined $n ? $n : 1 .. $self->{pools};
    return map { $_->{pid} } grep { $_->{state} ne 'Z' } map { _children($_) } @masters;
}

# Signals (numbers or names: 9, 'KILL') the caller sends to workers on purpose; a worker
# killed by one of them is not a crash.
sub expect_worker_kill {
    my ($self, @signals) = @_;
    my %number;
    @number{ split ' ', $Config{sig_name} } = split ' ', $Config{sig_num};
    for my $sig (@signals) {
        my $n = $sig =~ /^\d+$/ ? $sig : $number{ $sig =~ s/^SIG//r }
            // croak "unknown signal '$sig'";
        $self->{expected}{$n} = 1;
    }
    return $self;
}

# Set remit.conf keys; remit reads the file when `serve` starts.
sub conf_set {
    my ($self, %kv) = @_;
    for my $k (keys %kv) {
        croak "bad config key '$k'" unless $k =~ /^[a-z_]+$/;
        croak "bad value for $k" if ($kv{$k} // '') =~ /[\r\n]/;
        $self->{conf}{$k} = $kv{$k} // '';
    }
    $self->write_config if -e $self->config_path;
    return $self;
}

# ---- the whole stack -------------------------------------------------------------------

sub start {
    my ($self) = @_;
    $self->_own_state_dir if $self->{as};
    $self->start_db;
    $self->create_database;
    $self->write_config;
    $self->migrate;
    $self->grant_app;
    $self->start_remit;
    $self->start_nginx;
    return $self;
}

# Stops whatever runs, in front-to-back order, and records what the logs say. Safe to call
# more than once; does nothing in a forked child.
sub stop {
    my ($self) = @_;
    return if $$ != $self->{owner};
    local ($?, $!, $@);
    $self->stop_nginx;
    $self->stop_remit;
    $self->stop_db;
    $self->_scan_log;
    unless ($self->{keep} || $self->{removed}) {
        remove_tree($self->{state});
        $self->{removed} = 1;
    }
    return $self->findings;
}

sub DESTROY { $_[0]->stop }

END {
    $_ && $_->stop for @LIVE;
}

# The first part that has exited on its own since it was started, if any.
sub which_died {
    my ($self) = @_;
    my %name = (db => 'MariaDB', nginx => 'nginx', deliver => 'the deliverer',
        map { _pool($_) => "the remit pool" . ($_ > 1 ? " $_" : '') } 1 .. $self->{pools});
    for my $what ($self->_parts) {
        return $name{$what} if $self->{pid}{$what} && !$self->_running($what);
    }
    return;
}

# ---- supervision -----------------------------------------------------------------------

# A component restarted this many times within the window waits for the oldest restart to
# leave it: a crash loop costs a few restarts a minute, never a fork storm.
my $RESTART_BURST = 5;
my $RESTART_WINDOW = 60;

# Restarts every part that has exited on its own since it was started: MariaDB on the same
# datadir (InnoDB crash recovery brings back everything committed), a pool master, nginx.
# The other parts keep running meanwhile: while MariaDB is away the pool answers 503 with
# Retry-After, and its workers reconnect by themselves once it is back. Returns one line
# per event; $say, when given, gets each as it happens (a restart may take a while).
# script/server calls it every half second; so can a test.
sub supervise {
    my ($self, $say) = @_;
    my @log;
    my $log = sub { push @log, $_[0]; $say->($_[0]) if $say };
    my %name = (db => 'MariaDB', nginx => 'nginx', deliver => 'the deliverer',
        map { _pool($_) => 'the remit pool' . ($_ > 1 ? " $_" : '') } 1 .. $self->{pools});
    for my $what ($self->_parts) {
        next if $self->_running($what);
        if (my $pid = $self->{pid}{$what}) {
            $log->("$name{$what} (pid $pid) " . _how($self->{exited}{$what})
                . '; restarting it' . ($what eq 'db' ? ' on the same datadir' : ''));
            $self->_forget($what);
        }
        my $times = $self->{restarts}{$what} //= [];
        @$times = grep { $_ > time - $RESTART_WINDOW } @$times;
        if (@$times >= $RESTART_BURST) {
            $log->(sprintf '%s restarted %d times within %d s: next try in %.0f s',
                $name{$what}, scalar @$times, $RESTART_WINDOW, $times->[0] + $RESTART_WINDOW - time)
                unless $self->{deferred}{$what}++;
            next;
        }
        delete $self->{deferred}{$what};
        push @$times, time;
        my $t0 = time;
        my $ok = eval { $self->_restart($what); 1 };
        $log->($ok ? sprintf('%s is back after %.1f s (pid %d)', $name{$what}, time - $t0,
                $self->{pid}{$what})
            : "$name{$what} did not start again: " . ($@ =~ s/\s+$//r));
    }
    return @log;
}

# The supervised components, in the order they are checked.
sub _parts {
    my ($self) = @_;
    return ('db', (map { _pool($_) } 1 .. $self->{pools}), ($self->{deliver} ? 'deliver' : ()),
        'nginx');
}

sub _how {
    my ($status) = @_;
    return 'exited' unless defined $status;
    return $status & 127 ? 'was killed by signal ' . ($status & 127)
        : 'exited with status ' . ($status >> 8);
}

sub _restart {
    my ($self, $what) = @_;
    return $self->start_db if $what eq 'db';
    return $self->start_nginx if $what eq 'nginx';
    return $self->start_deliver if $what eq 'deliver';
    my ($n) = $what =~ /^remit-(\d+)$/;
    $self->_start_pool($n // 1);
}

# SIGKILLs MariaDB (a crash: nothing is flushed, nothing is closed) and waits until it is
# gone; returns its pid. Bring it back with supervise (or start_db).
sub crash_db {
    my ($self) = @_;
    my $pid = $self->db_pid or croak 'MariaDB is not running';
    kill 'KILL', $pid;
    defined _wait_until_exited($self, 'db', 30) or croak "MariaDB (pid $pid) outlived SIGKILL";
    return $pid;
}

# ---- MariaDB ---------------------------------------------------------------------------

sub start_db {
    my ($self) = @_;
    croak 'MariaDB is already running' if $self->_running('db');
    $self->_forget('db');
    my $state = $self->{state};
    _copy_template("$state/mysql") unless -d "$state/mysql";
    make_path("$state/tmp");
    unlink "$state/mysqld.pid";
    $self->_own_db_files if $self->{as};

    # A port picked at run time may be taken before mariadbd binds it: pick another. A
    # restart keeps the port it had.
    for my $try (1 .. 3) {
        my $auto = !$self->{db_port};
        $self->{db_port} //= _free_port();
        my $log_size = -s "$state/mysqld.log" // 0;
        $self->{pid}{db} = _spawn_as($self->{as} && $self->{as}{db}, "$state/mysqld.log",
            'mariadbd', $self->_db_args);
        if ($self->_wait_db) {
            # Only our uid may reach root's password-less account: the state dir is open to
            # nginx's group (the pool's socket lives there). Under unprivileged the pool
            # connects through this socket, and root signs in only as OS root (_accounts).
            chmod 0700, $self->db_socket unless $self->{as};
            return $self;
        }
        my $why = _tail("$state/mysqld.log", $log_size);
        $self->_stop_child('db', 'KILL', 10);
        if ($auto && $try < 3 && $why =~ /Address already in use|Bind on TCP\/IP port/) {
            delete $self->{db_port};
            next;
        }
        croak "MariaDB did not start (log $state/mysqld.log):\n$why";
    }
}

sub _db_args {
    my ($self) = @_;
    my $state = $self->{state};
    return (
        '--no-defaults',
        ($> == 0 && !$self->{as} ? ('--user=root') : ()),
        "--datadir=$state/mysql",
        "--socket=$state/mysqld.sock",
        "--port=$self->{db_port}",
        '--bind-address=127.0.0.1',
        "--pid-file=$state/mysqld.pid",
        "--log-error=$state/mysqld.log",
        "--tmpdir=$state/tmp",
        '--skip-name-resolve',
        '--character-set-server=utf8mb4',
        ($self->{durable} ? () : @TEST_DB_OPTIONS),
    );
}

# Ready when the socket answers a ping; false when mariadbd exits or takes over a minute
# (ten for a durable one: crash recovery of a real redo log takes its time).
sub _wait_db {
    my ($self) = @_;
    # A Galera joiner opens its socket only after its state transfer (mariabackup), which
    # took more than a minute on a host at a load average of 30 (issue 29): five minutes.
    my $deadline = time + ($self->{durable} ? 600 : $self->{wsrep_ports} ? 300 : 60);
    my $sock = $self->db_socket;
    while (time < $deadline) {
        return 0 unless $self->_running('db');
        return 1 if -S $sock && _quiet_system(
            'mariadb-admin', '--no-defaults', "--socket=$sock", '--user=root',
            '--connect-timeout=2', 'ping');
        sleep 0.1;
    }
    return 0;
}

sub stop_db {
    my ($self) = @_;
    if ($self->{dbh}) {
        $self->{dbh}{handle}->disconnect if $self->{dbh}{pid} == $$;
        delete $self->{dbh};
    }
    $self->_stop_child('db', 'TERM', 120);
    return $self;
}

sub create_database {
    my ($self) = @_;
    my $db = $self->_conf->{db_name};
    croak "bad database name '$db'" unless $db =~ /^\w+$/;
    my $sock = $self->db_socket;
    _quiet_system('mariadb', '--no-defaults', "--socket=$sock", '--user=root',
        '-e', "CREATE DATABASE IF NOT EXISTS `$db` CHARACTER SET utf8mb4")
        or croak "could not create database $db";
    $self->_accounts($db);
    return $self;
}

# root only over the unix socket of the state dir (mariadb-install-db also makes password-less
# root accounts for 127.0.0.1, ::1 and the host name); the owner and the pool's user with
# passwords of their own, over the socket and TCP.
sub _accounts {
    my ($self, $db) = @_;
    my $dbh = $self->dbh;
    my $tcp_roots = $dbh->selectcol_arrayref(
        q{SELECT Host FROM mysql.user WHERE User = 'root' AND Host <> 'localhost'});
    $dbh->do('DROP USER ?@?', undef, 'root', $_) for @$tcp_roots;
    # Reachable by the pool's OS user too, the socket lets only OS root in as root.
    $dbh->do(q{ALTER USER root@localhost IDENTIFIED VIA unix_socket}) if $self->{as};
    for my $host (@DB_HOSTS) {
        for my $u ([$OWNER_USER, $self->_secret('owner')], [$APP_USER, $self->_secret('app')]) {
            $dbh->do('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', undef, @$u[0], $host, $u->[1]);
            $dbh->do('ALTER USER ?@? IDENTIFIED BY ?', undef, @$u[0], $host, $u->[1]);
        }
        # The owner creates the role remit_app (CREATE USER) and grants it tables.
        $dbh->do("GRANT ALL ON `$db`.* TO ?\@? WITH GRANT OPTION", undef, $OWNER_USER, $host);
        $dbh->do('GRANT CREATE USER ON *.* TO ?@?', undef, $OWNER_USER, $host);
    }
}

# After migrate, which creates the role: the pool's user gets remit_app as its default role,
# granted by the owner (who created the role, so holds it WITH ADMIN OPTION).
sub grant_app {
    my ($self) = @_;
    my $dbh = $self->new_dbh(user => $OWNER_USER, password => $self->_secret('owner'));
    for my $host (@DB_HOSTS) {
        $dbh->do('GRANT remit_app TO ?@?', undef, $APP_USER, $host);
    }
    $dbh->disconnect;
    # SET DEFAULT ROLE FOR another user needs rights on mysql.*: root's part.
    $self->dbh->do('SET DEFAULT ROLE remit_app FOR ?@?', undef, $APP_USER, $_) for @DB_HOSTS;
    return $self;
}

# A random password kept in the state dir (mode 0600), the same across restarts.
sub _secret {
    my ($self, $name) = @_;
    my $file = "$self->{state}/.db-$name-password";
    my $have = _slurp($file);
    return $have if defined $have && $have =~ /^[0-9a-f]{32}$/;
    open my $rnd, '<:raw', '/dev/urandom' or croak "open /dev/urandom: $!";
    read($rnd, my $bytes, 16) == 16 or croak "read /dev/urandom: $!";
    my $secret = unpack 'H*', $bytes;
    my $old = umask 077;
    _spew($file, $secret);
    umask $old;
    return $secret;
}

# nginx's worker user and group when we run as root; () otherwise (workers keep our uid).
sub _nginx_user {
    return () unless $> == 0;
    # A checkout nginx's unprivileged user cannot reach (under a home directory of mode
    # 0700, say) keeps the workers as root, as they were before: they serve its www/, doc/
    # and the sockets under t/tmp.
    return ('root', scalar getgrgid(0), 0, 0) unless _reachable_by_others($TOP);
    my ($uid, $gid) = (getpwnam $NGINX_USER)[2, 3];
    croak "no user $NGINX_USER for nginx's workers" unless defined $uid;
    return ($NGINX_USER, scalar getgrgid($gid) // croak("no group $gid"), $uid, $gid);
}

# True when every directory from / down to $dir lets others through (o+x).
sub _reachable_by_others {
    my ($dir) = @_;
    for (my $p = $dir; ; $p = dirname($p)) {
        my $mode = (stat $p)[2];
        return 0 unless defined $mode && ($mode & 01);
        return 1 if $p eq '/' || $p eq dirname($p);
    }
}

# {db => [uid, gid, groups...], pool => [...]} under unprivileged => 1 as root; undef
# otherwise. MariaDB runs as mysql, the pool and the deliverer as remit; both also in the
# group remit, which owns the state dir where each creates its socket and files; the pool
# also in nginx's group, which it gives its socket to (listen_group). A checkout or state
# dir those users cannot reach keeps root, like nginx's workers (_nginx_user).
sub _run_as {
    my ($self) = @_;
    return undef unless $self->{unprivileged} && $> == 0;
    unless (grep({ !_reachable_by_others(dirname $_) } $self->{state}, $self->{bin})
            || !_reachable_by_others($TOP)) {
        my ($db_uid, $db_gid) = (getpwnam $DB_OS_USER)[2, 3];
        my ($uid, $gid) = (getpwnam $POOL_OS_USER)[2, 3];
        croak "no user $_ (script/server creates it)"
            for grep { !defined getpwnam $_ } $DB_OS_USER, $POOL_OS_USER;
        my $nginx_gid = (_nginx_user())[3];
        return { db => [$db_uid, $db_gid, $gid], pool => [$uid, $gid, $nginx_gid], group => $gid };
    }
    carp "$self->{state} or $self->{bin} is out of reach of other users: everything runs as root";
    return undef;
}

# The state dir is root's, group remit: MariaDB and the pool (both in that group) create
# their sockets and files in it, and the sticky bit keeps either from removing or renaming
# what the other made. Others (nginx's workers) may only pass through, to the pool's socket.
sub _own_state_dir {
    my ($self) = @_;
    chown 0, $self->{as}{group}, $self->{state} or croak "chown $self->{state}: $!";
    chmod 01771, $self->{state} or croak "chmod $self->{state}: $!";
}

# MariaDB's datadir, tmpdir and log are mysql's (also those of a run before as root), and a
# socket left by a run as root would be in the way of MariaDB's (sticky dir).
sub _own_db_files {
    my ($self) = @_;
    my $state = $self->{state};
    my ($uid, $gid) = @{ $self->{as}{db} };
    system('chown', '-R', "$uid:$gid", "$state/mysql", "$state/tmp") == 0
        or croak "chown -R $uid:$gid $state/mysql $state/tmp failed";
    chmod 0700, "$state/mysql", "$state/tmp";
    unlink $self->db_socket, $self->db_socket . '.lock';
    open my $fh, '>>', "$state/mysqld.log" or croak "open $state/mysqld.log: $!";
    close $fh;
    chown $uid, $gid, "$state/mysqld.log";
}

# A DBI handle on the private database (AutoCommit on), reconnected when the server went
# away or the process forked.
sub dbh {
    my ($self) = @_;
    my $c = $self->{dbh};
    return $c->{handle} if $c && $c->{pid} == $$ && $c->{handle}->ping;
    my $h = $self->new_dbh;
    $self->{dbh} = { handle => $h, pid => $$ };
    return $h;
}

# A connection of its own, e.g. one whose transaction holds locks while the pool works;
# %attr overrides DBI attributes (AutoCommit => 0). The caller disconnects it.
# user => and password => connect as another account than root.
sub new_dbh {
    my ($self, %attr) = @_;
    my $dsn = sprintf 'DBI:MariaDB:database=%s;mariadb_socket=%s',
        $self->_conf->{db_name}, $self->db_socket;
    my $user = delete $attr{user} // 'root';
    my $password = delete $attr{password} // '';
    return DBI->connect($dsn, $user, $password, {
        RaiseError => 1, PrintError => 0, AutoCommit => 1, AutoInactiveDestroy => 1, %attr,
    });
}

# A connection of its own as the pool's database account (db_user of remit.conf), with no
# grant but those of sql/migrations: for checks of what the pool itself may and may not do.
sub app_dbh {
    my ($self, %attr) = @_;
    my $conf = $self->_conf;
    return $self->new_dbh(user => $conf->{db_user}, password => $conf->{db_password}, %attr);
}

# mariadb-install-db takes a while; build one datadir per checkout and copy it.
sub _copy_template {
    my ($datadir) = @_;
    my $dir = _tmp_base();
    open my $lock, '>', "$dir/mariadb-template.lock" or croak "open lock: $!";
    flock $lock, LOCK_EX or croak "flock: $!";

    my $template = "$dir/mariadb-template";
    my $version = `mariadbd --version`;
    croak 'mariadbd not found (run script/bootstrap)' if $? != 0;
    my $have = _slurp("$template.version");
    unless (-d $template && defined $have && $have eq $version) {
        remove_tree($template, "$template.new");
        my @user = $> == 0 ? ('--user=root') : ();
        # --force: without it the script first looks the host name up and gives up when it
        # does not resolve (containers); the server itself runs with --skip-name-resolve.
        _quiet_system('mariadb-install-db', '--no-defaults', '--force', '--skip-name-resolve',
            '--auth-root-authentication-method=normal', @user, "--datadir=$template.new",
            '--skip-test-db', '--innodb-log-file-size=16M')
            or croak 'mariadb-install-db failed';
        rename "$template.new", $template or croak "rename $template: $!";
        _spew("$template.version", $version);
    }
    system('cp', '-a', $template, $datadir) == 0 or croak "cp -a $template $datadir failed";
    close $lock;
}

# ---- remit -----------------------------------------------------------------------------

# The configuration of pool $n (1 when left out): the same but for its socket.
sub _conf {
    my ($self, $n) = @_;
    my $state = $self->{state};
    my $conf = {
        db_socket      => $self->db_socket,
        db_host        => '127.0.0.1',
        db_port        => $self->{db_port} // 3306,
        db_user        => $APP_USER,
        db_password    => $self->_secret('app'),
        db_name        => 'remit',
        migrate_user   => $OWNER_USER,
        migrate_password => $self->_secret('owner'),
        listen         => $self->socket_path,
        listen_mode    => '0660',
        listen_group   => (_nginx_user())[1] // '',
        listen_backlog => 1024,
        workers        => 4,
        log_level      => 'info',
        max_body       => 65536,
        idem_wait      => 5,
        idem_retention => 86400,
        purge_interval => 60,
        tx_retries     => 5,
        shed_after_ms  => 250,
        %{ $self->{conf} },
    };
    $conf->{listen} = $self->socket_path($n) if defined $n && $n > 1;
    return $conf;
}

sub write_config {
    my ($self) = @_;
    my %known = map { $_ => 1 } @CONF_ORDER;
    my $old = umask 077;    # the file holds the database passwords
    for my $n (1 .. $self->{pools}) {
        my $conf = $self->_conf($n);
        my @keys = (@CONF_ORDER, sort grep { !$known{$_} } keys %$conf);
        _spew($self->config_path($n), join '', '# ' . _pool($n)
            . ".conf written by t/lib/Remit/Stack.pm for the stack in this directory\n",
            map { "$_ = $conf->{$_}\n" } @keys);
        chmod 0600, $self->config_path($n);    # also a file an older run left 0644
        # Readable by the pool only (and root, who runs `remit bootstrap` with it).
        chown @{ $self->{as}{pool} }[0, 1], $self->config_path($n) if $self->{as};
    }
    umask $old;
    return $self;
}

# Runs `remit --config FILE @args`; returns {exit, signal, stdout, stderr}. A sanitizer
# report on stderr counts as a finding.
sub remit {
    my ($self, @args) = @_;
    my $base = sprintf '%s/cmd-%d-%d', $self->{state}, $$, ++$self->{cmd_seq};
    my $pid = fork // croak "fork: $!";
    if (!$pid) {
        umask 077;    # bootstrap prints a token
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$base.out";
        open STDERR, '>', "$base.err";
        exec($self->{bin}, '--config', $self->config_path, @args)
            or print STDERR "exec $self->{bin}: $!\n";
        POSIX::_exit(127);
    }
    my $status = _wait_exit($pid, 300) // do {
        kill 'KILL', $pid;
        _wait_exit($pid, 10);
        croak "remit @args did not finish within 300 s";
    };
    my %r = (exit => $status >> 8, signal => $status & 127,
        stdout => _slurp("$base.out") // '', stderr => _slurp("$base.err") // '');
    unlink "$base.out", "$base.err";
    $self->_finding("remit @args: $_") for grep { /$SANITIZER_RE/ } split /\n/, $r{stderr};
    return \%r;
}

sub migrate {
    my ($self) = @_;
    my $r = $self->remit('migrate');
    croak "remit migrate failed (exit $r->{exit}):\n$r->{stderr}"
        if $r->{exit} || $r->{signal};
    return $self;
}

# Creates an organisation and its first ADMIN; returns {orgId, userId, token}.
sub bootstrap {
    my ($self, %o) = @_;
    my @args = ('bootstrap', '--org', $o{org}, '--email', $o{email});
    push @args, '--name', $o{name} if defined $o{name};
    my $r = $self->remit(@args);
    croak "remit bootstrap failed (exit $r->{exit}):\n$r->{stderr}"
        if $r->{exit} || $r->{signal};
    my ($line) = grep { /\S/ } reverse split /\n/, $r->{stdout};
    return JSON::PP->new->utf8->decode($line // croak "remit bootstrap printed nothing");
}

# Starts every pool.
sub start_remit {
    my ($self) = @_;
    my @pools = 1 .. $self->{pools};
    croak 'the pool is already running' if grep { $self->_running(_pool($_)) } @pools;
    $self->stop_remit;    # records how a master that died on its own ended
    croak "no remit binary at $self->{bin} (run script/bootstrap, or set REMIT_BIN)"
        unless -x $self->{bin};
    $self->_start_pool($_) for @pools;
    $self->start_deliver if $self->{deliver};
    return $self;
}

# Starts `remit deliver` (API §12) on the pool's configuration, plus what $self->{deliver_conf}
# overrides (Remit::Cluster: every deliverer claims on the same Galera node first). Its log
# is deliver.log in the state dir.
sub start_deliver {
    my ($self) = @_;
    my $conf = $self->config_path;
    if (my $over = $self->{deliver_conf}) {
        my %c = (%{ $self->_conf(1) }, %$over);
        $conf = "$self->{state}/deliver.conf";
        my $old = umask 077;
        _spew($conf, join '', map { "$_ = $c{$_}\n" } sort keys %c);
        umask $old;
    }
    $self->{pid}{deliver} = _spawn_as($self->{as} && $self->{as}{pool},
        "$self->{state}/deliver.log", $self->{bin}, '--config', $conf, 'deliver');
    return $self;
}

sub _start_pool {
    my ($self, $n) = @_;
    my ($what, $log, $socket) = (_pool($n), $self->log_path($n), $self->socket_path($n));
    $self->{log_from}{$n} //= -s $log // 0;
    unlink $socket;    # a stale socket would look ready
    $self->{pid}{$what} = _spawn_as($self->{as} && $self->{as}{pool}, $log, $self->{bin},
        '--config', $self->config_path($n), 'serve');

    my $deadline = time + 30;
    until (-S $socket) {
        my $why = !$self->_running($what) ? 'exited'
            : time > $deadline ? 'created no socket within 30 s' : '';
        if ($why) {
            $self->stop_remit;
            croak "remit serve $why (log $log):\n" . _tail($log, $self->{log_from}{$n});
        }
        sleep 0.05;
    }
}

# SIGTERM (drain), then SIGKILL for each master and any worker it leaves behind. Returns the
# wait status of pool 1's master, or undef when it was not running.
sub stop_remit {
    my ($self) = @_;
    if ($self->{pid}{deliver}) {
        my $status = $self->_stop_child('deliver', 'TERM', 30);
        $self->_finding("remit deliver exited with status $status") if $status;
    }
    my @status = map { $self->_stop_pool($_) } 1 .. $self->{pools};
    return $status[0];
}

sub _stop_pool {
    my ($self, $n) = @_;
    my $what = _pool($n);
    my $pid = $self->{pid}{$what} or return undef;
    my $status = $self->_stop_child($what, 'TERM', 30);
    if ($status) {
        my $how = $status & 127 ? 'was killed by signal ' . ($status & 127)
            : 'exited with status ' . ($status >> 8);
        $self->_finding(($n > 1 ? "$what " : 'remit ') . "master (pid $pid) $how");
    }
    return $status;
}

# ---- nginx -----------------------------------------------------------------------------

sub start_nginx {
    my ($self) = @_;
    croak 'nginx is already running' if $self->_running('nginx');
    $self->_forget('nginx');
    my $dir = "$self->{state}/nginx";
    make_path(map { "$dir/tmp/$_" } qw(body fastcgi proxy scgi uwsgi));

    for my $try (1 .. 3) {
        $self->{port} //= _free_port();
        $self->_write_nginx_conf($dir);
        my $log_size = -s "$dir/error.log" // 0;
        $self->{pid}{nginx} = _spawn("$dir/error.log", 'nginx', '-p', "$dir/",
            '-c', "$dir/nginx.conf", '-e', "$dir/error.log");
        my $why = $self->_wait_healthz;
        return $self unless $why;
        my $log = _tail("$dir/error.log", $log_size);
        $self->_stop_child('nginx', 'KILL', 10);
        if ($self->{port_auto} && $try < 3 && $log =~ /Address already in use/) {
            delete $self->{port};
            next;
        }
        croak "nginx: $why (log $dir/error.log):\n$log\nremit.log:\n"
            . _tail($self->log_path, $self->{log_from}{1} // 0);
    }
}

sub _write_nginx_conf {
    my ($self, $dir) = @_;
    my $site = _slurp("$TOP/nginx/remit.conf.in") // croak "read nginx/remit.conf.in: $!";
    my %subst = (PORT => $self->{port}, SOCKET => $self->socket_path, DOC => "$TOP/doc",
        WWW => "$TOP/www/public", IN_FLIGHT => $self->in_flight);
    $site =~ s{\@([A-Z_]+)\@}{$subst{$1} // croak "nginx/remit.conf.in: unknown \@$1\@"}ge;
    my $upstream = '';
    if ($self->{pools} > 1) {
        # One upstream of every pool's socket (round robin); the site passes to it instead,
        # in every location (the routes with larger bodies have their own).
        my $pass = 'fastcgi_pass unix:' . $self->socket_path . ';';
        $site =~ s/\Q$pass\E/fastcgi_pass remit_pools;/g
            or croak "nginx/remit.conf.in: no '$pass' to point at the pools";
        $upstream = join '', "upstream remit_pools {\n",
            (map { '        server unix:' . $self->socket_path($_) . ";\n" } 1 .. $self->{pools}),
            "    }\n";
    }
    _spew("$dir/site.conf", $site);

    # Workers never run as root: as root we name their user, whose group owns the pool's
    # socket (listen_group) and their temporary directories.
    my ($wuser, $wgroup, $uid, $gid) = _nginx_user();
    my $user = defined $wuser ? "user $wuser $wgroup;\n" : '';
    if (defined $uid) {
        chown $uid, $gid, map { "$dir/tmp/$_" } qw(body fastcgi proxy scgi uwsgi);
        unless ($self->{as}) {    # _own_state_dir set it up
            chown -1, $gid, $self->{state};
            chmod 0710, $self->{state};    # nginx's group may reach the socket, not list or read
        }
    }
    _write_nginx_main($dir, about => 't/lib/Remit/Stack.pm: one nginx for the stack in this directory',
        comment => <<'EOF', user => $user, main => "worker_rlimit_nofile 16384;\n",
# Sized for a burst (nginx/remit.conf.in, "Under a burst"). One worker: nginx shares this
# host's cores with the pool and MariaDB, one event loop answers a shed request in tens of
# microseconds, and a second one spinning on a burst's 503s only takes CPU from the pool.
# 8,192 connections: clients and, for those in the pool, their FastCGI connection.
EOF
        connections => 8192, upstream => "    $upstream\n", http => <<"EOF");
    # The combined format's core plus the request's time and id: bench/run reads the
    # latency of admitted requests from here. Buffered: a burst is not a write per request.
    log_format remit '\$remote_addr [\$time_local] "\$request" \$status \$body_bytes_sent '
                     'rt=\$request_time rid=\$remit_request_id';
    access_log $dir/access.log remit buffer=64k flush=1s;
EOF
}

# Writes $dir/nginx.conf, the frame every nginx of the tests shares around $dir/site.conf
# (Remit::Stack's and Remit::Cluster's balancer): one worker in the foreground, its pid, error
# log and temporary directories in $dir. %o: about (what writes it, for what: the first
# comment line), comment (more comment lines), user (the `user` line or ''), main (more lines
# of the main context), connections (worker_connections), http (lines of the http context
# before the temporary paths: log format, access log), upstream (lines before the include).
sub _write_nginx_main {
    my ($dir, %o) = @_;
    $o{$_} //= '' for qw(comment user main http upstream);
    _spew("$dir/nginx.conf", <<"EOF");
# written by $o{about}
$o{comment}$o{user}worker_processes 1;
$o{main}daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;

events {
    worker_connections $o{connections};
}

http {
$o{http}    client_body_temp_path $dir/tmp/body;
    fastcgi_temp_path $dir/tmp/fastcgi;
    proxy_temp_path $dir/tmp/proxy;
    scgi_temp_path $dir/tmp/scgi;
    uwsgi_temp_path $dir/tmp/uwsgi;

$o{upstream}    include $dir/site.conf;
}
EOF
}

# Polls GET /healthz until it answers 200; returns '' then, else why not.
sub _wait_healthz {
    my ($self) = @_;
    my $http = HTTP::Tiny->new(keep_alive => 0, timeout => 5);
    my $deadline = time + 30;
    my $last = 'no answer';
    while (time < $deadline) {
        return 'nginx exited' unless $self->_running('nginx');
        my $res = $http->get($self->url . '/healthz');
        return '' if $res->{status} == 200;
        $last = "$res->{status} $res->{content}";
        sleep 0.05;
    }
    return "GET /healthz did not answer 200 within 30 s (last: $last)";
}

sub stop_nginx {
    my ($self) = @_;
    $self->_stop_child('nginx', 'TERM', 15);
    return $self;
}

# ---- processes -------------------------------------------------------------------------

# fork + exec with stdin from /dev/null and stdout+stderr appended to $log, in a process
# group of its own so a terminal's ^C reaches only us, and we stop things in order.
sub _spawn { _spawn_as(undef, @_) }

# The same, as [uid, gid, supplementary gids...] when $as is given (unprivileged): the log
# is opened (by us) first, then mode 0640 (the state dir lets others through).
sub _spawn_as {
    my ($as, $log, @cmd) = @_;
    my $pid = fork // croak "fork: $!";
    return $pid if $pid;
    setpgrp(0, 0);
    open STDIN, '<', '/dev/null';
    open STDOUT, '>>', $log or POSIX::_exit(126);
    open STDERR, '>&', \*STDOUT;
    if ($as) {
        chmod 0640, $log;
        _become(@$as) or do { print STDERR "cannot become uid $as->[0]: $!\n"; POSIX::_exit(126) };
    }
    exec(@cmd) or print STDERR "exec $cmd[0]: $!\n";
    POSIX::_exit(127);
}

# Gives up root for good: the groups first (setgroups needs root: $gid and @groups), then
# real, effective and saved gid and uid. True when nothing of root is left.
sub _become {
    my ($uid, $gid, @groups) = @_;
    $) = join ' ', $gid, $gid, @groups;
    POSIX::setgid($gid) or return 0;
    POSIX::setuid($uid) or return 0;
    return $< == $uid && $> == $uid && $( =~ /^$gid\b/ && $) =~ /^$gid\b/;
}

# Stops one component: $signal, then SIGKILL after $timeout seconds. Children it leaves
# behind (nginx or pool workers, read from /proc before each signal) get SIGKILL too.
# Returns the wait status, or undef when nothing ran.
sub _stop_child {
    my ($self, $what, $signal, $timeout) = @_;
    my $pid = $self->{pid}{$what} or return;
    local ($?, $!);
    my @kids;
    if ($self->_running($what)) {
        @kids = _children($pid);
        kill $signal, $pid;
        unless (defined _wait_until_exited($self, $what, $timeout)) {
            $self->_finding("$what (pid $pid) ignored SIG$signal for $timeout s: killed")
                unless $signal eq 'KILL';
            push @kids, _children($pid);
            kill 'KILL', $pid;
            _wait_until_exited($self, $what, 10);
        }
    }
    my %seen;
    for my $k (grep { !$seen{ $_->{pid} }++ } @kids) {
        my $now = _proc_stat($k->{pid}) or next;
        next if $now->{start} ne $k->{start} || $now->{state} eq 'Z';
        $self->_finding("$what child pid $k->{pid} outlived its parent: killed");
        kill 'KILL', $k->{pid};
    }
    return $self->_forget($what);
}

sub _wait_until_exited {
    my ($self, $what, $timeout) = @_;
    my $deadline = time + $timeout;
    while ($self->_running($what)) {
        return undef if time >= $deadline;
        sleep 0.02;
    }
    return $self->{exited}{$what};
}

# True while the component's process runs; once it has exited, reaps it and keeps its wait
# status (so its pid is never signalled again).
sub _running {
    my ($self, $what) = @_;
    my $pid = $self->{pid}{$what} or return 0;
    return 0 if exists $self->{exited}{$what};
    local $?;
    my $r = waitpid $pid, WNOHANG;
    return 1 if $r == 0;
    $self->{exited}{$what} = $r == $pid ? $? : 0;
    return 0;
}

# Drops the record of a component that has exited; returns its wait status.
sub _forget {
    my ($self, $what) = @_;
    delete $self->{pid}{$what};
    return delete $self->{exited}{$what};
}

# Reaps $pid; its wait status, or undef if it is still running after $timeout seconds.
sub _wait_exit {
    my ($pid, $timeout) = @_;
    local $?;
    my $deadline = time + $timeout;
    while (1) {
        my $r = waitpid $pid, WNOHANG;
        return $? if $r == $pid;
        return 0 if $r < 0;    # not ours (any more)
        return undef if time >= $deadline;
        sleep 0.02;
    }
}

sub _children {
    my ($ppid) = @_;
    opendir my $d, '/proc' or return;
    return grep { $_->{ppid} == $ppid } map { _proc_stat($_) } grep { /^\d+$/ } readdir $d;
}

# {pid, state, ppid, start} from /proc/PID/stat (start: field 22, ticks since boot).
sub _proc_stat {
    my ($pid) = @_;
    my $s = _slurp("/proc/$pid/stat") // return;
    my ($rest) = $s =~ /\)\s+(.*)$/s or return;
    my @f = split ' ', $rest;
    return { pid => $pid, state => $f[0], ppid => $f[1], start => $f[19] };
}

# ---- findings --------------------------------------------------------------------------

sub _finding {
    my ($self, $text) = @_;
    push @{ $self->{findings} }, $text;
}

# Sanitizer reports, and workers killed by a signal nobody declared. A sanitizer report
# brings the lines after it along, which name the cause.
sub _scan_log {
    my ($self) = @_;
    for my $n (sort keys %{ $self->{log_from} }) {
        my $from = delete $self->{log_from}{$n};
        my $name = _pool($n) . '.log';
        open my $fh, '<', $self->log_path($n) or next;
        seek $fh, $from, 0;
        my @lines = <$fh>;
        chomp @lines;
        my $context = 0;
        for my $i (0 .. $#lines) {
            my $line = $lines[$i];
            if ($line =~ $SANITIZER_RE) {
                $self->_finding("$name: $line");
                $self->_finding("$name: $_") for grep { defined } @lines[$i + 1 .. $i + 30];
                last if ++$context >= 3;
            } elsif ($line =~ /"msg"\s*:\s*"worker exited"/ && $line =~ /"signal"\s*:\s*(\d+)/) {
                $self->_finding("$name: $line") unless $self->{expected}{$1};
            }
        }
    }
}

# ---- small helpers ---------------------------------------------------------------------

sub _free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
        Listen => 1) or croak "cannot bind a free port: $!";
    return $s->sockport;
}

# Test state goes under $REMIT_TEST_TMP, else t/tmp (git-ignored), else /tmp when the
# checkout is read-only (make distcheck) or its path too long for the unix sockets inside.
sub _tmp_base {
    my $base = $ENV{REMIT_TEST_TMP} // "$TOP/t/tmp";
    $base = File::Spec->tmpdir . '/remit-tests'
        if length($base) > 50 || (!-w $TOP && !defined $ENV{REMIT_TEST_TMP});
    make_path($base);
    return $base;
}

sub _fresh_state_dir {
    my ($name) = @_;
    $name =~ s/[^\w.-]+/_/g;
    return tempdir(substr($name, 0, 24) . '-XXXXXX', DIR => _tmp_base());
}

sub _quiet_system {
    my @cmd = @_;
    local $?;
    my $pid = fork // croak "fork: $!";
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        exec(@cmd) or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    return $? == 0;
}

sub _abs {
    my ($path) = @_;
    return File::Spec->rel2abs($path);
}

sub _slurp {
    my ($path) = @_;
    open my $fh, '<', $path or return;
    local $/;
    return scalar <$fh>;
}

sub _spew {
    my ($path, $text) = @_;
    open my $fh, '>', "$path.tmp" or croak "write $path: $!";
    print {$fh} $text;
    close $fh or croak "write $path: $!";
    rename "$path.tmp", $path or croak "rename $path: $!";
}

# The lines of $path from byte $from on, at most the last 40.
sub _tail {
    my ($path, $from) = @_;
    open my $fh, '<', $path or return "(no $path)";
    seek $fh, $from // 0, 0;
    my @lines = <$fh>;
    splice @lines, 0, @lines - 40 if @lines > 40;
    return join '', @lines;
}

# The live children of process $parent whose command line (NUL-separated) matches $re.
sub children_matching {
    my ($parent, $re) = @_;
    return map { $_->{pid} } grep { $_->{state} ne 'Z' && (_slurp("/proc/$_->{pid}/cmdline") // '') =~ $re }
        _children($parent);
}

# ---- script/server ----------------------------------------------------------------------

package Remit::Stack::Server;

# script/server, the supervisor production runs (MariaDB, the pool, nginx, the deliverer), in
# the foreground of a child of ours, for the tests of what it does itself (t/55, t/77):
#   my $srv = Remit::Stack::Server->start($state, $port);   # waits for REMIT_URL, 120 s at most
#   $srv->url;       # what it printed, undef when it exited first or took too long
#   $srv->pid;       # kill 'KILL' ... and the like; ->children(qr/\0serve\0?$/): its pool master
#   $srv->status;    # its wait status once it exited, else undef
#   $srv->stop;      # SIGTERM, waits 90 s: its status
# It runs this checkout's binary ($REMIT_BIN or src/remit); its stdout goes to
# $state/server.out (new at each start), its stderr is appended to $state/server.err. One
# still running when the file ends gets SIGTERM, and SIGKILL after 60 s.

use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

my @SERVERS;

sub start {
    my ($class, $state, $port) = @_;
    my $self = bless { state => $state, owner => $$ }, $class;
    unlink "$state/server.out";
    my $bin = File::Spec->rel2abs($ENV{REMIT_BIN} // "$Remit::Stack::TOP/src/remit");
    $self->{pid} = fork // Carp::croak("fork: $!");
    if (!$self->{pid}) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$state/server.out";
        open STDERR, '>>', "$state/server.err";
        $ENV{REMIT_BIN} = $bin;
        exec("$Remit::Stack::TOP/script/server", '--port', $port, '--state', $state)
            or POSIX::_exit(127);
    }
    push @SERVERS, $self;
    my $deadline = time + 120;
    until (defined $self->status || time >= $deadline) {
        last if ($self->{url}) = (Remit::Stack::_slurp("$state/server.out") // '') =~ /^REMIT_URL=(\S+)$/m;
        sleep 0.05;
    }
    return $self;
}

sub pid { $_[0]{pid} }
sub url { $_[0]{url} }
sub children { Remit::Stack::children_matching($_[0]{pid}, $_[1]) }

sub status {
    my ($self) = @_;
    return $self->{exited} if exists $self->{exited};
    local $?;
    $self->{exited} = $? if waitpid($self->{pid}, WNOHANG) == $self->{pid};
    return $self->{exited};
}

# Its status once it exited, waiting $timeout seconds at most (undef: still running).
sub wait_exit {
    my ($self, $timeout) = @_;
    my $deadline = time + $timeout;
    sleep 0.05 until defined $self->status || time >= $deadline;
    return $self->status;
}

sub stop {
    my ($self) = @_;
    kill 'TERM', $self->{pid} unless defined $self->status;
    return $self->wait_exit(90);
}

END {
    local $?;    # the test file's exit status
    for my $srv (@SERVERS) {
        next if $srv->{owner} != $$ || defined $srv->status;    # not in a forked child
        kill 'TERM', $srv->{pid};
        defined $srv->wait_exit(60) or kill 'KILL', $srv->{pid};
    }
}

1;
