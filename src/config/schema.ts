/*
 * config/schema.ts - every configuration key, its type, default, unit and doc,
 * and the strict validator built on that table.
 *
 * Exports: SCHEMA (the table), KeySpec, KeyType, ConfigIssue, RENAMED,
 *   specFor(key), defaultText(spec), defaultConfig(), validateConfig(raw, source?),
 *   configToRaw(cfg), parseHostPort(text, opts?), formatHostPort(hp), setPath(obj, path, v),
 *   STRESS_KEYS, STRESS_DEFAULTS (keys that have a stress value; `stress:` overrides them).
 * SCHEMA is the single source: the validator, the defaults, the README's
 * reference table and the example config are all read from it. Rows for the
 * elements of a list are keyed "listen[].address"; errors name the concrete
 * element ("listen[1].address", "listen[0].trusted_proxies[2]").
 * validateConfig() collects every problem and throws one
 * ScreenError('SCR_ERR_CONFIG') with details {key, value} of the first and
 * details.errors listing them all; it never returns a partial Config.
 */
import net from 'node:net';
import os from 'node:os';
import { Address4, Address6 } from 'ip-address';
import { ScreenError } from '../util/errors.js';
import { formatDuration, parseDuration } from '../util/duration.js';
import type { Config, HostPort, ListenConfig } from './types.js';
import { parseSite } from './dnsbl-site.js';

export type KeyType =
  | 'duration' | 'int' | 'string' | 'bool' | 'enum' | 'hostport' | 'cidr-list' | 'path' | 'listen-list'
  | 'site-list' | 'hostport-list' | 'string-map' | 'ip' | 'probe-map' | 'word-list' | 'percent';

export interface KeySpec {
  /** Dotted path; "listen[].x" for a field of each listen element. */
  readonly key: string;
  readonly type: KeyType;
  /** Validated form (ms for durations, HostPort for addresses); a function when computed at start. */
  readonly default: unknown;
  /** Shown instead of the default in docs when the default is computed. */
  readonly defaultDoc?: string;
  readonly unit?: string;
  readonly doc: string;
  /** enum: the allowed values. */
  readonly values?: readonly string[];
  /** enum: values planned but not implemented yet; the error names them as such. */
  readonly planned?: readonly string[];
  /** int: bounds; duration: bounds in ms. */
  readonly min?: number;
  readonly max?: number;
  /** null is a valid value (path keys: "none"). */
  readonly nullable?: boolean;
  /** hostport: the word "sink" (built-in sink backend) is accepted. */
  readonly sinkOk?: boolean;
  /** The postscreen/Postfix equivalent and its default, for the README's side-by-side table. */
  readonly postscreen: string | null;
  readonly postscreenDefault: string | null;
  /** Why smtpscreen differs from postscreen here, when it does on purpose. */
  readonly note?: string;
  /**
   * The key has a stress value (server/stress.ts): its default as written in YAML ("2s", "1"), or
   * "normal" for a key that may be set under `stress:` and otherwise keeps its normal value.
   * XXX A numeric stress default never exceeds the normal value (smaller is stricter for
   * every such key); keys without this field cannot be set under `stress:`.
   */
  readonly stress?: string;
}

const ACTIONS = ['ignore', 'enforce', 'drop'] as const;
const HP = (host: string, port: number): HostPort => ({ host, port });

