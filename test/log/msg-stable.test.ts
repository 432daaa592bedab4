/*
 * Every event in the table (log/events.ts) has a stable `msg`: its own
 * renderer (no "NAME key=value" dump that changes with every field added),
 * whose text starts with a fixed head whatever the fields hold (missing,
 * odd types, client text with control characters; numbers and addresses,
 * which are ours, as numbers and addresses), on one line. A new event
 * without a row here fails the first test: give it a renderer and a head.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EVENTS } from '../../src/log/events.js';
import { formatEvent } from '../../src/log/postscreen-format.js';

const A = String.raw`\[[^\]]*\]:.*`; // [addr]:port (the port as given, control characters shown as ?)
const HEADS: Readonly<Record<string, RegExp>> = {
  'STARTED': /^daemon started -- /,
  'START FAILED': /^START FAILED: /,
  'STOPPING': /^terminating on signal /,
  'STOPPED': /^stopped/,
  'SIGNAL': /^SIGNAL /,
  'RELOAD': /^RELOAD (failed: |generation )/,
  'ACCEPT ERROR': /^accept on /,
  'INTERNAL ERROR': /^INTERNAL ERROR in /,
  'LOG DROPPED': /^LOG DROPPED /,
  'LOG REOPEN': /^LOG REOPEN /,
  'WORKER STARTED': /^WORKER STARTED /,
  'WORKER EXITED': /^WORKER EXITED /,
  'CONNECT': new RegExp(`^CONNECT from ${A} to `),
  'ALL PORTS BUSY': new RegExp(`^NOQUEUE: reject: CONNECT from ${A}: all server ports busy$`),
  'TOO MANY CONNECTIONS': new RegExp(`^NOQUEUE: reject: CONNECT from ${A}: too many connections$`),
  'PROXY FAIL': /^PROXY FAIL from \[/,
  'ALLOWLISTED': new RegExp(`^ALLOWLISTED ${A}$`),
  'DENYLISTED': new RegExp(`^DENYLISTED ${A}$`),
  'PASS OLD': new RegExp(`^PASS OLD ${A}$`),
  'PASS NEW': new RegExp(`^PASS NEW ${A}$`),
  'PREGREET': /^PREGREET \S* after \S* from \[/,
  'PREGREET LIMIT': /^PREGREET LIMIT \S* bytes from \[/,
  'HANGUP': /^HANGUP after \S* from \[/,
  'NOQUEUE': /^NOQUEUE: reject: \S* from \[/,
  'DATA WITHOUT VALID RCPT': new RegExp(`^(DATA|BDAT) without valid RCPT from ${A}$`),
  'COMMAND TIME LIMIT': /^COMMAND TIME LIMIT from \[/,
  'COMMAND COUNT LIMIT': /^COMMAND COUNT LIMIT from \[/,
  'COMMAND LENGTH LIMIT': /^COMMAND LENGTH LIMIT from \[/,
  'COMMAND ERROR LIMIT': /^COMMAND ERROR LIMIT from \[/,
  'TLS FAIL': /^TLS FAIL from \[/,
  'COMMAND PIPELINING': /^COMMAND PIPELINING from \[/,
  'NON-SMTP COMMAND': /^NON-SMTP COMMAND from \[/,
  'BARE NEWLINE': /^BARE NEWLINE from \[/,
  'HANDOFF': /^HANDOFF \[/,
  'HANDOFF FALLBACK': /^HANDOFF FALLBACK for \[/,
  'ROUTE FALLBACK': /^ROUTE FALLBACK for \[/,
  'BACKEND FAIL': /^BACKEND FAIL /,
  'BACKEND OK': /^BACKEND OK /,
  'BACKEND EHLO': /^BACKEND EHLO /,
  'DISCONNECT': new RegExp(`^DISCONNECT ${A}$`),
  'SOCKET ERROR': /^SOCKET ERROR from \[/,
  'CACHE': /^cache /,
  'CACHE ADMIN': /^CACHE ADMIN /,
  'DNSBL': /^DNSBL rank \S* for \[/,
  'DNSBL SITE': /^DNSBL SITE /,
  'ALLOWLIST SPF': /^ALLOWLIST SPF /,
  'DNSBL WARNING': /^DNSBL WARNING /,
  'GREYLIST': /^GREYLIST \[/,
  'STRESS': /^(entering|leaving) STRESS mode with /,
  'STORE FAIL': /^STORE FAIL /,
  'STORE OK': /^STORE OK /,
  'POLICY': new RegExp(`^POLICY \\S* for ${A}`),
  'POLICY WARNING': /^POLICY WARNING /,
  'POLICY BREAKER': /^POLICY BREAKER /,
};

test('msg: every event of the table has a head here, and its own renderer (not the NAME key=value dump)', () => {
  for (const e of EVENTS) {
    const head = HEADS[e.name];
    assert.ok(head !== undefined, `${e.name}: no stable head: give it a renderer in log/postscreen-format.ts and a row here`);
    const probe = formatEvent(e.name, { zz_probe: 'x' });
    assert.ok(!probe.includes('zz_probe'), `${e.name}: rendered by the generic dump: ${probe}`);
  }
});

const value = fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.boolean(), fc.constant(null), fc.constant(undefined),
  fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }), fc.constant('x\r\nFORGED: line'));
const NUMERIC = ['local_port', 'bytes', 'after_ms', 'score', 'count', 'entries', 'generation'];
// Fields that hold one of our words (a phase, an action, a state).
const WORDS = ['phase', 'action', 'state', 'op', 'mode', 'verdict', 'stage', 'by', 'command'];
const FIELDS = ['local', 'sample', 'after', 'reply', 'reason',
  'backend', 'file', 'site', 'signal', 'ok', 'error', 'code', 'listen', 'address', 'by'];

test('msg: whatever the fields hold, the head is the same, on one line, without control characters', () => {
  // The client's address and port are ours (a parsed address, a number): any of them, or none; every other field anything.
  const addr = fc.record({ client: fc.oneof(fc.ipV4(), fc.ipV6()), port: fc.integer({ min: 0, max: 65535 }) }, { requiredKeys: [] });
  const words = fc.dictionary(fc.constantFrom(...WORDS), fc.stringMatching(/^[a-z]{1,8}$/), { maxKeys: 4 });
  const nums = fc.dictionary(fc.constantFrom(...NUMERIC), fc.oneof(fc.integer(), fc.double(), fc.constant(null)), { maxKeys: 4 });
  fc.assert(fc.property(fc.constantFrom(...EVENTS.map((e) => e.name)), addr, fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 10 }), nums, words, (name, a, rest, n, w) => {
    const fields = { ...rest, ...n, ...w, ...a };
    const msg = formatEvent(name, fields);
    assert.match(msg, HEADS[name] as RegExp, `${name} ${JSON.stringify(fields)}`);
    assert.doesNotMatch(msg, /[\x00-\x1f\x7f]/);
  }), { numRuns: 3000 });
});
