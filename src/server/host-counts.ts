/*
 * server/host-counts.ts - workers_accept: shared: the primary's sum of what its workers hold.
 *
 * Exports: HostCounts.
 * With shared accepts the primary sees no connection. Each worker reports
 * (cluster-ipc.ts ToPrimary `open`, at most every STATE_MS) its open count and
 * the clients whose count changed in it; HostCounts keeps those per worker,
 * sums them per client, and keeps the clients at or over
 * limits.max_per_client on the whole host ("full"). What a worker is told
 * (ToWorker `host`): the total of the other workers, and the full clients when
 * that set changed since it was last told. A worker that exits is dropped
 * whole: its sockets died with it.
 * The counts are as fresh as the last reports: a worker refuses on them plus
 * its own exact count, so the host limits hold up to what the other workers
 * accepted in the last 2 * STATE_MS plus the IPC delivery (README, Workers).
 */
import type { ToWorker } from './cluster-ipc.js';

export class HostCounts {
  readonly #n: number;
  /** Open connections per worker, as reported. */
  readonly #open: number[];
  /** client → its count in each worker, then (index n) the sum. */
  readonly #clients = new Map<string, number[]>();
  /** Clients at or over the limit host-wide, with their host count. */
  readonly #full = new Map<string, number>();
  #version = 0;
  /** What each worker was last told: the full set's version and the others' total (-1: nothing yet). */
  readonly #toldVersion: number[];
  readonly #toldOthers: number[];
  #max: number;
  total = 0;

  constructor(workers: number, maxPerClient: number) {
    this.#n = workers;
    this.#open = new Array<number>(workers).fill(0);
    this.#toldVersion = new Array<number>(workers).fill(-1);
    this.#toldOthers = new Array<number>(workers).fill(-1);
    this.#max = maxPerClient;
  }

  /** open - worker `w`'s open connections as it last reported. */
  open(w: number): number {
    return this.#open[w] ?? 0;
  }

  /** full - the clients at or over the limit host-wide (a copy, for tests and logs). */
  full(): Map<string, number> {
    return new Map(this.#full);
  }

  /** report - worker `w` holds `n` connections; `changes`: [client, its count in w now]. */
  report(w: number, n: number, changes: ReadonlyArray<readonly [string, number]> | undefined): void {
    this.total += n - (this.#open[w] ?? 0);
    this.#open[w] = n;
    if (changes === undefined) return;
    for (const [client, count] of changes) this.#set(w, client, Math.max(0, count));
  }

  /** drop - worker `w` exited: nothing of it is open any more; its next incarnation is told everything. */
  drop(w: number): void {
    this.total -= this.#open[w] ?? 0;
    this.#open[w] = 0;
    for (const [client, per] of this.#clients) if ((per[w] ?? 0) > 0) this.#set(w, client, 0);
    this.#toldVersion[w] = -1;
    this.#toldOthers[w] = -1;
  }

  /** setMax - limits.max_per_client changed (a reload): the full set is computed again (0: no limit). */
  setMax(max: number): void {
    if (max === this.#max) return;
    this.#max = max;
    this.#full.clear();
    if (max > 0) for (const [client, per] of this.#clients) if ((per[this.#n] ?? 0) >= max) this.#full.set(client, per[this.#n] ?? 0);
    this.#version++;
  }

  /** message - what worker `w` should be told now, or null when nothing changed for it. */
  message(w: number): Extract<ToWorker, { t: 'host' }> | null {
    const others = this.total - (this.#open[w] ?? 0);
    const fullChanged = this.#toldVersion[w] !== this.#version;
    if (!fullChanged && this.#toldOthers[w] === others) return null;
    this.#toldOthers[w] = others;
    if (!fullChanged) return { t: 'host', o: others };
    this.#toldVersion[w] = this.#version;
    return { t: 'host', o: others, full: [...this.#full] };
  }

  #set(w: number, client: string, count: number): void {
    let per = this.#clients.get(client);
    if (per === undefined) {
      if (count === 0) return;
      per = new Array<number>(this.#n + 1).fill(0);
      this.#clients.set(client, per);
    }
    const sum = (per[this.#n] ?? 0) + count - (per[w] ?? 0);
    per[w] = count;
    per[this.#n] = sum;
    if (sum <= 0) this.#clients.delete(client);
    if (this.#max <= 0) return;
    const was = this.#full.has(client);
    if (sum >= this.#max) {
      this.#full.set(client, sum);
      if (!was) this.#version++;
    } else if (was) {
      this.#full.delete(client);
      this.#version++;
    }
  }
}
