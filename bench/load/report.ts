/*
 * bench/load/report.ts - the Markdown report and its SVG charts, from the JSON
 * results in bench/results/ (load-*.json).
 *
 * Exports: writeReport(dir), lineChart(spec).
 * zombie.ts calls writeReport() after each run, so report.md always shows the
 * latest result of every scenario; `node dist/bench/load/report.js [DIR]`
 * rewrites it alone. Charts are hand-written SVG (a few polylines, no
 * dependency):
 *   latency-vs-zombies.svg   legit: cached clients' latency percentiles and
 *                            the added p99 against the zombies held.
 *   rss-vs-connections.svg   idle: server RSS against sockets held, for the
 *                            screener and the floor (plain Node), per second.
 *   soak.svg                 soak (soak.json, bench/load/soak.ts): the server's
 *                            open fds, RSS and heap against time, three panels.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Json = Record<string, unknown>;

export interface ChartSeries {
  name: string;
  points: Array<[number, number]>;
  dashed?: boolean;
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: ChartSeries[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** niceStep - a 1/2/5 x 10^k step giving about `n` ticks over `span`. */
function niceStep(span: number, n: number): number {
  const raw = span / Math.max(1, n);
  const p = 10 ** Math.floor(Math.log10(raw || 1));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

function fmt(v: number): string {
  if (Math.abs(v) >= 1000) return v.toLocaleString('en-US', { maximumFractionDigits: 0 });
  return String(Math.round(v * 100) / 100);
}

/** lineChart - an SVG line chart, axes from 0, one polyline (and dots) per series. */
export function lineChart(spec: ChartSpec): string {
  const W = 720, H = 400, L = 70, R = 170, T = 40, B = 50;
  const all = spec.series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...all.map((p) => p[0]));
  const yMax = Math.max(1e-9, ...all.map((p) => p[1]));
  const xs = niceStep(xMax, 6);
  const ys = niceStep(yMax, 5);
  const xTop = Math.ceil(xMax / xs) * xs;
  const yTop = Math.ceil(yMax / ys) * ys;
  const X = (x: number): number => L + ((W - L - R) * x) / xTop;
  const Y = (y: number): number => H - B - ((H - T - B) * y) / yTop;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(spec.title)}</text>`,
  ];
  for (let x = 0; x <= xTop + 1e-9; x += xs) {
    out.push(`<line x1="${X(x)}" y1="${T}" x2="${X(x)}" y2="${H - B}" stroke="#eee"/>`,
      `<text x="${X(x)}" y="${H - B + 16}" text-anchor="middle">${fmt(x)}</text>`);
  }
  for (let y = 0; y <= yTop + 1e-9; y += ys) {
    out.push(`<line x1="${L}" y1="${Y(y)}" x2="${W - R}" y2="${Y(y)}" stroke="#eee"/>`,
      `<text x="${L - 6}" y="${Y(y) + 4}" text-anchor="end">${fmt(y)}</text>`);
  }
  out.push(`<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">${esc(spec.xLabel)}</text>`,
    `<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`);
  spec.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length] as string;
    const pts = s.points; // in time order: a ramp, then the hold's vertical fall
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''} points="${pts.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' ')}"/>`);
    if (pts.length <= 12) for (const p of pts) out.push(`<circle cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="3" fill="${c}"/>`);
    const ly = T + 10 + i * 20;
    out.push(`<line x1="${W - R + 12}" y1="${ly}" x2="${W - R + 36}" y2="${ly}" stroke="${c}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${W - R + 42}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function isPct(v: unknown): v is { n: number; p50: number; p90: number; p99: number; max: number } {
  return typeof v === 'object' && v !== null && 'p50' in v && 'p99' in v;
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return 'n/a';
  if (typeof v === 'number') return v.toLocaleString('en-US', { maximumFractionDigits: 3 });
  if (isPct(v)) return `p50 ${fmt(v.p50)} / p90 ${fmt(v.p90)} / p99 ${fmt(v.p99)} / max ${fmt(v.max)} (n=${v.n})`;
  return esc(JSON.stringify(v)).replace(/\|/g, '\\|');
}

function figuresTable(figs: Json, floor: Json | undefined): string[] {
  const rows = floor === undefined ? ['| figure | value |', '|---|---|'] : ['| figure | screener | floor (plain Node) |', '|---|---|---|'];
  for (const [k, v] of Object.entries(figs)) {
    rows.push(floor === undefined ? `| ${k} | ${cell(v)} |` : `| ${k} | ${cell(v)} | ${k in floor ? cell(floor[k]) : ''} |`);
  }
  return rows;
}

