/*
 * config/validate.ts - raw (parsed YAML) -> Config: every value parsed and bounded, unknown keys
 * named, the cross-key checks.
 *
 * Exports: validateConfig(raw, source?), ConfigIssue, STRESS_DEFAULTS.
 * validateConfig() deep-merges raw over the defaults, collects every problem and throws one
 * ScreenError('SCR_ERR_CONFIG') with details {key, value} of the first and details.errors
 * listing them all; it never returns a partial Config. Each value is checked against its row in
 * config/schema.ts (type, bounds, allowed values); an unknown key gets a suggestion
 * (config/unknown-key.ts).
 * Stress values: a key whose row has a `stress` field may be set again under `stress:` with the
 * same path (`stress: { pregreet: { wait: 1s } }`), validated as the key itself; server/stress.ts
 * builds the stress personality from these overrides and STRESS_DEFAULTS.
 */
import net from 'node:net';
import { ScreenError } from '../util/errors.js';
import { formatDuration, parseDuration } from '../util/duration.js';
import { parseSite } from './dnsbl-site.js';
import { cidrProblem, formatHostPort, hostPortOf } from './host-port.js';
import { defaultConfig, getPath, isMapping, setPath } from './raw.js';
import { SCHEMA, STRESS_KEYS, STRESS_PREFIX, TOP_KEYS, defaultOf, specFor, type KeySpec } from './schema.js';
import type { Config, ListenConfig } from './types.js';
import { unknownProblem } from './unknown-key.js';
import { checkRefusals } from './refusals.js';
import { parsePolicyUrl } from './policy-url.js';
import { checkRoutes, convertBackends, convertRoutes, type RouteIo } from './routes.js';

export interface ConfigIssue {
  key: string;
  value: unknown;
  /** What is wrong, without the key (callers such as the CLI prefix their own name). */
  problem: string;
  /** `${key}: ${problem}` */
  message: string;
}

const LISTEN_FIELDS = SCHEMA.filter((s) => s.key.startsWith('listen[].'));

/** The sections above each path: "dnsbl.health.listed" -> "dnsbl", "dnsbl.health". */
function sectionsOf(paths: readonly string[]): string[] {
  return paths.flatMap((p) => p.split('.').slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join('.')));
}

/** Every key and section outside `stress:`'s overrides (for "did you mean"). */
const ALL_PATHS = [...TOP_KEYS.map((s) => s.key), ...new Set(sectionsOf(TOP_KEYS.map((s) => s.key)))];
/** Stress overrides are keyed under the stress section: "stress.pregreet.wait". */
const STRESS_PATHS = [...TOP_KEYS.filter((s) => s.key.startsWith(STRESS_PREFIX)).map((s) => s.key), ...STRESS_KEYS.map((s) => STRESS_PREFIX + s.key)];
/** Every section, "stress.pregreet" included. */
const SECTIONS: ReadonlySet<string> = new Set(sectionsOf([...TOP_KEYS.map((s) => s.key), ...STRESS_PATHS]));

const INVALID = Symbol('invalid');

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

class Issues {
  readonly list: ConfigIssue[] = [];
  add(key: string, value: unknown, problem: string): typeof INVALID {
    this.list.push({ key, value, problem, message: `${key}: ${problem}` });
    return INVALID;
  }
}

