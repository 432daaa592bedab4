/*
 * Integration: client-dependent routing with two private Postfix
 * instances, a permissive one (myhostname nice.test) and a strict one
 * (strict.test: HELO required, invalid HELO names refused), and a policy
 * service (node:http) that names a route for one client. `smtpscreen run`
 * hands each client to the backend its rule names; the client reads which
 * smtpd greeted it, and that Postfix's own log shows the client:
 *   a known client (PASS OLD) -> nice (rule verdict: old)
 *   a client that passed only because its pregreet failure is ignored -> strict
 *   a client served by the stress personality (a listener pinned to it) -> strict
 *   the policy service's route "vip" -> nice's PROXY smtpd (postfix/proxy/smtpd)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startScreener, killAllScreeners, portOf, type ScreenerProc } from '../helpers/screener.js';
import { connectClient, type RawClient } from '../helpers/smtp-client.js';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { startPolicyServer, type PolicyServer } from '../helpers/policy-server.js';

let nice: PostfixInstance;
let strict: PostfixInstance;
let ps: PolicyServer;
let s: ScreenerProc;

before(async () => {
  nice = await startPostfix({ main: { myhostname: 'nice.test' } });
  strict = await startPostfix({ main: { myhostname: 'strict.test', smtpd_helo_required: 'yes', smtpd_helo_restrictions: 'reject_invalid_helo_hostname' } });
  ps = await startPolicyServer();
  // An access-list entry tagged for the routes (route=partners): allowlisted, and routed by match.tag.
  const acl = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'route-acl-')), 'access.txt');
  fs.writeFileSync(acl, '127.0.95.5/32 permit route=partners\n');
  ps.answer = (req) => (req['client'] === '127.0.95.4' ? { action: 'route', route: 'vip' } : { action: 'dunno' });
  s = await startScreener({
    hostname: 'screen.test',
    listen: ['127.0.0.1:0', { address: '127.0.0.2:0', personality: 'stress' }],
    limits: { max_per_client: 0 },
    pregreet: { wait: '1s', action: 'ignore' },
    policy: { url: ps.url, budget: '300ms' },
    access: { list: acl },
    backend: { address: `127.0.0.1:${nice.xclientPort}`, handoff: 'xclient', connect_timeout: '2s', handshake_timeout: '5s' },
    backends: [
      { name: 'strict', address: `127.0.0.1:${strict.xclientPort}`, handoff: 'xclient', connect_timeout: '2s', handshake_timeout: '5s' },
      { name: 'vip', address: `127.0.0.1:${nice.proxyPort}`, handoff: 'proxy-v1', connect_timeout: '2s', handshake_timeout: '5s' },
    ],
    routes: [
      { match: { policy_route: 'vip' }, backend: 'vip' },
      { match: { verdict: 'old' }, backend: 'default' },
      { match: { verdict: ['ignored', 'shadow'] }, backend: 'strict' },
      { match: { stress: true }, backend: 'strict' },
      { match: { tag: 'partners' }, backend: 'strict' },
    ],
  });
});

after(async () => {
  await killAllScreeners();
  await ps?.stop();
  await nice?.stop();
  await strict?.stop();
});

const esc = (a: string): string => a.replace(/\./g, '\\.');

/** Connect from `addr` (to listener `i`), optionally talking early; resolve with the backend's 220 line. */
async function greetedBy(addr: string, i = 0, early = false): Promise<{ c: RawClient; banner: string }> {
  const c = await connectClient(i === 0 ? '127.0.0.1' : '127.0.0.2', portOf(s, i), addr);
  if (early) c.write('EHLO early.example\r\n');
  const text = await c.readUntil(/^220 .*\r\n/m, 15_000);
  const banner = /^220 (.*)\r\n/m.exec(text)?.[1] ?? '';
  return { c, banner };
}

async function quit(c: RawClient): Promise<void> {
  c.write('QUIT\r\n');
  await c.closed;
}

async function handoffOf(addr: string, from = 0): Promise<Record<string, unknown>> {
  return s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === addr, 15_000, from);
}

