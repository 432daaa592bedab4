/*
 * bench/stats/gen.ts - a synthetic day of screener log, for the stats bench and the report screenshot.
 *
 * Exports: writeDay(file, lines, opts) -> lines written.
 * Sessions spread over 24 hours with a daytime peak: PASS OLD (most),
 * PASS NEW, allowlisted, pregreet and DNSBL rejects, greylist defers and
 * retries, hangups, pipelining, a stress hour, backend failures. Client
 * addresses come from a large pool (opts.clients distinct), so per-key
 * tables meet their caps. A seeded generator: the same file every time.
 * JSON (pino NDJSON) or postscreen syslog lines (log/postscreen-format.ts).
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { formatPostscreen } from '../../src/log/postscreen-format.js';

export interface DayOptions { format: 'json' | 'postscreen'; clients: number; seed?: number }

export async function writeDay(file: string, lines: number, o: DayOptions): Promise<number> {
  let seed = o.seed ?? 42;
  const rnd = (): number => { // mulberry32: successive values independent enough for a log mix
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = createWriteStream(file);
  let n = 0;
  let buf = '';
  const day = Date.UTC(2026, 10, 30);
  const put = (t: number, event: string, f: Record<string, unknown>, level = 30): void => {
    const r = { level, time: Math.round(t), pid: 4242, hostname: 'mx1', event, ...f };
    buf += o.format === 'json' ? JSON.stringify(r) + '\n'
      : `${new Date(r.time).toISOString()} mx1 postfix/postscreen[4242]: ${level >= 40 ? 'warning: ' : ''}${formatPostscreen(r)}\n`;
    n++;
  };
  const sites = ['zen.spamhaus.example', 'bl.spamcop.example', 'b.barracuda.example', 'psbl.example'];
  let port = 1024;
  let stressed = false;
  while (n < lines) {
    // Daytime peak: hours 8-18 three times as likely.
    let h = Math.floor(rnd() * 24);
    if (h < 8 || h > 18) h = Math.floor(rnd() * 24);
    const t = day + h * 3_600_000 + rnd() * 3_600_000;
    const id = Math.floor(rnd() * o.clients);
    const client = id % 10 === 0 ? `2001:db8:${(id >> 8) & 0xffff}:${id & 0xff}::${(id % 200) + 1}` : `10.${(id >> 16) & 255}.${(id >> 8) & 255}.${id & 255}`;
    const c = { client, port: (port = port >= 65000 ? 1024 : port + 1) };
    const x = rnd();
    put(t, 'CONNECT', { ...c, local: '192.0.2.1', local_port: 25 });
    const handoff = (at: number, verdict: string): void => {
      put(at, 'HANDOFF', { ...c, backend: '127.0.0.1:10025', mode: 'xclient', verdict, code: 220, handshake_ms: 2 + Math.round(rnd() * 20) });
      put(at + 20_000, 'DISCONNECT', { ...c, duration_ms: 20_000, bytes_in: 9000, bytes_out: 600, phase: 'spliced' });
    };
    if (x < 0.45) { put(t + 1, 'PASS OLD', c); handoff(t + 8 + rnd() * 40, 'old'); }
    else if (x < 0.52) { put(t + 1, 'ALLOWLISTED', { ...c, entry: '10.0.0.0/8' }); handoff(t + 5 + rnd() * 20, 'allowlisted'); }
    else if (x < 0.62) { const d = 6000 + rnd() * 60; put(t + d, 'PASS NEW', { ...c, dnsbl_score: 0, dnsbl_late: [] }); handoff(t + d + 10, 'new'); }
    else if (x < 0.72) {
      put(t + 200, 'PREGREET', { ...c, bytes: 11, after_ms: 200, sample: 'EHLO x\\r\\n', action: 'enforce' });
      put(t + 7000, 'NOQUEUE', { ...c, reply: '550 5.5.1 Protocol error', helo: 'x', from: 's@spam.example', to: 'u@example.test', proto: 'ESMTP', reason: 'pregreet' });
      put(t + 7100, 'DISCONNECT', { ...c, duration_ms: 7100, bytes_in: 60, bytes_out: 200, phase: 'dummy' });
    } else if (x < 0.84) {
      const hits = sites.filter(() => rnd() < 0.5).map((site) => ({ site, weight: 2, records: ['127.0.0.2'] }));
      if (hits.length === 0) hits.push({ site: sites[0] as string, weight: 3, records: ['127.0.0.2'] });
      const ms = Math.round(5 + rnd() * rnd() * 400);
      put(t + ms, 'DNSBL', { ...c, score: hits.length * 2 + 1, hits, action: 'enforce', lookup_ms: ms, late: rnd() < 0.05 ? ['psbl.example'] : [] });
      put(t + 7000, 'NOQUEUE', { ...c, reply: `550 5.7.1 Service unavailable; client [${client}] blocked using ${hits[0]?.site ?? ''}`, helo: 'x', from: 's@spam.example', to: 'u@example.test', proto: 'ESMTP', reason: 'dnsbl' });
      put(t + 7100, 'DISCONNECT', { ...c, duration_ms: 7100, bytes_in: 60, bytes_out: 200, phase: 'dummy' });
    } else if (x < 0.92) {
      const net = client.includes(':') ? `${client.split('::')[0] ?? ''}::/64` : `${client.slice(0, client.lastIndexOf('.'))}.0/24`;
      const retry = rnd() < 0.6;
      put(t + 6500, 'GREYLIST', { ...c, network: net, state: 'defer', reason: 'new', wait_ms: 300_000 });
      put(t + 6600, 'NOQUEUE', { ...c, reply: '450 4.7.1 Service currently unavailable', helo: 'mta', from: 'a@example.net', to: 'u@example.test', proto: 'ESMTP', reason: 'greylist' });
      put(t + 6700, 'DISCONNECT', { ...c, duration_ms: 6700, bytes_in: 80, bytes_out: 300, phase: 'dummy' });
      if (retry) {
        const t2 = t + 600_000 + rnd() * 900_000;
        const c2 = { client, port: c.port + 1 };
        put(t2, 'CONNECT', { ...c2, local: '192.0.2.1', local_port: 25 });
        put(t2 + 6000, 'GREYLIST', { ...c2, network: net, state: 'pass', delay_ms: t2 - t });
        put(t2 + 6001, 'PASS NEW', { ...c2, dnsbl_score: 0, dnsbl_late: [] });
        put(t2 + 6010, 'HANDOFF', { ...c2, backend: '127.0.0.1:10025', mode: 'xclient', verdict: 'new', code: 220, handshake_ms: 5 });
      }
    } else if (x < 0.97) {
      put(t + 300 + rnd() * 3000, 'HANGUP', { ...c, after_ms: 2000, phase: rnd() < 0.8 ? 'pregreet' : 'dummy' });
    } else if (x < 0.99) {
      put(t + 6100, 'COMMAND PIPELINING', { ...c, after: 'EHLO', sample: 'MAIL FROM:<a@b>\\r\\n', action: 'enforce' });
      put(t + 6200, 'NOQUEUE', { ...c, reply: '550 5.5.1 Protocol error', helo: 'x', from: 'a@b', to: 'u@example.test', proto: 'ESMTP', reason: 'pipelining' });
    } else if (x < 0.995) {
      put(t + 6000, 'BACKEND FAIL', { ...c, backend: '127.0.0.1:10025', stage: 'connect', reason: 'ECONNREFUSED' });
    } else {
      put(t, 'ALL PORTS BUSY', { ...c, count: 1000, limit: 'connections' });
    }
    if (!stressed && h === 13 && rnd() < 0.01) {
      stressed = true;
      put(day + 13 * 3_600_000 + 600_000, 'STRESS', { state: 'enter', count: 900, limit: 1000, threshold: 900 }, 40);
      put(day + 13 * 3_600_000 + 2_400_000, 'STRESS', { state: 'leave', count: 400, limit: 1000, threshold: 500 });
    }
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.end(buf);
  await once(out, 'finish');
  return n;
}
