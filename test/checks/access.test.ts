/*
 * test/checks/access.test.ts - checks/access.ts: list syntax, first-match-wins, dunno, errors;
 * the list file read through util/read-file.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACCESS_FILE, parseAccessList } from '../../src/checks/access.js';
import { readTextFile } from '../../src/util/read-file.js';
import { ScreenError } from '../../src/util/errors.js';

const LIST = [
  '# postscreen_access_list style',
  '',
  '192.168.1.1        permit   # the relay',
  '192.168.1.0/24\tdunno',
  '192.168.0.0/16     reject',
  '\t10.0.0.0/8 PERMIT',
  '2001:db8::/32      Reject',
  '2001:db8:1::/48    permit   # shadowed by the /32 above',
  '   # indented comment',
  '0.0.0.0/0          dunno',
  '127.0.0.1          reject   # shadowed by 0/0 dunno',
].join('\r\n');

test('access list: first match wins, dunno shadows', () => {
  const list = parseAccessList(LIST, 'fixtures/access.cidr');
  assert.equal(list.size, 8);
  assert.equal(list.source, 'fixtures/access.cidr');
  const cases: Array<{ addr: string; action: string | undefined; entry?: string; line?: number }> = [
    { addr: '192.168.1.1', action: 'permit', entry: '192.168.1.1', line: 3 },
    { addr: '::ffff:192.168.1.1', action: 'permit', entry: '192.168.1.1', line: 3 },
    { addr: '192.168.1.2', action: 'dunno', entry: '192.168.1.0/24', line: 4 },
    { addr: '192.168.2.2', action: 'reject', entry: '192.168.0.0/16', line: 5 },
    { addr: '10.20.30.40', action: 'permit', entry: '10.0.0.0/8', line: 6 },
    { addr: '2001:db8:1::25', action: 'reject', entry: '2001:db8::/32', line: 7 },
    { addr: '127.0.0.1', action: 'dunno', entry: '0.0.0.0/0', line: 10 },
    { addr: '2001:db9::1', action: undefined },
    { addr: 'garbage', action: undefined },
  ];
  for (const c of cases) {
    const m = list.match(c.addr);
    assert.equal(m?.action, c.action, c.addr);
    if (c.action !== undefined) {
      assert.equal(m?.entry, c.entry, c.addr);
      assert.equal(m?.line, c.line, c.addr);
    }
  }
});

test('access list: empty text and comment-only text give an empty list', () => {
  for (const text of ['', '\n\n', '# only\n  # comments\n\t\n']) {
    const list = parseAccessList(text);
    assert.equal(list.size, 0);
    assert.equal(list.match('1.2.3.4'), undefined);
  }
});

test('access list errors: SCR_ERR_ACCESS_LIST with file, line and value', () => {
  const cases: Array<{ label: string; text: string; line: number; value: string }> = [
    { label: 'unknown action', text: '1.2.3.4 allow', line: 1, value: 'allow' },
    { label: 'missing action', text: '# x\n1.2.3.4', line: 2, value: '1.2.3.4' },
    { label: 'a third field that is no route=NAME', text: '1.2.3.4 permit now', line: 1, value: 'now' },
    { label: 'a fourth field', text: '1.2.3.4 permit route=x now', line: 1, value: '1.2.3.4 permit route=x now' },
    { label: 'bad cidr', text: '\n\n1.2.3.300/24 reject', line: 3, value: '1.2.3.300/24' },
    { label: 'host bits set', text: '1.2.3.4/24 reject', line: 1, value: '1.2.3.4/24' },
    { label: 'bad prefix', text: '2001:db8::/129 permit', line: 1, value: '2001:db8::/129' },
    { label: 'action glued to comment', text: '1.2.3.4 permit#ok\n1.2.3.5 rejected', line: 2, value: 'rejected' },
  ];
  for (const c of cases) {
    assert.throws(() => parseAccessList(c.text, 'acl.txt'), (err: unknown) => {
      assert.ok(err instanceof ScreenError, c.label);
      assert.equal(err.code, 'SCR_ERR_ACCESS_LIST', c.label);
      assert.equal(err.details['file'], 'acl.txt', c.label);
      assert.equal(err.details['line'], c.line, c.label);
      assert.equal(err.details['value'], c.value, c.label);
      return true;
    }, c.label);
  }
});

test('an access list file is read, then parsed; a missing file is SCR_ERR_ACCESS_LIST naming access.list and the path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smtpscreen-access-'));
  try {
    const path = join(dir, 'access.cidr');
    writeFileSync(path, '10.0.0.0/8 permit\n::1 reject\n');
    const list = parseAccessList(readTextFile(path, ACCESS_FILE), path);
    assert.equal(list.source, path);
    assert.equal(list.match('10.1.1.1')?.action, 'permit');
    assert.equal(list.match('::1')?.action, 'reject');
    const missing = join(dir, 'missing.cidr');
    assert.throws(() => readTextFile(missing, ACCESS_FILE), (err: unknown) => {
      assert.ok(err instanceof ScreenError);
      assert.equal(err.code, 'SCR_ERR_ACCESS_LIST');
      assert.equal(err.message, `${missing}: cannot read access list (ENOENT)`);
      assert.equal(err.details['cause'], 'ENOENT');
      assert.equal(err.details['key'], 'access.list');
      assert.equal(err.details['file'], missing);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('access list errors say where and what in the message; indentation of any width is not a field', () => {
  const msg = (text: string, source?: string): string => {
    try {
      if (source === undefined) parseAccessList(text);
      else parseAccessList(text, source);
    } catch (e) {
      return (e as Error).message;
    }
    return 'no error';
  };
  assert.equal(msg('1.2.3.4', 'acl.txt'), 'acl.txt:1: expected "CIDR ACTION [route=NAME]" (ACTION permit, reject or dunno), got "1.2.3.4"');
  assert.equal(msg('\n1.2.3.4 allow', 'acl.txt'), 'acl.txt:2: unknown action "allow" for "1.2.3.4"; use permit, reject or dunno');
  assert.match(msg('1.2.3.300 permit', 'acl.txt'), /^acl\.txt:1: .*1\.2\.3\.300/);
  assert.match(msg('1.2.3.4'), /^<inline>:1: /, 'no source given: <inline>');
  const l = parseAccessList('  \t 192.0.2.0/24 \t reject  # indented\n');
  assert.equal(l.size, 1);
  assert.equal(l.match('192.0.2.9')?.action, 'reject');
});

test('access list route tags: route=NAME after the action tags the entry (1 to 64 of letters, digits, _ . -); anything else names the field', () => {
  const name64 = 'a'.repeat(64);
  const list = parseAccessList([
    '10.0.0.0/8 permit route=partners',
    `10.1.0.0/16 permit route=${name64}`,
    '192.0.2.0/24 dunno route=Mx_1.b-2',
    '198.51.100.0/24 reject',
  ].join('\n'), 'acl.txt');
  assert.deepEqual({ ...list.match('10.2.3.4') }, { action: 'permit', entry: '10.0.0.0/8', line: 1, route: 'partners' });
  assert.equal(list.match('192.0.2.7')?.route, 'Mx_1.b-2');
  assert.equal(list.match('198.51.100.7')?.route, null, 'no tag: null');
  assert.equal(parseAccessList(`10.1.0.0/16 permit route=${name64}`).match('10.1.2.3')?.route, name64, '64 characters');
  for (const bad of ['route=', `route=${name64}b`, 'route=a/b', 'route=!ab', 'route=ab!', 'xroute=ab', 'Route=ab', 'ab']) {
    assert.throws(() => parseAccessList(`\n10.0.0.0/8 permit ${bad}`, 'acl.txt'), (err: unknown) => {
      assert.ok(err instanceof ScreenError, bad);
      assert.equal(err.message, `acl.txt:2: want route=NAME (1 to 64 letters, digits, "_", "." or "-") after the action, got "${bad}"`);
      assert.deepEqual(err.details, { file: 'acl.txt', line: 2, value: bad });
      return true;
    }, bad);
  }
});
