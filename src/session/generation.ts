/*
 * session/generation.ts - what one configuration yields, as one immutable
 * object: the generation a session takes at accept and keeps to its end.
 *
 * Exports: Generation, Personality, PersonalityConfig, Personalities.
 * Everything derived from the configuration lives here (the replies, the
 * access list, the DNSBL test, the backend, STARTTLS, the two
 * personalities); runtime state (open sessions, counters, descriptor
 * accounting, stress state) lives apart, in the Ctx (session/state.ts) and
 * the server. A reload builds a new generation and swaps it for new
 * connections (server/); sessions in flight keep theirs, through their
 * personality, which points back at its generation: a session costs no field
 * for it.
 */
import type { SecureContext } from 'node:tls';
import type { Config } from '../config/types.js';
import type { AccessList } from '../checks/access.js';
import type { Dnsbl } from '../checks/dnsbl.js';
import type { Policy } from '../checks/policy.js';
import type { EarlyCheck } from '../checks/check.js';
import type { DeepOptions } from '../checks/deep.js';
import type { Replies } from '../smtp/replies.js';
import type { Backend, Routing } from '../handoff/backend.js';

/** A personality as the configuration defines it (what `explain` and the verdict need). */
export interface PersonalityConfig {
  readonly name: 'normal' | 'stress';
  /** The stress personality: its sessions' log events carry `stress: true`. */
  readonly stress: boolean;
  /** The whole configuration with this personality's values. */
  readonly config: Config;
  /** Test indexes (checks/tests.ts) enabled under this personality: PASS OLD needs a pass for each. */
  readonly enabled: readonly number[];
  /** The deep tests under this personality (stress may skip or enforce them), or null when none is enabled. */
  readonly deep: DeepOptions | null;
}

/** A personality of one generation. */
export interface Personality extends PersonalityConfig {
  readonly gen: Generation;
}

export interface Personalities {
  readonly normal: Personality;
  readonly stress: Personality;
}

export interface Generation {
  /** The configuration as loaded (the normal personality's values). */
  readonly config: Config;
  readonly replies: Replies;
  readonly access: AccessList | null;
  /** The DNSBL test, or null when no sites are configured (also in `checks`; the server runs its health probes). */
  readonly dnsbl: Dnsbl | null;
  /** The HTTP policy service (policy.url), or null; also in `checks`. Closed when its generation is retired. */
  readonly policy: Policy | null;
  /** The checks every new client gets at accept, beside the greet wait (checks/check.ts EarlyCheck). */
  readonly checks: readonly EarlyCheck[];
  /** STARTTLS in the dummy engine (tls.cert / tls.key), or null: not offered. */
  readonly tls: SecureContext | null;
  /** The default backend (backend:). */
  readonly backend: Backend;
  /** The default and the named backends (backends:) and the routes: among them (handoff/backend.ts chooseBackend()). */
  readonly routing: Routing;
  readonly personalities: Personalities;
}
