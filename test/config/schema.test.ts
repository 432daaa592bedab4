import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { SCHEMA } from '../../src/config/schema.js';
import { configToRaw, defaultConfig, defaultText } from '../../src/config/raw.js';
import { validateConfig } from '../../src/config/validate.js';
import { hostPortOf } from '../../src/config/host-port.js';
import { loadConfig, applyOverrides, formatConfig, parseConfigText } from '../../src/config/load.js';
import { configError } from '../helpers/config-error.js';

const EXAMPLE = fileURLToPath(new URL('../../../fixtures/smtpscreen.example.yaml', import.meta.url));

test('defaults: empty, null and {} give the documented defaults', () => {
  for (const raw of [undefined, null, {}]) {
    const c = validateConfig(raw);
    assert.equal(c.hostname, os.hostname());
    assert.equal(c.banner, 'ESMTP');
    assert.deepEqual(c.listen, [{ address: { host: '127.0.0.1', port: 2525 }, proxy_protocol: 'none', trusted_proxies: [], personality: 'auto' }]);
    assert.deepEqual(c.limits, { max_connections: 19000, max_per_client: 50, backlog: 4096, proxy_timeout: 5000 });
    assert.deepEqual(c.access, { list: null, action: 'enforce', spf: [], spf_refresh_min: 300_000, spf_refresh_max: 86_400_000 });
    assert.deepEqual(c.pregreet, { enable: true, wait: 6000, action: 'enforce', ttl: 86_400_000 });
    assert.deepEqual(c.dummy, { command_time_limit: 300_000, command_count_limit: 20, line_length_limit: 2048, hard_error_limit: 20 });
    // postscreen's defaults (postconf -d, Postfix 3.7): every deep test off; pipelining enforce, non-SMTP drop, bare newline ignore; 30d.
    const D30 = 2_592_000_000;
    assert.deepEqual(c.deep, {
      pipelining: { enable: false, action: 'enforce', ttl: D30 },
      non_smtp: { enable: false, action: 'drop', ttl: D30 },
      bare_newline: { enable: false, action: 'ignore', ttl: D30 },
      forbidden_commands: ['CONNECT', 'GET', 'POST'],
      after_pass: 'reconnect',
    });
    assert.deepEqual(c.cache, {
      max_entries: 1_000_000, snapshot: null, snapshot_interval: 60_000, store: 'memory',
      redis: { url: null, sentinels: [], sentinel_master: 'mymaster', cluster: [], prefix: 'smtpscreen:', timeout: 200, connect_timeout: 2000, pending_writes: 10_000 },
    });
    assert.deepEqual(c.backend, {
      address: { host: '127.0.0.1', port: 10025 }, handoff: 'xclient', connect_timeout: 10_000, handshake_timeout: 30_000, ehlo_refresh: 600_000,
    });
    assert.equal(c.drain_timeout, 30_000);
    assert.equal(c.workers_accept, 'shared');
    assert.deepEqual(c.log, { format: 'json', level: 'info', destination: 'stdout', buffer: 4 * 1024 * 1024, file: null,
      syslog: { address: { host: '127.0.0.1', port: 514 }, transport: 'tcp', tag: 'postfix/postscreen' }, reveal_sites: false });
    assert.equal(c.mode, 'enforce');
    assert.equal(c.greylist.action, 'enforce');
    assert.deepEqual(c.admin, { listen: [], allow_remote: false, token: null, token_file: null, max_loop_delay: 1000, socket: null });
  }
});

test('defaults are fresh copies (mutating one config does not leak into the next)', () => {
  const a = defaultConfig();
  a.listen[0]?.trusted_proxies.push('10.0.0.0/8');
  assert.deepEqual(defaultConfig().listen[0]?.trusted_proxies, []);
});

test('every schema row has a doc, and every postscreen name has its default', () => {
  for (const s of SCHEMA) {
    assert.ok(s.doc.length > 0, s.key);
    assert.equal(s.postscreen === null, s.postscreenDefault === null, s.key);
    assert.ok(typeof defaultText(s) === 'string', s.key);
  }
});

