/*
 * Property: for random interleavings of client bytes, DNS answers, timer
 * expiries, backend events and hang-ups, a session ends once (one
 * DISCONNECT), leaves no timer armed, writes nothing to the client after it
 * closed, and stores nothing after its DISCONNECT.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { harness, type FakeSocket } from '../helpers/fake-session.js';

const settle = async (): Promise<void> => {
  for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
};

const LINES = [
  'EHLO bot.test\r\n', 'HELO bot.test\r\n', 'MAIL FROM:<a@bot.test>\r\n', 'RCPT TO:<b@screen.test>\r\n', 'DATA\r\n',
  'QUIT\r\n', 'RSET\r\n', 'NOOP\r\n', 'GET / HTTP/1.0\r\n', 'Subject: x\r\n', 'EHLO bare\n', 'STARTTLS\r\n', '\r\n',
];

type Action =
  | { k: 'bytes'; text: string }
  | { k: 'dns'; listed: boolean }
  | { k: 'time'; ms: number }
  | { k: 'backend-connect' }
  | { k: 'backend-data'; text: string }
  | { k: 'backend-end' }
  | { k: 'hangup' }
  | { k: 'settle' };

const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ k: fc.constant('bytes' as const), text: fc.oneof(fc.constantFrom(...LINES), fc.string({ maxLength: 40 }), fc.constantFrom(...LINES).map((l) => l.slice(0, 5))) }),
  fc.record({ k: fc.constant('dns' as const), listed: fc.boolean() }),
  fc.record({ k: fc.constant('time' as const), ms: fc.constantFrom(1, 100, 999, 1000, 2000, 5000, 30_000, 300_000) }),
  fc.constant({ k: 'backend-connect' as const }),
  fc.record({ k: fc.constant('backend-data' as const), text: fc.constantFrom('220 b.test ESMTP\r\n', '250 ok\r\n', '421 bye\r\n', 'garbage\r\n', '220-') }),
  fc.constant({ k: 'backend-end' as const }),
  fc.constant({ k: 'hangup' as const }),
  fc.constant({ k: 'settle' as const }),
);

const configs = fc.record({
  action: fc.constantFrom('drop', 'enforce', 'ignore'),
  dnsbl: fc.boolean(),
  greylist: fc.boolean(),
  deep: fc.boolean(),
  afterPass: fc.constantFrom('reconnect', 'handoff'),
  handoff: fc.constantFrom('none', 'xclient', 'proxy-v1'),
});

test('any interleaving: one DISCONNECT, no timer left, nothing written after close', async () => {
  await fc.assert(
    fc.asyncProperty(configs, fc.array(action, { maxLength: 30 }), async (c, actions) => {
      const h = harness({
        pregreet: { wait: '1s', action: c.action },
        ...(c.dnsbl ? { dnsbl: { sites: ['bl.test'], threshold: 1, action: c.action } } : {}),
        greylist: { enable: c.greylist },
        deep: { pipelining: { enable: c.deep }, after_pass: c.handoff === 'none' ? 'reconnect' : c.afterPass },
        backend: { handoff: c.handoff, connect_timeout: '2s', handshake_timeout: '3s' },
        dummy: { command_time_limit: '10s' },
      });
      const { sock } = h.connect('192.0.2.50');
      const backend = (): FakeSocket | undefined => h.backends.at(-1);
      for (const a of actions) {
        switch (a.k) {
          case 'bytes': sock.feed(a.text); break;
          case 'dns': h.dns.answerAll(a.listed); break;
          case 'time': h.clock.advance(a.ms); break;
          case 'backend-connect': backend()?.emit('connect'); break;
          case 'backend-data': backend()?.feed(a.text); break;
          case 'backend-end': { const b = backend(); if (b !== undefined && !b.destroyed) { b.emit('end'); b.destroy(); } break; }
          case 'hangup': sock.hangup(); break;
          case 'settle': await settle(); break;
        }
      }
      // The end of the world: the client leaves, every answer arrives, all time passes.
      sock.hangup();
      for (const b of h.backends) if (!b.destroyed) b.destroy();
      await settle();
      h.dns.answerAll(false);
      await settle();
      h.clock.advance(3_600_000);
      await settle();
      const disconnects = h.events.filter((e) => e['event'] === 'DISCONNECT');
      assert.equal(disconnects.length, 1, `one DISCONNECT: ${JSON.stringify(h.events.map((e) => e['event']))}`);
      assert.equal(h.clock.timers.length, 0, 'no timer left armed');
      assert.equal(sock.writesAfterEnd, 0, 'nothing written to the client after it was closed');
      assert.equal(h.ctx.sessions.size, 0);
      const last = h.events.indexOf(disconnects[0] as Record<string, unknown>);
      assert.equal(h.events.slice(last + 1).length, 0, 'no event after DISCONNECT');
      assert.ok(h.events.filter((e) => e['event'] === 'HANDOFF').length <= 1);
    }),
    { numRuns: 400 },
  );
});
