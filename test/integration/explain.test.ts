/*
 * `smtpscreen explain ADDRESS` against a real rbldnsd, an access list and a
 * cache snapshot: one line per source, the score, and the verdict.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { fixtureZones, startRbldnsd, type Rbldnsd } from '../helpers/rbldnsd.js';
import { SNAPSHOT_HEADER } from '../../src/cache/snapshot.js';

const cli = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'scr-explain-'));
let dns: Rbldnsd;
let config: string;

before(async () => {
  dns = await startRbldnsd(fixtureZones());
  const acl = join(dir, 'access');
  writeFileSync(acl, '# test\n127.0.50.0/24 reject\n127.0.51.1 permit\n');
  const snap = join(dir, 'cache');
  const until = Date.now() + 3_600_000;
  writeFileSync(snap, `${SNAPSHOT_HEADER}\n127.0.52.1 1:${until};${until}\n`);
  config = join(dir, 'smtpscreen.yaml');
  writeFileSync(config, stringify({
    listen: ['127.0.0.1:0'],
    access: { list: acl, action: 'enforce' },
    cache: { snapshot: snap },
    dnsbl: { sites: ['bl.test=127.0.0.[2..11]*3', 'bl2.test*2', 'wl.test=127.0.[0..255].[2..3]*-5'], threshold: 3, allowlist_threshold: -1, action: 'drop', reply_map: { 'bl.test': 'public-bl.example' } },
    resolver: { servers: [dns.address], timeout: '500ms' },
  }));
});
after(async () => {
  await dns?.stop();
});

function explain(addr: string, ...extra: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [cli, 'explain', addr, '--config', config, ...extra], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const rows: Array<{ label: string; addr: string; lines: RegExp[] }> = [
  { label: 'listed by two blocklists', addr: '127.0.30.5', lines: [/^dnsbl: bl\.test=127\.0\.0\.\[2\.\.11\]\*3: 127\.0\.0\.2 .*-> listed, weight 3$/m, /^dnsbl: bl2\.test\*2: .*-> listed, weight 2$/m, /^dnsbl: score 5 /m, /^verdict: DNSBL, action drop: 521 .*public-bl\.example$/m] },
  { label: 'allowlisted by wl.test', addr: '127.0.40.9', lines: [/^dnsbl: score -5 /m, /^verdict: DNSBL allowlisted/m] },
  { label: 'on the deny list', addr: '127.0.50.7', lines: [/^access list: .*access:2: 127\.0\.50\.0\/24 reject$/m, /^verdict: DENYLISTED, action enforce/m] },
  { label: 'on the allow list', addr: '127.0.51.1', lines: [/^access list: .*access:3: 127\.0\.51\.1 permit$/m, /^verdict: ALLOWLISTED/m] },
  { label: 'in the cache snapshot', addr: '127.0.52.1', lines: [/^cache: pregreet passed until .*; dnsbl passed until /m, /^verdict: PASS OLD/m] },
  { label: 'unknown everywhere', addr: '127.0.53.1', lines: [/^access list: .*no entry matches$/m, /^cache: .*unknown client/m, /^dnsbl: score 0 /m, /^verdict: new client: gets the teaser and a 6s greet wait/m] },
  { label: 'a reserved error answer is not a listing', addr: '127.0.32.1', lines: [/127\.255\.255\.254 .*-> not listed \(reserved error answer/m] },
];
for (const r of rows) {
  test(`explain: ${r.label}`, () => {
    const x = explain(r.addr);
    assert.equal(x.code, 0, x.err);
    for (const re of r.lines) assert.match(x.out, re);
  });
}

test('explain: --dnsbl-threshold overrides the file; a bad address exits 1', () => {
  const x = explain('127.0.33.9', '--dnsbl-threshold', '2');
  assert.match(x.out, /^dnsbl: score 2 \(threshold 2/m);
  assert.match(x.out, /^verdict: DNSBL, action drop/m);
  const bad = explain('300.1.2.3');
  assert.equal(bad.code, 1);
  assert.match(bad.out + bad.err, /"300\.1\.2\.3" is not an IPv4 or IPv6 address/);
});
