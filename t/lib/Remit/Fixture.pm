package Remit::Fixture;

# The things a test needs before it tests anything: people, batches, requests, decisions and
# a request ready to pay, each made through the API (so every row is one the service would
# have written) and each with one signature. Each dies with the status and body when the
# service refuses, so a broken fixture stops the file at its cause. `$who` is a token or a
# user as Remit::Test->new_user returns it ({token, ...}); `%fields` override the defaults.
#
#   my $s = Remit::Test->stack;
#   my $org = $s->new_org;
#   my $creator = person($s, $org->{token}, 'CREATOR');
#   my $t = team($s, creator => ['CREATOR'], a1 => ['APPROVER']);   # {creator => token, ...}
#   my $b = batch($s, $creator);                       # {id, status => 'DRAFT', ...}
#   my $r = request($s, $creator, $b->{id}, amount => '12.50', currency => 'EUR');
#   submit($s, $creator, $b->{id});
#   approval($s, $approver, $r->{id});                 # the request after the decision
#   my $paid_next = ready_request($s, $creator, [$approver]);   # APPROVED, ready to pay
#   my @in_a_file = ready_requests($s, $creator, [$approver], { amount => '1.00' }, { amount => '2.00' });
#   my $data = ok_req($s, 201, POST => '/api/v1/batches', ...);   # dies unless 201

use strict;
use warnings;
use Carp qw(croak);
use Exporter 'import';

our @EXPORT = qw(person team batch request submit approval ready_request ready_requests);
# Not by default: some files have subs of these names (with other signatures) of their own.
our @EXPORT_OK = qw(ok_req people debtor_account);

# The request every fixture adds unless told otherwise: a valid IBAN, written in groups.
our %REQUEST = (amount => '10.00', currency => 'USD', beneficiaryName => 'Ann',
    beneficiaryAccount => 'GB82 WEST 1234 5698 7654 32');

sub _token { my ($who) = @_; ref $who ? $who->{token} : $who }

sub _data {
    my ($what, $res, $status) = @_;
    croak "$what: $res->{status} $res->{body}" unless $res->{status} == $status;
    return $res->{json}{data};
}

# A user of the admin's organisation with these roles (VIEWER when none) and a token:
# {id, token, email, name, roles}.
sub person {
    my ($s, $admin, @roles) = @_;
    return $s->new_user(_token($admin), roles => [ @roles ? @roles : 'VIEWER' ]);
}

# A new organisation and one user per name with those roles: {admin => token, org => its
# id, NAME => token, NAME_id => id, ...}, e.g. team($s, creator => ['CREATOR'], a1 => ['APPROVER']).
sub team {
    my ($s, %roles) = @_;
    my $o = $s->new_org;
    my %t = (admin => $o->{token}, org => $o->{orgId});
    for my $k (sort keys %roles) {
        my $u = $s->new_user($o->{token}, roles => $roles{$k});
        $t{$k} = $u->{token};
        $t{"${k}_id"} = $u->{id};
    }
    return \%t;
}

# A user of the admin's organisation per lower-case name, with that name's role in upper case:
# {name => user}, e.g. people($s, $admin, qw(creator approver treasurer)).
sub people {
    my ($s, $admin, @names) = @_;
    return { map { $_ => person($s, $admin, uc $_) } @names };
}

# Sends a request ($s->req's arguments) that must answer $want: its `data`; dies with the
# status and body otherwise.
sub ok_req {
    my ($s, $want, @req) = @_;
    return _data("$req[0] $req[1]", $s->req(@req), $want);
}

# The organisation's EUR debtor account (API §9), for payment files; %account overrides
# (name, iban, bic). The accounts' representation.
sub debtor_account {
    my ($s, $admin, %account) = @_;
    return _data('debtor account', $s->req(PUT => '/api/v1/debtor-accounts', token => _token($admin),
        json => { accounts => [ { currency => 'EUR', name => 'Acme',
            iban => 'DE89370400440532013000', %account } ] }), 200);
}

# A DRAFT batch of the caller's organisation: its representation.
sub batch {
    my ($s, $who, %fields) = @_;
    return _data('create batch', $s->req(POST => '/api/v1/batches', token => _token($who),
        idem => 1, json => { name => 'Batch', %fields }), 201);
}

# A request added to batch $bid: its representation.
sub request {
    my ($s, $who, $bid, %fields) = @_;
    return _data('add request', $s->req(POST => "/api/v1/batches/$bid/requests",
        token => _token($who), idem => 1, json => { %REQUEST, %fields }), 201);
}

# Submits batch $bid: the batch's representation, SUBMITTED.
sub submit {
    my ($s, $who, $bid) = @_;
    return _data('submit', $s->req(POST => "/api/v1/batches/$bid/submit",
        token => _token($who), idem => 1), 200);
}

# Approves request $rid (`comment` and the like in %fields): the request's representation.
sub approval {
    my ($s, $who, $rid, %fields) = @_;
    return _data('approve', $s->req(POST => "/api/v1/requests/$rid/approve",
        token => _token($who), idem => 1, json => { %fields }), 200);
}

# A request in a batch of its own, submitted by $creator and approved by each of @$approvers
# in turn (as many as the organisation's rules ask for): the request, APPROVED, which a
# TREASURER may mark paid.
sub ready_request {
    my ($s, $creator, $approvers, %fields) = @_;
    return (ready_requests($s, $creator, $approvers, {%fields}))[0];
}

# As ready_request, one request per hash of fields, all in one batch: the requests, APPROVED,
# in that order (e.g. the items of one payment file).
sub ready_requests {
    my ($s, $creator, $approvers, @fields) = @_;
    my $bid = batch($s, $creator)->{id};
    my @r = map { request($s, $creator, $bid, %$_) } @fields;
    submit($s, $creator, $bid);
    for my $r (@r) {
        for my $a (@$approvers) {
            $r = approval($s, $a, $r->{id});
            last if $r->{status} eq 'APPROVED';
        }
        croak "ready_request: request $r->{id} is $r->{status} after every approver"
            unless $r->{status} eq 'APPROVED';
    }
    return @r;
}

1;