export const SCHEMA: readonly KeySpec[] = [
  { key: 'hostname', type: 'string', default: () => os.hostname(), defaultDoc: 'os.hostname()',
    doc: 'Name in the 220 banner and in replies.', postscreen: 'myhostname', postscreenDefault: 'system hostname' },
  { key: 'banner', type: 'string', default: 'ESMTP',
    doc: 'Text after the hostname in the 220 banner.', postscreen: 'postscreen_greet_banner',
    postscreenDefault: '$smtpd_banner ($myhostname ESMTP $mail_name)',
    note: 'no software name by default: it only helps fingerprinting' },
  { key: 'listen', type: 'listen-list',
    default: [{ address: HP('127.0.0.1', 2525), proxy_protocol: 'none', trusted_proxies: [], personality: 'auto' }],
    doc: 'Listeners: "ADDR:PORT" strings or {address, proxy_protocol, trusted_proxies, personality} mappings.',
    postscreen: 'master.cf "smtp inet ... postscreen"', postscreenDefault: 'smtp (port 25), all interfaces' },
  { key: 'listen[].address', type: 'hostport', default: HP('127.0.0.1', 2525),
    doc: 'IPv4 or [IPv6] literal and port to listen on.', postscreen: 'master.cf service name', postscreenDefault: 'smtp' },
  { key: 'listen[].proxy_protocol', type: 'enum', values: ['none', 'v1', 'v2', 'any'], default: 'none',
    doc: 'PROXY protocol header expected from the upstream load balancer.',
    postscreen: 'postscreen_upstream_proxy_protocol', postscreenDefault: '(empty: none)' },
  { key: 'listen[].trusted_proxies', type: 'cidr-list', default: [],
    doc: 'Networks allowed to send a PROXY header; connections from elsewhere are closed.',
    postscreen: null, postscreenDefault: null, note: 'postscreen trusts any peer once the protocol is on' },
  // ---- stress-dependent personality (issue 5; stress values: the `stress` field of each row) ----
  { key: 'listen[].personality', type: 'enum', values: ['auto', 'normal', 'stress'], default: 'auto',
    doc: 'Personality of this listener\'s new connections: auto (the stress personality while the screener is under stress), or pinned to normal or stress (tests, a dedicated port for hostile networks).',
    postscreen: 'master.cf "-o stress=yes" / "-o stress="', postscreenDefault: '(none: master decides)' },
  { key: 'stress.enter_at', type: 'percent', default: 90, min: 1, max: 100, unit: '% of max_connections',
    doc: 'New connections get the stress personality (each key\'s stress value) once the open connections reach this share of limits.max_connections; STRESS state enter is logged.',
    postscreen: '(built in) 0.9 × postscreen_pre_queue_limit', postscreenDefault: '90%' },
  { key: 'stress.leave_at', type: 'percent', default: 70, min: 0, max: 99, unit: '% of max_connections',
    doc: 'The stress personality ends when the open connections fall to this share or below (below stress.enter_at, so that it does not flap); STRESS state leave is logged.',
    postscreen: '(built in) 0.7 × postscreen_pre_queue_limit', postscreenDefault: '70%' },
  // ---- end of the stress rows ----
  { key: 'limits.max_connections', type: 'int', default: 19000, min: 1, unit: 'connections',
    doc: 'Global connection limit; above it clients get 421 4.3.2 (keep below the fd limit).',
    postscreen: 'postscreen_pre_queue_limit / process limit', postscreenDefault: '$default_process_limit (100)',
    note: 'one event loop holds tens of thousands of sockets; bounded by file descriptors, not processes' },
  { key: 'limits.max_per_client', type: 'int', default: 50, min: 0, unit: 'connections',
    doc: 'Concurrent connections per client address; 0 = unlimited.',
    postscreen: 'postscreen_client_connection_count_limit', postscreenDefault: '$smtpd_client_connection_count_limit (50)' },
  { key: 'limits.backlog', type: 'int', default: 4096, min: 1, max: 65535, unit: 'connections',
    doc: 'listen(2) backlog.', postscreen: null, postscreenDefault: null },
  { key: 'limits.proxy_timeout', type: 'duration', default: 5000, min: 1, unit: 'ms',
    doc: 'Time allowed to receive a PROXY header.',
    postscreen: 'postscreen_upstream_proxy_timeout', postscreenDefault: '5s' },
  { key: 'access.list', type: 'path', default: null, nullable: true,
    doc: 'Permanent CIDR access list file (permit/reject/dunno, first match wins); null for none.',
    postscreen: 'postscreen_access_list', postscreenDefault: 'permit_mynetworks',
    note: 'no implicit mynetworks: list your own networks explicitly' },
  { key: 'access.action', type: 'enum', values: ACTIONS, default: 'enforce',
    doc: 'Action for a client that matches a reject entry.', stress: 'normal',
    postscreen: 'postscreen_denylist_action', postscreenDefault: 'ignore',
    note: 'a reject entry is an explicit operator decision; enforce logs helo/from/to and refuses at RCPT' },
  { key: 'pregreet.enable', type: 'bool', default: true,
    doc: 'Send a "220-" teaser and watch for clients that talk before their turn.',
    postscreen: 'postscreen_greet_banner (empty disables the teaser)', postscreenDefault: '$smtpd_banner' },
  { key: 'pregreet.wait', type: 'duration', default: 6000, min: 0, unit: 'ms',
    doc: 'How long to wait for early talkers before completing the greeting.', stress: '2s',
    postscreen: 'postscreen_greet_wait', postscreenDefault: '${stress?{2}:{6}}s' },
  { key: 'pregreet.action', type: 'enum', values: ACTIONS, default: 'enforce',
    doc: 'Action for a client that talks before the greeting.', stress: 'normal',
    postscreen: 'postscreen_greet_action', postscreenDefault: 'ignore',
    note: 'postscreen ships ignore so enabling it blocks nothing; pregreeting is a bot trait with almost no ' +
      'false positives, and enforce still logs helo/from/to before a 550 the sender sees' },
  { key: 'pregreet.ttl', type: 'duration', default: 86_400_000, min: 0, unit: 'ms',
    doc: 'How long a pregreet pass is remembered for a client address.',
    postscreen: 'postscreen_greet_ttl', postscreenDefault: '1d' },
  { key: 'dnsbl.sites', type: 'site-list', default: [],
    doc: 'DNSBL/DNSWL sites in postscreen syntax: domain[=filter][*weight], e.g. "zen.spamhaus.org=127.0.0.[2..11]*3"; empty disables the test.',
    postscreen: 'postscreen_dnsbl_sites', postscreenDefault: '(empty)' },
  { key: 'dnsbl.threshold', type: 'int', default: 1, unit: 'score',
    doc: 'A client whose summed weight reaches this fails the DNSBL test.',
    postscreen: 'postscreen_dnsbl_threshold', postscreenDefault: '1' },
  { key: 'dnsbl.allowlist_threshold', type: 'int', default: 0, max: 0, unit: 'score',
    doc: 'When negative: a client whose score is at or below it passes every test at once (no greet wait). 0 disables.',
    postscreen: 'postscreen_dnsbl_allowlist_threshold', postscreenDefault: '0' },
  { key: 'dnsbl.action', type: 'enum', values: ACTIONS, default: 'enforce',
    doc: 'Action for a client that fails the DNSBL test.', stress: 'normal',
    postscreen: 'postscreen_dnsbl_action', postscreenDefault: 'ignore',
    note: 'listing sites is an explicit operator decision; enforce logs the envelope and refuses at RCPT' },
  { key: 'dnsbl.timeout', type: 'duration', default: 10_000, min: 1, unit: 'ms',
    doc: 'Deadline of one site lookup; an answer still missing when the greet wait ends counts as not listed.',
    postscreen: 'postscreen_dnsbl_timeout', postscreenDefault: '10s' },
  { key: 'dnsbl.ttl_min', type: 'duration', default: 60_000, min: 0, unit: 'ms',
    doc: 'Lower bound of the DNSBL pass TTL (taken from the DNS answers).',
    postscreen: 'postscreen_dnsbl_min_ttl', postscreenDefault: '60s' },
  { key: 'dnsbl.ttl_max', type: 'duration', default: 3_600_000, min: 0, unit: 'ms',
    doc: 'Upper bound of the DNSBL pass TTL.', postscreen: 'postscreen_dnsbl_max_ttl', postscreenDefault: '1h' },
  { key: 'dnsbl.slow_warning', type: 'duration', default: 2000, min: 1, unit: 'ms',
    doc: 'A site answering slower than this is logged (DNSBL WARNING, reason slow; at most once a minute per site).',
    postscreen: null, postscreenDefault: null },
  { key: 'dnsbl.txt', type: 'bool', default: false,
    doc: 'Look up the TXT record of the listing site and append it to the reject text.', postscreen: null, postscreenDefault: null },
  { key: 'dnsbl.reply_map', type: 'string-map', default: {},
    doc: 'Site domain -> name shown in reject texts (hides a paid feed\'s key), e.g. {"key.zen.dq.spamhaus.net": "zen.spamhaus.org"}.',
    postscreen: 'postscreen_dnsbl_reply_map', postscreenDefault: '(empty)' },
  { key: 'dnsbl.health.enable', type: 'bool', default: true,
    doc: 'Probe each site periodically with its test entries; a failing site is suspended (weight 0) until it recovers.',
    postscreen: null, postscreenDefault: null, note: 'postscreen has no site health: a broken list silently stops or starts listing everyone' },
  { key: 'dnsbl.health.interval', type: 'duration', default: 300_000, min: 100, unit: 'ms',
    doc: 'Time between probes of one site.', postscreen: null, postscreenDefault: null },
  { key: 'dnsbl.health.listed', type: 'ip', default: '127.0.0.2',
    doc: 'Test address every site must list (RFC 5782).', postscreen: null, postscreenDefault: null },
  { key: 'dnsbl.health.unlisted', type: 'ip', default: '127.0.0.1',
    doc: 'Test address no site may list (RFC 5782).', postscreen: null, postscreenDefault: null },
  { key: 'dnsbl.health.error_limit', type: 'int', default: 5, min: 1, unit: 'answers',
    doc: 'Consecutive lookup errors (timeout, SERVFAIL, reserved error answers) that suspend a site.', postscreen: null, postscreenDefault: null },
  { key: 'dnsbl.health.sites', type: 'probe-map', default: {},
    doc: 'Per-site test addresses: {domain: {listed: ADDR, unlisted: ADDR}}.', postscreen: null, postscreenDefault: null },
  { key: 'greylist.enable', type: 'bool', default: false,
    doc: 'Defer (450 at RCPT) the first attempt from an unknown client network; a retry from that network between min_delay and max_delay passes.',
    postscreen: null, postscreenDefault: null, note: 'postscreen has no greylisting; its deep tests force a reconnect from the same address instead' },
  { key: 'greylist.policy', type: 'enum', values: ['all', 'suspicious'], default: 'all',
    doc: 'Greylist every new client, or only those whose DNSBL score is at least greylist.suspicious_score.', postscreen: null, postscreenDefault: null },
  { key: 'greylist.suspicious_score', type: 'int', default: 1, unit: 'score',
    doc: 'With policy suspicious: the DNSBL score from which a client is greylisted (set it below dnsbl.threshold).', postscreen: null, postscreenDefault: null },
  { key: 'greylist.min_delay', type: 'duration', default: 300_000, min: 0, unit: 'ms',
    doc: 'A retry sooner than this after the first attempt is deferred again.', postscreen: null, postscreenDefault: null },
  { key: 'greylist.max_delay', type: 'duration', default: 172_800_000, min: 1, unit: 'ms',
    doc: 'A retry later than this counts as a new first attempt.', postscreen: null, postscreenDefault: null },
  { key: 'greylist.ttl', type: 'duration', default: 3_024_000_000, min: 1, unit: 'ms',
    doc: 'How long a network that retried properly is remembered (its clients are not greylisted again).', postscreen: null, postscreenDefault: null },
  { key: 'greylist.ipv4_prefix', type: 'int', default: 24, min: 8, max: 32, unit: 'bits',
    doc: 'IPv4 network size greylisted as one (large senders retry from neighbouring addresses).', postscreen: null, postscreenDefault: null },
  { key: 'greylist.ipv6_prefix', type: 'int', default: 64, min: 16, max: 128, unit: 'bits',
    doc: 'IPv6 network size greylisted as one.', postscreen: null, postscreenDefault: null },
  { key: 'resolver.servers', type: 'hostport-list', default: [],
    doc: 'DNS servers for DNSBL lookups ("ADDR:PORT"); empty: the nameservers of /etc/resolv.conf.',
    postscreen: null, postscreenDefault: null, note: 'postscreen asks dnsblog(8) processes through the system resolver; we run our own UDP resolver in-process' },
  { key: 'resolver.timeout', type: 'duration', default: 1000, min: 1, unit: 'ms',
    doc: 'Time for one try at one server.', postscreen: null, postscreenDefault: null },
  { key: 'resolver.tries', type: 'int', default: 3, min: 1, max: 20, unit: 'tries',
    doc: 'Tries per lookup, over the servers in turn.', postscreen: null, postscreenDefault: null },
  { key: 'resolver.cache_max', type: 'int', default: 100_000, min: 1, unit: 'entries',
    doc: 'DNS answers cached (positive and negative).', postscreen: null, postscreenDefault: null },
  { key: 'resolver.min_ttl', type: 'duration', default: 60_000, min: 0, unit: 'ms',
    doc: 'Lower bound of the TTL of cached answers.', postscreen: null, postscreenDefault: null },
  { key: 'resolver.max_ttl', type: 'duration', default: 3_600_000, min: 0, unit: 'ms',
    doc: 'Upper bound of the TTL of cached answers.', postscreen: null, postscreenDefault: null },
  { key: 'dummy.command_time_limit', type: 'duration', default: 300_000, min: 1, unit: 'ms',
    doc: 'Total time to receive one command in the dummy SMTP engine.', stress: '10s',
    postscreen: 'postscreen_command_time_limit', postscreenDefault: '${stress?{10}:{300}}s' },
  { key: 'dummy.command_count_limit', type: 'int', default: 20, min: 1, unit: 'commands',
    doc: 'Commands per dummy SMTP session.', stress: 'normal', postscreen: 'postscreen_command_count_limit', postscreenDefault: '20' },
  { key: 'dummy.line_length_limit', type: 'int', default: 2048, min: 512, max: 1_048_576, unit: 'bytes',
    doc: 'Longest command line, CRLF included (RFC 5321 needs at least 512).',
    postscreen: 'line_length_limit', postscreenDefault: '2048' },
  // ---- deep protocol tests and the dummy engine's error limit (issue 5) ----
  { key: 'dummy.hard_error_limit', type: 'int', default: 20, min: 1, unit: 'errors',
    doc: 'Error replies (4xx/5xx, refused recipients included) in one dummy session before 421 "too many errors" (COMMAND ERROR LIMIT).', stress: '1',
    postscreen: 'smtpd_hard_error_limit', postscreenDefault: '${stress?{1}:{20}}',
    note: 'postscreen has no error limit, only the command count; we bound a dummy session the way smtpd(8) bounds its own' },
  { key: 'tls.cert', type: 'path', default: null, nullable: true,
    doc: 'PEM certificate (chain) for STARTTLS in the dummy engine; with tls.key. null: STARTTLS is not offered (502). The session continues inside TLS; a failed or timed-out handshake (dummy.command_time_limit) is logged as TLS FAIL.',
    postscreen: 'postscreen_tls_cert_file (via tlsproxy)', postscreenDefault: '$smtpd_tls_cert_file' },
  { key: 'tls.key', type: 'path', default: null, nullable: true,
    doc: 'PEM private key of tls.cert; set both or neither.',
    postscreen: 'postscreen_tls_key_file (via tlsproxy)', postscreenDefault: '$smtpd_tls_key_file' },
  { key: 'deep.pipelining.enable', type: 'bool', default: false, stress: 'normal',
    doc: 'Pipelining test (after the 220 greeting, in the dummy engine, which never offers PIPELINING): a client that sends a command before the reply to the previous one fails.',
    postscreen: 'postscreen_pipelining_enable', postscreenDefault: 'no' },
  { key: 'deep.pipelining.action', type: 'enum', values: ACTIONS, stress: 'normal', default: 'enforce',
    doc: 'Action for a pipelining client: drop (521 and close), enforce (550 at RCPT, envelope logged), ignore (logged; passes for the shortest TTL of all tests).',
    postscreen: 'postscreen_pipelining_action', postscreenDefault: 'enforce' },
  { key: 'deep.pipelining.ttl', type: 'duration', default: 2_592_000_000, min: 1, unit: 'ms',
    doc: 'How long a pipelining pass is remembered for a client address.', postscreen: 'postscreen_pipelining_ttl', postscreenDefault: '30d' },
  { key: 'deep.non_smtp.enable', type: 'bool', default: false, stress: 'normal',
    doc: 'Non-SMTP command test: a forbidden verb (deep.forbidden_commands), a header-like line ("Subject: x") or a verb that is not UTF-8 fails.',
    postscreen: 'postscreen_non_smtp_command_enable', postscreenDefault: 'no' },
  { key: 'deep.non_smtp.action', type: 'enum', values: ACTIONS, stress: 'normal', default: 'drop',
    doc: 'Action for a client that sends a non-SMTP command (drop: "521 5.7.0 Error: I can break rules, too. Goodbye.").',
    postscreen: 'postscreen_non_smtp_command_action', postscreenDefault: 'drop' },
  { key: 'deep.non_smtp.ttl', type: 'duration', default: 2_592_000_000, min: 1, unit: 'ms',
    doc: 'How long a non-SMTP command pass is remembered.', postscreen: 'postscreen_non_smtp_command_ttl', postscreenDefault: '30d' },
  { key: 'deep.bare_newline.enable', type: 'bool', default: false, stress: 'normal',
    doc: 'Bare newline test: a command line ended by LF without CR fails.',
    postscreen: 'postscreen_bare_newline_enable', postscreenDefault: 'no' },
  { key: 'deep.bare_newline.action', type: 'enum', values: ACTIONS, stress: 'normal', default: 'ignore',
    doc: 'Action for a client that sends a bare LF.', postscreen: 'postscreen_bare_newline_action', postscreenDefault: 'ignore' },
  { key: 'deep.bare_newline.ttl', type: 'duration', default: 2_592_000_000, min: 1, unit: 'ms',
    doc: 'How long a bare newline pass is remembered.', postscreen: 'postscreen_bare_newline_ttl', postscreenDefault: '30d' },
  { key: 'deep.forbidden_commands', type: 'word-list', default: ['CONNECT', 'GET', 'POST'],
    doc: 'Verbs that fail the non-SMTP test, compared without case (only verbs the engine does not know).',
    postscreen: 'postscreen_forbidden_commands', postscreenDefault: '$smtpd_forbidden_commands (CONNECT GET POST regexp:{{/^[^A-Z]/ Bogus}})',
    note: 'plain words, no lookup tables: the regexp entry of Postfix\'s default has no counterpart' },
  { key: 'deep.after_pass', type: 'enum', values: ['reconnect', 'handoff'], default: 'reconnect',
    doc: 'A client that passed the deep tests: reconnect (as postscreen): 450 at RCPT, remembered, its next connection is PASS OLD; handoff: handed to the backend on the same connection at that RCPT (HELO, MAIL FROM and RCPT TO replayed, the backend\'s reply relayed); it falls back to reconnect, logged, when the handoff cannot be exact.',
    postscreen: null, postscreenDefault: null, note: 'handoff is ours: postscreen can only make the client reconnect' },
  // ---- end of the deep protocol tests ----
  { key: 'cache.max_entries', type: 'int', default: 1_000_000, min: 1, unit: 'entries',
    doc: 'Client verdicts held in memory (LRU).', postscreen: null, postscreenDefault: null },
  { key: 'cache.snapshot', type: 'path', default: null, nullable: true,
    doc: 'Snapshot file so a restart does not re-screen every client; null for none.',
    postscreen: 'postscreen_cache_map', postscreenDefault: 'btree:$data_directory/postscreen_cache' },
  { key: 'cache.snapshot_interval', type: 'duration', default: 60_000, min: 1000, unit: 'ms',
    doc: 'How often the snapshot is written.', postscreen: null, postscreenDefault: null },
  { key: 'backend.address', type: 'hostport', default: HP('127.0.0.1', 10025), sinkOk: true,
    doc: 'The real SMTP server; "sink:0" is the built-in sink (demos and tests).',
    postscreen: 'master.cf "smtpd pass ... smtpd"', postscreenDefault: 'smtpd (fd passing)' },
  { key: 'backend.handoff', type: 'enum', values: ['xclient', 'proxy-v1', 'proxy-v2', 'none'], default: 'xclient',
    doc: 'How the backend learns the real client address.',
    postscreen: null, postscreenDefault: null, note: 'postscreen passes the socket itself; we proxy it' },
  { key: 'backend.connect_timeout', type: 'duration', default: 10_000, min: 1, unit: 'ms',
    doc: 'Time to connect to the backend before the client gets a 421.', postscreen: null, postscreenDefault: null },
  { key: 'backend.handshake_timeout', type: 'duration', default: 30_000, min: 1, unit: 'ms',
    doc: 'Time for the backend greeting and the XCLIENT/PROXY handshake.', postscreen: null, postscreenDefault: null },
  { key: 'backend.ehlo_refresh', type: 'duration', default: 600_000, min: 1000, unit: 'ms',
    doc: 'With deep.after_pass: handoff, how often the backend\'s EHLO reply is learned again (the dummy engine offers only what the backend supports); while the backend cannot be reached, retried every 30 s.',
    postscreen: null, postscreenDefault: null },
  { key: 'drain_timeout', type: 'duration', default: 30_000, min: 0, unit: 'ms',
    doc: 'Time proxied sessions get to finish after SIGTERM.', postscreen: null, postscreenDefault: null },
  { key: 'log.format', type: 'enum', values: ['json', 'postscreen'], default: 'json',
    doc: 'json: one NDJSON event per line; postscreen: postscreen-style syslog lines.',
    postscreen: null, postscreenDefault: null },
  { key: 'log.level', type: 'enum', values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
    default: 'info', doc: 'Lowest level logged.', postscreen: null, postscreenDefault: null },
];

