/*
 * test/dns/resolver.test.ts - Resolver against the fake DNS responder on loopback: answers,
 * negative and TTL-clamped caching, coalescing, spoof/garbage/late filtering, timeouts and
 * deadlines, server fail-over, TC -> TCP, CNAME chains, socket rotation, close().
 * Short timeouts (tens of ms) keep the file to a few seconds. Results are matched by fields.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Resolver, type ResolverOptions } from '../../src/dns/resolver.js';
import { QTYPE, RCODE, type DnsMessage, type LookupResult } from '../../src/dns/types.js';
import { ScreenError } from '../../src/util/errors.js';
import { reply, startFakeDns, type FakeDnsServer, type FakeHandler } from './fake-server.js';

const SOA = 'ns.dnsbl.test hostmaster.dnsbl.test 1 3600 600 86400';

function qname(m: DnsMessage): string {
  return m.questions[0]?.name ?? '';
}

/** Answers A with 127.0.0.2 and TXT with 'listed <name>', ttl 300. */
const answerAll: FakeHandler = (m) => {
  const q = m.questions[0];
  if (q === undefined) return 'silent';
  const data = q.qtype === QTYPE.A ? '127.0.0.2' : `listed ${q.name}`;
  return [{ buf: reply(m, { answers: [{ name: q.name, type: q.qtype, ttl: 300, data }] }) }];
};

const servfail: FakeHandler = (m) => [{ buf: reply(m, { rcode: RCODE.SERVFAIL }) }];

async function withServers(
  handlers: FakeHandler[],
  opts: Partial<ResolverOptions>,
  body: (r: Resolver, servers: FakeDnsServer[]) => Promise<void>,
): Promise<void> {
  const servers: FakeDnsServer[] = [];
  let r: Resolver | null = null;
  try {
    for (const h of handlers) servers.push(await startFakeDns(h));
    // 250 ms a try: an answer that comes at once must not be retried on a busy machine (tests of timeouts set their own).
    r = new Resolver({ timeoutMs: 250, tries: 3, deadlineMs: 2000, ...opts, servers: servers.map((s) => ({ host: s.host, port: s.port })) });
    await body(r, servers);
  } finally {
    await r?.close();
    for (const s of servers) await s.close();
  }
}

test('A and TXT answers', async () => {
  await withServers([answerAll], {}, async (r, [s]) => {
    const a = await r.lookup('2.0.0.127.DNSBL.test.', 'A');
    assert.deepEqual(a, { status: 'ok', records: ['127.0.0.2'], ttl: 300 });
    const t = await r.lookup('2.0.0.127.dnsbl.test', 'TXT');
    assert.deepEqual(t, { status: 'ok', records: ['listed 2.0.0.127.dnsbl.test'], ttl: 300 });
    assert.equal(s?.count(), 2);
    assert.deepEqual(s?.queries.map((q) => [q.name, q.qtype]), [['2.0.0.127.dnsbl.test', QTYPE.A], ['2.0.0.127.dnsbl.test', QTYPE.TXT]]);
    const st = r.stats();
    assert.equal(st.sent, 2, 'sent');
    assert.equal(st.received, 2, 'received');
    assert.equal(st.inFlight, 0, 'inFlight');
    assert.equal(st.cacheSize, 2, 'cacheSize');
  });
});

