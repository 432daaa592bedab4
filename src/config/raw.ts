/*
 * config/raw.ts - the YAML-shaped ("raw") side of a Config: defaults, paths, values written back.
 *
 * Exports: defaultConfig(), defaultText(spec), configToRaw(cfg), setPath(obj, path, v),
 *   getPath(obj, path), isMapping(v).
 * configToRaw() gives what config/validate.ts accepts (durations as "6s", addresses as text,
 * percentages as "80%"), in schema order, with the stress values under `stress:`;
 * defaultText() is a default as a reader would write it (docs, example config).
 */
import { formatDuration } from '../util/duration.js';
import { formatHostPort } from './host-port.js';
import { STRESS_KEYS, STRESS_PREFIX, TOP_KEYS, defaultOf, type KeySpec } from './schema.js';
import type { BackendConfig, Config, HostPort, ListenConfig, RouteConfig } from './types.js';
import { renderBackends, renderRoutes } from './routes.js';

/** A YAML mapping (not null, not a list). */
export function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** setPath - obj.a.b = value for path "a.b", creating the sections on the way. */
export function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  const last = parts.pop() as string;
  let o = obj;
  for (const p of parts) o = isMapping(o[p]) ? (o[p] as Record<string, unknown>) : (o[p] = {});
  o[last] = value;
}

/** getPath - obj.a.b for path "a.b"; undefined where a section is missing. */
export function getPath(obj: unknown, path: string): unknown {
  let o = obj;
  for (const p of path.split('.')) o = typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[p] : undefined;
  return o;
}

/** defaultConfig - every key at its default, no stress overrides. */
export function defaultConfig(): Config {
  const cfg: Record<string, unknown> = {};
  for (const spec of TOP_KEYS) setPath(cfg, spec.key, defaultOf(spec));
  setPath(cfg, 'stress.overrides', {});
  return cfg as unknown as Config;
}

/** defaultText - the default as a reader would write it in YAML (docs, example config). */
export function defaultText(spec: KeySpec): string {
  if (spec.defaultDoc !== undefined) return spec.defaultDoc;
  const raw = renderValue(spec, defaultOf(spec));
  return typeof raw === 'string' ? raw : JSON.stringify(raw);
}

function renderValue(spec: KeySpec, v: unknown): unknown {
  switch (spec.type) {
    case 'duration': return typeof v === 'number' ? formatDuration(v) : v;
    case 'hostport': return formatHostPort(v as HostPort);
    case 'listen-list':
      return (v as ListenConfig[]).map((l) => ({
        address: formatHostPort(l.address), proxy_protocol: l.proxy_protocol, trusted_proxies: [...l.trusted_proxies],
        personality: l.personality,
      }));
    case 'cidr-list': return [...(v as string[])];
    case 'site-list': return [...(v as string[])];
    case 'hostport-list': return (v as HostPort[]).map(formatHostPort);
    case 'word-list': return [...(v as string[])];
    case 'percent': return `${String(v)}%`;
    case 'backend-list': return renderBackends(v as BackendConfig[]);
    case 'route-list': return renderRoutes(v as RouteConfig[]);
    default: return v;
  }
}

/** configToRaw - a Config as the YAML-shaped object validateConfig accepts (durations as "6s"), in schema order. */
export function configToRaw(cfg: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const spec of TOP_KEYS) setPath(out, spec.key, renderValue(spec, getPath(cfg, spec.key)));
  for (const spec of STRESS_KEYS) {
    if (Object.hasOwn(cfg.stress.overrides, spec.key)) setPath(out, `${STRESS_PREFIX}${spec.key}`, renderValue(spec, cfg.stress.overrides[spec.key]));
  }
  return out;
}
