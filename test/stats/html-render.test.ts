/*
 * The HTML report in a real browser: headless Chromium (Debian package
 * "chromium") renders `smtpscreen stats --html` of the JSON fixture; every
 * number in the rendered DOM (each carries data-k, a JSON pointer into the
 * summary) equals the one `--json` prints, the charts are there, and a
 * screenshot of it is a PNG of the window's size. The report fetches nothing
 * (its CSP forbids it) and runs no script.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { findExecutable } from '../helpers/postfix.js';
import { repoRoot } from '../helpers/screener.js';
import { get, statsCli } from './run.js';

const run = promisify(execFile);
const DAY = path.join(repoRoot(), 'fixtures', 'stats', 'day.ndjson');

function chromium(): string {
  const bin = findExecutable('chromium');
  if (bin === null) throw new Error('chromium is not installed: run scripts/setup-test-deps.sh (Debian package "chromium")');
  return bin;
}

/** Headless Chromium with its own profile directory (tests may run side by side). */
async function headless(args: string[]): Promise<string> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'stats-chromium-'));
  try {
    const { stdout } = await run(chromium(), ['--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${profile}`, ...args],
      { maxBuffer: 1 << 24, timeout: 120_000 });
    return stdout;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

test('the report renders in Chromium and its numbers are --json\'s', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stats-html-'));
  const html = path.join(dir, 'report.html');
  const r = await statsCli(['--json', '--html', html, DAY]);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as unknown;
  const source = readFileSync(html, 'utf8');
  assert.doesNotMatch(source, /<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'no script, nothing fetched');

  const dom = await headless(['--dump-dom', `file://${html}`]);
  const nums = [...dom.matchAll(/<span data-k="([^"]+)">([^<]*)<\/span>/g)];
  assert.ok(nums.length > 250, `numbers found in the rendered page: ${nums.length}`);
  for (const m of nums) {
    const pointer = (m[1] as string).replace(/&#(\d+);/g, (_, c: string) => String.fromCharCode(Number(c))).replace(/&amp;/g, '&');
    const want = get(summary, pointer);
    assert.equal(typeof want, 'number', `${pointer} is a number in --json`);
    assert.equal(Number((m[2] as string).replace(/,/g, '')), want, pointer);
  }
  for (const p of ['/connections/total', '/verdicts/pass_new', '/verdicts/rejected', '/greylist/never_retried', '/would/dnsbl/reject',
    '/hours/9/deferred', '/dnsbl/site_hits/zen.example', '/greeting_delay_ms/count']) {
    assert.ok(nums.some((m) => m[1] === p), `the page shows ${p}`);
  }
  assert.equal((dom.match(/<svg /g) ?? []).length, 5, 'five charts: per hour, reasons, DNSBL hits, DNSBL lookup time, greeting delay');
  assert.match(dom, /<rect [^>]*fill="#c62828"><title>08 rejected: 1<\/title>/, 'the 08:00 bar has its rejected part');

  const png = path.join(dir, 'report.png');
  await headless([`--screenshot=${png}`, '--window-size=1200,900', `file://${html}`]);
  const img = readFileSync(png);
  assert.deepEqual([...img.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');
  assert.deepEqual([img.readUInt32BE(16), img.readUInt32BE(20)], [1200, 900], 'the window size');
  assert.ok(img.length > 20_000, `a page was drawn (${img.length} bytes)`);
});
