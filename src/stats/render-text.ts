/*
 * stats/render-text.ts - Summary -> the text report, in pflogsumm's layout.
 *
 * Exports: renderText(summary).
 * Titled sections, a dashed rule under each, counts right-aligned before
 * their label, as pflogsumm prints; sections with nothing to say print
 * "none" on the title line, as pflogsumm does ("message bounce detail: none").
 */
import { HOUR_COLUMNS, type Counts, type HistJSON, type Summary } from './summary.js';

const n = (v: number): string => v.toLocaleString('en-US');
const pad = (v: number | string, w = 7): string => (typeof v === 'number' ? n(v) : v).padStart(w);

function title(out: string[], t: string): void {
  out.push('', t, '-'.repeat(t.length));
}

function counts(out: string[], t: string, c: Counts, extra = ''): void {
  const keys = Object.keys(c);
  if (keys.length === 0) {
    out.push('', `${t}: none`);
    return;
  }
  title(out, t + extra);
  for (const k of keys) out.push(`${pad(c[k] ?? 0)}   ${k}`);
}

function hist(h: HistJSON, unit = 'ms'): string {
  if (h.count === 0) return 'none';
  return `${n(h.count)} measured, mean ${n(h.mean ?? 0)} ${unit}, p50 <= ${n(h.p50 ?? 0)} ${unit}, p90 <= ${n(h.p90 ?? 0)} ${unit}, max ${n(h.max ?? 0)} ${unit}`;
}

const pct = (a: number, b: number): string => (b > 0 ? ` (${((100 * a) / b).toFixed(1)}%)` : '');

