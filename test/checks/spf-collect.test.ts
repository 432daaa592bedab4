/*
 * test/checks/spf-collect.test.ts - the SPF walk (checks/spf-collect.ts) and the allowlist
 * (checks/spf-allowlist.ts) through the real resolver against the fake DNS responder on loopback:
 * redirect, include, a, mx, an include loop, the 10-lookup limit (10 passes, 11 fails), void
 * lookups (2 pass, 3 fail), a server that never answers (temperror), +all and too-wide prefixes
 * skipped, the least TTL; then the allowlist keeping its last good set across a failure and
 * logging what changed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Resolver } from '../../src/dns/resolver.js';
import { QTYPE, type DnsMessage } from '../../src/dns/types.js';
import { formatCidr } from '../../src/net/cidr.js';
import { collectSpf, SPF_LIMITS } from '../../src/checks/spf-collect.js';
import { SpfAllowlist, type SpfChange } from '../../src/checks/spf-allowlist.js';
import { reply, startFakeDns, type FakeDnsServer } from '../dns/fake-server.js';

type Rec = { type: number; data: string; ttl?: number };
const zone = new Map<string, Rec[] | 'silent'>();
const TXT = (data: string, ttl = 300): Rec => ({ type: QTYPE.TXT, data, ttl });

function handler(m: DnsMessage) {
  const q = m.questions[0];
  if (q === undefined) return 'silent' as const;
  const recs = zone.get(q.name);
  if (recs === 'silent') return 'silent' as const;
  if (recs === undefined) return [{ buf: reply(m, { rcode: 3 }) }];
  const answers = recs.filter((r) => r.type === q.qtype).map((r) => ({ name: q.name, type: r.type, ttl: r.ttl ?? 300, data: r.data }));
  return [{ buf: reply(m, { answers }) }];
}

let dns: FakeDnsServer;
let resolver: Resolver;
// One clock for the resolver's cache and the allowlist: the allowlist test jumps it forward between walks.
let skew = 0;
const clock = (): number => performance.now() + skew;
before(async () => {
  dns = await startFakeDns(handler);
  resolver = new Resolver({ servers: [{ host: dns.host, port: dns.port }], timeoutMs: 50, tries: 2, deadlineMs: 300, minTtl: 0, maxTtl: 86400, now: clock });
});
after(async () => {
  await resolver.close();
  await dns.close();
});

zone.set('top.test', [TXT('v=spf1 ip4:192.0.2.0/24 -ip4:10.0.0.0/8 redirect=_spf.top.test', 900)]);
zone.set('_spf.top.test', [TXT('v=spf1 ip6:2001:db8::/32 a:host.test/30 mx:mx.test include:inc.test -all', 600)]);
zone.set('host.test', [{ type: QTYPE.A, data: '198.51.100.5', ttl: 30 }]);
zone.set('mx.test', [{ type: QTYPE.MX, data: 'mail.mx.test' }]);
zone.set('mail.mx.test', [{ type: QTYPE.A, data: '203.0.113.9' }, { type: QTYPE.AAAA, data: '2001:db8:ff::1' }]);
zone.set('inc.test', [TXT('v=spf1 ip4:203.0.113.128/25 ~all')]);
zone.set('loop1.test', [TXT('v=spf1 ip4:192.0.2.1 include:loop2.test')]);
zone.set('loop2.test', [TXT('v=spf1 redirect=loop1.test')]);
for (let i = 1; i <= 11; i++) zone.set(`i${i}.test`, [TXT(`v=spf1 ip4:10.0.0.${i}`)]);
zone.set('ten.test', [TXT(`v=spf1 ${Array.from({ length: 10 }, (_, i) => `include:i${i + 1}.test`).join(' ')}`)]);
zone.set('eleven.test', [TXT(`v=spf1 ${Array.from({ length: 11 }, (_, i) => `include:i${i + 1}.test`).join(' ')}`)]);
zone.set('void2.test', [TXT('v=spf1 a:nx1.test a:nx2.test ip4:192.0.2.9')]);
zone.set('void3.test', [TXT('v=spf1 a:nx1.test a:nx2.test mx:nx3.test ip4:192.0.2.9')]);
zone.set('slow.test', 'silent');
zone.set('slowinc.test', [TXT('v=spf1 ip4:192.0.2.10 include:slow.test')]);
zone.set('wide.test', [TXT('v=spf1 ip4:0.0.0.0/0 ip6:2000::/3 ip4:192.0.2.77/24 +all ip4:198.51.100.1')]);
zone.set('two.test', [TXT('v=spf1 -all'), TXT('v=spf1 +all')]);
zone.set('macro.test', [TXT('v=spf1 exists:%{i}.x.test ptr include:%{d}.y.test ip4:192.0.2.5')]);

const nets = (r: Awaited<ReturnType<typeof collectSpf>>) => (r.ok ? r.nets.map(formatCidr) : r.error);

test('redirect, include, a and mx: the pass netblocks; -ip4 and ~all add nothing; TTL is the least', async () => {
  const r = await collectSpf('top.test', resolver);
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(r.nets.map(formatCidr), ['192.0.2.0/24', '2001:db8::/32', '198.51.100.4/30', '203.0.113.9/32', '2001:db8:ff::1/128', '203.0.113.128/25']);
  assert.equal(r.lookups, 4, 'redirect, a, mx, include');
  assert.equal(r.ttl, 30, 'host.test A has the least TTL (below the 60 s given to answers without an SOA)');
  assert.ok(r.skipped.some((s) => s.includes('-ip4:10.0.0.0')), JSON.stringify(r.skipped));
});

test('an include/redirect loop is a permerror naming the path', async () => {
  const r = await collectSpf('loop1.test', resolver);
  assert.deepEqual(r, { ok: false, error: 'loop: loop1.test -> loop2.test -> loop1.test', temporary: false });
});

test(`${SPF_LIMITS.lookups} DNS-querying terms pass, the next one is a permerror before its lookup`, async () => {
  const ten = await collectSpf('ten.test', resolver);
  assert.ok(ten.ok);
  assert.equal(ten.nets.length, 10);
  const before = dns.queries.filter((q) => q.name === 'i11.test').length;
  const eleven = await collectSpf('eleven.test', resolver);
  assert.equal(eleven.ok, false);
  assert.match(nets(eleven) as string, /include:i11\.test" is past the limit of 10 DNS lookups/);
  assert.equal(dns.queries.filter((q) => q.name === 'i11.test').length, before, 'i11.test never asked');
});

test('void lookups: two pass, the third is a permerror', async () => {
  assert.deepEqual(nets(await collectSpf('void2.test', resolver)), ['192.0.2.9/32']);
  const r = await collectSpf('void3.test', resolver);
  assert.equal(r.ok, false);
  assert.match(nets(r) as string, /nx3\.test MX: more than 2 void lookups/);
});

test('a server that never answers: temperror, also inside an include', async () => {
  for (const d of ['slow.test', 'slowinc.test']) {
    const r = await collectSpf(d, resolver);
    assert.equal(r.ok, false, d);
    if (!r.ok) {
      assert.equal(r.temporary, true, d);
      assert.match(r.error, /slow\.test TXT: timeout/);
    }
  }
});

test('+all, /0 and /3 are never collected; no record, two records, macros, ptr, exists', async () => {
  const w = await collectSpf('wide.test', resolver);
  assert.ok(w.ok);
  assert.deepEqual(w.nets.map(formatCidr), ['192.0.2.0/24'], 'nothing after all either');
  assert.equal(w.skipped.length, 3, JSON.stringify(w.skipped));
  assert.deepEqual(await collectSpf('nx.test', resolver), { ok: false, error: 'nx.test: no SPF record', temporary: false });
  assert.deepEqual(await collectSpf('two.test', resolver), { ok: false, error: 'two.test: more than one v=spf1 record', temporary: false });
  const m = await collectSpf('macro.test', resolver);
  assert.ok(m.ok);
  assert.deepEqual(m.nets.map(formatCidr), ['192.0.2.5/32']);
  assert.equal(m.lookups, 3, 'exists, ptr and include count though skipped');
});

test('SpfAllowlist: first walk, a change (added/removed), a failure keeps the last good set, a dropped domain', async () => {
  const changes: SpfChange[] = [];
  zone.set('big.test', [TXT('v=spf1 ip4:127.0.0.77/32 ip4:192.0.2.0/25 -all', 30)]);
  const list = new SpfAllowlist(resolver, ['big.test', 'top.test'], { refreshMinMs: 10_000, refreshMaxMs: 3_600_000, now: clock, onChange: (c) => changes.push(c) });
  assert.equal(list.match('127.0.0.77'), undefined, 'nothing before the first walk');
  assert.equal(list.nextDelay(), 0);
  await list.refresh();
  assert.deepEqual(list.match('127.0.0.77'), { action: 'permit', entry: 'spf:big.test 127.0.0.77/32', line: 0, route: 'spf' });
  assert.equal(list.match('127.0.0.78'), undefined);
  assert.equal(list.match('198.51.100.6')?.entry, 'spf:top.test 198.51.100.4/30');
  assert.deepEqual(changes.map((c) => [c.domain, c.entries, c.added, c.removed, c.next_ms]).sort(),
    [['big.test', 2, 2, 0, 30_000], ['top.test', 6, 6, 0, 30_000]]);
  const d = list.nextDelay();
  assert.ok(d > 25_000 && d <= 30_000, `due again after the TTL (30 s): ${d}`);

  changes.length = 0;
  zone.set('big.test', [TXT('v=spf1 ip4:127.0.0.78 ip4:192.0.2.0/25 -all', 5)]);
  skew += 30_000;
  await list.refresh();
  assert.equal(list.match('127.0.0.77'), undefined, 'gone with the record');
  assert.equal(list.match('127.0.0.78')?.entry, 'spf:big.test 127.0.0.78/32');
  assert.deepEqual(changes.map((c) => [c.domain, c.entries, c.added, c.removed, c.next_ms]), [['big.test', 2, 1, 1, 10_000]], 'TTL 5 s raised to the minimum');

  changes.length = 0;
  zone.set('big.test', 'silent');
  skew += 10_000;
  await list.refresh();
  assert.equal(list.match('127.0.0.78')?.entry, 'spf:big.test 127.0.0.78/32', 'last good set kept');
  assert.equal(changes.length, 1);
  assert.equal(changes[0]?.error, 'big.test TXT: timeout');
  assert.equal(changes[0]?.entries, 2);
  assert.equal(changes[0]?.temporary, true);

  changes.length = 0;
  list.configure(['top.test'], { refreshMinMs: 10_000, refreshMaxMs: 3_600_000 });
  assert.equal(list.match('127.0.0.78'), undefined);
  assert.equal(list.match('198.51.100.6')?.entry, 'spf:top.test 198.51.100.4/30', 'kept without a walk');
  assert.deepEqual(changes, [{ domain: 'big.test', entries: 0, added: 0, removed: 2, next_ms: 0, dropped: true }]);
});
