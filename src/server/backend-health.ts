/*
 * server/backend-health.ts - is the backend there, and does it speak the configured handoff?
 * Probed at start, every minute while it is down, and at once when a handoff fails.
 *
 * Exports: BackendHealth, BackendHealthOptions, ProbeVerdict, ProbeOutcome, diagnose(mode, first, withProxy?), PROBE_RETRY_MS.
 * One probe is server/backend-ehlo.ts's dialogue as the screener (connect, the PROXY header in
 * the proxy modes, greeting, EHLO, QUIT); diagnose() reads its outcome:
 *   - proxy-v1/v2: a greeting then anything but 250 to EHLO (Postfix answers the header's
 *     lines with "500 5.5.2 Error: bad syntax" or "command not recognized", and the v2
 *     signature's QUIT with 221 and a close): the backend reads no PROXY header, `handoff mode`.
 *   - xclient: EHLO without XCLIENT (Postfix: the screener is not in
 *     smtpd_authorized_xclient_hosts, so XCLIENT would be refused): `handoff mode`. No greeting
 *     (a timeout, a close, or a refusal such as Postfix's "421 4.3.0 Server local error" after
 *     smtpd_upstream_proxy_timeout): asked again with a PROXY v1 header; a 220 and a 250 to
 *     EHLO then mean the backend waits for a PROXY header: `handoff mode`.
 *   - anything else that fails: down, with the stage and the reason (ECONNREFUSED, timeout...).
 * The first probe's answer is logged either way: BACKEND OK, or BACKEND FAIL at warn
 * (`probe: true`, the address, the reason). Later, an outage is logged once when it starts (and
 * when its reason changes), the recovery once, as BACKEND OK with the outage's length. Sessions read `handoffMode` to name a failure
 * (session/handoff.ts) and call suspect() when a handoff failed, which probes now unless a
 * probe ran less than SUSPECT_MIN_MS ago.
 */
import { probeBackendEhlo } from './backend-ehlo.js';
import { ScreenError } from '../util/errors.js';
import type { HandoffMode } from '../config/types.js';

/** While the backend is down, it is probed again this often. */
export const PROBE_RETRY_MS = 60_000;
/** A failed handoff probes at once, but not more often than this. */
const SUSPECT_MIN_MS = 5_000;

export type ProbeVerdict =
  | { ok: true }
  | { ok: false; stage: string; reason: string; detail?: string };

export type ProbeOutcome = { ok: true; keywords: ReadonlyMap<string, string> } | { ok: false; stage: string; reason: string; code?: number };

function outcomeOf(err: unknown): ProbeOutcome {
  if (err instanceof ScreenError) {
    const d = err.details;
    const code = typeof d['code'] === 'number' ? d['code'] : undefined;
    return { ok: false, stage: String(d['stage'] ?? 'connect'), reason: String(d['reason'] ?? err.message), ...(code !== undefined ? { code } : {}) };
  }
  const e = err as NodeJS.ErrnoException;
  return { ok: false, stage: 'connect', reason: e.code ?? e.message };
}

export interface BackendHealthOptions {
  host: string;
  port: number;
  mode: HandoffMode;
  hostname: string;
  /** Bound on one probe dialogue. */
  timeoutMs: number;
  /** Down (once per outage, and again when the reason changes). */
  onDown: (v: Extract<ProbeVerdict, { ok: false }>) => void;
  /** Up at the first probe (`downMs` null), or up again after onDown (`downMs` since the outage was first seen). */
  onUp: (downMs: number | null) => void;
  /** Injected for tests: one dialogue, resolving with the EHLO keywords. */
  probe?: typeof probeBackendEhlo;
  now?: () => number;
}