/** Keys that were removed or renamed: old path -> replacement (named in the error). */
export const RENAMED: Readonly<Record<string, string>> = {};

export interface ConfigIssue {
  key: string;
  value: unknown;
  /** What is wrong, without the key (callers such as the CLI prefix their own name). */
  problem: string;
  /** `${key}: ${problem}` */
  message: string;
}

const BY_KEY = new Map(SCHEMA.map((s) => [s.key, s]));
const TOP = SCHEMA.filter((s) => !s.key.includes('[]'));
const LISTEN_FIELDS = SCHEMA.filter((s) => s.key.startsWith('listen[].'));
const SECTIONS = new Set(TOP.flatMap((s) => s.key.split('.').slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join('.'))));
const ALL_PATHS = [...TOP.map((s) => s.key), ...SECTIONS];
const POSTSCREEN_NAMES = new Map<string, string>();
for (const s of SCHEMA) {
  const name = s.postscreen?.split(' ')[0] ?? '';
  if (name.startsWith('postscreen_') && !POSTSCREEN_NAMES.has(name)) POSTSCREEN_NAMES.set(name, s.key);
}

export function specFor(key: string): KeySpec | undefined {
  return BY_KEY.get(key);
}

function defaultOf(spec: KeySpec): unknown {
  return typeof spec.default === 'function' ? (spec.default as () => unknown)() : structuredClone(spec.default);
}

