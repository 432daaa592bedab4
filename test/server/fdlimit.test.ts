/*
 * server/fdlimit.ts: the soft limit read from /proc/self/limits, and the
 * accept-time count that keeps a backend descriptor for every client that
 * may still be handed over.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectionCeiling, fdsFull, FD_RESERVE, readFdLimit } from '../../src/server/fdlimit.js';

test('readFdLimit: the soft limit, null when unlimited or absent', () => {
  assert.equal(readFdLimit('Max open files            200                  20000                files     \n'), 200);
  assert.equal(readFdLimit('Max open files            unlimited            unlimited            files     \n'), null);
  assert.equal(readFdLimit('Max processes 10 10 processes\n'), null);
});

test('fdsFull: every client that may be handed over counts two descriptors, a dummy-only one one, the new client two', () => {
  const limit = 200;
  // 67 clients that may pass: 134 + 2 for the new one + 64 reserved = 200: the 68th is let in, the 69th is not.
  assert.equal(fdsFull(limit, 67, 0, 0, 0), false);
  assert.equal(fdsFull(limit, 68, 0, 0, 0), true);
  // The same 68 with 20 of them in the dummy engine hold 116: room for more.
  assert.equal(fdsFull(limit, 68, 20, 0, 0), false);
  // Refused sockets still closing count; so do backend sockets that outlive their session.
  assert.equal(fdsFull(limit, 67, 0, 0, 1), true);
  assert.equal(fdsFull(limit, 50, 50, 90, 0), true, '50 clients + 90 backends, some outliving their session');
  assert.equal(fdsFull(null, 1_000_000, 0, 1_000_000, 0), false, 'no known limit: never full');
});

test('connectionCeiling: (limit - reserve) / 2, at least 1', () => {
  assert.equal(connectionCeiling(200), (200 - FD_RESERVE) / 2);
  assert.equal(connectionCeiling(20_000), 9_968);
  assert.equal(connectionCeiling(10), 1);
});
