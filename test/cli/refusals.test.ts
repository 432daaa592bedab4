/*
 * Configuration that would hurt, as the administrator meets it: `check-config` exits 1 and
 * `run` refuses to start (START FAILED logged; exit 2, or 1 for a bad value as for every bad value),
 * each with one message naming the key, the value and the fix. Covered: a DNSBL threshold that
 * refuses everyone, greylisting's min_delay above max_delay, no backend.address, an access list
 * with a bad CIDR or missing (file:line), `explain` with that access list (one line, no stack
 * trace), a certificate or key that is missing, unreadable, not PEM or not a pair, and a snapshot path
 * whose directory does not exist, is not writable (checked as the user nobody) or is a
 * directory. The CLI is spawned as a child process; only temp files, nothing listens.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'scr-refuse-'));
chmodSync(dir, 0o755); // the user nobody reads the config files below
after(() => rmSync(dir, { recursive: true, force: true }));

interface Result { code: number | null; out: string; err: string }

function cliRun(args: string[], opts: { uid?: number; gid?: number } = {}): Result {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 20_000, ...opts });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** A config file: a loopback listener on port 0, the sink backend unless `backend` is given, plus `extra` YAML. */
function conf(name: string, extra: string, backend = 'backend: { address: "sink:0" }\n'): string {
  return file(`${name}.yaml`, `listen: ["127.0.0.1:0"]\n${backend}${extra}`);
}

/** No stack trace reaches the administrator. */
function noStack(r: Result): void {
  assert.doesNotMatch(r.err, /\n\s+at /, `stack trace in stderr: ${r.err}`);
}

function checkRefuses(p: string, re: RegExp): Result {
  const r = cliRun(['check-config', '--config', p]);
  assert.equal(r.code, 1, `check-config exit; stderr: ${r.err}`);
  assert.match(r.err, re);
  noStack(r);
  return r;
}

function runRefuses(p: string, re: RegExp, code = 2): Result {
  const r = cliRun(['run', '--config', p]);
  assert.equal(r.code, code, `run exit; stderr: ${r.err}`);
  assert.match(r.err, re);
  noStack(r);
  {
    const failed = r.out.split('\n').filter((l) => l.includes('"event":"START FAILED"'));
    assert.equal(failed.length, 1, `one START FAILED event in ${r.out}`);
    assert.match(String((JSON.parse(failed[0] as string) as Record<string, unknown>)['message']), re);
    assert.doesNotMatch(r.out, /"event":"STARTED"/);
  }
  return r;
}

test('dnsbl.threshold 0: check-config and run refuse it, naming the key, the value and the fix', () => {
  const p = conf('threshold', 'dnsbl: { sites: ["bl.test"], threshold: 0 }\nresolver: { servers: ["127.0.0.1:53"] }\n');
  const re = /dnsbl\.threshold: 0 would refuse every client.*set 1 or more/;
  checkRefuses(p, re);
  runRefuses(p, re, 1);
  // The same value from the command line is named by its flag.
  const r = cliRun(['check-config', '--config', conf('threshold-ok', ''), '--dnsbl-threshold', '0']);
  assert.equal(r.code, 1);
  assert.match(r.err, /--dnsbl-threshold: 0 would refuse every client/);
});

test('greylist.min_delay above max_delay: refused, naming both keys and values', () => {
  const p = conf('greylist', 'greylist: { enable: true, min_delay: 3d, max_delay: 2d }\n');
  checkRefuses(p, /greylist\.min_delay: 3d is above greylist\.max_delay \(2d\).*set greylist\.min_delay below greylist\.max_delay/);
});

test('no backend.address: check-config and run refuse; --backend or "sink:0" satisfy it', () => {
  const p = conf('no-backend', 'pregreet: { wait: 1s }\n', '');
  const re = /backend\.address: not set: every client that passes would get 421.*"127\.0\.0\.1:10025".*"sink:0"/;
  checkRefuses(p, re);
  runRefuses(p, re);
  const withFlag = cliRun(['check-config', '--config', p, '--backend', '127.0.0.1:10025']);
  assert.equal(withFlag.code, 0, withFlag.err);
  const sink = cliRun(['check-config', '--config', conf('sink-backend', '')]);
  assert.equal(sink.code, 0, sink.err);
  // The example configuration names one.
  const example = cliRun(['check-config', '--config', fileURLToPath(new URL('../../../fixtures/smtpscreen.example.yaml', import.meta.url))]);
  assert.equal(example.code, 0, example.err);
});

test('an access list with a bad CIDR: check-config names file:line; run refuses; explain prints one line', () => {
  const acl = file('acl', '127.0.0.0/8 permit\n# a comment\n10.0.0.300/8 reject\n');
  const p = conf('acl', `access: { list: ${JSON.stringify(acl)} }\n`);
  const re = new RegExp(`access\\.list: ${acl.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3: `);
  checkRefuses(p, re);
  runRefuses(p, re);
  const r = cliRun(['explain', '127.0.0.9', '--config', p]);
  assert.equal(r.code, 1, r.err);
  assert.equal(r.err.trim().split('\n').length, 1, `one line: ${r.err}`);
  assert.match(r.err, new RegExp(`^smtpscreen: ${acl.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3: `));
  noStack(r);
});