/** defaultText - the default as a reader would write it in YAML (docs, example config). */
export function defaultText(spec: KeySpec): string {
  if (spec.defaultDoc !== undefined) return spec.defaultDoc;
  const raw = renderValue(spec, defaultOf(spec));
  return typeof raw === 'string' ? raw : JSON.stringify(raw);
}

/** setPath - obj.a.b = value for path "a.b", creating the sections on the way. */
export function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  const last = parts.pop() as string;
  let o = obj;
  for (const p of parts) o = isMapping(o[p]) ? (o[p] as Record<string, unknown>) : (o[p] = {});
  o[last] = value;
}

function getPath(obj: unknown, path: string): unknown {
  let o = obj;
  for (const p of path.split('.')) o = typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[p] : undefined;
  return o;
}

export function defaultConfig(): Config {
  const cfg: Record<string, unknown> = {};
  for (const spec of TOP) setPath(cfg, spec.key, defaultOf(spec));
  setPath(cfg, 'stress.overrides', {});
  return cfg as unknown as Config;
}

// ---- values -------------------------------------------------------------

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** hostPortOf - HostPort, or the problem with the text. */
function hostPortOf(text: string, sinkOk: boolean): HostPort | string {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0 || text[end + 1] !== ':') return 'want [IPv6]:PORT, e.g. [::1]:2525';
    host = text.slice(1, end);
    portText = text.slice(end + 2);
    if (!net.isIPv6(host)) return `"${host}" is not an IPv6 address`;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return 'want ADDRESS:PORT, e.g. 127.0.0.1:2525';
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return 'an IPv6 address needs brackets, e.g. [::1]:2525';
    if (host === 'sink') {
      if (!sinkOk) return '"sink" is only valid as backend.address';
    } else if (!net.isIPv4(host)) {
      return `"${host}" is not an IP address literal (names are not resolved${sinkOk ? '; or use sink:0' : ''})`;
    }
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  // Port 0 on a listener asks the kernel for a free port (tests, the demo; STARTED logs the real one).
  const lo = host === 'sink' || !sinkOk ? 0 : 1;
  if (!(port >= lo && port <= 65535)) return `port must be ${lo}..65535`;
  return { host, port };
}