test('PASS OLD: a known client lands on the default (nice) backend by its rule; Postfix nice logs it, strict does not', async () => {
  const addr = '127.0.95.1';
  const first = await greetedBy(addr);
  assert.match(first.banner, /^nice\.test /, 'a clean new client: no rule, the default');
  await quit(first.c);
  const h1 = await handoffOf(addr);
  assert.deepEqual([h1['verdict'], h1['backend_name'], h1['rule']], ['new', 'default', undefined]);
  const from = s.events.length;
  const again = await greetedBy(addr);
  assert.match(again.banner, /^nice\.test /);
  await quit(again.c);
  const h2 = await handoffOf(addr, from);
  assert.deepEqual([h2['verdict'], h2['backend_name'], h2['rule'], h2['backend']], ['old', 'default', 1, `127.0.0.1:${nice.xclientPort}`]);
  await nice.waitForLog(new RegExp(`connect from unknown\\[${esc(addr)}\\][\\s\\S]*connect from unknown\\[${esc(addr)}\\]`), 10_000);
  assert.doesNotMatch(strict.maillog(), new RegExp(esc(addr)));
});

test('a client that passed only with an ignored pregreet failure lands on the strict backend', async () => {
  const addr = '127.0.95.2';
  const { c, banner } = await greetedBy(addr, 0, true);
  assert.match(banner, /^strict\.test /);
  await quit(c);
  const h = await handoffOf(addr);
  assert.deepEqual([h['verdict'], h['backend_name'], h['rule'], h['backend']], ['ignored', 'strict', 2, `127.0.0.1:${strict.xclientPort}`]);
  assert.equal(s.eventsNamed('PREGREET').filter((e) => e['client'] === addr)[0]?.['action'], 'ignore');
  await strict.waitForLog(new RegExp(`connect from unknown\\[${esc(addr)}\\]`), 10_000);
  assert.doesNotMatch(nice.maillog(), new RegExp(esc(addr)));
});

test('a client served by the stress personality lands on the strict backend', async () => {
  const addr = '127.0.95.3';
  const { c, banner } = await greetedBy(addr, 1);
  assert.match(banner, /^strict\.test /);
  await quit(c);
  const h = await handoffOf(addr);
  assert.deepEqual([h['verdict'], h['stress'], h['backend_name'], h['rule']], ['new', true, 'strict', 3]);
  await strict.waitForLog(new RegExp(`connect from unknown\\[${esc(addr)}\\]`), 10_000);
  assert.doesNotMatch(nice.maillog(), new RegExp(esc(addr)));
});

test('the policy service\'s route reply sends the client to the backend its rule names (PROXY smtpd of nice)', async () => {
  const addr = '127.0.95.4';
  const { c, banner } = await greetedBy(addr);
  assert.match(banner, /^nice\.test /);
  await quit(c);
  const h = await handoffOf(addr);
  assert.deepEqual([h['route'], h['backend_name'], h['rule'], h['backend'], h['mode']], ['vip', 'vip', 0, `127.0.0.1:${nice.proxyPort}`, 'proxy-v1']);
  await nice.waitForLog(new RegExp(`postfix/proxy/smtpd\\[\\d+\\]: connect from unknown\\[${esc(addr)}\\]`), 10_000);
  assert.doesNotMatch(strict.maillog(), new RegExp(esc(addr)));
});

test('an access-list entry tagged route=partners sends its allowlisted client to the backend of the match.tag rule', async () => {
  const addr = '127.0.95.5';
  const { c, banner } = await greetedBy(addr);
  assert.match(banner, /^strict\.test /);
  await quit(c);
  const h = await handoffOf(addr);
  assert.deepEqual([h['verdict'], h['backend_name'], h['rule']], ['allowlisted', 'strict', 4]);
  await strict.waitForLog(new RegExp(`connect from unknown\\[${esc(addr)}\\]`), 10_000);
  assert.doesNotMatch(nice.maillog(), new RegExp(esc(addr)));
});
