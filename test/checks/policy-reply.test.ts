/*
 * test/checks/policy-reply.test.ts - the policy reply parser (checks/policy-reply.ts):
 * a table of good and bad replies, the SMTP reply texts, policy.url forms, and fast-check
 * properties: any string never throws; every well-formed reply parses back to itself;
 * any extra key makes a good reply bad.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parsePolicyReply, smtpReplyOf, MAX_REPLY_BYTES } from '../../src/checks/policy-reply.js';
import { parsePolicyUrl } from '../../src/config/policy-url.js';

const DAY = 86_400_000;

test('good replies', () => {
  const rows: Array<{ label: string; body: string; want: unknown }> = [
    { label: 'dunno', body: '{"action":"dunno"}', want: { action: 'dunno', reply: null, route: null, ttlMs: 0 } },
    { label: 'permit with ttl', body: '{"action":"permit","ttl":"1h"}', want: { action: 'permit', reply: null, route: null, ttlMs: 3_600_000 } },
    { label: 'ttl as seconds', body: '{"action":"permit","ttl":90}', want: { action: 'permit', reply: null, route: null, ttlMs: 90_000 } },
    { label: 'ttl clamped to ttl_max', body: '{"action":"permit","ttl":"30d"}', want: { action: 'permit', reply: null, route: null, ttlMs: DAY } },
    { label: 'reject with text', body: '{"action":"reject","reply":"go away"}', want: { action: 'reject', reply: 'go away', route: null, ttlMs: 0 } },
    { label: 'reject with own status', body: '{"action":"reject","reply":"5.7.0 no"}', want: { action: 'reject', reply: '5.7.0 no', route: null, ttlMs: 0 } },
    { label: 'defer', body: ' {"action":"defer","reply":"4.7.1 later"} ', want: { action: 'defer', reply: '4.7.1 later', route: null, ttlMs: 0 } },
    { label: 'route', body: '{"action":"route","route":"strict-1","ttl":"10m"}', want: { action: 'route', reply: null, route: 'strict-1', ttlMs: 600_000 } },
  ];
  for (const r of rows) assert.deepEqual(parsePolicyReply(r.body, DAY), r.want, r.label);
});

test('bad replies are strings saying why, never a throw', () => {
  const rows: Array<{ label: string; body: string; why: RegExp }> = [
    { label: 'empty', body: '', why: /not JSON/ },
    { label: 'garbage', body: 'OK', why: /not JSON/ },
    { label: 'a list', body: '["permit"]', why: /not a JSON object/ },
    { label: 'null', body: 'null', why: /not a JSON object/ },
    { label: 'no action', body: '{}', why: /action missing/ },
    { label: 'unknown action', body: '{"action":"OK"}', why: /action missing/ },
    { label: 'Postfix-style action', body: '{"action":"REJECT"}', why: /action missing/ },
    { label: 'unknown key', body: '{"action":"dunno","extra":1}', why: /unknown key "extra"/ },
    { label: 'reply with permit', body: '{"action":"permit","reply":"hi"}', why: /reply given with action permit/ },
    { label: 'reply with CRLF', body: '{"action":"reject","reply":"a\\r\\n250 ok"}', why: /printable/ },
    { label: 'reply not a string', body: '{"action":"reject","reply":5}', why: /printable/ },
    { label: 'reply too long', body: JSON.stringify({ action: 'reject', reply: 'x'.repeat(401) }), why: /printable/ },
    { label: 'reply with a code', body: '{"action":"reject","reply":"550 no"}', why: /SMTP code/ },
    { label: 'status class mismatch', body: '{"action":"defer","reply":"5.7.1 no"}', why: /does not match/ },
    { label: 'route without name', body: '{"action":"route"}', why: /route missing/ },
    { label: 'route bad name', body: '{"action":"route","route":"a b"}', why: /route missing/ },
    { label: 'route with permit', body: '{"action":"permit","route":"x"}', why: /route given/ },
    { label: 'bad ttl', body: '{"action":"permit","ttl":"soon"}', why: /ttl/ },
    { label: 'negative ttl', body: '{"action":"permit","ttl":-5}', why: /ttl/ },
    { label: 'ttl object', body: '{"action":"permit","ttl":{}}', why: /ttl/ },
    { label: 'too long', body: `{"action":"dunno"}${' '.repeat(MAX_REPLY_BYTES)}`, why: /longer than/ },
  ];
  for (const r of rows) {
    const got = parsePolicyReply(r.body, DAY);
    assert.equal(typeof got, 'string', r.label);
    assert.match(got as string, r.why, r.label);
  }
});

test('SMTP replies: our enhanced code unless theirs is given; defaults name the host', () => {
  assert.equal(smtpReplyOf(550, 'go away', 'mx.test'), '550 5.7.1 go away\r\n');
  assert.equal(smtpReplyOf(550, '5.7.0 no', 'mx.test'), '550 5.7.0 no\r\n');
  assert.equal(smtpReplyOf(450, 'later', 'mx.test'), '450 4.7.1 later\r\n');
  assert.equal(smtpReplyOf(521, null, 'mx.test'), '521 5.7.1 mx.test Service unavailable; client blocked by policy\r\n');
});

test('policy.url: http and unix forms; others named', () => {
  assert.deepEqual(parsePolicyUrl('http://127.0.0.1:9000/check?x=1'), { origin: 'http://127.0.0.1:9000', path: '/check?x=1', socketPath: null });
  assert.deepEqual(parsePolicyUrl('unix:/run/policy.sock:/check'), { origin: 'http://localhost', path: '/check', socketPath: '/run/policy.sock' });
  assert.deepEqual(parsePolicyUrl('unix:/run/policy.sock'), { origin: 'http://localhost', path: '/', socketPath: '/run/policy.sock' });
  assert.deepEqual(parsePolicyUrl('unix:/run/a:b.sock:/p'), { origin: 'http://localhost', path: '/p', socketPath: '/run/a:b.sock' });
  assert.match(parsePolicyUrl('https://x/') as string, /not supported/);
  assert.match(parsePolicyUrl('unix:relative') as string, /ABSOLUTE/);
  assert.match(parsePolicyUrl('127.0.0.1:9000') as string, /not supported|want/);
  assert.match(parsePolicyUrl('http://u:p@h/') as string, /credentials/);
});

test('property: any string gives a reply or a reason, never a throw', () => {
  fc.assert(fc.property(fc.oneof(fc.string(), fc.json(), fc.string({ unit: 'grapheme', maxLength: 200 })), (s) => {
    const r = parsePolicyReply(s, DAY);
    assert.ok(typeof r === 'string' || (typeof r === 'object' && r !== null));
  }), { numRuns: 3000 });
});

const good = fc.oneof(
  fc.record({ action: fc.constantFrom('permit', 'dunno') }, { requiredKeys: ['action'] }),
  fc.record({ action: fc.constantFrom('reject', 'defer'), reply: fc.stringMatching(/^[a-z][a-z ]{0,40}$/) }, { requiredKeys: ['action'] }),
  fc.record({ action: fc.constant('route'), route: fc.stringMatching(/^[a-z][a-z0-9_.-]{0,20}$/) }),
).chain((o) => fc.record({ o: fc.constant(o), ttl: fc.option(fc.integer({ min: 0, max: 86_400 }), { nil: undefined }) }));

test('property: every well-formed reply parses to what it says; an extra key makes it bad', () => {
  fc.assert(fc.property(good, fc.stringMatching(/^[a-z_]{1,10}$/), ({ o, ttl }, extra) => {
    const obj: Record<string, unknown> = { ...o };
    if (ttl !== undefined) obj['ttl'] = `${ttl}s`;
    const r = parsePolicyReply(JSON.stringify(obj), DAY);
    assert.equal(typeof r, 'object', JSON.stringify(obj));
    const p = r as Exclude<typeof r, string>;
    assert.equal(p.action, o.action);
    assert.equal(p.reply, (o as { reply?: string }).reply ?? null);
    assert.equal(p.route, (o as { route?: string }).route ?? null);
    assert.equal(p.ttlMs, (ttl ?? 0) * 1000);
    if (['action', 'reply', 'route', 'ttl'].includes(extra)) return;
    assert.equal(typeof parsePolicyReply(JSON.stringify({ ...obj, [extra]: 1 }), DAY), 'string');
  }), { numRuns: 2000 });
});