/** Idle timeline: [sockets held, RSS MB] while the count rises and holds (not the release). */
function rssCurve(sc: Json): Array<[number, number]> {
  const tl = (sc['timeline'] as Array<{ rss_kb: number; fds?: number }> | undefined) ?? [];
  const base = (sc['figures'] as Json | undefined)?.['before_fds'];
  const b = typeof base === 'number' ? base : 0;
  const pts: Array<[number, number]> = [];
  let max = 0;
  for (const p of tl) {
    if (p.fds === undefined || p.fds < 0) continue;
    if (max > 100 && p.fds < max * 0.9) break; // release
    max = Math.max(max, p.fds);
    pts.push([Math.max(0, p.fds - b), Math.round((p.rss_kb / 1024) * 10) / 10]);
  }
  return pts;
}

/** stack - SVG charts one above the other in one picture (nested <svg> elements). */
function stack(charts: string[]): string {
  const H = 400;
  const inner = charts.map((c, i) => c.trim().replace(/^<svg /, `<svg y="${i * H}" `));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="720" height="${H * charts.length}" viewBox="0 0 720 ${H * charts.length}">\n${inner.join('\n')}\n</svg>\n`;
}

type Sample = { t_s: number; fds: number; rss_kb: number; heap_mb: number | null; heap_full_gc_mb: number | null };
type Round = { started_s: number; settled_fds: number; settled_rss_kb: number };

/** soakSection - soak.svg and the report's soak section from DIR/soak.json (none without it). */
function soakSection(dir: string): string[] {
  const file = join(dir, 'soak.json');
  if (!existsSync(file)) return [];
  let doc: Json;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8')) as Json;
  } catch {
    return [];
  }
  const sc = (doc['scenarios'] as Json | undefined)?.['soak'] as Json | undefined;
  if (sc === undefined) return [];
  const samples = ((sc['series'] as Json | undefined)?.['samples'] as Sample[] | undefined) ?? [];
  const rounds = ((sc['series'] as Json | undefined)?.['rounds'] as Round[] | undefined) ?? [];
  const min = (t: number): number => Math.round((t / 60) * 100) / 100;
  const pts = (f: (s: Sample) => number | null): Array<[number, number]> =>
    samples.flatMap((s) => { const v = f(s); return v === null ? [] : [[min(s.t_s), v] as [number, number]]; });
  // A round has settled just before the next one starts (the last one at the last sample).
  const end = samples[samples.length - 1]?.t_s ?? 0;
  const settled = (f: (r: Round) => number): Array<[number, number]> =>
    rounds.map((r, i) => [min(rounds[i + 1]?.started_s ?? end), f(r)]);
  const mb = (kb: number): number => Math.round(kb / 102.4) / 10;
  writeFileSync(join(dir, 'soak.svg'), stack([
    lineChart({
      title: 'Soak: server open descriptors', xLabel: 'minutes', yLabel: 'fds', series: [
        { name: 'fds (samples)', points: pts((s) => s.fds) },
        { name: 'after each round', points: settled((r) => r.settled_fds), dashed: true },
      ],
    }),
    lineChart({
      title: 'Soak: server RSS', xLabel: 'minutes', yLabel: 'MB', series: [
        { name: 'RSS (samples)', points: pts((s) => mb(s.rss_kb)) },
        { name: 'after each round', points: settled((r) => mb(r.settled_rss_kb)), dashed: true },
      ],
    }),
    lineChart({
      title: 'Soak: server V8 heap used', xLabel: 'minutes', yLabel: 'MB', series: [
        { name: 'after last GC', points: pts((s) => s.heap_mb) },
        { name: 'after last full GC', points: pts((s) => s.heap_full_gc_mb), dashed: true },
      ],
    }),
  ]));
  const md = ['## soak', '', `From \`soak.json\`, finished ${String(doc['finished'])}.`, '',
    `Settings: \`${JSON.stringify(sc['settings'])}\``, '', '![fds, RSS and heap over the soak](soak.svg)', ''];
  md.push(...figuresTable((sc['figures'] as Json | undefined) ?? {}, undefined), '');
  const notes = (sc['notes'] as string[] | undefined) ?? [];
  if (notes.length > 0) md.push('Notes:', '', ...notes.map((n) => `- ${n}`), '');
  return md;
}

