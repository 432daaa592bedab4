/*
 * test/helpers/log-clients.ts - the three clients whose log lines the syslog
 * test compares between real postscreen and smtpscreen.
 *
 * Exports: runLogClients(port, addrs, greetWaitMs), LOG_CLIENTS.
 *   clean     waits for the whole greeting, says QUIT           -> CONNECT, PASS NEW
 *   pregreet  sends EHLO before the greeting (answered after the wait), then MAIL and RCPT -> PREGREET, NOQUEUE: reject: RCPT ... 550
 *   hangup    closes during the greet wait                       -> HANGUP after ... in tests before SMTP handshake
 * Each from its own loopback address, so that the screeners' caches do not
 * mix them. Used by scripts/postscreen-fixture.ts (real postscreen) and by
 * test/integration/syslog.test.ts (smtpscreen).
 */
import { connectClient } from './smtp-client.js';

export const LOG_CLIENTS = ['clean', 'pregreet', 'hangup'] as const;

/** runLogClients - the three clients against `port`, one after the other, from addrs[0..2]. */
export async function runLogClients(port: number, addrs: readonly string[], greetWaitMs: number): Promise<void> {
  // clean
  let c = await connectClient('127.0.0.1', port, addrs[0]);
  await c.readUntil(/^220 .*\r\n/m, greetWaitMs + 10_000);
  c.write('QUIT\r\n');
  await c.readUntil(/^221 /m, 10_000);
  c.destroy();
  // pregreet
  c = await connectClient('127.0.0.1', port, addrs[1]);
  c.write('EHLO foo\r\n'); // answered by the dummy engine once the greet wait is over
  await c.readUntil(/^250 .*\r\n/m, greetWaitMs + 10_000);
  c.write('MAIL FROM:<a@example.org>\r\n');
  await c.readUntil(/^250 .*\r\n/m, 10_000);
  c.write('RCPT TO:<b@example.test>\r\n');
  await c.readUntil(/^5\d\d .*\r\n/m, 10_000);
  c.write('QUIT\r\n');
  await c.readUntil(/^221 /m, 10_000);
  c.destroy();
  // hangup
  c = await connectClient('127.0.0.1', port, addrs[2]);
  await c.readUntil(/^220-/m, 10_000);
  await new Promise((r) => setTimeout(r, Math.min(300, greetWaitMs / 3)));
  c.destroy();
  await new Promise((r) => setTimeout(r, 500));
}
