/*
 * config/types.ts - the shape of a validated configuration.
 *
 * Exports: Config and its parts, Action, HandoffMode, ProxyIn, HostPort, DeepTestConfig, AfterPass,
 *   ListenPersonality.
 * Durations are milliseconds (numbers) once validated; the YAML spells them
 * as "6s", "300ms", "1d". The defaults, units and docs of every key live in
 * config/schema.ts; this file is only the contract other rooms compile against.
 */

/** What to do with a client that fails a test (postscreen's three actions, and shadow: log what enforce would do, hand over). */
export type Action = 'ignore' | 'enforce' | 'drop' | 'shadow';

/** enforce: actions apply; shadow: every drop and enforce is logged as `action: shadow` with `would`, and the client is handed over. */
export type Mode = 'enforce' | 'shadow';

/** How the backend learns the real client address. */
export type HandoffMode = 'xclient' | 'proxy-v1' | 'proxy-v2' | 'none';

/** Which PROXY protocol a listener expects from its (trusted) upstream. */
export type ProxyIn = 'none' | 'v1' | 'v2' | 'any';

/** One deep protocol test (postscreen_<test>_enable / _action / _ttl). */
export interface DeepTestConfig {
  enable: boolean;
  action: Action;
  /** How long a pass is remembered, ms. */
  ttl: number;
}

/**
 * After the deep tests: `reconnect` as postscreen (450 at RCPT, the client
 * comes back). `handoff` (same connection, replayed to the backend) is
 * planned: the validator names it and says it is not implemented yet.
 */
export type AfterPass = 'reconnect' | 'handoff';

export interface HostPort {
  /** Literal IP address (IPv4 or IPv6, no brackets), or "sink" for the built-in sink backend. */
  host: string;
  port: number;
}

export interface ListenConfig {
  address: HostPort;
  /** PROXY protocol expected on this listener; 'none' means clients connect directly. */
  proxy_protocol: ProxyIn;
  /** CIDRs allowed to send a PROXY header; others are closed. */
  trusted_proxies: string[];
  /** Which personality serves this listener's clients: auto (by the stress state), or pinned (server/stress.ts). */
  personality: ListenPersonality;
}

/** A listener's personality: `auto` follows the stress state; `normal` and `stress` pin it (postfix master.cf `-o stress=yes`). */
export type ListenPersonality = 'auto' | 'normal' | 'stress';

