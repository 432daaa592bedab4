/*
 * test/helpers/exposition.ts - read Prometheus text exposition (0.0.4) into samples.
 *
 * Exports: parseExposition(text), Sample.
 * Enough of the format for the tests to compare values: `# HELP`/`# TYPE`
 * lines are skipped (TYPE is kept per sample), label values are unescaped
 * (\\, \", \n), values parsed as floats (+Inf, -Inf, NaN in any case, as Prometheus reads them). A malformed line
 * throws naming it: the tests also run promtool, this is for reading numbers.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  /** From the family's # TYPE line: counter, gauge, histogram... ('' when none). */
  type: string;
}

/** As Prometheus reads it (Go's ParseFloat): NaN and Inf in any case; prom-client writes "Nan". */
function num(s: string): number {
  const l = s.toLowerCase();
  if (l === '+inf' || l === 'inf') return Infinity;
  if (l === '-inf') return -Infinity;
  if (l === 'nan') return NaN;
  const v = Number(s);
  if (s === '' || Number.isNaN(v)) throw new Error(`bad sample value ${JSON.stringify(s)}`);
  return v;
}

export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (m !== null) types.set(m[1] as string, m[2] as string);
      continue;
    }
    let i = 0;
    while (i < line.length && /[a-zA-Z0-9_:]/.test(line[i] as string)) i++;
    const name = line.slice(0, i);
    if (name === '') throw new Error(`no metric name: ${line}`);
    const labels: Record<string, string> = {};
    if (line[i] === '{') {
      i++;
      while (line[i] !== '}') {
        const eq = line.indexOf('=', i);
        if (eq < 0 || line[eq + 1] !== '"') throw new Error(`bad label in: ${line}`);
        const key = line.slice(i, eq).trim();
        let j = eq + 2;
        let v = '';
        for (; j < line.length && line[j] !== '"'; j++) {
          if (line[j] === '\\') {
            j++;
            const c = line[j];
            v += c === 'n' ? '\n' : (c ?? '');
          } else v += line[j];
        }
        if (j >= line.length) throw new Error(`unterminated label value in: ${line}`);
        labels[key] = v;
        i = j + 1;
        if (line[i] === ',') i++;
        else if (line[i] !== '}') throw new Error(`bad label list in: ${line}`);
      }
      i++;
    }
    const rest = line.slice(i).trim().split(/\s+/);
    const value = num(rest[0] ?? '');
    const family = name.replace(/_(bucket|sum|count)$/, '');
    out.push({ name, labels, value, type: types.get(name) ?? types.get(family) ?? '' });
  }
  return out;
}
