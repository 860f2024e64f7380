package Remit::Webhook;

# The real parts the events-out tests (t/85..t/89) run against: an HTTP receiver on loopback
# that checks the Standard Webhooks signature of every request it gets and answers what the
# test scripted, and `remit deliver` processes started (and killed) by pid.
#
#   my $rx = Remit::Webhook::Receiver->start($dir);   # $rx->url, ->plan(500, 200), ->secret($s)
#   my $d = Remit::Webhook::deliverer($stack);        # pid; ->kill_deliverer($pid, 'KILL')
#   my @got = $rx->received;                          # [{id, ts, sig_ok, body, t0, t1}, ...]

use strict;
use warnings;

use Carp qw(croak);
use Digest::SHA qw(hmac_sha256);
use Fcntl qw(:flock);
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(decode_base64 encode_base64);
use POSIX ();
use Time::HiRes qw(time sleep);

my $JSON = JSON::PP->new->utf8->canonical;
my @DELIVERERS;     # [pid, log] of every deliverer started here, stopped at END

# The Standard Webhooks signature of one request: "v1,<base64 HMAC-SHA256>".
sub sign {
    my ($secret, $id, $ts, $body) = @_;
    (my $b64 = $secret) =~ s/^whsec_// or return '';
    return 'v1,' . encode_base64(hmac_sha256("$id.$ts.$body", decode_base64($b64)), '');
}

# Starts `remit deliver` on the stack's configuration (plus %conf in a file of its own);
# returns its pid. Its log is <state>/deliver-<n>.log.
sub deliverer {
    my ($s, %conf) = @_;
    my $n = @DELIVERERS + 1;
    my $conf = $s->config_path;
    if (%conf) {
        my $own = $s->state_dir . "/deliver-$n.conf";
        open my $in, '<', $conf or croak "$conf: $!";
        my $text = join '', <$in>;
        $text .= "$_ = $conf{$_}\n" for sort keys %conf;
        my $old = umask 077;
        open my $out, '>', $own or croak "$own: $!";
        print $out $text;
        close $out;
        umask $old;
        $conf = $own;
    }
    my $log = $s->state_dir . "/deliver-$n.log";
    my $pid = fork // croak "fork: $!";
    if (!$pid) {
        setpgrp(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT;
        exec($s->bin, '--config', $conf, 'deliver') or POSIX::_exit(127);
    }
    push @DELIVERERS, [$pid, $log];
    return $pid;
}

# Stops one deliverer ($signal, default TERM); returns its wait status.
sub stop_deliverer {
    my ($pid, $signal) = @_;
    kill $signal // 'TERM', $pid;
    my $deadline = time + 30;
    while (time < $deadline) {
        my $r = waitpid $pid, POSIX::WNOHANG();
        return $? if $r == $pid;
        return undef if $r < 0;
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid $pid, 0;
    return $?;
}

# Lines of the deliverers' logs that tell of a crash or a sanitizer report.
sub findings {
    my @found;
    for my $d (@DELIVERERS) {
        open my $fh, '<', $d->[1] or next;
        push @found, grep { /AddressSanitizer|LeakSanitizer|runtime error:|"level":"error"/ } <$fh>;
    }
    return @found;
}

END {
    local $?;
    for my $d (@DELIVERERS) {
        kill 'KILL', $d->[0] if waitpid($d->[0], POSIX::WNOHANG()) == 0;
        waitpid $d->[0], 0;
    }
}

package Remit::Webhook::Receiver;

use Carp qw(croak);
use Fcntl qw(:flock);
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time sleep);

my @RECEIVERS;

# A receiver on a free loopback port, one forked child per connection (so a hanging answer
# holds no one else). What it answers comes from its plan: one line per request, taken in
# order ("500", "200", "410", "302", "hang", "slow SECONDS"); an empty plan answers 200.
sub start {
    my ($class, $dir) = @_;
    my $self = bless { dir => $dir }, $class;
    mkdir $dir;
    $self->_spew('received', '');
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 64,
        ReuseAddr => 1, Proto => 'tcp') or croak "listen: $!";
    $self->{port} = $srv->sockport;
    my $pid = fork // croak "fork: $!";
    if (!$pid) {
        setpgrp(0, 0);
        $SIG{CHLD} = 'IGNORE';
        while (1) {
            my $c = $srv->accept or next;
            my $kid = fork;
            if (defined $kid && !$kid) {
                $self->_serve($c);
                POSIX::_exit(0);
            }
            close $c;
        }
    }
    close $srv;
    $self->{pid} = $pid;
    push @RECEIVERS, $pid;
    return $self;
}

