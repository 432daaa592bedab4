/*
 * config/schema.ts - every configuration key: its type, default, unit, bounds, stress value and
 * doc, and the lookups the other config modules share.
 *
 * Exports: SCHEMA (the table), KeySpec, KeyType, RENAMED, specFor(key), defaultOf(spec),
 *   TOP_KEYS, STRESS_KEYS, STRESS_PREFIX.
 * SCHEMA is the single source: the validator (config/validate.ts), the defaults and the
 * YAML-shaped rendering (config/raw.ts), the README's reference table (config/reference.ts) and
 * the example config are all read from it. Rows for the elements of a list are keyed
 * "listen[].address"; errors name the concrete element ("listen[1].address").
 */
import os from 'node:os';
import type { HostPort } from './types.js';

export type KeyType =
  | 'duration' | 'int' | 'string' | 'bool' | 'enum' | 'hostport' | 'cidr-list' | 'path' | 'listen-list'
  | 'site-list' | 'hostport-list' | 'string-map' | 'ip' | 'probe-map' | 'word-list' | 'percent'
  | 'backend-list' | 'route-list' | 'workers';

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
  /**
   * duration: an age compared with the clock (a TTL, a delay between attempts), never a timer's
   * delay, so its maximum may pass 2^31-1 ms; every other duration key may arm a timer.
   */
  readonly age?: true;
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

const ACTIONS = ['ignore', 'enforce', 'drop', 'shadow'] as const;
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
// Bounds of the durations. Node arms a timer of more than 2^31-1 ms (24.8 days) with 1 ms, so a
// key that arms a timer stays far below: a wait (for a client, DNS, the backend, the drain) at
// most 1h, a periodic job between 1s (more often would hammer DNSBL sites, the disk, the backend)
// and 1d. Ages are never a timer's delay; a year bounds them (a pass or a cached answer kept
// longer is a typo).
const AGE_MAX = 365 * DAY;
const HP = (host: string, port: number): HostPort => ({ host, port });