test('negative answers: NXDOMAIN/NODATA with SOA clamped, without SOA negTtl; cached', async () => {
  const cases: Array<{ label: string; rcode: number; soaTtl: number | null; soaMin: number; want: LookupResult }> = [
    { label: 'NXDOMAIN, SOA minimum below minTtl', rcode: RCODE.NXDOMAIN, soaTtl: 3600, soaMin: 5, want: { status: 'nxdomain', ttl: 60 } },
    { label: 'NXDOMAIN, SOA TTL below minimum', rcode: RCODE.NXDOMAIN, soaTtl: 900, soaMin: 1800, want: { status: 'nxdomain', ttl: 900 } },
    { label: 'NXDOMAIN, SOA above maxTtl', rcode: RCODE.NXDOMAIN, soaTtl: 86400, soaMin: 86400, want: { status: 'nxdomain', ttl: 3600 } },
    { label: 'NODATA, SOA in range', rcode: RCODE.NOERROR, soaTtl: 300, soaMin: 300, want: { status: 'nodata', ttl: 300 } },
    { label: 'NXDOMAIN, no SOA: negTtl', rcode: RCODE.NXDOMAIN, soaTtl: null, soaMin: 0, want: { status: 'nxdomain', ttl: 77 } },
    { label: 'NODATA, no SOA: negTtl', rcode: RCODE.NOERROR, soaTtl: null, soaMin: 0, want: { status: 'nodata', ttl: 77 } },
  ];
  for (const c of cases) {
    const h: FakeHandler = (m) => [{
      buf: reply(m, {
        rcode: c.rcode,
        authority: c.soaTtl === null ? [] : [{ name: 'dnsbl.test', type: 6, ttl: c.soaTtl, data: `${SOA} ${c.soaMin}` }],
      }),
    }];
    await withServers([h], { negTtl: 77 }, async (r, [s]) => {
      assert.deepEqual(await r.lookup('9.9.9.9.dnsbl.test', 'A'), c.want, c.label);
      assert.deepEqual(await r.lookup('9.9.9.9.dnsbl.test', 'A'), c.want, `${c.label}: from cache`);
      assert.equal(s?.count(), 1, `${c.label}: one query on the wire`);
      assert.equal(r.stats().cacheHits, 1, `${c.label}: cacheHits`);
    });
  }
});

test('answer TTLs are clamped to [minTtl, maxTtl]; the cache expires on the injected clock', async () => {
  const cases: Array<{ label: string; ttl: number; want: number }> = [
    { label: 'zero', ttl: 0, want: 60 },
    { label: 'below min', ttl: 10, want: 60 },
    { label: 'in range', ttl: 600, want: 600 },
    { label: 'above max', ttl: 86400, want: 3600 },
    { label: 'top bit set counts as 0', ttl: 0x80000000, want: 60 },
  ];
  for (const c of cases) {
    let skew = 0;
    const h: FakeHandler = (m) => [{ buf: reply(m, { answers: [{ name: qname(m), type: QTYPE.A, ttl: c.ttl, data: '127.0.0.4' }] }) }];
    await withServers([h], { now: () => performance.now() + skew }, async (r, [s]) => {
      const first = await r.lookup('x.dnsbl.test', 'A');
      assert.deepEqual(first, { status: 'ok', records: ['127.0.0.4'], ttl: c.want }, c.label);
      skew += 1000 * (c.want - 10);
      const second = await r.lookup('x.dnsbl.test', 'A');
      assert.deepEqual(second, { status: 'ok', records: ['127.0.0.4'], ttl: 10 }, `${c.label}: remaining TTL from cache`);
      assert.equal(s?.count(), 1, `${c.label}: cached`);
      skew += 10_001;
      assert.equal((await r.lookup('x.dnsbl.test', 'A')).status, 'ok');
      assert.equal(s?.count(), 2, `${c.label}: expired entry asks again`);
    });
  }
});

test('cache hits answer asynchronously', async () => {
  await withServers([answerAll], {}, async (r) => {
    await r.lookup('a.dnsbl.test', 'A');
    let returned = false;
    const p = r.lookup('a.dnsbl.test', 'A').then((res) => {
      assert.equal(returned, true, 'then() ran after lookup() returned');
      return res;
    });
    returned = true;
    assert.equal((await p).status, 'ok');
  });
});

test('100 identical concurrent lookups are one query on the wire', async () => {
  const h: FakeHandler = (m) => [{ buf: reply(m, { answers: [{ name: qname(m), type: QTYPE.A, ttl: 300, data: '127.0.0.2' }] }), delayMs: 20 }];
  await withServers([h], { timeoutMs: 500 }, async (r, [s]) => {
    const ps: Array<Promise<LookupResult>> = [];
    for (let i = 0; i < 100; i++) ps.push(r.lookup(i % 2 === 0 ? '3.2.1.dnsbl.test' : '3.2.1.DNSBL.TEST.', 'A'));
    assert.equal(r.stats().inFlight, 1, 'inFlight');
    const results = await Promise.all(ps);
    for (const res of results) assert.deepEqual(res, { status: 'ok', records: ['127.0.0.2'], ttl: 300 });
    assert.equal(s?.count(), 1, 'queries on the wire');
    assert.equal(r.stats().coalesced, 99, 'coalesced');
    // Distinct names are not coalesced.
    await Promise.all([r.lookup('4.2.1.dnsbl.test', 'A'), r.lookup('4.2.1.dnsbl.test', 'TXT')]);
    assert.equal(s?.count(), 3);
  });
});

