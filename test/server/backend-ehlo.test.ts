/*
 * test/handoff/ehlo.test.ts - the backend's EHLO learned: probeBackendEhlo against fake backends
 * on 127.0.0.1 (good, PROXY v1/v2, 554 greeting, silent, EHLO 502, refused, closed, malformed);
 * EhloLearner with a scripted probe (schedule, onChange/onError transitions, learn, stop).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { EhloLearner, probeBackendEhlo, type ProbeOptions } from '../../src/server/backend-ehlo.js';
import { buildDummyEhlo, type LearnedEhlo } from '../../src/smtp/ehlo-keywords.js';
import { decodeProxyHeader, type ProxyHeader } from '../../src/net/proxy-protocol.js';
import { ScreenError } from '../../src/util/errors.js';
import { POSTFIX_EHLO, POSTFIX_KEYWORDS } from '../helpers/ehlo-samples.js';

// --- probeBackendEhlo against fake backends on 127.0.0.1 ---

interface Conn {
  /** Every byte the backend received. */
  raw: Buffer;
  /** SMTP lines after any PROXY header, CRLF included. */
  lines: string[];
  proxy: ProxyHeader | null;
  /** The backend's view: the probe's address and port, and its own. */
  peer: { addr: string; port: number };
  local: { addr: string; port: number };
  closed: Promise<void>;
}

interface FakeBackend {
  port: number;
  conns: Conn[];
  close(): Promise<void>;
}

type Behaviour = (sock: net.Socket, conn: Conn) => void;

async function fakeBackend(t: TestContext, behave: Behaviour): Promise<FakeBackend> {
  const conns: Conn[] = [];
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => { /* the probe may reset */ });
    const conn: Conn = {
      raw: Buffer.alloc(0), lines: [], proxy: null,
      peer: { addr: sock.remoteAddress ?? '', port: sock.remotePort ?? -1 },
      local: { addr: sock.localAddress ?? '', port: sock.localPort ?? -1 },
      closed: new Promise((resolve) => { sock.once('close', () => { sockets.delete(sock); resolve(); }); }),
    };
    conns.push(conn);
    sock.on('data', (chunk: Buffer) => { conn.raw = Buffer.concat([conn.raw, chunk]); });
    behave(sock, conn);
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0 }, resolve);
  });
  const addr = srv.address();
  assert.ok(addr !== null && typeof addr !== 'string');
  const fb: FakeBackend = {
    port: addr.port,
    conns,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      srv.close(() => resolve());
    }),
  };
  t.after(() => fb.close());
  return fb;
}

/** An SMTP backend: greets, strips a PROXY header, answers EHLO with `ehloReply`, QUIT with 221 (or not). */
function smtpBackend(ehloReply: string, opts: { greeting?: string; answerQuit?: boolean } = {}): Behaviour {
  return (sock, conn) => {
    sock.write(opts.greeting ?? '220 fake.example ESMTP\r\n');
    let buf = Buffer.alloc(0);
    let headerDone = false;
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!headerDone) {
        if (buf.length > 0 && (buf[0] === 0x0d || buf.subarray(0, 6).toString('latin1') === 'PROXY ')) {
          const d = decodeProxyHeader(buf, 'any');
          if (d.status === 'incomplete') return;
          conn.proxy = d.header;
          buf = buf.subarray(d.consumed);
        } else if (buf.length < 6 && buf[0] === 0x50) {
          return;
        }
        headerDone = true;
      }
      for (let lf = buf.indexOf(10); lf >= 0; lf = buf.indexOf(10)) {
        const line = buf.toString('latin1', 0, lf + 1);
        buf = buf.subarray(lf + 1);
        conn.lines.push(line);
        if (/^EHLO /i.test(line)) sock.write(ehloReply);
        else if (/^QUIT/i.test(line)) { if (opts.answerQuit !== false) sock.end('221 2.0.0 Bye\r\n'); }
        else sock.write('502 5.5.2 Error: command not recognized\r\n');
      }
    });
  };
}

/** Rejects when `p` takes longer than `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no result in ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/*
 * Begin test-only timer tracking: process.getActiveResourcesInfo() does not list unref()'d timers,
 * so setTimeout/clearTimeout are wrapped while a probe runs. restore() is idempotent.
 */