test('deep merge: a partial section keeps the other defaults', () => {
  const c = validateConfig({ pregreet: { wait: '2s' }, backend: { address: '[::1]:25' }, dummy: null });
  assert.equal(c.pregreet.wait, 2000);
  assert.equal(c.pregreet.action, 'enforce');
  assert.equal(c.pregreet.ttl, 86_400_000);
  assert.deepEqual(c.backend.address, { host: '::1', port: 25 });
  assert.equal(c.backend.handoff, 'xclient');
  assert.equal(c.dummy.command_count_limit, 20);
});

test('listen: strings, mappings, IPv6, trusted proxies', () => {
  const c = validateConfig({
    listen: ['0.0.0.0:25', { address: '[2001:db8::1]:25', proxy_protocol: 'v2', trusted_proxies: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'] }],
  });
  assert.deepEqual(c.listen, [
    { address: { host: '0.0.0.0', port: 25 }, proxy_protocol: 'none', trusted_proxies: [], personality: 'auto' },
    { address: { host: '2001:db8::1', port: 25 }, proxy_protocol: 'v2', trusted_proxies: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'], personality: 'auto' },
  ]);
});

test('backend may be the built-in sink', () => {
  assert.deepEqual(validateConfig({ backend: { address: 'sink:0' } }).backend.address, { host: 'sink', port: 0 });
});

// Each kind of bad input -> SCR_ERR_CONFIG naming the key path.
const BAD: Array<{ label: string; raw: unknown; key: string }> = [
  { label: 'top level is not a mapping', raw: ['a'], key: '(top)' },
  { label: 'unknown top-level key', raw: { hostnme: 'x' }, key: 'hostnme' },
  { label: 'unknown nested key', raw: { pregreet: { wiat: '6s' } }, key: 'pregreet.wiat' },
  { label: 'section is not a mapping', raw: { pregreet: 5 }, key: 'pregreet' },
  { label: 'bad duration', raw: { pregreet: { wait: '6x' } }, key: 'pregreet.wait' },
  { label: 'duration of wrong type', raw: { pregreet: { ttl: true } }, key: 'pregreet.ttl' },
  { label: 'duration below minimum', raw: { cache: { snapshot_interval: '10ms' } }, key: 'cache.snapshot_interval' },
  { label: 'int is a string', raw: { limits: { max_connections: '100' } }, key: 'limits.max_connections' },
  { label: 'int is a fraction', raw: { limits: { max_per_client: 1.5 } }, key: 'limits.max_per_client' },
  { label: 'int below minimum', raw: { limits: { max_per_client: -1 } }, key: 'limits.max_per_client' },
  { label: 'int above maximum', raw: { limits: { backlog: 100000 } }, key: 'limits.backlog' },
  { label: 'line length below RFC minimum', raw: { dummy: { line_length_limit: 100 } }, key: 'dummy.line_length_limit' },
  { label: 'bool as yes', raw: { pregreet: { enable: 'yes' } }, key: 'pregreet.enable' },
  { label: 'enum value', raw: { pregreet: { action: 'reject' } }, key: 'pregreet.action' },
  { label: 'enum value for handoff', raw: { backend: { handoff: 'proxy' } }, key: 'backend.handoff' },
  { label: 'log level', raw: { log: { level: 'verbose' } }, key: 'log.level' },
  { label: 'string with CRLF', raw: { banner: 'ESMTP\r\n250 forged' }, key: 'banner' },
  { label: 'empty hostname', raw: { hostname: '' }, key: 'hostname' },
  { label: 'null for a non-nullable path-like key', raw: { hostname: null }, key: 'hostname' },
  { label: 'path of wrong type', raw: { access: { list: 5 } }, key: 'access.list' },
  { label: 'backend without port', raw: { backend: { address: '127.0.0.1' } }, key: 'backend.address' },
  { label: 'backend host name', raw: { backend: { address: 'localhost:25' } }, key: 'backend.address' },
  { label: 'backend port 0', raw: { backend: { address: '127.0.0.1:0' } }, key: 'backend.address' },
  { label: 'listen port out of range', raw: { listen: ['127.0.0.1:65536'] }, key: 'listen[0].address' },
  { label: 'backend port too big', raw: { backend: { address: '127.0.0.1:65536' } }, key: 'backend.address' },
  { label: 'IPv6 without brackets', raw: { backend: { address: '::1:25' } }, key: 'backend.address' },
  { label: 'bad IPv6 in brackets', raw: { backend: { address: '[::g]:25' } }, key: 'backend.address' },
  { label: 'bad IPv4', raw: { backend: { address: '1.2.3.256:25' } }, key: 'backend.address' },
  { label: 'address as number', raw: { backend: { address: 25 } }, key: 'backend.address' },
  { label: 'sink as listener', raw: { listen: ['sink:0'] }, key: 'listen[0].address' },
  { label: 'listen empty', raw: { listen: [] }, key: 'listen' },
  { label: 'listen not a list', raw: { listen: '127.0.0.1:25' }, key: 'listen' },
  { label: 'listen element bad address', raw: { listen: ['127.0.0.1:25', '127.0.0.1:x'] }, key: 'listen[1].address' },
  { label: 'listen element without address', raw: { listen: [{ proxy_protocol: 'v1' }] }, key: 'listen[0].address' },
  { label: 'listen element unknown key', raw: { listen: [{ address: '127.0.0.1:25', proxy: 'v1' }] }, key: 'listen[0].proxy' },
  { label: 'listen element bad proxy_protocol', raw: { listen: [{ address: '127.0.0.1:25', proxy_protocol: 'v3' }] }, key: 'listen[0].proxy_protocol' },
  { label: 'bad CIDR in trusted_proxies', raw: { listen: [{ address: '127.0.0.1:25', proxy_protocol: 'v1', trusted_proxies: ['10.0.0.0/8', '10.0.0.0/33'] }] }, key: 'listen[0].trusted_proxies[1]' },
  { label: 'CIDR with host bits', raw: { listen: [{ address: '127.0.0.1:25', proxy_protocol: 'v1', trusted_proxies: ['10.1.2.3/8'] }] }, key: 'listen[0].trusted_proxies[0]' },
  { label: 'CIDR not an address', raw: { listen: [{ address: '127.0.0.1:25', proxy_protocol: 'v1', trusted_proxies: ['lb.example'] }] }, key: 'listen[0].trusted_proxies[0]' },
  { label: 'IPv6 CIDR prefix too long', raw: { listen: [{ address: '127.0.0.1:25', proxy_protocol: 'v1', trusted_proxies: ['::/129'] }] }, key: 'listen[0].trusted_proxies[0]' },
  { label: 'trusted_proxies not a list', raw: { listen: [{ address: '127.0.0.1:25', trusted_proxies: '10.0.0.0/8' }] }, key: 'listen[0].trusted_proxies' },
  { label: 'PROXY protocol with nobody trusted', raw: { listen: [{ address: '127.0.0.1:25', proxy_protocol: 'any' }] }, key: 'listen[0].trusted_proxies' },
  { label: 'same listener twice', raw: { listen: ['127.0.0.1:25', '127.0.0.1:25'] }, key: 'listen[1].address' },
];

BAD.push(
  { label: 'deep action unknown', raw: { deep: { pipelining: { action: 'reject' } } }, key: 'deep.pipelining.action' },
  { label: 'deep ttl 0', raw: { deep: { bare_newline: { ttl: 0 } } }, key: 'deep.bare_newline.ttl' },
  { label: 'deep enable not a bool', raw: { deep: { non_smtp: { enable: 'yes' } } }, key: 'deep.non_smtp.enable' },
  { label: 'forbidden_commands not a list', raw: { deep: { forbidden_commands: 'GET POST' } }, key: 'deep.forbidden_commands' },
  { label: 'forbidden command with a space', raw: { deep: { forbidden_commands: ['GET', 'X Y'] } }, key: 'deep.forbidden_commands[1]' },
  { label: 'forbidden command not a string', raw: { deep: { forbidden_commands: [7] } }, key: 'deep.forbidden_commands[0]' },
  { label: 'after_pass unknown', raw: { deep: { after_pass: 'later' } }, key: 'deep.after_pass' },
  { label: 'hard_error_limit 0', raw: { dummy: { hard_error_limit: 0 } }, key: 'dummy.hard_error_limit' },
);

for (const c of BAD) {
  test(`validateConfig rejects: ${c.label} -> ${c.key}`, () => {
    const e = configError(() => validateConfig(c.raw, 'test.yaml'));
    assert.equal(e.details['key'], c.key);
    assert.equal(e.details['source'], 'test.yaml');
    assert.ok(e.message.includes(c.key), e.message);
    assert.ok(e.message.startsWith('test.yaml: '), e.message);
  });
}

test('deep.after_pass: handoff and reconnect are accepted; handoff with backend.handoff none is refused naming both keys', () => {
  assert.equal(validateConfig({ deep: { after_pass: 'reconnect' } }).deep.after_pass, 'reconnect');
  const c = validateConfig({ deep: { after_pass: 'handoff' }, backend: { handoff: 'proxy-v2' } });
  assert.equal(c.deep.after_pass, 'handoff');
  assert.equal(c.backend.ehlo_refresh, 600_000);
  assert.equal(validateConfig({ deep: { after_pass: 'reconnect' }, backend: { handoff: 'none' } }).backend.handoff, 'none');
  const e = configError(() => validateConfig({ deep: { after_pass: 'handoff' }, backend: { handoff: 'none' } }, 'x.yaml'));
  assert.equal(e.details['key'], 'deep.after_pass');
  assert.equal(e.details['value'], 'handoff');
  assert.match(e.message, /^x\.yaml: deep\.after_pass: .*backend\.handoff xclient, proxy-v1 or proxy-v2/);
  const bad = configError(() => validateConfig({ deep: { after_pass: 'same' } }, 'x.yaml'));
  assert.equal(bad.details['key'], 'deep.after_pass');
  const short = configError(() => validateConfig({ backend: { ehlo_refresh: '10ms' } }, 'x.yaml'));
  assert.equal(short.details['key'], 'backend.ehlo_refresh');
});

test('deep tests: a partial section keeps the defaults; postscreen parameter names point to the keys', () => {
  const c = validateConfig({ deep: { pipelining: { enable: true }, forbidden_commands: ['get', 'CONNECT'] } });
  assert.deepEqual(c.deep.pipelining, { enable: true, action: 'enforce', ttl: 2_592_000_000 });
  assert.deepEqual(c.deep.forbidden_commands, ['get', 'CONNECT']);
  assert.equal(c.deep.non_smtp.action, 'drop');
  const e = configError(() => validateConfig({ postscreen_pipelining_enable: true }));
  assert.ok((e.details['errors'] as Array<{ message: string }>).some((i) => i.message.includes('"deep.pipelining.enable"')), e.message);
});

test('the error message names the value', () => {
  const e = configError(() => validateConfig({ pregreet: { wait: '6x' } }));
  assert.ok(e.message.includes('"6x"'), e.message);
  assert.equal(e.details['value'], '6x');
});

const SUGGEST: Array<{ raw: unknown; want: string }> = [
  { raw: { pregreet: { wiat: '6s' } }, want: 'pregreet.wait' },
  { raw: { pregreet: { enabled: true } }, want: 'pregreet.enable' },
  { raw: { wait: '6s' }, want: 'pregreet.wait' },
  { raw: { backnd: {} }, want: 'backend' },
  { raw: { limits: { max_conections: 5 } }, want: 'limits.max_connections' },
  { raw: { postscreen_greet_wait: '6s' }, want: 'pregreet.wait' },
  { raw: { listen: [{ adress: '127.0.0.1:25' }] }, want: 'address' },
];

for (const c of SUGGEST) {
  test(`unknown key suggests "${c.want}"`, () => {
    const e = configError(() => validateConfig(c.raw));
    const issues = e.details['errors'] as Array<{ key: string; message: string }>;
    assert.ok(issues.some((i) => i.message.includes(`"${c.want}"`)), JSON.stringify(issues));
  });
}

test('all errors are collected into one', () => {
  const e = configError(() => validateConfig({
    hostnme: 'x', pregreet: { wait: '6x', action: 'nope' }, listen: [{ address: '1.2.3.4:70000', trusted_proxies: ['x'] }],
  }));
  const keys = (e.details['errors'] as Array<{ key: string }>).map((i) => i.key);
  assert.deepEqual(keys.sort(), ['hostnme', 'listen[0].address', 'listen[0].trusted_proxies[0]', 'pregreet.action', 'pregreet.wait']);
  assert.equal(e.details['key'], 'hostnme');
  for (const k of keys) assert.ok(e.message.includes(k), k);
});

test('hostPortOf: HostPort, or the problem as text', () => {
  assert.deepEqual(hostPortOf('192.0.2.1:25', false), { host: '192.0.2.1', port: 25 });
  assert.deepEqual(hostPortOf('[::1]:2525', false), { host: '::1', port: 2525 });
  assert.deepEqual(hostPortOf('sink:0', true), { host: 'sink', port: 0 });
  assert.equal(hostPortOf('sink:0', false), '"sink" is only valid as backend.address');
});

test('configToRaw round-trips through validateConfig', () => {
  const c = validateConfig({
    listen: [{ address: '[::1]:25', proxy_protocol: 'v1', trusted_proxies: ['::1'] }],
    pregreet: { wait: '1500ms' }, access: { list: '/etc/acl' }, backend: { address: 'sink:0' },
  });
  const raw = configToRaw(c);
  assert.equal((raw['pregreet'] as Record<string, unknown>)['wait'], '1500ms');
  assert.deepEqual(validateConfig(raw), c);
});

// ---- load.ts -------------------------------------------------------------------

test('loadConfig() with no path gives the defaults', () => {
  assert.deepEqual(loadConfig(), validateConfig({}));
});

test('the example config validates, shows every key, and differs from the defaults only where it says', () => {
  const c = loadConfig(EXAMPLE);
  assert.deepEqual(c.backend.address, { host: 'sink', port: 0 });
  assert.deepEqual(c.listen[0]?.address, { host: '127.0.0.1', port: 2525 });
  const d = defaultConfig();
  assert.deepEqual({ ...c, hostname: d.hostname, backend: { ...c.backend, address: d.backend.address } }, d);
  const flat = (o: unknown, p = ''): string[] => (typeof o === 'object' && o !== null && !Array.isArray(o) && Object.keys(o).length > 0
    ? Object.entries(o).flatMap(([k, v]) => flat(v, p === '' ? k : `${p}.${k}`)) : [p]);
  const inFile = new Set(flat(parse(readFileSync(EXAMPLE, 'utf8'))));
  for (const s of SCHEMA) if (!s.key.includes('[]')) assert.ok(inFile.has(s.key), `example lacks ${s.key}`);
});

test('YAML syntax error names file, line and column', () => {
  const e = configError(() => parseConfigText('pregreet:\n  wait: 6s\n  action: [enforce\n', 'bad.yaml'));
  assert.match(e.message, /^bad\.yaml:\d+:\d+: /);
  assert.equal(e.details['file'], 'bad.yaml');
  assert.equal(typeof e.details['line'], 'number');
  assert.equal(typeof e.details['column'], 'number');
});

test('duplicate YAML keys are an error', () => {
  const e = configError(() => parseConfigText('banner: a\nbanner: b\n', 'dup.yaml'));
  assert.match(e.message, /^dup\.yaml:2:1: /);
});

test('a missing file names the file', () => {
  const e = configError(() => loadConfig('/nonexistent/smtpscreen.yaml'));
  assert.equal(e.details['file'], '/nonexistent/smtpscreen.yaml');
  assert.equal(e.details['code'], 'ENOENT');
});

test('loadConfig reads a file and names it in value errors', () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'smtpscreen-'));
  const f = join(dir, 'c.yaml');
  writeFileSync(f, '# comment\npregreet:\n  wait: 2s\n');
  assert.equal(loadConfig(f).pregreet.wait, 2000);
  writeFileSync(f, 'pregreet:\n  wait: 2x\n');
  const e = configError(() => loadConfig(f));
  assert.ok(e.message.startsWith(`${f}: pregreet.wait`), e.message);
});

