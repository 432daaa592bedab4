/*
 * handoff/backend.ts - a backend smtpd as an object, and the one function
 * that chooses the backend for a client.
 *
 * Exports: Backend, EhloSource, HandoffHealth, makeBackend(), chooseBackend().
 * A Backend is where a screened client goes: its address, how it learns the
 * real client (XCLIENT, PROXY v1/v2, or nothing), its timeouts, and what it
 * offers in EHLO once learned (deep.after_pass handoff). chooseBackend() is
 * the single place that picks one for a verdict; today there is one backend,
 * so it is that one: routing by verdict (a friendlier smtpd for known
 * clients, a stricter one for strangers) is a change of this function only.
 */
import type { HandoffMode } from '../config/types.js';
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
}

export interface Backend {
  /** "host:port", for logs. */
  readonly name: string;
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

export function makeBackend(host: string, port: number, mode: HandoffMode, connectTimeoutMs: number, handshakeTimeoutMs: number, ehlo: EhloSource | null, health: HandoffHealth | null = null): Backend {
  const name = `${host}:${port}`;
  return Object.freeze({ name, host, port, mode, connectTimeoutMs, handshakeTimeoutMs, ehlo, health });
}

/** The backend for a client with HANDOFF verdict `verdict` (allowlisted, old, new, ...). */
export function chooseBackend(backend: Backend, _verdict: string): Backend {
  return backend;
}