/** parseHostPort - "1.2.3.4:25", "[::1]:25" (and "sink:0" with opts.sink) to HostPort; throws SCR_ERR_CONFIG. */
export function parseHostPort(text: string, opts: { sink?: boolean } = {}): HostPort {
  const r = hostPortOf(text, opts.sink === true);
  if (typeof r === 'string') throw new ScreenError('SCR_ERR_CONFIG', `bad address "${text}": ${r}`, { value: text });
  return r;
}

/** cidrProblem - null when text is an IPv4/IPv6 address or CIDR with no host bits set. */
function cidrProblem(text: string): string | null {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const family = net.isIP(addr);
  if (family === 0) return 'not an IPv4 or IPv6 address';
  if (slash < 0) return null;
  const bits = text.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return `prefix length must be 0..${max}`;
  const a = family === 4 ? new Address4(text) : new Address6(text);
  const start = a.startAddress().correctForm();
  if (start !== a.correctForm()) return `host bits set; did you mean "${start}/${bits}"?`;
  return null;
}

const INVALID = Symbol('invalid');

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
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
      const spec = BY_KEY.get(`listen[].${name}`);
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

// ---- unknown keys -----------------------------------------------------------

function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] as number;
      prev[j] = Math.min(up + 1, (prev[j - 1] as number) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length] as number;
}

