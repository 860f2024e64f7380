// Renders doc/openapi.yaml into doc/html/docs/, the reference page nginx serves at /docs/
// (Redoc routes in the fragment, /docs/#/batches, so one page answers every section):
//   index.html             the page, pre-rendered by `redocly build-docs`
//   redoc.standalone.js    Redoc itself, from the pinned @redocly/cli (not from its CDN)
//   docs.js, color-mode.js the page's own scripts, moved out of the HTML
// so the page loads nothing from elsewhere and runs under a CSP without 'unsafe-inline'
// scripts (styles stay inline: Redoc's styled-components write <style> elements at run time).
// Run by script/bootstrap through `npm run docs`; fails when the output is not what it expects
// (a Redoc upgrade that changes the page must be looked at, not served half-working).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const tools = dirname(fileURLToPath(import.meta.url));
const out = join(tools, '..', 'doc', 'html', 'docs');
const page = join(out, 'index.html');
mkdirSync(out, { recursive: true });

execFileSync(join(tools, 'node_modules', '.bin', 'redocly'),
  ['build-docs', join(tools, '..', 'doc', 'openapi.yaml'), '--output', page,
    '--title', 'remit API reference', '--openapi.basePath=/docs'],
  { stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } });

// The attribution badge would load its logo from Redocly's CDN (the CSP refuses it anyway):
// point it at a file that is not there (a 404 here), so the badge hides its image without
// asking anyone else.
const redoc = readFileSync(join(tools, 'node_modules', '@redocly', 'cli', 'lib', 'chunks',
  'redoc.standalone.js'), 'utf8');
writeFileSync(join(out, 'redoc.standalone.js'),
  redoc.replaceAll('https://cdn.redoc.ly/redoc/logo-mini', '/docs/logo-mini'));

let html = readFileSync(page, 'utf8');
const fail = (what) => { console.error(`build-docs: ${what}`); process.exit(1); };
const cdn = /https:\/\/cdn\.redocly\.com\/redoc\/v[0-9.]+\/bundles\/redoc\.standalone\.js/g;

// The preload of the CDN copy goes; the page imports the local one.
html = html.replace(/<link rel="modulepreload" href="https:\/\/cdn\.redocly\.com[^>]*>/, '');

const moduleScript = /<script type="module">([\s\S]*?)<\/script>/;
const m = html.match(moduleScript);
if (!m) fail('no <script type="module"> to move out of index.html');
writeFileSync(join(out, 'docs.js'), m[1].replace(cdn, './redoc.standalone.js'));
html = html.replace(moduleScript, '<script type="module" src="docs.js"></script>');

const colorMode = /<script>(try\{var m=localStorage[\s\S]*?)<\/script>/;
const c = html.match(colorMode);
if (c) {
  writeFileSync(join(out, 'color-mode.js'), c[1]);
  html = html.replace(colorMode, '<script src="color-mode.js"></script>');
}

if (/<script>/.test(html)) fail('an inline <script> is left in index.html');
if (/https?:\/\/(?!www\.w3\.org\/)[^"'\s)]*\.(?:js|css|woff2?)\b/.test(html)) {
  fail('index.html still loads something from elsewhere');
}
writeFileSync(page, html);
console.error(`build-docs: ${page}`);
