/*
 * cli/args.ts - command line -> command, config file, overrides.
 *
 * Exports: parseArgs(argv), helpText(), FLAGS, Command, ParsedArgs.
 * argv is process.argv.slice(2). Flags take `--flag value` or `--flag=value`.
 * Values are not checked here beyond being present: applyOverrides()
 * (config/load.ts) validates them and names the flag in its errors, so there
 * is one path for every value check. An unknown flag, a missing value, a flag
 * given twice (other than --listen) or a stray word is ScreenError('SCR_ERR_USAGE').
 * FLAGS is the table helpText() and the README read from.
 */
import { ScreenError } from '../util/errors.js';
import type { Overrides } from '../config/load.js';

export type Command = 'run' | 'check-config' | 'demo' | 'explain' | 'probe' | 'cache' | 'help' | 'version';

export interface ParsedArgs {
  command: Command;
  config?: string;
  overrides: Overrides;
  /** Flags that are neither --config nor overrides, by name without dashes (e.g. "print-config": true). */
  extra: Record<string, string | boolean>;
}

interface FlagSpec {
  readonly name: string;           // without the leading "--"
  readonly arg: string | null;     // placeholder for the value; null = boolean switch
  readonly doc: string;
  readonly override?: keyof Overrides;
  readonly repeat?: boolean;
  readonly commands?: readonly Command[]; // only valid with these commands; default: run, check-config, demo
}

export const COMMANDS: ReadonlyArray<readonly [Command, string]> = [
  ['run', 'screen connections and hand clean clients to the backend (default with --config)'],
  ['check-config', 'validate the configuration (and flags) and exit: 0 ok, 1 errors'],
  ['explain', 'explain ADDRESS: what the access list, the cache and each DNSBL site say about it, and the verdict'],
  ['probe', 'probe --as ADDRESS --to HOST:PORT: connect to a running screener as that client (PROXY header), run an SMTP dialogue, say what it did'],
  ['cache', 'cache list|show ADDR|delete ADDR|pass ADDR --ttl 1d|export|import FILE: the verdict cache, of the running screener (admin.socket) or of the snapshot'],
  ['demo', 'run a self-contained demonstration on loopback'],
  ['help', 'print this help'],
  ['version', 'print the version'],
];

