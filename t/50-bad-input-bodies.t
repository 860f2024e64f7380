use strict;
use warnings;
use utf8;

use Test::More;
use Remit::Test;
use Remit::Fixture;
use Remit::BadInput;

# Hostile input, the body (sections 1-6: truncated and invalid JSON, invalid UTF-8, NUL, nesting, duplicate names): one concern of the catalogue that t/lib/Remit/BadInput.pm describes
# and runs (every case its documented 4xx, nothing changed, no 5xx, no worker died).

# -- 1. truncated JSON: every prefix for two routes, six cut points for the others.
for my $r (@ROUTES) {
    my $t = template($r);
    my @cuts = ($r->{name} =~ /^(users|add-request)$/) ? (1 .. length($t) - 1)
        : do { my %u = map { (1 + int(($_ / 6) * (length($t) - 2))) => 1 } 0 .. 5; sort { $a <=> $b } keys %u };
    malformed($r, "truncated to $_ of " . length($t) . ' bytes', substr($t, 0, $_)) for @cuts;
}

# -- 2. invalid JSON: generic bodies and surgery on each route's template.
my @SYNTAX = (
    [ 'single quotes'            => sub { (my $t = $_[0]) =~ tr/"/'/; $t } ],
    [ 'unquoted member names'    => sub { (my $t = $_[0]) =~ s/"(\w+)":/$1:/g; $t } ],
    [ 'trailing comma'           => sub { substr($_[0], 0, -1) . ',}' } ],
    [ 'leading comma'            => sub { '{,' . substr($_[0], 1) } ],
    [ 'double comma'             => sub { $_[0] =~ /,/ ? $_[0] =~ s/,/,,/r : substr($_[0], 0, -1) . ',,"z":1}' } ],
    [ 'missing colon'            => sub { (my $t = $_[0]) =~ s/":/" /; $t } ],
    [ '= for :'                  => sub { (my $t = $_[0]) =~ s/":/"=/; $t } ],
    [ '; for ,'                  => sub { substr($_[0], 0, -1) . ';"z":1}' } ],
    [ 'block comment'            => sub { '{/* c */' . substr($_[0], 1) } ],
    [ 'line comment'             => sub { "{// c\n" . substr($_[0], 1) } ],
    [ 'hash comment'             => sub { "{# c\n" . substr($_[0], 1) } ],
    [ 'extra closing brace'      => sub { $_[0] . '}' } ],
    [ 'wrapped in braces'        => sub { '{' . $_[0] . '}' } ],
    [ 'two objects'              => sub { $_[0] . $_[0] } ],
    [ 'two objects, comma'       => sub { $_[0] . ',' . $_[0] } ],
    [ 'trailing garbage'         => sub { $_[0] . ' x' } ],
    [ 'trailing null'            => sub { $_[0] . ' null' } ],
    [ 'in an array'              => sub { '[' . $_[0] . ']' } ],
    [ 'as a JSON string'         => sub { $JSON->encode([ $_[0] ]) =~ s/^\[|\]$//gr } ],
    [ 'object closed by ]'       => sub { substr($_[0], 0, -1) . ']' } ],
    [ 'missing opening brace'    => sub { substr($_[0], 1) } ],
    [ 'byte-order mark'          => sub { "\xEF\xBB\xBF" . $_[0] } ],
    [ 'UTF-16 BE byte-order mark' => sub { "\xFE\xFF" . $_[0] } ],
    [ 'UTF-16 LE encoding'       => sub { join '', map { "$_\0" } split //, $_[0] } ],
    [ 'raw NUL before'           => sub { "\0" . $_[0] } ],
    [ 'raw NUL after'            => sub { $_[0] . "\0" } ],
    [ 'raw NUL after {'          => sub { "{\0" . substr($_[0], 1) } ],
    [ 'U+FEFF between tokens'    => sub { "{\xEF\xBB\xBF" . substr($_[0], 1) } ],
    [ 'U+00A0 between tokens'    => sub { "{\xC2\xA0" . substr($_[0], 1) } ],
    [ 'vertical tab as space'    => sub { "{\x0B" . substr($_[0], 1) } ],
    [ 'form feed as space'       => sub { "{\x0C" . substr($_[0], 1) } ],
    [ 'fullwidth left brace'     => sub { "\xEF\xBD\x9B" . substr($_[0], 1) } ],
    [ 'overlong { (C1 BB)'       => sub { "\xC1\xBB" . substr($_[0], 1) } ],
    [ 'overlong " (C0 A2) as quote' => sub { (my $t = $_[0]) =~ s/"/\xC0\xA2/; $t } ],
);
my @GENERIC = (
    '{"z":NaN}', '{"z":Infinity}', '{"z":-Infinity}', '{"z":undefined}', '{"z":01}',
    '{"z":-01}', '{"z":+1}', '{"z":.5}', '{"z":1.}', '{"z":0x10}', '{"z":1e}', '{"z":1e+}',
    '{"z":-}', '{"z":--1}', '{"z":1.e5}', '{"z":1_000}', '{"z":1 000}', '{"z":tru}',
    '{"z":True}', '{"z":NULL}', '{"z":nul}', '{"z":truefalse}', '{"z":"abc}', '{"z":"a"b"}',
    "{\"z\":\"a\tb\"}", "{\"z\":\"a\nb\"}", "{\"z\":\"a\rb\"}", "{\"z\":\"a\x01b\"}",
    "{\"z\":\"a\x1Fb\"}", "{\"z\":\"a\0b\"}", "{\"z\x00\":1}", '{"z":"\x41"}', '{"z":"\u12"}',
    '{"z":"\u12G4"}', '{"z":"\U0041"}', '{"z":"\a"}', q({"z":"\\'"}), '{"z":"\0"}',
    '{"z":"\"}', '{"z"}', '{"z":}', '{:1}', '{1:1}', '{null:1}', '{true:1}', '{"z":1,}',
    '{"z":[1,]}', '{"z":[,1]}', '{"z":[1 2]}', '{"z":{"a"}}', '{"z":{"a":}}', '}{', '{]',
    '[}', '{"z":1]', '{"z":[1}', '{"z":[}', '{"z":{]}', '{{}}', '{"z"::1}', '{"z":1:2}',
    '{""}', '{"z":1"y":2}', '{"z":"a""b"}', '[]', '[{}]', '"{}"', '""', '0', '-0', '1e400',
    'null', 'true', 'false', ' ', " \t\r\n ", "\0", '{', '}', '{"', '"', ',', ':', 'x',
    '{}}', '{}{}', '{} {}', '{},', '{"a":1}x', '{"z":/re/}', "{'z':1}", '{z:1}',
    "{\"z\":\"\xEF\xBB\xBF\"\xEF\xBB\xBF}",
);
spread(\@SYNTAX, sub { my ($r, $x) = @_; malformed($r, $x->[0], $x->[1]->(template($r))) });
spread(\@GENERIC, sub { my ($r, $x) = @_; malformed($r, "body '$x'", $x) });

# -- 3. invalid UTF-8 and lone surrogates, in a value, in a member name, and outside.
my @BAD_UTF8 = (
    [ 'FF' => "\xFF" ], [ 'FE' => "\xFE" ], [ 'C0 80 (overlong NUL)' => "\xC0\x80" ],
    [ 'C0 AF (overlong /)' => "\xC0\xAF" ], [ 'C0 A2 (overlong ")' => "\xC0\xA2" ],
    [ 'C1 BF' => "\xC1\xBF" ], [ 'E0 80 80' => "\xE0\x80\x80" ], [ 'E0 80 AF' => "\xE0\x80\xAF" ],
    [ 'E0 9F BF (overlong U+07FF)' => "\xE0\x9F\xBF" ], [ 'F0 80 80 80' => "\xF0\x80\x80\x80" ],
    [ 'F0 80 80 AF' => "\xF0\x80\x80\xAF" ], [ 'F0 8F BF BF (overlong U+FFFF)' => "\xF0\x8F\xBF\xBF" ],
    [ 'ED A0 80 (U+D800)' => "\xED\xA0\x80" ], [ 'ED AF BF (U+DBFF)' => "\xED\xAF\xBF" ],
    [ 'ED B0 80 (U+DC00)' => "\xED\xB0\x80" ], [ 'ED BF BF (U+DFFF)' => "\xED\xBF\xBF" ],
    [ 'CESU-8 surrogate pair' => "\xED\xA0\xBD\xED\xB8\x80" ],
    [ 'F4 90 80 80 (U+110000)' => "\xF4\x90\x80\x80" ], [ 'F5 80 80 80' => "\xF5\x80\x80\x80" ],
    [ 'F7 BF BF BF' => "\xF7\xBF\xBF\xBF" ], [ 'F8 88 80 80 80 (5 bytes)' => "\xF8\x88\x80\x80\x80" ],
    [ 'FC 84 80 80 80 80 (6 bytes)' => "\xFC\x84\x80\x80\x80\x80" ],
    [ 'lone continuation 80' => "\x80" ], [ 'lone continuation BF' => "\xBF" ],
    [ 'C3 then ASCII' => "\xC3A" ], [ 'E2 82 then ASCII' => "\xE2\x82A" ],
    [ 'F0 9F 98 then ASCII' => "\xF0\x9F\x98A" ], [ 'C3 C3' => "\xC3\xC3" ],
    [ 'E2 28 A1' => "\xE2\x28\xA1" ], [ 'latin-1 e-acute' => "caf\xE9" ],
    [ 'truncated 4-byte before the quote' => "x\xF0\x9F\x98" ], [ 'C2 alone' => "x\xC2" ],
);
my @BAD_ESCAPES = (
    '\ud800', '\udbff', '\udc00', '\udfff', '\uD800', '\ud800\u0041', '\ud800x',
    '\udc00\ud800', '\ud800\ud800', '\ud83d\\\\ude00', '\ud83d\n', '\ud83d\u00e9',
);
spread(\@BAD_UTF8, sub {
    my ($r, $u) = @_;
    malformed($r, "$u->[0] in $r->{probe}", in_probe($r, $u->[1]));
    malformed($r, "$u->[0] in a member name", in_key($r, $u->[1]));
});
spread(\@BAD_ESCAPES, sub {
    my ($r, $e) = @_;
    malformed($r, "escaped '$e' in $r->{probe}", in_probe($r, $e));
    malformed($r, "escaped '$e' in a member name", in_key($r, $e));
});
for my $r (@ROUTES) {
    malformed($r, 'FF after the object', template($r) . "\xFF");
    malformed($r, 'body cut inside a 4-byte sequence', substr(in_probe($r, "\xF0\x9F\x98\x80"), 0,
        index(in_probe($r, "\xF0\x9F\x98\x80"), "\xF0") + 2));
}

# -- 4. NUL: raw (a grammar error) and escaped (a control character in a field).
for my $r (@ROUTES) {
    my $p = $r->{probe_path} // $r->{probe};
    malformed($r, "raw NUL in $r->{probe}", in_probe($r, "\0"));
    malformed($r, 'raw NUL in a member name', in_key($r, "\0"));
    invalid($r, "escaped \\u0000 in $r->{probe}", in_probe($r, '\u0000'), [$p]);
    invalid($r, "escaped \\u0000 at the end of $r->{probe}",
        in_probe($r, 'x\u0000') =~ s/x\\u0000(.*?)"/$1\\u0000"/r, [$p]);
    invalid($r, 'a member name holding \u0000', body_with($r, "a\0b" => 1), ['(field)']);
}

# -- 5. nesting: the body object is level 1; 32 levels parse, 33 do not.
for my $r (@ROUTES) {
    for my $shape (qw(arrays objects mixed)) {
        my $nest = sub {
            my ($levels) = @_;    # total levels including the body object
            my $n = $levels - 1;
            return $shape eq 'arrays' ? ('[' x $n) . (']' x $n)
                : $shape eq 'objects' ? ('{"a":' x ($n - 1)) . '{}' . ('}' x ($n - 1))
                : join('', map { $_ % 2 ? '{"a":' : '[' } 1 .. $n - 1) . ($n % 2 ? '{}' : '[]')
                    . join('', map { $_ % 2 ? '}' : ']' } reverse 1 .. $n - 1);
        };
        invalid($r, "32 levels of $shape in an unknown field",
            body_with($r, deep => \$nest->(32)), ['deep']);
        malformed($r, "33 levels of $shape", body_with($r, deep => \$nest->(33)));
    }
    my $known = $r->{probe};
    invalid($r, "32 levels in $known", body_with($r, $known => \(('[' x 31) . (']' x 31))),
        [ $r->{probe_path} // $known ]) unless $r->{name} eq 'rules';
    malformed($r, '1000 levels', body_with($r, deep => \(('[' x 999) . (']' x 999))));
    malformed($r, '32,000 unclosed levels', '{"deep":' . ('[' x 32000));
    malformed($r, '32,000 levels', '{"deep":' . ('[' x 32000) . (']' x 32000) . '}');
}

# -- 6. duplicate member names (one object; after escapes are decoded) and near-duplicates.
for my $r (@ROUTES) {
    my $t = template($r);
    my @keys = $r->{name} eq 'rules' ? () : sort keys %{ $r->{base} };
    for my $k (@keys) {
        my $v = $JSON->encode([ $r->{base}{$k} ]) =~ s/^\[|\]$//gr;
        malformed($r, "$k twice, same value", substr($t, 0, -1) . ",\"$k\":$v}");
        malformed($r, "$k twice, other value", substr($t, 0, -1) . ",\"$k\":\"other\"}");
        malformed($r, "$k twice, once escaped",
            substr($t, 0, -1) . ',"' . sprintf('\u%04x', ord $k) . substr($k, 1) . "\":$v}");
        malformed($r, "$k twice, once null", substr($t, 0, -1) . ",\"$k\":null}");
        invalid($r, "$k and a case variant", substr($t, 0, -1) . ',"' . ucfirst($k) . "\":$v}",
            [ ucfirst $k ]) if ucfirst($k) ne $k;
    }
    malformed($r, 'an unknown field twice', substr($t, 0, -1) . ',"zz":1,"zz":2}');
    malformed($r, 'duplicate in a nested object', substr($t, 0, -1) . ',"zz":{"a":1,"a":1}}');
    malformed($r, 'duplicate at level 32',
        body_with($r, deep => \(('{"a":' x 30) . '{"b":1,"b":2}' . ('}' x 30))));
    invalid($r, 'decomposed and precomposed e-acute are two names',
        body_with($r, "\x{e9}" => 1, "e\x{301}" => 1), [ "\x{e9}", "e\x{301}" ]);
}
malformed($ROUTE{rules}, 'duplicate currency in rules[0]',
    '{"rules":[{"currency":"SEK","currency":"NOK","minAmount":"1","approvals":1}]}');
malformed($ROUTE{rules}, 'duplicate approvals in rules[1]',
    '{"rules":[{"currency":"SEK","minAmount":"1","approvals":1},'
    . '{"currency":"NOK","minAmount":"1","approvals":1,"approvals":2}]}');


run_catalogue();

done_testing;
