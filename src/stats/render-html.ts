/*
 * stats/render-html.ts - Summary -> one self-contained HTML page (inline CSS and SVG, no script, nothing fetched).
 *
 * Exports: renderHtml(summary, opts).
 * Charts: verdicts per hour (stacked), reject reasons, DNSBL site hits and
 * lookup time, greeting delay of clients handed over. Every number shown
 * from the summary carries data-k="<JSON pointer into --json's output>", so a
 * test can read the rendered page back and compare it with --json.
 */
import { HOUR_COLUMNS, type Counts, type HistJSON, type Summary } from './summary.js';
import { columns, esc, hBars, stackedBars } from './svg.js';

const ptr = (...path: Array<string | number>): string => '/' + path.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
const fmt = (v: number): string => v.toLocaleString('en-US');
const num = (v: number, ...path: Array<string | number>): string => `<span data-k="${esc(ptr(...path))}">${fmt(v)}</span>`;
/** A cell of a cross table: the count, or a plain 0 where --json has no such key. */
const cell = (v: number | undefined, ...path: Array<string | number>): string => (v === undefined ? '0' : num(v, ...path));

function card(label: string, v: number, ...path: string[]): string {
  return `<div class="card"><div class="v">${num(v, ...path)}</div><div class="l">${esc(label)}</div></div>`;
}

function table(c: Counts, head: string, ...path: string[]): string {
  const rows = Object.entries(c);
  if (rows.length === 0) return '<p class="none">none</p>';
  return `<table><tr><th>${esc(head)}</th><th>count</th></tr>${rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td class="n">${num(v, ...path, k)}</td></tr>`).join('')}</table>`;
}

function histItems(h: HistJSON, unit: (v: number) => string): Array<[string, number]> {
  return h.buckets.map((b, i) => {
    const lo = i === 0 ? 0 : (h.buckets[i - 1]?.le as number);
    return [b.le === '+Inf' ? `>${unit(lo)}` : `≤${unit(b.le)}`, b.count];
  });
}
const ms = (v: number): string => (v >= 1000 ? `${v / 1000}s` : `${v}ms`);

function histLine(h: HistJSON, ...path: string[]): string {
  if (h.count === 0) return '<p class="none">none measured</p>';
  return `<p>${num(h.count, ...path, 'count')} measured; mean ${num(h.mean ?? 0, ...path, 'mean')} ms, p50 ≤ ${num(h.p50 ?? 0, ...path, 'p50')} ms, ` +
    `p90 ≤ ${num(h.p90 ?? 0, ...path, 'p90')} ms, max ${num(h.max ?? 0, ...path, 'max')} ms</p>`;
}

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:20px;color:#222;max-width:1160px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 6px;border-bottom:1px solid #ddd}
.cards{display:flex;flex-wrap:wrap;gap:8px}.card{border:1px solid #ddd;border-radius:6px;padding:6px 12px;min-width:110px}
.card .v{font-size:20px;font-weight:600}.card .l{font-size:12px;color:#555}
.row{display:flex;flex-wrap:wrap;gap:24px}.row>div{flex:1 1 520px}
table{border-collapse:collapse;font-size:12px}td,th{border-bottom:1px solid #eee;padding:2px 8px;text-align:left}td.n{text-align:right}
.none{color:#777}.meta{color:#555;font-size:12px}`;

