/*
 * test/server/admin.test.ts - the admin listener's decisions and a real one in-process.
 * - peerAllowed(): loopback only by default; allow_remote or a specific non-loopback bind opens it.
 * - tokenMatches(): a table and a property (the header is client input).
 * - A screener in-process with admin.listen: 401 without or with a wrong token,
 *   405, 404; a listener whose peer check calls loopback remote answers 403.
 * - Metrics labels: shadow results are their own outcomes (would_reject, would_defer),
 *   odd actions and reasons map to bounded values; reload applies a new token.
 * - The Emitter's observer: no observer, nothing built; with one, it sees the
 *   fields of events whose level is off, and the session.
 * - admin.* validation and admin.token_file; /healthz 503 after a blocked loop; an admin
 *   address in use fails the start with EADDRINUSE naming admin.listen.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import fc from 'fast-check';
import { parseConfigText } from '../../src/config/load.js';
import { startScreener } from '../../src/server/screener.js';
import { healthz, isLoopback, peerAllowed, readAdminToken, readyz, startAdmin, tokenMatches } from '../../src/server/admin.js';
import { Metrics, outcomeOf, reasonLabel } from '../../src/server/metrics.js';
import type { ServerCtx } from '../../src/server/stress.js';
import { Emitter, type EmitObserver } from '../../src/log/emit.js';
import { ScreenError } from '../../src/util/errors.js';
import { checkFiles } from '../../src/server/preflight.js';
import { parseExposition } from '../helpers/exposition.js';

const quiet = pino({ level: 'silent' });

test('peerAllowed: loopback always; others only with allow_remote or a specific non-loopback bind', () => {
  const rows: Array<[peer: string | undefined, bind: string, allowRemote: boolean, want: boolean]> = [
    /* loopback peers */ ['127.0.0.1', '127.0.0.1', false, true], ['127.9.8.7', '0.0.0.0', false, true], ['::1', '::', false, true],
    ['::ffff:127.0.0.1', '::', false, true],
    /* remote peers, wildcard bind */ ['192.0.2.10', '0.0.0.0', false, false], ['2001:db8::1', '::', false, false], ['::ffff:192.0.2.1', '::', false, false],
    /* remote peers, loopback bind (a proxy in front) */ ['192.0.2.10', '127.0.0.1', false, false],
    /* allow_remote */ ['192.0.2.10', '0.0.0.0', true, true],
    /* a specific non-loopback bind asks for remote peers */ ['192.0.2.10', '192.0.2.1', false, true], ['2001:db8::1', '2001:db8::5', false, true],
    /* unknown peer */ [undefined, '0.0.0.0', true, false], ['', '127.0.0.1', false, false],
  ];
  for (const [peer, bind, allow, want] of rows) assert.equal(peerAllowed(peer, bind, allow), want, `${peer} on ${bind} allow_remote=${allow}`);
  assert.equal(isLoopback('128.0.0.1'), false);
  assert.equal(isLoopback('::2'), false);
});

test('tokenMatches: Bearer and the exact token; none configured: always', () => {
  const rows: Array<[header: string | undefined, token: string | null, want: boolean]> = [
    ['Bearer abc', 'abc', true], ['bearer abc', 'abc', true], ['Bearer  abc ', 'abc', true],
    ['Bearer abd', 'abc', false], ['Bearer abcd', 'abc', false], ['Bearer ab', 'abc', false], ['Basic abc', 'abc', false],
    ['abc', 'abc', false], ['Bearer', 'abc', false], ['', 'abc', false], [undefined, 'abc', false], ['Bearer a b', 'a', false],
    [undefined, null, true], ['Bearer whatever', null, true],
  ];
  for (const [h, t, want] of rows) assert.equal(tokenMatches(h, t), want, `${JSON.stringify(h)} vs ${t}`);
});

