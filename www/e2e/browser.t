use strict;
use warnings;

# The browser tests of the web frontend (www/e2e/run.mjs, Playwright driving Debian's
# chromium) against one real stack: MariaDB, the pool and nginx serving www/public. Kept out
# of t/ so that script/test runs it once, not again against the sanitizer build (the browser
# says nothing about memory errors the HTTP suite would not). Needs `npm ci` in www/e2e
# first (script/test runs it). Screenshots go to $REMIT_SCREENSHOTS (default t/tmp/screenshots).
#   prove -v -I t/lib www/e2e/browser.t
#   REMIT_E2E_ONLY="double lost" prove -v -I t/lib www/e2e/browser.t    # some scenarios

use Test::More;
use Remit::Test;

my $top = $Remit::Stack::TOP;
my $e2e = "$top/www/e2e";
BAIL_OUT("no $e2e/node_modules: run (cd www/e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci)")
    unless -d "$e2e/node_modules/playwright-core";

my $s = Remit::Test->stack;
local $ENV{REMIT_URL} = $s->url;
local $ENV{REMIT_BIN} = $s->bin;
local $ENV{REMIT_CONFIG} = $s->config_path;
local $ENV{REMIT_SCREENSHOTS} = $ENV{REMIT_SCREENSHOTS} // "$top/t/tmp/screenshots";
note "screenshots in $ENV{REMIT_SCREENSHOTS}";

# run.mjs prints TAP of its own; each of its lines becomes one test here.
my @only = split ' ', $ENV{REMIT_E2E_ONLY} // '';
open my $node, '-|', 'node', "$e2e/run.mjs", @only or die "node: $!";
my ($seen, $failing) = (0, 0);
while (my $line = <$node>) {
    chomp $line;
    if ($line =~ /^(not )?ok \d+ - (.*?)(?: # SKIP (.*))?$/) {
        $seen++;
        $failing = $1 ? 1 : 0;
        if (defined $3) { SKIP: { skip "$2: $3", 1 } }
        else { ok !$1, $2 }
    } elsif ($line =~ /^# ?(.*)$/) {
        $failing ? diag $1 : note $1;    # why a test failed, or the scenario's name
    } elsif ($line !~ /^1\.\.\d+$/) {
        diag $line;
    }
}
close $node;
is $? >> 8, 0, 'the browser run exited 0';
ok $seen > 0, 'the browser run reported its tests';

done_testing;
