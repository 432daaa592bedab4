/*
 * session/machine.ts - one connection from accept to verdict:
 *   limits → access list → verdict cache → pregreet wait → conclude.
 *
 * Exports: startSession().
 * The listener calls startSession() once the client address is known (after
 * any PROXY header), with the personality (server/stress.ts) chosen at accept;
 * the session reads its values from s.config, never from ctx.config.
 * Handlers are module-level and find the Session through
 * the socket; every timer and socket event first checks `closed`
 * (late events return early).
 */
import { EV } from '../log/events.js';
import { TestIndex } from '../checks/tests.js';
import { allPassed } from '../cache/store.js';
import { applyAction } from '../checks/check.js';
import { EARLY_KEEP, PregreetProbe, pregreetResult } from '../checks/pregreet.js';
import { Session, kSession, type Ctx, type ScreenSocket } from './state.js';
import type { DnsblQuery } from '../checks/dnsbl.js';
import { closeWith, refuse, onClientClose, onClientEnd } from './close.js';
import { conclude } from './conclude.js';
import { handoff } from '../handoff/splice.js';
import type { Personality } from '../server/stress.js';
import { guardSocket, guardTimer } from './guard.js';

const PREGREET = TestIndex.pregreet;
const DNSBL = TestIndex.dnsbl;

/**
 * A connection whose client address is known. `socket` has its 'error'
 * handler already; data may be buffered in it (paused) when a PROXY header
 * was followed by early bytes.
 */
export function startSession(ctx: Ctx, socket: ScreenSocket, client: string, port: number, personality: Personality): void {
  const cfg = personality.config;
  const max = cfg.limits.max_per_client;
  const count = max > 0 ? (ctx.perClient.get(client) ?? 0) + 1 : 0;
  if (max > 0 && count > max) {
    const c = ctx.counters;
    c[EV.TOO_MANY_CONNECTIONS] = (c[EV.TOO_MANY_CONNECTIONS] ?? 0) + 1;
    if (personality.stress) ctx.log.info({ event: EV.TOO_MANY_CONNECTIONS, client, port, stress: true, count: count - 1 });
    else ctx.log.info({ event: EV.TOO_MANY_CONNECTIONS, client, port, count: count - 1 });
    refuse(socket, ctx.replies.tooManyConnections);
    return;
  }
  const s = new Session(ctx, socket, client, port, personality);
  if (max > 0) {
    ctx.perClient.set(client, count);
    s.counted = true;
  }
  ctx.sessions.add(s);
  socket.on('close', onClientClose);
  socket.on('end', onClientEnd);
  s.event(EV.CONNECT, { local: s.local, local_port: s.localPort });

  // 1. Permanent access list: first match wins.
  const hit = ctx.access?.match(client);
  if (hit !== undefined) {
    if (hit.action === 'permit') {
      s.event(EV.ALLOWLISTED, { entry: hit.entry });
      s.verdict = 'allowlisted';
      handoff(s);
      return;
    }
    if (hit.action === 'reject') {
      const action = cfg.access.action;
      s.event(EV.DENYLISTED, { entry: hit.entry, action });
      switch (applyAction(action)) {
        case 'drop':
          closeWith(s, ctx.replies.dropFor('denylist'));
          return;
        case 'enforce':
          s.rejectReply = ctx.replies.reject('denylist');
          s.rejectReason = 'denylist';
          break;
        case 'continue':
          s.ignoredFail = true;
          break;
      }
    }
  }

  // 2. Verdict cache: every enabled test passed and not expired → PASS OLD.
  const now = Date.now();
  const rec = ctx.store.get(client);
  if (rec !== undefined) s.record = rec;
  if (s.rejectReply === null && !s.ignoredFail && rec !== undefined && allPassed(rec, s.personality.enabled, now)) {
    s.event(EV.PASS_OLD);
    s.verdict = 'old';
    handoff(s);
    return;
  }

  // 3. Tests during the greet wait. DNSBL lookups start now, unless a DNSBL pass is still valid.
  if (ctx.dnsbl !== null && !((rec?.[DNSBL] ?? 0) > now)) {
    s.dnsbl = ctx.dnsbl.start(client, s, onDnsblDone);
  }
  if (!cfg.pregreet.enable) {
    if (s.dnsbl === null) {
      queueMicrotask(() => concludeGuarded(s));
      return;
    }
    // No teaser: wait for the lookups alone, bounded by the lookup deadline.
    s.phase = 'pregreet';
    s.timer = setTimeout(onGreetWaitEnd, cfg.dnsbl.timeout, s);
    return;
  }
  s.phase = 'pregreet';
  // What a pregreeter said early is not lost: under ignore it goes to the backend, under
  // enforce the dummy engine answers it (postscreen peeks at early bytes; it never eats them).
  s.pregreet = new PregreetProbe(cfg.pregreet.action === 'drop' ? 0 : EARLY_KEEP);
  socket.write(ctx.replies.teaser);
  s.teaserSent = true;
  socket.on('data', onEarlyData);
  socket.resume();
  s.timer = setTimeout(onGreetWaitEnd, cfg.pregreet.wait, s);
}

/** Bytes before the greet wait is over: a pregreet. The first chunk decides; the rest is counted. */
function _onEarlyData(this: ScreenSocket, chunk: Buffer): void {
  const s = this[kSession];
  if (s === undefined || s.closed || s.pregreet === null) return;
  const first = s.pregreet.record(chunk, Date.now());
  if (s.pregreet.full) this.pause(); // the rest waits in the kernel until the handoff's pipe() reads it
  if (!first) return;
  const action = s.config.pregreet.action;
  const r = pregreetResult(s.pregreet, s.started);
  s.event(EV.PREGREET, { ...r.fields, action });
  if (s.record !== null) s.record[PREGREET] = 0;
  switch (applyAction(action)) {
    case 'drop':
      closeWith(s, s.ctx.replies.dropFor('pregreet'));
      return;
    case 'enforce':
      if (s.rejectReply === null) {
        s.rejectReply = s.ctx.replies.reject('pregreet');
        s.rejectReason = 'pregreet';
      }
      return;
    case 'continue':
      s.ignoredFail = true;
      return;
  }
}

/** Every DNSBL answer is in. A score at or below the allowlist threshold ends the wait now. */
function _onDnsblDone(s: Session, q: DnsblQuery): void {
  if (s.closed || s.phase !== 'pregreet' || s.dnsbl !== q) return;
  const dnsbl = s.ctx.dnsbl;
  if (dnsbl === null || !dnsbl.allowlisted(dnsbl.summary(q))) return;
  if (s.pregreet?.failed === true || s.rejectReply !== null || s.ignoredFail) return;
  s.dnsblAllowlisted = true;
  s.clearTimer();
  s.socket.removeListener('data', onEarlyData);
  conclude(s);
}

function _onGreetWaitEnd(s: Session): void {
  s.timer = null;
  if (s.closed) return;
  s.socket.removeListener('data', onEarlyData);
  conclude(s);
}

// The entry points Node calls, each wrapped once: a throw ends that session with 421, not the process (session/guard.ts).
const onEarlyData = guardSocket('pregreet data', _onEarlyData);
const onGreetWaitEnd = guardTimer('greet wait', _onGreetWaitEnd);
const onDnsblDone = guardTimer('dnsbl answer', _onDnsblDone);
const concludeGuarded = guardTimer('conclude', conclude);
