/*
 * Integration: the README's recipe "In front of Postfix on port 25", followed
 * literally against a private Postfix instance. The recipe's own lines are
 * read from README.md: its postconf commands and `postfix reload` run against
 * the instance (`-c DIR/etc`), its YAML and access list are the screener's
 * configuration. Only what cannot be used on a test machine is replaced:
 * port 25 by a free loopback port, 10025 by another, /etc and /var/lib paths
 * by temp files, the user `smtpscreen` by `nobody` (the test creates no
 * system user). The screener starts as root and switches to the user, as in
 * the recipe's step without systemd (the unit itself: test/cli/unit-file.test.ts).
 * Checked: Postfix's log names the client address swaks used (step 5), and
 * a reload after an access list change applies it (step 6).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { findExecutable, startPostfix, type PostfixInstance } from '../helpers/postfix.js';
import { portOf, repoRoot, startScreener } from '../helpers/screener.js';
import { runSwaks } from '../helpers/swaks.js';
import { freePort } from '../helpers/ports.js';

let pf: PostfixInstance;
const tmp = fs.mkdtempSync('/tmp/scr-recipe-');
fs.chmodSync(tmp, 0o755);

before(async () => {
  pf = await startPostfix();
});
after(async () => {
  await pf?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The recipe's fenced blocks, in order: { lang, text, before (the prose line just above) }. */
function recipeBlocks(): Array<{ lang: string; text: string; before: string }> {
  const readme = fs.readFileSync(path.join(repoRoot(), 'README.md'), 'utf8');
  const start = readme.indexOf('\n### In front of Postfix on port 25\n');
  assert.ok(start >= 0, 'README has the recipe');
  const end = readme.indexOf('\n## ', start + 1);
  const lines = readme.slice(start, end < 0 ? undefined : end).split('\n');
  const out: Array<{ lang: string; text: string; before: string }> = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*```(\w*)\s*$/.exec(lines[i] as string);
    if (m === null) continue;
    const indent = (lines[i] as string).indexOf('`');
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j] as string); j++) body.push((lines[j] as string).slice(indent));
    let k = i - 1;
    while (k >= 0 && (lines[k] as string).trim() === '') k--;
    out.push({ lang: m[1] ?? '', text: body.join('\n') + '\n', before: k >= 0 ? (lines[k] as string) : '' });
    i = j;
  }
  return out;
}

/** Split a shell command line: words, single-quoted strings (all the recipe uses); a trailing comment dropped. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line)) !== null) {
    if (m[2]?.startsWith('#') === true) break;
    out.push(m[1] ?? (m[2] as string));
  }
  return out;
}

async function accepting(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing accepts on 127.0.0.1:${port} ${ms} ms after postfix reload; mail log:\n${pf.maillog().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('README recipe "In front of Postfix on port 25": Postfix logs the real client address; a reload applies an access list change', async (t) => {
  const blocks = recipeBlocks();
  const postconf = findExecutable('postconf');
  const postfix = findExecutable('postfix');
  if (postconf === null || postfix === null) throw new Error('postfix is not installed: run scripts/setup-test-deps.sh (Debian package "postfix")');
  const handoffPort = await freePort();

  // Step 2: the Postfix commands, as written, against the private instance.
  const pfBlock = blocks.find((b) => b.lang === 'sh' && b.text.includes('postconf -Me'));
  assert.ok(pfBlock !== undefined, 'the recipe has the postconf commands');
  const cmds = pfBlock.text.split('\n').filter((l) => l.trim() !== '');
  assert.deepEqual(cmds.map((l) => words(l)[0]), ['postconf', 'postconf', 'postfix']);
  for (const line of cmds) {
    const w = words(line.replaceAll('10025', String(handoffPort)));
    const bin = w[0] === 'postconf' ? postconf : postfix;
    execFileSync(bin, ['-c', pf.configDir, ...w.slice(1)], { stdio: 'pipe', timeout: 60_000 });
  }
  await accepting(handoffPort, 10_000);

  // Step 3: the YAML and the access list.
  const yamlBlock = blocks.find((b) => b.lang === 'yaml');
  const accessBlock = blocks.find((b) => b.lang === 'text' && b.before.includes('/etc/smtpscreen/access'));
  assert.ok(yamlBlock !== undefined && accessBlock !== undefined, 'the recipe has the YAML and the access list');
  const cfg = parseYaml(yamlBlock.text) as Record<string, unknown>;
  assert.deepEqual(cfg['listen'], ['0.0.0.0:25']);
  assert.deepEqual(cfg['backend'], { address: '127.0.0.1:10025', handoff: 'xclient' });
  assert.equal(cfg['user'], 'smtpscreen');
  const access = path.join(tmp, 'access');
  fs.writeFileSync(access, accessBlock.text);
  const state = path.join(tmp, 'state');
  fs.mkdirSync(state);
  const nobody = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'))?.split(':');
  assert.ok(nobody !== undefined, 'user nobody exists');
  fs.chownSync(state, Number(nobody[2]), Number(nobody[3]));
  const mine = {
    ...cfg,
    listen: ['127.0.0.1:0'],
    backend: { ...(cfg['backend'] as object), address: `127.0.0.1:${handoffPort}` },
    access: { list: access },
    cache: { snapshot: path.join(state, 'verdicts') },
    user: 'nobody',
  };
  assert.deepEqual(Object.keys(mine).sort(), Object.keys(cfg).sort(), 'nothing but substitutions');
  const s = await startScreener(mine);
  try {
    assert.equal(s.eventsNamed('STARTED')[0]?.['user'], 'nobody');
    // Step 5: a client the access list does not know: screened (greet wait), then handed to Postfix.
    const client = '127.0.0.93';
    const r = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: client, to: 'postmaster@example.test', timeoutS: 30 });
    assert.equal(r.code, 0, r.transcript);
    await s.waitForEvent((e) => e['event'] === 'PASS NEW' && e['client'] === client);
    await s.waitForEvent((e) => e['event'] === 'HANDOFF' && e['client'] === client);
    const m = await pf.waitForLog(/postfix\/screened\/smtpd\[\d+\]: [0-9A-F]+: client=unknown\[127\.0\.0\.93\]/);
    t.diagnostic(m[0]);

    // Step 6: change the access list, reload (what ExecReload sends), look for RELOAD ok.
    fs.chmodSync(path.dirname(s.configFile), 0o755); // read again as nobody
    fs.chmodSync(s.configFile, 0o644);
    fs.appendFileSync(access, '127.0.0.94/32     permit\n');
    process.kill(s.pid, 'SIGHUP');
    const rl = await s.waitForEvent((e) => e['event'] === 'RELOAD');
    assert.deepEqual([rl['ok'], rl['access_entries'], rl['changed']], [true, 2, []], JSON.stringify(rl));
    const r2 = await runSwaks({ server: `127.0.0.1:${portOf(s)}`, localAddress: '127.0.0.94', to: 'postmaster@example.test', timeoutS: 30 });
    assert.equal(r2.code, 0, r2.transcript);
    await s.waitForEvent((e) => e['event'] === 'ALLOWLISTED' && e['client'] === '127.0.0.94');
    await pf.waitForLog(/postfix\/screened\/smtpd\[\d+\]: [0-9A-F]+: client=unknown\[127\.0\.0\.94\]/);
  } finally {
    assert.equal(await s.stop(), 0, s.stderr());
  }
  // Written by nobody after the switch.
  assert.equal(fs.statSync(path.join(state, 'verdicts')).uid, Number(nobody[2]));
  assert.equal(toYaml(mine).includes('allow_root'), false, 'runs as in the recipe: no allow_root');
});
