/*
 * checks/greylist.ts - lightweight greylisting: the first attempt from an
 * unknown client network is deferred; a retry from that network after
 * min_delay and before max_delay passes, and the pass is remembered for ttl.
 *
 * Exports: GreylistOptions, GreylistDecision, greylistDecide(), greylistApplies().
 * Pure: the session derives the network key (net/cidr.ts networkOf: /24 and
 * /64 by default, because large senders retry from neighbouring addresses),
 * reads and writes the state in the verdict store, and acts on the decision.
 * State per network, in one number: 0 = unknown; negative = first seen at
 * -value (ms), waiting; positive = passed until value (ms). It fits the
 * store's record codec and its snapshot, and expires with the LRU.
 *
 * Where postscreen differs: postscreen has no greylisting; its deep tests
 * force a reconnect from the same address. Here a retry from any address of
 * the network passes, and no mail is held either way: the deferral is a 450
 * at RCPT from the dummy engine.
 */

export interface GreylistOptions {
  minDelayMs: number;
  maxDelayMs: number;
  ttlMs: number;
}

export type GreylistDecision =
  /** Unknown (or the earlier attempt is older than max_delay): defer, and remember now. */
  | { verdict: 'defer'; state: number; reason: 'new' | 'expired' }
  /** Retried too soon: defer again, keep the first-seen time. */
  | { verdict: 'defer'; state: number; reason: 'early'; waitMs: number }
  /** Retried in the window, or already passed: pass, remember until state. */
  | { verdict: 'pass'; state: number; reason: 'retry' | 'passed'; delayMs: number };

export function greylistDecide(state: number, now: number, o: GreylistOptions): GreylistDecision {
  if (state > now) return { verdict: 'pass', state, reason: 'passed', delayMs: 0 };
  if (state < 0) {
    const first = -state;
    const age = now - first;
    if (age < o.minDelayMs) return { verdict: 'defer', state, reason: 'early', waitMs: o.minDelayMs - age };
    if (age <= o.maxDelayMs) return { verdict: 'pass', state: now + o.ttlMs, reason: 'retry', delayMs: age };
    return { verdict: 'defer', state: -now, reason: 'expired' };
  }
  return { verdict: 'defer', state: -now, reason: 'new' };
}

/** Which new clients are greylisted: all, or only those whose DNSBL score is at or above `minScore`. */
export function greylistApplies(policy: 'all' | 'suspicious', dnsblScore: number, minScore: number): boolean {
  return policy === 'all' || dnsblScore >= minScore;
}
