/*
 * `smtpscreen explain ADDRESS` and the running screener agree, client by
 * client, on one configuration with an access list, weighted DNSBL sites
 * (the first listing site in the list is not the highest-weighted one), an
 * allowlist threshold and greylisting: both call the same verdict function.
 * The screener runs against real rbldnsd and Postfix; swaks is the client.
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
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { startScreener, type ScreenerProc } from '../helpers/screener.js';
import { runSwaks } from '../helpers/swaks.js';

const cli = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'scr-agree-'));
let dns: Rbldnsd;
let pf: PostfixInstance;
let s: ScreenerProc;
let configFile: string;

before(async () => {
  [dns, pf] = await Promise.all([startRbldnsd(fixtureZones()), startPostfix()]);
  const acl = join(dir, 'access');
  writeFileSync(acl, '127.0.51.1 permit\n127.0.50.0/24 reject\n');
  const config = {
    hostname: 'screen.test', listen: ['127.0.0.1:0'], limits: { max_per_client: 0 },
    backend: { address: `127.0.0.1:${pf.xclientPort}`, handoff: 'xclient' },
    pregreet: { wait: '300ms' },
    access: { list: acl, action: 'enforce' },
    dnsbl: {
      // bl2.test (weight 2) comes first; bl.test (weight 3) is the one the reply must name.
      sites: ['bl2.test*2', 'bl.test=127.0.0.[2..11]*3', 'wl.test=127.0.[0..255].[2..3]*-5'],
      threshold: 3, allowlist_threshold: -1, action: 'enforce', reply_map: { 'bl.test': 'public-bl.example' },
    },
    greylist: { enable: true, policy: 'all', min_delay: '1m', max_delay: '1h' },
    resolver: { servers: [dns.address], timeout: '500ms' },
  };
  configFile = join(dir, 'smtpscreen.yaml');
  writeFileSync(configFile, stringify(config));
  s = await startScreener(config);
});
after(async () => {
  await s?.stop();
  await Promise.all([dns?.stop(), pf?.stop()]);
});

function explainVerdict(addr: string): string {
  const r = spawnSync(process.execPath, [cli, 'explain', addr, '--config', configFile], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  const line = /^verdict: (.*)$/m.exec(r.stdout);
  assert.ok(line !== null, r.stdout);
  return line[1] as string;
}

/** What the screener did with one delivery attempt: the reply to RCPT, or `delivered`. */
async function screenerOutcome(addr: string): Promise<string> {
  const r = await runSwaks({ server: `127.0.0.1:${Number(s.listen[0]?.split(':').pop())}`, localAddress: addr, to: 'x@example.test', from: 'a@example.test', helo: 'agree.test', timeoutS: 15 });
  if (r.code === 0) return 'delivered';
  const m = /<\*\*\s+(\d{3} .*)$/m.exec(r.transcript);
  return m?.[1] ?? `no reply (${r.transcript.slice(-200)})`;
}

const rows: Array<{ label: string; addr: string; explain: RegExp; screener: RegExp }> = [
  { label: 'listed by two sites: enforce names the highest-weighted one, through reply_map', addr: '127.0.30.5',
    explain: /^DNSBL, action enforce: 550 5\.7\.1 Service unavailable; client \[127\.0\.30\.5\] blocked using public-bl\.example at RCPT$/,
    screener: /^550 5\.7\.1 Service unavailable; client \[127\.0\.30\.5\] blocked using public-bl\.example/ },
  { label: 'allowlisted by wl.test: every test passes, greylisting too', addr: '127.0.40.9',
    explain: /^DNSBL allowlisted/, screener: /^delivered$/ },
  { label: 'unknown client: greylisted', addr: '127.0.53.1',
    explain: /greylisted \(new\): 450 at RCPT/, screener: /^450 4\.3\.2 / },
  { label: 'on the allow list', addr: '127.0.51.1', explain: /^ALLOWLISTED/, screener: /^delivered$/ },
  { label: 'on the deny list (enforce)', addr: '127.0.50.7', explain: /^DENYLISTED, action enforce: 550 5\.3\.2/, screener: /^550 5\.3\.2 / },
];

for (const r of rows) {
  test(`explain and the screener agree: ${r.label}`, async () => {
    const said = explainVerdict(r.addr);
    const did = await screenerOutcome(r.addr);
    assert.match(said, r.explain, `explain said: ${said}`);
    assert.match(did, r.screener, `the screener did: ${did}`);
  });
}
