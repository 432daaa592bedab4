/*
 * explain.ts - `smtpscreen explain ADDRESS`: what every source says about one
 * client, without a connection. The tool for "why was my mail refused?".
 *
 * Exports: explain().
 * Reads the access list, the cache snapshot (the running screener's memory is
 * not reachable from here: only what it last saved), the shared store with
 * cache.store: redis (the client's record and its network's greylist state,
 * as every screener on that Redis finds them), and asks each DNSBL
 * site now, fresh (no cache), with the configured resolver. Prints one line
 * per source, the score, and the verdict a new connection would get.
 */
import type { Config } from './config/types.js';
import { networkOf, normalizeAddress } from './net/cidr.js';
import { ACCESS_FILE, parseAccessList } from './checks/access.js';
import { readTextFile } from './util/read-file.js';
import { MemoryStore } from './cache/memory.js';
import { loadSnapshot } from './cache/snapshot.js';
import { peekShared } from './cache/redis-peek.js';
import { decodeRecord, withPasses } from './cache/store.js';
import { TESTS, TestIndex } from './checks/tests.js';
import { DEEP_TESTS } from './checks/deep.js';
import { Dnsbl } from './checks/dnsbl.js';
import type { CheckOutcome } from './checks/check.js';
import { parseSite } from './config/dnsbl-site.js';
import { filterMatches, isReservedErrorAnswer } from './checks/dnsbl-site.js';
import { greylistDecide } from './checks/greylist.js';
import { Resolver } from './dns/resolver.js';
import { reverseName } from './dns/reverse.js';
import type { DnsLookup, LookupResult } from './dns/types.js';
import { makeReplies, stripCrlf } from './smtp/replies.js';
import { afterEarly, atAccept, type EarlyVerdict } from './session/verdict.js';
import { DONE, PASS, TODO, flag } from './session/test-state.js';
import { makePersonalities } from './server/stress.js';
import type { VerdictRecord } from './cache/store.js';

function describe(r: LookupResult): string {
  if (r.status === 'ok') return `${r.records.join(', ')} (ttl ${r.ttl}s)`;
  if (r.status === 'error') return `error: ${r.error}`;
  return r.status;
}

/** The test indexes enabled in `cfg`, as the screener computes them. */
function enabledTests(cfg: Config): number[] {
  const early: number[] = [];
  if (cfg.pregreet.enable) early.push(TestIndex.pregreet);
  if (cfg.dnsbl.sites.length > 0) early.push(TestIndex.dnsbl);
  if (cfg.greylist.enable) early.push(TestIndex.greylist);
  return early;
}

/**
 * Returns the exit code: 0 on a verdict, 1 on a bad address. The verdict is
 * session/verdict.ts's, on the same inputs a new connection would give it,
 * for a client that waits its turn (no pregreet).
 */