function unknownProblem(path: string, candidates: readonly string[]): string {
  const renamed = RENAMED[path];
  if (renamed !== undefined) return `removed; use "${renamed}" instead`;
  const last = path.slice(path.lastIndexOf('.') + 1);
  const ps = POSTSCREEN_NAMES.get(last);
  if (ps !== undefined) return `unknown key (postscreen's ${last} is "${ps}" here)`;
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const cl = c.slice(c.lastIndexOf('.') + 1);
    const d = Math.min(distance(path, c), distance(last, cl) + 1); // prefer a whole-path match
    if (d < bestD) { bestD = d; best = c; }
  }
  const near = best !== null && bestD <= Math.max(2, Math.floor(last.length / 3));
  return near ? `unknown key (did you mean "${best}"?)` : 'unknown key';
}

function walk(obj: Record<string, unknown>, prefix: string, cfg: Record<string, unknown>, is: Issues): void {
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix === '' ? k : `${prefix}.${k}`;
    const spec = BY_KEY.get(path);
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

// ---- back to YAML-shaped values -------------------------------------------------

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
    default: return v;
  }
}

/** configToRaw - a Config as the YAML-shaped object validateConfig accepts (durations as "6s"), in schema order. */
export function configToRaw(cfg: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const spec of TOP) setPath(out, spec.key, renderValue(spec, getPath(cfg, spec.key)));
  for (const spec of STRESS_KEYS) {
    if (Object.hasOwn(cfg.stress.overrides, spec.key)) setPath(out, `${STRESS_PREFIX}${spec.key}`, renderValue(spec, cfg.stress.overrides[spec.key]));
  }
  return out;
}