/** diagnose - a probe's outcome, and for xclient the outcome of the follow-up with a PROXY header, as a verdict. */
export function diagnose(mode: HandoffMode, first: ProbeOutcome, withProxy?: ProbeOutcome): ProbeVerdict {
  if (first.ok) {
    if (mode === 'xclient' && !first.keywords.has('XCLIENT')) {
      return { ok: false, stage: 'ehlo', reason: 'handoff mode',
        detail: 'the backend does not offer XCLIENT to the screener, so it would refuse it (Postfix: add the screener to smtpd_authorized_xclient_hosts)' };
    }
    return { ok: true };
  }
  const said = `${first.reason}`;
  if ((mode === 'proxy-v1' || mode === 'proxy-v2') && first.stage === 'ehlo') {
    return { ok: false, stage: 'ehlo', reason: 'handoff mode',
      detail: `the backend greeted, then answered the PROXY header as SMTP commands (${said}): it expects none; set backend.handoff to xclient or none, or enable the PROXY protocol on it (Postfix: smtpd_upstream_proxy_protocol = haproxy)` };
  }
  if ((mode === 'xclient' || mode === 'none') && first.stage === 'greeting' && withProxy?.ok === true) {
    return { ok: false, stage: 'greeting', reason: 'handoff mode',
      detail: `no greeting without a PROXY header (${said}), a greeting with one: the backend expects the PROXY protocol; set backend.handoff to proxy-v1 or proxy-v2` };
  }
  return { ok: false, stage: first.stage, reason: first.reason };
}

/**
 * BackendHealth - the backend's state as probed. start() probes once (not awaited by the
 * caller: a backend that is down at start must not keep the screener from listening; its
 * clients get 421 as they would anyway). stop() ends the schedule; a probe in flight reports
 * nothing.
 */
export class BackendHealth {
  readonly #o: BackendHealthOptions;
  readonly #probe: typeof probeBackendEhlo;
  readonly #now: () => number;
  #down: Extract<ProbeVerdict, { ok: false }> | null = null;
  #downSince = 0;
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  #stopped = false;
  #lastProbe = -Infinity;
  #probed = false;

  constructor(o: BackendHealthOptions) {
    this.#o = o;
    this.#probe = o.probe ?? probeBackendEhlo;
    this.#now = o.now ?? Date.now;
  }

  /** The last probe found the backend speaking another handoff protocol than backend.handoff. */
  get handoffMode(): boolean {
    return this.#down?.reason === 'handoff mode';
  }

  /** The last probe's failure, or null while the backend is up (or not probed yet). */
  get down(): Extract<ProbeVerdict, { ok: false }> | null {
    return this.#down;
  }

  /** The first probe; resolves when it is done (callers need not wait). */
  start(): Promise<void> {
    return this.#run();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /**
   * A handoff failed: probe now, unless one runs or ran within SUSPECT_MIN_MS, or the backend
   * is known to be down (then the schedule asks again within PROBE_RETRY_MS).
   */
  suspect(): void {
    if (this.#stopped || this.#running || this.#down !== null || this.#now() - this.#lastProbe < SUSPECT_MIN_MS) return;
    void this.#run();
  }

  async #once(mode: HandoffMode): Promise<ProbeOutcome> {
    const o = this.#o;
    try {
      const keywords = await this.#probe({ host: o.host, port: o.port, mode, hostname: o.hostname, timeoutMs: o.timeoutMs });
      return { ok: true, keywords };
    } catch (err) {
      return outcomeOf(err);
    }
  }

  async #run(): Promise<void> {
    if (this.#stopped || this.#running) return;
    this.#running = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#lastProbe = this.#now();
    const mode = this.#o.mode;
    let verdict: ProbeVerdict;
    try {
      const first = await this.#once(mode);
      // No greeting in xclient (or none) mode: does the backend greet after a PROXY header?
      const retry = !first.ok && first.stage === 'greeting' && (mode === 'xclient' || mode === 'none')
        ? await this.#once('proxy-v1') : undefined;
      verdict = diagnose(mode, first, retry);
    } finally {
      this.#running = false;
    }
    if (this.#stopped) return;
    const first = !this.#probed;
    this.#probed = true;
    if (verdict.ok) {
      if (this.#down !== null) {
        this.#down = null;
        this.#o.onUp(this.#now() - this.#downSince);
      } else if (first) this.#o.onUp(null);
      return;
    }
    const was = this.#down;
    if (was === null) this.#downSince = this.#now();
    this.#down = verdict;
    if (was === null || was.reason !== verdict.reason || was.stage !== verdict.stage) this.#o.onDown(verdict);
    this.#timer = setTimeout(() => { void this.#run(); }, PROBE_RETRY_MS);
    this.#timer.unref();
  }
}