/** convert - one raw value to its validated form, or INVALID after recording why. */
function convert(spec: KeySpec, v: unknown, key: string, is: Issues): unknown {
  if (v === null && spec.nullable === true) return null;
  const range = (n: number, fmt: (x: number) => string): unknown => {
    if (spec.min !== undefined && n < spec.min) return is.add(key, v, `${show(v)} is below the minimum ${fmt(spec.min)}`);
    if (spec.max !== undefined && n > spec.max) return is.add(key, v, `${show(v)} is above the maximum ${fmt(spec.max)}`);
    return n;
  };
  switch (spec.type) {
    case 'duration': {
      if (typeof v !== 'string' && typeof v !== 'number') return is.add(key, v, `bad duration ${show(v)}: want e.g. "6s", "5m", "1d"`);
      let ms: number;
      try { ms = parseDuration(v); } catch { return is.add(key, v, `bad duration ${show(v)}: want e.g. "300ms", "6s", "5m", "1h", "1d", "1w"`); }
      return range(ms, formatDuration);
    }
    case 'int':
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) return is.add(key, v, `want an integer, got ${show(v)}`);
      return range(v, String);
    case 'bool':
      return typeof v === 'boolean' ? v : is.add(key, v, `want true or false, got ${show(v)}`);
    case 'string':
      if (typeof v !== 'string' || v.trim() === '') return is.add(key, v, `want a non-empty string, got ${show(v)}`);
      // XXX these strings go into SMTP replies: a CR or LF here would forge protocol lines.
      if (/[\x00-\x1f\x7f]/.test(v)) return is.add(key, v, `control characters are not allowed in ${show(v)}`);
      return v;
    case 'path':
      if (typeof v !== 'string' || v === '' || v.includes('\0')) {
        return is.add(key, v, `want a file path${spec.nullable === true ? ' or null' : ''}, got ${show(v)}`);
      }
      return v;
    case 'enum':
      if (typeof v === 'string' && (spec.planned ?? []).includes(v)) {
        return is.add(key, v, `"${v}" is not implemented yet; use ${(spec.values ?? []).join(' or ')}`);
      }
      if (typeof v !== 'string' || !(spec.values ?? []).includes(v)) {
        return is.add(key, v, `want one of ${(spec.values ?? []).join(', ')}; got ${show(v)}`);
      }
      return v;
    case 'hostport': {
      if (typeof v !== 'string') return is.add(key, v, `want "ADDRESS:PORT", got ${show(v)}`);
      const hp = hostPortOf(v.trim(), spec.sinkOk === true);
      return typeof hp === 'string' ? is.add(key, v, `bad address ${show(v)}: ${hp}`) : hp;
    }
    case 'cidr-list': {
      if (!Array.isArray(v)) return is.add(key, v, `want a list of CIDRs, got ${show(v)}`);
      const before = is.list.length;
      const out = v.map((c, i) => {
        const why = typeof c === 'string' ? cidrProblem(c.trim()) : 'want a string';
        return why === null ? (c as string).trim() : is.add(`${key}[${i}]`, c, `bad CIDR ${show(c)}: ${why}`);
      });
      return is.list.length === before ? out : INVALID;
    }
    case 'listen-list':
      return convertListen(v, key, is);
    case 'backend-list':
      return convertBackends(v, key, routeIo(is));
    case 'route-list':
      return convertRoutes(v, key, routeIo(is));
    case 'site-list': {
      if (!Array.isArray(v)) return is.add(key, v, `want a list of DNSBL sites, got ${show(v)}`);
      const before = is.list.length;
      const out = v.map((x, i) => {
        if (typeof x !== 'string') return is.add(`${key}[${i}]`, x, `want a site string like "zen.spamhaus.org*2", got ${show(x)}`);
        try {
          parseSite(x);
          return x.trim();
        } catch (err) {
          return is.add(`${key}[${i}]`, x, (err as Error).message);
        }
      });
      return is.list.length === before ? out : INVALID;
    }
    case 'hostport-list': {
      if (!Array.isArray(v)) return is.add(key, v, `want a list of "ADDRESS:PORT", got ${show(v)}`);
      const before = is.list.length;
      const out = v.map((x, i) => {
        const hp = typeof x === 'string' ? hostPortOf(x.trim(), false) : 'want a string';
        return typeof hp === 'string' ? is.add(`${key}[${i}]`, x, `bad address ${show(x)}: ${hp}`) : hp;
      });
      return is.list.length === before ? out : INVALID;
    }
    case 'string-map': {
      if (!isMapping(v)) return is.add(key, v, `want a mapping of names, got ${show(v)}`);
      const out: Record<string, string> = {};
      const before = is.list.length;
      for (const [k, x] of Object.entries(v)) {
        if (typeof x !== 'string' || x === '' || /[\x00-\x20\x7f]/.test(x)) is.add(`${key}.${k}`, x, `want one printable word, got ${show(x)}`);
        else out[k.toLowerCase()] = x;
      }
      return is.list.length === before ? out : INVALID;
    }
    case 'ip':
      return typeof v === 'string' && net.isIP(v) !== 0 ? v : is.add(key, v, `want an IPv4 or IPv6 address, got ${show(v)}`);
    case 'workers': {
      // A whole number of processes, or auto (one per core, resolved where the workers are started).
      if (v === 'auto') return v;
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) return is.add(key, v, `want a whole number of processes (1..${spec.max ?? 64}) or auto, got ${show(v)}`);
      return range(v, String);
    }
    case 'percent': {
      // "80%" or a bare 80; 0.8 is 0.8 %, not 80 %.
      const m = typeof v === 'string' ? /^\s*(\d{1,3}(?:\.\d+)?)\s*%\s*$/.exec(v) : null;
      const n = typeof v === 'number' ? v : m?.[1] !== undefined ? Number(m[1]) : NaN;
      if (!Number.isFinite(n)) return is.add(key, v, `want a percentage such as "80%", got ${show(v)}`);
      return range(n, (x) => `${x}%`);
    }
    case 'word-list': {
      if (!Array.isArray(v)) return is.add(key, v, `want a list of words, got ${show(v)}`);
      const before = is.list.length;
      const out = v.map((x, i) => (typeof x === 'string' && /^[\x21-\x7e]+$/.test(x)
        ? x : is.add(`${key}[${i}]`, x, `want one printable word (no spaces), got ${show(x)}`)));
      return is.list.length === before ? out : INVALID;
    }
    case 'probe-map': {
      if (!isMapping(v)) return is.add(key, v, `want {domain: {listed: ADDR, unlisted: ADDR}}, got ${show(v)}`);
      const out: Record<string, { listed: string; unlisted: string }> = {};
      const before = is.list.length;
      for (const [k, x] of Object.entries(v)) {
        if (!isMapping(x)) { is.add(`${key}.${k}`, x, `want {listed: ADDR, unlisted: ADDR}, got ${show(x)}`); continue; }
        for (const f of Object.keys(x)) if (f !== 'listed' && f !== 'unlisted') is.add(`${key}.${k}.${f}`, x[f], 'unknown key (want listed or unlisted)');
        const listed = x['listed'] ?? '127.0.0.2';
        const unlisted = x['unlisted'] ?? '127.0.0.1';
        for (const [f, a] of [['listed', listed], ['unlisted', unlisted]] as const) {
          if (typeof a !== 'string' || net.isIP(a) === 0) is.add(`${key}.${k}.${f}`, a, `want an IPv4 or IPv6 address, got ${show(a)}`);
        }
        out[k.toLowerCase()] = { listed: String(listed), unlisted: String(unlisted) };
      }
      return is.list.length === before ? out : INVALID;
    }
    default: {
      const never: never = spec.type;
      throw new Error(`schema: unknown key type ${String(never)}`);
    }
  }
}