// ---- stress values (issue 5) --------------------------------------------------
// A key whose row has a `stress` field may be set again under `stress:` with the
// same path (`stress: { pregreet: { wait: 1s } }`); server/stress.ts builds the
// stress personality from these overrides and the rows' stress defaults.

const STRESS_PREFIX = 'stress.';

/** Rows that have a stress value, in schema order. */
export const STRESS_KEYS: readonly KeySpec[] = SCHEMA.filter((s) => s.stress !== undefined);

for (const spec of STRESS_KEYS) {
  const parts = spec.key.split('.');
  for (let i = 1; i < parts.length; i++) SECTIONS.add(STRESS_PREFIX + parts.slice(0, i).join('.'));
}
const STRESS_PATHS = [...TOP.filter((s) => s.key.startsWith(STRESS_PREFIX)).map((s) => s.key), ...STRESS_KEYS.map((s) => STRESS_PREFIX + s.key)];

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
  const spec = BY_KEY.get(key);
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

/** STARTTLS needs both files. */
function checkTls(cfg: Config, is: Issues): void {
  const { cert, key } = cfg.tls;
  if (cert !== null && key === null) is.add('tls.key', null, 'tls.cert is set: tls.key is needed too');
  if (cert === null && key !== null) is.add('tls.cert', null, 'tls.key is set: tls.cert is needed too');
}
