/*
 * Integration: shadow mode, the same traffic in enforce and in shadow
 * through a real screener in front of the private Postfix (XCLIENT), with
 * DNSBL answers from rbldnsd. Seven clients, each one kind:
 *   allowlisted (access permit), denylisted (access reject, enforce),
 *   pregreet (talks before the greeting, enforce), DNSBL-listed (score 3 at
 *   threshold 3, enforce), greylisted (score 1: greylist.policy suspicious),
 *   pipelining (deep test, enforce; deep.after_pass handoff), clean.
 * Each speaks EHLO, MAIL, RCPT and, when its RCPT is accepted, sends a message.
 * - Enforce: the denylisted, pregreeting, listed and pipelining clients get
 *   550 at RCPT, the greylisted one 450; only the allowlisted and clean ones
 *   reach Postfix.
 * - Shadow (mode: shadow): the same events are logged with action: shadow and
 *   would: reject / defer, one each; the would-have counts equal the real
 *   counts of the enforce run, event by event; every client's message is in
 *   Postfix's log (client=unknown[addr], status=sent), and no client got a
 *   refusal from the screener.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { startRbldnsd, type Rbldnsd } from '../helpers/rbldnsd.js';
import { withScreener, portOf, type ScreenerProc } from '../helpers/screener.js';
import { connectClient, lastLine, reply, type RawClient } from '../helpers/smtp-client.js';

const C = {
  allowlisted: '127.0.72.1', denylisted: '127.0.72.2', pregreet: '127.0.72.3', listed: '127.0.72.4',
  greylisted: '127.0.72.5', pipelining: '127.0.72.6', clean: '127.0.72.7',
} as const;
type Kind = keyof typeof C;

let pf: PostfixInstance;
let dns: Rbldnsd;
let dir: string;
before(async () => {
  [pf, dns] = await Promise.all([startPostfix(), startRbldnsd([
    { name: 'bl.test', type: 'ip4set', file: `:127.0.0.2:Listed\n127.0.0.2\n${C.listed}\n` },
    { name: 'grey.test', type: 'ip4set', file: `:127.0.0.2:Suspicious\n127.0.0.2\n${C.greylisted}\n` },
  ])]);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtpscreen-shadow-'));
  fs.writeFileSync(path.join(dir, 'access'), `${C.allowlisted}/32 permit\n${C.denylisted}/32 reject\n`);
});
after(async () => {
  await Promise.all([pf?.stop(), dns?.stop()]);
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
});

function cfg(mode: 'enforce' | 'shadow'): Record<string, unknown> {
  return {
    mode, hostname: 'screen.test', listen: ['127.0.0.1:0'], limits: { max_per_client: 0 },
    backend: { address: `127.0.0.1:${pf.xclientPort}`, handoff: 'xclient', connect_timeout: '2s', handshake_timeout: '5s' },
    access: { list: path.join(dir, 'access'), action: 'enforce' },
    pregreet: { wait: '1s', action: 'enforce' },
    dnsbl: { sites: ['bl.test*3', 'grey.test*1'], threshold: 3, action: 'enforce', health: { enable: false } },
    resolver: { servers: [dns.address] },
    greylist: { enable: true, policy: 'suspicious', suspicious_score: 1 },
    deep: { pipelining: { enable: true, action: 'enforce' }, after_pass: 'handoff' },
    drain_timeout: '2s',
  };
}

/** One client's session: the RCPT reply line it got, and whether its message was accepted. */
async function session(s: ScreenerProc, kind: Kind): Promise<{ rcpt: string; queued: boolean }> {
  const addr = C[kind];
  const c: RawClient = await connectClient('127.0.0.1', portOf(s), addr);
  const to = `${kind}@example.test`;
  if (kind === 'pregreet') {
    c.write('EHLO early.test\r\n'); // before the greeting: its reply ends the greeting it gets
    await c.readUntil(/^250 [^\r\n]*\r\n/m, 8000);
  } else {
    await c.readUntil(/^220 [^\r\n]*\r\n/m, 8000);
    await reply(c, 'EHLO client.test\r\n');
  }
  let rcpt: string;
  if (kind === 'pipelining') {
    c.write(`MAIL FROM:<s@example.test>\r\nRCPT TO:<${to}>\r\n`); // both at once, PIPELINING never offered
    await reply(c, '');
    rcpt = lastLine(await reply(c, ''));
  } else {
    await reply(c, 'MAIL FROM:<s@example.test>\r\n');
    rcpt = lastLine(await reply(c, `RCPT TO:<${to}>\r\n`));
  }
  let queued = false;
  if (rcpt.startsWith('250')) {
    assert.match(lastLine(await reply(c, 'DATA\r\n')), /^354/);
    queued = /^250 2\.0\.0 Ok: queued/.test(lastLine(await reply(c, `Subject: ${kind}\r\n\r\nhello\r\n.\r\n`)));
  }
  c.write('QUIT\r\n');
  await c.closed;
  return { rcpt, queued };
}

