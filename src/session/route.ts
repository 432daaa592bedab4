/*
 * session/route.ts - the backend for a session: its facts to the router.
 *
 * Exports: routeFor(), replayVerdict().
 * routeFor() gives handoff/backend.ts chooseBackend() the session's facts
 * (verdict, DNSBL score, personality, the policy's route) and logs ROUTE
 * FALLBACK when the rule's backend is down; with no routes: configured it is
 * the default backend at once. replayVerdict() is the verdict a
 * same-connection handoff will log, so that it is routed (and its EHLO
 * learned) as it will be logged.
 */
import { EV } from '../log/events.js';
import { chooseBackend, type Choice } from '../handoff/backend.js';
import type { Session } from './state.js';
import { IGNORED, SHADOWED } from './test-state.js';

/**
 * The backend for this session (handoff/backend.ts chooseBackend()) with its
 * facts; a rule whose backend is down is logged (ROUTE FALLBACK) here.
 */
export function routeFor(s: Session, verdict: string, quiet = false): Choice {
  const r = s.gen.routing;
  if (r.rules.length === 0) return { backend: r.default, rule: -1, fallback: null };
  // The access-list tag is looked up again here (a trie match, once per handoff) rather than kept on every session.
  const tag = (s.gen.access?.match(s.client) ?? s.ctx.spf?.match(s.client))?.route ?? null;
  const c = chooseBackend(r, { verdict, score: s.score, stress: s.stress, policyRoute: s.route, tag });
  if (c.fallback !== null && !quiet) {
    s.event(EV.ROUTE_FALLBACK, { rule: c.rule, backend_name: c.fallback.label, backend: c.fallback.name, to: c.backend === null ? 'tempfail' : c.backend.label });
  }
  return c;
}

/** The verdict a same-connection handoff will log (as spliceNow() sets it), for routing before the deep tests end. */
export function replayVerdict(s: Session): string {
  return (s.tests & SHADOWED) !== 0 || (s.deep?.shadowed ?? 0) !== 0 ? 'shadow' : (s.tests & IGNORED) !== 0 ? 'ignored' : 'new';
}
