/*
 * test/server/reload.test.ts - Screener.reload() in-process, against the fake
 * DNS responder on loopback: what a reload keeps and what it replaces.
 * - DNSBL sites changed: new connections use the new sites, and a lookup the
 *   old generation's resolver has in flight is still answered (its session is
 *   scored by the old site): the dropped resolver is closed only later.
 * - dnsbl and resolver unchanged: the DNSBL test is kept (RELOAD dnsbl kept),
 *   so its answer cache serves the next connection without a query.
 * - a throw while reading the file: RELOAD ok false, the generation stays.
 * - restart-only keys are named (restart_needed, at warn).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { parseConfigText } from '../../src/config/load.js';
import { startScreener } from '../../src/server/screener.js';
import { QTYPE, RCODE } from '../../src/dns/types.js';
import { ScreenError } from '../../src/util/errors.js';
import { reply, startFakeDns } from '../dns/fake-server.js';
import { connectClient } from '../helpers/smtp-client.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function logSink(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

async function until<T>(what: string, f: () => T | undefined, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('reload replacing the DNSBL sites: new connections use the new site; a lookup in flight on the old resolver is still answered', async () => {
  // Site a lists everything, 600 ms late; site b lists nothing.
  const dns = await startFakeDns((m) => {
    const q = m.questions[0];
    if (q?.name.endsWith('.bl-a.test') === true) return [{ buf: reply(m, { answers: [{ name: q.name, type: QTYPE.A, ttl: 300, data: '127.0.0.2' }] }), delayMs: 600 }];
    return [{ buf: reply(m, { rcode: RCODE.NXDOMAIN }) }];
  });
  const cfg = (site: string) => parseConfigText([
    'hostname: screen.test',
    'listen: ["127.0.0.1:0"]',
    'backend: { address: "sink:0" }',
    'pregreet: { wait: 1500ms }',
    `dnsbl: { sites: ["${site}*3"], threshold: 3, timeout: 3s, health: { enable: false } }`,
    `resolver: { servers: ["127.0.0.1:${dns.port}"], timeout: 2s, tries: 1 }`,
  ].join('\n'), 'test.yaml');
  const { logger, lines } = logSink();
  const s = await startScreener(cfg('bl-a.test'), { logger });
  try {
    const port = Number(s.addresses[0]?.split(':').pop());
    const c1 = await connectClient('127.0.0.1', port, '127.0.14.1');
    await until('the lookup for the first client', () => dns.queries.find((q) => q.name === '1.14.0.127.bl-a.test'));
    const r = await s.reload(() => cfg('bl-b.test'));
    assert.deepEqual([r.ok, r.generation, r.changed, r.dnsbl], [true, 2, ['dnsbl.sites'], 'new']);
    // The old site's late answer still scores the session that asked it.
    const hit = await until('DNSBL for the first client', () => lines.find((l) => l['event'] === 'DNSBL' && l['client'] === '127.0.14.1'));
    assert.equal(hit['score'], 3);
    assert.deepEqual((hit['hits'] as Array<{ site: string }>).map((h) => h.site), ['bl-a.test']);
    c1.destroy();
    // A new connection asks the new site only, and passes.
    const c2 = await connectClient('127.0.0.1', port, '127.0.14.2');
    await c2.readUntil(/^220 sink\.invalid /m, 5000);
    assert.ok(dns.queries.some((q) => q.name === '2.14.0.127.bl-b.test'));
    assert.equal(dns.queries.some((q) => q.name === '2.14.0.127.bl-a.test'), false);
    assert.ok(lines.some((l) => l['event'] === 'PASS NEW' && l['client'] === '127.0.14.2'));
    c2.destroy();
  } finally {
    await s.close(100);
    await dns.close();
  }
});

test('reload with dnsbl and resolver unchanged keeps the DNSBL test and its answer cache; a failed read keeps the generation; restart-only keys are named', async () => {
  const dns = await startFakeDns((m) => [{ buf: reply(m, { rcode: RCODE.NXDOMAIN }) }]);
  const text = (extra: string) => [
    'hostname: screen.test',
    'listen: ["127.0.0.1:0"]',
    'backend: { address: "sink:0" }',
    'pregreet: { wait: 200ms }',
    'dnsbl: { sites: ["bl.test"], health: { enable: false } }',
    `resolver: { servers: ["127.0.0.1:${dns.port}"] }`,
    extra,
  ].join('\n');
  const { logger, lines } = logSink();
  const s = await startScreener(parseConfigText(text(''), 'test.yaml'), { logger });
  try {
    const port = Number(s.addresses[0]?.split(':').pop());
    const a = await connectClient('127.0.0.1', port, '127.0.14.3');
    await a.readUntil(/^220 sink\.invalid /m, 5000);
    a.destroy();
    const asked = dns.queries.filter((q) => q.name === '3.14.0.127.bl.test').length;
    assert.equal(asked, 1);

    const r = await s.reload(() => parseConfigText(text('pregreet: { wait: 300ms }\ncache: { max_entries: 10 }').replace('pregreet: { wait: 200ms }\n', ''), 'test.yaml'));
    assert.deepEqual([r.ok, r.dnsbl, r.changed, r.restart_needed], [true, 'kept', ['pregreet.wait', 'cache.max_entries'], ['cache.max_entries']]);
    assert.equal(lines.find((l) => l['event'] === 'RELOAD')?.['level'], 40);
    // The verdict cache is kept too: the same client is PASS OLD now, and the DNS cache was not needed.
    const b = await connectClient('127.0.0.1', port, '127.0.14.3');
    await b.readUntil(/^220 sink\.invalid /m, 5000);
    b.destroy();
    await until('PASS OLD', () => lines.find((l) => l['event'] === 'PASS OLD' && l['client'] === '127.0.14.3'));

    const bad = await s.reload(() => {
      throw new ScreenError('SCR_ERR_CONFIG', 'test.yaml: pregreet.wait: bad duration "6x"');
    });
    assert.deepEqual([bad.ok, bad.generation, bad.code], [false, 2, 'SCR_ERR_CONFIG']);
    assert.match(bad.error ?? '', /pregreet\.wait: bad duration "6x"; still serving with the configuration loaded before/);
    assert.equal(s.ctx.gen.config.pregreet.wait, 300);
    assert.equal(lines.filter((l) => l['event'] === 'RELOAD').at(-1)?.['level'], 50);
  } finally {
    await s.close(100);
    await dns.close();
  }
});