/** The validator's converter and issue list, lent to config/routes.ts. */
function routeIo(is: Issues): RouteIo {
  return {
    convert: (rowKey, v, at) => {
      const spec = specFor(rowKey);
      return spec === undefined ? is.add(at, v, 'unknown key') : convert(spec, v, at, is);
    },
    add: (k, v, p) => is.add(k, v, p),
    invalid: INVALID,
    count: () => is.list.length,
  };
}

function convertListen(v: unknown, key: string, is: Issues): unknown {
  if (!Array.isArray(v) || v.length === 0) return is.add(key, v, `want a non-empty list of listeners, got ${show(v)}`);
  const before = is.list.length;
  const out: ListenConfig[] = [];
  const seen = new Set<string>();
  v.forEach((el, i) => {
    const at = `${key}[${i}]`;
    const mine = is.list.length;
    const item: Record<string, unknown> = {};
    for (const f of LISTEN_FIELDS) item[f.key.slice('listen[].'.length)] = defaultOf(f);
    if (typeof el === 'string') el = { address: el };
    if (!isMapping(el)) { is.add(at, el, `want "ADDRESS:PORT" or a mapping, got ${show(el)}`); return; }
    if (!('address' in el)) is.add(`${at}.address`, undefined, 'missing: every listener needs an address');
    for (const [name, raw] of Object.entries(el)) {
      const spec = specFor(`listen[].${name}`);
      if (spec === undefined) { is.add(`${at}.${name}`, raw, unknownProblem(name, LISTEN_FIELDS.map((f) => f.key.slice(9)))); continue; }
      const c = convert(spec, raw, `${at}.${name}`, is);
      if (c !== INVALID) item[name] = c;
    }
    const l = item as unknown as ListenConfig;
    if (is.list.length !== mine) return; // cross-field checks only on a well-formed element
    if (l.proxy_protocol !== 'none' && l.trusted_proxies.length === 0) {
      is.add(`${at}.trusted_proxies`, [], `empty while proxy_protocol is ${l.proxy_protocol}: no upstream may send a header`);
    }
    const addr = formatHostPort(l.address);
    if (seen.has(addr)) is.add(`${at}.address`, addr, `${addr} is listed twice`);
    seen.add(addr);
    out.push(l);
  });
  return is.list.length === before ? out : INVALID;
}

