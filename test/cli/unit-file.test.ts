/*
 * contrib/smtpscreen.service as systemd would read it. systemd does not run on
 * these machines, so the unit is checked rather than started: the keys the
 * README promises (Type, ExecReload sending HUP, User= with the ambient
 * capability for port 25, the hardening, the state directory writable under
 * ProtectSystem=strict), ExecStart's command line parsed by the CLI's own
 * parser, and `systemd-analyze verify` (Debian package "systemd") on a copy
 * whose ExecStart names the built CLI (the bare "smtpscreen" is not installed here).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from '../../src/cli/args.js';
import { findExecutable } from '../helpers/postfix.js';
import { repoRoot } from '../helpers/screener.js';

const UNIT = path.join(repoRoot(), 'contrib', 'smtpscreen.service');

/** section -> key -> values (a key may repeat), comments and blank lines skipped. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  let sec: Map<string, string[]> | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^\[(.+)\]$/.exec(line);
    if (m !== null) {
      sec = new Map();
      out.set(m[1] as string, sec);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(sec !== null && eq > 0, `not a key=value line in a section: ${line}`);
    const k = line.slice(0, eq).trim();
    sec.set(k, [...(sec.get(k) ?? []), line.slice(eq + 1).trim()]);
  }
  return out;
}

const unit = parseUnit(fs.readFileSync(UNIT, 'utf8'));
const svc = unit.get('Service') ?? new Map<string, string[]>();
const one = (k: string): string | undefined => svc.get(k)?.at(-1);

test('unit: Type, reload by HUP, unprivileged user with only CAP_NET_BIND_SERVICE, hardening, writable state directory', () => {
  assert.deepEqual([...unit.keys()], ['Unit', 'Service', 'Install']);
  assert.equal(one('Type'), 'exec');
  assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.equal(one('KillSignal'), 'SIGTERM');
  assert.equal(one('User'), 'smtpscreen');
  assert.equal(one('AmbientCapabilities'), 'CAP_NET_BIND_SERVICE');
  assert.equal(one('CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE');
  for (const [k, v] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['PrivateTmp', 'yes'], ['ProtectHome', 'yes']]) {
    assert.equal(one(k as string), v, k);
  }
  assert.ok(Number(one('LimitNOFILE')) >= 40_000, 'two descriptors for each of limits.max_connections (19,000) clients');
  assert.equal(one('StateDirectory'), 'smtpscreen');
  assert.equal(one('ReadWritePaths'), '/var/lib/smtpscreen');
  // Stopping drains for drain_timeout (30 s by default) before the snapshot is saved: systemd must wait longer.
  assert.ok(Number.parseInt(one('TimeoutStopSec') ?? '0', 10) > 30);
  assert.equal(one('RestartPreventExitStatus'), '1', 'a bad configuration is not restarted in a loop');
  assert.equal(unit.get('Install')?.get('WantedBy')?.[0], 'multi-user.target');
});

test('unit: ExecStart is a command line the CLI accepts: run --config /etc/smtpscreen/smtpscreen.yaml', () => {
  const argv = (one('ExecStart') ?? '').split(/\s+/);
  assert.equal(argv[0], 'smtpscreen');
  const a = parseArgs(argv.slice(1));
  assert.equal(a.command, 'run');
  assert.equal(a.config, '/etc/smtpscreen/smtpscreen.yaml');
});

test('unit: systemd-analyze verify accepts it (ExecStart pointed at the built CLI)', () => {
  const analyze = findExecutable('systemd-analyze');
  if (analyze === null) throw new Error('systemd-analyze is not installed: run scripts/setup-test-deps.sh (Debian package "systemd")');
  const dir = fs.mkdtempSync('/tmp/scr-unit-');
  try {
    const wrapper = path.join(dir, 'smtpscreen');
    fs.writeFileSync(wrapper, `#!/bin/sh\nexec ${process.execPath} ${path.join(repoRoot(), 'dist', 'src', 'cli.js')} "$@"\n`, { mode: 0o755 });
    const text = fs.readFileSync(UNIT, 'utf8').replace(/^ExecStart=smtpscreen /m, `ExecStart=${wrapper} `);
    assert.notEqual(text, fs.readFileSync(UNIT, 'utf8'));
    const copy = path.join(dir, 'smtpscreen.service');
    fs.writeFileSync(copy, text);
    const r = spawnSync(analyze, ['verify', copy], { encoding: 'utf8', timeout: 60_000, cwd: dir });
    assert.equal(r.status, 0, `systemd-analyze verify: ${r.stdout}${r.stderr}`);
    assert.equal(`${r.stdout}${r.stderr}`.includes('smtpscreen.service'), false, `warnings: ${r.stdout}${r.stderr}`);
    // The wrapper is the CLI: it answers like the installed command would.
    const v = spawnSync(wrapper, ['--version'], { encoding: 'utf8', timeout: 20_000 });
    assert.match(v.stdout, /^smtpscreen \d+\.\d+\.\d+/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
