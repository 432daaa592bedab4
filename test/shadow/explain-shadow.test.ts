/*
 * explain under shadow mode: the same verdict function, so it says what the
 * screener would log (would reject) and that the client is handed over.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { validateConfig } from '../../src/config/validate.js';
import { explain } from '../../src/explain.js';

test('explain: a denylisted client under mode shadow and under enforce', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smtpscreen-explain-shadow-'));
  try {
    const access = path.join(dir, 'access');
    fs.writeFileSync(access, '192.0.2.0/24 reject\n');
    const say = async (mode: string): Promise<string> => {
      const lines: string[] = [];
      const code = await explain(validateConfig({ hostname: 'screen.test', mode, access: { list: access, action: 'enforce' } }), '192.0.2.9', (l) => lines.push(l));
      assert.equal(code, 0);
      return lines.join('\n');
    };
    const enforce = await say('enforce');
    assert.match(enforce, /^verdict: DENYLISTED, action enforce: 550/m);
    const shadow = await say('shadow');
    assert.match(shadow, /^access list: shadow: would reject; the tests go on/m);
    assert.match(shadow, /^verdict: shadow mode: .*handed to the backend as if it had passed/m);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
