/*
 * bench/load/throughput.ts - the throughput scenario: large messages through
 * the screener's splice against the same transfer straight to the backend.
 *
 * Exports: throughput(env).
 * The backend runs in its own process: by default the raw discard backend
 * (floor.ts, role raw: counts the bytes after "RAW n", parses nothing), so
 * that the splice is what is measured; with --sink smtp the built-in SMTP
 * sink (src/server/sink.ts, parses every line of the message). A worker
 * sends --messages messages of --size each way, one at a time, alternating
 * screened and direct, from one source address (after the first message the
 * screened client is cached: PASS OLD). MB/s = size / (first body byte
 * written -> final reply); the ratio is screened / direct, medians.
 * Against the floor (env.floor), "screened" goes through a bare pipe() proxy.
 */
import { Fleet, Sampler, log, measure } from './fleet.js';
import { startFloor, type FloorProcess } from './floor.js';
import { percentiles, round } from './proc.js';
import { sleep, startSinkProcess, type SinkProcess } from './server.js';
import { cpuMsBetween, commonNotes, targetFor, type Env, type ScenarioResult } from './scenarios.js';

function mbps(bytes: number, ms: readonly number[]): number[] {
  return ms.map((x) => round(bytes / 1048576 / (x / 1000), 1));
}

export async function throughput(env: Env): Promise<ScenarioResult> {
  const o = env.opts;
  const waitMs = o.greetWaitMs ?? 300;
  const end = Date.now() + o.durationMs;
  let backend: FloorProcess | SinkProcess | null = null;
  let t: Awaited<ReturnType<typeof targetFor>> | null = null;
  let fleet: Fleet | null = null;
  let sampler: Sampler | null = null;
  try {
    if (o.target === null) {
      backend = o.sink === 'raw'
        ? await startFloor(env.self, { role: 'raw', mode: 'hold', greetWaitMs: 0, backend: null }, end + 30_000)
        : await startSinkProcess(env.self, end + 30_000);
    }
    const direct = backend?.listen ?? o.direct;
    t = await targetFor(env, waitMs, 'enforce', 300_000, backend?.listen ?? null);
    const tt = t;
    fleet = new Fleet(env.self, 1, end + 30_000);
    const s = new Sampler(tt.pid);
    sampler = s;
    await sleep(300);
    const before = measure(tt.pid, tt.listen);
    s.start();
    const mb = round(o.sizeBytes / 1048576, 1);
    log(`throughput: ${o.messages} x ${mb} MB each way (${o.sink} backend ${direct === null ? 'n/a' : `${direct.host}:${direct.port}`}), alternating`);
    const r = await fleet.xfer(0, {
      cmd: 'xfer', mode: o.sink, target: tt.listen, direct, bytes: o.sizeBytes, messages: o.messages,
      base: [o.addrBase[0] + 120, 0], timeoutMs: 120_000, deadline: end - 5000,
    });
    const after = measure(tt.pid, tt.listen);
    s.stop();
    const sc = mbps(o.sizeBytes, r?.screened ?? []);
    const di = mbps(o.sizeBytes, r?.direct ?? []);
    const ps = percentiles(sc);
    const pd = percentiles(di);
    const cpuMs = cpuMsBetween(before.sample, after.sample);
    const movedMb = (o.sizeBytes * sc.length) / 1048576;
    const notes = commonNotes(env, tt, null);
    notes.push(o.sink === 'raw'
      ? 'backend: the raw discard backend (bench/load/floor.ts): it counts the bytes after "RAW n" and parses nothing, so the path (splice or direct) is what is measured'
      : 'backend: the built-in SMTP sink in its own process; it splits every line of the message, which bounds both paths alike (compare with --sink raw)');
    notes.push(`MB/s = ${mb} MB / (first body byte written -> final reply); one transfer at a time; the sender, the ${env.floor === true ? 'floor proxy' : 'screener'} and the backend share 2 cores`);
    notes.push('every byte through the splice crosses loopback twice (client -> screener, screener -> backend): it costs the kernel copies a direct transfer does not pay');
    if (r === null) notes.push('the transfer worker did not report within its bound');
    else if (Object.keys(r.failures).length > 0) notes.push(`failures: ${JSON.stringify(r.failures)}`);
    return {
      scenario: 'throughput',
      settings: { bytes: o.sizeBytes, messages: o.messages, sink: o.sink, greet_wait_ms: o.target === null ? waitMs : null, path: env.floor === true ? 'floor pipe() proxy' : 'screener splice' },
      figures: {
        screened_mb_s: ps,
        direct_mb_s: pd,
        ratio: pd.p50 > 0 ? round(ps.p50 / pd.p50, 3) : null,
        server_cpu_ms: cpuMs,
        server_cpu_ms_per_mb: cpuMs === null || movedMb === 0 ? null : round(cpuMs / movedMb, 2),
        server_cpu_pct_peak: tt.pid === null ? null : s.peakCpu(),
        server_peak_rss_kb: tt.pid === null ? null : s.peakRss(),
        before_rss_kb: before.sample?.rssKb ?? null,
      },
      notes,
      timeline: s.points,
    };
  } finally {
    sampler?.stop();
    await fleet?.stop();
    await t?.stop();
    await backend?.stop();
  }
}
