/*
 * The verdict step's side effects on the session (session/conclude.ts act()),
 * seen where a postmaster sees them: the backend a client is routed to by its
 * DNSBL score (routes' score_min / score_max: a client with no DNSBL answer
 * this session has no score and matches neither), and the shadowed verdict
 * a same-connection handoff routes by after the deep tests (deep.after_pass:
 * handoff). Fake clock, fake sockets (test/helpers/fake-session.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, type Harness, settle, envelope } from '../helpers/fake-session.js';
import { FakeTransport } from '../helpers/fake-policy.js';

const base = { pregreet: { wait: '2s', action: 'enforce' }, backend: { handoff: 'none' } };

// Clients with a DNSBL score of 1 or more go to `suspect`, a score of 0 to `clean`; no score: the default (127.0.0.1:2525).
const routed = {
  backends: [{ name: 'clean', address: '127.0.0.1:2601', handoff: 'none' }, { name: 'suspect', address: '127.0.0.1:2602', handoff: 'none' }],
  routes: [{ match: { score_min: 1 }, backend: 'suspect' }, { match: { score_max: 0 }, backend: 'clean' }],
};
// One site of weight 1, threshold 2: a listing scores 1 and is no failure (handed over, routed by it).
const weighted = { dnsbl: { sites: ['bl.test*1'], threshold: 2, action: 'enforce' } };

test('routes by DNSBL score: the score the verdict summed picks the backend; no DNSBL answer this session, no score, the default', async () => {
  const rows: Array<{ label: string; raw: Record<string, unknown>; dns: 'listed' | 'clean' | 'none'; policy?: true; target: string }> = [
    // A listing below the threshold is a score, not a failure: the backend for suspect clients (a negated sum would not reach score_min 1).
    { label: 'listed on a weight-1 site, threshold 2: score 1', raw: weighted, dns: 'listed', target: '127.0.0.1:2602' },
    { label: 'answered, not listed: score 0', raw: weighted, dns: 'clean', target: '127.0.0.1:2601' },
    // No lookup: no score; a score of 0 assumed here would send unscreened clients to the `clean` backend.
    { label: 'no DNSBL configured', raw: {}, dns: 'none', target: '127.0.0.1:2525' },
    { label: 'a policy service (dunno) but no DNSBL: the policy gives no score', raw: { policy: { url: 'http://127.0.0.1:9/p' } }, dns: 'none', policy: true, target: '127.0.0.1:2525' },
  ];
  for (const r of rows) {
    const t = new FakeTransport();
    const h = harness({ ...base, ...routed, ...r.raw }, null, { policy: t });
    const { sock, session } = h.connect('192.0.2.50');
    if (r.dns !== 'none') h.dns.answerAll(r.dns === 'listed');
    if (r.policy === true) t.answer({ action: 'dunno' });
    await settle();
    h.clock.advance(2000);
    assert.deepEqual(h.targets, [r.target], r.label);
    assert.equal(h.named('PASS NEW').length, 1, `${r.label}: handed over as a new client`);
    assert.equal(session()?.score ?? null, r.dns === 'none' ? null : r.dns === 'listed' ? 1 : 0, r.label);
    assert.equal(h.named('DNSBL').length, 0, `${r.label}: no DNSBL failure`);
    sock.hangup();
    await settle();
  }
});

/** A client at RCPT in the dummy engine for its deep test, routed for a same-connection handoff; `shadow` clients to a backend that is down. */
async function replayRoute(listed: boolean): Promise<Harness> {
  const h = harness({
    ...base,
    backend: { handoff: 'xclient' },
    dnsbl: { sites: ['bl.test'], threshold: 1, action: 'shadow' },
    deep: { pipelining: { enable: true }, after_pass: 'handoff' },
    backends: [{ name: 'quarantine', address: '127.0.0.1:2603' }],
    routes: [{ match: { verdict: 'shadow' }, backend: 'quarantine' }],
    routes_fallback: 'tempfail',
  }, null, { down: ['quarantine'] });
  const { sock } = h.connect('192.0.2.51');
  h.dns.answerAll(listed);
  await settle();
  h.clock.advance(2000);
  envelope(sock);
  await settle();
  return h;
}

test('deep.after_pass handoff: a client whose DNSBL listing was shadowed is routed as "shadow" at its RCPT; a clean one as "new"', async () => {
  // Shadowed at the verdict (DNSBL action shadow): the rule for shadow clients applies, its backend is down, tempfail.
  const s = await replayRoute(true);
  assert.deepEqual(s.named('DNSBL').map((e) => [e['action'], e['would']]), [['shadow', 'reject']]);
  assert.deepEqual(s.named('ROUTE FALLBACK').map((e) => [e['rule'], e['backend_name'], e['to']]), [[0, 'quarantine', 'tempfail']]);
  assert.deepEqual(s.named('HANDOFF FALLBACK').map((e) => e['reason']), ['routed backend down']);
  // Not listed: verdict "new", no rule matches, the default backend (whose EHLO is not learned here).
  const c = await replayRoute(false);
  assert.equal(c.named('ROUTE FALLBACK').length, 0, 'a clean client is not routed as shadow');
  assert.deepEqual(c.named('HANDOFF FALLBACK').map((e) => e['reason']), ['backend EHLO not learned']);
});
