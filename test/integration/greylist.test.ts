/*
 * Integration: lightweight greylisting in front of the private Postfix, with
 * swaks as the client. Short delays: min_delay 1.5 s, max_delay 1 min.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { startScreener, type ScreenerProc } from '../helpers/screener.js';
import { runSwaks } from '../helpers/swaks.js';
import { fixtureZones, startRbldnsd, type Rbldnsd } from '../helpers/rbldnsd.js';

let pf: PostfixInstance;
let dns: Rbldnsd;
before(async () => {
  [pf, dns] = await Promise.all([startPostfix(), startRbldnsd(fixtureZones())]);
});
after(async () => {
  await Promise.all([pf?.stop(), dns?.stop()]);
});

function cfg(greylist: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    hostname: 'screen.test', listen: ['127.0.0.1:0'], limits: { max_per_client: 0 },
    backend: { address: `127.0.0.1:${pf.xclientPort}`, handoff: 'xclient' },
    pregreet: { wait: '300ms' },
    greylist: { enable: true, min_delay: '1500ms', max_delay: '1m', ttl: '1h', ...greylist },
    ...extra,
  };
}

async function send(s: ScreenerProc, addr: string, to: string): Promise<{ code: number | null; transcript: string }> {
  return runSwaks({ server: `127.0.0.1:${Number(s.listen[0]?.split(':').pop())}`, localAddress: addr, to, from: 'g@example.test', helo: 'grey.test', timeoutS: 15 });
}

test('greylisting: first attempt 450, early retry 450, retry after min_delay reaches Postfix, a neighbour passes too', async () => {
  const s = await startScreener(cfg({}));
  try {
    const first = await send(s, '127.0.70.10', 'first@example.test');
    assert.notEqual(first.code, 0);
    assert.match(first.transcript, /<\*\*\s+450 4\.3\.2 Service currently unavailable/);
    const g1 = await s.waitForEvent((e) => e['event'] === 'GREYLIST' && e['client'] === '127.0.70.10');
    assert.deepEqual([g1['network'], g1['state'], g1['reason']], ['127.0.70.0/24', 'defer', 'new']);
    const n = await s.waitForEvent((e) => e['event'] === 'NOQUEUE' && e['client'] === '127.0.70.10');
    assert.deepEqual([n['helo'], n['from'], n['to'], n['reason']], ['grey.test', 'g@example.test', 'first@example.test', 'greylist']);

    const early = await send(s, '127.0.70.10', 'early@example.test');
    assert.match(early.transcript, /<\*\*\s+450 4\.3\.2/);
    await s.waitForEvent((e) => e['event'] === 'GREYLIST' && e['reason'] === 'early');

    await new Promise((r) => setTimeout(r, 1600));
    const retry = await send(s, '127.0.70.10', 'retry@example.test');
    assert.equal(retry.code, 0, retry.transcript);
    const pass = await s.waitForEvent((e) => e['event'] === 'GREYLIST' && e['state'] === 'pass');
    assert.ok((pass['delay_ms'] as number) >= 1500);
    await pf.waitForLog(/to=<retry@example\.test>/);

    const neighbour = await send(s, '127.0.70.99', 'neighbour@example.test');
    assert.equal(neighbour.code, 0, neighbour.transcript);
    await pf.waitForLog(/to=<neighbour@example\.test>/);
    assert.equal(s.eventsNamed('GREYLIST').filter((e) => e['client'] === '127.0.70.99' && e['state'] === 'defer').length, 0);

    const other = await send(s, '127.0.71.1', 'other@example.test');
    assert.match(other.transcript, /<\*\*\s+450 4\.3\.2/, 'another /24 is a new network');
    assert.doesNotMatch(pf.maillog(), /first@example\.test|early@example\.test|other@example\.test/);
  } finally {
    await s.stop();
  }
});

test('greylisting policy suspicious: only clients with a DNSBL score at or above suspicious_score are deferred', async () => {
  const s = await startScreener(cfg({ policy: 'suspicious', suspicious_score: 2 }, {
    dnsbl: { sites: ['bl2.test*2'], threshold: 5, health: { enable: false } },
    resolver: { servers: [dns.address], timeout: '300ms' },
  }));
  try {
    const listed = await send(s, '127.0.33.5', 'susp@example.test');
    assert.match(listed.transcript, /<\*\*\s+450 4\.3\.2/);
    const clean = await send(s, '127.0.34.5', 'clean@example.test');
    assert.equal(clean.code, 0, clean.transcript);
    await pf.waitForLog(/to=<clean@example\.test>/);
    assert.equal(s.eventsNamed('GREYLIST').filter((e) => e['client'] === '127.0.34.5').length, 0);
  } finally {
    await s.stop();
  }
});