test('an access list that does not exist: refused naming the key and the path', () => {
  const p = conf('acl-missing', `access: { list: ${JSON.stringify(join(dir, 'no-such-acl'))} }\n`);
  checkRefuses(p, /access\.list: .*no-such-acl: cannot read access list \(ENOENT\)/);
});

test('certificates: missing, not PEM, or cert and key that are not a pair are refused at check time', () => {
  const mk = (name: string): { cert: string; key: string } => {
    const cert = join(dir, `${name}.crt`);
    const key = join(dir, `${name}.key`);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=screen.test', '-days', '1',
      '-keyout', key, '-out', cert], { stdio: 'ignore' });
    return { cert, key };
  };
  const a = mk('a');
  const b = mk('b');
  const tls = (cert: string, key: string): string => `tls: { cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)} }\n`;
  const good = cliRun(['check-config', '--config', conf('tls-good', tls(a.cert, a.key))]);
  assert.equal(good.code, 0, good.err);
  checkRefuses(conf('tls-missing', tls(join(dir, 'none.crt'), a.key)), /tls\.cert: cannot read .*none\.crt \(ENOENT\)/);
  checkRefuses(conf('tls-not-pem', tls(file('junk.crt', 'not a certificate\n'), a.key)), /tls\.cert: .*junk\.crt is not PEM/);
  checkRefuses(conf('tls-pair', tls(a.cert, b.key)), /tls\.key: .*b\.key: cannot use tls\.cert and tls\.key/);
  runRefuses(conf('tls-pair-run', tls(a.cert, b.key)), /tls\.key: .*b\.key: cannot use tls\.cert and tls\.key/);
});

test('a snapshot in a directory that does not exist: refused at check time and at start, not at the first save', () => {
  const snap = join(dir, 'no-such-dir', 'verdicts');
  const p = conf('snap-missing', `cache: { snapshot: ${JSON.stringify(snap)} }\n`);
  const re = /cache\.snapshot: .*no-such-dir\/verdicts: the directory .*no-such-dir does not exist; create the directory/;
  checkRefuses(p, re);
  runRefuses(p, re);
});

test('a snapshot path that is a directory: refused', () => {
  const d = join(dir, 'snapdir');
  mkdirSync(d, { recursive: true });
  checkRefuses(conf('snap-isdir', `cache: { snapshot: ${JSON.stringify(d)} }\n`), /cache\.snapshot: .*snapdir is not a regular file/);
});

test('a snapshot directory the user cannot write: refused (checked as the user nobody)', (t) => {
  if (process.getuid?.() !== 0) {
    assert.fail('this test runs the CLI as the user nobody and needs root to do so (run the tests as root)');
  }
  const d = join(dir, 'root-only');
  mkdirSync(d, { recursive: true });
  chmodSync(d, 0o755);
  const p = conf('snap-unwritable', `cache: { snapshot: ${JSON.stringify(join(d, 'verdicts'))} }\n`);
  const r = cliRun(['check-config', '--config', p], { uid: 65534, gid: 65534 });
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /cache\.snapshot: .*root-only\/verdicts: the directory .*root-only is not writable \(EACCES\)/);
  noStack(r);
  // And the same directory is accepted for root, who can write it.
  const ok = cliRun(['check-config', '--config', p]);
  assert.equal(ok.code, 0, ok.err);
  t.diagnostic('nobody: refused; root: accepted');
});

test('a key file the user cannot read: refused naming tls.key (checked as the user nobody)', () => {
  if (process.getuid?.() !== 0) {
    assert.fail('this test runs the CLI as the user nobody and needs root to do so (run the tests as root)');
  }
  const cert = join(dir, 'own.crt');
  const key = join(dir, 'own.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=screen.test', '-days', '1',
    '-keyout', key, '-out', cert], { stdio: 'ignore' });
  chmodSync(cert, 0o644);
  chmodSync(key, 0o600); // root's
  const p = conf('tls-unreadable', `tls: { cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)} }\n`);
  const r = cliRun(['check-config', '--config', p], { uid: 65534, gid: 65534 });
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /tls\.key: cannot read .*own\.key \(EACCES\)/);
  noStack(r);
});

test('every problem is reported at once', () => {
  const p = conf('many', `cache: { snapshot: ${JSON.stringify(join(dir, 'nope', 'v'))} }\naccess: { list: ${JSON.stringify(join(dir, 'nope-acl'))} }\n`, '');
  const r = checkRefuses(p, /3 configuration errors:/);
  for (const k of ['backend.address', 'access.list', 'cache.snapshot']) assert.match(r.err, new RegExp(`\n  ${k.replace('.', '\\.')}: `));
});

test('check-config: a log.file in a directory that does not exist, or that is a directory, is refused naming log.file and the fix', () => {
  const missing = join(dir, 'no-such-dir', 'smtpscreen.log');
  const r = checkRefuses(conf('logfile-missing', `log: { destination: file, file: "${missing}" }\n`),
    new RegExp(`log\\.file: ${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: the directory .* does not exist; create the directory`));
  noStack(r);
  const sub = join(dir, 'a-directory');
  mkdirSync(sub, { recursive: true });
  checkRefuses(conf('logfile-dir', `log: { destination: file, file: "${sub}" }\n`), /log\.file: .*a-directory is not a regular file/);
  const ok = cliRun(['check-config', '--config', conf('logfile-ok', `log: { destination: file, file: "${join(dir, 'ok.log')}" }\n`)]);
  assert.equal(ok.code, 0, ok.err);
});
