/*
 * config/host-port.ts - address values in the configuration: "ADDRESS:PORT" and CIDRs.
 *
 * Exports: hostPortOf(text, sinkOk), formatHostPort(hp), cidrProblem(text).
 * The checks return the problem as text (or null) so the validator can name the key;
 * addresses are IP literals, names are never resolved.
 */
import net from 'node:net';
import { Address4, Address6 } from 'ip-address';
import type { HostPort } from './types.js';

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** hostPortOf - HostPort, or the problem with the text. */
export function hostPortOf(text: string, sinkOk: boolean): HostPort | string {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0 || text[end + 1] !== ':') return 'want [IPv6]:PORT, e.g. [::1]:2525';
    host = text.slice(1, end);
    portText = text.slice(end + 2);
    if (!net.isIPv6(host)) return `"${host}" is not an IPv6 address`;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return 'want ADDRESS:PORT, e.g. 127.0.0.1:2525';
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return 'an IPv6 address needs brackets, e.g. [::1]:2525';
    if (host === 'sink') {
      if (!sinkOk) return '"sink" is only valid as backend.address';
    } else if (!net.isIPv4(host)) {
      return `"${host}" is not an IP address literal (names are not resolved${sinkOk ? '; or use sink:0' : ''})`;
    }
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  // Port 0 on a listener asks the kernel for a free port (tests, the demo; STARTED logs the real one).
  const lo = host === 'sink' || !sinkOk ? 0 : 1;
  if (!(port >= lo && port <= 65535)) return `port must be ${lo}..65535`;
  return { host, port };
}

/** cidrProblem - null when text is an IPv4/IPv6 address or CIDR with no host bits set. */
export function cidrProblem(text: string): string | null {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const family = net.isIP(addr);
  if (family === 0) return 'not an IPv4 or IPv6 address';
  if (slash < 0) return null;
  const bits = text.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return `prefix length must be 0..${max}`;
  const a = family === 4 ? new Address4(text) : new Address6(text);
  const start = a.startAddress().correctForm();
  if (start !== a.correctForm()) return `host bits set; did you mean "${start}/${bits}"?`;
  return null;
}