export const FLAGS: readonly FlagSpec[] = [
  { name: 'config', arg: 'FILE', doc: 'YAML configuration file (default: built-in defaults)' },
  { name: 'listen', arg: 'ADDR:PORT', override: 'listen', repeat: true,
    doc: 'listen here instead of the configured listeners (repeatable; [::1]:2525 for IPv6)' },
  { name: 'backend', arg: 'ADDR:PORT', override: 'backend', doc: 'backend SMTP server (sink:0 = built-in sink)' },
  { name: 'handoff', arg: 'xclient|proxy-v1|proxy-v2|none', override: 'handoff', doc: 'how the backend learns the client address' },
  { name: 'access-list', arg: 'FILE', override: 'accessList', doc: 'permanent CIDR access list' },
  { name: 'greet-wait', arg: 'DURATION', override: 'greetWait', doc: 'pregreet wait, e.g. 6s (postscreen_greet_wait)' },
  { name: 'greet-action', arg: 'ignore|enforce|drop|shadow', override: 'greetAction', doc: 'action for early talkers (postscreen_greet_action)' },
  { name: 'log-format', arg: 'json|postscreen|journal', override: 'logFormat', doc: 'NDJSON events, postscreen-style syslog lines, or the text for systemd\'s journal' },
  { name: 'dnsbl', arg: 'SITE', override: 'dnsbl', repeat: true, commands: ['run', 'check-config', 'explain'],
    doc: 'DNSBL site in postscreen syntax, e.g. zen.spamhaus.org=127.0.0.[2..11]*3 (repeatable; replaces dnsbl.sites)' },
  { name: 'dnsbl-threshold', arg: 'N', override: 'dnsblThreshold', commands: ['run', 'check-config', 'explain'],
    doc: 'score at which a client fails the DNSBL test (postscreen_dnsbl_threshold)' },
  { name: 'dnsbl-action', arg: 'ignore|enforce|drop|shadow', override: 'dnsblAction', commands: ['run', 'check-config', 'explain'],
    doc: 'action for a client that fails the DNSBL test (postscreen_dnsbl_action)' },
  { name: 'resolver', arg: 'ADDR:PORT', override: 'resolver', repeat: true, commands: ['run', 'check-config', 'explain'],
    doc: 'DNS server for DNSBL lookups (repeatable; default: /etc/resolv.conf)' },
  { name: 'as', arg: 'ADDRESS', commands: ['probe'], doc: 'probe: the client address to pretend to be (sent in a PROXY header)' },
  { name: 'to', arg: 'HOST:PORT', commands: ['probe'], doc: 'probe: the screener listener (proxy_protocol on, trusting the probe\'s address)' },
  { name: 'proxy', arg: 'v1|v2', commands: ['probe'], doc: 'probe: the PROXY header version (default v1)' },
  { name: 'helo', arg: 'NAME', commands: ['probe'], doc: 'probe: the EHLO name (default probe.invalid)' },
  { name: 'mail', arg: 'ADDRESS', commands: ['probe'], doc: 'probe: MAIL FROM (default probe@probe.invalid)' },
  { name: 'rcpt', arg: 'ADDRESS', commands: ['probe'], doc: 'probe: RCPT TO (default postmaster)' },
  { name: 'pregreet', arg: null, commands: ['probe'], doc: 'probe: talk before the greeting (EHLO right after the header)' },
  { name: 'pipeline', arg: null, commands: ['probe'], doc: 'probe: send MAIL and RCPT together without waiting (PIPELINING is not offered)' },
  { name: 'deliver', arg: null, commands: ['probe'], doc: 'probe: go on with DATA and a short test message when RCPT is accepted (default: stop before DATA)' },
  { name: 'print-config', arg: null, commands: ['check-config'], doc: 'print the effective configuration as YAML' },
  { name: 'ttl', arg: 'DURATION', commands: ['cache'], doc: 'cache pass: how long the pass lasts, e.g. 1d' },
  { name: 'snapshot', arg: 'FILE', commands: ['cache'], doc: 'cache: work on this snapshot file (no screener may own it) instead of the running screener' },
  { name: 'socket', arg: 'PATH', commands: ['cache'], doc: 'cache: the running screener\'s admin socket (default: admin.socket of --config)' },
  { name: 'help', arg: null, commands: ['run', 'check-config', 'demo', 'help', 'version'], doc: 'print this help (also -h)' },
  { name: 'version', arg: null, commands: ['run', 'check-config', 'demo', 'help', 'version'], doc: 'print the version' },
];

const BY_NAME = new Map(FLAGS.map((f) => [f.name, f]));
const DEFAULT_COMMANDS: readonly Command[] = ['run', 'check-config', 'demo', 'explain'];

function usage(message: string, details: Record<string, unknown> = {}): ScreenError {
  return new ScreenError('SCR_ERR_USAGE', `${message} (see smtpscreen --help)`, details);
}

function isCommand(word: string): word is Command {
  return COMMANDS.some(([c]) => c === word);
}

