/*
 * stats/input.ts - log sources -> lines: files, gzip, stdin, and a followed file.
 *
 * Exports: LineSplitter, readSource(path, onLine), follow(path, onLine, opts) -> Follow,
 *          MAX_LINE.
 * A file is read as a stream (never whole); one that starts with gzip's magic
 * bytes (1f 8b) is inflated with node:zlib whatever its name. "-" is stdin.
 * A line longer than MAX_LINE (64 KiB) is cut there and the rest of it
 * skipped, so one endless line cannot grow the heap.
 * follow() is `tail -F` from the start of the file: every `pollMs` it reads
 * what was appended; when the name now points at another file (rotated:
 * renamed, a new one created) it reads the old file to its end, then the new
 * one from its start; when the file shrank (copytruncate) it reads from the
 * start again. Polling, not fs.watch: the same on every filesystem.
 */
import { createReadStream, openSync, readSync, closeSync } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';

export const MAX_LINE = 64 * 1024;

/**
 * Chunks -> lines (LF, an ending CR dropped); bounded line length. Works on
 * Buffers: each line is decoded once from its bytes (no string per chunk to
 * concatenate and slice), a partial line is kept as bytes until its end comes.
 */
export class LineSplitter {
  #rest: Buffer | null = null;
  #skipping = false;
  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer | string): void {
    let b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let start = 0;
    if (this.#rest !== null) {
      // Join only the partial line with its end, not the whole chunk.
      const nl = b.indexOf(10);
      const head = Buffer.concat([this.#rest, nl < 0 ? b : b.subarray(0, nl + 1)]);
      this.#rest = null;
      if (nl < 0) b = head;
      else {
        this.push(head);
        start = nl + 1;
      }
    }
    for (let nl = b.indexOf(10, start); nl >= 0; nl = b.indexOf(10, start)) {
      if (this.#skipping) this.#skipping = false;
      else this.#emit(b, start, nl);
      start = nl + 1;
    }
    if (start < b.length) {
      if (this.#skipping) return; // the rest of a line already cut
      if (b.length - start > MAX_LINE) {
        this.#emit(b, start, start + MAX_LINE);
        this.#skipping = true;
        return;
      }
      this.#rest = Buffer.from(b.subarray(start)); // a copy: the chunk's memory may be reused by the reader
    }
  }

  /** end - the last line without a newline. */
  end(): void {
    const r = this.#rest;
    this.#rest = null;
    if (r !== null && r.length > 0 && !this.#skipping) this.#emit(r, 0, r.length);
    this.#skipping = false;
  }

  /** reset - forget a partial line (the file it came from was truncated). */
  reset(): void {
    this.#rest = null;
    this.#skipping = false;
  }

  #emit(b: Buffer, start: number, end: number): void {
    this.onLine(b.toString('utf8', start, end > start && b[end - 1] === 13 ? end - 1 : end));
  }
}

function isGzip(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(2);
    return readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

/** readSource - every line of a file (gzip or not) or of stdin ("-"); rejects with the fs error naming the file. */
export async function readSource(path: string, onLine: (line: string) => void): Promise<void> {
  let stream: Readable;
  if (path === '-') stream = process.stdin;
  else {
    const gz = isGzip(path);
    const file = createReadStream(path, { highWaterMark: 256 * 1024 });
    stream = gz ? file.pipe(createGunzip()) : file;
    if (gz) file.on('error', (e) => stream.destroy(e));
  }
  const split = new LineSplitter(onLine);
  for await (const chunk of stream) split.push(chunk as Buffer);
  split.end();
}

export interface Follow {
  /** Stop polling and close the file; resolves once closed. */
  stop(): Promise<void>;
  /** Polls done so far. */
  readonly polls: number;
}

/** follow - read `path` from its start, then what is appended, across rotation and truncation. */
export function follow(path: string, onLine: (line: string) => void, opts: { pollMs: number; onError?: (e: Error) => void }): Follow {
  const split = new LineSplitter(onLine);
  let fh: FileHandle | null = null;
  let ino = -1;
  let pos = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let polls = 0;
  const buf = Buffer.alloc(256 * 1024);

  const drain = async (h: FileHandle): Promise<void> => {
    for (;;) {
      const { bytesRead } = await h.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return;
      pos += bytesRead;
      split.push(buf.subarray(0, bytesRead));
    }
  };

  const poll = async (): Promise<void> => {
    if (fh === null) {
      try {
        fh = await open(path, 'r');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') opts.onError?.(e as Error);
        return; // not there (yet): created later, or between a rename and the new file
      }
      ino = (await fh.stat()).ino;
      pos = 0;
      split.reset();
    }
    const size = (await fh.stat()).size;
    if (size < pos) { // copytruncate: the same file, shorter
      pos = 0;
      split.reset();
    }
    await drain(fh);
    let named: number | null = null;
    try {
      named = (await stat(path)).ino;
    } catch {
      named = null; // renamed away, not recreated yet: keep reading the old one
    }
    if (named !== null && named !== ino) { // rotated: finish the old file, then start the new one
      await drain(fh);
      split.end();
      await fh.close();
      fh = null;
      await poll();
    }
  };

  let inflight: Promise<void> = Promise.resolve();
  const tick = (): void => {
    inflight = poll().then(
      () => undefined,
      (e: unknown) => opts.onError?.(e as Error),
    ).finally(() => {
      polls++;
      if (!stopped) timer = setTimeout(tick, opts.pollMs);
    });
  };
  tick();
  return {
    get polls() { return polls; },
    async stop(): Promise<void> {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      await inflight;
      const h = fh;
      fh = null;
      if (h !== null) await h.close();
    },
  };
}