sub url    { "http://127.0.0.1:$_[0]{port}" . ($_[1] // '/hook') }
sub port   { $_[0]{port} }
# The secret the requests to $path are signed with.
sub secret { my ($self, $path, $secret) = @_; $self->_spew(_file('secret', $path), $secret) }
# The answers for requests to $path, in order; after them, 200.
sub plan {
    my ($self, $path, @answers) = @_;
    $self->_spew(_plan_file($path), join '', map { "$_\n" } @answers);
}

sub _plan_file { _file('plan', $_[0]) }
sub _file { (my $p = "$_[0]$_[1]") =~ s/[^A-Za-z0-9]/_/g; $p }

# Every request received (to $path only, when given), in the order answered: {id, ts, sig,
# sig_ok, body, path, answer, t0 (arrival), t1 (answer sent)}.
sub received {
    my ($self, $path) = @_;
    open my $fh, '<', "$self->{dir}/received" or return;
    flock $fh, LOCK_SH;    # a child appends under LOCK_EX: never read half a line
    return grep { !defined $path || $_->{path} eq $path }
        map { JSON::PP->new->utf8->decode($_) } grep { /\S/ } <$fh>;
}

# How many requests have arrived (answered or not).
sub arrived {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/arrived" or return 0;
    my @l = <$fh>;
    return scalar @l;
}

sub stop {
    my ($self) = @_;
    kill 'KILL', -$self->{pid}, $self->{pid} if $self->{pid};
    waitpid $self->{pid}, 0 if $self->{pid};
    delete $self->{pid};
}

sub _spew {
    my ($self, $name, $text) = @_;
    open my $fh, '>', "$self->{dir}/$name.tmp" or croak "$name: $!";
    print $fh $text;
    close $fh;
    rename "$self->{dir}/$name.tmp", "$self->{dir}/$name" or croak "rename: $!";
}

# The next line of the plan, taken under a lock (children answer concurrently).
sub _next_answer {
    my ($self, $path) = @_;
    my $plan = _plan_file($path);
    open my $lock, '>>', "$self->{dir}/plan.lock" or return '200';
    flock $lock, LOCK_EX;
    open my $fh, '<', "$self->{dir}/$plan" or return '200';
    my @lines = <$fh>;
    close $fh;
    my $first = shift @lines // "200\n";
    $self->_spew($plan, join '', @lines);
    chomp $first;
    return $first;
}

sub _read_request {
    my ($c) = @_;
    local $/ = "\r\n";
    my $line = <$c> // return;
    my ($method, $path) = split ' ', $line;
    my %h;
    while (defined(my $l = <$c>)) {
        $l =~ s/\r\n$//;
        last if $l eq '';
        my ($k, $v) = split /:\s*/, $l, 2;
        $h{ lc $k } = $v;
    }
    my $body = '';
    read $c, $body, $h{'content-length'} // 0;
    return { method => $method, path => $path, headers => \%h, body => $body };
}

sub _serve {
    my ($self, $c) = @_;
    my $t0 = time;
    $SIG{PIPE} = 'IGNORE';    # a deliverer killed mid-answer must not take the record with it
    my $rq = _read_request($c) or return;
    my $h = $rq->{headers};
    my $secret = '';
    if (open my $sf, '<', "$self->{dir}/" . _file('secret', $rq->{path})) {
        $secret = <$sf> // '';
    }
    my $want = Remit::Webhook::sign($secret, $h->{'webhook-id'} // '',
        $h->{'webhook-timestamp'} // '', $rq->{body});
    my $answer = $self->_next_answer($rq->{path});
    if (open my $arr, '>>', "$self->{dir}/arrived") {
        print $arr "$t0\n";
        close $arr;
    }
    my %rec = (id => $h->{'webhook-id'}, ts => $h->{'webhook-timestamp'},
        sig => $h->{'webhook-signature'}, body => $rq->{body}, path => $rq->{path},
        sig_ok => (($h->{'webhook-signature'} // '') eq $want && $want ne '') ? 1 : 0,
        method => $rq->{method}, answer => $answer, t0 => $t0,
        ctype => $h->{'content-type'});
    if ($answer eq 'hang') {
        sleep 3600;
    } elsif ($answer =~ /^slow (\S+)/) {
        sleep $1;
        $answer = 200;
    }
    my $loc = $answer =~ /^30/ ? "Location: http://127.0.0.1:$self->{port}/elsewhere\r\n" : '';
    $rec{t1} = time;    # before the answer goes: the next request cannot begin before it
    print $c "HTTP/1.1 $answer X\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
        . "${loc}Connection: close\r\n\r\nok";
    close $c;
    open my $out, '>>', "$self->{dir}/received" or return;
    flock $out, LOCK_EX;
    print $out JSON::PP->new->utf8->canonical->encode(\%rec), "\n";
    close $out;
}

END {
    local $?;
    for my $pid (@RECEIVERS) {
        kill 'KILL', -$pid, $pid;
        waitpid $pid, 0;
    }
}

1;
