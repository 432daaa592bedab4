/*
 * session/machine.ts - one connection from accept to verdict:
 *   limits → access list → verdict cache → pregreet wait → conclude.
 *
 * Exports: startSession().
 * The listener calls startSession() once the client address is known (after
 * any PROXY header), with the personality (and so the generation) chosen at
 * accept; the session reads its values from s.config and s.gen, never from
 * the screener's current generation, which a reload may swap.
 * Handlers are module-level and find the Session through
 * the socket; every timer and socket event first checks `closed`
 * (late events return early).
 */
import { EV } from '../log/events.js';
import { TESTS, TestIndex } from '../checks/tests.js';
import { actionIn, applyAction, shadowFields } from '../checks/check.js';
import { EARLY_KEEP, PregreetProbe, pregreetResult } from '../checks/pregreet.js';
import { Session, kSession, type Ctx, type ScreenSocket } from './state.js';
import type { CheckRun, ClientFacts, EarlyCheck } from '../checks/check.js';
import { closeWith, refuse, onClientClose, onClientEnd } from './close.js';
import { conclude } from './conclude.js';
import { atAccept, cleared } from './verdict.js';
import { ALLOWLISTED, DONE, FAIL, IGNORED, PASS, SHADOWED, TODO, anyFail, earlyDone, fates, flag } from './test-state.js';
import { allPassed, type VerdictRecord } from '../cache/store.js';
import { handoff } from './handoff.js';
import type { Personality } from './generation.js';
import { guardSocket, guardTimer } from './guard.js';
import type { Action } from '../config/types.js';

const PREGREET = TestIndex.pregreet;
const POLICY = TestIndex.policy;

/**
 * A connection whose client address is known. `socket` has its 'error'
 * handler already; data may be buffered in it (paused) when a PROXY header
 * was followed by early bytes.
 */
export function startSession(ctx: Ctx, socket: ScreenSocket, client: string, port: number, personality: Personality): void {
  const cfg = personality.config;
  const gen = personality.gen;
  const max = cfg.limits.max_per_client;
  const count = max > 0 ? (ctx.perClient.get(client) ?? 0) + 1 : 0;
  // workers_accept: shared: the host's count of a client at or over the limit, as the primary last said.
  const host = ctx.hostClients?.get(client) ?? 0; // only clients at or over a limit are named; read under max > 0 below
  if (max > 0 && (count > max || host >= max)) {
    const em = ctx.emitter;
    const known = Math.max(count - 1, host);
    if (!em.enabled(EV.TOO_MANY_CONNECTIONS)) em.emit(EV.TOO_MANY_CONNECTIONS);
    else if (personality.stress) em.emit(EV.TOO_MANY_CONNECTIONS, { client, port, stress: true, count: known });
    else em.emit(EV.TOO_MANY_CONNECTIONS, { client, port, count: known });
    refuse(socket, gen.replies.tooManyConnections);
    return;
  }
  const s = new Session(ctx, socket, client, port, personality);
  if (max > 0) {
    ctx.perClient.set(client, count);
    s.counted = true;
    ctx.onClientCount?.(client, count);
  }
  ctx.sessions.add(s);
  socket.on('close', onClientClose);
  socket.on('end', onClientEnd);
  // socket.localAddress makes Node keep the local address (an object and a string, ~90 B per
  // held connection): read only when the line is written.
  if (ctx.emitter.enabled(EV.CONNECT)) s.event(EV.CONNECT, { local: socket.localAddress, local_port: socket.localPort });
  else s.event(EV.CONNECT);

  // 1. Permanent access list (first match wins) and 2. the verdict cache: session/verdict.ts atAccept().
  // access.spf's permits come after the access list (whose dunno also stops the search).
  const hit = gen.access?.match(client) ?? ctx.spf?.match(client);
  const rec = ctx.store.get(client) ?? null;
  s.record = rec;
  const now = s.ctx.clock.now();
  const v = atAccept({ now, personality, access: hit?.action ?? null, record: rec });
  switch (v.next) {
    case 'allowlisted':
      s.event(EV.ALLOWLISTED, { entry: hit?.entry });
      s.verdict = 'allowlisted';
      handoff(s);
      return;
    case 'pass-old':
      s.event(EV.PASS_OLD);
      s.verdict = 'old';
      handoff(s);
      return;
    case 'denylisted':
      s.event(EV.DENYLISTED, v.would === undefined ? { entry: hit?.entry, action: v.action } : { entry: hit?.entry, action: v.action, would: v.would });
      switch (applyAction(v.action)) {
        case 'drop':
          closeWith(s, gen.replies.dropFor('denylist'));
          return;
        case 'enforce':
          s.rejectReply = gen.replies.reject('denylist');
          s.rejectReason = 'denylist';
          break;
        case 'continue':
          s.tests |= IGNORED;
          break;
        case 'shadow':
          s.tests |= SHADOWED;
          break;
      }
      break;
    case 'test':
      break;
  }

  // 3. The early tests during the greet wait. DNSBL lookups start now, unless a DNSBL pass is still valid.
  // The early checks (checks/check.ts) start now, each unless its pass is still valid.
  const checks = gen.checks;
  let deadline = 0;
  for (let i = 0; i < checks.length; i++) {
    const c = checks[i] as EarlyCheck;
    if ((rec?.[c.test] ?? 0) > now) continue;
    const run = c.wantsFacts === true ? c.start(client, s, onCheckDone, factsOf(s, hit?.action === 'reject', personality.enabled, now)) : c.start(client, s, onCheckDone);
    if (run === null) continue;
    (s.runs ??= new Array<CheckRun | null>(checks.length).fill(null))[i] = run;
    s.tests |= flag(c.test, TODO);
    deadline = Math.max(deadline, c.deadlineMs);
  }
  // The shared tier (cache.store: redis), second after memory: asked now, beside the greet wait
  // and the DNSBL lookups; its answer may still make the client PASS OLD (onSharedAnswer).
  const shared = ctx.store.shared;
  if (shared !== undefined && v.next === 'test' && shared.up) {
    s.sharedPending = true;
    shared.lookup(client, s, onSharedAnswer);
    deadline = Math.max(deadline, shared.timeoutMs);
  }
  s.phase = 'pregreet';
  if (!cfg.pregreet.enable) {
    if (s.runs === null && !s.sharedPending) {
      queueMicrotask(() => concludeGuarded(s));
      return;
    }
    // No teaser: wait for the checks alone, bounded by their longest deadline.
    s.timer = s.ctx.clock.setTimeout(onGreetWaitEnd, deadline, s);
    return;
  }
  s.tests |= flag(PREGREET, TODO);
  // What a pregreeter said early is not lost: under ignore it goes to the backend, under
  // enforce the dummy engine answers it (postscreen peeks at early bytes; it never eats them).
  s.pregreet = new PregreetProbe(actionIn(cfg.pregreet.action, cfg.mode) === 'drop' ? 0 : EARLY_KEEP);
  socket.write(gen.replies.teaser);
  socket.on('data', onEarlyData);
  socket.resume();
  s.timer = s.ctx.clock.setTimeout(onGreetWaitEnd, cfg.pregreet.wait, s);
}