function trackTimers(): { live: () => number; restore: () => void } {
  const live = new Set<NodeJS.Timeout>();
  const origSet = globalThis.setTimeout;
  const origClear = globalThis.clearTimeout;
  const wrappedSet = (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): NodeJS.Timeout => {
    const h: NodeJS.Timeout = origSet((...a: unknown[]) => { live.delete(h); fn(...a); }, ms, ...args);
    live.add(h);
    return h;
  };
  const wrappedClear = (h: NodeJS.Timeout | string | number | undefined): void => {
    if (typeof h === 'object') live.delete(h);
    origClear(h);
  };
  globalThis.setTimeout = wrappedSet as unknown as typeof globalThis.setTimeout;
  globalThis.clearTimeout = wrappedClear as typeof globalThis.clearTimeout;
  return {
    live: () => live.size,
    restore: () => { globalThis.setTimeout = origSet; globalThis.clearTimeout = origClear; },
  };
}

/** Runs `fn` and asserts it left no timer behind (cleared or fired). */
async function noTimersLeft<T>(fn: () => Promise<T>, what: string): Promise<T> {
  const timers = trackTimers();
  try {
    const out = await fn();
    assert.equal(timers.live(), 0, `${what}: a timer was left behind`);
    return out;
  } finally {
    timers.restore();
  }
}
/* End test-only timer tracking. */

function probeOpts(port: number, over: Partial<ProbeOptions> = {}): ProbeOptions {
  return { host: '127.0.0.1', port, mode: 'none', hostname: 'probe.example', timeoutMs: 2000, ...over };
}

/** The rejection of `p` as a ScreenError, checked for SCR_ERR_BACKEND and `stage`. */
async function probeFailure(p: Promise<unknown>, stage: string): Promise<Record<string, unknown>> {
  const err = await within(p.then(() => null, (e: unknown) => e), 3000, 'probe');
  assert.ok(err instanceof ScreenError, `expected a ScreenError, got ${String(err)}`);
  assert.equal(err.code, 'SCR_ERR_BACKEND');
  assert.equal(err.details['stage'], stage);
  assert.equal(typeof err.details['reason'], 'string');
  return err.details;
}

test('probeBackendEhlo: good backend, every mode', async (t) => {
  const cases: Array<{ mode: ProbeOptions['mode']; proxy: 1 | 2 | null }> = [
    { mode: 'none', proxy: null },
    { mode: 'xclient', proxy: null },
    { mode: 'proxy-v1', proxy: 1 },
    { mode: 'proxy-v2', proxy: 2 },
  ];
  const backend = await fakeBackend(t, smtpBackend(POSTFIX_EHLO));
  for (const [i, c] of cases.entries()) {
    const got = await noTimersLeft(() => within(probeBackendEhlo(probeOpts(backend.port, { mode: c.mode })), 3000, c.mode), c.mode);
    assert.deepEqual([...got], [...POSTFIX_KEYWORDS], c.mode);
    const conn = backend.conns[i];
    assert.ok(conn !== undefined, c.mode);
    await within(conn.closed, 2000, `${c.mode}: backend side closed`);
    assert.deepEqual(conn.lines, ['EHLO probe.example\r\n', 'QUIT\r\n'], c.mode);
    if (c.proxy === null) {
      assert.equal(conn.proxy, null, c.mode);
      continue;
    }
    // The PROXY header names the screener itself: source = probe's end, destination = backend's.
    assert.deepEqual(conn.proxy, {
      version: c.proxy, command: 'PROXY', family: 'TCP4',
      srcAddr: conn.peer.addr, srcPort: conn.peer.port, dstAddr: '127.0.0.1', dstPort: backend.port,
    }, c.mode);
    if (c.proxy === 1) {
      const first = conn.raw.toString('latin1').split('\r\n')[0];
      assert.equal(first, `PROXY TCP4 127.0.0.1 127.0.0.1 ${conn.peer.port} ${backend.port}`, c.mode);
    }
  }
});

