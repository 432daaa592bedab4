/*
 * Integration: `smtpscreen probe` against a running screener (a child process)
 * whose listener takes PROXY headers from loopback, with a real rbldnsd for
 * the DNSBL, an access list, greylisting and the built-in sink as backend.
 * Probing as an allowlisted, a denylisted, a DNSBL-listed, a greylisted and a
 * pregreeting address gives the expected transcript, and the screener's own
 * log agrees (the client it saw is the probed address).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startScreener, killAllScreeners, repoRoot, type ScreenerProc } from '../helpers/screener.js';
import { fixtureZones, startRbldnsd, type Rbldnsd } from '../helpers/rbldnsd.js';
import { probe, formatProbe, type ProbeOptions } from '../../src/probe.js';

let dns: Rbldnsd;
let s: ScreenerProc;
let port = 0;
before(async () => {
  dns = await startRbldnsd(fixtureZones());
  const dir = mkdtempSync(join(tmpdir(), 'probe-'));
  const acl = join(dir, 'access');
  writeFileSync(acl, '203.0.113.7 permit\n203.0.113.66 reject\n');
  s = await startScreener({
    hostname: 'screen.test',
    listen: [{ address: '127.0.0.1:0', proxy_protocol: 'any', trusted_proxies: ['127.0.0.0/8'] }],
    limits: { max_per_client: 0 },
    backend: { address: 'sink:0' },
    access: { list: acl, action: 'enforce' },
    pregreet: { wait: '300ms', action: 'enforce' },
    dnsbl: { sites: ['bl.test'], threshold: 1, action: 'enforce', health: { enable: false } },
    resolver: { servers: [dns.address] },
    greylist: { enable: true, min_delay: '1m' },
  });
  port = Number(s.listen[0]?.split(':').pop());
});
after(async () => {
  await killAllScreeners();
  await dns?.stop();
});

const opts = (as: string, o: Partial<ProbeOptions> = {}): ProbeOptions => ({
  as, host: '127.0.0.1', port, proxy: 'v1', helo: 'probe.test', mail: 'p@probe.test', rcpt: 'postmaster@screen.test',
  pregreet: false, pipeline: false, deliver: false, timeoutMs: 5000, ...o,
});

const sent = (r: Awaited<ReturnType<typeof probe>>): string[] => r.steps.filter((x) => x.dir === '>').map((x) => x.text);
const got = (r: Awaited<ReturnType<typeof probe>>): string[] => r.steps.filter((x) => x.dir === '<').map((x) => x.text);

test('allowlisted: handed to the backend at once, no teaser, RCPT accepted by the backend, stopped before DATA', async () => {
  const r = await probe(opts('203.0.113.7'));
  assert.equal(r.outcome, 'accepted', formatProbe(r).join('\n'));
  assert.match(got(r)[0] ?? '', /^220 sink\.invalid/);
  assert.match(r.backend ?? '', /^220 sink\.invalid/);
  assert.match(sent(r)[0] ?? '', new RegExp(`^PROXY TCP4 203\\.0\\.113\\.7 127\\.0\\.0\\.1 \\d+ ${port}$`));
  assert.deepEqual(sent(r).slice(1), [
    'EHLO probe.test', 'MAIL FROM:<p@probe.test>', 'RCPT TO:<postmaster@screen.test>', 'QUIT']);
  const ev = await s.waitForEvent((e) => e['event'] === 'ALLOWLISTED' && e['client'] === '203.0.113.7');
  assert.equal(ev['entry'], '203.0.113.7');
});

test('denylisted: the teaser, the dummy engine\'s 220, RCPT rejected with postscreen\'s 550 5.3.2', async () => {
  const r = await probe(opts('203.0.113.66'));
  assert.equal(r.outcome, 'rejected', formatProbe(r).join('\n'));
  assert.deepEqual(got(r).slice(0, 2), ['220-screen.test ESMTP', '220 screen.test ESMTP']);
  assert.equal(r.backend, null);
  assert.equal(r.rcpt, '550 5.3.2 Service currently unavailable', 'postscreen\'s denylist reply');
  assert.match(r.verdict, /held by the screener/);
  await s.waitForEvent((e) => e['event'] === 'DENYLISTED' && e['client'] === '203.0.113.66');
});

test('DNSBL-listed (rbldnsd): RCPT rejected naming the list', async () => {
  const r = await probe(opts('127.0.31.5'));
  assert.equal(r.outcome, 'rejected', formatProbe(r).join('\n'));
  assert.match(r.rcpt ?? '', /^550 5\.7\.1 .*blocked using bl\.test/);
  const ev = await s.waitForEvent((e) => e['event'] === 'DNSBL' && e['client'] === '127.0.31.5');
  assert.equal(ev['score'], 1);
});

test('greylisted: a clean new address is deferred with 450 at RCPT; the CLI prints the same', async () => {
  const r = await probe(opts('198.51.100.9'));
  assert.equal(r.outcome, 'deferred', formatProbe(r).join('\n'));
  assert.match(r.rcpt ?? '', /^450 4\.3\.2 /);
  await s.waitForEvent((e) => e['event'] === 'GREYLIST' && e['client'] === '198.51.100.9');
  const cli = spawnSync(process.execPath, [join(repoRoot(), 'dist', 'src', 'cli.js'), 'probe', '--as', '198.51.100.10', '--to', `127.0.0.1:${port}`, '--proxy', 'v2'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /<< 450 4\.3\.2 /);
  assert.match(cli.stdout, /^outcome: deferred$/m);
  assert.match(cli.stdout, /PROXY v2 header: 198\.51\.100\.10/);
});

test('--pregreet: the early EHLO is answered without a banner, PREGREET logged, RCPT rejected; --pipeline sends MAIL and RCPT at once', async () => {
  const r = await probe(opts('198.51.100.20', { pregreet: true, pipeline: true }));
  assert.equal(r.outcome, 'rejected', formatProbe(r).join('\n'));
  assert.equal(sent(r)[1], 'EHLO probe.test');
  assert.ok(!got(r).includes('220 screen.test ESMTP'), 'no banner for a pregreeter');
  assert.equal(sent(r).filter((l) => l.startsWith('MAIL') || l.startsWith('RCPT')).length, 2);
  await s.waitForEvent((e) => e['event'] === 'PREGREET' && e['client'] === '198.51.100.20');
});

test('usage: probe without --as or --to, or a bad address, is an error naming it', () => {
  const cli = (args: string[]) => spawnSync(process.execPath, [join(repoRoot(), 'dist', 'src', 'cli.js'), 'probe', ...args], { encoding: 'utf8', timeout: 30_000 });
  const a = cli(['--to', '127.0.0.1:1']);
  assert.equal(a.status, 1);
  assert.match(a.stderr, /--as ADDRESS and --to/);
  const b = cli(['--as', 'nonsense', '--to', '127.0.0.1:1']);
  assert.equal(b.status, 1);
  assert.match(b.stderr, /--as nonsense/);
});
