package Remit::OpenAPI;

# Holds the service to its contract, doc/openapi.yaml: given a request's method and target
# and the response it got, says what in the response the document does not describe. The
# route is found the way the app finds it (the path nginx normalises, then the templates,
# literal segments before parameters); then the status must be listed for that route and
# method, every header the document requires must be there and match its schema, the
# Content-Type must be one the document gives, and a JSON body must be valid against the
# schema (JSON::Validator, draft 2019-09, the closest Debian's 5.14 has to OpenAPI 3.1's
# 2020-12; the document keeps to what both mean the same).
#
# What no operation takes is described under x-remit-unrouted: an unknown path (404), a
# known path with another method (405 + Allow), a missing token under /api/v1 (401) and the
# errors nginx answers itself. GET and HEAD of other paths answered 200 with something
# other than JSON are the static frontend (§8 of the contract: www/ at /).
#
#   my $oa = Remit::OpenAPI->load;               # doc/openapi.yaml of this tree
#   my @why = $oa->check('GET', '/api/v1/me', $res);   # $res as Remit::Test->req returns

use strict;
use warnings;

use Carp qw(croak);
use File::Basename qw(dirname);
use Cwd qw(abs_path);
use JSON::PP ();
use JSON::Validator;
use JSON::Validator::Schema::Draft201909;
use YAML::XS ();

my $TOP = abs_path(dirname(__FILE__) . '/../../..');

# The document's own schemas refer to each other by "#/...": giving the root an absolute id
# lets a response's schema be named from outside as "$ID#<pointer>".
my $ID = 'https://remit.invalid/openapi.yaml';

my $JSON = JSON::PP->new->utf8;

sub load {
    my ($class, $file) = @_;
    $file //= "$TOP/doc/openapi.yaml";
    my $doc = YAML::XS::LoadFile($file);
    croak "$file: not OpenAPI 3.1" unless ($doc->{openapi} // '') =~ /^3\.1\./;
    my $jv = JSON::Validator->new;
    $jv->schema({ %$doc, '$schema' => 'https://json-schema.org/draft/2019-09/schema',
        '$id' => $ID });
    my @routes;
    for my $tpl (keys %{ $doc->{paths} }) {
        my @seg = split m{/}, $tpl, -1;
        my $params = grep { /^\{[^}]+\}$/ } @seg;
        my $re = join '/', map { /^\{[^}]+\}$/ ? '[^/]+' : quotemeta } @seg;
        push @routes, { tpl => $tpl, re => qr/^$re$/, params => $params };
    }
    # Literal segments win over parameters, as in the app's table (/me/tokens, /sessions/current).
    @routes = sort { $a->{params} <=> $b->{params} || $a->{tpl} cmp $b->{tpl} } @routes;
    return bless { doc => $doc, jv => $jv, routes => \@routes, compiled => {} }, $class;
}

# RFC 6901: the pointer of a path of names.
sub _pointer { join '', map { my $s = $_; $s =~ s/~/~0/g; $s =~ s{/}{~1}g; "/$s" } @_ }

