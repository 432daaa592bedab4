/*
 * handoff/backend.ts - a backend smtpd as an object, and the one function
 * that chooses the backend for a client.
 *
 * Exports: Backend, EhloSource, HandoffHealth, Routing, Choice, makeBackend(), makeRouting(), chooseBackend().
 * A Backend is where a screened client goes: its address, how it learns the
 * real client (XCLIENT, PROXY v1/v2, or nothing), its timeouts, and what it
 * offers in EHLO once learned (deep.after_pass handoff). chooseBackend() is
 * the single place that picks one: the first `routes:` rule the client's
 * facts match (handoff/route.ts) names it, none names the default (`backend:`).
 * A rule's backend that its probe finds down gives the default instead
 * (`fallback` set, for ROUTE FALLBACK) or, with routes_fallback tempfail, no
 * backend: the client gets 421.
 */
import type { HandoffMode, RouteConfig } from '../config/types.js';
import { compileRoutes, matchRoute, type RouteFacts, type Rule } from './route.js';
import type { LearnedEhlo } from '../smtp/ehlo-keywords.js';

/** What the backend offers in EHLO, as learned (server/backend-ehlo.ts EhloLearner). */
export interface EhloSource {
  readonly current: LearnedEhlo | null;
}

/** What the backend probe (server/backend-health.ts) found, as a handoff reads it. */
export interface HandoffHealth {
  /** The backend speaks another handoff protocol than the configured one. */
  readonly handoffMode: boolean;
  /** A handoff failed: probe now (rate-limited). */
  suspect(): void;
  /** The probe found the backend down (non-null) or not (null); optional for hand-built backends. */
  readonly down?: unknown;
}

export interface Backend {
  /** "host:port", for logs. */
  readonly name: string;
  /** Its name in the configuration: default (backend:) or a backends[].name. */
  readonly label: string;
  readonly host: string;
  readonly port: number;
  readonly mode: HandoffMode;
  readonly connectTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  /** What the backend offers in EHLO (deep.after_pass handoff), or null when it is not learned. */
  readonly ehlo: EhloSource | null;
  /** The backend probe, or null (tests that build a backend by hand). */
  readonly health: HandoffHealth | null;
}

export function makeBackend(host: string, port: number, mode: HandoffMode, connectTimeoutMs: number, handshakeTimeoutMs: number, ehlo: EhloSource | null, health: HandoffHealth | null = null, label = 'default'): Backend {
  const name = `${host}:${port}`;
  return Object.freeze({ name, label, host, port, mode, connectTimeoutMs, handshakeTimeoutMs, ehlo, health });
}

/** The backends of one generation and the rules that pick among them. */
export interface Routing {
  readonly default: Backend;
  /** By label, the default included. */
  readonly byName: ReadonlyMap<string, Backend>;
  readonly rules: readonly Rule<Backend>[];
  readonly fallback: 'default' | 'tempfail';
}

/** Routing over `named` backends (the default among them as `default`) by `routes`; a name not found is the default (validation refuses it first). */
export function makeRouting(def: Backend, named: readonly Backend[], routes: readonly RouteConfig[], fallback: 'default' | 'tempfail'): Routing {
  const byName = new Map<string, Backend>([['default', def], ...named.map((b) => [b.label, b] as const)]);
  return Object.freeze({ default: def, byName, rules: compileRoutes(routes, (n) => byName.get(n) ?? def), fallback });
}

/** What chooseBackend() decided: the backend (null: 421, the rule's backend is down and routes_fallback is tempfail), the rule's index (-1: none matched), the backend the rule named when it was down. */
export interface Choice {
  readonly backend: Backend | null;
  readonly rule: number;
  readonly fallback: Backend | null;
}

/** The backend for a client with these facts. */
export function chooseBackend(r: Routing, f: RouteFacts): Choice {
  const i = r.rules.length === 0 ? -1 : matchRoute(r.rules, f);
  if (i < 0) return { backend: r.default, rule: -1, fallback: null };
  const b = (r.rules[i] as Rule<Backend>).target;
  if (b === r.default || (b.health?.down ?? null) === null) return { backend: b, rule: i, fallback: null };
  return { backend: r.fallback === 'default' ? r.default : null, rule: i, fallback: b };
}
