/*
 * util/lazy-require.ts - require() for modules that only some configurations use.
 *
 * Exports: lazyRequire.
 * A module imported at the top of a file is loaded by every process, whether the
 * configuration uses it or not: node:tls, node:http and node:child_process cost
 * 0.5-3 MB of RSS each in a fresh process, undici ~20 MB. The files that need one
 * only for an optional feature (STARTTLS, the policy service, `user`) require it
 * here at first use instead; the types still come from `import type`.
 */
import { createRequire } from 'node:module';

export const lazyRequire = createRequire(import.meta.url);
