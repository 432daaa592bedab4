/*
 * Integration: the deep protocol tests, with the real screener
 * process in front of the private Postfix, swaks and raw sockets as clients
 * from distinct 127.x addresses, 1 s greet wait.
 * - A well-behaved client (swaks) passes the deep tests in the dummy engine,
 *   gets 450 at RCPT, is remembered (PASS NEW), reconnects and reaches
 *   Postfix (PASS OLD; Postfix's log shows the real address and the mail).
 * - A pipelining client, an HTTP client and a bare-LF client each fail as
 *   configured (drop: the test's 521; enforce: 550 at RCPT with the envelope
 *   in NOQUEUE), are not remembered, and Postfix never sees them.
 * - The hard error limit ends a session with 421 and COMMAND ERROR LIMIT.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { portOf, byClient, greeted, withScreener } from '../helpers/screener.js';
import { runSwaks } from '../helpers/swaks.js';
import { connectClient, lastLine, reply, type RawClient } from '../helpers/smtp-client.js';

type Ev = Record<string, unknown>;

let pf: PostfixInstance;
before(async () => {
  pf = await startPostfix();
});
after(async () => {
  await pf?.stop();
});

const ALL_ON = {
  pipelining: { enable: true, action: 'enforce' },
  non_smtp: { enable: true, action: 'drop' },
  bare_newline: { enable: true, action: 'enforce' },
};

function cfg(deep: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    hostname: 'screen.test',
    listen: ['127.0.0.1:0'],
    limits: { max_per_client: 0 },
    backend: { address: `127.0.0.1:${pf.xclientPort}`, handoff: 'xclient', connect_timeout: '2s', handshake_timeout: '5s' },
    pregreet: { wait: '1s', action: 'enforce' },
    deep,
    drain_timeout: '5s',
    ...extra,
  };
}

/** Send one command and read its (final) reply line. */
async function cmd(c: RawClient, line: string): Promise<string> {
  return lastLine(await reply(c, line, 5000));
}

