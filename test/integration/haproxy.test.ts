/*
 * Integration: a real haproxy (Debian's package) in front of three screeners, run from the
 * repository's contrib/haproxy/haproxy.cfg (its bind and server lines moved to loopback ports,
 * test/helpers/haproxy.ts), each screener taking PROXY v2 from it and handing over to a private
 * Postfix with PROXY v2. Checked: the contrib file passes `haproxy -c`; the /readyz health check
 * marks the two screeners whose Postfix answers UP and the one whose backend is down DOWN, and
 * is never seen as an SMTP client; a client from 127.0.0.x through haproxy is 127.0.0.x (and its
 * source port) to the screener and in Postfix's log; a pregreeting client through haproxy gets
 * the teaser and is caught.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { repoRoot, startScreener, type ScreenerProc, portOf } from '../helpers/screener.js';
import { connectClient } from '../helpers/smtp-client.js';
import { runSwaks } from '../helpers/swaks.js';
import { freePort, freePorts } from '../helpers/ports.js';
import {
  checkHaproxyConfig, haproxyDir, haproxyPath, renderHaproxyConfig, startHaproxy, type HaproxyProc, type ServerStat,
} from '../helpers/haproxy.js';

const CONTRIB = path.join(repoRoot(), 'contrib', 'haproxy', 'haproxy.cfg');
const BACKEND = 'smtpscreen';
const TOKEN = randomBytes(12).toString('hex');

let pf: PostfixInstance;
let hap: HaproxyProc;
let frontPort: number;
let hapDir: string | undefined;
const screeners: Record<string, ScreenerProc> = {};

function screenerCfg(backendPort: number): Record<string, unknown> {
  return {
    hostname: 'screen.test',
    listen: [{ address: '127.0.0.1:0', proxy_protocol: 'v2', trusted_proxies: ['127.0.0.1/32'] }],
    backend: { address: `127.0.0.1:${backendPort}`, handoff: 'proxy-v2', connect_timeout: '2s', handshake_timeout: '5s' },
    pregreet: { wait: '1s', action: 'enforce' },
    limits: { max_per_client: 0 },
    admin: { listen: ['127.0.0.1:0'], token: TOKEN },
    drain_timeout: '5s',
  };
}

function adminPort(s: ScreenerProc): number {
  const started = s.eventsNamed('STARTED')[0] ?? {};
  const a = (started['admin'] as string[] | undefined)?.[0];
  assert.ok(a !== undefined, `no admin address in STARTED: ${JSON.stringify(started)}`);
  return Number(a.split(':').pop());
}

async function waitForStates(want: Record<string, string>, timeoutMs: number): Promise<Map<string, ServerStat>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await hap.stat(BACKEND);
    if (Object.entries(want).every(([k, v]) => st.get(k)?.status === v)) return st;
    if (Date.now() > deadline) {
      throw new Error(`haproxy server states ${JSON.stringify([...st])}, wanted ${JSON.stringify(want)}\n${hap.output().slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

const re = (addr: string) => addr.replace(/\./g, '\\.');

before(async () => {
  haproxyPath(); // fails naming the package when missing
  pf = await startPostfix();
  const [deadPort] = await freePorts(1); // nothing listens there: that screener's /readyz is 503
  screeners['mx1'] = await startScreener(screenerCfg(pf.proxyPort));
  screeners['mx2'] = await startScreener(screenerCfg(pf.proxyPort));
  screeners['mx3'] = await startScreener(screenerCfg(deadPort as number));
  frontPort = await freePort();
  const dir = haproxyDir();
  hapDir = dir;
  const text = renderHaproxyConfig(fs.readFileSync(CONTRIB, 'utf8'), {
    bindPort: frontPort,
    token: TOKEN,
    statsSocket: path.join(dir, 'admin.sock'),
    servers: Object.entries(screeners).map(([name, s]) => ({ name, port: portOf(s), checkPort: adminPort(s) })),
  });
  hap = await startHaproxy(text, path.join(dir, 'admin.sock'), dir);
});

after(async () => {
  await hap?.stop();
  if (hapDir !== undefined) fs.rmSync(hapDir, { recursive: true, force: true });
  for (const s of Object.values(screeners)) await s.stop();
  await pf?.stop();
});

describe('haproxy (contrib/haproxy/haproxy.cfg) → screener (PROXY v2) → Postfix', () => {
  test('the contrib file passes haproxy -c as shipped', async () => {
    const r = await checkHaproxyConfig(CONTRIB);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /Configuration file is valid/);
  });

  test('health check on /readyz: screeners with a live Postfix UP, the one without DOWN (503); no check is an SMTP client', async () => {
    const st = await waitForStates({ mx1: 'UP', mx2: 'UP', mx3: 'DOWN' }, 30_000);
    assert.equal(st.get('mx3')?.checkStatus, 'L7STS', 'mx3 is down by its HTTP status');
    assert.equal(st.get('mx3')?.checkCode, '503');
    assert.equal(st.get('mx1')?.checkStatus, 'L7OK');
    assert.equal(st.get('mx1')?.checkCode, '200');
    // Several check rounds (inter 2s) have run by now: none reached an SMTP listener.
    for (const [name, s] of Object.entries(screeners)) {
      assert.equal(s.eventsNamed('CONNECT').length, 0, `${name} saw a CONNECT from a health check`);
      assert.equal(s.eventsNamed('PROXY FAIL').length, 0, `${name}: PROXY FAIL`);
    }
  });

  test('clients from 127.0.0.x through haproxy: the screener sees each one (address and port), Postfix logs it', async () => {
    await waitForStates({ mx1: 'UP', mx2: 'UP', mx3: 'DOWN' }, 30_000);
    const addrs = ['127.0.0.41', '127.0.0.42', '127.0.0.43', '127.0.0.44'];
    for (const addr of addrs) {
      const r = await runSwaks({ server: `127.0.0.1:${frontPort}`, localAddress: addr, to: 'h@example.test', from: 's@example.test', timeoutS: 20 });
      assert.equal(r.code, 0, r.transcript);
      assert.match(r.transcript, /<-\s+220-screen\.test ESMTP/, 'the teaser came through haproxy');
      assert.match(r.transcript, /<-\s+220 .*Postfix/);
      await pf.waitForLog(new RegExp(`client=unknown\\[${re(addr)}\\]`));
    }
    const seen = new Set<string>();
    for (const addr of addrs) {
      const hits = Object.entries(screeners).filter(([, s]) => s.eventsNamed('CONNECT').some((e) => e['client'] === addr));
      assert.equal(hits.length, 1, `${addr} reached ${hits.length} screeners`);
      const [name, s] = hits[0] as [string, ScreenerProc];
      assert.notEqual(name, 'mx3', 'a client was sent to the screener marked DOWN');
      seen.add(name);
      const c = s.eventsNamed('CONNECT').find((e) => e['client'] === addr) ?? {};
      // `local` is the screener's own listener (the header's destination, haproxy's front, is not used).
      assert.equal(c['local_port'], portOf(s));
      const h = await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === addr);
      assert.equal(h['mode'], 'proxy-v2');
    }
    // leastconn with sequential sessions still spreads them: both live screeners took clients.
    assert.deepEqual([...seen].sort(), ['mx1', 'mx2']);
    assert.equal(screeners['mx3']?.eventsNamed('CONNECT').length, 0);
    // The source port survives too: one raw client, its own port in CONNECT.
    const c = await connectClient('127.0.0.1', frontPort, '127.0.0.45');
    await c.readUntil(/^220 .*Postfix/m, 10_000);
    c.write('QUIT\r\n');
    await c.closed;
    const conns = Object.values(screeners).flatMap((s) => s.eventsNamed('CONNECT')).filter((e) => e['client'] === '127.0.0.45');
    assert.equal(conns.length, 1);
    assert.equal(conns[0]?.['port'], c.localPort);
    await pf.waitForLog(/connect from unknown\[127\.0\.0\.45\]/);
  });

  test('a pregreeting client through haproxy gets the teaser and is caught; Postfix never sees it', async () => {
    const addr = '127.0.0.46';
    const mark = pf.mark();
    const c = await connectClient('127.0.0.1', frontPort, addr);
    await c.readUntil(/^220-screen\.test ESMTP\r\n/, 5000);
    c.write('EHLO early.bird\r\n');
    await c.readUntil(/^250 [^\r\n]*\r\n/m, 5000);
    c.write('MAIL FROM:<spam@bot.test>\r\n');
    await c.readUntil(/^250 /m, 5000);
    c.write('RCPT TO:<victim@example.test>\r\n');
    assert.match(await c.readUntil(/^5\d\d .*\r\n/m, 5000), /^550 5\.5\.1 Protocol error\r\n/m);
    c.write('QUIT\r\n');
    await c.closed;
    const live = [screeners['mx1'], screeners['mx2']] as ScreenerProc[];
    const p = await Promise.any(live.map((s) => s.waitForEvent((e) => e['event'] === 'PREGREET' && e['client'] === addr, 5000)));
    assert.equal(p['sample'], 'EHLO early.bird\\r\\n');
    const caught = Object.values(screeners).flatMap((s) => s.eventsNamed('PREGREET')).filter((e) => e['client'] === addr);
    assert.equal(caught.length, 1, 'PREGREET logged once, for the real client address');
    assert.doesNotMatch(pf.maillog().slice(mark), new RegExp(re(addr)));
  });
});