/** writeReport - rewrite DIR/report.md and its charts from DIR/load-*.json; returns the report's path. */
export function writeReport(dir: string): string {
  const files = readdirSync(dir).filter((f) => /^load-.*\.json$/.test(f)).sort();
  const latest = new Map<string, { file: string; doc: Json; sc: Json }>();
  for (const f of files) {
    let doc: Json;
    try {
      doc = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Json;
    } catch {
      continue;
    }
    for (const [scName, sc] of Object.entries((doc['scenarios'] as Json | undefined) ?? {})) {
      // The SMTP-sink throughput run is its own row: the raw one is the splice's figure.
      const name = scName === 'throughput' && ((sc as Json)['settings'] as Json | undefined)?.['sink'] === 'smtp' ? 'throughput-smtp' : scName;
      const prev = latest.get(name);
      if (prev === undefined || String(doc['finished']) > String(prev.doc['finished'])) latest.set(name, { file: f, doc, sc: sc as Json });
    }
  }
  const md: string[] = ['# smtpscreen load report', '',
    'Written by `bench/load/report.ts` from the latest `bench/results/load-*.json` of each scenario.',
    'Commands and how to read the figures: README, "Benchmarks". Figures are single runs unless the README says "median".', ''];
  const order = ['idle', 'pregreet', 'listed', 'legit', 'slowloris', 'throughput', 'throughput-smtp', 'mix', 'deep'];
  const names = [...latest.keys()].sort((a, b) => order.indexOf(a) - order.indexOf(b));
  const first = names.length > 0 ? latest.get(names[0] as string) : undefined;
  if (first !== undefined) md.push('## Machine', '', '```', JSON.stringify(first.doc['machine'], null, 2), '```', '');
  // Charts.
  const legit = latest.get('legit');
  const series = (legit?.sc['series'] as Json | undefined)?.['latency'] as Array<Record<string, number>> | undefined;
  if (series !== undefined && series.length > 0) {
    const pick = (k: string): Array<[number, number]> => series.map((p) => [p['zombies'] ?? 0, p[k] ?? 0]);
    writeFileSync(join(dir, 'latency-vs-zombies.svg'), lineChart({
      title: 'Cached client: connect -> backend greeting, vs zombies held',
      xLabel: 'zombies held by the screener', yLabel: 'ms',
      series: [
        { name: 'screened p50', points: pick('cached_p50') },
        { name: 'screened p90', points: pick('cached_p90') },
        { name: 'screened p99', points: pick('cached_p99') },
        { name: 'direct p99', points: pick('direct_p99'), dashed: true },
        { name: 'added p99', points: pick('added_p99') },
      ],
    }));
    md.push('## Latency against zombies held', '', '![latency percentiles against zombies held](latency-vs-zombies.svg)', '');
  }
  const idle = latest.get('idle');
  if (idle !== undefined) {
    const s: ChartSeries[] = [{ name: 'smtpscreen', points: rssCurve(idle.sc) }];
    const fl = idle.sc['floor'] as Json | undefined;
    if (fl !== undefined) s.push({ name: 'floor (plain Node)', points: rssCurve(fl), dashed: true });
    writeFileSync(join(dir, 'rss-vs-connections.svg'), lineChart({
      title: 'Idle zombies: server RSS vs sockets held (0.25 s samples)', xLabel: 'sockets held', yLabel: 'RSS, MB', series: s,
    }));
    md.push('## RSS against connections', '', '![RSS against connections held](rss-vs-connections.svg)', '');
  }
  for (const name of names) {
    const { file, doc, sc } = latest.get(name) as { file: string; doc: Json; sc: Json };
    const fl = sc['floor'] as Json | undefined;
    md.push(`## ${name}`, '', `From \`${file}\`, finished ${String(doc['finished'])}.`, '',
      `Settings: \`${JSON.stringify(sc['settings'])}\``, '');
    md.push(...figuresTable((sc['figures'] as Json | undefined) ?? {}, fl === undefined ? undefined : (fl['figures'] as Json)), '');
    if (sc['ratios'] !== undefined) md.push(`Screener / floor: \`${JSON.stringify(sc['ratios'])}\``, '');
    const notes = (sc['notes'] as string[] | undefined) ?? [];
    if (notes.length > 0) md.push('Notes:', '', ...notes.map((n) => `- ${n}`), '');
  }
  md.push(...soakSection(dir));
  const out = join(dir, 'report.md');
  writeFileSync(out, `${md.join('\n')}\n`);
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${writeReport(process.argv[2] ?? 'bench/results')}\n`);
}
