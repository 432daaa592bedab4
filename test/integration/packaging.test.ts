/*
 * Packaging, as an administrator installs smtpscreen: `npm pack` gives a tarball with only the
 * built program (dist/src), README, LICENSE, the example configuration and contrib/ (no
 * sources, tests, benchmarks or source maps); `npm install -g` of that tarball, and of a fresh
 * checkout of the git repository (npm runs `prepare`, which installs the build tools and
 * builds), each give a `smtpscreen` command whose --version is the package's and whose
 * check-config reads the shipped example. (`npm install -g git+URL` is broken by npm itself
 * for packages that build in prepare: npm/cli#8440; the README gives the checkout recipe.)
 * No network: the dependencies come from a registry on loopback that serves the packages of
 * this repository's package-lock.json from npm's cache (test/helpers/npm-registry.ts), with a private npm cache and
 * prefix under a temp directory. Needs npm, git and tar (Debian packages npm, git, tar).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/screener.js';
import { findExecutable } from '../helpers/postfix.js';
import { startLocalRegistry, type LocalRegistry } from '../helpers/npm-registry.js';

const root = repoRoot();
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const work = mkdtempSync(join(tmpdir(), 'scr-pack-'));
let registry: LocalRegistry;

/** Runs a command without blocking this process (the registry answers from here); rejects with its output on a non-zero exit. */
function sh(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<{ out: string; err: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, {
      cwd: opts.cwd ?? root, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' },
    }, (err, out, errText) => {
      if (err !== null) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${out}\n${errText}`));
      else resolve({ out, err: errText });
    });
  });
}

/** npm flags that keep it on this machine: the loopback registry, a private cache. */
function npmLocal(): string[] {
  return ['--registry', registry.url, '--cache', join(work, 'npm-cache'), '--no-audit', '--no-fund'];
}

before(async () => {
  for (const [prog, pkg] of [['npm', 'npm'], ['git', 'git'], ['tar', 'tar']] as const) {
    if (findExecutable(prog) === null) assert.fail(`${prog} is not installed: install the Debian package ${pkg} (scripts/setup-test-deps.sh)`);
  }
  registry = await startLocalRegistry(root, join(work, 'registry'));
});
after(async () => {
  await registry?.close();
  // The clone's node_modules (TypeScript among them) is tens of MB. SMTPSCREEN_KEEP_PACK=1 keeps it for a post-mortem.
  if (process.env['SMTPSCREEN_KEEP_PACK'] !== '1') rmSync(work, { recursive: true, force: true });
});

let tarball = '';

test('npm pack: only dist/src, README, LICENSE, the example configuration and contrib/', async () => {
  assert.ok(existsSync(join(root, 'dist', 'src', 'cli.js')), 'dist/src/cli.js is built (npm run build)');
  // --ignore-scripts: prepare would rebuild dist/ under the feet of tests running from it; the git install below runs prepare.
  const { out } = await sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work]);
  const [info] = JSON.parse(out) as Array<{ filename: string; files: Array<{ path: string }> }>;
  assert.ok(info !== undefined);
  tarball = join(work, info.filename);
  const paths = info.files.map((f) => f.path);
  const allowed = /^(package\.json|README\.md|LICENSE|fixtures\/smtpscreen\.example\.yaml|dist\/src\/.+\.js|contrib\/.+)$/;
  assert.deepEqual(paths.filter((p) => !allowed.test(p)), [], 'files outside the allowed set');
  for (const p of ['package.json', 'README.md', 'LICENSE', 'fixtures/smtpscreen.example.yaml', 'dist/src/cli.js']) {
    assert.ok(paths.includes(p), `${p} is in the package`);
  }
  assert.ok(!paths.some((p) => /^(test|bench|src|scripts|dist\/test|dist\/bench|dist\/scripts)\//.test(p)), 'no tests, benchmarks or sources');
  if (existsSync(join(root, 'contrib', 'smtpscreen.service'))) assert.ok(paths.includes('contrib/smtpscreen.service'), 'the unit file');
});

/** `<prefix>/bin/smtpscreen --version` and check-config of the example the package ships. */
async function works(prefix: string): Promise<void> {
  const bin = join(prefix, 'bin', 'smtpscreen');
  const v = await sh(bin, ['--version']);
  assert.equal(v.out.trim(), `smtpscreen ${version}`);
  const example = join(prefix, 'lib', 'node_modules', 'smtpscreen', 'fixtures', 'smtpscreen.example.yaml');
  const c = await sh(bin, ['check-config', '--config', example]);
  assert.match(c.out, /^# smtpscreen effective configuration/);
}

test('npm install -g of the tarball gives a working smtpscreen command', async () => {
  assert.ok(tarball !== '', 'the pack test ran first');
  const prefix = join(work, 'prefix-tgz');
  await sh('npm', ['install', '-g', '--prefix', prefix, ...npmLocal(), tarball]);
  await works(prefix);
  const installed = readdirSync(join(prefix, 'lib', 'node_modules', 'smtpscreen'));
  assert.ok(!installed.includes('test') && !installed.includes('bench') && !installed.includes('src'), `installed: ${installed.join(' ')}`);
});

test('a checkout of the git repository: npm install -g DIR builds it (prepare) and gives a working smtpscreen command', async (t) => {
  const clone = join(work, 'smtpscreen');
  const head = (await sh('git', ['rev-parse', 'HEAD'])).out.trim();
  await sh('git', ['clone', '--quiet', root, clone]);
  await sh('git', ['checkout', '--quiet', head], { cwd: clone });
  assert.ok(!existsSync(join(clone, 'dist')), 'a checkout has no build');
  const prefix = join(work, 'prefix-git');
  const started = Date.now();
  await sh('npm', ['install', '-g', '--prefix', prefix, ...npmLocal(), clone], { timeoutMs: 600_000 });
  t.diagnostic(`install with prepare (dependencies and tsc) took ${Date.now() - started} ms`);
  assert.ok(existsSync(join(clone, 'dist', 'src', 'cli.js')), 'built by prepare');
  await works(prefix);
});
