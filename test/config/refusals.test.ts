/*
 * Values valid alone that together would hurt (config/refusals.ts): each is refused by
 * validateConfig() with a message naming the key, the value and the fix; the values next to
 * them are accepted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/validate.js';
import { ScreenError } from '../../src/util/errors.js';

function refusal(raw: Record<string, unknown>): { key: unknown; message: string } {
  try {
    validateConfig(raw, 'screen.yaml');
  } catch (err) {
    assert.ok(err instanceof ScreenError, String(err));
    assert.equal(err.code, 'SCR_ERR_CONFIG');
    return { key: err.details['key'], message: err.message };
  }
  assert.fail(`accepted: ${JSON.stringify(raw)}`);
}

const refused: Array<{ label: string; raw: Record<string, unknown>; key: string; message: RegExp }> = [
  { label: 'dnsbl.threshold 0', raw: { dnsbl: { sites: ['bl.test'], threshold: 0 } }, key: 'dnsbl.threshold',
    message: /^screen\.yaml: dnsbl\.threshold: 0 would refuse every client: a client listed nowhere scores 0.*set 1 or more/ },
  { label: 'dnsbl.threshold -2', raw: { dnsbl: { threshold: -2 } }, key: 'dnsbl.threshold',
    message: /dnsbl\.threshold: -2 would refuse every client.*set 1 or more/ },
  { label: 'greylist min_delay above max_delay', raw: { greylist: { enable: true, min_delay: '2h', max_delay: '1h' } }, key: 'greylist.min_delay',
    message: /greylist\.min_delay: 2h is above greylist\.max_delay \(1h\): .*no retry could ever pass; set greylist\.min_delay below greylist\.max_delay/ },
  { label: 'dnsbl ttl_min above ttl_max', raw: { dnsbl: { ttl_min: '2h', ttl_max: '1h' } }, key: 'dnsbl.ttl_min',
    message: /dnsbl\.ttl_min: 2h is above dnsbl\.ttl_max \(1h\).*set dnsbl\.ttl_min below dnsbl\.ttl_max/ },
  { label: 'resolver min_ttl above max_ttl', raw: { resolver: { min_ttl: '10m', max_ttl: '5m' } }, key: 'resolver.min_ttl',
    message: /resolver\.min_ttl: 10m is above resolver\.max_ttl \(5m\)/ },
  { label: 'greylist suspicious_score 0 with policy suspicious', raw: { greylist: { enable: true, policy: 'suspicious', suspicious_score: 0 } },
    key: 'greylist.suspicious_score', message: /greylist\.suspicious_score: 0 with greylist\.policy suspicious would greylist every client.*greylist\.policy all/ },
];
for (const r of refused) {
  test(`refused: ${r.label}, naming the key, the value and the fix`, () => {
    const got = refusal(r.raw);
    assert.equal(got.key, r.key);
    assert.match(got.message, r.message);
  });
}

const accepted: Array<{ label: string; raw: Record<string, unknown> }> = [
  { label: 'dnsbl.threshold 1', raw: { dnsbl: { sites: ['bl.test'], threshold: 1 } } },
  { label: 'greylist min_delay just below max_delay', raw: { greylist: { enable: true, min_delay: '59m', max_delay: '1h' } } },
  { label: 'dnsbl ttl_min equal to ttl_max (a fixed TTL)', raw: { dnsbl: { ttl_min: '1h', ttl_max: '1h' } } },
  { label: 'suspicious_score 0 while greylisting is off', raw: { greylist: { enable: false, policy: 'suspicious', suspicious_score: 0 } } },
];
for (const a of accepted) {
  test(`accepted: ${a.label}`, () => {
    assert.doesNotThrow(() => validateConfig(a.raw, 'screen.yaml'));
  });
}

test('several refusals are listed together', () => {
  const got = refusal({ dnsbl: { threshold: 0 }, greylist: { min_delay: '3d', max_delay: '1d' } });
  assert.match(got.message, /2 configuration errors:\n {2}dnsbl\.threshold: 0 .*\n {2}greylist\.min_delay: 3d /);
});
