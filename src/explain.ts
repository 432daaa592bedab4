/*
 * explain.ts - `smtpscreen explain ADDRESS`: what every source says about one
 * client, without a connection. The tool for "why was my mail refused?".
 *
 * Exports: explain().
 * Reads the access list, the cache snapshot (the running screener's memory is
 * not reachable from here: only what it last saved), and asks each DNSBL
 * site now, fresh (no cache), with the configured resolver. Prints one line
 * per source, the score, and the verdict a new connection would get.
 */
import type { Config } from './config/types.js';
import { normalizeAddress } from './net/cidr.js';
import { ACCESS_FILE, parseAccessList } from './checks/access.js';
import { readTextFile } from './util/read-file.js';
import { MemoryStore } from './cache/memory.js';
import { loadSnapshot } from './cache/snapshot.js';
import { TESTS, TestIndex, type TestId } from './checks/tests.js';
import { DEEP_TESTS } from './checks/deep.js';
import { parseSite } from './config/dnsbl-site.js';
import { filterMatches, isReservedErrorAnswer } from './checks/dnsbl-site.js';
import { Resolver } from './dns/resolver.js';
import { reverseName } from './dns/reverse.js';
import type { LookupResult } from './dns/types.js';

function describe(r: LookupResult): string {
  if (r.status === 'ok') return `${r.records.join(', ')} (ttl ${r.ttl}s)`;
  if (r.status === 'error') return `error: ${r.error}`;
  return r.status;
}

/** Returns the exit code: 0 on a verdict, 1 on a bad address. */
export async function explain(cfg: Config, addressText: string, out: (line: string) => void): Promise<number> {
  const client = normalizeAddress(addressText);
  if (client === null) {
    out(`smtpscreen: "${addressText}" is not an IPv4 or IPv6 address`);
    return 1;
  }
  out(`client ${client}`);
  const now = Date.now();
  let verdict: string | null = null;

  // 1. Access list.
  const accessFile = cfg.access.list;
  if (accessFile === null) out('access list: none configured');
  else {
    const hit = parseAccessList(readTextFile(accessFile, ACCESS_FILE), accessFile).match(client);
    if (hit === undefined) out(`access list: ${accessFile}: no entry matches`);
    else {
      out(`access list: ${accessFile}:${hit.line}: ${hit.entry} ${hit.action}`);
      if (hit.action === 'permit') verdict = 'ALLOWLISTED: handed to the backend at once, no tests';
      if (hit.action === 'reject') {
        verdict = {
          drop: 'DENYLISTED, action drop: 521 and close',
          enforce: 'DENYLISTED, action enforce: 550 5.3.2 at RCPT (envelope logged)',
          ignore: 'DENYLISTED, action ignore: logged only; the other tests decide',
        }[cfg.access.action];
        if (cfg.access.action === 'ignore') verdict = null;
      }
    }
  }

  // 2. Cache (the snapshot a running screener last saved).
  const enabled: string[] = [];
  if (cfg.pregreet.enable) enabled.push('pregreet');
  if (cfg.dnsbl.sites.length > 0) enabled.push('dnsbl');
  const deep = DEEP_TESTS.filter((t) => cfg.deep[t].enable);
  enabled.push(...deep);
  let cachedAll = false;
  if (cfg.cache.snapshot === null) out('cache: no snapshot configured (a running screener\'s memory cache is not visible from here)');
  else {
    const store = new MemoryStore(cfg.cache.max_entries);
    const r = await loadSnapshot(store, cfg.cache.snapshot, now);
    const rec = store.get(client);
    if (!r.ok) out(`cache: ${cfg.cache.snapshot}: unreadable (${r.error ?? 'error'})`);
    else if (rec === undefined) out(`cache: ${cfg.cache.snapshot}: unknown client (or every pass expired)`);
    else {
      const parts = TESTS.map((t) => {
        const until = rec[TestIndex[t]] ?? 0;
        return until > now ? `${t} passed until ${new Date(until).toISOString()}` : null;
      }).filter((x): x is string => x !== null);
      out(`cache: ${parts.length > 0 ? parts.join('; ') : 'no valid pass'}`);
      cachedAll = enabled.length > 0 && enabled.every((t) => (rec[TestIndex[t as TestId]] ?? 0) > now);
    }
  }

  // 3. DNSBL sites, asked now.
  let score = 0;
  const hits: string[] = [];
  if (cfg.dnsbl.sites.length === 0) out('dnsbl: no sites configured');
  else {
    const servers = cfg.resolver.servers.length > 0 ? cfg.resolver.servers : Resolver.fromResolvConf();
    const resolver = new Resolver({ servers, timeoutMs: cfg.resolver.timeout, tries: cfg.resolver.tries, deadlineMs: cfg.dnsbl.timeout });
    try {
      const sites = cfg.dnsbl.sites.map(parseSite);
      const answers = new Map<string, LookupResult>();
      await Promise.all([...new Set(sites.map((s) => s.domain))].map(async (domain) => {
        const name = reverseName(client, domain);
        answers.set(domain, name === null ? { status: 'error', error: 'bad-name' } : await resolver.lookup(name, 'A', true));
      }));
      for (const site of sites) {
        const r = answers.get(site.domain) as LookupResult;
        const records = r.status === 'ok' ? r.records : [];
        const matched = records.filter((a) => filterMatches(site, a));
        const reserved = records.filter(isReservedErrorAnswer);
        const listed = matched.length > 0;
        if (listed) {
          score += site.weight;
          hits.push(site.domain);
        }
        out(`dnsbl: ${site.spec}: ${describe(r)} -> ${listed ? `listed, weight ${site.weight}` : 'not listed'}` +
          `${reserved.length > 0 ? ' (reserved error answer: the site refused the query)' : ''}`);
      }
    } finally {
      await resolver.close();
    }
    out(`dnsbl: score ${score} (threshold ${cfg.dnsbl.threshold}${cfg.dnsbl.allowlist_threshold < 0 ? `, allowlist at ${cfg.dnsbl.allowlist_threshold} or below` : ''})`);
  }

  if (verdict === null && cfg.dnsbl.sites.length > 0) {
    if (score >= cfg.dnsbl.threshold) {
      const site = cfg.dnsbl.reply_map[hits[0] ?? ''] ?? hits[0] ?? '';
      verdict = {
        drop: `DNSBL, action drop: 521 5.7.1 ... blocked using ${site}`,
        enforce: `DNSBL, action enforce: 550 5.7.1 at RCPT, blocked using ${site}`,
        ignore: null,
      }[cfg.dnsbl.action];
    } else if (cfg.dnsbl.allowlist_threshold < 0 && score <= cfg.dnsbl.allowlist_threshold) {
      verdict = 'DNSBL allowlisted: passes every test at once (PASS NEW), handed to the backend';
    }
  }
  if (verdict === null && cachedAll) verdict = 'PASS OLD: every enabled test has a valid pass; handed to the backend at once';
  if (verdict === null) {
    verdict = cfg.pregreet.enable
      ? `new client: gets the teaser and a ${cfg.pregreet.wait / 1000}s greet wait; talking early means ${cfg.pregreet.action}, waiting its turn means PASS NEW and handoff`
      : 'new client: no tests apply; handed to the backend';
    if (deep.length > 0) {
      verdict += `; without a valid pass of the deep tests (${deep.join(', ')}) it gets the dummy engine instead of the handoff:` +
        ' 450 at RCPT, and PASS OLD on its next connection once it passed them';
    }
  }
  out(`verdict: ${verdict}`);
  return 0;
}