test('probeBackendEhlo: a backend that does not answer QUIT still resolves after a short grace', async (t) => {
  const backend = await fakeBackend(t, smtpBackend('250-fake\r\n250 DSN\r\n', { answerQuit: false }));
  const started = Date.now();
  const got = await noTimersLeft(() => within(probeBackendEhlo(probeOpts(backend.port)), 3000, 'probe'), 'no 221');
  assert.deepEqual([...got], [['DSN', '']]);
  assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
  const conn = backend.conns[0];
  assert.ok(conn !== undefined);
  await within(conn.closed, 2000, 'backend side closed');
});

test('probeBackendEhlo failures table: SCR_ERR_BACKEND with stage and reason', async (t) => {
  const cases: Array<{ label: string; behave: Behaviour; timeoutMs?: number; stage: string; reason: string | RegExp; code?: number }> = [
    {
      label: '554 greeting', behave: (sock) => { sock.write('554 5.7.1 go away\r\n'); },
      stage: 'greeting', reason: '554 5.7.1 go away', code: 554,
    },
    {
      label: 'multi-line 421 greeting', behave: (sock) => { sock.end('421-mx busy\r\n421 4.3.2 try later\r\n'); },
      stage: 'greeting', reason: '421 mx busy 4.3.2 try later', code: 421,
    },
    { label: 'silent backend', behave: () => { /* never greets */ }, timeoutMs: 200, stage: 'greeting', reason: 'timeout' },
    { label: 'closes at once', behave: (sock) => { sock.end(); }, stage: 'greeting', reason: 'closed' },
    { label: 'malformed greeting', behave: (sock) => { sock.write('hello there\r\n'); }, stage: 'greeting', reason: /^bad SMTP reply/ },
    {
      label: 'EHLO 502', behave: smtpBackend('502 5.5.2 Error: command not recognized\r\n'),
      stage: 'ehlo', reason: '502 5.5.2 Error: command not recognized', code: 502,
    },
    { label: 'EHLO never answered', behave: smtpBackend(''), timeoutMs: 200, stage: 'ehlo', reason: 'timeout' },
    { label: 'partial EHLO reply', behave: smtpBackend('250-half\r\n250-way'), timeoutMs: 200, stage: 'ehlo', reason: 'timeout' },
    {
      label: 'closes at EHLO',
      behave: (sock) => { sock.write('220 fake\r\n'); sock.on('data', () => { sock.end(); }); },
      stage: 'ehlo', reason: 'closed',
    },
    {
      label: 'EHLO reply too long', behave: smtpBackend(`250-${'a'.repeat(3000)}\r\n`),
      stage: 'ehlo', reason: /^bad SMTP reply/,
    },
  ];
  for (const c of cases) {
    const backend = await fakeBackend(t, c.behave);
    const started = Date.now();
    const opts = probeOpts(backend.port, c.timeoutMs === undefined ? {} : { timeoutMs: c.timeoutMs });
    const details = await noTimersLeft(() => probeFailure(probeBackendEhlo(opts), c.stage), c.label);
    if (typeof c.reason === 'string') assert.equal(details['reason'], c.reason, c.label);
    else assert.match(String(details['reason']), c.reason, c.label);
    assert.equal(details['code'], c.code, c.label);
    if (c.timeoutMs !== undefined) assert.ok(Date.now() - started < c.timeoutMs + 1000, `${c.label}: ${Date.now() - started} ms`);
    // The probe's socket is destroyed: the backend sees the close.
    const conn = backend.conns[0];
    assert.ok(conn !== undefined, c.label);
    await within(conn.closed, 2000, `${c.label}: backend side closed`);
    await backend.close();
  }
});

test('probeBackendEhlo: connect refused on a port just closed', async (t) => {
  const backend = await fakeBackend(t, () => { /* unused */ });
  const port = backend.port;
  await backend.close();
  const details = await noTimersLeft(() => probeFailure(probeBackendEhlo(probeOpts(port)), 'connect'), 'refused');
  assert.equal(details['reason'], 'ECONNREFUSED');
});

// --- EhloLearner with a scripted probe ---

const MAP_A: ReadonlyMap<string, string> = POSTFIX_KEYWORDS;
const MAP_B: ReadonlyMap<string, string> = new Map([['SIZE', '5000'], ['8BITMIME', ''], ['XCLIENT', 'ADDR NAME']]);

type Step = ReadonlyMap<string, string> | Error;