test('spoofed replies (wrong ID, wrong source port, wrong question) are dropped and counted; the real reply wins', async () => {
  const h: FakeHandler = (m) => {
    const fake = [{ name: qname(m), type: QTYPE.A, ttl: 300, data: '127.0.0.66' }];
    return [
      { buf: reply(m, { id: m.id ^ 0x5a5a, answers: fake }) },
      { buf: reply(m, { answers: fake }), from: 'other-port' },
      { buf: reply(m, { question: { name: 'other.dnsbl.test', qtype: QTYPE.A }, answers: [{ name: 'other.dnsbl.test', type: QTYPE.A, ttl: 300, data: '127.0.0.66' }] }) },
      { buf: reply(m, { question: { name: qname(m), qtype: QTYPE.TXT }, answers: [{ name: qname(m), type: QTYPE.TXT, ttl: 300, data: 'x' }] }) },
      { buf: reply(m, { answers: [{ name: qname(m), type: QTYPE.A, ttl: 300, data: '127.0.0.2' }] }), delayMs: 15 },
    ];
  };
  await withServers([h], { timeoutMs: 200 }, async (r, [s]) => {
    const res = await r.lookup('5.0.0.127.dnsbl.test', 'A');
    assert.deepEqual(res, { status: 'ok', records: ['127.0.0.2'], ttl: 300 });
    const st = r.stats();
    assert.equal(st.spoofed, 4, 'spoofed');
    assert.equal(st.received, 1, 'received');
    assert.equal(st.timeouts, 0, 'timeouts');
    assert.equal(s?.count(), 1);
  });
});

test('a silent server ends in timeout: per-try timeouts, tries and the whole deadline', async () => {
  const silent: FakeHandler = () => 'silent';
  const cases: Array<{ label: string; opts: Partial<ResolverOptions>; wantTries: number; maxMs: number }> = [
    { label: 'tries bound it', opts: { timeoutMs: 30, tries: 2, deadlineMs: 2000 }, wantTries: 2, maxMs: 10 * (2 * 30) },
    { label: 'deadline bounds it', opts: { timeoutMs: 40, tries: 10, deadlineMs: 100 }, wantTries: 3, maxMs: 10 * 100 },
  ];
  for (const c of cases) {
    await withServers([silent], c.opts, async (r, [s]) => {
      const t0 = performance.now();
      const res = await r.lookup('6.0.0.127.dnsbl.test', 'A');
      const ms = performance.now() - t0;
      assert.deepEqual(res, { status: 'error', error: 'timeout' }, c.label);
      assert.ok(ms <= c.maxMs, `${c.label}: ended after ${ms.toFixed(0)} ms, bound ${c.maxMs}`);
      assert.equal(s?.count(), c.wantTries, `${c.label}: tries`);
      assert.equal(r.stats().timeouts, c.wantTries, `${c.label}: timeouts`);
      assert.equal(r.stats().inFlight, 0);
    });
  }
});

test('a reply after its try timed out is counted late, not spoofed', async () => {
  let n = 0;
  const h: FakeHandler = (m) => {
    n++;
    return [{ buf: reply(m, { answers: [{ name: qname(m), type: QTYPE.A, ttl: 300, data: '127.0.0.2' }] }), delayMs: n === 1 ? 80 : 0 }];
  };
  await withServers([h], { timeoutMs: 30, tries: 3 }, async (r) => {
    assert.equal((await r.lookup('7.0.0.127.dnsbl.test', 'A')).status, 'ok');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const st = r.stats();
    assert.equal(st.late, 1, 'late');
    assert.equal(st.spoofed, 0, 'spoofed');
    assert.equal(st.timeouts, 1, 'timeouts');
  });
});