test('tokenMatches property: only "Bearer <token>" matches a token, whatever the header', () => {
  const tok = fc.stringMatching(/^[\x21-\x7e]{1,40}$/);
  fc.assert(fc.property(tok, (t) => tokenMatches(`Bearer ${t}`, t)));
  fc.assert(fc.property(fc.string({ maxLength: 80 }), tok, (h, t) => {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h);
    return tokenMatches(h, t) === (m !== null && m[1] === t);
  }));
});

test('readyz: listening and not draining, backend up, a DNSBL site not suspended when there are sites', () => {
  const ctx = (draining: boolean, suspended: boolean[] | null) => ({
    draining, gen: { backend: { name: 'b:25' }, dnsbl: suspended === null ? null : { domains: suspended.map((x, i) => ({ domain: `s${i}.test`, suspended: x })) } },
  }) as unknown as ServerCtx;
  const down = { stage: 'connect', reason: 'ECONNREFUSED' };
  const rows: Array<[draining: boolean, listening: string[], down: typeof down | null, sites: boolean[] | null, want: string]> = [
    [false, ['127.0.0.1:25'], null, null, 'ok'],
    [false, ['127.0.0.1:25'], null, [true, false], 'ok'],
    [false, ['127.0.0.1:25'], null, [true, true], 'fail'],
    [false, ['127.0.0.1:25'], null, [], 'ok'],
    [true, ['127.0.0.1:25'], null, null, 'fail'],
    [false, [], null, null, 'fail'],
    [false, ['127.0.0.1:25'], down, null, 'fail'],
  ];
  for (const [draining, listening, d, sites, want] of rows) {
    assert.equal(readyz(ctx(draining, sites), listening, d).status, want, JSON.stringify({ draining, listening, d, sites }));
  }
  const r = readyz(ctx(false, [true, false]), ['x'], down) as unknown as { checks: { backend: { reason: string }; dnsbl: { healthy: string[] } } };
  assert.equal(r.checks.backend.reason, 'ECONNREFUSED');
  assert.deepEqual(r.checks.dnsbl.healthy, ['s1.test']);
});

test('healthz: fails when the loop delay passes the bound', () => {
  assert.equal(healthz(5, 1000).status, 'ok');
  assert.equal(healthz(1000, 1000).status, 'ok');
  assert.equal(healthz(1001, 1000).status, 'fail');
});

function conf(extra: string): ReturnType<typeof parseConfigText> {
  return parseConfigText(['hostname: screen.test', 'listen: ["127.0.0.1:0"]', 'backend: { address: "sink:0" }', extra].join('\n'), 'test.yaml');
}

