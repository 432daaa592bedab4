/*
 * test/checks/dnsbl-burst.test.ts - DNSBL site health with the real Resolver against the fake DNS
 * responder on loopback: a burst that outruns the resolver's in-flight cap is our overload and
 * never suspends a healthy site; a server that really fails (silent, garbage, SERVFAIL) still
 * gets its site suspended after error_limit errors in a row.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dnsbl, type DnsblOptions, type DnsblQuery } from '../../src/checks/dnsbl.js';
import { Resolver, type ResolverOptions } from '../../src/dns/resolver.js';
import { reverseName } from '../../src/dns/reverse.js';
import { QTYPE, RCODE } from '../../src/dns/types.js';
import { reply, startFakeDns, type FakeHandler } from '../dns/fake-server.js';

type Ev = [string, Record<string, unknown>];

const OPTS: DnsblOptions = {
  threshold: 3, allowlistThreshold: 0, ttlMinMs: 60_000, ttlMaxMs: 3_600_000, slowWarningMs: 60_000, txt: false, replyMap: {},
  health: { enable: false, intervalMs: 1000, listed: '127.0.0.2', unlisted: '127.0.0.1', errorLimit: 5, sites: {} },
};

/** Every A query listed (127.0.0.2) after `ms`. */
const listedAfter = (ms: number): FakeHandler => (m) => {
  const q = m.questions[0];
  if (q === undefined) return 'silent';
  return [{ buf: reply(m, { answers: [{ name: q.name, type: QTYPE.A, ttl: 300, data: '127.0.0.2' }] }), delayMs: ms }];
};

function run(d: Dnsbl, client: string): Promise<DnsblQuery | null> {
  return new Promise((resolve) => {
    const q = d.start(client, null, (_o, done) => resolve(done));
    if (q === null) resolve(null);
  });
}

/** `n` distinct clients at once; resolves with every finished query. */
function burst(d: Dnsbl, n: number): Promise<Array<DnsblQuery | null>> {
  return Promise.all(Array.from({ length: n }, (_, i) => run(d, `127.0.${40 + (i >> 8)}.${i & 255}`)));
}

async function withDnsbl(handler: FakeHandler, ropts: Partial<ResolverOptions>, dopts: DnsblOptions,
  body: (d: Dnsbl, events: Ev[], r: Resolver) => Promise<void>): Promise<void> {
  const srv = await startFakeDns(handler);
  const r = new Resolver({ servers: [{ host: srv.host, port: srv.port }], ...ropts });
  const events: Ev[] = [];
  try {
    await body(new Dnsbl(['bl.test*3'], dopts, r, reverseName, (e, x) => events.push([e, x])), events, r);
  } finally {
    await r.close();
    await srv.close();
  }
}

const states = (events: Ev[]) => events.filter(([e]) => e === 'DNSBL SITE').map(([, x]) => x['state']);

test('a burst beyond the in-flight cap against a healthy 200 ms server: overload counted and logged, site not suspended, answers count', async () => {
  // 4 slots, 200 ms an answer, 1 s deadline: about 20 of 60 clients are answered, the rest expire
  // in the resolver's queue. Before overload was told apart, those 40 were 40 "errors in a row".
  await withDnsbl(listedAfter(200), { maxOutstanding: 4, timeoutMs: 2000, tries: 3, deadlineMs: 1000 }, OPTS, async (d, events, r) => {
    const qs = await burst(d, 60);
    const answered = qs.filter((q) => q !== null && q.score === 3).length;
    assert.ok(answered >= 4, `at least the first round of 4 is answered: ${answered}`);
    assert.ok(answered < 60, 'the cap is small enough that some expire in the queue');
    assert.deepEqual(states(events), [], 'not suspended');
    assert.equal(d.domains[0]?.suspended, false);
    assert.equal(d.overloaded, 60 - answered, 'every other client: overload');
    assert.equal(r.stats().queued, 60 - answered);
    assert.equal(r.stats().timeouts, 0, 'no query sent went unanswered');
    const warned = events.filter(([e, x]) => e === 'DNSBL WARNING' && x['reason'] === 'overload');
    assert.equal(warned.length, 1, 'one line within the second');
    assert.equal(warned[0]?.[1]['site'], 'bl.test');
    d.healthTick();
    const logged = events.filter(([e, x]) => e === 'DNSBL WARNING' && x['reason'] === 'overload').reduce((a, [, x]) => a + (x['count'] as number), 0);
    assert.equal(logged, d.overloaded, 'the held-back count goes out with the next health tick');
    // Still asked, still listing.
    const after = await run(d, '127.0.39.1');
    assert.equal(after?.score, 3);
  });
});

test('a server that does not answer still gets its site suspended after error_limit, in a burst too', async () => {
  const dopts = { ...OPTS, health: { ...OPTS.health, errorLimit: 3 } };
  await withDnsbl(() => 'silent', { timeoutMs: 40, tries: 2, deadlineMs: 300 }, dopts, async (d, events) => {
    for (let i = 0; i < 3; i++) await run(d, `127.0.50.${i}`);
    assert.deepEqual(states(events), ['suspended']);
    const ev = events.find(([e]) => e === 'DNSBL SITE');
    assert.match(String(ev?.[1]['reason']), /3 errors in a row, last: timeout/);
    assert.equal(d.overloaded, 0);
  });
  // A burst beyond the cap: the queries that were sent time out and count, whatever waited.
  await withDnsbl(() => 'silent', { maxOutstanding: 2, timeoutMs: 40, tries: 3, deadlineMs: 300 }, dopts, async (d, events) => {
    await burst(d, 30);
    assert.deepEqual(states(events), ['suspended']);
    assert.ok(d.overloaded < 30, `some lookups were the server's failures: overloaded ${d.overloaded}`);
  });
});

test('garbage, SERVFAIL and a wrong question count as errors and suspend the site', async () => {
  const cases: Array<{ label: string; h: FakeHandler; last: RegExp }> = [
    { label: 'garbage', h: () => [{ buf: Buffer.from('this is not DNS at all, just bytes') }], last: /last: timeout/ },
    { label: 'garbage with the right ID', h: (m) => [{ buf: Buffer.concat([reply(m).subarray(0, 12), Buffer.from([0xff, 0xff, 0xff])]) }], last: /last: timeout/ },
    { label: 'wrong question', h: (m) => [{ buf: reply(m, { question: { name: 'other.bl.test', qtype: QTYPE.A } }) }], last: /last: timeout/ },
    { label: 'SERVFAIL', h: (m) => [{ buf: reply(m, { rcode: RCODE.SERVFAIL }) }], last: /last: servfail/ },
  ];
  for (const c of cases) {
    const dopts = { ...OPTS, health: { ...OPTS.health, errorLimit: 3 } };
    await withDnsbl(c.h, { timeoutMs: 40, tries: 2, deadlineMs: 300 }, dopts, async (d, events, r) => {
      for (let i = 0; i < 3; i++) await run(d, `127.0.60.${i}`);
      assert.deepEqual(states(events), ['suspended'], c.label);
      assert.match(String(events.find(([e]) => e === 'DNSBL SITE')?.[1]['reason']), c.last, c.label);
      assert.equal(d.overloaded, 0, c.label);
      assert.equal(r.stats().queued, 0, c.label);
    });
  }
});