export function renderText(s: Summary): string {
  const out: string[] = [];
  const i = s.input;
  out.push(`smtpscreen stats: ${n(i.lines)} lines: ${n(i.events)} events, ${n(i.other)} other, ${n(i.malformed)} malformed` +
    ` (json ${n(i.formats.json)}, postscreen ${n(i.formats.postscreen)})`);
  if (i.first !== null) out.push(`from ${i.first} to ${i.last ?? i.first}`);

  title(out, 'Connections');
  const c = s.connections;
  out.push(`${pad(c.total)}   connections`);
  out.push(`${pad(c.all_ports_busy)}   all server ports busy`, `${pad(c.too_many_connections)}   too many connections (per client)`);
  if (c.proxy_fail > 0) out.push(`${pad(c.proxy_fail)}   PROXY header failures`);

  title(out, 'Verdicts');
  const v = s.verdicts;
  const passes = v.pass_new + v.pass_old;
  out.push(`${pad(v.pass_old)}   PASS OLD${pct(v.pass_old, passes)}`,
    `${pad(v.pass_new)}   PASS NEW${pct(v.pass_new, passes)}${v.pass_new_deep > 0 ? `, ${n(v.pass_new_deep)} after deep tests` : ''}`,
    `${pad(v.allowlisted)}   allowlisted`, `${pad(v.denylisted)}   denylisted`,
    `${pad(v.rejected)}   rejected (5xx)`, `${pad(v.dropped)}   dropped (action drop: 521)`, `${pad(v.deferred)}   deferred (4xx)`,
    `${pad(v.handoffs)}   handed over to the backend`);

  const tests = Object.keys(s.tests);
  const wouldTests = Object.keys(s.would);
  if (tests.length + wouldTests.length === 0) out.push('', 'Test failures: none');
  else {
    title(out, 'Test failures by action (and would-have outcomes in shadow mode)');
    const actions = [...new Set(tests.flatMap((t) => Object.keys(s.tests[t] ?? {})))].sort();
    const woulds = [...new Set(wouldTests.flatMap((t) => Object.keys(s.would[t] ?? {})))].sort();
    out.push(`${'test'.padEnd(22)}${actions.map((a) => pad(a, 9)).join('')}${woulds.map((w) => pad(`would ${w}`, 14)).join('')}`);
    for (const t of [...new Set([...tests, ...wouldTests])]) {
      out.push(`${t.padEnd(22)}${actions.map((a) => pad(s.tests[t]?.[a] ?? 0, 9)).join('')}` +
        `${woulds.map((w) => pad(s.would[t]?.[w] ?? 0, 14)).join('')}`);
    }
  }
  counts(out, 'Hangups by phase', s.hangups);

  title(out, 'Rejects');
  out.push(`${pad(s.rejects.lines)}   reject lines (pflogsumm's "rejected": NOQUEUE 4xx/5xx and CONNECT refusals)`);
  for (const [code, k] of Object.entries(s.rejects.codes)) out.push(`${pad(k)}   ${code}`);
  for (const [cmd, k] of Object.entries(s.rejects.by_command)) out.push(`${pad(k)}   at ${cmd}`);
  counts(out, 'Clients by reject lines', s.rejects.top_clients);
  counts(out, 'Reject reasons', s.rejects.reasons);
  if (s.networks.top.length === 0) out.push('', 'Top rejected networks: none');
  else {
    title(out, `Top rejected networks${s.networks.approximate ? ' (approximate)' : ''}`);
    for (const e of s.networks.top) {
      const sites = Object.entries(e.dnsbl_sites).map(([k, m]) => `${k} ${n(m)}`).join(', ');
      out.push(`${pad(e.rejects)}   ${e.network}${sites !== '' ? `  DNSBL: ${sites}` : ''}`);
    }
  }

  const d = s.dnsbl;
  title(out, 'DNSBL');
  out.push(`${pad(d.events)}   clients at or over the threshold`, `lookup time: ${hist(d.lookup_ms)}`);
  counts(out, 'DNSBL site hits', d.site_hits);
  if (Object.keys(d.late).length > 0) counts(out, 'DNSBL sites late (no answer in time)', d.late);
  if (Object.keys(d.slow).length > 0) counts(out, 'DNSBL slow warnings', d.slow);
  if (Object.keys(d.error_answers).length > 0) counts(out, 'DNSBL error answers', d.error_answers);
  if (Object.keys(d.suspended).length > 0) counts(out, 'DNSBL sites suspended', d.suspended);

  const g = s.greylist;
  if (g.deferred + g.passed === 0) out.push('', 'Greylisting: none');
  else {
    title(out, 'Greylisting');
    out.push(`${pad(g.deferred)}   deferred (${Object.entries(g.deferred_by_reason).map(([k, m]) => `${k} ${n(m)}`).join(', ')})`,
      `${pad(g.networks_deferred)}   networks deferred`, `${pad(g.retried)}   of them retried`,
      `${pad(g.never_retried)}   never retried${g.approximate ? ' (approximate)' : ''}`, `${pad(g.passed)}   passed after a retry`,
      `retry delay: ${hist(g.pass_delay_ms)}`);
  }
  counts(out, 'Deep-test handoff fallbacks', s.deep.fallbacks);
  counts(out, 'Backend failures', s.backend.failures);
  if (Object.keys(s.backend.probe_failures).length > 0) counts(out, 'Backend probe failures', s.backend.probe_failures);
  if (s.backend.handshake_ms.count > 0) out.push(`backend handshake: ${hist(s.backend.handshake_ms)}`);

  if (s.stress.periods.length === 0) out.push('', 'Stress periods: none');
  else {
    title(out, 'Stress periods');
    for (const p of s.stress.periods) {
      out.push(`  ${p.enter} .. ${p.leave ?? '(still in stress at the end of the log)'}  with ${n(p.count)} connections` +
        `${p.duration_ms !== null ? `, ${(p.duration_ms / 1000).toFixed(1)} s` : ''}`);
    }
  }

  title(out, 'Greeting delay of clients handed over (connect to handoff)');
  out.push(hist(s.greeting_delay_ms));

  title(out, 'Per-hour summary');
  const cols = HOUR_COLUMNS.filter((k) => k !== 'would' || s.hours.some((h) => h.would > 0));
  out.push(`${'time'.padEnd(11)}${cols.map((k) => pad(k, 12)).join('')}`);
  for (const h of s.hours) {
    const t = `${String(h.hour).padStart(2, '0')}00-${String(h.hour + 1).padStart(2, '0')}00`;
    out.push(`${t.padEnd(11)}${cols.map((k) => pad(h[k], 12)).join('')}`);
  }
  if (s.warnings > 0) out.push('', `${n(s.warnings)} warning/error lines from the screener`);
  if (i.malformed > 0) {
    title(out, 'Malformed lines (first few)');
    for (const m of i.malformed_samples) out.push(`  line ${m.line}: ${JSON.stringify(m.text)}`);
  }
  return out.join('\n') + '\n';
}
