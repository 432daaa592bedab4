/*
 * net/policy-http.ts - the HTTP transport of the policy service: one POST,
 * one JSON body back, over a kept-alive undici Pool, within a deadline.
 *
 * Exports: PolicyTransport, PolicyAnswer, PolicyTarget, HttpPolicyTransport.
 * The target is `policy.url` as config/policy-url.ts parsed it. undici 7 (8 needs Node 22): a Pool of `connections`
 * keep-alive connections, no pipelining; a call that is not answered within
 * its deadline is aborted (undici destroys that connection: a server that
 * never answers costs a reconnect, not a stuck socket). The answer's body is
 * capped by undici's maxResponseSize: a larger one is an error, not a read.
 * This file knows nothing of the reply's meaning (checks/policy-reply.ts).
 */
import type { Pool } from 'undici';
import { lazyRequire } from '../util/lazy-require.js';

/**
 * undici, required when the first transport is made: its ~110 modules cost ~20 MB of RSS at
 * start-up, and only a configuration with policy.url uses them.
 */
let undici: typeof import('undici') | null = null;
function loadUndici(): typeof import('undici') {
  undici ??= lazyRequire('undici') as typeof import('undici');
  return undici;
}

export interface PolicyAnswer {
  readonly status: number;
  readonly body: string;
}

/** What the policy check (checks/policy.ts) calls: resolves with the answer, rejects with an error whose `code` says why (UND_ERR_*, ECONNREFUSED, ABORT_ERR: the deadline). */
export interface PolicyTransport {
  post(body: string, deadlineMs: number): Promise<PolicyAnswer>;
  /** Waits for the calls in flight, then closes the connections. */
  close(): Promise<void>;
}

export interface PolicyTarget {
  /** The origin undici connects to ("http://localhost" for a unix socket). */
  readonly origin: string;
  readonly path: string;
  readonly socketPath: string | null;
}

const HEADERS = { 'content-type': 'application/json', accept: 'application/json' };
/** undici refuses a larger body (UND_ERR_RES_EXCEEDED_MAX_SIZE); the reply parser allows 4 KiB. */
const MAX_RESPONSE = 16 * 1024;

export class HttpPolicyTransport implements PolicyTransport {
  readonly #pool: Pool;
  readonly #path: string;

  constructor(target: PolicyTarget, connections: number) {
    this.#path = target.path;
    this.#pool = new (loadUndici().Pool)(target.origin, {
      connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      maxResponseSize: MAX_RESPONSE,
      ...(target.socketPath !== null ? { socketPath: target.socketPath } : {}),
    });
  }

  async post(body: string, deadlineMs: number): Promise<PolicyAnswer> {
    const res = await this.#pool.request({
      method: 'POST', path: this.#path, headers: HEADERS, body,
      // XXX An AbortSignal, not undici's headersTimeout alone: undici's timers are coarse (a 100 ms
      // headersTimeout fired after 1,013 ms here, test/checks/policy.test.ts). The signal costs CPU: 0.085
      // vs 0.055 ms per call (3 runs of 3,000 calls, 10 at a time, service in another process).
      signal: AbortSignal.timeout(deadlineMs),
      headersTimeout: deadlineMs, bodyTimeout: deadlineMs,
    });
    return { status: res.statusCode, body: await res.body.text() };
  }

  async close(): Promise<void> {
    try {
      await this.#pool.close();
    } catch (err) {
      if (!(err instanceof loadUndici().errors.ClientClosedError)) throw err;
    }
  }
}