export function renderHtml(s: Summary, o: { title?: string; generated?: string } = {}): string {
  const v = s.verdicts;
  const series = HOUR_COLUMNS.filter((c) => c !== 'connections' && c !== 'would');
  const hourRows = s.hours.map((h) => ({ label: String(h.hour).padStart(2, '0'), values: series.map((c) => h[c]) }));
  const hourCols = HOUR_COLUMNS.filter((c) => c !== 'would' || s.hours.some((h) => h.would > 0));
  const tests = [...new Set([...Object.keys(s.tests), ...Object.keys(s.would)])];
  const actions = [...new Set(Object.values(s.tests).flatMap((t) => Object.keys(t)))].sort();
  const woulds = [...new Set(Object.values(s.would).flatMap((t) => Object.keys(t)))].sort();
  const title = o.title ?? 'smtpscreen report';
  const body = [
    `<h1>${esc(title)}</h1>`,
    `<p class="meta">${s.input.first !== null ? `${esc(s.input.first)} to ${esc(s.input.last ?? s.input.first)} · ` : ''}` +
      `${num(s.input.lines, 'input', 'lines')} lines, ${num(s.input.events, 'input', 'events')} events, ` +
      `${num(s.input.malformed, 'input', 'malformed')} malformed${o.generated !== undefined ? ` · generated ${esc(o.generated)}` : ''}</p>`,
    '<div class="cards">',
    card('connections', s.connections.total, 'connections', 'total'), card('PASS OLD', v.pass_old, 'verdicts', 'pass_old'),
    card('PASS NEW', v.pass_new, 'verdicts', 'pass_new'), card('allowlisted', v.allowlisted, 'verdicts', 'allowlisted'),
    card('rejected (5xx)', v.rejected, 'verdicts', 'rejected'), card('dropped (521)', v.dropped, 'verdicts', 'dropped'),
    card('deferred (4xx)', v.deferred, 'verdicts', 'deferred'), card('handed over', v.handoffs, 'verdicts', 'handoffs'),
    card('ports busy', s.connections.all_ports_busy, 'connections', 'all_ports_busy'),
    card('backend failures', s.backend.failures_total, 'backend', 'failures_total'),
    '</div>',
    `<p>PASS NEW share of passes: ${v.pass_new_ratio === null ? 'n/a' : `${(v.pass_new_ratio * 100).toFixed(1)}%`}</p>`,
    '<h2>Verdicts per hour</h2>',
    stackedBars(hourRows, series, { title: 'verdicts per hour' }),
    '<div class="row"><div><h2>Reject reasons</h2>',
    hBars(Object.entries(s.rejects.reasons).slice(0, 15), { title: 'reject reasons' }),
    table(s.rejects.reasons, 'reason', 'rejects', 'reasons'),
    '</div><div><h2>Test failures by action</h2>',
    tests.length === 0 ? '<p class="none">none</p>' :
      `<table><tr><th>test</th>${actions.map((a) => `<th>${esc(a)}</th>`).join('')}${woulds.map((w) => `<th>would ${esc(w)}</th>`).join('')}</tr>` +
      tests.map((t) => `<tr><td>${esc(t)}</td>${actions.map((a) => `<td class="n">${cell(s.tests[t]?.[a], 'tests', t, a)}</td>`).join('')}` +
        `${woulds.map((w) => `<td class="n">${cell(s.would[t]?.[w], 'would', t, w)}</td>`).join('')}</tr>`).join('') + '</table>',
    '<h2>Hangups by phase</h2>', table(s.hangups, 'phase', 'hangups'),
    '</div></div>',
    '<div class="row"><div><h2>DNSBL site hits</h2>',
    hBars(Object.entries(s.dnsbl.site_hits), { title: 'DNSBL site hits', color: '#6a1b9a' }),
    table(s.dnsbl.site_hits, 'site', 'dnsbl', 'site_hits'),
    Object.keys(s.dnsbl.late).length > 0 ? `<h2>DNSBL sites late</h2>${table(s.dnsbl.late, 'site', 'dnsbl', 'late')}` : '',
    '</div><div><h2>DNSBL lookup time</h2>',
    columns(histItems(s.dnsbl.lookup_ms, ms), { title: 'DNSBL lookup time', color: '#6a1b9a' }),
    histLine(s.dnsbl.lookup_ms, 'dnsbl', 'lookup_ms'),
    '</div></div>',
    '<div class="row"><div><h2>Greeting delay of clients handed over</h2>',
    columns(histItems(s.greeting_delay_ms, ms), { title: 'greeting delay', color: '#2e7d32' }),
    histLine(s.greeting_delay_ms, 'greeting_delay_ms'),
    '</div><div><h2>Top rejected networks</h2>',
    s.networks.top.length === 0 ? '<p class="none">none</p>' :
      `<table><tr><th>network</th><th>rejects</th><th>DNSBL sites</th></tr>${s.networks.top.map((e, i) =>
        `<tr><td>${esc(e.network)}</td><td class="n">${num(e.rejects, 'networks', 'top', i, 'rejects')}</td><td>${esc(Object.entries(e.dnsbl_sites).map(([k, m]) => `${k} ${m}`).join(', '))}</td></tr>`).join('')}</table>`,
    '</div></div>',
    '<div class="row"><div><h2>Greylisting</h2>',
    `<table><tr><td>deferred</td><td class="n">${num(s.greylist.deferred, 'greylist', 'deferred')}</td></tr>` +
      `<tr><td>networks deferred</td><td class="n">${num(s.greylist.networks_deferred, 'greylist', 'networks_deferred')}</td></tr>` +
      `<tr><td>retried</td><td class="n">${num(s.greylist.retried, 'greylist', 'retried')}</td></tr>` +
      `<tr><td>never retried</td><td class="n">${num(s.greylist.never_retried, 'greylist', 'never_retried')}</td></tr>` +
      `<tr><td>passed</td><td class="n">${num(s.greylist.passed, 'greylist', 'passed')}</td></tr></table>`,
    '<h2>Deep-test handoff fallbacks</h2>', table(s.deep.fallbacks, 'reason (stage)', 'deep', 'fallbacks'),
    '</div><div><h2>Backend failures</h2>', table(s.backend.failures, 'backend, stage: reason', 'backend', 'failures'),
    '<h2>Stress periods</h2>',
    s.stress.periods.length === 0 ? '<p class="none">none</p>' :
      `<table><tr><th>entered</th><th>left</th><th>connections</th></tr>${s.stress.periods.map((p, i) =>
        `<tr><td>${esc(p.enter)}</td><td>${esc(p.leave ?? 'still in stress')}</td><td class="n">${num(p.count, 'stress', 'periods', i, 'count')}</td></tr>`).join('')}</table>`,
    '</div></div>',
    '<h2>Per hour</h2>',
    `<table><tr><th>hour</th>${hourCols.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>${s.hours.map((h, i) =>
      `<tr><td>${String(h.hour).padStart(2, '0')}:00</td>${hourCols.map((c) => `<td class="n">${num(h[c], 'hours', i, c)}</td>`).join('')}</tr>`).join('')}</table>`,
    s.input.malformed_samples.length > 0 ? `<h2>Malformed lines (first few)</h2><pre>${s.input.malformed_samples.map((m) => esc(`line ${m.line}: ${JSON.stringify(m.text)}`)).join('\n')}</pre>` : '',
  ];
  return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>` +
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">` +
    `<style>${CSS}</style></head><body>\n${body.join('\n')}\n</body></html>\n`;
}
