/*
 * handoff/route.ts - which routing rule (`routes:`) a client matches.
 *
 * Exports: RouteFacts, Rule, compileRoutes(), matchRoute(), routeVerdict().
 * Pure: the session's facts at handoff (its verdict, DNSBL score, personality,
 * the policy service's route, the access-list entry's tag) against the rules in order; the first whose
 * every condition holds wins. compileRoutes() turns the configuration's rules
 * into bit masks once per generation, so a handoff compares integers and
 * allocates nothing.
 */
import type { RouteConfig, RouteVerdict } from '../config/types.js';

/** What the router knows of a client at handoff. */
export interface RouteFacts {
  /** The HANDOFF verdict (allowlisted, dnsbl-allowlisted, policy-allowlisted, old, new, untested, ignored, shadow). */
  readonly verdict: string;
  /** The DNSBL score of this session, or null (no lookup: PASS OLD, allowlisted, DNSBL off). */
  readonly score: number | null;
  readonly stress: boolean;
  /** The policy service's `route` reply, or null. */
  readonly policyRoute: string | null;
  /** The route tag of the access-list entry the client matched (`route=NAME`; access.spf: `spf`), or null. */
  readonly tag: string | null;
}

/** One rule, compiled; `target` is what the caller resolved the backend name to. */
export interface Rule<T> {
  /** Bits of VERDICT_BIT, 0: any verdict. */
  readonly verdicts: number;
  readonly scoreMin: number | null;
  readonly scoreMax: number | null;
  readonly stress: boolean | null;
  readonly policyRoute: string | null;
  readonly tag: string | null;
  readonly target: T;
}

const VERDICT_BIT: Readonly<Record<RouteVerdict, number>> = { old: 1, new: 2, allowlisted: 4, ignored: 8, shadow: 16 };

/** The route verdict of a HANDOFF verdict: the three allowlists are `allowlisted`, an untested client is `new`. */
export function routeVerdict(verdict: string): RouteVerdict | null {
  switch (verdict) {
    case 'old': case 'new': case 'allowlisted': case 'ignored': case 'shadow': return verdict;
    case 'dnsbl-allowlisted': case 'policy-allowlisted': return 'allowlisted';
    case 'untested': return 'new';
    default: return null;
  }
}

export function compileRoutes<T>(routes: readonly RouteConfig[], resolve: (backend: string) => T): readonly Rule<T>[] {
  return Object.freeze(routes.map((r) => Object.freeze({
    verdicts: (r.match.verdict ?? []).reduce((m, v) => m | VERDICT_BIT[v], 0),
    scoreMin: r.match.score_min,
    scoreMax: r.match.score_max,
    stress: r.match.stress,
    policyRoute: r.match.policy_route,
    tag: r.match.tag,
    target: resolve(r.backend),
  })));
}

/** The index of the first rule `f` matches, or -1. */
export function matchRoute<T>(rules: readonly Rule<T>[], f: RouteFacts): number {
  const rv = routeVerdict(f.verdict);
  const bit = rv === null ? 0 : VERDICT_BIT[rv];
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i] as Rule<T>;
    if (r.verdicts !== 0 && (r.verdicts & bit) === 0) continue;
    if (r.scoreMin !== null && (f.score === null || f.score < r.scoreMin)) continue;
    if (r.scoreMax !== null && (f.score === null || f.score > r.scoreMax)) continue;
    if (r.stress !== null && r.stress !== f.stress) continue;
    if (r.policyRoute !== null && r.policyRoute !== f.policyRoute) continue;
    if (r.tag !== null && r.tag !== f.tag) continue;
    return i;
  }
  return -1;
}