export const SCHEMA: readonly KeySpec[] = [
  { key: 'mode', type: 'enum', values: ['enforce', 'shadow'], default: 'enforce',
    doc: 'enforce: each test\'s action applies. shadow: every test runs and logs what it would have done (its event with action: shadow and would: reject, drop or defer) and the client is handed over as if it had passed; the failed test is not remembered as passed, so it runs again next time. A per-test action: shadow does the same for one test (would: reject).',
    postscreen: null, postscreenDefault: null, note: 'postscreen has no dry run: its nearest is setting each action to ignore, which logs no would-have outcome' },
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
  // ---- stress-dependent personality (stress values: the `stress` field of each row) ----
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
    doc: 'Global connection limit; above it clients get 421 4.3.2 (keep below (fd limit - 64) / 2: a client may need a backend descriptor too).',
    postscreen: 'postscreen_pre_queue_limit / process limit', postscreenDefault: '$default_process_limit (100)',
    note: 'one event loop holds tens of thousands of sockets; bounded by file descriptors, not processes' },
  { key: 'limits.max_per_client', type: 'int', default: 50, min: 0, unit: 'connections',
    doc: 'Concurrent connections per client address; 0 = unlimited.',
    postscreen: 'postscreen_client_connection_count_limit', postscreenDefault: '$smtpd_client_connection_count_limit (50)' },
  { key: 'limits.backlog', type: 'int', default: 4096, min: 1, max: 65535, unit: 'connections',
    doc: 'listen(2) backlog.', postscreen: null, postscreenDefault: null },
  { key: 'limits.proxy_timeout', type: 'duration', default: 5000, min: 1, max: HOUR, unit: 'ms',
    doc: 'Time allowed to receive the whole PROXY header, counted from accept (not an idle timeout).',
    postscreen: 'postscreen_upstream_proxy_timeout', postscreenDefault: '5s' },
  { key: 'access.list', type: 'path', default: null, nullable: true,
    doc: 'Permanent CIDR access list file (permit/reject/dunno, first match wins); null for none.',
    postscreen: 'postscreen_access_list', postscreenDefault: 'permit_mynetworks',
    note: 'no implicit mynetworks: list your own networks explicitly' },
  { key: 'access.action', type: 'enum', values: ACTIONS, default: 'enforce',
    doc: 'Action for a client that matches a reject entry.', stress: 'normal',
    postscreen: 'postscreen_denylist_action', postscreenDefault: 'ignore',
    note: 'a reject entry is an explicit operator decision; enforce logs helo/from/to and refuses at RCPT' },
  { key: 'access.spf', type: 'word-list', default: [],
    doc: 'Domains whose published SPF netblocks (ip4/ip6, a, mx, through include and redirect) are permitted like access list entries, after the access list; refreshed on the records\' TTLs; a failed walk keeps the last good set (ALLOWLIST SPF).',
    postscreen: null, postscreenDefault: null,
    note: 'postscreen has no such feature; postwhite builds a static list from cron' },
  { key: 'access.spf_refresh_min', type: 'duration', default: 300_000, min: SECOND, max: DAY, unit: 'ms',
    doc: 'access.spf: a domain is walked again no sooner than this after a success (shorter TTLs are raised to it), and this long after a failure.',
    postscreen: null, postscreenDefault: null },
  { key: 'access.spf_refresh_max', type: 'duration', default: 86_400_000, min: SECOND, max: 7 * DAY, unit: 'ms',
    doc: 'access.spf: a domain is walked again at the latest this long after a success (longer TTLs are cut to it).',
    postscreen: null, postscreenDefault: null },
  { key: 'pregreet.enable', type: 'bool', default: true,
    doc: 'Send a "220-" teaser and watch for clients that talk before their turn.',
    postscreen: 'postscreen_greet_banner (empty disables the teaser)', postscreenDefault: '$smtpd_banner' },
  { key: 'pregreet.wait', type: 'duration', default: 6000, min: 0, max: HOUR, unit: 'ms',
    doc: 'How long to wait for early talkers before completing the greeting.', stress: '2s',
    postscreen: 'postscreen_greet_wait', postscreenDefault: '${stress?{2}:{6}}s' },
  { key: 'pregreet.action', type: 'enum', values: ACTIONS, default: 'enforce',
    doc: 'Action for a client that talks before the greeting.', stress: 'normal',
    postscreen: 'postscreen_greet_action', postscreenDefault: 'ignore',
    note: 'postscreen ships ignore so enabling it blocks nothing; pregreeting is a bot trait with almost no ' +
      'false positives, and enforce still logs helo/from/to before a 550 the sender sees' },
  { key: 'pregreet.ttl', type: 'duration', default: 86_400_000, min: 0, max: AGE_MAX, age: true, unit: 'ms',
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
  { key: 'dnsbl.timeout', type: 'duration', default: 10_000, min: 1, max: HOUR, unit: 'ms',
    doc: 'Deadline of one site lookup; an answer still missing when the greet wait ends counts as not listed.',
    postscreen: 'postscreen_dnsbl_timeout', postscreenDefault: '10s' },
  { key: 'dnsbl.ttl_min', type: 'duration', default: 60_000, min: 0, max: AGE_MAX, age: true, unit: 'ms',
    doc: 'Lower bound of the DNSBL pass TTL (taken from the DNS answers).',
    postscreen: 'postscreen_dnsbl_min_ttl', postscreenDefault: '60s' },
  { key: 'dnsbl.ttl_max', type: 'duration', default: 3_600_000, min: 0, max: AGE_MAX, age: true, unit: 'ms',
    doc: 'Upper bound of the DNSBL pass TTL.', postscreen: 'postscreen_dnsbl_max_ttl', postscreenDefault: '1h' },
  { key: 'dnsbl.slow_warning', type: 'duration', default: 2000, min: 1, max: HOUR, unit: 'ms',
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
  { key: 'dnsbl.health.interval', type: 'duration', default: 300_000, min: SECOND, max: DAY, unit: 'ms',
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
  { key: 'greylist.min_delay', type: 'duration', default: 300_000, min: 0, max: AGE_MAX, age: true, unit: 'ms',
    doc: 'A retry sooner than this after the first attempt is deferred again.', postscreen: null, postscreenDefault: null },
  { key: 'greylist.max_delay', type: 'duration', default: 172_800_000, min: 1, max: AGE_MAX, age: true, unit: 'ms',
    doc: 'A retry later than this counts as a new first attempt.', postscreen: null, postscreenDefault: null },
  { key: 'greylist.ttl', type: 'duration', default: 3_024_000_000, min: 1, max: AGE_MAX, age: true, unit: 'ms',
    doc: 'How long a network that retried properly is remembered (its clients are not greylisted again).', postscreen: null, postscreenDefault: null },
  { key: 'greylist.ipv4_prefix', type: 'int', default: 24, min: 8, max: 32, unit: 'bits',
    doc: 'IPv4 network size greylisted as one (large senders retry from neighbouring addresses).', postscreen: null, postscreenDefault: null },
  { key: 'greylist.ipv6_prefix', type: 'int', default: 64, min: 16, max: 128, unit: 'bits',
    doc: 'IPv6 network size greylisted as one.', postscreen: null, postscreenDefault: null },
  { key: 'greylist.action', type: 'enum', values: ['enforce', 'shadow'], default: 'enforce',
    doc: 'enforce: a deferred client gets 450 at RCPT; shadow: GREYLIST is logged with action: shadow, would: defer and the client is handed over (mode: shadow does this too).', postscreen: null, postscreenDefault: null },
  { key: 'resolver.servers', type: 'hostport-list', default: [],
    doc: 'DNS servers for DNSBL lookups ("ADDR:PORT"); empty: the nameservers of /etc/resolv.conf.',
    postscreen: null, postscreenDefault: null, note: 'postscreen asks dnsblog(8) processes through the system resolver; we run our own UDP resolver in-process' },
  { key: 'resolver.timeout', type: 'duration', default: 1000, min: 1, max: HOUR, unit: 'ms',
    doc: 'Time for one try at one server.', postscreen: null, postscreenDefault: null },
  { key: 'resolver.tries', type: 'int', default: 3, min: 1, max: 20, unit: 'tries',
    doc: 'Tries per lookup, over the servers in turn.', postscreen: null, postscreenDefault: null },
  { key: 'resolver.max_outstanding', type: 'int', default: 1024, min: 1, max: 65_536, unit: 'queries',
    doc: 'Most UDP queries on the wire to one server; more wait in the resolver\'s queue. It starts at 128 (what a fast local server such as rbldnsd buffers) and grows towards this only while the queue would not drain within resolver.timeout at the measured reply rate (a server answering in 200 ms serves 640 lookups/s at 128, 5,120 at 1,024); a query that times out puts it back to 128.',
    postscreen: null, postscreenDefault: null },
  { key: 'resolver.cache_max', type: 'int', default: 100_000, min: 1, unit: 'entries',
    doc: 'DNS answers cached (positive and negative).', postscreen: null, postscreenDefault: null },
  { key: 'resolver.min_ttl', type: 'duration', default: 60_000, min: 0, max: AGE_MAX, age: true, unit: 'ms',
    doc: 'Lower bound of the TTL of cached answers.', postscreen: null, postscreenDefault: null },
  { key: 'resolver.max_ttl', type: 'duration', default: 3_600_000, min: 0, max: AGE_MAX, age: true, unit: 'ms',
    doc: 'Upper bound of the TTL of cached answers.', postscreen: null, postscreenDefault: null },
  { key: 'dummy.command_time_limit', type: 'duration', default: 300_000, min: 1, max: HOUR, unit: 'ms',
    doc: 'Total time to receive one command in the dummy SMTP engine.', stress: '10s',
    postscreen: 'postscreen_command_time_limit', postscreenDefault: '${stress?{10}:{300}}s' },
  { key: 'dummy.command_count_limit', type: 'int', default: 20, min: 1, unit: 'commands',
    doc: 'Commands per dummy SMTP session.', stress: 'normal', postscreen: 'postscreen_command_count_limit', postscreenDefault: '20' },
  { key: 'dummy.line_length_limit', type: 'int', default: 2048, min: 512, max: 1_048_576, unit: 'bytes',
    doc: 'Longest command line, CRLF included (RFC 5321 needs at least 512).',
    postscreen: 'line_length_limit', postscreenDefault: '2048' },
  // ---- deep protocol tests and the dummy engine's error limit ----
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
  { key: 'tls.max_handshakes', type: 'int', default: 100, min: 1, max: 100000, unit: 'handshakes',
    doc: 'STARTTLS handshakes in progress at once (each holds about 70 KB until it completes or times out); a STARTTLS beyond this gets 421 and TLS FAIL reason busy. Completed TLS sessions do not count.',
    postscreen: 'tlsproxy processes (master.cf process limit)', postscreenDefault: '$default_process_limit (100)' },
  { key: 'deep.pipelining.enable', type: 'bool', default: false, stress: 'normal',
    doc: 'Pipelining test (after the 220 greeting, in the dummy engine, which never offers PIPELINING): a client that sends a command before the reply to the previous one fails.',
    postscreen: 'postscreen_pipelining_enable', postscreenDefault: 'no' },
  { key: 'deep.pipelining.action', type: 'enum', values: ACTIONS, stress: 'normal', default: 'enforce',
    doc: 'Action for a pipelining client: drop (521 and close), enforce (550 at RCPT, envelope logged), ignore (logged; passes for the shortest TTL of all tests).',
    postscreen: 'postscreen_pipelining_action', postscreenDefault: 'enforce' },
  { key: 'deep.pipelining.ttl', type: 'duration', default: 2_592_000_000, min: 1, max: AGE_MAX, age: true, unit: 'ms',
    doc: 'How long a pipelining pass is remembered for a client address.', postscreen: 'postscreen_pipelining_ttl', postscreenDefault: '30d' },
  { key: 'deep.non_smtp.enable', type: 'bool', default: false, stress: 'normal',
    doc: 'Non-SMTP command test: a forbidden verb (deep.forbidden_commands), a header-like line ("Subject: x") or a verb that is not UTF-8 fails.',
    postscreen: 'postscreen_non_smtp_command_enable', postscreenDefault: 'no' },
  { key: 'deep.non_smtp.action', type: 'enum', values: ACTIONS, stress: 'normal', default: 'drop',
    doc: 'Action for a client that sends a non-SMTP command (drop: "521 5.7.0 Error: I can break rules, too. Goodbye.").',
    postscreen: 'postscreen_non_smtp_command_action', postscreenDefault: 'drop' },
  { key: 'deep.non_smtp.ttl', type: 'duration', default: 2_592_000_000, min: 1, max: AGE_MAX, age: true, unit: 'ms',
    doc: 'How long a non-SMTP command pass is remembered.', postscreen: 'postscreen_non_smtp_command_ttl', postscreenDefault: '30d' },
  { key: 'deep.bare_newline.enable', type: 'bool', default: false, stress: 'normal',
    doc: 'Bare newline test: a command line ended by LF without CR fails.',
    postscreen: 'postscreen_bare_newline_enable', postscreenDefault: 'no' },
  { key: 'deep.bare_newline.action', type: 'enum', values: ACTIONS, stress: 'normal', default: 'ignore',
    doc: 'Action for a client that sends a bare LF.', postscreen: 'postscreen_bare_newline_action', postscreenDefault: 'ignore' },
  { key: 'deep.bare_newline.ttl', type: 'duration', default: 2_592_000_000, min: 1, max: AGE_MAX, age: true, unit: 'ms',
    doc: 'How long a bare newline pass is remembered.', postscreen: 'postscreen_bare_newline_ttl', postscreenDefault: '30d' },
  { key: 'deep.forbidden_commands', type: 'word-list', default: ['CONNECT', 'GET', 'POST'],
    doc: 'Verbs that fail the non-SMTP test, compared without case (only verbs the engine does not know).',
    postscreen: 'postscreen_forbidden_commands', postscreenDefault: '$smtpd_forbidden_commands (CONNECT GET POST regexp:{{/^[^A-Z]/ Bogus}})',
    note: 'plain words, no lookup tables: the regexp entry of Postfix\'s default has no counterpart' },
  { key: 'deep.after_pass', type: 'enum', values: ['reconnect', 'handoff'], default: 'reconnect',
    doc: 'A client that passed the deep tests: reconnect (as postscreen): 450 at RCPT, remembered, its next connection is PASS OLD; handoff: handed to the backend on the same connection at that RCPT (HELO, MAIL FROM and RCPT TO replayed, the backend\'s reply relayed); it falls back to reconnect, logged, when the handoff cannot be exact.',
    postscreen: null, postscreenDefault: null, note: 'handoff is ours: postscreen can only make the client reconnect' },
  // ---- end of the deep protocol tests ----
  // ---- the HTTP policy service (checks/policy.ts) ----
  { key: 'policy.url', type: 'string', default: null, nullable: true,
    doc: 'The policy service: http://HOST:PORT/PATH, or unix:/SOCKET[:/PATH] for HTTP over a Unix socket; asked (POST, JSON) about every client under test at accept. null: none.',
    postscreen: 'smtpd check_policy_service (postscreen has none)', postscreenDefault: '(none)',
    note: 'postscreen refused a policy hook because a slow server would stall it; here every call has a budget, a cap and a breaker' },
  { key: 'policy.budget', type: 'duration', default: 200, min: 1, max: HOUR, unit: 'ms',
    doc: 'Longest wait for one answer; then the call is abandoned and counts as a failure. Must be below pregreet.wait (and its stress value).',
    postscreen: 'policy_time_limit (smtpd)', postscreenDefault: '1000s' },
  { key: 'policy.max_in_flight', type: 'int', default: 100, min: 1, unit: 'calls',
    doc: 'Calls waiting for an answer at once; a client past it is not asked (dunno at once, counted, POLICY WARNING reason busy).', postscreen: null, postscreenDefault: null },
  { key: 'policy.connections', type: 'int', default: 16, min: 1, max: 1024, unit: 'connections',
    doc: 'Kept-alive HTTP connections to the service; calls beyond them queue (within their budget).', postscreen: null, postscreenDefault: null },
  { key: 'policy.fail', type: 'enum', values: ['open', 'tempfail'], default: 'open',
    doc: 'A failed call (timeout, error, HTTP status but 200, bad reply, breaker open): open: dunno (a dead service rejects nobody); tempfail: as a defer (450).',
    postscreen: 'default_policy_action (smtpd 421)', postscreenDefault: '451 4.3.5' },
  { key: 'policy.action', type: 'enum', values: ACTIONS, default: 'enforce',
    doc: 'Action for a reject or defer reply: enforce (550 or 450 at RCPT, envelope logged), drop (521 or 421 now), ignore (logged).', postscreen: null, postscreenDefault: null },
  { key: 'policy.at_rcpt', type: 'bool', default: false,
    doc: 'Ask again at each RCPT in the dummy engine (with HELO, MAIL FROM, RCPT TO): a reject or defer reply there is the RCPT\'s reply.', postscreen: null, postscreenDefault: null },
  { key: 'policy.slow_warning', type: 'duration', default: 100, min: 1, max: HOUR, unit: 'ms',
    doc: 'An answer slower than this is logged (POLICY WARNING reason slow, at most once a second).', postscreen: null, postscreenDefault: null },
  { key: 'policy.ttl_max', type: 'duration', default: 86_400_000, min: 0, max: AGE_MAX, age: true, unit: 'ms',
    doc: 'Upper bound of a reply\'s ttl (how long it is cached for its client).', postscreen: null, postscreenDefault: null },
  { key: 'policy.cache_max', type: 'int', default: 100_000, min: 1, unit: 'entries',
    doc: 'Replies cached (per client, LRU).', postscreen: null, postscreenDefault: null },
  { key: 'policy.breaker.failures', type: 'int', default: 5, min: 1, max: 10_000, unit: 'failures',
    doc: 'Failures within policy.breaker.window that open the breaker: no call for policy.breaker.open_for, then one probe call.', postscreen: null, postscreenDefault: null },
  { key: 'policy.breaker.window', type: 'duration', default: 10_000, min: 1, max: HOUR, unit: 'ms',
    doc: 'The window policy.breaker.failures are counted in.', postscreen: null, postscreenDefault: null },
  { key: 'policy.breaker.open_for', type: 'duration', default: 30_000, min: 1, max: HOUR, unit: 'ms',
    doc: 'How long an open breaker makes no call before its probe.', postscreen: null, postscreenDefault: null },
  { key: 'cache.max_entries', type: 'int', default: 1_000_000, min: 1, unit: 'entries',
    doc: 'Client verdicts held in memory (LRU).', postscreen: null, postscreenDefault: null },
  { key: 'cache.snapshot', type: 'path', default: null, nullable: true,
    doc: 'Snapshot file so a restart does not re-screen every client; null for none.',
    postscreen: 'postscreen_cache_map', postscreenDefault: 'btree:$data_directory/postscreen_cache' },
  { key: 'cache.snapshot_interval', type: 'duration', default: 60_000, min: SECOND, max: DAY, unit: 'ms',
    doc: 'How often the snapshot is written.', postscreen: null, postscreenDefault: null },
  // ---- the shared store (cache/redis.ts) ----
  { key: 'cache.store', type: 'enum', values: ['memory', 'redis'], default: 'memory',
    doc: 'memory: verdicts and greylist state in this process (with cache.snapshot); redis: shared by every screener on one Redis, behind the memory tier (a client known here is still PASS OLD at once).',
    postscreen: 'postscreen_cache_map (memcache:)', postscreenDefault: 'btree:$data_directory/postscreen_cache',
    note: 'Redis keys expire with their records (no cleanup job); a slow or dead Redis costs a connection at most cache.redis.timeout and never a rejection' },
  { key: 'cache.redis.url', type: 'string', default: null, nullable: true,
    doc: 'With cache.store: redis: redis://[user:password@]host:port[/db], or rediss:// for TLS. With cache.redis.sentinels or cache.redis.cluster its host is not used (may be left out); its user, password, db and TLS still apply to the Redis servers.',
    postscreen: null, postscreenDefault: null },
  { key: 'cache.redis.sentinels', type: 'hostport-list', default: [],
    doc: 'Redis Sentinel: the sentinels (IP literals, "127.0.0.1:26379") asked for the master named cache.redis.sentinel_master; after a failover the new master is used. Empty: no Sentinel.',
    postscreen: null, postscreenDefault: null },
  { key: 'cache.redis.sentinel_master', type: 'string', default: 'mymaster',
    doc: 'With cache.redis.sentinels: the master\'s name in the sentinels\' configuration (sentinel monitor NAME ...).', postscreen: null, postscreenDefault: null },
  { key: 'cache.redis.cluster', type: 'hostport-list', default: [],
    doc: 'Redis Cluster: seed nodes (IP literals, "127.0.0.1:7000"); the rest of the cluster is learned from them. Every key of one record or network is one hash slot. Empty: no Cluster.',
    postscreen: null, postscreenDefault: null },
  { key: 'cache.redis.prefix', type: 'string', default: 'smtpscreen:',
    doc: 'Every key starts with it: <prefix><client address> for verdicts, <prefix>net:<network> for greylisting.', postscreen: null, postscreenDefault: null },
  { key: 'cache.redis.timeout', type: 'duration', default: 200, min: 1, max: MINUTE, unit: 'ms',
    doc: 'Deadline of each lookup and greylist decision; past it the session goes on as if Redis had no record. Below pregreet.wait (and its stress value).',
    postscreen: null, postscreenDefault: null },
  { key: 'cache.redis.connect_timeout', type: 'duration', default: 2000, min: 1, max: MINUTE, unit: 'ms',
    doc: 'Time to connect to Redis; reconnection runs in the background, every 0.1 s to 2 s.', postscreen: null, postscreenDefault: null },
  { key: 'cache.redis.pending_writes', type: 'int', default: 10_000, min: 0, max: 1_000_000, unit: 'records',
    doc: 'Verdicts kept (the newest per client) while Redis is away, written when it is back; beyond it writes are dropped and counted (STORE OK).',
    postscreen: null, postscreenDefault: null },
  { key: 'backend.address', type: 'hostport', default: HP('127.0.0.1', 10025), sinkOk: true,
    doc: 'The real SMTP server; "sink:0" is the built-in sink (demos and tests). check-config and run refuse a configuration file (and flags) that does not name it.',
    postscreen: 'master.cf "smtpd pass ... smtpd"', postscreenDefault: 'smtpd (fd passing)' },
  { key: 'backend.handoff', type: 'enum', values: ['xclient', 'proxy-v1', 'proxy-v2', 'none'], default: 'xclient',
    doc: 'How the backend learns the real client address.',
    postscreen: null, postscreenDefault: null, note: 'postscreen passes the socket itself; we proxy it' },
  { key: 'backend.connect_timeout', type: 'duration', default: 10_000, min: 1, max: HOUR, unit: 'ms',
    doc: 'Time to connect to the backend before the client gets a 421.', postscreen: null, postscreenDefault: null },
  { key: 'backend.handshake_timeout', type: 'duration', default: 30_000, min: 1, max: HOUR, unit: 'ms',
    doc: 'Time for the backend greeting and the XCLIENT/PROXY handshake.', postscreen: null, postscreenDefault: null },
  { key: 'backend.ehlo_refresh', type: 'duration', default: 600_000, min: SECOND, max: DAY, unit: 'ms',
    doc: 'With deep.after_pass: handoff, how often the backend\'s EHLO reply is learned again (the dummy engine offers only what the backend supports); while the backend cannot be reached, retried every 30 s.',
    postscreen: null, postscreenDefault: null },
  // ---- client-dependent routing (handoff/route.ts) ----
  { key: 'backends', type: 'backend-list', default: [],
    doc: 'More backends, each {name, address, handoff, connect_timeout, handshake_timeout}, for routes to pick; backend: above is the one named default. Each has its own probe (BACKEND OK/FAIL) and learned EHLO.',
    postscreen: null, postscreenDefault: null, note: 'Venema proposed routing clients to different smtpds by what postscreen knows of them; postscreen never built it' },
  { key: 'backends[].name', type: 'string', default: null, defaultDoc: '(required)',
    doc: 'The name routes use: letters, digits, "_", "-"; unique, and not "default".', postscreen: null, postscreenDefault: null },
  { key: 'backends[].address', type: 'hostport', default: HP('127.0.0.1', 10025),
    doc: 'IPv4 or [IPv6] literal and port of this backend.', postscreen: null, postscreenDefault: null },
  { key: 'backends[].handoff', type: 'enum', values: ['xclient', 'proxy-v1', 'proxy-v2', 'none'], default: 'xclient',
    doc: 'As backend.handoff, for this backend.', postscreen: null, postscreenDefault: null },
  { key: 'backends[].connect_timeout', type: 'duration', default: 10_000, min: 1, max: HOUR, unit: 'ms',
    doc: 'As backend.connect_timeout, for this backend.', postscreen: null, postscreenDefault: null },
  { key: 'backends[].handshake_timeout', type: 'duration', default: 30_000, min: 1, max: HOUR, unit: 'ms',
    doc: 'As backend.handshake_timeout, for this backend.', postscreen: null, postscreenDefault: null },
  { key: 'routes', type: 'route-list', default: [],
    doc: 'Rules in order, each {match: {...}, backend: NAME}: the first whose every condition holds picks the backend a client is handed to; none: default. An empty match matches everyone.',
    postscreen: null, postscreenDefault: null },
  { key: 'routes[].match.verdict', type: 'word-list', default: null, nullable: true, defaultDoc: '(any)',
    doc: 'One or a list of old (PASS OLD), new (passed now, or no test enabled), allowlisted (access list, DNSBL or policy allowlist), ignored (passed only because a failed test\'s action is ignore), shadow (a failure shadowed).',
    postscreen: null, postscreenDefault: null },
  { key: 'routes[].match.score_min', type: 'int', default: null, nullable: true, defaultDoc: '(any)',
    doc: 'The client\'s DNSBL score this session is at least this; a client without one (PASS OLD, allowlisted) does not match.', postscreen: null, postscreenDefault: null },
  { key: 'routes[].match.score_max', type: 'int', default: null, nullable: true, defaultDoc: '(any)',
    doc: 'The client\'s DNSBL score this session is at most this; a client without one does not match.', postscreen: null, postscreenDefault: null },
  { key: 'routes[].match.stress', type: 'bool', default: null, nullable: true, defaultDoc: '(any)',
    doc: 'true: served by the stress personality; false: by the normal one.', postscreen: null, postscreenDefault: null },
  { key: 'routes[].match.policy_route', type: 'string', default: null, nullable: true, defaultDoc: '(any)',
    doc: 'The policy service answered action route with this route name.', postscreen: null, postscreenDefault: null },
  { key: 'routes[].match.tag', type: 'string', default: null, nullable: true, defaultDoc: '(any)',
    doc: 'The access-list entry that matched the client carries this tag (`CIDR ACTION route=NAME` in access.list; access.spf entries are tagged spf).',
    postscreen: null, postscreenDefault: null },
  { key: 'routes[].backend', type: 'string', default: null, defaultDoc: '(required)',
    doc: 'The backend: default or a backends[].name (an unknown name is a configuration error).', postscreen: null, postscreenDefault: null },
  { key: 'routes_fallback', type: 'enum', values: ['default', 'tempfail'], default: 'default',
    doc: 'A route to a backend its probe finds down: default: the client goes to the default backend (ROUTE FALLBACK logged); tempfail: it gets 421 and retries later.',
    postscreen: null, postscreenDefault: null },
  { key: 'workers', type: 'workers', default: 1, min: 1, max: 64, unit: 'processes',
    doc: 'Processes serving every listener on this host: 1 is one process (no primary, no IPC); N > 1 runs a primary that binds the listeners (workers_accept says who accepts), restarts a worker that dies and aggregates /metrics; auto is one per core (os.availableParallelism()). More than 1 needs cache.store: redis. Restart to change.',
    postscreen: null, postscreenDefault: null, note: 'postscreen is one process per host' },
  { key: 'workers_accept', type: 'enum', values: ['shared', 'primary'], default: 'shared',
    doc: 'With workers > 1, who accepts. shared: every worker accepts from one listening socket that the primary binds (node:cluster, SCHED_NONE), so the accept rate can grow with the workers; each worker reports its open count and its clients\' counts to the primary at most every 10 ms and refuses on the host totals the primary sends back, so limits.max_connections and limits.max_per_client can be overshot by what the other workers accepted in that window (README, Workers). primary: the primary accepts every connection and hands the socket to the worker chosen by the client\'s network (/24, /64): the limits are exact, but the hand-off sets the rate. Restart to change.',
    postscreen: null, postscreenDefault: null },
  { key: 'drain_timeout', type: 'duration', default: 30_000, min: 0, max: HOUR, unit: 'ms',
    doc: 'Time proxied sessions get to finish after SIGTERM.', postscreen: null, postscreenDefault: null },
  { key: 'user', type: 'string', default: null, nullable: true,
    doc: 'Started as root: bind the listeners, read the access list, certificates and snapshot, then switch to this user for good (its groups; no capabilities left). The snapshot directory must be writable by it; a reload reads the files as it, and cannot bind a new port below 1024. null: no switch.',
    postscreen: 'mail_owner', postscreenDefault: 'postfix' },
  { key: 'group', type: 'string', default: null, nullable: true,
    doc: 'The group to switch to with user; null: the user\'s own group.', postscreen: null, postscreenDefault: null },
  { key: 'allow_root', type: 'bool', default: false,
    doc: 'Keep running as root when user is not set; without it, started as root without user, smtpscreen refuses to run.',
    postscreen: null, postscreenDefault: null, note: 'postscreen always runs as mail_owner' },
  { key: 'log.format', type: 'enum', values: ['json', 'postscreen', 'journal'], default: 'json',
    doc: 'json: one NDJSON event per line; postscreen: postscreen-style syslog lines; journal: the postscreen text with only a <priority> prefix, for systemd\'s journal (the unit\'s SyslogIdentifier names it).',
    postscreen: null, postscreenDefault: null },
  { key: 'log.level', type: 'enum', values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
    default: 'info', doc: 'Lowest level logged.', postscreen: null, postscreenDefault: null },
  { key: 'log.destination', type: 'enum', values: ['stdout', 'file', 'syslog'], default: 'stdout',
    doc: 'Where lines go: stdout; file (log.file, reopened on SIGUSR1); syslog (RFC 3164 to log.syslog.address, always postscreen text). Never blocks: see log.buffer.',
    postscreen: 'syslog_name, maillog_file', postscreenDefault: 'syslog' },
  { key: 'log.buffer', type: 'int', default: 4 * 1024 * 1024, min: 4096, max: 1024 * 1024 * 1024, unit: 'bytes',
    doc: 'Lines waiting for a destination that cannot keep up; a line that does not fit is dropped and counted (LOG DROPPED).',
    postscreen: null, postscreenDefault: null },
  { key: 'log.file', type: 'path', default: null, nullable: true,
    doc: 'The file of log.destination: file, appended to; reopened by name on SIGUSR1 (logrotate).',
    postscreen: 'maillog_file', postscreenDefault: '(empty)' },
  { key: 'log.syslog.address', type: 'hostport', default: HP('127.0.0.1', 514),
    doc: 'The syslog daemon\'s network input for log.destination: syslog (rsyslog: imtcp or imudp).',
    postscreen: null, postscreenDefault: null, note: 'Postfix writes /dev/log, a datagram socket Node cannot write' },
  { key: 'log.syslog.transport', type: 'enum', values: ['tcp', 'udp'], default: 'tcp',
    doc: 'tcp: LF-framed lines, every line the daemon does not take is counted as dropped; udp: one datagram a line, but datagrams the daemon loses in a burst are not seen.',
    postscreen: null, postscreenDefault: null },
  { key: 'log.syslog.tag', type: 'string', default: 'postfix/postscreen',
    doc: 'The syslog tag (program name) of each line, followed by [pid]; fail2ban\'s postfix filter and pflogsumm look for postfix/postscreen.',
    postscreen: 'syslog_name', postscreenDefault: 'postfix' },
  // ---- the admin listener (server/admin.ts) ----
  { key: 'admin.listen', type: 'hostport-list', default: [],
    doc: 'Admin HTTP listeners ("127.0.0.1:9125"): /metrics (Prometheus), /healthz, /readyz. Empty: none. Only loopback peers are served unless admin.allow_remote is set or the address is a specific non-loopback one.',
    postscreen: null, postscreenDefault: null, note: 'postscreen has none: postfix_exporter parses its log' },
  { key: 'admin.allow_remote', type: 'bool', default: false,
    doc: 'Serve peers that are not loopback on every admin listener (a wildcard address such as 0.0.0.0 serves only loopback peers without it). Set admin.token too.',
    postscreen: null, postscreenDefault: null },
  { key: 'admin.token', type: 'string', default: null, nullable: true,
    doc: 'A bearer token every admin request must carry (Authorization: Bearer TOKEN); wrong or missing: 401. null: none.',
    postscreen: null, postscreenDefault: null },
  { key: 'admin.token_file', type: 'path', default: null, nullable: true,
    doc: 'admin.token read from this file (first line, read at start and reload), so that it stays out of the configuration.',
    postscreen: null, postscreenDefault: null },
  { key: 'admin.max_loop_delay', type: 'duration', default: 1000, min: 10, max: HOUR, unit: 'ms',
    doc: '/healthz answers 503 when the event loop was delayed longer than this in the last 10 s.',
    postscreen: null, postscreenDefault: null },
  { key: 'log.reveal_sites', type: 'bool', default: false,
    doc: 'Log DNSBL sites by their real domain; false: by their dnsbl.reply_map name (DNSBL hits, DNSBL SITE, DNSBL WARNING), so a paid feed\'s key stays out of the log.',
    postscreen: null, postscreenDefault: null, note: 'postscreen logs the real site name' },
  { key: 'admin.socket', type: 'path', default: null, nullable: true,
    doc: 'Unix socket of the cache admin (smtpscreen cache ... talks to the running screener through it), created mode 0600 by the user the screener runs as (after the switch to user: its directory must be writable by it), removed at stop; null: none. A path that exists and is not a stale socket is refused at start.',
    postscreen: null, postscreenDefault: null, note: 'postscreen\'s cache is a Postfix map: postmap -q / -d on a stopped postscreen' },
];

/** Keys that were removed or renamed: old path -> replacement (named in the error). */
export const RENAMED: Readonly<Record<string, string>> = {};

const BY_KEY = new Map(SCHEMA.map((s) => [s.key, s]));

/** The row of `key` ("pregreet.wait", "listen[].address"), or undefined. */
export function specFor(key: string): KeySpec | undefined {
  return BY_KEY.get(key);
}

/** Rows that are not fields of a list element, in schema order. */
export const TOP_KEYS: readonly KeySpec[] = SCHEMA.filter((s) => !s.key.includes('[]'));

/** A key's stress value is set under this section: `stress: { pregreet: { wait: 1s } }`. */
export const STRESS_PREFIX = 'stress.';

/** Rows that have a stress value, in schema order. */
export const STRESS_KEYS: readonly KeySpec[] = SCHEMA.filter((s) => s.stress !== undefined);

/** A fresh copy of the key's default (computed ones, such as hostname, computed now). */
export function defaultOf(spec: KeySpec): unknown {
  return typeof spec.default === 'function' ? (spec.default as () => unknown)() : structuredClone(spec.default);
}