function walk(obj: Record<string, unknown>, prefix: string, cfg: Record<string, unknown>, is: Issues): void {
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix === '' ? k : `${prefix}.${k}`;
    const spec = specFor(path);
    if (spec !== undefined && !path.includes('[]')) {
      const c = convert(spec, v, path, is);
      if (c !== INVALID) setPath(cfg, path, c);
    } else if (SECTIONS.has(path)) {
      if (v === null) continue; // "pregreet:" with every child commented out
      if (isMapping(v)) walk(v, path, cfg, is);
      else is.add(path, v, `want a mapping of keys, got ${show(v)}`);
    } else if (path.startsWith(STRESS_PREFIX)) {
      stressValue(path, v, cfg, is);
    } else {
      is.add(path, v, unknownProblem(path, ALL_PATHS));
    }
  }
}

/** validateConfig - raw (parsed YAML) deep-merged over the defaults; throws one SCR_ERR_CONFIG listing every problem. */
export function validateConfig(raw: unknown, source?: string): Config {
  const cfg = defaultConfig() as unknown as Record<string, unknown>;
  const is = new Issues();
  if (raw === null || raw === undefined) return cfg as unknown as Config;
  if (!isMapping(raw)) is.add('(top)', raw, `want a mapping of keys, got ${show(raw)}`);
  else walk(raw, '', cfg, is);
  checkWatermarks(cfg as unknown as Config, is);
  checkTls(cfg as unknown as Config, is);
  checkAfterPass(cfg as unknown as Config, is);
  checkLog(cfg as unknown as Config, is);
  checkSpf(cfg as unknown as Config, is);
  checkPolicy(cfg as unknown as Config, is);
  checkAdmin(cfg as unknown as Config, is);
  checkRoutes(cfg as unknown as Config, (k, v, p) => is.add(k, v, p));
  checkRefusals(cfg as unknown as Config, (k, v, p) => is.add(k, v, p));
  const first = is.list[0];
  if (first !== undefined) {
    const where = source !== undefined ? `${source}: ` : '';
    const message = is.list.length === 1
      ? `${where}${first.message}`
      : `${where}${is.list.length} configuration errors:\n  ${is.list.map((e) => e.message).join('\n  ')}`;
    throw new ScreenError('SCR_ERR_CONFIG', message, {
      key: first.key, value: first.value, errors: is.list, ...(source !== undefined ? { source } : {}),
    });
  }
  return cfg as unknown as Config;
}

// ---- stress values and cross-key checks -------------------------------------------

/** The numeric stress default of each key that has one ("pregreet.wait" -> 2000); keys whose stress default is "normal" are absent. */
export const STRESS_DEFAULTS: ReadonlyMap<string, number> = (() => {
  const m = new Map<string, number>();
  for (const spec of STRESS_KEYS) {
    if (spec.stress === undefined || spec.stress === 'normal') continue;
    const v = convert(spec, spec.type === 'int' ? Number(spec.stress) : spec.stress, spec.key, new Issues());
    if (typeof v !== 'number') throw new Error(`schema: stress default ${spec.stress} of ${spec.key} is not a valid ${spec.type}`);
    m.set(spec.key, v);
  }
  return m;
})();

