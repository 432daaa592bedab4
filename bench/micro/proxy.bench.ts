/*
 * bench/micro/proxy.bench.ts - PROXY v1/v2 decode and encode, IPv4 and IPv6.
 */
import type { Bench } from 'tinybench';
import { decodeProxyHeader, encodeProxyV1, encodeProxyV2 } from '../../src/net/proxy-protocol.js';

export default function (bench: Bench): void {
  const s4 = { addr: '192.0.2.1', port: 56324 };
  const d4 = { addr: '198.51.100.2', port: 25 };
  const s6 = { addr: '2001:db8:1234:5678::42', port: 56324 };
  const d6 = { addr: '2001:db8::25', port: 25 };
  const v1of4 = encodeProxyV1(s4, d4);
  const v1of6 = encodeProxyV1(s6, d6);
  const v2of4 = encodeProxyV2(s4, d4);
  const v2of6 = encodeProxyV2(s6, d6);
  let sink = 0;
  bench.add('proxy decode v1 TCP4', () => { const r = decodeProxyHeader(v1of4, 'any'); if (r.status === 'done') sink += r.consumed; });
  bench.add('proxy decode v1 TCP6', () => { const r = decodeProxyHeader(v1of6, 'any'); if (r.status === 'done') sink += r.consumed; });
  bench.add('proxy decode v2 TCP4', () => { const r = decodeProxyHeader(v2of4, 'any'); if (r.status === 'done') sink += r.consumed; });
  bench.add('proxy decode v2 TCP6', () => { const r = decodeProxyHeader(v2of6, 'any'); if (r.status === 'done') sink += r.consumed; });
  bench.add('proxy decode v1 incomplete (half)', () => { sink += decodeProxyHeader(v1of4.subarray(0, 20), 'any').status.length; });
  bench.add('proxy encode v1 TCP4', () => { sink += encodeProxyV1(s4, d4).length; });
  bench.add('proxy encode v1 TCP6', () => { sink += encodeProxyV1(s6, d6).length; });
  bench.add('proxy encode v2 TCP4', () => { sink += encodeProxyV2(s4, d4).length; });
  bench.add('proxy encode v2 TCP6', () => { sink += encodeProxyV2(s6, d6).length; });
  bench.addEventListener('complete', () => { if (sink === 0.5) console.log(sink); });
}
