/*
 * config/load.ts - YAML file -> validated Config; command-line overrides; printing.
 *
 * Exports: loadConfig(path?), parseConfigText(text, source), applyOverrides(cfg, o),
 *   formatConfig(cfg), Overrides.
 * Every failure is a ScreenError('SCR_ERR_CONFIG'): a missing file names the
 * file, a YAML syntax error names file:line:column, a bad value names the key
 * (or, for an override, the flag: `--greet-wait: bad duration "6x"`).
 * Nothing here keeps state: a SIGHUP reload calls loadConfig() again and the
 * caller keeps the old Config when it throws.
 * Paths in the file (access.list, cache.snapshot) are taken as written,
 * i.e. relative to the working directory, as the flags are.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, stringify } from 'yaml';
import { ScreenError } from '../util/errors.js';
import { configToRaw, setPath } from './raw.js';
import { validateConfig, type ConfigIssue } from './validate.js';
import type { Config } from './types.js';

/** Command-line values, as typed; validated by applyOverrides(). */
export interface Overrides {
  listen?: string[];
  backend?: string;
  handoff?: string;
  accessList?: string;
  greetWait?: string;
  greetAction?: string;
  logFormat?: string;
  dnsbl?: string[];
  dnsblThreshold?: string;
  dnsblAction?: string;
  resolver?: string[];
}

/** Each override: its flag, and the config key it sets (errors on that key are reported under the flag). */
const OVERRIDE_FLAGS: Readonly<Record<keyof Overrides, { flag: string; key: string }>> = {
  listen: { flag: '--listen', key: 'listen' },
  backend: { flag: '--backend', key: 'backend.address' },
  handoff: { flag: '--handoff', key: 'backend.handoff' },
  accessList: { flag: '--access-list', key: 'access.list' },
  greetWait: { flag: '--greet-wait', key: 'pregreet.wait' },
  greetAction: { flag: '--greet-action', key: 'pregreet.action' },
  logFormat: { flag: '--log-format', key: 'log.format' },
  dnsbl: { flag: '--dnsbl', key: 'dnsbl.sites' },
  dnsblThreshold: { flag: '--dnsbl-threshold', key: 'dnsbl.threshold' },
  dnsblAction: { flag: '--dnsbl-action', key: 'dnsbl.action' },
  resolver: { flag: '--resolver', key: 'resolver.servers' },
};

/** parseConfigText - YAML text to Config; `source` (a file name) prefixes every message. */
export function parseConfigText(text: string, source: string): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  const err = doc.errors[0];
  if (err !== undefined) {
    const pos = lineCounter.linePos(err.pos[0]);
    const at = `${source}:${pos.line}:${pos.col}`;
    const what = err.message.split('\n')[0] ?? err.message;
    throw new ScreenError('SCR_ERR_CONFIG', `${at}: YAML syntax error: ${what}`, {
      file: source, line: pos.line, column: pos.col, yaml: err.code, errors: doc.errors.length,
    });
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    // e.g. an alias bomb ("billion laughs") or an alias to nothing.
    throw new ScreenError('SCR_ERR_CONFIG', `${source}: ${(e as Error).message}`, { file: source });
  }
  return validateConfig(raw, source);
}

/** loadConfig - the validated Config in `path`, or the defaults when there is no path. */
export function loadConfig(path?: string): Config {
  if (path === undefined) return validateConfig({});
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ScreenError('SCR_ERR_CONFIG', `${path}: cannot read config file (${code})`, { file: path, code });
  }
  return parseConfigText(text, path);
}

/**
 * applyOverrides - cfg with the flags' values applied, validated again.
 * --listen replaces the whole listen list (plain listeners, no PROXY protocol).
 */
export function applyOverrides(cfg: Config, o: Overrides): Config {
  const raw = configToRaw(cfg);
  const used: Array<{ flag: string; key: string }> = [];
  for (const name of Object.keys(OVERRIDE_FLAGS) as Array<keyof Overrides>) {
    const value = o[name];
    if (value === undefined) continue;
    const { flag, key } = OVERRIDE_FLAGS[name];
    used.push({ flag, key });
    // Integers arrive as text from the command line; the validator wants numbers.
    setPath(raw, key, typeof value === 'string' && /^[+-]?\d{1,9}$/.test(value) && key === 'dnsbl.threshold' ? Number(value) : value);
  }
  if (used.length === 0) return cfg;
  try {
    return validateConfig(raw);
  } catch (e) {
    if (!(e instanceof ScreenError)) throw e;
    const issues = (e.details['errors'] ?? []) as ConfigIssue[];
    const lines = issues.map((i) => {
      const u = used.find((x) => i.key === x.key || i.key.startsWith(`${x.key}[`) || i.key.startsWith(`${x.key}.`));
      return { ...i, flag: u?.flag, message: u !== undefined ? `${u.flag}: ${i.problem}` : i.message };
    });
    const first = lines[0];
    const message = lines.length === 1 && first !== undefined
      ? first.message
      : `${lines.length} errors in command-line options:\n  ${lines.map((l) => l.message).join('\n  ')}`;
    throw new ScreenError('SCR_ERR_CONFIG', message, {
      key: first?.key, value: first?.value, flag: first?.flag, errors: lines,
    });
  }
}

/** formatConfig - the effective configuration as YAML, durations written back as "6s". */
export function formatConfig(cfg: Config): string {
  return '# smtpscreen effective configuration\n' + stringify(configToRaw(cfg), { lineWidth: 0 });
}