# The object at a local "#/..." reference, and its pointer.
sub _deref {
    my ($self, $obj, $ptr) = @_;
    while (ref $obj eq 'HASH' && defined $obj->{'$ref'}) {
        my $ref = $obj->{'$ref'};
        croak "only local references are supported: $ref" unless $ref =~ s{^#}{};
        $ptr = $ref;
        $obj = $self->{doc};
        for my $name (map { s/~1/\//gr =~ s/~0/~/gr } grep { length } split m{/}, $ref) {
            $obj = ref $obj eq 'HASH' ? $obj->{$name} : undef;
            croak "unresolved reference #$ref" unless defined $obj;
        }
    }
    return ($obj, $ptr);
}

# Validation errors of $data against the schema at $ptr. Each schema is resolved once, into
# an object of its own sharing the document's store: JSON::Validator re-resolves a schema
# given to validate() on every call, which costs more than the validation.
sub _validate {
    my ($self, $data, $ptr) = @_;
    my $schema = $self->{compiled}{$ptr} //= JSON::Validator::Schema::Draft201909->new(
        { '$ref' => "$ID#$ptr" }, store => $self->{jv}->store)->resolve;
    return map {"$_"} $schema->validate($data);
}

# A header's value against its schema, which the document keeps to const, enum and pattern
# on a string: checked here directly (a JSON::Validator call per header would cost more
# than the rest of the check).
sub _header_errors {
    my ($schema, $v) = @_;
    my @why;
    push @why, "is not '$schema->{const}'" if defined $schema->{const} && $v ne $schema->{const};
    push @why, 'is not one of ' . join(', ', @{ $schema->{enum} })
        if $schema->{enum} && !grep { $v eq $_ } @{ $schema->{enum} };
    push @why, "does not match $schema->{pattern}"
        if defined $schema->{pattern} && $v !~ /$schema->{pattern}/;
    my %known = map { $_ => 1 } qw(type const enum pattern description example);
    croak "header schema keyword(s) the check does not know: @{[ grep { !$known{$_} } keys %$schema ]}"
        if grep { !$known{$_} } keys %$schema;
    return @why;
}

# What nginx does to a request's path before the app sees it ($document_uri): no query,
# %XX decoded, runs of slashes merged, dot segments resolved.
sub _path {
    my ($target) = @_;
    my $path = $target =~ s/[?#].*//sr;
    $path =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    $path =~ s{/{2,}}{/}g;
    my @out;
    for my $seg (split m{/}, $path, -1) {
        if ($seg eq '..') { pop @out if @out > 1 }
        elsif ($seg ne '.') { push @out, $seg }
    }
    push @out, '' if $path =~ m{/\.\.?$};
    my $p = join '/', @out;
    return length $p ? $p : '/';
}

sub route {
    my ($self, $path) = @_;
    for my $r (@{ $self->{routes} }) {
        return $r->{tpl} if $path =~ $r->{re};
    }
    return undef;
}

# The response objects the document gives for this request and status, each with its
# pointer (the operation's own first, then what nginx answers for any request: its 400 for
# a request it cannot parse also reaches a route that lists a 400 of its own); and a name
# for messages.
sub _responses_for {
    my ($self, $method, $path, $status, $ctype) = @_;
    my $doc = $self->{doc};
    my $tpl = $self->route($path);
    my $op = defined $tpl ? $doc->{paths}{$tpl}{ lc $method } : undef;
    my $name = defined $tpl ? "$method $tpl" : "$method $path (no route)";
    my $un = $doc->{'x-remit-unrouted'};
    my @found;
    if ($op) {
        # Never the operation's `default` (a catch-all for generated clients that says what
        # x-remit-unrouted says exactly): a status the operation does not list is checked
        # against x-remit-unrouted's nginx map below, or fails.
        push @found, [ $self->_deref($op->{responses}{$status},
            _pointer('paths', $tpl, lc $method, 'responses', $status)) ]
            if $op->{responses}{$status};
    } elsif ($status == 401 && $path =~ m{^/api/v1(?:/|$)}) {
        push @found, [ $self->_deref($un->{unauthenticated}, '/x-remit-unrouted/unauthenticated') ];
    } elsif (defined $tpl && $status == 405) {
        push @found, [ $self->_deref($un->{otherMethod}, '/x-remit-unrouted/otherMethod') ];
    } elsif (!defined $tpl && $status == 404) {
        push @found, [ $self->_deref($un->{unknownPath}, '/x-remit-unrouted/unknownPath') ];
    } elsif (!defined $tpl && $status == 200 && $method =~ /^(?:GET|HEAD)$/
        && ($ctype // '') !~ m{^application/json\b}i) {
        push @found, [ { static => 1 } ];
    }
    push @found, [ $self->_deref($un->{nginx}{$status}, "/x-remit-unrouted/nginx/$status") ]
        if $un->{nginx}{$status};
    return ($name, @found);
}

# The ways $res (status, headers with lower-case names, body) departs from the document:
# () when one of the responses the document gives for it describes it, else a line naming
# the route and status followed by what the first of them found wrong.
sub check {
    my ($self, $method, $target, $res) = @_;
    my $path = _path($target);
    my $status = $res->{status};
    my $h = $res->{headers} // {};
    my $ctype = ref $h->{'content-type'} ? $h->{'content-type'}[0] : $h->{'content-type'};
    my ($name, @candidates) = $self->_responses_for($method, $path, $status, $ctype);
    return ("$name -> $status", "status $status is not listed for the route and method")
        unless @candidates;
    my @first;
    for my $c (@candidates) {
        my @why = $self->_mismatch($method, $res, $ctype, @$c);
        return () unless @why;
        @first = @why unless @first;
    }
    return ("$name -> $status", @first);
}

sub _mismatch {
    my ($self, $method, $res, $ctype, $resp, $ptr) = @_;
    return () if $resp->{static};
    my $h = $res->{headers} // {};
    my @why;
    for my $hname (sort keys %{ $resp->{headers} // {} }) {
        my ($hdr, $hptr) = $self->_deref($resp->{headers}{$hname},
            $ptr . _pointer('headers', $hname));
        my $v = $h->{ lc $hname };
        if (!defined $v) {
            push @why, "header $hname is missing" if $hdr->{required};
        } elsif (ref $v) {
            push @why, "header $hname is sent " . @$v . ' times';
        } else {
            my ($schema) = $self->_deref($hdr->{schema}, "$hptr/schema");
            push @why, map {"header $hname '$v' $_"} _header_errors($schema, $v);
        }
    }
    my $content = $resp->{content};
    my $body = $res->{body} // '';
    if (!$content) {
        push @why, 'a body where the document gives none (' . length($body) . ' bytes)'
            if length $body;
        return @why;
    }
    return @why if $method eq 'HEAD';
    my $type = lc(($ctype // '') =~ s/\s*;.*//sr);
    if (!exists $content->{$type}) {
        push @why, 'Content-Type ' . ($ctype // '(none)') . ' is not '
            . join(' or ', sort keys %$content);
    } elsif ($type eq 'application/json') {
        my $data = eval { $JSON->decode($body) };
        if ($@) {
            push @why, 'the body is not JSON';
        } else {
            push @why, map {"body $_"} $self->_validate($data,
                $ptr . _pointer('content', $type, 'schema'));
        }
    }
    return @why;
}

1;