test('admin listener in-process: 401 without or with a wrong token, 200 with it, 405, 404; a remote-looking peer 403; reload applies a new token', async () => {
  // max_loop_delay 1h: /healthz here is about the token, not a start-up slowed by a loaded machine.
  const s = await startScreener(conf('admin: { listen: ["127.0.0.1:0"], token: t0ken, max_loop_delay: 1h }'), { logger: quiet });
  const extra = await startAdmin({
    ctx: s.ctx as ServerCtx, listen: [{ host: '127.0.0.1', port: 0 }], listening: () => s.addresses,
    resolver: () => null, backendDown: () => null, logDropped: () => null, processMetrics: false,
    isLocal: () => false, // every peer looks remote, as a non-loopback one would
  });
  try {
    const admin = s.admin;
    assert.ok(admin !== null);
    const url = (p: string, a = admin.addresses[0]) => `http://${a}${p}`;
    const bearer = (t: string) => ({ headers: { Authorization: `Bearer ${t}` } });
    assert.equal((await fetch(url('/metrics'))).status, 401);
    const wrong = await fetch(url('/metrics'), bearer('t0ke'));
    assert.equal(wrong.status, 401);
    assert.match(wrong.headers.get('www-authenticate') ?? '', /^Bearer/);
    const ok = await fetch(url('/metrics'), bearer('t0ken'));
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.ok(parseExposition(await ok.text()).some((x) => x.name === 'smtpscreen_events_total' && x.labels['event'] === 'STARTED' && x.value === 1));
    assert.equal((await fetch(url('/metrics'), { method: 'POST', ...bearer('t0ken') })).status, 405);
    assert.equal((await fetch(url('/nope'), bearer('t0ken'))).status, 404);
    assert.equal((await fetch(url('/readyz'), bearer('t0ken'))).status, 200);

    // The same screener, a listener whose peers all look remote: refused before the token is read.
    const remote = await fetch(url('/metrics', extra.addresses[0]), bearer('t0ken'));
    assert.equal(remote.status, 403);
    assert.match(await remote.text(), /loopback/);

    // A reload with another token: the old one is refused from then on.
    const r = await s.reload(() => conf('admin: { listen: ["127.0.0.1:0"], token: n3w, max_loop_delay: 1h }'));
    assert.equal(r.ok, true);
    assert.equal((await fetch(url('/healthz'), bearer('t0ken'))).status, 401);
    assert.equal((await fetch(url('/healthz'), bearer('n3w'))).status, 200);
    // allow_remote through a reload opens the remote-looking listener.
    await s.reload(() => conf('admin: { listen: ["127.0.0.1:0"], token: n3w, allow_remote: true, max_loop_delay: 1h }'));
    assert.equal((await fetch(url('/healthz', extra.addresses[0]), bearer('n3w'))).status, 200);
  } finally {
    await extra.close();
    await s.close(0);
  }
  assert.equal(s.ctx.emitter.observer, null, 'closing the admin listener detaches its metrics');
});

test('metrics labels: shadow outcomes are their own values; odd actions, reasons and phases stay bounded', async () => {
  const s = await startScreener(conf(''), { logger: quiet });
  try {
    const m = new Metrics({ ctx: s.ctx as ServerCtx, resolver: () => null, backendDown: () => null, logDropped: () => null, processMetrics: false });
    m.event('DNSBL', { action: 'shadow', would: 'reject', client: '192.0.2.1' }, undefined);
    m.event('DNSBL', { action: 'enforce', client: '192.0.2.2' }, undefined);
    m.event('PREGREET', { action: 'shadow', would: 'drop' }, undefined);
    m.event('DNSBL', { action: 'drop', would: 'drop' }, undefined); // shadow mode: the action as configured, what it would have done
    m.event('GREYLIST', { action: 'shadow', state: 'defer', network: '192.0.2.0/24' }, undefined);
    m.event('PREGREET', { action: 'evil"label\n', would: '192.0.2.9' }, undefined);
    m.event('HANGUP', { phase: '192.0.2.1' }, undefined);
    m.event('BACKEND FAIL', { backend: 'b:25', stage: 'rcpt', reason: '554 5.7.1 <x@192.0.2.1>: Relay access denied' }, undefined);
    m.event('BACKEND FAIL', { backend: 'b:25', stage: 'data?', reason: 'client 192.0.2.1 said hello' }, undefined);
    const x = parseExposition(await m.text());
    const tests = x.filter((v) => v.name === 'smtpscreen_test_results_total' && v.value > 0)
      .map((v) => `${v.labels['test']}/${v.labels['action']}/${v.labels['outcome']}`).sort();
    assert.deepEqual(tests, ['dnsbl/drop/would_drop', 'dnsbl/enforce/reject', 'dnsbl/shadow/would_reject', 'greylist/shadow/would_defer', 'pregreet/other/would_other', 'pregreet/shadow/would_drop']);
    assert.equal(x.find((v) => v.name === 'smtpscreen_hangups_total' && v.labels['phase'] === 'other')?.value, 1);
    const fails = x.filter((v) => v.name === 'smtpscreen_backend_failures_total').map((v) => `${v.labels['stage']}/${v.labels['reason']}`).sort();
    assert.deepEqual(fails, ['other/other', 'rcpt/reply_5xx']);
    for (const v of x) for (const l of Object.values(v.labels)) assert.doesNotMatch(l, /192\.0\.2/, `${v.name} carries an address`);
  } finally {
    await s.close(0);
  }
  assert.equal(outcomeOf('shadow', 'defer'), 'would_defer');
  assert.equal(outcomeOf('shadow', 'x'), 'would_other');
  assert.equal(reasonLabel('ECONNREFUSED'), 'ECONNREFUSED');
  assert.equal(reasonLabel('malformed reply: no code'), 'malformed reply');
  assert.equal(reasonLabel('421 4.3.2 busy'), 'reply_4xx');
});

