/*
 * test/helpers/packet-mutation.ts - small damage to a valid DNS packet, for property tests:
 * a flipped bit, a cut, a compression pointer put in, a section count changed, a byte set.
 *
 * Exports: packetMutation (fast-check arbitrary), mutate(buf, mutations).
 */
import fc from 'fast-check';

export type PacketMutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'cut'; at: number }
  | { kind: 'pointer'; at: number; to: number }
  | { kind: 'count'; which: number; value: number }
  | { kind: 'poke'; at: number; value: number };

/** One mutation; `maxCount` bounds a new section count (large ones only make the packet end early). */
export function packetMutation(maxCount = 0xffff): fc.Arbitrary<PacketMutation> {
  return fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('pointer' as const), at: fc.nat(), to: fc.integer({ min: 0, max: 0x3fff }) }),
    fc.record({ kind: fc.constant('count' as const), which: fc.integer({ min: 0, max: 3 }), value: fc.integer({ min: 0, max: maxCount }) }),
    fc.record({ kind: fc.constant('poke' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  );
}

/** buf with the mutations applied in order (offsets taken modulo the length at that point). */
export function mutate(buf: Buffer, ms: readonly PacketMutation[]): Buffer {
  let b = buf;
  for (const m of ms) {
    const at = 'at' in m ? m.at % (b.length + 1) : 0;
    if (m.kind === 'flip' && at < b.length) b[at] = (b[at] ?? 0) ^ (1 << m.bit);
    else if (m.kind === 'cut') b = b.subarray(0, at);
    else if (m.kind === 'pointer') b = Buffer.concat([b.subarray(0, at), Buffer.from([0xc0 | (m.to >>> 8), m.to & 255]), b.subarray(at)]);
    else if (m.kind === 'count' && b.length >= 12) b.writeUInt16BE(m.value, 4 + 2 * m.which);
    else if (m.kind === 'poke' && at < b.length) b[at] = m.value;
  }
  return b;
}