export async function explain(cfg: Config, addressText: string, out: (line: string) => void): Promise<number> {
  const client = normalizeAddress(addressText);
  if (client === null) {
    out(`smtpscreen: "${addressText}" is not an IPv4 or IPv6 address`);
    return 1;
  }
  out(`client ${client}`);
  const now = Date.now();
  const personality = makePersonalities(cfg, enabledTests(cfg)).normal;

  // 1. Access list.
  let access: 'permit' | 'reject' | 'dunno' | null = null;
  const accessFile = cfg.access.list;
  if (accessFile === null) out('access list: none configured');
  else {
    const hit = parseAccessList(readTextFile(accessFile, ACCESS_FILE), accessFile).match(client);
    if (hit === undefined) out(`access list: ${cfg.access.list}: no entry matches`);
    else {
      access = hit.action;
      out(`access list: ${cfg.access.list}:${hit.line}: ${hit.entry} ${hit.action}`);
    }
  }

  // 2. Cache (the snapshot a running screener last saved).
  const store = new MemoryStore(cfg.cache.max_entries);
  let record: VerdictRecord | null = null;
  if (cfg.cache.snapshot === null) out('cache: no snapshot configured (a running screener\'s memory cache is not visible from here)');
  else {
    const r = await loadSnapshot(store, cfg.cache.snapshot, now);
    record = store.get(client) ?? null;
    if (!r.ok) out(`cache: ${cfg.cache.snapshot}: unreadable (${r.error ?? 'error'})`);
    else if (record === null) out(`cache: ${cfg.cache.snapshot}: unknown client (or every pass expired)`);
    else {
      out(`cache: ${passesText(record, now)}`);
    }
  }

  // 2b. The shared store: what every screener on that Redis finds (a running screener asks it
  // only for a client its memory does not know; here both are read and the later pass counts).
  const g = cfg.greylist;
  const network = networkOf(client, g.ipv4_prefix, g.ipv6_prefix);
  let netRecord: VerdictRecord | null = null;
  if (cfg.cache.store === 'redis') {
    const peek = await peekShared(cfg.cache.redis, network === null ? [client] : [client, `net:${network}`]);
    const [text, netText] = peek.values ?? [];
    let shared: VerdictRecord | null = null;
    try {
      shared = text == null ? null : decodeRecord(text);
      netRecord = netText == null ? null : decodeRecord(netText);
    } catch (err) {
      out(`cache: ${peek.store}: unreadable record (${(err as Error).message})`);
    }
    if (peek.error !== undefined) out(`cache: ${peek.store}: not read (${peek.error}); the verdict below is without it`);
    else if (shared === null) out(`cache: ${peek.store}: unknown client (or every pass expired)`);
    else {
      const rec = shared;
      out(`cache: ${peek.store}: ${passesText(rec, now)}`);
      const local = record;
      record = local === null ? rec : withPasses(local, Array.from(rec, (until, i) => [i, Math.max(until, local[i] ?? 0)] as const));
    }
    if (netRecord !== null && network !== null) {
      const seen = -(netRecord[TestIndex.greylist] ?? 0);
      if (seen > 0) out(`greylist: ${network} first seen ${new Date(seen).toISOString()} (${peek.store})`);
    }
  }

  const accept = atAccept({ now, personality, access, record });
  switch (accept.next) {
    case 'allowlisted':
      out('verdict: ALLOWLISTED: handed to the backend at once, no tests');
      return 0;
    case 'pass-old':
      out('verdict: PASS OLD: every enabled test has a valid pass; handed to the backend at once');
      return 0;
    case 'denylisted':
      if (accept.action === 'drop') {
        out('verdict: DENYLISTED, action drop: 521 and close');
        return 0;
      }
      if (accept.action === 'enforce') {
        out('verdict: DENYLISTED, action enforce: 550 5.3.2 at RCPT (envelope logged)');
        return 0;
      }
      if (accept.action === 'shadow') out(`access list: shadow: would ${accept.would ?? 'reject'}; the tests go on as if it were not listed`);
      break;
    case 'test':
      break;
  }

  // 3. DNSBL sites, asked now (fresh: no cache), through the screener's own scoring.
  let dnsbl: CheckOutcome | null = null;
  // XXX explain does not ask the policy service (a call has effects there: its own cache, logs); smtpscreen probe does, through the screener.
  if (cfg.policy.url !== null) out(`policy: ${cfg.policy.url} is not asked by explain: the verdict below is without its answer; smtpscreen probe asks it through the running screener`);
  if (cfg.dnsbl.sites.length === 0) out('dnsbl: no sites configured');
  else {
    const servers = cfg.resolver.servers.length > 0 ? cfg.resolver.servers : Resolver.fromResolvConf();
    const resolver = new Resolver({ servers, timeoutMs: cfg.resolver.timeout, tries: cfg.resolver.tries, deadlineMs: cfg.dnsbl.timeout });
    const answers = new Map<string, LookupResult>();
    const fresh: DnsLookup = {
      lookup: async (name, type) => {
        const r = await resolver.lookup(name, type, true);
        if (type === 'A') answers.set(name, r);
        return r;
      },
    };
    try {
      const d = cfg.dnsbl;
      const test = new Dnsbl(d.sites, {
        threshold: d.threshold, allowlistThreshold: d.allowlist_threshold, ttlMinMs: d.ttl_min, ttlMaxMs: d.ttl_max,
        slowWarningMs: d.slow_warning, timeoutMs: d.timeout, txt: d.txt, replyMap: d.reply_map,
        health: { enable: false, intervalMs: d.health.interval, listed: d.health.listed, unlisted: d.health.unlisted, errorLimit: d.health.error_limit, sites: d.health.sites },
      }, fresh, reverseName, () => undefined);
      const q = await new Promise<ReturnType<Dnsbl['start']>>((resolve) => {
        const started = test.start(client, null, (_o, done) => resolve(done));
        if (started === null) resolve(null);
      });
      if (q !== null) {
        // TXT lookups (dnsbl.txt) are started by the answers: let them land.
        await new Promise((r) => setTimeout(r, 0));
        dnsbl = test.outcome(q);
      }
      for (const site of cfg.dnsbl.sites.map(parseSite)) {
        const name = reverseName(client, site.domain);
        const r: LookupResult = (name === null ? undefined : answers.get(name)) ?? { status: 'error', error: 'bad-name' };
        const records = r.status === 'ok' ? r.records : [];
        const listed = records.some((a) => filterMatches(site, a));
        const reserved = records.some(isReservedErrorAnswer);
        out(`dnsbl: ${site.spec}: ${describe(r)} -> ${listed ? `listed, weight ${site.weight}` : 'not listed'}` +
          `${reserved ? ' (reserved error answer: the site refused the query)' : ''}`);
      }
    } finally {
      await resolver.close();
    }
    out(`dnsbl: score ${dnsbl?.score ?? 0} (threshold ${cfg.dnsbl.threshold}${cfg.dnsbl.allowlist_threshold < 0 ? `, allowlist at ${cfg.dnsbl.allowlist_threshold} or below` : ''})`);
  }

  // 4. The verdict at the end of the greet wait, for a client that waited its turn.
  let state = 0;
  if (cfg.pregreet.enable) state |= flag(TestIndex.pregreet, TODO | PASS | DONE);
  if (dnsbl !== null) state |= flag(TestIndex.dnsbl, TODO | DONE);
  const v = afterEarly({
    client, now, personality, replies: makeReplies(cfg.hostname, cfg.banner), state, record,
    enforced: null, ignored: accept.next === 'denylisted' && accept.action === 'ignore',
    shadowed: accept.next === 'denylisted' && accept.action === 'shadow', checks: dnsbl === null ? [] : [{ test: TestIndex.dnsbl, outcome: dnsbl }],
    // A look only: explain never records a first attempt.
    greylist: (net) => greylistDecide((netRecord ?? store.get(`net:${net}`))?.[TestIndex.greylist] ?? 0, now,
      { minDelayMs: g.min_delay, maxDelayMs: g.max_delay, ttlMs: g.ttl }),
  });
  out(`verdict: ${verdictText(cfg, v)}`);
  return 0;
}