/** A probe that plays `script` in order, repeating its last step. */
function scriptedProbe(script: readonly Step[]): { probe: () => Promise<Map<string, string>>; calls: () => number } {
  let calls = 0;
  return {
    probe: async () => {
      const step = script[Math.min(calls, script.length - 1)];
      calls++;
      if (step === undefined || step instanceof Error) throw step ?? new Error('empty script');
      return new Map(step);
    },
    calls: () => calls,
  };
}

interface Recorder {
  changes: LearnedEhlo[];
  errors: string[];
}

function learner(probe: () => Promise<Map<string, string>>, refreshMs: number, retryMs: number): { l: EhloLearner; rec: Recorder } {
  const rec: Recorder = { changes: [], errors: [] };
  const l = new EhloLearner({
    probe, hostname: 'screen.example', refreshMs, retryMs,
    onChange: (info) => { rec.changes.push(info); },
    onError: (reason) => { rec.errors.push(reason); },
  });
  return { l, rec };
}

async function waitFor(cond: () => boolean, what: string, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`waitFor: ${what} not within ${ms} ms`);
    await sleep(5);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => { setTimeout(resolve, ms); });
}

test('EhloLearner: a first failure calls onError once across retries, current stays null', async () => {
  const p = scriptedProbe([new Error('refused')]);
  const { l, rec } = learner(p.probe, 10_000, 20);
  try {
    await l.start();
    assert.equal(p.calls(), 1);
    assert.deepEqual(rec.errors, ['refused']);
    assert.equal(l.current, null);
    await waitFor(() => p.calls() >= 3, 'two retries');
    assert.deepEqual(rec.errors, ['refused']);
    assert.equal(rec.changes.length, 0);
    assert.equal(l.current, null);
  } finally {
    l.stop();
  }
});

test('EhloLearner: success sets current, calls onChange, next probe after refreshMs', async () => {
  const p = scriptedProbe([MAP_A]);
  const { l, rec } = learner(p.probe, 10_000, 20);
  try {
    await l.start();
    const cur = l.current;
    assert.ok(cur !== null);
    const built = buildDummyEhlo('screen.example', MAP_A);
    assert.equal(cur.plain, built.plain);
    assert.equal(cur.tls, built.tls);
    assert.deepEqual([...cur.offered], built.offered);
    assert.deepEqual([...cur.keywords], [...MAP_A]);
    assert.deepEqual(cur.xclient === null ? null : [...cur.xclient], ['NAME', 'ADDR', 'PORT', 'PROTO', 'HELO', 'LOGIN', 'DESTADDR', 'DESTPORT']);
    assert.deepEqual(rec.changes, [cur]);
    assert.deepEqual(rec.errors, []);
    await sleep(80);
    assert.equal(p.calls(), 1, 'no refresh before refreshMs (retryMs is not used after a success)');
  } finally {
    l.stop();
  }
});

test('EhloLearner: failures after a success keep current and call onError once per transition', async () => {
  // ok, fail, fail, ok (same keywords: no onChange), fail, fail...
  const p = scriptedProbe([MAP_A, new Error('timeout'), new Error('timeout'), MAP_A, new Error('closed')]);
  const { l, rec } = learner(p.probe, 20, 20);
  try {
    await l.start();
    const first = l.current;
    assert.ok(first !== null);
    await waitFor(() => p.calls() >= 3, 'two failed refreshes');
    assert.equal(l.current, first);
    assert.deepEqual(rec.errors, ['timeout']);
    await waitFor(() => p.calls() >= 7, 'recovery and new failures');
    assert.equal(l.current, first, 'kept across failures; the same keywords are not a change');
    assert.deepEqual(rec.errors, ['timeout', 'closed']);
    assert.equal(rec.changes.length, 1);
  } finally {
    l.stop();
  }
});

test('EhloLearner: a probe with different keywords calls onChange', async () => {
  const p = scriptedProbe([MAP_A, MAP_B]);
  const { l, rec } = learner(p.probe, 20, 20);
  try {
    await l.start();
    await waitFor(() => rec.changes.length >= 2, 'second onChange');
    await sleep(60);
    assert.equal(rec.changes.length, 2);
    assert.deepEqual(rec.changes[1]?.offered, ['SIZE', '8BITMIME']);
    assert.deepEqual(l.current?.xclient === null ? null : [...(l.current?.xclient ?? [])], ['ADDR', 'NAME']);
  } finally {
    l.stop();
  }
});

