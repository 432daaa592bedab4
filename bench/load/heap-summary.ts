/*
 * bench/load/heap-summary.ts - what a V8 heap snapshot holds, by constructor, per held client.
 *
 *   node dist/bench/load/heap-summary.js FILE.heapsnapshot [--per N] [--top K] [--base FILE]
 *
 * Sums the self size and count of the snapshot's nodes by type and name (a class name for
 * objects; "(object properties)", "(system)" and the like for V8's internal arrays), and, for
 * the arrays, hidden nodes, plain objects and arrays and strings, by their first retainer
 * ("Owner.edge"), which names the object an unnamed array or a string belongs to. --base FILE subtracts a snapshot taken before the clients came;
 * --per N divides by the clients held. `bench:held --heap-snapshot DIR` writes the two files.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { per: { type: 'string' }, top: { type: 'string' }, base: { type: 'string' } },
});
const file = positionals[0];
if (file === undefined) throw new Error('usage: heap-summary FILE.heapsnapshot [--per N] [--top K] [--base FILE]');
const per = Number(values.per ?? 1);
const top = Number(values.top ?? 30);

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

function summarise(path: string): Map<string, { size: number; count: number }> {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
  const m = snap.snapshot.meta;
  const nf = m.node_fields.length;
  const ef = m.edge_fields.length;
  const iType = m.node_fields.indexOf('type');
  const iName = m.node_fields.indexOf('name');
  const iSize = m.node_fields.indexOf('self_size');
  const iEdges = m.node_fields.indexOf('edge_count');
  const eType = m.edge_fields.indexOf('type');
  const eName = m.edge_fields.indexOf('name_or_index');
  const eTo = m.edge_fields.indexOf('to_node');
  const nodeTypes = m.node_types[0];
  const edgeTypes = m.edge_types[0];
  const { nodes, edges, strings } = snap;
  const n = nodes.length / nf;
  // First retainer of each node (by node index), for the unnamed arrays.
  const retainer = new Int32Array(n).fill(-1);
  const retainerEdge = new Array<string>(n);
  for (let i = 0, e = 0; i < n; i++) {
    const count = nodes[i * nf + iEdges] as number;
    for (let k = 0; k < count; k++, e += ef) {
      const to = (edges[e + eTo] as number) / nf;
      if (retainer[to] !== -1) continue;
      const t = edgeTypes[edges[e + eType] as number];
      if (t === 'weak') continue;
      retainer[to] = i;
      const nameOrIndex = edges[e + eName] as number;
      retainerEdge[to] = t === 'element' || t === 'hidden' ? `[${nameOrIndex}]` : String(strings[nameOrIndex]);
    }
  }
  const by = new Map<string, { size: number; count: number }>();
  const add = (key: string, size: number): void => {
    const cur = by.get(key);
    if (cur === undefined) by.set(key, { size, count: 1 });
    else {
      cur.size += size;
      cur.count++;
    }
  };
  for (let i = 0; i < n; i++) {
    const type = nodeTypes[nodes[i * nf + iType] as number] as string;
    let name = strings[nodes[i * nf + iName] as number] as string;
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '';
    if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const size = nodes[i * nf + iSize] as number;
    let key = `${type} ${name}`;
    if (type === 'array' || type === 'hidden' || type === 'object shape' || key === 'object Array' || key === 'object Object' || name === '') {
      const r = retainer[i] as number;
      const owner = r >= 0 ? `${nodeTypes[nodes[r * nf + iType] as number]}:${strings[nodes[r * nf + iName] as number]}` : '(root)';
      key += `  <- ${owner.slice(0, 60)}.${retainerEdge[i] ?? ''}`;
    }
    add(key, size);
  }
  return by;
}

const after = summarise(file);
const before = values.base !== undefined ? summarise(values.base) : new Map<string, { size: number; count: number }>();
const rows = [...after].map(([k, v]) => {
  const b = before.get(k) ?? { size: 0, count: 0 };
  return { key: k, size: (v.size - b.size) / per, count: (v.count - b.count) / per };
});
rows.sort((x, y) => y.size - x.size);
let total = 0;
for (const r of rows) total += r.size;
console.log(`total ${total.toFixed(0)} B${per !== 1 ? ' per client' : ''}`);
for (const r of rows.slice(0, top)) console.log(`${r.size.toFixed(1).padStart(10)} B ${r.count.toFixed(2).padStart(8)}  ${r.key}`);
