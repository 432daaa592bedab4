/*
 * The smtpscreen command as a postmaster meets it: help, check-config, flag
 * errors, start-up failures, and the demo.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runDemo } from '../../src/demo.js';
import { defaultConfig } from '../../src/config/raw.js';

const cli = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'scr-cli-'));

function run(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

test('--help lists every command and the run flags', () => {
  const r = run('--help');
  assert.equal(r.code, 0);
  for (const s of ['run', 'check-config', 'demo', '--listen', '--backend', '--handoff', '--access-list', '--greet-wait', '--greet-action', '--log-format']) {
    assert.ok(r.out.includes(s), `help mentions ${s}`);
  }
});

test('check-config prints the effective configuration with flag overrides applied', () => {
  const r = run('check-config', '--config', 'fixtures/smtpscreen.example.yaml', '--greet-wait', '2s', '--listen', '[::1]:2526');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /wait: 2s/);
  assert.match(r.out, /\[::1\]:2526/);
});

const bad: Array<{ label: string; yaml?: string; args?: string[]; names: RegExp }> = [
  { label: 'unknown key', yaml: 'pregreet: { wiat: 6s }\n', names: /pregreet\.wiat/ },
  { label: 'bad address', yaml: 'backend: { address: "300.1.1.1:25" }\n', names: /backend\.address.*300\.1\.1\.1/ },
  { label: 'bad CIDR', yaml: 'listen: [{ address: "127.0.0.1:25", proxy_protocol: v1, trusted_proxies: ["10.0.0.0/33"] }]\n', names: /trusted_proxies\[0\].*10\.0\.0\.0\/33/ },
  { label: 'bad duration', yaml: 'pregreet: { wait: 6x }\n', names: /pregreet\.wait.*6x/ },
  { label: 'bad flag value', yaml: '{}\n', args: ['--greet-action', 'bounce'], names: /--greet-action.*bounce/ },
  { label: 'bad DNSBL site in the file', yaml: 'dnsbl: { sites: ["zen.spamhaus.org=127.0.0.[2..]*3"] }\n', names: /dnsbl\.sites\[0\].*zen\.spamhaus\.org=127\.0\.0\.\[2\.\.\]\*3/ },
  { label: 'bad --dnsbl site', yaml: '{}\n', args: ['--dnsbl', 'bl.test*two'], names: /--dnsbl.*bl\.test\*two.*weight/ },
  { label: 'bad --dnsbl-threshold', yaml: '{}\n', args: ['--dnsbl-threshold', 'high'], names: /--dnsbl-threshold.*high/ },
  { label: 'bad --resolver', yaml: '{}\n', args: ['--resolver', 'dns.example:53'], names: /--resolver.*dns\.example:53/ },
];
for (const b of bad) {
  test(`check-config: ${b.label} exits 1 naming the key and the value`, () => {
    const p = file(`${b.label.replace(/ /g, '-')}.yaml`, b.yaml ?? '{}\n');
    const r = run('check-config', '--config', p, ...(b.args ?? []));
    assert.equal(r.code, 1);
    assert.match(r.err, b.names);
  });
}

test('check-config: DNSBL flags override the file', () => {
  const r = run('check-config', '--config', 'fixtures/smtpscreen.example.yaml', '--dnsbl', 'bl.test*3', '--dnsbl', 'wl.test*-2',
    '--dnsbl-threshold', '3', '--dnsbl-action', 'drop', '--resolver', '127.0.0.1:5353');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /sites:\n\s+- bl\.test\*3\n\s+- wl\.test\*-2/);
  assert.match(r.out, /threshold: 3/);
  assert.match(r.out, /action: drop/);
  assert.match(r.out, /- 127\.0\.0\.1:5353/);
});

test('run: an unknown flag is a usage error (exit 1)', () => {
  const r = run('run', '--greet-wiat', '2s');
  assert.equal(r.code, 1);
  assert.match(r.err, /--greet-wiat/);
});

test('run: a port in use is a start-up failure (exit 2) with START FAILED logged', async () => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  try {
    const r = run('run', '--listen', `127.0.0.1:${port}`, '--backend', 'sink:0');
    assert.equal(r.code, 2);
    assert.match(r.out, /"event":"START FAILED".*EADDRINUSE/);
  } finally {
    srv.close();
  }
});

test('run: a bad access list file fails start-up naming file and line', () => {
  const p = file('acl', '127.0.0.0/8 permit\n10.0.0.1/8 reject\n');
  const r = run('run', '--listen', '127.0.0.1:0', '--access-list', p);
  assert.equal(r.code, 2);
  assert.match(r.err, /acl:2/);
});

test('demo: zombies are refused, well-behaved clients reach the backend, the second round is PASS OLD', async () => {
  const lines: string[] = [];
  const counts = await runDemo(defaultConfig(), { zombies: 20, hangups: 5, clients: 10, greetWaitMs: 300, out: (l) => lines.push(l) });
  assert.equal(counts['PREGREET'], 20);
  assert.equal(counts['NOQUEUE'], 20);
  assert.equal(counts['HANGUP'], 5);
  assert.equal(counts['PASS NEW'], 10);
  assert.equal(counts['PASS OLD'], 10);
  assert.equal(counts['HANDOFF'], 20);
  assert.equal(counts['CONNECT'], 45);
  assert.equal(counts['DISCONNECT'], 45);
  assert.ok(lines.some((l) => /well-behaved deliveries: 20 of 20/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /zombies reaching the backend: 0/.test(l)), lines.join('\n'));
});