export interface Config {
  /** enforce, or shadow: every test runs and logs what it would have done; no client is refused for it. */
  mode: Mode;
  /** Name in the 220 banner and in replies. */
  hostname: string;
  /** Text after the hostname in the banner, default "ESMTP". */
  banner: string;
  listen: ListenConfig[];
  limits: {
    /** Global connection limit (postscreen: process_limit / max_connections). */
    max_connections: number;
    /** Per-client-address concurrent connections; 0 = unlimited. */
    max_per_client: number;
    /** listen(2) backlog. */
    backlog: number;
    /** Time allowed to receive a PROXY header. */
    proxy_timeout: number;
  };
  access: {
    /** Path of the access list file, or null for none. */
    list: string | null;
    /** Action for a `reject` entry (postscreen_denylist_action). */
    action: Action;
    /** Domains whose SPF netblocks are permitted (checks/spf-allowlist.ts). */
    spf: string[];
    /** Bounds (ms) on the time between two walks of a domain. */
    spf_refresh_min: number;
    spf_refresh_max: number;
  };
  pregreet: {
    enable: boolean;
    /** postscreen_greet_wait. */
    wait: number;
    action: Action;
    /** How long a pass is remembered (postscreen_greet_ttl). */
    ttl: number;
  };
  dnsbl: {
    /** Sites in postscreen's syntax (checks/dnsbl-site.ts); empty disables the test. */
    sites: string[];
    /** Score at or above which the client fails (postscreen_dnsbl_threshold). */
    threshold: number;
    /** Score at or below which (when negative) the client passes at once (postscreen_dnsbl_allowlist_threshold). */
    allowlist_threshold: number;
    action: Action;
    /** Deadline of one site's lookup (postscreen_dnsbl_timeout). */
    timeout: number;
    /** The pass TTL is the DNS answers' TTL clamped to these (postscreen_dnsbl_min_ttl/max_ttl). */
    ttl_min: number;
    ttl_max: number;
    /** A site slower than this is logged (DNSBL WARNING slow). */
    slow_warning: number;
    /** Look up TXT of the listing site for the reject text. */
    txt: boolean;
    /** Site domain -> public name used in reject texts (postscreen_dnsbl_reply_map). */
    reply_map: Record<string, string>;
    health: {
      enable: boolean;
      interval: number;
      /** Address every site must list (its test entry). */
      listed: string;
      /** Address no site may list. */
      unlisted: string;
      /** Consecutive error answers that suspend a site. */
      error_limit: number;
      /** Per-site probe addresses: domain -> { listed, unlisted }. */
      sites: Record<string, { listed: string; unlisted: string }>;
    };
  };
  greylist: {
    enable: boolean;
    /** all: every new client; suspicious: only clients whose DNSBL score is at least suspicious_score. */
    policy: 'all' | 'suspicious';
    suspicious_score: number;
    min_delay: number;
    max_delay: number;
    ttl: number;
    ipv4_prefix: number;
    ipv6_prefix: number;
    /** enforce: 450 at RCPT; shadow: logged (`would: defer`), handed over. */
    action: 'enforce' | 'shadow';
  };
  resolver: {
    /** Empty: the nameservers of /etc/resolv.conf. */
    servers: HostPort[];
    /** Per try. */
    timeout: number;
    tries: number;
    /** UDP queries on the wire per server, at most (the window grows to it from 128). */
    max_outstanding: number;
    cache_max: number;
    /** Answer TTL clamp, ms. */
    min_ttl: number;
    max_ttl: number;
  };
  dummy: {
    /** Total time to receive one command (postscreen_command_time_limit). */
    command_time_limit: number;
    /** Commands per dummy session (postscreen_command_count_limit). */
    command_count_limit: number;
    /** Longest accepted command line in bytes, CRLF included (line_length_limit). */
    line_length_limit: number;
    /** Error replies before 421 "too many errors" (smtpd_hard_error_limit). */
    hard_error_limit: number;
  };
  /** STARTTLS in the dummy engine: PEM certificate (chain) and key files, both or neither. */
  tls: {
    cert: string | null;
    key: string | null;
    /** STARTTLS handshakes in progress at once; beyond it, 421. */
    max_handshakes: number;
  };
  /** The after-220 ("deep") protocol tests, run by the dummy engine. */
  deep: {
    pipelining: DeepTestConfig;
    non_smtp: DeepTestConfig;
    bare_newline: DeepTestConfig;
    /** Verbs that fail the non-SMTP test (postscreen_forbidden_commands). */
    forbidden_commands: string[];
    /** What a client that passed the deep tests gets: reconnect (450 at RCPT; its next connection is PASS OLD). */
    after_pass: AfterPass;
  };
  /** The HTTP policy service (checks/policy.ts); url null: none. */
  policy: {
    /** http://HOST:PORT/PATH or unix:/SOCKET[:/PATH] (net/policy-http.ts), or null. */
    url: string | null;
    budget: number;
    max_in_flight: number;
    connections: number;
    fail: 'open' | 'tempfail';
    action: Action;
    at_rcpt: boolean;
    slow_warning: number;
    ttl_max: number;
    cache_max: number;
    breaker: { failures: number; window: number; open_for: number };
  };
  cache: {
    /** Entries held in memory (LRU). */
    max_entries: number;
    /** Snapshot file for restarts, or null. */
    snapshot: string | null;
    /** Snapshot interval. */
    snapshot_interval: number;
    /** memory, or redis: the shared tier behind the memory tier (cache/redis.ts). */
    store: 'memory' | 'redis';
    redis: RedisConfig;
  };
  backend: {
    address: HostPort;
    handoff: HandoffMode;
    connect_timeout: number;
    handshake_timeout: number;
    /** deep.after_pass handoff: how often the backend's EHLO is learned again (handoff/ehlo.ts). */
    ehlo_refresh: number;
  };
  /** Named backends beside `backend` (which is named `default`), chosen by `routes` (handoff/route.ts). */
  backends: BackendConfig[];
  /** Routing rules in order: the first that matches picks the backend; none: the default. */
  routes: RouteConfig[];
  /** A route to a backend the probe finds down: the default backend (ROUTE FALLBACK logged), or 421 (tempfail). */
  routes_fallback: 'default' | 'tempfail';
  /** Worker processes on this host: a count, or auto (one per core; workerCount() in server/cluster-ipc.ts). */
  workers: number | 'auto';
  /** workers > 1: every worker accepts from the shared listening socket, or the primary accepts and hands each socket over (server/primary.ts). */
  workers_accept: 'shared' | 'primary';
  /** Time proxied sessions get to finish after SIGTERM. */
  drain_timeout: number;
  /** Switch to this user once the listeners are bound (server/privileges.ts), or null. */
  user: string | null;
  /** With user: the group to switch to; null: the user's own. */
  group: string | null;
  /** Keep running as root without user. */
  allow_root: boolean;
  /** The stress personality (server/stress.ts): watermarks and the stress values given in the file. */
  stress: {
    /** Open connections, in percent of limits.max_connections, at which new connections get the stress personality. */
    enter_at: number;
    /** Percent at or below which the stress personality ends (below enter_at: hysteresis). */
    leave_at: number;
    /**
     * Stress values set in the file (`stress: { pregreet: { wait: 2s } }`), validated, by key
     * ("pregreet.wait" -> 2000). Keys not here take their schema stress default.
     */
    overrides: Record<string, unknown>;
  };
  log: {
    format: 'json' | 'postscreen' | 'journal';
    level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
    destination: 'stdout' | 'file' | 'syslog';
    /** Bytes (characters) queued for a slow destination before lines are dropped. */
    buffer: number;
    file: string | null;
    syslog: { address: HostPort; transport: 'tcp' | 'udp'; tag: string };
    /** Log the real DNSBL site names, not their dnsbl.reply_map names. */
    reveal_sites: boolean;
  };
  /** The admin HTTP listener (server/admin.ts): /metrics, /healthz, /readyz; off while listen is empty; and the cache admin's socket. */
  admin: {
    /** The cache admin's Unix socket (mode 0600), or null: none. */
    socket: string | null;
    listen: HostPort[];
    /** Peers other than loopback may connect (a specific non-loopback bind address allows them too). */
    allow_remote: boolean;
    /** Bearer token every request must carry, or null (token_file: read from that file). */
    token: string | null;
    token_file: string | null;
    /** /healthz fails when the event loop was delayed longer than this in the last 10 s, ms. */
    max_loop_delay: number;
  };
}

