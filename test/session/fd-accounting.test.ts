/*
 * The session's part of the accept-time descriptor count (server/fdlimit.ts):
 * a session that enters the dummy engine and cannot be handed over any more
 * is counted in ctx.dummyOnly (one descriptor, not two) until it closes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { harness } from '../helpers/fake-session.js';

const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

test('a pregreeter in the dummy engine counts as dummy-only until it closes; a client being screened does not', async () => {
  const h = harness({ pregreet: { wait: '2s', action: 'enforce' }, backend: { handoff: 'none' } });
  const waiting = h.connect('192.0.2.30').sock;
  const talker = h.connect('192.0.2.31').sock;
  assert.equal(h.ctx.dummyOnly, 0);
  talker.feed('EHLO early.test\r\n');
  assert.match(talker.text(), /250/, 'in the dummy engine');
  assert.equal(h.ctx.dummyOnly, 1);
  talker.feed('QUIT\r\n');
  await settle();
  assert.equal(h.ctx.dummyOnly, 0, 'released at close');
  // The other one passes and is handed over: it never counted as dummy-only.
  h.clock.advance(2000);
  assert.equal(h.ctx.dummyOnly, 0);
  assert.equal(h.backends.length, 1);
  waiting.hangup();
  await settle();
  assert.equal(h.ctx.dummyOnly, 0);
  assert.equal(h.ctx.sessions.size, 0);
});