test('SERVFAIL / REFUSED / FORMERR fail over to the next server; all failing ends with that code', async () => {
  await withServers([servfail, answerAll], {}, async (r, [s1, s2]) => {
    assert.deepEqual(await r.lookup('8.0.0.127.dnsbl.test', 'A'), { status: 'ok', records: ['127.0.0.2'], ttl: 300 });
    assert.equal(s1?.count(), 1, 'server 1 asked');
    assert.equal(s2?.count(), 1, 'server 2 asked');
  });
  const cases: Array<{ rcode: number; error: string }> = [
    { rcode: RCODE.SERVFAIL, error: 'servfail' },
    { rcode: RCODE.REFUSED, error: 'refused' },
    { rcode: RCODE.FORMERR, error: 'formerr' },
    { rcode: RCODE.NOTIMP, error: 'servfail' },
  ];
  for (const c of cases) {
    const h: FakeHandler = (m) => [{ buf: reply(m, { rcode: c.rcode }) }];
    await withServers([h, h], { tries: 3 }, async (r, [s1, s2]) => {
      assert.deepEqual(await r.lookup('9.0.0.127.dnsbl.test', 'A'), { status: 'error', error: c.error }, `rcode ${c.rcode}`);
      assert.equal((s1?.count() ?? 0) + (s2?.count() ?? 0), 3, `rcode ${c.rcode}: three tries`);
      assert.equal(r.stats().cacheSize, 0, 'errors are not cached');
    });
  }
});

test('garbage and non-responses are counted malformed; the try then times out and the next server answers', async () => {
  const garbage: FakeHandler = (m) => {
    const junk = Buffer.alloc(40, 0xff);
    junk.writeUInt16BE(m.id, 0); // right ID, right source: only the content is wrong
    const echo = reply(m);
    echo[2] = (echo[2] as number) & 0x7f; // QR=0: a query, not a response
    return [{ buf: junk }, { buf: Buffer.from([1, 2, 3]) }, { buf: echo }];
  };
  await withServers([garbage, answerAll], { timeoutMs: 30 }, async (r) => {
    assert.deepEqual(await r.lookup('10.0.0.127.dnsbl.test', 'A'), { status: 'ok', records: ['127.0.0.2'], ttl: 300 });
    const st = r.stats();
    assert.equal(st.malformed, 3, 'malformed');
    assert.equal(st.timeouts, 1, 'timeouts');
  });
});

test('TC=1 repeats the query over TCP to the same server and gets the full answer', async () => {
  const many = Array.from({ length: 60 }, (_, i) => `record ${i} ${'x'.repeat(40)}`);
  const h: FakeHandler = (m, rinfo) => {
    if (rinfo.transport === 'udp') return [{ buf: reply(m, { tc: true }) }];
    return [{ buf: reply(m, { answers: many.map((data) => ({ name: qname(m), type: QTYPE.TXT, ttl: 600, data })) }) }];
  };
  await withServers([h], {}, async (r, [s]) => {
    const res = await r.lookup('11.0.0.127.dnsbl.test', 'TXT');
    assert.deepEqual(res, { status: 'ok', records: many, ttl: 600 });
    assert.equal(s?.count('udp'), 1);
    assert.equal(s?.count('tcp'), 1);
    assert.equal(r.stats().tcp, 1, 'stats.tcp');
  });
});

test('TCP failures move on: a TCP side that hangs up or sends a bad frame, then the next server', async () => {
  const tcHangup: FakeHandler = (m, rinfo) => (rinfo.transport === 'udp' ? [{ buf: reply(m, { tc: true }) }] : [{ buf: Buffer.alloc(0) }]);
  await withServers([tcHangup, answerAll], { timeoutMs: 50 }, async (r, [s1, s2]) => {
    const res = await r.lookup('12.0.0.127.dnsbl.test', 'A');
    assert.deepEqual(res, { status: 'ok', records: ['127.0.0.2'], ttl: 300 });
    assert.equal(s1?.count('tcp'), 1);
    assert.equal(s2?.count('udp'), 1);
    assert.equal(r.stats().malformed, 1, 'short TCP frame');
  });
  const tcSilent: FakeHandler = (m, rinfo) => (rinfo.transport === 'udp' ? [{ buf: reply(m, { tc: true }) }] : 'silent');
  await withServers([tcSilent, answerAll], { timeoutMs: 30 }, async (r, [s1, s2]) => {
    const res = await r.lookup('12.0.0.127.dnsbl.test', 'A');
    assert.deepEqual(res, { status: 'ok', records: ['127.0.0.2'], ttl: 300 });
    assert.equal(s1?.count('tcp'), 1);
    assert.equal(s2?.count('udp'), 1);
    assert.equal(r.stats().timeouts, 1, 'the silent TCP try timed out');
  });
});