/** Events of the run that say a test refused (real) or would have (shadow): "EVENT outcome" -> count. */
function outcomes(s: ScreenerProc, shadow: boolean): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of s.events) {
    const name = String(e['event']);
    let what: string | null = null;
    if (shadow) what = typeof e['would'] === 'string' ? String(e['would']) : null;
    else if (name === 'GREYLIST' && e['state'] === 'defer') what = 'defer';
    else if (e['action'] === 'enforce') what = 'reject';
    else if (e['action'] === 'drop') what = 'drop';
    if (what !== null && e['client'] !== undefined) out[`${name} ${what}`] = (out[`${name} ${what}`] ?? 0) + 1;
  }
  return out;
}

async function runAll(mode: 'enforce' | 'shadow'): Promise<{ results: Record<string, { rcpt: string; queued: boolean }>; counts: Record<string, number>; since: number; events: ScreenerProc['events'] }> {
  const since = pf.mark();
  let results: Record<string, { rcpt: string; queued: boolean }> = {};
  let counts: Record<string, number> = {};
  let events: ScreenerProc['events'] = [];
  await withScreener(cfg(mode), async (s) => {
    await s.waitForEvent((e) => e['event'] === 'BACKEND EHLO');
    const kinds = Object.keys(C) as Kind[];
    const done = await Promise.all(kinds.map((k) => session(s, k)));
    results = Object.fromEntries(kinds.map((k, i) => [k, done[i] as { rcpt: string; queued: boolean }]));
    for (const k of kinds) await s.waitForEvent((e) => e['event'] === 'DISCONNECT' && e['client'] === C[k], 10_000);
    counts = outcomes(s, mode === 'shadow');
    events = s.events;
  });
  return { results, counts, since, events };
}

test('shadow mode: the same traffic as enforce; would-have counts equal the real ones, and every client reaches Postfix', { timeout: 120_000 }, async () => {
  const enforce = await runAll('enforce');
  const r = enforce.results;
  for (const k of ['denylisted', 'pregreet', 'listed', 'pipelining'] as const) assert.match(r[k]?.rcpt ?? '', /^550 /, `enforce: ${k}`);
  assert.match(r.greylisted?.rcpt ?? '', /^450 /, 'enforce: greylisted');
  assert.equal(r.allowlisted?.queued, true);
  assert.equal(r.clean?.queued, true);
  assert.deepEqual(enforce.counts, {
    'DENYLISTED reject': 1, 'PREGREET reject': 1, 'DNSBL reject': 1, 'GREYLIST defer': 1, 'COMMAND PIPELINING reject': 1,
  }, 'enforce: one refusal per failing client');
  const enforceLog = pf.maillog().slice(enforce.since);
  for (const k of ['denylisted', 'pregreet', 'listed', 'pipelining', 'greylisted'] as const) {
    assert.ok(!enforceLog.includes(`[${C[k]}]`), `enforce: ${k} never reached Postfix`);
  }

  const shadow = await runAll('shadow');
  assert.deepEqual(shadow.counts, enforce.counts, 'shadow: the would-have counts are the real counts of enforce');
  for (const e of shadow.events) if (typeof e['would'] === 'string') assert.equal(e['action'], 'shadow', JSON.stringify(e));
  assert.equal(shadow.events.filter((e) => e['event'] === 'NOQUEUE').length, 0, 'shadow: no recipient was refused by the screener');
  for (const [k, v] of Object.entries(shadow.results)) {
    assert.match(v.rcpt, /^250 /, `shadow: ${k}'s RCPT is Postfix's`);
    assert.equal(v.queued, true, `shadow: ${k}'s message was queued`);
  }
  const handoffs = shadow.events.filter((e) => e['event'] === 'HANDOFF');
  const verdicts = Object.fromEntries(handoffs.map((e) => [String(e['client']), e['verdict']]));
  for (const k of ['denylisted', 'pregreet', 'listed', 'pipelining', 'greylisted'] as const) assert.equal(verdicts[C[k]], 'shadow', k);
  assert.equal(verdicts[C.clean], 'new');
  assert.equal(verdicts[C.allowlisted], 'allowlisted');
  for (const k of Object.keys(C) as Kind[]) {
    await pf.waitForLog(new RegExp(`client=unknown\\[${C[k].replace(/\./g, '\\.')}\\]`), 10_000, shadow.since);
    await pf.waitForLog(new RegExp(`to=<${k}@example\\.test>.*status=sent`), 10_000, shadow.since);
  }
});
