/*
 * log/out-base.ts - what every log destination shares: a byte bound, the drop
 * count, and the "recovered" report.
 *
 * Exports: LineOut (the contract), DropCounter.
 * A destination takes rendered lines (one or more, newline-terminated) and never
 * blocks the caller: what does not fit in its bound is dropped and counted.
 * When lines were dropped and the destination has caught up again (nothing
 * queued), `onRecover(dropped, total)` is called once, on a later tick (never
 * from inside write(): the report is itself a log line).
 */

export interface LineOut {
  /** "stdout", "file", "syslog": named in LOG DROPPED. */
  readonly kind: string;
  /** Queue `text` (whole lines); false when it was dropped. Never blocks. */
  write(text: string): boolean;
  /** Lines dropped since start. */
  readonly dropped: number;
  /** Characters accepted and not yet handed to the kernel. */
  readonly queued: number;
  /** Called once the destination has caught up after drops: lines dropped since the last report, and in all. */
  onRecover: ((dropped: number, total: number) => void) | null;
  /** Reopen the destination (file: after logrotate's rename); `done` gets the error, if any. */
  reopen(done: (err: Error | null) => void): void;
  /** Wait until everything queued is written, for at most `timeoutMs`; true when it all went out. */
  flush(timeoutMs: number): Promise<boolean>;
  /** Release the descriptor or socket; later writes are dropped. */
  close(): void;
}

/** newlines - the number of lines in rendered text (at least 1). */
export function lines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n === 0 ? 1 : n;
}

export class DropCounter {
  total = 0;
  #since = 0;
  #scheduled = false;
  onRecover: ((dropped: number, total: number) => void) | null = null;

  /** Count `text`'s lines as dropped. */
  drop(text: string): void {
    const n = lines(text);
    this.total += n;
    this.#since += n;
  }

  /** The destination has nothing queued: report drops since the last report, on a later tick. */
  caughtUp(): void {
    if (this.#since === 0 || this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const n = this.#since;
      if (n === 0) return;
      this.#since = 0;
      this.onRecover?.(n, this.total);
    });
  }

  /** Drops waiting to be reported. */
  get pending(): number {
    return this.#since;
  }
}
