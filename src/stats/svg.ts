/*
 * stats/svg.ts - small inline SVG charts for the HTML report; no script, no external file.
 *
 * Exports: esc(text), stackedBars(rows, series), hBars(items), columns(items), PALETTE.
 * Every label goes through esc(): log text is the client's text.
 */

export const PALETTE = ['#2e7d32', '#66bb6a', '#81d4fa', '#c62828', '#6a1b9a', '#ef6c00', '#8d6e63', '#9e9e9e', '#fdd835', '#00838f'];

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const fmt = (v: number): string => v.toLocaleString('en-US');

/** Nice upper bound for an axis: 1, 2, 5 × 10^k at or above max. */
function niceMax(max: number): number {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

/** stackedBars - one bar per row (label), stacked by series, with a legend. */
export function stackedBars(rows: ReadonlyArray<{ label: string; values: readonly number[] }>, series: readonly string[],
  o: { width?: number; height?: number; title: string }): string {
  const W = o.width ?? 1100;
  const H = o.height ?? 300;
  const left = 50, right = 10, top = 30, bottom = 40;
  const plotW = W - left - right, plotH = H - top - bottom;
  const max = niceMax(Math.max(0, ...rows.map((r) => r.values.reduce((a, b) => a + b, 0))));
  const bw = plotW / Math.max(1, rows.length);
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}">`];
  for (let k = 0; k <= 4; k++) {
    const y = top + plotH - (plotH * k) / 4;
    parts.push(`<line x1="${left}" x2="${W - right}" y1="${y}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${left - 4}" y="${y + 4}" text-anchor="end" font-size="11">${fmt((max * k) / 4)}</text>`);
  }
  rows.forEach((r, i) => {
    let y = top + plotH;
    r.values.forEach((v, s) => {
      if (v <= 0) return;
      const h = (plotH * v) / max;
      y -= h;
      parts.push(`<rect x="${(left + i * bw + 2).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(1, bw - 4).toFixed(1)}" height="${h.toFixed(1)}" fill="${PALETTE[s % PALETTE.length]}"><title>${esc(r.label)} ${esc(series[s] ?? '')}: ${fmt(v)}</title></rect>`);
    });
    parts.push(`<text x="${(left + i * bw + bw / 2).toFixed(1)}" y="${top + plotH + 14}" text-anchor="middle" font-size="10">${esc(r.label)}</text>`);
  });
  let lx = left;
  series.forEach((name, s) => {
    parts.push(`<rect x="${lx}" y="8" width="10" height="10" fill="${PALETTE[s % PALETTE.length]}"/><text x="${lx + 14}" y="17" font-size="11">${esc(name)}</text>`);
    lx += 20 + name.length * 7;
  });
  parts.push('</svg>');
  return parts.join('');
}

/** hBars - horizontal bars, one per item, value at the end. */
export function hBars(items: ReadonlyArray<readonly [string, number]>, o: { width?: number; title: string; color?: string }): string {
  const W = o.width ?? 540;
  const rowH = 20;
  const labelW = 230;
  const H = Math.max(1, items.length) * rowH + 10;
  const max = Math.max(1, ...items.map(([, v]) => v));
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}">`];
  if (items.length === 0) parts.push(`<text x="4" y="16" font-size="12" fill="#777">none</text>`);
  items.forEach(([label, v], i) => {
    const y = 5 + i * rowH;
    const w = ((W - labelW - 70) * v) / max;
    const shown = label.length > 34 ? `${label.slice(0, 33)}…` : label;
    parts.push(`<text x="${labelW - 6}" y="${y + 14}" text-anchor="end" font-size="11"><title>${esc(label)}</title>${esc(shown)}</text>`,
      `<rect x="${labelW}" y="${y + 3}" width="${Math.max(1, w).toFixed(1)}" height="${rowH - 6}" fill="${o.color ?? '#c62828'}"/>`,
      `<text x="${(labelW + w + 4).toFixed(1)}" y="${y + 14}" font-size="11">${fmt(v)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

/** columns - a histogram: one column per bucket label. */
export function columns(items: ReadonlyArray<readonly [string, number]>, o: { width?: number; height?: number; title: string; color?: string }): string {
  const W = o.width ?? 540;
  const H = o.height ?? 200;
  const left = 40, bottom = 30, top = 10;
  const plotH = H - top - bottom;
  const max = niceMax(Math.max(0, ...items.map(([, v]) => v)));
  const bw = (W - left - 10) / Math.max(1, items.length);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}">`,
    `<text x="${left - 4}" y="${top + 8}" text-anchor="end" font-size="10">${fmt(max)}</text>`,
    `<line x1="${left}" x2="${W - 10}" y1="${top + plotH}" y2="${top + plotH}" stroke="#999"/>`];
  items.forEach(([label, v], i) => {
    const h = (plotH * v) / max;
    const x = left + i * bw;
    parts.push(`<rect x="${(x + 3).toFixed(1)}" y="${(top + plotH - h).toFixed(1)}" width="${Math.max(1, bw - 6).toFixed(1)}" height="${h.toFixed(1)}" fill="${o.color ?? '#1565c0'}"><title>${esc(label)}: ${fmt(v)}</title></rect>`,
      `<text x="${(x + bw / 2).toFixed(1)}" y="${top + plotH + 14}" text-anchor="middle" font-size="10">${esc(label)}</text>`);
    if (v > 0) parts.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${(top + plotH - h - 3).toFixed(1)}" text-anchor="middle" font-size="10">${fmt(v)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
