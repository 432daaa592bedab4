/*
 * test/server/dnsbl-health-timer.test.ts - the screener runs the DNSBL site probes: once at start
 * and every dnsbl.health.interval (the interval is the server's; checks/ own no timers), and none
 * after close(). The screener runs in-process against the fake DNS responder on loopback; the
 * test never calls the probe itself, it counts the probe queries the DNS server receives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { parseConfigText } from '../../src/config/load.js';
import { startScreener } from '../../src/server/screener.js';
import { QTYPE, RCODE } from '../../src/dns/types.js';
import { reply, startFakeDns } from '../dns/fake-server.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

test('the screener probes DNSBL sites at start and every health interval, and stops on close', async () => {
  const dns = await startFakeDns((m) => {
    const q = m.questions[0];
    if (q?.name === '2.0.0.127.bl.test') return [{ buf: reply(m, { answers: [{ name: q.name, type: QTYPE.A, ttl: 300, data: '127.0.0.2' }] }) }];
    return [{ buf: reply(m, { rcode: RCODE.NXDOMAIN }) }];
  });
  // Health on by default: only the interval is shortened (to its minimum, 1 s).
  const config = parseConfigText([
    'listen: ["127.0.0.1:0"]',
    'backend: { address: "sink:0" }',
    'dnsbl: { sites: ["bl.test*3"], health: { interval: 1s } }',
    `resolver: { servers: ["127.0.0.1:${dns.port}"], timeout: 500ms }`,
  ].join('\n'), 'test.yaml');
  const probes = () => dns.queries.filter((q) => q.name === '2.0.0.127.bl.test').length;
  try {
    const s = await startScreener(config, { logger: pino({ level: 'silent' }) });
    try {
      await sleep(2500);
      // At start, then at 1 s and 2 s: 3 on an idle machine; the start alone would be 1.
      assert.ok(probes() >= 2, `probes of the listed test entry within 2.5 s: ${probes()}`);
      assert.ok(dns.queries.some((q) => q.name === '1.0.0.127.bl.test'), 'the unlisted test entry is probed too');
    } finally {
      await s.close(100);
    }
    const atClose = probes();
    await sleep(1500);
    assert.equal(probes(), atClose, 'no probe after close()');
  } finally {
    await dns.close();
  }
});
