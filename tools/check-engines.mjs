// Fails when a package pinned by tools/package-lock.json or www/e2e/package-lock.json says
// (in its `engines`) that it does not run on Debian 12's Node.js, the one script/bootstrap
// installs on plain Debian 12 (issue 21: @redocly/cli 2.x needed Node 20.19, and this machine,
// with a newer Node from elsewhere, never noticed). Run by script/test; by hand:
// `node tools/check-engines.mjs [VERSION]` (default 18.20.4, bookworm's nodejs).
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const tools = dirname(fileURLToPath(import.meta.url));
const semver = createRequire(join(tools, 'package.json'))('semver');
const node = process.argv[2] ?? '18.20.4';
let bad = 0;
for (const lock of ['tools/package-lock.json', 'www/e2e/package-lock.json']) {
  const { packages } = JSON.parse(readFileSync(join(tools, '..', lock), 'utf8'));
  for (const [path, p] of Object.entries(packages)) {
    const range = p.engines?.node;
    if (typeof range !== 'string' || semver.satisfies(node, range)) continue;
    console.error(`check-engines: ${lock}: ${path || '(root)'} ${p.version ?? ''} needs node ${range}, not ${node}`);
    bad++;
  }
}
if (bad) process.exit(1);
console.error(`check-engines: every package in both locks runs on Node ${node}`);
