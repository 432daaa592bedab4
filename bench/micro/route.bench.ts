/*
 * bench/micro/route.bench.ts - what routing costs a handoff: the routes:
 * rules (handoff/route.ts matchRoute) against a client's facts, five rules,
 * for a client matching the first, one matching the last, and one matching
 * none (every rule read: the worst case). Paid once per handoff, never per line.
 */
import type { Bench } from 'tinybench';
import { validateConfig } from '../../src/config/validate.js';
import { compileRoutes, matchRoute, type RouteFacts } from '../../src/handoff/route.js';

export default function (bench: Bench): void {
  const routes = validateConfig({
    backends: [{ name: 'strict', address: '127.0.0.1:10026' }],
    routes: [
      { match: { policy_route: 'vip' }, backend: 'strict' },
      { match: { verdict: 'old' }, backend: 'default' },
      { match: { verdict: ['ignored', 'shadow'] }, backend: 'strict' },
      { match: { stress: true }, backend: 'strict' },
      { match: { score_min: 1, score_max: 3 }, backend: 'strict' },
    ],
  }).routes;
  const rules = compileRoutes(routes, (n) => n);
  const first: RouteFacts = { verdict: 'old', score: null, stress: false, policyRoute: 'vip', tag: null };
  const last: RouteFacts = { verdict: 'new', score: 2, stress: false, policyRoute: null, tag: null };
  const none: RouteFacts = { verdict: 'new', score: 5, stress: false, policyRoute: null, tag: null };
  let sink = 0;
  bench.add('route: 5 rules, first matches', () => { sink += matchRoute(rules, first); });
  bench.add('route: 5 rules, last matches', () => { sink += matchRoute(rules, last); });
  bench.add('route: 5 rules, none matches', () => { sink += matchRoute(rules, none); });
  if (sink === Number.MIN_VALUE) console.log(sink);
}