describe('deep protocol tests in front of Postfix', () => {
  test('a well-behaved client passes, gets 450 at RCPT, reconnects and reaches Postfix (PASS NEW, then PASS OLD)', async () => {
    await withScreener(cfg(ALL_ON), async (s) => {
      const addr = '127.0.50.1';
      const server = `127.0.0.1:${portOf(s)}`;
      const first = await runSwaks({ server, localAddress: addr, to: 'deep1@example.test', from: 's@example.test', helo: 'good.test', timeoutS: 15 });
      assert.notEqual(first.code, 0, 'the first attempt is deferred');
      assert.match(first.transcript, /<-\s+220-screen\.test ESMTP/);
      assert.match(first.transcript, /<-\s+220 screen\.test ESMTP/, 'the dummy engine completes the greeting');
      assert.doesNotMatch(first.transcript, /PIPELINING/, 'never offered');
      assert.match(first.transcript, /<\*\*\s+450 4\.3\.2 Service currently unavailable/);
      const n = await s.waitForEvent((e) => e['event'] === 'NOQUEUE' && e['client'] === addr);
      assert.deepEqual([n['helo'], n['from'], n['to'], n['reason'], n['reply']],
        ['good.test', 's@example.test', 'deep1@example.test', 'deep', '450 4.3.2 Service currently unavailable']);
      const p = await s.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === addr);
      assert.deepEqual(p['deep'], ['pipelining', 'non_smtp', 'bare_newline']);
      assert.equal(byClient(s, 'HANDOFF', addr).length, 0, 'not handed over in the testing session');
      for (const name of ['COMMAND PIPELINING', 'NON-SMTP COMMAND', 'BARE NEWLINE']) assert.equal(byClient(s, name, addr).length, 0, name);

      const second = await runSwaks({ server, localAddress: addr, to: 'deep2@example.test', from: 's@example.test', helo: 'good.test', timeoutS: 15 });
      assert.equal(second.code, 0, second.transcript);
      assert.doesNotMatch(second.transcript, /220-screen\.test/, 'no teaser for a known client');
      assert.match(second.transcript, /<-\s+220 .*Postfix/);
      await s.waitForEvent((e) => e['event'] === 'PASS OLD' && e['client'] === addr);
      const h = await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === addr);
      assert.equal(h['verdict'], 'old');
      await pf.waitForLog(/client=unknown\[127\.0\.50\.1\]/);
      await pf.waitForLog(/to=<deep2@example\.test>/);
      assert.doesNotMatch(pf.maillog(), /deep1@example\.test/, 'the deferred attempt never reached Postfix');
    });
  });

  test('a client that hangs up after the 450 (no QUIT) is remembered too: a hangup is not a failure', async () => {
    await withScreener(cfg({ pipelining: { enable: true } }), async (s) => {
      const addr = '127.0.50.2';
      const c = await greeted(s, addr);
      assert.match(await cmd(c, 'EHLO polite.test\r\n'), /^250 /);
      assert.match(await cmd(c, 'MAIL FROM:<a@example.test>\r\n'), /^250 2\.1\.0/);
      assert.match(await cmd(c, 'RCPT TO:<b@example.test>\r\n'), /^450 4\.3\.2/);
      c.end();
      await s.waitForEvent((e) => e['event'] === 'HANGUP' && e['client'] === addr);
      await s.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === addr);
      const again = await connectClient('127.0.0.1', portOf(s), addr);
      await again.readUntil(/^220 .*Postfix/m, 5000);
      again.destroy();
      await s.waitForEvent((e) => e['event'] === 'PASS OLD' && e['client'] === addr);
    });
  });

  const FAILS: Array<{
    name: string;
    addr: string;
    deep: Record<string, unknown>;
    /** Raw dialogue after the greeting: [what to write ('' for nothing), the next reply expected]. */
    steps: Array<[string, RegExp]>;
    closed: boolean;
    event: { name: string; fields: Ev };
    noqueue?: string;
    extra?: Record<string, unknown>;
  }> = [
    {
      name: 'pipelining client, enforce: EHLO and MAIL in one write; RCPT refused with 550',
      addr: '127.0.51.1', deep: ALL_ON,
      steps: [['EHLO pipe.test\r\nMAIL FROM:<p@bot.test>\r\n', /^250 CHUNKING/], ['', /^250 2\.1\.0 Ok/], ['RCPT TO:<v@example.test>\r\n', /^550 5\.5\.1 Protocol error/]],
      closed: false,
      event: { name: 'COMMAND PIPELINING', fields: { after: 'EHLO', sample: 'MAIL FROM:<p@bot.test>\\r\\n', action: 'enforce' } },
      noqueue: 'pipelining',
    },
    {
      name: 'pipelining client, drop: 521 at once',
      addr: '127.0.51.2', deep: { pipelining: { enable: true, action: 'drop' } },
      steps: [['EHLO pipe.test\r\nMAIL FROM:<p@bot.test>\r\n', /^521 5\.5\.1 Protocol error/]],
      closed: true,
      event: { name: 'COMMAND PIPELINING', fields: { after: 'EHLO', sample: 'MAIL FROM:<p@bot.test>\\r\\n', action: 'drop' } },
    },
    {
      name: 'HTTP client, drop (postscreen default): GET / HTTP/1.0 gets "I can break rules, too"',
      addr: '127.0.51.3', deep: ALL_ON,
      steps: [['GET / HTTP/1.0\r\n', /^521 5\.7\.0 Error: I can break rules, too\. Goodbye\./]],
      closed: true,
      event: { name: 'NON-SMTP COMMAND', fields: { after: 'CONNECT', sample: 'GET / HTTP/1.0', action: 'drop' } },
    },
    {
      name: 'header-like line, enforce: 502, then 550 at RCPT',
      addr: '127.0.51.4', deep: { non_smtp: { enable: true, action: 'enforce' } },
      steps: [['Subject: buy now\r\n', /^502 5\.5\.2/], ['MAIL FROM:<h@bot.test>\r\n', /^250 /], ['RCPT TO:<v@example.test>\r\n', /^550 5\.5\.1 Protocol error/]],
      closed: false,
      event: { name: 'NON-SMTP COMMAND', fields: { after: 'CONNECT', sample: 'Subject: buy now', action: 'enforce' } },
      noqueue: 'non_smtp',
    },
    {
      name: 'bare-LF client, enforce: its lines are answered, RCPT refused with 550',
      addr: '127.0.51.5', deep: ALL_ON,
      steps: [['EHLO lf.test\n', /^250 /], ['MAIL FROM:<l@bot.test>\n', /^250 2\.1\.0/], ['RCPT TO:<v@example.test>\n', /^550 5\.5\.1 Protocol error/]],
      closed: false,
      event: { name: 'BARE NEWLINE', fields: { after: 'CONNECT', sample: 'EHLO lf.test', action: 'enforce' } },
      noqueue: 'bare_newline',
    },
    {
      name: 'bare-LF client, drop: 521 after the first line',
      addr: '127.0.51.6', deep: { bare_newline: { enable: true, action: 'drop' } },
      steps: [['HELO lf.test\n', /^521 5\.5\.1 Protocol error/]],
      closed: true,
      event: { name: 'BARE NEWLINE', fields: { after: 'CONNECT', sample: 'HELO lf.test', action: 'drop' } },
    },
    {
      name: 'hard error limit: the second error reply is followed by 421 too many errors',
      addr: '127.0.51.7', deep: { pipelining: { enable: true } }, extra: { dummy: { hard_error_limit: 2 } },
      steps: [['FOO\r\n', /^502 /], ['BAR\r\n', /^502 /], ['', /^421 4\.7\.0 screen\.test Error: too many errors/]],
      closed: true,
      event: { name: 'COMMAND ERROR LIMIT', fields: { after: 'UNIMPLEMENTED', count: 2, limit: 2 } },
    },
  ];

  for (const f of FAILS) {
    test(f.name, async () => {
      await withScreener(cfg(f.deep, f.extra ?? {}), async (s) => {
        const c = await greeted(s, f.addr);
        for (const [line, want] of f.steps) assert.match(await cmd(c, line), want, JSON.stringify(line));
        if (f.closed) await c.closed;
        else {
          assert.match(await cmd(c, 'QUIT\r\n'), /^221 /);
          await c.closed;
        }
        const e = await s.waitForEvent((x) => x['event'] === f.event.name && x['client'] === f.addr);
        for (const [k, v] of Object.entries(f.event.fields)) assert.deepEqual(e[k], v, k);
        if (f.noqueue !== undefined) {
          const n = await s.waitForEvent((x) => x['event'] === 'NOQUEUE' && x['client'] === f.addr);
          assert.equal(n['reason'], f.noqueue);
          assert.equal(n['to'], 'v@example.test');
        }
        await s.waitForEvent((x) => x['event'] === 'DISCONNECT' && x['client'] === f.addr);
        assert.equal(byClient(s, 'PASS NEW', f.addr).length, 0, 'a failing client is not remembered');
        assert.equal(byClient(s, 'HANDOFF', f.addr).length, 0);
        // Its next connection is screened again: teaser, then the dummy engine, not Postfix.
        const again = await greeted(s, f.addr);
        again.destroy();
        assert.equal(byClient(s, 'PASS OLD', f.addr).length, 0);
        assert.doesNotMatch(pf.maillog(), new RegExp(f.addr.replace(/\./g, '\\.') + '\\]'));
      });
    });
  }

  test('deep tests disabled (the default): a new client goes straight to Postfix after the greet wait', async () => {
    await withScreener(cfg({}), async (s) => {
      const addr = '127.0.52.1';
      const r = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: addr, to: 'nodeep@example.test', timeoutS: 15 });
      assert.equal(r.code, 0, r.transcript);
      await s.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === addr);
      await pf.waitForLog(/to=<nodeep@example\.test>/);
    });
  });
});
