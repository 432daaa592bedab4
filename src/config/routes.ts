/*
 * config/routes.ts - the `backends:` and `routes:` lists, validated.
 *
 * Exports: convertBackends(), convertRoutes(), checkRoutes(), renderBackends(), renderRoutes(), RouteIo.
 * Each element's fields are checked against their rows in config/schema.ts
 * ("backends[].address", "routes[].match.verdict") through the validator's
 * own convert (passed in: config/validate.ts owns it); errors name the
 * concrete element ("routes[2].backend"). checkRoutes() runs after the whole
 * file is read: a route naming a backend that is neither `default` nor in
 * `backends:` is an error naming the route's key.
 */
import { SCHEMA, defaultOf } from './schema.js';
import { formatHostPort } from './host-port.js';
import { formatDuration } from '../util/duration.js';
import { ROUTE_VERDICTS, type BackendConfig, type Config, type RouteConfig, type RouteVerdict } from './types.js';
import { unknownProblem } from './unknown-key.js';

/** What the validator lends: its converter of one value by schema row (or `invalid`), its issue list. */
export interface RouteIo {
  convert(rowKey: string, v: unknown, at: string): unknown;
  add(key: string, value: unknown, problem: string): unknown;
  readonly invalid: unknown;
  count(): number;
}

const BACKEND_FIELDS = SCHEMA.filter((s) => s.key.startsWith('backends[].')).map((s) => s.key.slice('backends[].'.length));
const MATCH_FIELDS = SCHEMA.filter((s) => s.key.startsWith('routes[].match.')).map((s) => s.key.slice('routes[].match.'.length));
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export function convertBackends(v: unknown, key: string, io: RouteIo): unknown {
  if (!Array.isArray(v)) return io.add(key, v, `want a list of {name, address, ...} mappings, got ${show(v)}`);
  const before = io.count();
  const out: BackendConfig[] = [];
  const names = new Set<string>();
  v.forEach((el, i) => {
    const at = `${key}[${i}]`;
    if (!isMapping(el)) { io.add(at, el, `want a mapping {name, address, handoff, ...}, got ${show(el)}`); return; }
    const item: Record<string, unknown> = {};
    for (const f of SCHEMA) if (f.key.startsWith('backends[].')) item[f.key.slice(11)] = defaultOf(f);
    for (const f of ['name', 'address']) if (!(f in el)) io.add(`${at}.${f}`, undefined, `missing: every backend needs a${f === 'address' ? 'n' : ''} ${f}`);
    for (const [name, raw] of Object.entries(el)) {
      if (!BACKEND_FIELDS.includes(name)) { io.add(`${at}.${name}`, raw, unknownProblem(name, BACKEND_FIELDS)); continue; }
      const c = io.convert(`backends[].${name}`, raw, `${at}.${name}`);
      if (c !== io.invalid) item[name] = c;
    }
    const b = item as unknown as BackendConfig;
    if (typeof b.name === 'string') {
      if (!NAME.test(b.name)) io.add(`${at}.name`, b.name, 'want 1 to 64 letters, digits, "_" or "-"');
      else if (b.name === 'default') io.add(`${at}.name`, b.name, '"default" is backend: (the default backend); pick another name');
      else if (names.has(b.name)) io.add(`${at}.name`, b.name, `backend "${b.name}" is named twice`);
      names.add(b.name);
    }
    out.push(b);
  });
  return io.count() === before ? out : io.invalid;
}

export function convertRoutes(v: unknown, key: string, io: RouteIo): unknown {
  if (!Array.isArray(v)) return io.add(key, v, `want a list of {match: {...}, backend: NAME} mappings, got ${show(v)}`);
  const before = io.count();
  const out: RouteConfig[] = [];
  v.forEach((el, i) => {
    const at = `${key}[${i}]`;
    if (!isMapping(el)) { io.add(at, el, `want a mapping {match: {...}, backend: NAME}, got ${show(el)}`); return; }
    const route: RouteConfig = { match: { verdict: null, score_min: null, score_max: null, stress: null, policy_route: null, tag: null }, backend: '' };
    if (!('backend' in el)) io.add(`${at}.backend`, undefined, 'missing: every route names a backend');
    for (const [name, raw] of Object.entries(el)) {
      if (name === 'backend') {
        const c = io.convert('routes[].backend', raw, `${at}.backend`);
        if (c !== io.invalid) route.backend = c as string;
      } else if (name === 'match') {
        if (raw === null) continue; // an empty match: every client
        if (!isMapping(raw)) { io.add(`${at}.match`, raw, `want a mapping of conditions (${MATCH_FIELDS.join(', ')}), got ${show(raw)}`); continue; }
        for (const [f, x] of Object.entries(raw)) matchField(route, f, x, `${at}.match.${f}`, io);
      } else io.add(`${at}.${name}`, raw, unknownProblem(name, ['match', 'backend']));
    }
    const m = route.match;
    if (m.score_min !== null && m.score_max !== null && m.score_min > m.score_max) {
      io.add(`${at}.match.score_min`, m.score_min, `${m.score_min} is above score_max (${m.score_max}): the route can never match`);
    }
    out.push(route);
  });
  return io.count() === before ? out : io.invalid;
}

function matchField(route: RouteConfig, f: string, x: unknown, at: string, io: RouteIo): void {
  const m = route.match as Record<string, unknown>;
  if (!MATCH_FIELDS.includes(f)) { io.add(at, x, unknownProblem(f, MATCH_FIELDS)); return; }
  if (f === 'verdict') {
    const list = typeof x === 'string' ? [x] : x;
    if (!Array.isArray(list) || list.length === 0) { io.add(at, x, `want a verdict or a list of them (${ROUTE_VERDICTS.join(', ')}), got ${show(x)}`); return; }
    const bad = list.find((w) => !ROUTE_VERDICTS.includes(w as RouteVerdict));
    if (bad !== undefined) { io.add(at, x, `${show(bad)} is not a verdict: want ${ROUTE_VERDICTS.join(', ')}`); return; }
    m['verdict'] = [...new Set(list as RouteVerdict[])];
    return;
  }
  const c = io.convert(`routes[].match.${f}`, x, at);
  if (c !== io.invalid) m[f] = c;
}

/** Every route names a known backend. */
export function checkRoutes(cfg: Config, add: RouteIo['add']): void {
  const names = new Set(['default', ...cfg.backends.map((b) => b.name)]);
  cfg.routes.forEach((r, i) => {
    if (!names.has(r.backend)) add(`routes[${i}].backend`, r.backend, `no backend is named "${r.backend}": want ${[...names].join(', ')}`);
  });
}

/** A backend as written in YAML (docs, configToRaw). */
export function renderBackends(v: readonly BackendConfig[]): unknown {
  return v.map((b) => ({ ...b, address: formatHostPort(b.address), connect_timeout: formatDuration(b.connect_timeout), handshake_timeout: formatDuration(b.handshake_timeout) }));
}

/** Routes as written in YAML: conditions that are not set are left out. */
export function renderRoutes(v: readonly RouteConfig[]): unknown {
  return v.map((r) => ({ match: Object.fromEntries(Object.entries(r.match).filter(([, x]) => x !== null)), backend: r.backend }));
}