test('EhloLearner.learn table: order alone is not a change', async () => {
  const p = scriptedProbe([MAP_A]);
  const { l, rec } = learner(p.probe, 10_000, 10_000);
  try {
    const cases: Array<{ label: string; keywords: ReadonlyMap<string, string>; changes: number }> = [
      { label: 'first learn (before start)', keywords: MAP_B, changes: 1 },
      { label: 'same map', keywords: new Map(MAP_B), changes: 1 },
      { label: 'same map, other order', keywords: new Map([...MAP_B].reverse()), changes: 1 },
      { label: 'params changed', keywords: new Map([...MAP_B].map(([k, v]) => [k, k === 'SIZE' ? '6000' : v])), changes: 2 },
      { label: 'keyword gone', keywords: new Map([['SIZE', '6000'], ['XCLIENT', 'ADDR NAME']]), changes: 3 },
      { label: 'keyword added', keywords: new Map([['SIZE', '6000'], ['XCLIENT', 'ADDR NAME'], ['DSN', '']]), changes: 4 },
    ];
    for (const c of cases) {
      l.learn(c.keywords);
      assert.equal(rec.changes.length, c.changes, c.label);
      assert.deepEqual(new Map(l.current?.keywords), new Map(rec.changes[rec.changes.length - 1]?.keywords), c.label);
    }
    assert.deepEqual(l.current?.offered, ['SIZE', 'DSN']);
    await l.start();
    assert.equal(rec.changes.length, 5, 'the probe learned MAP_A');
  } finally {
    l.stop();
  }
});

test('EhloLearner: learn() keeps a copy of the map', () => {
  const { l } = learner(scriptedProbe([MAP_A]).probe, 10_000, 10_000);
  const m = new Map([['SIZE', '1']]);
  l.learn(m);
  m.set('DSN', '');
  assert.deepEqual([...(l.current?.keywords ?? [])], [['SIZE', '1']]);
  l.stop();
});

test('EhloLearner: stop() prevents further probes', async () => {
  const p = scriptedProbe([MAP_A]);
  const { l } = learner(p.probe, 20, 20);
  await l.start();
  l.stop();
  await sleep(100);
  assert.equal(p.calls(), 1);
  await l.start();
  assert.equal(p.calls(), 1, 'start after stop does nothing');
});

test('EhloLearner: a probe in flight at stop() calls nothing back', async () => {
  const cases: Array<{ label: string; outcome: Step }> = [
    { label: 'success after stop', outcome: MAP_A },
    { label: 'failure after stop', outcome: new Error('refused') },
  ];
  for (const c of cases) {
    let settle: (() => void) | undefined;
    let calls = 0;
    const probe = (): Promise<Map<string, string>> => {
      calls++;
      return new Promise((resolve, reject) => {
        settle = () => { if (c.outcome instanceof Error) reject(c.outcome); else resolve(new Map(c.outcome)); };
      });
    };
    const { l, rec } = learner(probe, 20, 20);
    const started = l.start();
    l.stop();
    assert.ok(settle !== undefined, c.label);
    settle();
    await within(started, 1000, c.label);
    await sleep(60);
    assert.equal(calls, 1, c.label);
    assert.equal(l.current, null, c.label);
    assert.deepEqual(rec.changes, [], c.label);
    assert.deepEqual(rec.errors, [], c.label);
  }
});

test('EhloLearner: start() never rejects; onError gets "stage: reason" from a real probe', async (t) => {
  const cases: Array<{ label: string; probe: () => Promise<Map<string, string>>; reason: string }> = [
    { label: 'probe throws synchronously', probe: () => { throw new Error('sync'); }, reason: 'sync' },
  ];
  const backend = await fakeBackend(t, () => { /* unused */ });
  const port = backend.port;
  await backend.close();
  cases.push({ label: 'refused', probe: () => probeBackendEhlo(probeOpts(port)), reason: 'connect: ECONNREFUSED' });
  for (const c of cases) {
    const { l, rec } = learner(c.probe, 10_000, 10_000);
    try {
      await l.start();
      assert.deepEqual(rec.errors, [c.reason], c.label);
      assert.equal(l.current, null, c.label);
    } finally {
      l.stop();
    }
  }
});