/** What a check that asks for them (the policy) is told at accept: the listener, the PROXY peer, the tests with a valid pass. */
function factsOf(s: Session, denylisted: boolean, enabled: readonly number[], now: number): ClientFacts {
  const sock = s.socket;
  const peer = sock.remoteAddress ?? null;
  const passed: string[] = [];
  for (const t of enabled) if ((s.record?.[t] ?? 0) > now) passed.push(TESTS[t] ?? '');
  return {
    client: s.client, port: s.port, local: sock.localAddress ?? '', localPort: sock.localPort ?? 0,
    proxy: peer !== null && peer.replace(/^::ffff:/, '') !== s.client ? peer : null, passed, denylisted,
  };
}

/** Ends the greet wait now when no early test is left to wait for (postscreen: "terminate the greet delay"). */
function endWaitIfDone(s: Session): void {
  if (s.closed || s.phase !== 'pregreet' || !earlyDone(s.tests) || s.sharedPending) return;
  s.clearTimer();
  s.socket.removeListener('data', onEarlyData);
  conclude(s);
}

/** Bytes before the greet wait is over: a pregreet. The first chunk decides; the rest is counted. */
function _onEarlyData(this: ScreenSocket, chunk: Buffer): void {
  const s = this[kSession];
  if (s === undefined || s.closed || s.pregreet === null) return;
  const p = s.pregreet;
  const hadGap = p.discarded > 0;
  const first = p.record(chunk, s.ctx.clock.now());
  const configured = s.config.pregreet.action;
  const action = actionIn(configured, s.config.mode);
  if (first) {
    const r = pregreetResult(p, s.started);
    s.event(EV.PREGREET, action === 'shadow' ? { ...r.fields, ...shadowFields(configured, s.config.mode) } : { ...r.fields, action });
    // A failed test loses its pass, whatever the action (a new record: stored records are values).
    s.remember(cleared(s.record, [PREGREET]));
    switch (applyAction(action)) {
      case 'drop':
        s.tests |= flag(PREGREET, FAIL | DONE);
        closeWith(s, s.gen.replies.dropFor('pregreet'));
        return;
      case 'enforce':
        s.tests |= flag(PREGREET, FAIL | DONE);
        if (s.rejectReply === null) {
          s.rejectReply = s.gen.replies.reject('pregreet');
          s.rejectReason = 'pregreet';
        }
        break;
      case 'continue':
        s.tests |= flag(PREGREET, DONE) | IGNORED;
        break;
      case 'shadow':
        // Done without a pass (not remembered), as ignore; the client goes on as if it had waited.
        s.tests |= flag(PREGREET, DONE) | SHADOWED;
        break;
    }
  }
  if (!hadGap && p.discarded > 0 && earlyFlood(s, action)) return;
  if (first) endWaitIfDone(s);
}

