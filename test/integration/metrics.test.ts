/*
 * Integration: the admin listener's /metrics, /healthz and /readyz on a real
 * screener (the CLI) in front of the private Postfix, with DNSBL answers from
 * rbldnsd. Known traffic (allowlisted, new then old, DNSBL-listed,
 * greylisted, pregreet, a hang-up; then a second screener whose backend is
 * down) and an exact comparison of the scraped counters and gauges. The text
 * is parsed by promtool (Debian package `prometheus`), and no client address
 * may appear in any label.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { startScreener, type ScreenerProc } from '../helpers/screener.js';
import { runSwaks } from '../helpers/swaks.js';
import { connectClient } from '../helpers/smtp-client.js';
import { fixtureZones, startRbldnsd, type Rbldnsd } from '../helpers/rbldnsd.js';
import { freePort } from '../helpers/ports.js';
import { parseExposition, type Sample } from '../helpers/exposition.js';

const TOKEN = 'metrics-test-token';
let pf: PostfixInstance;
let dns: Rbldnsd;
let dir: string;

function promtool(): string {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined) throw new Error('promtool not found: install the Debian package `prometheus` (scripts/setup-test-deps.sh)');
  return 'promtool';
}

before(async () => {
  promtool();
  [pf, dns] = await Promise.all([startPostfix(), startRbldnsd(fixtureZones())]);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtpscreen-metrics-'));
  fs.writeFileSync(path.join(dir, 'access'), '127.0.50.0/24 permit\n');
});
after(async () => {
  await Promise.all([pf?.stop(), dns?.stop()]);
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
});

function adminOf(s: ScreenerProc): string {
  const started = s.eventsNamed('STARTED')[0];
  const a = (started?.['admin'] as string[] | undefined)?.[0];
  assert.ok(a !== undefined, 'STARTED names the admin listener');
  return a;
}

async function get(s: ScreenerProc, p: string, token: string | null = TOKEN): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://${adminOf(s)}${p}`, { headers: token === null ? {} : { Authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.text() };
}

function portOf(s: ScreenerProc): number {
  return Number(s.listen[0]?.split(':').pop());
}

async function swaks(s: ScreenerProc, addr: string, to: string): Promise<number | null> {
  const r = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: addr, to, from: 'm@example.test', helo: 'metrics.test', timeoutS: 15 });
  return r.code;
}

/** value of the one sample named `name` whose labels include `labels`; 0 when absent. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const hits = samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  assert.ok(hits.length <= 1, `${name} ${JSON.stringify(labels)} matches ${hits.length} series`);
  return hits[0]?.value ?? 0;
}

function sum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((a, x) => a + x.value, 0);
}

function checkWithPromtool(text: string): void {
  const ours = text.split('\n').filter((l) => /^(# (HELP|TYPE) )?smtpscreen_/.test(l)).join('\n') + '\n';
  const a = spawnSync(promtool(), ['check', 'metrics'], { input: ours, encoding: 'utf8' });
  assert.equal(a.status, 0, `promtool on smtpscreen_*: ${a.stdout}${a.stderr}`);
  // The whole page, process metrics included, parses and lints clean too.
  const b = spawnSync(promtool(), ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(b.status, 0, `promtool on the page: ${b.stdout}${b.stderr}`);
}

const CLIENTS = ['127.0.50.1', '127.0.40.1', '127.0.30.200', '127.0.33.5', '127.0.60.1', '127.0.61.1', '127.0.40.2'];

function noClientInLabels(samples: Sample[], backend: string): void {
  for (const x of samples) {
    for (const [k, v] of Object.entries(x.labels)) {
      if (k === 'backend') {
        assert.equal(v, backend, `${x.name} backend label`);
        continue;
      }
      for (const c of CLIENTS) assert.ok(!v.includes(c), `${x.name}{${k}="${v}"} carries a client address`);
      assert.ok(!/\b127\.\d+\.\d+\.\d+/.test(v), `${x.name}{${k}="${v}"} carries an address`);
    }
  }
}

test('metrics: known traffic gives exact counters and gauges; promtool parses the page; no client in a label', async () => {
  const s = await startScreener({
    hostname: 'screen.test', listen: ['127.0.0.1:0'], limits: { max_per_client: 0 },
    backend: { address: `127.0.0.1:${pf.xclientPort}`, handoff: 'xclient' },
    access: { list: path.join(dir, 'access') },
    pregreet: { wait: '400ms' },
    dnsbl: { sites: ['bl.test=127.0.0.[2..11]*3', 'bl2.test*2'], threshold: 3 },
    greylist: { enable: true, policy: 'suspicious', suspicious_score: 2, min_delay: '1m', max_delay: '1h' },
    resolver: { servers: [dns.address], timeout: '300ms' },
    admin: { listen: ['127.0.0.1:0'], token: TOKEN, max_loop_delay: '10s' }, // generous: a loaded machine
  });
  try {
    await s.waitForEvent((e) => e['event'] === 'BACKEND OK');
    // Wrong and missing tokens first: 401, and they count nothing.
    assert.equal((await get(s, '/metrics', null)).status, 401);
    assert.equal((await get(s, '/metrics', 'wrong')).status, 401);
    const before = parseExposition((await get(s, '/metrics')).body);
    assert.equal(value(before, 'smtpscreen_events_total', { event: 'CONNECT' }), 0);

    assert.equal(await swaks(s, '127.0.50.1', 'allow@example.test'), 0); // allowlisted
    assert.equal(await swaks(s, '127.0.40.1', 'new@example.test'), 0); // PASS NEW
    assert.equal(await swaks(s, '127.0.40.1', 'old@example.test'), 0); // PASS OLD
    assert.notEqual(await swaks(s, '127.0.30.200', 'listed@example.test'), 0); // DNSBL bl.test, 550 at RCPT
    assert.notEqual(await swaks(s, '127.0.33.5', 'grey@example.test'), 0); // bl2.test only: greylisted, 450
    // A pregreet: EHLO before the greeting is complete, then QUIT to the dummy engine.
    const pg = await connectClient('127.0.0.1', portOf(s), '127.0.60.1');
    await pg.readUntil(/^220-/m);
    pg.write('EHLO early.test\r\n');
    await pg.readUntil(/^250 /m);
    pg.write('QUIT\r\n');
    await pg.readUntil(/^221 /m);
    pg.destroy();
    // A hang-up during the greet wait.
    const hu = await connectClient('127.0.0.1', portOf(s), '127.0.61.1');
    await hu.readUntil(/^220-/m);
    hu.destroy();
    await s.waitForEvent((e) => e['event'] === 'HANGUP' && e['client'] === '127.0.61.1');
    const deadline = Date.now() + 10_000;
    while (s.eventsNamed('DISCONNECT').length < 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300)); // the hang-up's DNS answers

    const page = await get(s, '/metrics');
    assert.equal(page.status, 200);
    checkWithPromtool(page.body);
    const m = parseExposition(page.body);
    const backend = `127.0.0.1:${pf.xclientPort}`;
    noClientInLabels(m, backend);

    // Every event counter equals the number of lines of that event in the log.
    const names = new Set(m.filter((x) => x.name === 'smtpscreen_events_total').map((x) => x.labels['event'] as string));
    assert.ok(names.has('GREYLIST') && names.has('BACKEND FAIL'), 'every event of the table has a series');
    for (const ev of names) assert.equal(value(m, 'smtpscreen_events_total', { event: ev }), s.eventsNamed(ev).length, ev);
    const counted = {
      CONNECT: 7, ALLOWLISTED: 1, 'PASS NEW': 1, 'PASS OLD': 1, DNSBL: 1, GREYLIST: 1, PREGREET: 1, HANGUP: 1,
      NOQUEUE: 2, HANDOFF: 3, DISCONNECT: 7, 'BACKEND FAIL': 0,
    };
    for (const [ev, n] of Object.entries(counted)) assert.equal(value(m, 'smtpscreen_events_total', { event: ev }), n, ev);

    const tests = m.filter((x) => x.name === 'smtpscreen_test_results_total' && x.value > 0)
      .map((x) => `${x.labels['test']}/${x.labels['action']}/${x.labels['outcome']}=${x.value}`).sort();
    assert.deepEqual(tests, ['access/permit/pass=1', 'dnsbl/enforce/reject=1', 'greylist/enforce/defer=1', 'pregreet/enforce/reject=1']);
    assert.equal(value(m, 'smtpscreen_hangups_total', { phase: 'pregreet' }), 1);
    assert.equal(sum(m, 'smtpscreen_hangups_total'), 1);

    // DNSBL: every client not allowlisted and not PASS OLD asked both sites (5 clients); one listed by each.
    const lookups = m.filter((x) => x.name === 'smtpscreen_dnsbl_lookups_total' && x.value > 0)
      .map((x) => `${x.labels['site']}/${x.labels['outcome']}=${x.value}`).sort();
    assert.deepEqual(lookups, ['bl.test/clean=4', 'bl.test/listed=1', 'bl2.test/clean=4', 'bl2.test/listed=1']);
    assert.equal(value(m, 'smtpscreen_dnsbl_lookup_seconds_count', { site: 'bl.test' }), 5);
    assert.equal(value(m, 'smtpscreen_dnsbl_lookup_seconds_bucket', { site: 'bl2.test', le: '+Inf' }), 5);
    assert.equal(value(m, 'smtpscreen_dnsbl_site_suspended', { site: 'bl.test' }), 0);
    assert.equal(value(m, 'smtpscreen_dnsbl_site_suspended', { site: 'bl2.test' }), 0);

    for (const verdict of ['allowlisted', 'new', 'old']) {
      assert.equal(value(m, 'smtpscreen_backend_handoffs_total', { backend, verdict }), 1, verdict);
      assert.equal(value(m, 'smtpscreen_connect_to_handoff_seconds_count', { verdict }), 1, verdict);
    }
    assert.equal(value(m, 'smtpscreen_backend_handshake_seconds_count', { backend }), 3);
    assert.equal(sum(m, 'smtpscreen_backend_failures_total'), 0);
    assert.equal(value(m, 'smtpscreen_backend_up', { backend }), 1);
    const verdicts = Object.fromEntries(m.filter((x) => x.name === 'smtpscreen_connect_to_verdict_seconds_count')
      .map((x) => [x.labels['verdict'], x.value]));
    assert.deepEqual(verdicts, { allowlisted: 1, new: 1, old: 1, fail: 2, greylist: 1 });
    // A PASS NEW waits out the greet wait: its connect-to-handoff time is at least pregreet.wait.
    assert.ok(value(m, 'smtpscreen_connect_to_handoff_seconds_bucket', { verdict: 'new', le: '0.25' }) === 0);
    assert.equal(value(m, 'smtpscreen_connect_to_handoff_seconds_bucket', { verdict: 'new', le: '+Inf' }), 1);

    // Gauges once every client has gone.
    assert.equal(sum(m, 'smtpscreen_connections'), 0);
    assert.equal(m.filter((x) => x.name === 'smtpscreen_connections').length, 10, '5 phases x 2 personalities');
    assert.equal(value(m, 'smtpscreen_connections_proxy_pending'), 0);
    assert.equal(value(m, 'smtpscreen_stress_active'), 0);
    assert.equal(value(m, 'smtpscreen_fds_held'), 0);
    assert.equal(value(m, 'smtpscreen_fds_limit'), s.eventsNamed('STARTED')[0]?.['fd_limit']);
    assert.equal(value(m, 'smtpscreen_resolver_in_flight'), 0);
    // Ten names asked (5 clients x 2 sites), each answer cached once, and the health probes' four
    // (127.0.0.2 and 127.0.0.1 under each site: they bypass the cache when they ask, not when they store).
    assert.equal(value(m, 'smtpscreen_resolver_cache_entries'), 14);
    // Records: 127.0.40.1's passes, 127.0.33.5's passes (greylisted after passing the others) and its
    // network's greylist entry; none for the allowlisted client, and an enforced failure stores nothing new.
    assert.equal(value(m, 'smtpscreen_cache_entries'), 3);
    assert.equal(value(m, 'smtpscreen_log_dropped_total'), 0);
    assert.ok(value(m, 'process_cpu_seconds_total') > 0, 'default process metrics');
    assert.equal(m.filter((x) => x.name === 'process_open_fds' || x.name.startsWith('nodejs_active_')).length, 0, 'none that walk every socket');

    const ready = await get(s, '/readyz');
    assert.equal(ready.status, 200, ready.body);
    const r = JSON.parse(ready.body) as { status: string; checks: { dnsbl: { healthy: string[] } } };
    assert.equal(r.status, 'ok');
    assert.deepEqual(r.checks.dnsbl.healthy, ['bl.test', 'bl2.test']);
    const health = await get(s, '/healthz');
    assert.equal(health.status, 200, health.body);
    assert.equal((JSON.parse(health.body) as { status: string }).status, 'ok');
  } finally {
    await s.stop();
  }
});

test('metrics: backend down: probe and handoff failures by stage and reason, backend_up 0, readyz 503', async () => {
  const dead = await freePort();
  const s = await startScreener({
    hostname: 'screen.test', listen: ['127.0.0.1:0'], limits: { max_per_client: 0 },
    backend: { address: `127.0.0.1:${dead}`, handoff: 'xclient', connect_timeout: '2s' },
    pregreet: { wait: '200ms' },
    admin: { listen: ['127.0.0.1:0'], token: TOKEN, max_loop_delay: '10s' }, // generous: a loaded machine
  });
  try {
    await s.waitForEvent((e) => e['event'] === 'BACKEND FAIL' && e['probe'] === true);
    const c = await connectClient('127.0.0.1', portOf(s), '127.0.40.2');
    await c.readUntil(/^421 /m);
    c.destroy();
    await s.waitForEvent((e) => e['event'] === 'DISCONNECT');
    const m = parseExposition((await get(s, '/metrics')).body);
    const backend = `127.0.0.1:${dead}`;
    noClientInLabels(m, backend);
    const fails = m.filter((x) => x.name === 'smtpscreen_backend_failures_total' && x.value > 0)
      .map((x) => `${x.labels['stage']}/${x.labels['reason']}/${x.labels['probe']}=${x.value}`).sort();
    assert.deepEqual(fails, ['connect/ECONNREFUSED/false=1', 'connect/ECONNREFUSED/true=1']);
    assert.equal(value(m, 'smtpscreen_backend_up', { backend }), 0);
    assert.equal(value(m, 'smtpscreen_events_total', { event: 'PASS NEW' }), 1);
    assert.equal(sum(m, 'smtpscreen_backend_handoffs_total'), 0);
    assert.equal(sum(m, 'smtpscreen_connect_to_handoff_seconds_count'), 0);
    const ready = await get(s, '/readyz');
    assert.equal(ready.status, 503);
    const r = JSON.parse(ready.body) as { status: string; checks: { backend: { ok: boolean; reason: string }; listening: { ok: boolean } } };
    assert.equal(r.status, 'fail');
    assert.equal(r.checks.backend.ok, false);
    assert.equal(r.checks.backend.reason, 'ECONNREFUSED');
    assert.equal(r.checks.listening.ok, true);
    assert.equal((await get(s, '/healthz')).status, 200, 'the process itself is healthy');
  } finally {
    await s.stop();
  }
});