test('CNAME chains are followed; a loop is an error', async () => {
  const chain: FakeHandler = (m) => [{
    buf: reply(m, {
      answers: [
        { name: qname(m), type: QTYPE.CNAME, ttl: 900, data: 'a.alias.test' },
        { name: 'a.alias.test', type: QTYPE.CNAME, ttl: 700, data: 'b.alias.test' },
        { name: 'b.alias.test', type: QTYPE.A, ttl: 800, data: '127.0.0.10' },
        { name: 'b.alias.test', type: QTYPE.A, ttl: 800, data: '127.0.0.11' },
      ],
    }),
  }];
  await withServers([chain], {}, async (r) => {
    assert.deepEqual(await r.lookup('13.0.0.127.dnsbl.test', 'A'), { status: 'ok', records: ['127.0.0.10', '127.0.0.11'], ttl: 700 });
  });
  const loop: FakeHandler = (m) => [{
    buf: reply(m, {
      answers: [
        { name: qname(m), type: QTYPE.CNAME, ttl: 900, data: 'a.alias.test' },
        { name: 'a.alias.test', type: QTYPE.CNAME, ttl: 900, data: qname(m) },
      ],
    }),
  }];
  await withServers([loop], {}, async (r) => {
    assert.deepEqual(await r.lookup('14.0.0.127.dnsbl.test', 'A'), { status: 'error', error: 'cname-loop' });
  });
});

test('close() ends pending lookups with network; later lookups too', async () => {
  await withServers([() => 'silent'], { timeoutMs: 5000, deadlineMs: 10000 }, async (r) => {
    const ps = [r.lookup('15.0.0.127.dnsbl.test', 'A'), r.lookup('16.0.0.127.dnsbl.test', 'TXT')];
    await new Promise((resolve) => setTimeout(resolve, 10));
    await r.close();
    for (const res of await Promise.all(ps)) assert.deepEqual({ status: res.status, error: res.status === 'error' ? res.error : null }, { status: 'error', error: 'network' });
    const after = await r.lookup('17.0.0.127.dnsbl.test', 'A');
    assert.equal(after.status === 'error' && after.error, 'network');
    await r.close(); // idempotent
  });
});

test('sockets rotate after rotateAfter queries; replies still reach the old socket', async () => {
  const h: FakeHandler = (m) => [{ buf: reply(m, { answers: [{ name: qname(m), type: QTYPE.A, ttl: 300, data: '127.0.0.2' }] }), delayMs: 5 }];
  await withServers([h], { sockets: 1, rotateAfter: 5, timeoutMs: 1000, deadlineMs: 5000 } /* no retry even on a loaded machine: a retry takes a socket slot too */, async (r, [s]) => {
    const ps: Array<Promise<LookupResult>> = [];
    for (let i = 0; i < 20; i++) ps.push(r.lookup(`${i}.rot.dnsbl.test`, 'A'));
    for (const res of await Promise.all(ps)) assert.equal(res.status, 'ok');
    const ports = new Set(s?.queries.map((q) => q.srcPort));
    assert.equal(ports.size, 4, 'four source ports for 20 queries, 5 each');
  });
});

test('IDs are unique among queries in flight on a socket', async () => {
  const h: FakeHandler = (m) => [{ buf: reply(m, { answers: [{ name: qname(m), type: QTYPE.A, ttl: 300, data: '127.0.0.2' }] }), delayMs: 30 }];
  await withServers([h], { sockets: 1, timeoutMs: 5000, deadlineMs: 10_000, maxOutstanding: 5000, minOutstanding: 5000 }, async (r, [s]) => {
    const ps: Array<Promise<LookupResult>> = [];
    for (let i = 0; i < 3000; i++) ps.push(r.lookup(`${i}.ids.dnsbl.test`, 'A'));
    for (const res of await Promise.all(ps)) assert.equal(res.status, 'ok');
    assert.equal(new Set(s?.queries.map((q) => q.id)).size, 3000);
  });
});