test('Emitter observer: none, no record for a level that is off; one, sees fields and subject at any level', () => {
  const em = new Emitter(pino({ level: 'warn' }, { write: () => undefined }));
  assert.equal(em.enabled('CONNECT'), false);
  const seen: Array<[string, unknown, unknown]> = [];
  const obs: EmitObserver = { wants: (n) => n !== 'DISCONNECT', event: (n, f, s) => void seen.push([n, f, s]), dnsblLookup: () => undefined };
  em.observer = obs;
  assert.equal(em.enabled('CONNECT'), true, 'callers build the record the observer reads');
  assert.equal(em.enabled('DISCONNECT'), false, 'not for an event it does not read');
  const subject = { started: 1 };
  em.emit('CONNECT', { client: '192.0.2.1' }, undefined, subject);
  em.emit('PASS OLD');
  assert.deepEqual(seen, [['CONNECT', { client: '192.0.2.1' }, subject], ['PASS OLD', {}, undefined]]);
  assert.equal(em.counts['CONNECT'], 1);
  em.observer = null;
  assert.equal(em.enabled('CONNECT'), false);
});

test('admin config: token and token_file exclusive, a token is one printable word; token_file read, or an error naming it', () => {
  const code = (f: () => unknown): { key: unknown } => {
    try {
      f();
    } catch (err) {
      assert.ok(err instanceof ScreenError);
      return { key: err.details['key'] };
    }
    assert.fail('no error');
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtpscreen-admin-'));
  try {
    const file = path.join(dir, 'token');
    fs.writeFileSync(file, 's3cret\nignored\n');
    assert.deepEqual(code(() => conf(`admin: { token: a, token_file: ${file} }`)), { key: 'admin.token_file' });
    assert.deepEqual(code(() => conf('admin: { token: "a b" }')), { key: 'admin.token' });
    assert.deepEqual(code(() => conf('admin: { listen: ["nohost"] }')), { key: 'admin.listen[0]' });
    assert.equal(readAdminToken(conf(`admin: { token_file: ${file} }`)), 's3cret');
    assert.deepEqual(code(() => readAdminToken(conf(`admin: { token_file: ${path.join(dir, 'missing')} }`))), { key: 'admin.token_file' });
    assert.equal(readAdminToken(conf('')), null);
    // check-config and run's preflight name it too.
    const issues = checkFiles(conf(`admin: { token_file: ${path.join(dir, 'missing')} }`));
    assert.deepEqual(issues.map((i) => i.key), ['admin.token_file']);
    assert.match(issues[0]?.message ?? '', /^admin\.token_file: cannot read .*missing \(ENOENT\)/);
    fs.writeFileSync(path.join(dir, 'empty'), '\n');
    assert.deepEqual(checkFiles(conf(`admin: { token_file: ${path.join(dir, 'empty')} }`)).map((i) => i.key), ['admin.token_file']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('/healthz answers 503 after the event loop was blocked longer than admin.max_loop_delay', async () => {
  const s = await startScreener(conf('admin: { listen: ["127.0.0.1:0"], max_loop_delay: 50ms }'), { logger: quiet });
  try {
    const url = `http://${s.admin?.addresses[0]}/healthz`;
    // The monitor's first tick only sets its start: block after it has ticked.
    await new Promise((r) => setTimeout(r, 300));
    const end = Date.now() + 400;
    while (Date.now() < end); // block the loop 400 ms: 8x the bound
    await new Promise((r) => setTimeout(r, 250)); // a sample of the monitor lands after it
    const res = await fetch(url);
    const body = (await res.json()) as { status: string; event_loop_delay_ms: number };
    assert.equal(res.status, 503);
    assert.equal(body.status, 'fail');
    assert.ok(body.event_loop_delay_ms >= 300, `delay ${body.event_loop_delay_ms}`);
  } finally {
    await s.close(0);
  }
});

test('an admin address already in use fails the start, naming admin.listen and the code', async () => {
  const net = await import('node:net');
  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
  const port = (busy.address() as { port: number }).port;
  try {
    await assert.rejects(
      startScreener(conf(`admin: { listen: ["127.0.0.1:${port}"] }`), { logger: quiet }),
      (err: NodeJS.ErrnoException) => err.code === 'EADDRINUSE' && err.message.startsWith(`admin.listen 127.0.0.1:${port}:`),
    );
  } finally {
    busy.close();
  }
});

test('STARTED warns when admin.allow_remote is on without a token, and not with one', async () => {
  for (const [extra, warned] of [
    ['admin: { listen: ["127.0.0.1:0"], allow_remote: true }', true],
    ['admin: { listen: ["127.0.0.1:0"], allow_remote: true, token: t0ken }', false],
    ['admin: { listen: ["127.0.0.1:0"] }', false],
  ] as const) {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    const s = await startScreener(conf(extra), { logger: log });
    try {
      const st = lines.find((l) => l['event'] === 'STARTED');
      assert.ok(st !== undefined, 'STARTED logged');
      const w = String(st['warning'] ?? '');
      assert.equal(w.includes('admin.allow_remote'), warned, `${extra}: ${w}`);
      if (warned) assert.equal(st['level'], 40, `${extra}: at warn`); // (the descriptor warning may make it warn anyway)
    } finally {
      await s.close(0);
    }
  }
});

test('metrics: the shared store\'s outcomes and its up state are exported when there is one, absent without', async () => {
  const s = await startScreener(conf(''), { logger: quiet });
  try {
    const ctx = s.ctx as ServerCtx;
    const none = parseExposition(await new Metrics({ ctx, resolver: () => null, backendDown: () => null, logDropped: () => null, processMetrics: false }).text());
    assert.equal(none.filter((v) => v.name.startsWith('smtpscreen_store_')).length, 0, 'memory store: no store series');
    // A store with a shared tier (as cache.store: redis gives), whose counts move between scrapes.
    const counts: Record<string, number> = { lookups: 5, hits: 3, misses: 2, errors: 0, timeouts: 1, observes: 0, writes: 4, flushed: 0, dropped: 0 };
    const shared = { up: false, timeoutMs: 100, counts, lookup() {}, keep() {}, observeShared() {}, close: async () => {} };
    const fake = { ...ctx, store: { size: 0, shared } } as unknown as ServerCtx; // what the metrics read of a store
    const m = new Metrics({ ctx: fake, resolver: () => null, backendDown: () => null, logDropped: () => null, processMetrics: false });
    const at = async (outcome: string): Promise<number | undefined> => parseExposition(await m.text())
      .find((v) => v.name === 'smtpscreen_store_operations_total' && v.labels['outcome'] === outcome)?.value;
    assert.equal(await at('lookups'), 5);
    assert.equal(await at('timeouts'), 1);
    assert.equal(await at('dropped'), 0, 'a zero series from the start');
    counts['lookups'] = 9;
    assert.equal(await at('lookups'), 9, 'the counter follows the tier');
    assert.equal(await at('lookups'), 9, 'and does not count twice');
    const up = async (): Promise<number | undefined> => parseExposition(await m.text()).find((v) => v.name === 'smtpscreen_store_up')?.value;
    assert.equal(await up(), 0);
    shared.up = true;
    assert.equal(await up(), 1);
  } finally {
    await s.close(0);
  }
});