/** The valid passes of a record ("pregreet passed until ...; dnsbl passed until ..."), or "no valid pass". */
function passesText(rec: VerdictRecord, now: number): string {
  const parts = TESTS.map((t) => {
    const until = rec[TestIndex[t]] ?? 0;
    return until > now ? `${t} passed until ${new Date(until).toISOString()}` : null;
  }).filter((x): x is string => x !== null);
  return parts.length > 0 ? parts.join('; ') : 'no valid pass';
}

function verdictText(cfg: Config, v: EarlyVerdict): string {
  const deep = DEEP_TESTS.filter((t) => cfg.deep[t].enable);
  const wait = cfg.pregreet.enable ? `gets the teaser and a ${cfg.pregreet.wait / 1000}s greet wait; talking early means ${cfg.pregreet.action}; ` : '';
  switch (v.next) {
    case 'drop':
      return `DNSBL, action drop: ${stripCrlf(v.reply ?? '')}`;
    case 'enforce':
      return `DNSBL, action enforce: ${stripCrlf(v.reply ?? '')} at RCPT`;
    case 'greylist': {
      const d = v.greylist?.decision;
      const why = d === undefined || d.verdict !== 'defer' ? '' : d.reason === 'early' ? ` (retried too early: ${Math.ceil(d.waitMs / 1000)}s to go)` : ` (${d.reason})`;
      return `new client: ${wait}greylisted${why}: 450 at RCPT; a retry from ${v.greylist?.network ?? 'its network'} after ${cfg.greylist.min_delay / 1000}s passes`;
    }
    case 'deep':
      if (v.shadowed === true) {
        const would = v.failedChecks.map((f) => `${f.outcome.event} would ${f.would ?? f.action}`);
        if (v.greylist?.shadow === true) would.push('greylisting would defer');
        return `shadow mode: ${would.join('; ') || 'a shadowed failure (access list)'}; then the deep tests (${deep.join(', ')}) in the dummy engine, as for a client that passed`;
      }
      return `new client: ${wait}without a valid pass of the deep tests (${deep.join(', ')}) it gets the dummy engine instead of the handoff:` +
        ' 450 at RCPT, and PASS OLD on its next connection once it passed them';
    case 'handoff':
      if (v.name === 'policy-allowlisted') return 'policy permit: passes every test at once (PASS NEW), handed to the backend';
      if (v.name === 'shadow') {
        const would = v.failedChecks.map((f) => `${f.outcome.event} would ${f.would ?? f.action}: ${stripCrlf(f.outcome.reply(f.would === 'drop' ? 521 : 550))}`);
        if (v.greylist?.shadow === true) would.push('greylisting would defer: 450 at RCPT');
        return `shadow mode: ${would.length > 0 ? would.join('; ') : 'a shadowed failure (access list)'}; handed to the backend as if it had passed, the failed test runs again next time`;
      }
      if (v.name === 'dnsbl-allowlisted') return 'DNSBL allowlisted: passes every test at once (PASS NEW), handed to the backend';
      if (v.name === 'ignored') return `a failure under ignore: ${wait}handed to the backend, nothing remembered`;
      if (v.name === 'untested') return 'new client: no tests apply; handed to the backend';
      return `new client: ${wait}waiting its turn means PASS NEW and handoff`;
  }
}