/** walk() met "stress.<key>": a stress value for <key>, validated as <key> itself is. */
function stressValue(path: string, v: unknown, cfg: Record<string, unknown>, is: Issues): void {
  const key = path.slice(STRESS_PREFIX.length);
  const spec = specFor(key);
  if (spec?.stress !== undefined) {
    const c = convert(spec, v, path, is);
    if (c !== INVALID) (getPath(cfg, 'stress.overrides') as Record<string, unknown>)[key] = c;
    return;
  }
  if (spec !== undefined || SECTIONS.has(key)) {
    is.add(path, v, `${key} has no stress value; keys with one: ${STRESS_KEYS.map((s) => s.key).join(', ')}`);
  } else {
    is.add(path, v, unknownProblem(path, STRESS_PATHS));
  }
}

/** Hysteresis needs a gap: leave_at below enter_at. */
function checkWatermarks(cfg: Config, is: Issues): void {
  const { enter_at: enter, leave_at: leave } = cfg.stress;
  if (leave >= enter) {
    is.add('stress.leave_at', `${leave}%`, `${leave}% must be below stress.enter_at (${enter}%): the gap keeps the stress state from flapping`);
  }
}

/** The same-connection handoff must tell the backend who the client is: XCLIENT or a PROXY header. */
function checkAfterPass(cfg: Config, is: Issues): void {
  if (cfg.deep.after_pass === 'handoff' && cfg.backend.handoff === 'none') {
    is.add('deep.after_pass', 'handoff', 'handoff needs backend.handoff xclient, proxy-v1 or proxy-v2: with none the backend would see the screener as the client; use reconnect');
  }
}

/** access.spf: domain names (a spf_refresh_min above spf_refresh_max is not an error: the minimum wins). */
function checkSpf(cfg: Config, is: Issues): void {
  cfg.access.spf.forEach((d, i) => {
    if (!/^(?=.{1,253}\.?$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}\.?$/i.test(d)) {
      is.add(`access.spf[${i}]`, d, `want a domain name such as google.com, got "${d}"`);
    }
  });
}

/** STARTTLS needs both files. */
function checkTls(cfg: Config, is: Issues): void {
  const { cert, key } = cfg.tls;
  if (cert !== null && key === null) is.add('tls.key', null, 'tls.cert is set: tls.key is needed too');
  if (cert === null && key !== null) is.add('tls.cert', null, 'tls.key is set: tls.cert is needed too');
}

/** The file destination needs its file; a syslog tag is one word, as syslog parsers read it up to "[" or ":". */
function checkLog(cfg: Config, is: Issues): void {
  if (cfg.log.destination === 'file' && cfg.log.file === null) {
    is.add('log.file', null, 'log.destination is file: set log.file to the file to append to (e.g. /var/log/smtpscreen.log)');
  }
  const tag = cfg.log.syslog.tag;
  if (!/^[A-Za-z0-9_./-]{1,48}$/.test(tag)) {
    is.add('log.syslog.tag', tag, 'want at most 48 letters, digits, "_", ".", "/" or "-" (syslog readers end the tag at a space, "[" or ":"), e.g. postfix/postscreen');
  }
}

/** policy.url parses; the budget stays below the greet wait it must fit in (normal and stress). */
function checkPolicy(cfg: Config, is: Issues): void {
  const p = cfg.policy;
  if (p.url === null) return;
  const t = parsePolicyUrl(p.url);
  if (typeof t === 'string') is.add('policy.url', p.url, t);
  if (!cfg.pregreet.enable) return;
  const stressWait = cfg.stress.overrides['pregreet.wait'] ?? STRESS_DEFAULTS.get('pregreet.wait');
  for (const [key, wait] of [['pregreet.wait', cfg.pregreet.wait], ['stress.pregreet.wait', stressWait]] as const) {
    if (typeof wait === 'number' && p.budget >= wait) {
      is.add('policy.budget', formatDuration(p.budget), `${formatDuration(p.budget)} is not below ${key} (${formatDuration(wait)}): the policy answer must come within the greet wait`);
    }
  }
}

/** One way to give the admin token; a token is one printable word (it travels in a header). */
function checkAdmin(cfg: Config, is: Issues): void {
  const { token, token_file: file } = cfg.admin;
  if (token !== null && file !== null) is.add('admin.token_file', file, 'admin.token is set too: use one of them');
  if (token !== null && !/^[\x21-\x7e]{1,256}$/.test(token)) is.add('admin.token', '(hidden)', 'want 1 to 256 printable characters without spaces');
}
