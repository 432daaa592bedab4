/*
 * Integration: a backend spoken to in the wrong handoff mode, against a private Postfix
 * (test/helpers/postfix.ts: an XCLIENT smtpd, a PROXY smtpd with smtpd_upstream_proxy_protocol
 * = haproxy, a plain smtpd). Each way the backend probe says `BACKEND FAIL` with `reason:
 * handoff mode` (at warn, probe: true) at start, and a client that passes the greet wait gets
 * the teaser, then 421 and a close: never a cut session, never a `HANDOFF`.
 *   - PROXY v2 sent to the XCLIENT smtpd: Postfix greets, reads the v2 signature as lines
 *     ("500 5.5.2 Error: bad syntax" three times), its QUIT (221) and closes.
 *   - PROXY v1 sent to it: "500 5.5.2 Error: command not recognized", the connection stays.
 *   - XCLIENT sent to the PROXY smtpd: Postfix waits for a header and sends no greeting; after
 *     smtpd_upstream_proxy_timeout (1 s here) "421 4.3.0 ... Server local error" and a close.
 *   - XCLIENT sent to the plain smtpd (the screener not authorized): XCLIENT refused.
 * And the right modes: BACKEND OK at start, the client handed over, Postfix names the client.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { portOf, startScreener, type ScreenerEvent, type ScreenerProc } from '../helpers/screener.js';
import { connectClient } from '../helpers/smtp-client.js';

let pf: PostfixInstance;

before(async () => {
  pf = await startPostfix({ main: { smtpd_upstream_proxy_timeout: '1s' } });
});
after(async () => {
  await pf?.stop();
});

function cfg(port: number, handoff: string): Record<string, unknown> {
  return {
    hostname: 'screen.test',
    listen: ['127.0.0.1:0'],
    limits: { max_per_client: 0 },
    pregreet: { wait: '200ms' },
    backend: { address: `127.0.0.1:${port}`, handoff, connect_timeout: '2s', handshake_timeout: '5s' },
    drain_timeout: '2s',
  };
}

const probeFail = (e: ScreenerEvent): boolean => e['event'] === 'BACKEND FAIL' && e['probe'] === true;
const sessionFail = (e: ScreenerEvent): boolean => e['event'] === 'BACKEND FAIL' && e['probe'] !== true;

/** A client from `addr`: the teaser, then 421, then the close; returns what it received. */
async function refusedClient(s: ScreenerProc, addr: string): Promise<string> {
  const c = await connectClient('127.0.0.1', portOf(s), addr);
  await c.closed;
  return c.received();
}

const wrong: Array<{ label: string; port: () => number; handoff: string; probeStage: string; stage: string; detail: RegExp }> = [
  { label: 'PROXY v2 to the XCLIENT smtpd', port: () => pf.xclientPort, handoff: 'proxy-v2', probeStage: 'ehlo', stage: 'proxy',
    detail: /answered the PROXY header as SMTP commands \(500 5\.5\.2 Error: bad syntax\).*smtpd_upstream_proxy_protocol|closed after the PROXY header/ },
  { label: 'PROXY v1 to the XCLIENT smtpd', port: () => pf.xclientPort, handoff: 'proxy-v1', probeStage: 'ehlo', stage: 'proxy',
    detail: /answered the PROXY header as SMTP commands \(500 5\.5\.2 Error: command not recognized\)/ },
  { label: 'XCLIENT to the PROXY smtpd', port: () => pf.proxyPort, handoff: 'xclient', probeStage: 'greeting', stage: 'greeting',
    detail: /greets only after a PROXY header; set backend\.handoff to proxy-v1 or proxy-v2/ },
  { label: 'XCLIENT to the plain smtpd (not authorized)', port: () => pf.plainPort, handoff: 'xclient', probeStage: 'ehlo', stage: 'xclient',
    detail: /refused XCLIENT \(550 5\.7\.0 Error: insufficient authorization\).*smtpd_authorized_xclient_hosts/ },
];

for (const w of wrong) {
  test(`wrong handoff mode, ${w.label}: BACKEND FAIL reason handoff mode (probe and session), the client gets 421`, async (t) => {
    const s = await startScreener(cfg(w.port(), w.handoff));
    try {
      const p = await s.waitForEvent((e) => probeFail(e) || e['event'] === 'BACKEND OK', 20_000);
      assert.equal(p['event'], 'BACKEND FAIL', `the probe: ${JSON.stringify(p)}`);
      assert.equal(p['level'], 40, 'at warn');
      assert.equal(p['reason'], 'handoff mode');
      assert.equal(p['stage'], w.probeStage);
      assert.equal(p['backend'], `127.0.0.1:${w.port()}`);
      t.diagnostic(`probe: ${String(p['detail'])}`);

      const addr = '127.0.70.1';
      const got = await refusedClient(s, addr);
      assert.match(got, /^220-screen\.test ESMTP\r\n421 4\.3\.2 Service currently unavailable\r\n$/, 'the teaser, 421, close: nothing of the backend');
      const f = await s.waitForEvent((e) => sessionFail(e) && e['client'] === addr, 10_000);
      assert.equal(f['reason'], 'handoff mode');
      assert.equal(f['stage'], w.stage);
      assert.match(String(f['detail']), w.detail);
      await s.waitForEvent((e) => e['event'] === 'DISCONNECT' && e['client'] === addr);
      assert.deepEqual(s.eventsNamed('HANDOFF'), [], 'no HANDOFF');
      assert.deepEqual(s.eventsNamed('INTERNAL ERROR'), []);
    } finally {
      await s.stop();
    }
  });
}

const right: Array<{ label: string; port: () => number; handoff: string }> = [
  { label: 'XCLIENT to the XCLIENT smtpd', port: () => pf.xclientPort, handoff: 'xclient' },
  { label: 'PROXY v1 to the PROXY smtpd', port: () => pf.proxyPort, handoff: 'proxy-v1' },
  { label: 'PROXY v2 to the PROXY smtpd', port: () => pf.proxyPort, handoff: 'proxy-v2' },
];

for (const [i, r] of right.entries()) {
  test(`right handoff mode, ${r.label}: BACKEND OK at start, the client is handed over and Postfix names it`, async () => {
    const s = await startScreener(cfg(r.port(), r.handoff));
    try {
      const p = await s.waitForEvent((e) => probeFail(e) || e['event'] === 'BACKEND OK', 20_000);
      assert.equal(p['event'], 'BACKEND OK', `the probe: ${JSON.stringify(p)}`);
      assert.equal(p['mode'], r.handoff);
      const addr = `127.0.71.${i + 1}`;
      const since = pf.mark();
      const c = await connectClient('127.0.0.1', portOf(s), addr);
      await c.readUntil(/^220 backend\.smtpscreen\.test ESMTP/m, 10_000);
      const h = await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === addr);
      assert.equal(h['mode'], r.handoff);
      c.write('EHLO client.test\r\n');
      await c.readUntil(/^250 /m, 10_000);
      assert.doesNotMatch(c.received(), /^[45]\d\d /m, 'no error reply reached the client (the NOOP\'s 250 stays with the screener)');
      c.write('QUIT\r\n');
      await c.closed;
      await pf.waitForLog(new RegExp(`connect from unknown\\[${addr.replace(/\./g, '\\.')}\\]`), 10_000, since);
      assert.deepEqual(s.events.filter(sessionFail), []);
    } finally {
      await s.stop();
    }
  });
}