/** parseArgs - argv (without node and script) to a command and its options. */
export function parseArgs(argv: string[]): ParsedArgs {
  let command: Command | undefined;
  let address: string | undefined;
  const words: string[] = [];
  const values = new Map<string, Array<string | true>>();
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i] as string;
    if (tok === '-h') { values.set('help', [true]); continue; }
    if (tok === '--') throw usage('unexpected "--"');
    if (!tok.startsWith('--')) {
      if (tok.startsWith('-')) throw usage(`unknown flag "${tok}"`, { flag: tok });
      if (command === 'explain' && address === undefined) {
        address = tok;
        continue;
      }
      if (command === 'cache' && words.length < 2) {
        words.push(tok);
        continue;
      }
      if (command !== undefined) throw usage(`unexpected argument "${tok}"`, { argument: tok });
      if (!isCommand(tok)) throw usage(`unknown command "${tok}"`, { command: tok });
      command = tok;
      continue;
    }
    const eq = tok.indexOf('=');
    const name = tok.slice(2, eq < 0 ? undefined : eq);
    const spec = BY_NAME.get(name);
    if (spec === undefined) throw usage(`unknown flag "--${name}"`, { flag: `--${name}` });
    let value: string | true;
    if (spec.arg === null) {
      if (eq >= 0) throw usage(`--${name} takes no value`, { flag: `--${name}` });
      value = true;
    } else if (eq >= 0) {
      value = tok.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw usage(`--${name} needs a value ${spec.arg}`, { flag: `--${name}` });
      value = next;
      i++;
    }
    if (value === '') throw usage(`--${name} needs a value ${spec.arg ?? ''}`.trimEnd(), { flag: `--${name}` });
    const list = values.get(name) ?? [];
    if (list.length > 0 && spec.repeat !== true && spec.arg !== null) {
      throw usage(`--${name} given more than once`, { flag: `--${name}` });
    }
    list.push(value);
    values.set(name, list);
  }

  if (values.has('help')) return { command: 'help', overrides: {}, extra: {} };
  if (values.has('version')) return { command: 'version', overrides: {}, extra: {} };
  const cmd: Command = command ?? (values.size > 0 ? 'run' : 'help');

  const out: ParsedArgs = { command: cmd, overrides: {}, extra: {} };
  for (const [name, list] of values) {
    const spec = BY_NAME.get(name) as FlagSpec;
    if (!(spec.commands ?? DEFAULT_COMMANDS).includes(cmd)) {
      throw usage(`--${name} does not apply to "${cmd}"`, { flag: `--${name}`, command: cmd });
    }
    const first = list[0] as string | true;
    if (name === 'config') out.config = first as string;
    else if (spec.override === 'listen' || spec.override === 'dnsbl' || spec.override === 'resolver') out.overrides[spec.override] = list as string[];
    else if (spec.override !== undefined) out.overrides[spec.override] = first as string;
    else out.extra[name] = first;
  }
  if (cmd === 'check-config' && out.config === undefined) throw usage('check-config needs --config FILE', { command: cmd });
  if (cmd === 'cache') {
    const sub = words[0];
    const needs: Record<string, number> = { list: 1, export: 1, show: 2, delete: 2, pass: 2, import: 2 };
    if (sub === undefined || needs[sub] === undefined) throw usage(`cache needs one of list, show ADDR, delete ADDR, pass ADDR, export, import FILE${sub !== undefined ? `, not "${sub}"` : ''}`, { command: cmd });
    if (words.length !== needs[sub]) throw usage(`cache ${sub} ${needs[sub] === 2 ? `needs ${sub === 'import' ? 'a FILE' : 'an ADDRESS'}` : 'takes no argument'}`, { command: cmd });
    if (sub === 'pass' && out.extra['ttl'] === undefined) throw usage('cache pass needs --ttl DURATION (e.g. 1d)', { command: cmd });
    out.extra['sub'] = sub;
    if (words[1] !== undefined) out.extra['arg'] = words[1];
  }
  if (cmd === 'explain') {
    if (address === undefined) throw usage('explain needs an ADDRESS', { command: cmd });
    out.extra['address'] = address;
  }
  if (cmd === 'probe') {
    if (out.extra['as'] === undefined || out.extra['to'] === undefined) throw usage('probe needs --as ADDRESS and --to HOST:PORT', { command: cmd });
  }
  return out;
}

/** helpText - every command and flag with a one-line doc. */
export function helpText(): string {
  const col = (s: string, w: number): string => (s.length >= w ? `${s}  ` : s.padEnd(w));
  const lines = [
    'usage: smtpscreen [run] [--config FILE] [flags]',
    '       smtpscreen check-config --config FILE [--print-config] [flags]',
    '       smtpscreen explain ADDRESS [--config FILE] [flags]',
    '       smtpscreen probe --as ADDRESS --to HOST:PORT [--helo NAME] [--mail A] [--rcpt B] [--pregreet] [--pipeline] [--deliver]',
    '       smtpscreen cache list|show ADDR|delete ADDR|pass ADDR --ttl 1d|export|import FILE [--config FILE] [--snapshot FILE] [--socket PATH]',
    '       smtpscreen demo [flags]',
    '       smtpscreen stats [FILE...|-] [--json] [--html FILE] [--follow]   (smtpscreen stats --help)',
    '       smtpscreen --help | --version',
    '',
    'commands:',
    ...COMMANDS.map(([c, doc]) => `  ${col(c, 14)}${doc}`),
    '',
    'flags (--flag VALUE or --flag=VALUE; flags override the config file):',
    ...FLAGS.map((f) => `  ${col(`--${f.name}${f.arg !== null ? ` ${f.arg}` : ''}`, 40)}${f.doc}`),
    '',
  ];
  return lines.join('\n');
}
