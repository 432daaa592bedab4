/*
 * test/checks/spf-record.test.ts - SPF record syntax (checks/spf-record.ts): a table of records
 * and what they parse to, the errors (permerrors) that name the term, record selection among TXT
 * strings, and a property test: random and mutated text never throws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseSpf, selectSpf } from '../../src/checks/spf-record.js';
import { validateConfig } from '../../src/config/validate.js';
import { configError } from '../helpers/config-error.js';

const terms = (text: string) => {
  const r = parseSpf(text);
  if ('error' in r) throw new Error(`unexpected error: ${r.error}`);
  return r;
};

test('terms: kind, qualifier, domain, address and cidr lengths', () => {
  const rows: Array<{ text: string; want: Array<[string, string, string, string, number, number]> }> = [
    { text: 'v=spf1 -all', want: [['all', '-', '', '', 32, 128]] },
    { text: 'V=SPF1 ip4:192.0.2.0/24 ip4:198.51.100.7 ~all', want: [['ip4', '+', '', '192.0.2.0', 24, 128], ['ip4', '+', '', '198.51.100.7', 32, 128], ['all', '~', '', '', 32, 128]] },
    { text: 'v=spf1 ip6:2001:db8::/32 ?ip6:2001:db8::1', want: [['ip6', '+', '', '2001:db8::', 32, 32], ['ip6', '?', '', '2001:db8::1', 32, 128]] },
    { text: 'v=spf1   include:_spf.example.test  -include:x.test', want: [['include', '+', '_spf.example.test', '', 32, 128], ['include', '-', 'x.test', '', 32, 128]] },
    { text: 'v=spf1 a a/24 a:mail.test/28//64 mx:mx.test//48 mx', want: [
      ['a', '+', '', '', 32, 128], ['a', '+', '', '', 24, 128], ['a', '+', 'mail.test', '', 28, 64], ['mx', '+', 'mx.test', '', 32, 48], ['mx', '+', '', '', 32, 128]] },
    { text: 'v=spf1 ptr exists:%{i}.x.test', want: [['ptr', '+', '', '', 32, 128], ['exists', '+', '%{i}.x.test', '', 32, 128]] },
  ];
  for (const r of rows) {
    const got = terms(r.text).terms.map((t) => [t.kind, t.qualifier, t.domain, t.addr, t.kind === 'ip6' ? t.cidr6 : t.cidr4, t.cidr6]);
    const want = r.want.map(([k, q, d, a, c4, c6]) => [k, q, d, a, k === 'ip6' ? c6 : c4, c6]);
    assert.deepEqual(got, want, r.text);
  }
});

test('modifiers: redirect kept, exp and unknown ones ignored, macros flagged', () => {
  const r = terms('v=spf1 exp=explain.test redirect=_spf.test foo=bar');
  assert.equal(r.redirect, '_spf.test');
  assert.equal(r.redirectMacro, false);
  assert.equal(r.terms.length, 0);
  assert.equal(terms('v=spf1 redirect=%{d}.spf.test').redirectMacro, true);
  assert.equal(terms('v=spf1 include:%{l}.x.test').terms[0]?.macro, true);
  assert.equal(terms('v=spf1 include:x.test').terms[0]?.macro, false);
});

test('permerrors name the term', () => {
  const rows: Array<[string, RegExp]> = [
    ['v=spf1 foo:bar', /unknown mechanism "foo:bar"/],
    ['v=spf1 ip4:1.2.3.4/33', /bad prefix length in "ip4:1.2.3.4\/33"/],
    ['v=spf1 ip6:2001:db8::/129', /bad prefix length/],
    ['v=spf1 include', /"include" needs ":domain"/],
    ['v=spf1 redirect=a.test redirect=b.test', /more than one redirect=/],
    ['v=spf1 all:x', /"all" takes no argument/],
    ['v=spf1 a:x.test/40', /bad ip4 cidr length/],
    ['v=spf1 include:%{x', /unclosed macro/],
    ['v=spf1 include:a%b.test', /bad macro/],
    ['v=spf1 ip4:\x01', /outside printable ASCII/],
    ['v=spf10 -all', /not a v=spf1 record/],
  ];
  for (const [text, re] of rows) {
    const r = parseSpf(text);
    assert.ok('error' in r, `${JSON.stringify(text)} parsed`);
    assert.match(r.error, re, text);
  }
});

test('selectSpf: the one v=spf1 record; none; more than one is an error', () => {
  assert.equal(selectSpf(['google-site-verification=x', 'v=spf1 -all']), 'v=spf1 -all');
  assert.equal(selectSpf(['v=spf1']), 'v=spf1');
  assert.equal(selectSpf(['v=spf10 -all', 'v=spf1x', 'spf1']), null);
  assert.equal(selectSpf([]), null);
  assert.deepEqual(selectSpf(['v=spf1 -all', 'V=SPF1 +all']), { error: 'more than one v=spf1 record' });
});

test('property: garbage never throws, and every outcome is a record or an error', () => {
  const pieces = fc.constantFrom('v=spf1', ' ', 'ip4:', 'ip6:', '/', '//', ':', '=', 'include:', 'redirect=', '%{', '}', '%', 'a', 'mx', '-', '+', '~', '?', 'all', '1.2.3.4', '::', 'x.test', '\x00', '\xff');
  const arb = fc.oneof(fc.string({ maxLength: 200 }), fc.array(pieces, { maxLength: 40 }).map((a) => a.join('')), fc.array(pieces, { maxLength: 40 }).map((a) => `v=spf1 ${a.join('')}`));
  fc.assert(fc.property(arb, (text) => {
    const r = parseSpf(text);
    if ('error' in r) return typeof r.error === 'string' && r.error.length > 0;
    for (const t of r.terms) {
      if (t.cidr4 < 0 || t.cidr4 > 32 || t.cidr6 < 0 || t.cidr6 > 128) return false;
    }
    const s = selectSpf([text, text.slice(1)]);
    return s === null || typeof s === 'string' || typeof s.error === 'string';
  }), { numRuns: 3000 });
});

test('config: access.spf names domains; a bad one is an error naming access.spf[i]', () => {
  assert.deepEqual(validateConfig({ access: { spf: ['google.com', '_spf.Example.TEST.'] } }).access.spf, ['google.com', '_spf.Example.TEST.']);
  for (const bad of ['google', 'a b.test', 'x..test', '-x.test', 'ip4:1.2.3.4']) {
    const e = configError(() => validateConfig({ access: { spf: ['ok.test', bad] } }));
    assert.equal(e.details['key'], 'access.spf[1]', bad);
  }
  // The minimum wins over a smaller maximum (no error: each bound is checked on its own).
  assert.equal(validateConfig({ access: { spf_refresh_min: '1h', spf_refresh_max: '1s' } }).access.spf_refresh_min, 3_600_000);
});
