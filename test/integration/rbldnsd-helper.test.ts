/*
 * test/integration/rbldnsd-helper.test.ts - the rbldnsd helper works: the
 * fixture zones answer as documented (A, TXT, NXDOMAIN, IPv6 nibbles,
 * REFUSED outside its zones), writeZone() is seen within seconds, pause()
 * silences the server and resume() brings it back, stop() leaves no process.
 * Queries are hand-made UDP packets (dnsQuery in the helper), independent of
 * the screener's own DNS code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { dnsblName, fixtureZone, fixtureZones, startRbldnsd, stopAllRbldnsd, type DnsReply, type Rbldnsd } from '../helpers/rbldnsd.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function processAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function aRecords(r: DnsReply | null): string[] {
  return (r?.answers ?? []).filter((a) => a.type === 1).map((a) => a.data);
}

/** Poll until pred(reply) holds; the last reply when it never does. */
async function eventually(q: () => Promise<DnsReply | null>, pred: (r: DnsReply | null) => boolean, timeoutMs: number): Promise<DnsReply | null> {
  const deadline = Date.now() + timeoutMs;
  let r = await q();
  while (!pred(r) && Date.now() < deadline) {
    await sleep(200);
    r = await q();
  }
  return r;
}

describe('rbldnsd helper', () => {
  let dns: Rbldnsd;
  before(async () => {
    dns = await startRbldnsd(fixtureZones());
  });
  after(async () => {
    await dns?.stop();
    stopAllRbldnsd();
  });

  test('serves the fixture zones: A and TXT for 127.0.0.2, NXDOMAIN for 127.0.0.1', async () => {
    assert.ok(dns.port > 0 && dns.pid > 0);
    assert.equal(dns.address, `127.0.0.1:${dns.port}`);
    assert.ok(processAlive(dns.pid));
    const a = await dns.query('2.0.0.127.bl.test', 'A');
    assert.equal(a?.status, 'NOERROR');
    assert.deepEqual(aRecords(a), ['127.0.0.2']);
    assert.equal(a?.answers[0]?.ttl, 300, 'rbldnsd -t 300');
    const txt = await dns.query('2.0.0.127.bl.test', 'TXT');
    assert.deepEqual(txt?.answers.map((x) => x.data), ['Listed by bl.test, see https://bl.test/127.0.0.2']);
    const nx = await dns.query('1.0.0.127.bl.test', 'A');
    assert.equal(nx?.status, 'NXDOMAIN');
    assert.equal(nx?.answers.length, 0);
  });

  test('the documented fixture answers', async () => {
    const cases: Array<[string, string, string[]]> = [
      ['127.0.30.5', 'bl.test', ['127.0.0.2']],
      ['127.0.31.7', 'bl.test', ['127.0.0.4']],
      ['127.0.32.1', 'bl.test', ['127.255.255.254']],
      ['127.0.33.1', 'bl.test', []],
      ['127.0.30.5', 'bl2.test', ['127.0.0.2']],
      ['127.0.30.200', 'bl2.test', []],
      ['127.0.33.1', 'bl2.test', ['127.0.0.2']],
      ['127.0.0.2', 'bl2.test', ['127.0.0.2']],
      ['127.0.40.9', 'wl.test', ['127.0.10.2']],
      ['127.0.41.9', 'wl.test', ['127.0.10.3']],
      ['127.0.0.2', 'wl.test', ['127.0.10.2']],
      ['127.0.0.1', 'wl.test', []],
      ['2001:db8:30:1::5', 'bl6.test', ['127.0.0.2']],
      ['2001:db8:31::5', 'bl6.test', []],
      ['::ffff:127.0.0.2', 'bl6.test', ['127.0.0.2']],
      ['127.0.0.2', 'bl6.test', ['127.0.0.2']], // bl6-v4.zone: RFC 5782 IPv4 test entry
      ['127.0.0.1', 'bl6.test', []],
    ];
    for (const [addr, zone, want] of cases) {
      const r = await dns.query(dnsblName(addr, zone), 'A');
      assert.deepEqual(aRecords(r), want, `${addr} in ${zone}`);
      assert.equal(r?.status, want.length > 0 ? 'NOERROR' : 'NXDOMAIN', `${addr} in ${zone}`);
    }
  });

  test('IPv6: the reversed-nibble name of ::1 in bl6.test answers 127.0.0.2', async () => {
    const name = dnsblName('::1', 'bl6.test');
    assert.equal(name, `1${'.0'.repeat(31)}.bl6.test`);
    const r = await dns.query(name, 'A');
    assert.equal(r?.status, 'NOERROR');
    assert.deepEqual(aRecords(r), ['127.0.0.2']);
  });

  test('a name outside its zones is REFUSED', async () => {
    const r = await dns.query('2.0.0.127.zen.example', 'A');
    assert.equal(r?.status, 'REFUSED');
    assert.equal(r?.answers.length, 0);
  });

  test('writeZone: the change is served within a few seconds, and a second write right after is seen too', async () => {
    const orig = fixtureZone('bl.zone');
    const without = orig
      .split('\n')
      .filter((l) => !/^127\.0\.0\.2\b/.test(l))
      .join('\n');
    assert.notEqual(without, orig);
    const t0 = Date.now();
    dns.writeZone('bl.test', without);
    const gone = await eventually(() => dns.query('2.0.0.127.bl.test'), (r) => r?.status === 'NXDOMAIN', 5000);
    assert.equal(gone?.status, 'NXDOMAIN', `not reloaded after ${Date.now() - t0} ms; output:\n${dns.output()}`);
    // The rest of the zone is unchanged.
    assert.deepEqual(aRecords(await dns.query('5.30.0.127.bl.test')), ['127.0.0.2']);
    // Restore by file name, within the same second as the previous load.
    dns.writeZone('bl.zone', orig);
    const back = await eventually(() => dns.query('2.0.0.127.bl.test'), (r) => r?.status === 'NOERROR', 5000);
    assert.deepEqual(aRecords(back), ['127.0.0.2'], dns.output());
    // A zone made of two files must be named by file.
    assert.throws(() => dns.writeZone('bl6.test', ''), /several files/);
    assert.throws(() => dns.writeZone('nope.test', ''), /no zone or file/);
  });

  test('pause() makes it silent, resume() brings it back', async () => {
    dns.pause();
    try {
      assert.ok(dns.isPaused());
      assert.equal(await dns.query('2.0.0.127.bl.test', 'A', 300), null, 'a stopped server does not answer');
    } finally {
      dns.resume();
    }
    assert.ok(!dns.isPaused());
    const r = await dns.query('2.0.0.127.bl.test', 'A', 2000);
    assert.deepEqual(aRecords(r), ['127.0.0.2']);
  });

  test('two servers side by side; stop() leaves no process and removes the directory', async () => {
    const other = await startRbldnsd([{ name: 'only.test', type: 'ip4set', file: '127.0.0.2\n' }]);
    assert.notEqual(other.port, dns.port);
    assert.deepEqual(aRecords(await other.query('2.0.0.127.only.test')), ['127.0.0.2']);
    assert.equal((await other.query('2.0.0.127.bl.test'))?.status, 'REFUSED');
    const pid = other.pid;
    other.pause(); // stop() must work on a stopped process too
    await other.stop();
    assert.ok(!processAlive(pid), `pid ${pid} still alive`);
    assert.ok(!fs.existsSync(other.dir));
    assert.equal(await other.query('2.0.0.127.only.test', 'A', 300), null);
    await other.stop(); // idempotent
    // The first one is untouched.
    assert.deepEqual(aRecords(await dns.query('2.0.0.127.bl.test')), ['127.0.0.2']);
  });

  test('a bad zone file makes start fail with rbldnsd\'s own message', async () => {
    await assert.rejects(
      startRbldnsd([{ name: 'bad.test', type: 'nosuchtype' as 'ip4set', file: '' }], { startTimeoutMs: 3000 }),
      /rbldnsd exited during start-up[\s\S]*nosuchtype/,
    );
  });
});