test('maxOutstanding: at most that many UDP tries per server on the wire, the rest wait; a waiting lookup still ends by its deadline', async () => {
  let onWire = 0;
  let peak = 0;
  const h: FakeHandler = (m) => {
    onWire++;
    peak = Math.max(peak, onWire);
    setTimeout(() => onWire--, 10); // the reply below leaves after 10 ms
    return [{ buf: reply(m, { answers: [{ name: qname(m), type: QTYPE.A, ttl: 300, data: '127.0.0.2' }] }), delayMs: 10 }];
  };
  await withServers([h], { maxOutstanding: 8, timeoutMs: 500 }, async (r, [s]) => {
    const ps: Array<Promise<LookupResult>> = [];
    for (let i = 0; i < 100; i++) ps.push(r.lookup(`${i}.win.dnsbl.test`, 'A'));
    for (const res of await Promise.all(ps)) assert.equal(res.status, 'ok');
    assert.equal(s?.count(), 100);
    assert.ok(peak <= 8, `peak on the wire ${peak}`);
    assert.equal(r.stats().timeouts, 0);
  });
  // A full server sends the overflow to another with room.
  await withServers([h, answerAll], { maxOutstanding: 4, timeoutMs: 500 }, async (r, [s1, s2]) => {
    const ps: Array<Promise<LookupResult>> = [];
    for (let i = 0; i < 10; i++) ps.push(r.lookup(`${i}.spill.dnsbl.test`, 'A'));
    for (const res of await Promise.all(ps)) assert.equal(res.status, 'ok');
    assert.equal((s1?.count() ?? 0) + (s2?.count() ?? 0), 10);
    assert.ok((s1?.count() ?? 0) <= 8 && (s2?.count() ?? 0) >= 2, `split ${s1?.count()}/${s2?.count()}`);
  });
  // Waiting behind a silent server: the deadline ends the waiting lookups too. The two sent
  // time out (the server's doing); the four that never left the queue end 'queued' (ours).
  await withServers([() => 'silent'], { maxOutstanding: 2, timeoutMs: 1000, tries: 1, deadlineMs: 60 }, async (r) => {
    const t0 = performance.now();
    const ps: Array<Promise<LookupResult>> = [];
    for (let i = 0; i < 6; i++) ps.push(r.lookup(`${i}.dead.dnsbl.test`, 'A'));
    const res = await Promise.all(ps);
    assert.deepEqual(res.slice(0, 2), [{ status: 'error', error: 'timeout' }, { status: 'error', error: 'timeout' }]);
    for (const x of res.slice(2)) assert.deepEqual(x, { status: 'error', error: 'queued' });
    assert.ok(performance.now() - t0 < 60 + 15 + 60, 'by the deadline');
    assert.equal(r.stats().inFlight, 0);
    assert.equal(r.stats().queued, 4);
  });
});

test('a lookup whose deadline comes while it waits for a slot ends queued, not timeout; those sent and answered are answers', async () => {
  // 100 ms per answer, 2 slots, 250 ms deadline: two rounds are answered, a third is sent at
  // ~200 ms and cut by the deadline after waiting, the rest never leave the queue.
  const h: FakeHandler = (m) => [{ buf: reply(m, { answers: [{ name: qname(m), type: QTYPE.A, ttl: 300, data: '127.0.0.2' }] }), delayMs: 100 }];
  await withServers([h], { maxOutstanding: 2, timeoutMs: 1000, tries: 1, deadlineMs: 250 }, async (r, [s]) => {
    const ps: Array<Promise<LookupResult>> = [];
    for (let i = 0; i < 12; i++) ps.push(r.lookup(`${i}.burst.dnsbl.test`, 'A'));
    const res = await Promise.all(ps);
    const ok = res.filter((x) => x.status === 'ok').length;
    const queued = res.filter((x) => x.status === 'error' && x.error === 'queued').length;
    assert.equal(ok + queued, 12, `only answers and queued: ${JSON.stringify(res)}`);
    assert.ok(ok >= 2 && ok <= 6, `answered ${ok}`);
    assert.ok((s?.count() ?? 0) < 12, 'some never left the queue');
    const st = r.stats();
    assert.equal(st.queued, queued);
    assert.equal(st.timeouts, 0, 'no try counted as timed out');
  });
});

test('IPv6 server on ::1', async () => {
  // No skip: a machine without IPv6 loopback cannot run the IPv6 listener tests either; fail loudly.
  const s: FakeDnsServer = await startFakeDns(answerAll, { host: '::1' });
  const r = new Resolver({ servers: [{ host: '0:0:0:0:0:0:0:1', port: s.port }], timeoutMs: 50 });
  try {
    assert.deepEqual(await r.lookup('18.0.0.127.dnsbl.test', 'A'), { status: 'ok', records: ['127.0.0.2'], ttl: 300 });
  } finally {
    await r.close();
    await s.close();
  }
});

