/*
 * Client-dependent routing: the routes: table against a client's
 * facts, the choice when the routed backend is down, the validation of
 * backends: and routes:, and the session's handoff to the routed backend
 * (fake sockets: the address it connects to, HANDOFF and ROUTE FALLBACK).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/validate.js';
import { configToRaw } from '../../src/config/raw.js';
import { ScreenError } from '../../src/util/errors.js';
import { compileRoutes, matchRoute, type RouteFacts } from '../../src/handoff/route.js';
import { parseAccessList } from '../../src/checks/access.js';
import { chooseBackend, makeBackend, makeRouting, type Backend } from '../../src/handoff/backend.js';
import { harness } from '../helpers/fake-session.js';
import { withPasses } from '../../src/cache/store.js';
import { TestIndex } from '../../src/checks/tests.js';

const ROUTES = validateConfig({
  backend: { address: '127.0.0.1:10025' },
  backends: [{ name: 'strict', address: '127.0.0.1:10026' }, { name: 'nice', address: '127.0.0.1:10027' }, { name: 'vip', address: '127.0.0.1:10028' }],
  routes: [
    { match: { policy_route: 'vip' }, backend: 'vip' },
    { match: { verdict: 'old' }, backend: 'nice' },
    { match: { verdict: ['ignored', 'shadow'] }, backend: 'strict' },
    { match: { stress: true }, backend: 'strict' },
    { match: { score_min: 1, score_max: 3 }, backend: 'strict' },
    { match: { verdict: 'allowlisted', score_max: 0 }, backend: 'nice' },
  ],
}).routes;

const facts = (o: Partial<RouteFacts>): RouteFacts => ({ verdict: 'new', score: null, stress: false, policyRoute: null, tag: null, ...o });

test('routes: the first rule whose every condition holds, -1 when none does', () => {
  const rules = compileRoutes(ROUTES, (n) => n);
  const table: Array<{ label: string; f: RouteFacts; want: number }> = [
    { label: 'policy route vip beats the verdict', f: facts({ verdict: 'old', policyRoute: 'vip' }), want: 0 },
    { label: 'another policy route: not rule 0', f: facts({ verdict: 'old', policyRoute: 'bulk' }), want: 1 },
    { label: 'PASS OLD', f: facts({ verdict: 'old' }), want: 1 },
    { label: 'ignored failure', f: facts({ verdict: 'ignored' }), want: 2 },
    { label: 'shadowed failure', f: facts({ verdict: 'shadow' }), want: 2 },
    { label: 'new under stress', f: facts({ stress: true }), want: 3 },
    { label: 'new, score 1 (band low end)', f: facts({ score: 1 }), want: 4 },
    { label: 'new, score 3 (band high end)', f: facts({ score: 3 }), want: 4 },
    { label: 'new, score 4: above the band', f: facts({ score: 4 }), want: -1 },
    { label: 'new, no score: no band matches', f: facts({}), want: -1 },
    { label: 'DNSBL-allowlisted (score -5) is allowlisted', f: facts({ verdict: 'dnsbl-allowlisted', score: -5 }), want: 5 },
    { label: 'policy-allowlisted without score: score_max needs one', f: facts({ verdict: 'policy-allowlisted' }), want: -1 },
    { label: 'untested is new', f: facts({ verdict: 'untested', score: 2 }), want: 4 },
    { label: 'an unknown verdict matches no verdict rule', f: facts({ verdict: 'weird' }), want: -1 },
  ];
  for (const t of table) assert.equal(matchRoute(rules, t.f), t.want, t.label);
  assert.equal(matchRoute(compileRoutes(validateConfig({ routes: [{ match: {}, backend: 'default' }] }).routes, (n) => n), facts({ verdict: 'old' })), 0, 'an empty match matches everyone');
});

test('chooseBackend: the rule\'s backend; down: the default (fallback named) or none (tempfail)', () => {
  const def = makeBackend('127.0.0.1', 10025, 'none', 1000, 1000, null);
  let down = false;
  const health = { handoffMode: false, suspect: () => {}, get down() { return down ? { stage: 'connect', reason: 'ECONNREFUSED' } : null; } };
  const strict: Backend = makeBackend('127.0.0.1', 10026, 'none', 1000, 1000, null, health, 'strict');
  const routes = validateConfig({ backends: [{ name: 'strict', address: '127.0.0.1:10026' }], routes: [{ match: { verdict: 'ignored' }, backend: 'strict' }] }).routes;
  const r = makeRouting(def, [strict], routes, 'default');
  assert.deepEqual(chooseBackend(r, facts({ verdict: 'ignored' })), { backend: strict, rule: 0, fallback: null });
  assert.deepEqual(chooseBackend(r, facts({ verdict: 'old' })), { backend: def, rule: -1, fallback: null });
  down = true;
  assert.deepEqual(chooseBackend(r, facts({ verdict: 'ignored' })), { backend: def, rule: 0, fallback: strict });
  const t = makeRouting(def, [strict], routes, 'tempfail');
  assert.deepEqual(chooseBackend(t, facts({ verdict: 'ignored' })), { backend: null, rule: 0, fallback: strict });
  assert.equal(r.byName.get('default'), def);
});

function configError(raw: unknown): ScreenError {
  try {
    validateConfig(raw);
  } catch (err) {
    assert.ok(err instanceof ScreenError);
    assert.equal(err.code, 'SCR_ERR_CONFIG');
    return err;
  }
  assert.fail('no error');
}

test('backends: and routes: validation names the key of each mistake', () => {
  const b = [{ name: 'strict', address: '127.0.0.1:10026' }];
  const table: Array<{ label: string; raw: unknown; key: string }> = [
    { label: 'unknown backend', raw: { backends: b, routes: [{ match: { verdict: 'new' }, backend: 'strcit' }] }, key: 'routes[0].backend' },
    { label: 'duplicate names', raw: { backends: [...b, { name: 'strict', address: '127.0.0.1:10027' }] }, key: 'backends[1].name' },
    { label: 'the name default', raw: { backends: [{ name: 'default', address: '127.0.0.1:10027' }] }, key: 'backends[0].name' },
    { label: 'missing address', raw: { backends: [{ name: 'x' }] }, key: 'backends[0].address' },
    { label: 'bad address', raw: { backends: [{ name: 'x', address: 'localhost' }] }, key: 'backends[0].address' },
    { label: 'bad handoff', raw: { backends: [{ name: 'x', address: '127.0.0.1:1', handoff: 'lmtp' }] }, key: 'backends[0].handoff' },
    { label: 'unknown backend field', raw: { backends: [{ name: 'x', address: '127.0.0.1:1', adress: 'y' }] }, key: 'backends[0].adress' },
    { label: 'bad verdict', raw: { routes: [{ match: { verdict: ['old', 'pass'] }, backend: 'default' }] }, key: 'routes[0].match.verdict' },
    { label: 'unknown condition', raw: { routes: [{ match: { score: 3 }, backend: 'default' }] }, key: 'routes[0].match.score' },
    { label: 'score band upside down', raw: { routes: [{ match: { score_min: 5, score_max: 2 }, backend: 'default' }] }, key: 'routes[0].match.score_min' },
    { label: 'stress not a bool', raw: { routes: [{ match: { stress: 'yes' }, backend: 'default' }] }, key: 'routes[0].match.stress' },
    { label: 'route without backend', raw: { routes: [{ match: { verdict: 'old' } }] }, key: 'routes[0].backend' },
    { label: 'routes not a list', raw: { routes: { old: 'nice' } }, key: 'routes' },
    { label: 'bad routes_fallback', raw: { routes_fallback: 'drop' }, key: 'routes_fallback' },
  ];
  for (const t of table) {
    const e = configError(t.raw);
    assert.equal(e.details['key'], t.key, `${t.label}: ${e.message}`);
    assert.ok(e.message.includes(t.key), `${t.label}: the message names the key: ${e.message}`);
  }
});

test('backends: and routes: survive configToRaw -> validateConfig unchanged, with defaults filled', () => {
  const c = validateConfig({
    backends: [{ name: 'strict', address: '[::1]:10026', handoff: 'proxy-v2', connect_timeout: '3s' }],
    routes: [{ match: { verdict: 'ignored', stress: false }, backend: 'strict' }, { match: null, backend: 'default' }],
    routes_fallback: 'tempfail',
  });
  assert.deepEqual(c.backends, [{ name: 'strict', address: { host: '::1', port: 10026 }, handoff: 'proxy-v2', connect_timeout: 3000, handshake_timeout: 30_000 }]);
  assert.deepEqual(c.routes[0]?.match, { verdict: ['ignored'], score_min: null, score_max: null, stress: false, policy_route: null, tag: null });
  assert.deepEqual(validateConfig(configToRaw(c)), c);
});

const routed = {
  pregreet: { wait: '2s', action: 'ignore' },
  backend: { handoff: 'none', address: '127.0.0.1:10025' },
  backends: [{ name: 'strict', address: '127.0.0.1:10026', handoff: 'none' }, { name: 'nice', address: '127.0.0.1:10027', handoff: 'none' }],
  routes: [{ match: { verdict: 'old' }, backend: 'nice' }, { match: { verdict: 'ignored' }, backend: 'strict' }],
};

test('session: PASS OLD goes to the nice backend, an ignored pregreet to the strict one, a clean new client to the default', () => {
  const h = harness(routed);
  h.store.set('192.0.2.16', withPasses(null, [[TestIndex.pregreet, h.clock.now() + 60_000]]));
  h.connect('192.0.2.16');
  const early = h.connect('192.0.2.17');
  early.sock.feed('EHLO early.test\r\n');
  h.connect('192.0.2.18');
  h.clock.advance(2000);
  assert.deepEqual(h.targets, ['127.0.0.1:10027', '127.0.0.1:10026', '127.0.0.1:2525']); // the harness's default backend is 127.0.0.1:2525
  for (const b of h.backends) { b.emit('connect'); b.feed('220 backend.test ESMTP\r\n'); }
  const handoffs = h.named('HANDOFF').map((e) => [e['client'], e['verdict'], e['backend'], e['backend_name'], e['rule']]);
  assert.deepEqual(handoffs, [
    ['192.0.2.16', 'old', '127.0.0.1:10027', 'nice', 0],
    ['192.0.2.17', 'ignored', '127.0.0.1:10026', 'strict', 1],
    ['192.0.2.18', 'new', '127.0.0.1:2525', 'default', undefined],
  ]);
});

test('session: a routed backend that is down: the default and ROUTE FALLBACK, or 421 with routes_fallback tempfail', () => {
  const h = harness(routed, null, { down: ['nice'] });
  h.store.set('192.0.2.16', withPasses(null, [[TestIndex.pregreet, h.clock.now() + 60_000]]));
  h.connect('192.0.2.16');
  assert.deepEqual(h.targets, ['127.0.0.1:2525']); // the harness's default backend is 127.0.0.1:2525
  assert.deepEqual(h.named('ROUTE FALLBACK').map((e) => [e['rule'], e['backend_name'], e['backend'], e['to']]), [[0, 'nice', '127.0.0.1:10027', 'default']]);

  const t = harness({ ...routed, routes_fallback: 'tempfail' }, null, { down: ['nice'] });
  t.store.set('192.0.2.16', withPasses(null, [[TestIndex.pregreet, t.clock.now() + 60_000]]));
  const { sock } = t.connect('192.0.2.16');
  assert.deepEqual(t.targets, [], 'no backend connection');
  assert.match(sock.text(), /^421 /m);
  assert.deepEqual(t.named('ROUTE FALLBACK').map((e) => e['to']), ['tempfail']);
});

test('generation: each named backend gets its own probe; a reload keeps the unchanged ones\' and replaces the changed one\'s', async () => {
  const { makeGeneration, stopNamed } = await import('../../src/server/generation.js');
  const { Emitter } = await import('../../src/log/emit.js');
  const { default: pino } = await import('pino');
  const { Writable } = await import('node:stream');
  const { freePorts } = await import('../helpers/ports.js');
  const events: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info', base: null, timestamp: false }, new Writable({ write(c, _e, cb) { events.push(JSON.parse(String(c)) as Record<string, unknown>); cb(); } }));
  const emitter = new Emitter(log);
  // Nobody listens on these ports (taken free, not bound): every probe finds its backend down.
  const [p0, p1, p2, p3] = (await freePorts(4)) as [number, number, number, number];
  const raw = (b2: number): Record<string, unknown> => ({
    hostname: 'screen.test', backend: { address: `127.0.0.1:${p0}`, connect_timeout: '1s', handshake_timeout: '1s' },
    backends: [{ name: 'a', address: `127.0.0.1:${p1}`, connect_timeout: '1s' }, { name: 'b', address: `127.0.0.1:${b2}`, connect_timeout: '1s' }],
    routes: [{ match: { verdict: 'ignored' }, backend: 'b' }],
  });
  const c1 = validateConfig(raw(p2));
  const m1 = await makeGeneration(c1, emitter);
  const m2 = await makeGeneration(validateConfig(raw(p3)), emitter, { config: c1, made: m1 });
  try {
    assert.deepEqual(m1.named.map((p) => p.name), ['a', 'b']);
    assert.equal(m2.named[0], m1.named[0], 'a did not change: its probe is kept');
    assert.notEqual(m2.named[1], m1.named[1], 'b moved: a new probe');
    assert.equal(m2.gen.routing.byName.get('b')?.name, `127.0.0.1:${p3}`);
    assert.equal(m2.gen.routing.rules[0]?.target, m2.gen.routing.byName.get('b'));
    // Each probe reports its own backend down (BACKEND FAIL with probe: true, at warn).
    const deadline = Date.now() + 10_000;
    const want = [p0, p1, p2, p3].map((p) => `127.0.0.1:${p}`);
    while (Date.now() < deadline && !want.every((w) => events.some((e) => e['event'] === 'BACKEND FAIL' && e['backend'] === w))) await new Promise((r) => setTimeout(r, 50));
    for (const w of want) assert.ok(events.some((e) => e['event'] === 'BACKEND FAIL' && e['backend'] === w && e['probe'] === true), `probe of ${w}`);
    assert.ok(m2.named[1]?.health.down !== null, 'b\'s probe knows it is down');
  } finally {
    stopNamed(m1, m2);
    stopNamed(m2, null);
    m1.health.stop();
    if (m2.health !== m1.health) m2.health.stop();
    m1.ehlo?.stop();
  }
});

test('routes: match.tag is the access-list entry\'s route=NAME (access.spf entries: spf); the list parses and refuses tags', () => {
  const rules = compileRoutes(validateConfig({ routes: [
    { match: { tag: 'vip' }, backend: 'default' },
    { match: { tag: 'spf', verdict: 'allowlisted' }, backend: 'default' },
  ] }).routes, (n) => n);
  assert.equal(matchRoute(rules, facts({ tag: 'vip' })), 0, 'tagged vip');
  assert.equal(matchRoute(rules, facts({ tag: 'spf', verdict: 'allowlisted' })), 1, 'an SPF-allowlisted client');
  assert.equal(matchRoute(rules, facts({ tag: 'spf', verdict: 'old' })), -1, 'tag spf but not allowlisted');
  assert.equal(matchRoute(rules, facts({})), -1, 'untagged: no tag rule');
  const list = parseAccessList('192.0.2.0/24 permit route=vip\n198.51.100.0/24 reject\n2001:db8::/32 PERMIT route=big.senders-1\n');
  assert.equal(list.match('192.0.2.9')?.route, 'vip');
  assert.equal(list.match('198.51.100.1')?.route, null, 'no tag: null');
  assert.equal(list.match('2001:db8::1')?.route, 'big.senders-1');
  for (const bad of ['192.0.2.0/24 permit vip', '192.0.2.0/24 permit route=', '192.0.2.0/24 permit route=a/b', '192.0.2.0/24 permit route=x extra']) {
    assert.throws(() => parseAccessList(bad, 'acl'), (e: unknown) => e instanceof ScreenError && e.code === 'SCR_ERR_ACCESS_LIST', bad);
  }
});
