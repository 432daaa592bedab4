/*
 * test/fuzz/targets.ts - every fuzz target, in the order they are run and reported.
 *
 * Exports: TARGETS.
 * The parsers that read the network: PROXY headers, client lines and
 * commands, backend replies (and the EHLO / XCLIENT built around them), DNS
 * answers, and the address / CIDR parsing the PROXY decoder and the access
 * lists rely on.
 */
import type { FuzzTarget } from './harness.js';
import { cidrTarget, proxyTarget } from './targets-proxy-cidr.js';
import { dummyEngineTarget, lineReaderTarget } from './targets-smtp.js';
import { smtpReplyTarget, xclientTarget } from './targets-backend.js';
import { dnsTarget } from './targets-dns.js';

export const TARGETS: ReadonlyArray<FuzzTarget<never>> = [
  proxyTarget, lineReaderTarget, dummyEngineTarget, smtpReplyTarget, xclientTarget, dnsTarget, cidrTarget,
] as unknown as ReadonlyArray<FuzzTarget<never>>;