test('names that cannot be encoded are bad-name, without a query', async () => {
  await withServers([answerAll], {}, async (r, [s]) => {
    for (const name of ['', '.', 'a..b', `${'x'.repeat(64)}.test`, 'sp ace.test', 'back\\slash.test']) {
      assert.deepEqual(await r.lookup(name, 'A'), { status: 'error', error: 'bad-name' }, JSON.stringify(name));
    }
    assert.equal(s?.count(), 0);
    assert.equal(r.stats().inFlight, 0);
  });
});

test('constructor: bad options are SCR_ERR_CONFIG', () => {
  const cases: Array<{ label: string; opts: ResolverOptions }> = [
    { label: 'no servers', opts: { servers: [] } },
    { label: 'host not an IP', opts: { servers: [{ host: 'localhost', port: 53 }] } },
    { label: 'port 0', opts: { servers: [{ host: '127.0.0.1', port: 0 }] } },
    { label: 'timeoutMs 0', opts: { servers: [{ host: '127.0.0.1', port: 53 }], timeoutMs: 0 } },
    { label: 'tries 1.5', opts: { servers: [{ host: '127.0.0.1', port: 53 }], tries: 1.5 } },
    { label: 'maxTtl < minTtl', opts: { servers: [{ host: '127.0.0.1', port: 53 }], minTtl: 100, maxTtl: 10 } },
    { label: 'minOutstanding 0', opts: { servers: [{ host: '127.0.0.1', port: 53 }], minOutstanding: 0 } },
  ];
  for (const c of cases) {
    assert.throws(() => new Resolver(c.opts), (e: unknown) => e instanceof ScreenError && e.code === 'SCR_ERR_CONFIG', c.label);
  }
});

test('fromResolvConf table', () => {
  const cases: Array<{ label: string; text: string; want: Array<{ host: string; port: 53 }> }> = [
    { label: 'IPv4 and IPv6', text: 'search example.test\nnameserver 10.0.0.1\n  nameserver\t2001:db8::53\n', want: [{ host: '10.0.0.1', port: 53 }, { host: '2001:db8::53', port: 53 }] },
    { label: 'comments and junk skipped', text: '# nameserver 1.1.1.1\n; nameserver 2.2.2.2\nnameserver dns.example\nnameserver 9.9.9.9 # trailing\n', want: [{ host: '9.9.9.9', port: 53 }] },
    { label: 'first three, as glibc', text: 'nameserver 1.0.0.1\nnameserver 1.0.0.2\nnameserver 1.0.0.3\nnameserver 1.0.0.4\n', want: [1, 2, 3].map((i) => ({ host: `1.0.0.${i}`, port: 53 as const })) },
    { label: 'none: the local server', text: 'options ndots:1\n', want: [{ host: '127.0.0.1', port: 53 }] },
  ];
  for (const c of cases) assert.deepEqual(Resolver.fromResolvConf(c.text), c.want, c.label);
  assert.ok(Resolver.fromResolvConf().length >= 1, 'reads /etc/resolv.conf');
});

test('fresh lookups skip the cache read (health probes) and refresh the cached answer', async () => {
  let answer = '127.0.0.2';
  let queries = 0;
  const srv = await startFakeDns((q) => {
    queries++;
    const name = q.questions[0]?.name ?? '';
    return [{ buf: reply(q, { answers: [{ name, type: QTYPE.A, ttl: 3600, data: answer }] }) }];
  });
  const r = new Resolver({ servers: [{ host: '127.0.0.1', port: srv.port }], timeoutMs: 200 });
  try {
    assert.deepEqual(await r.lookup('2.0.0.127.fresh.test', 'A'), { status: 'ok', records: ['127.0.0.2'], ttl: 3600 });
    answer = '127.0.0.9';
    assert.equal(((await r.lookup('2.0.0.127.fresh.test', 'A')) as { records: string[] }).records[0], '127.0.0.2', 'cached');
    assert.equal(queries, 1);
    assert.equal(((await r.lookup('2.0.0.127.fresh.test', 'A', true)) as { records: string[] }).records[0], '127.0.0.9', 'fresh');
    assert.equal(queries, 2);
    assert.equal(((await r.lookup('2.0.0.127.fresh.test', 'A')) as { records: string[] }).records[0], '127.0.0.9', 'the fresh answer is cached');
  } finally {
    await r.close();
    await srv.close();
  }
});