/**
 * More than EARLY_KEEP bytes before the greeting: the excess is not kept (the memory bound),
 * so the client's stream has a gap. Under ignore it would reach the backend with that gap:
 * 421, the client retries. Under enforce the excess is read and discarded until the wait
 * ends, and the dummy engine goes on (it never accepts mail, so the gap costs nothing).
 * Returns true when the session ended.
 */
function earlyFlood(s: Session, action: Action): boolean {
  const p = s.pregreet as PregreetProbe;
  const o = applyAction(action);
  // Shadow as ignore: the stream with its gap cannot reach the backend.
  const cut = o === 'continue' || o === 'shadow';
  s.event(EV.PREGREET_LIMIT, { bytes: p.bytes, kept: EARLY_KEEP, discarded: p.discarded, action, outcome: cut ? '421' : 'dummy' });
  if (!cut) return false;
  closeWith(s, s.gen.replies.earlyTooLong);
  return true;
}

/** A check's answer is complete. One that vouches for the client (DNSBL allowlist) ends the wait now; so does a wait with nothing else to wait for. */
function _onCheckDone(s: Session, run: CheckRun): void {
  if (s.closed || s.phase !== 'pregreet' || s.runs === null) return;
  const i = s.runs.indexOf(run);
  const c = s.gen.checks[i];
  if (c === undefined) return;
  s.tests |= flag(c.test, DONE);
  if (vouched(s) && !anyFail(s.tests) && (s.tests & (IGNORED | SHADOWED)) === 0) {
    s.tests |= ALLOWLISTED;
    s.clearTimer();
    s.socket.removeListener('data', onEarlyData);
    conclude(s);
    return;
  }
  endWaitIfDone(s);
}

/**
 * A check that is done vouches for the client (DNSBL allowlist, policy permit), and no policy call
 * is still out: the policy service's word overrules the DNS lists both ways (session/verdict.ts),
 * so a DNSBL allowlisting waits for it (at most policy.budget); a policy permit waits for nothing.
 */
function vouched(s: Session): boolean {
  const runs = s.runs;
  if (runs === null) return false;
  let v = false;
  for (let i = 0; i < runs.length; i++) {
    const run = runs[i];
    const c = s.gen.checks[i];
    if (run == null || c === undefined) continue;
    if ((fates(s.tests, c.test) & DONE) === 0) {
      if (c.test === POLICY) return false;
      continue;
    }
    if (!v && c.outcome(run).allowlisted) v = true;
  }
  return v;
}

/**
 * The shared tier answered within the wait. Its record is the client's from now on (another
 * screener may have seen it since this one did); every pass unexpired: PASS OLD now, as from
 * memory at accept but after the teaser. A pregreet this session saw clears that pass from it.
 * Late (conclude() ran) or after the session closed: ignored.
 */
function _onSharedAnswer(s: Session, rec: VerdictRecord | null): void {
  if (!s.sharedPending) return;
  s.sharedPending = false;
  if (s.closed || s.phase !== 'pregreet') return;
  if (rec !== null) {
    const pg = fates(s.tests, PREGREET);
    if ((pg & DONE) !== 0 && (pg & PASS) === 0) {
      const c = cleared(rec, [PREGREET]);
      if (c !== null) s.remember(c);
      else {
        s.record = rec;
        s.ctx.store.shared?.keep(s.client, rec);
      }
    } else {
      s.record = rec;
      s.ctx.store.shared?.keep(s.client, rec);
      if ((s.tests & (IGNORED | SHADOWED)) === 0 && !anyFail(s.tests) && allPassed(rec, s.personality.enabled, s.ctx.clock.now())) {
        s.clearTimer();
        s.socket.removeListener('data', onEarlyData);
        const runs = s.runs;
        s.runs = null;
        if (runs !== null) for (const r of runs) r?.cancel();
        s.event(EV.PASS_OLD, SHARED_TIER);
        s.verdict = 'old';
        handoff(s);
        return;
      }
    }
  }
  endWaitIfDone(s);
}

const SHARED_TIER = Object.freeze({ tier: 'shared' });

function _onGreetWaitEnd(s: Session): void {
  s.timer = null;
  if (s.closed) return;
  s.socket.removeListener('data', onEarlyData);
  // The client waited its turn: the pregreet test passed.
  if ((s.tests & flag(PREGREET, TODO | DONE)) === flag(PREGREET, TODO)) s.tests |= flag(PREGREET, PASS | DONE);
  conclude(s);
}

// The entry points Node calls, each wrapped once: a throw ends that session with 421, not the process (session/guard.ts).
const onEarlyData = guardSocket('pregreet data', _onEarlyData);
const onGreetWaitEnd = guardTimer('greet wait', _onGreetWaitEnd);
const onCheckDone = guardTimer('check answer', _onCheckDone);
const onSharedAnswer = guardTimer('shared store answer', _onSharedAnswer);
const concludeGuarded = guardTimer('conclude', conclude);