test('applyOverrides sets each flag and re-validates', () => {
  const c = applyOverrides(validateConfig({}), {
    listen: ['0.0.0.0:25', '[::]:25'], backend: '127.0.0.1:10026', handoff: 'proxy-v1', accessList: 'acl.cidr',
    greetWait: '2s', greetAction: 'drop', logFormat: 'postscreen',
  });
  assert.deepEqual(c.listen.map((l) => l.address), [{ host: '0.0.0.0', port: 25 }, { host: '::', port: 25 }]);
  assert.deepEqual(c.backend.address, { host: '127.0.0.1', port: 10026 });
  assert.equal(c.backend.handoff, 'proxy-v1');
  assert.equal(c.access.list, 'acl.cidr');
  assert.equal(c.pregreet.wait, 2000);
  assert.equal(c.pregreet.action, 'drop');
  assert.equal(c.log.format, 'postscreen');
});

test('applyOverrides with nothing returns the config unchanged', () => {
  const c = validateConfig({});
  assert.equal(applyOverrides(c, {}), c);
});

const FLAG_ERRORS: Array<{ o: Record<string, unknown>; flag: string; key: string }> = [
  { o: { greetWait: '6x' }, flag: '--greet-wait', key: 'pregreet.wait' },
  { o: { greetAction: 'reject' }, flag: '--greet-action', key: 'pregreet.action' },
  { o: { handoff: 'smtp' }, flag: '--handoff', key: 'backend.handoff' },
  { o: { backend: 'localhost:25' }, flag: '--backend', key: 'backend.address' },
  { o: { listen: ['127.0.0.1:25', '::1:25'] }, flag: '--listen', key: 'listen[1].address' },
  { o: { logFormat: 'syslog' }, flag: '--log-format', key: 'log.format' },
];

for (const c of FLAG_ERRORS) {
  test(`override error names the flag: ${c.flag}`, () => {
    const e = configError(() => applyOverrides(validateConfig({}), c.o));
    assert.ok(e.message.startsWith(`${c.flag}: `), e.message);
    assert.equal(e.details['flag'], c.flag);
    assert.equal(e.details['key'], c.key);
  });
}

test('--greet-wait message reads as the brief says', () => {
  const e = configError(() => applyOverrides(validateConfig({}), { greetWait: '6x' }));
  assert.ok(e.message.startsWith('--greet-wait: bad duration "6x"'), e.message);
});

test('formatConfig prints YAML that loads back to the same config', () => {
  const c = applyOverrides(loadConfig(EXAMPLE), { greetWait: '1500ms' });
  const text = formatConfig(c);
  assert.match(text, /wait: 1500ms/);
  assert.match(text, /ttl: 1d/);
  assert.match(text, /address: sink:0/);
  assert.deepEqual(parseConfigText(text, 'printed'), c);
});

test('listen port 0 asks for an ephemeral port (tests, demo)', () => {
  assert.deepEqual(validateConfig({ listen: ['127.0.0.1:0'] }).listen[0]?.address, { host: '127.0.0.1', port: 0 });
});
