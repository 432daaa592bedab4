import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, helpText, FLAGS } from '../../src/cli/args.js';
import { ScreenError } from '../../src/util/errors.js';

test('run with every override, both --flag value and --flag=value', () => {
  const a = parseArgs([
    'run', '--config', 'x.yaml', '--listen', '127.0.0.1:25', '--listen=[::1]:25', '--backend=127.0.0.1:10025',
    '--handoff', 'proxy-v2', '--access-list', 'acl.cidr', '--greet-wait=2s', '--greet-action', 'drop',
    '--log-format', 'postscreen',
  ]);
  assert.deepEqual(a, {
    command: 'run',
    config: 'x.yaml',
    overrides: {
      listen: ['127.0.0.1:25', '[::1]:25'], backend: '127.0.0.1:10025', handoff: 'proxy-v2',
      accessList: 'acl.cidr', greetWait: '2s', greetAction: 'drop', logFormat: 'postscreen',
    },
    extra: {},
  });
});

const CASES: Array<{ label: string; argv: string[]; command: string; config?: string; extra?: Record<string, unknown> }> = [
  { label: 'no arguments: help', argv: [], command: 'help' },
  { label: '--help', argv: ['--help'], command: 'help' },
  { label: '-h after a command', argv: ['run', '-h'], command: 'help' },
  { label: 'help command', argv: ['help'], command: 'help' },
  { label: '--version', argv: ['--version'], command: 'version' },
  { label: 'flags without a command mean run', argv: ['--config', 'a.yaml'], command: 'run', config: 'a.yaml' },
  { label: 'demo', argv: ['demo'], command: 'demo' },
  { label: 'check-config', argv: ['check-config', '--config=a.yaml'], command: 'check-config', config: 'a.yaml' },
  { label: 'check-config --print-config', argv: ['check-config', '--config', 'a.yaml', '--print-config'],
    command: 'check-config', config: 'a.yaml', extra: { 'print-config': true } },
];

for (const c of CASES) {
  test(`parseArgs: ${c.label}`, () => {
    const a = parseArgs(c.argv);
    assert.equal(a.command, c.command);
    assert.equal(a.config, c.config);
    assert.deepEqual(a.extra, c.extra ?? {});
  });
}

const USAGE: Array<{ label: string; argv: string[]; flag?: string }> = [
  { label: 'unknown flag', argv: ['run', '--bogus'], flag: '--bogus' },
  { label: 'unknown flag with value', argv: ['run', '--bogus=1'], flag: '--bogus' },
  { label: 'unknown short flag', argv: ['-x'], flag: '-x' },
  { label: 'unknown command', argv: ['frobnicate'] },
  { label: 'two commands', argv: ['run', 'demo'] },
  { label: 'missing value at end', argv: ['run', '--backend'], flag: '--backend' },
  { label: 'missing value before a flag', argv: ['run', '--backend', '--listen', '1.2.3.4:25'], flag: '--backend' },
  { label: 'empty value', argv: ['run', '--greet-wait='], flag: '--greet-wait' },
  { label: 'value on a switch', argv: ['check-config', '--config', 'a', '--print-config=yes'], flag: '--print-config' },
  { label: 'flag given twice', argv: ['run', '--backend', 'a', '--backend', 'b'], flag: '--backend' },
  { label: 'switch for another command', argv: ['run', '--print-config'], flag: '--print-config' },
  { label: 'check-config without --config', argv: ['check-config'] },
  { label: 'bare --', argv: ['run', '--'] },
];

for (const c of USAGE) {
  test(`parseArgs usage error: ${c.label}`, () => {
    assert.throws(() => parseArgs(c.argv), (e: unknown) => {
      assert.ok(e instanceof ScreenError);
      assert.equal(e.code, 'SCR_ERR_USAGE');
      if (c.flag !== undefined) {
        assert.equal(e.details['flag'], c.flag);
        assert.ok(e.message.includes(c.flag), e.message);
      }
      return true;
    });
  });
}

test('helpText lists every command and flag', () => {
  const h = helpText();
  for (const c of ['run', 'check-config', 'demo', 'help', 'version']) assert.ok(h.includes(c), c);
  for (const f of FLAGS) assert.ok(h.includes(`--${f.name}`), f.name);
});