/** cache.redis: the shared store (cache/redis.ts). Durations in ms. */
export interface RedisConfig {
  url: string | null;
  /** Sentinel: the sentinels and the master's name; empty: not Sentinel. */
  sentinels: HostPort[];
  sentinel_master: string;
  /** Cluster: seed nodes; empty: not Cluster. */
  cluster: HostPort[];
  prefix: string;
  timeout: number;
  connect_timeout: number;
  pending_writes: number;
}

/** One named backend (`backends:`). */
export interface BackendConfig {
  name: string;
  address: HostPort;
  handoff: HandoffMode;
  connect_timeout: number;
  handshake_timeout: number;
}

/** Verdicts a route can match (HANDOFF `verdict`; `allowlisted` covers the DNSBL and policy allowlists, `new` an untested client). */
export type RouteVerdict = 'old' | 'new' | 'allowlisted' | 'ignored' | 'shadow';
export const ROUTE_VERDICTS: readonly RouteVerdict[] = ['old', 'new', 'allowlisted', 'ignored', 'shadow'];

/** One routing rule (`routes:`): every condition given must hold. */
export interface RouteConfig {
  match: {
    /** Any of these verdicts, or null: any. */
    verdict: RouteVerdict[] | null;
    /** The session's DNSBL score is at least / at most this; a client without a score (PASS OLD, allowlisted) matches neither. */
    score_min: number | null;
    score_max: number | null;
    /** Served by the stress personality (true) or not (false). */
    stress: boolean | null;
    /** The policy service's `route` reply names this. */
    policy_route: string | null;
    /** The access-list entry the client matched carries this route tag (`route=NAME`; access.spf entries: `spf`). */
    tag: string | null;
  };
  backend: string;
}
