/*
 * test/helpers/npm-registry.ts - a read-only npm registry on loopback that serves the packages of
 * a repository's package-lock.json, so that a test can run a real `npm install -g` without the
 * network.
 *
 * Exports: startLocalRegistry(root, dir), LocalRegistry.
 * Every package of ROOT/package-lock.json becomes a version of its package: the manifest is the
 * installed ROOT/<path>/package.json; the tarball is the original one, read from npm's own
 * cache by the lockfile's integrity (`npm ci` left it there), or, when the cache does not hold
 * it, the installed folder packed again under `dir` (its integrity then differs from the
 * lockfile's: an install that checks the lockfile fails with EINTEGRITY naming it).
 * npm asks GET /<name> (scoped: /@scope%2fname) and GET /-/<file>.tgz; anything else is 404.
 * Only what the lockfile lists can be installed: anything else fails with npm's E404 naming it.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';

export interface LocalRegistry {
  /** "http://127.0.0.1:PORT/" */
  readonly url: string;
  /** name -> versions served */
  readonly packages: ReadonlyMap<string, readonly string[]>;
  close(): Promise<void>;
}

interface Version {
  manifest: Record<string, unknown>;
  file: string;
  integrity: string;
}

/** Where npm's content-addressed cache keeps the tarball with this integrity (sha512 only). */
function cachedTarball(cacheDir: string, integrity: string): string | null {
  const m = /^sha512-(.+)$/.exec(integrity.split(/\s+/)[0] ?? '');
  if (m?.[1] === undefined) return null;
  const hex = Buffer.from(m[1], 'base64').toString('hex');
  const p = join(cacheDir, '_cacache', 'content-v2', 'sha512', hex.slice(0, 2), hex.slice(2, 4), hex.slice(4));
  return existsSync(p) ? p : null;
}

function cmpVersion(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export async function startLocalRegistry(root: string, dir: string): Promise<LocalRegistry> {
  mkdirSync(dir, { recursive: true });
  const cacheDir = execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).trim();
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> };
  const byName = new Map<string, Map<string, Version>>();
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (!path.includes('node_modules/') || entry['link'] === true) continue;
    const pdir = join(root, path);
    if (!existsSync(join(pdir, 'package.json'))) continue; // an optional package for another platform
    const manifest = JSON.parse(readFileSync(join(pdir, 'package.json'), 'utf8')) as Record<string, unknown>;
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const version = manifest['version'];
    if (typeof version !== 'string') continue;
    const versions = byName.get(name) ?? new Map<string, Version>();
    byName.set(name, versions);
    if (versions.has(version)) continue;
    const file = `${name.replace('/', '__')}-${version}.tgz`;
    const lockIntegrity = typeof entry['integrity'] === 'string' ? entry['integrity'] : '';
    const cached = cachedTarball(cacheDir, lockIntegrity);
    const tgz = join(dir, file);
    if (cached !== null) {
      copyFileSync(cached, tgz);
    } else {
      // The installed folder packed again (its own node_modules left out: those are packages of their own).
      execFileSync('tar', ['-czf', tgz, '--exclude=./node_modules', '--transform', 's,^\\.,package,', '-C', pdir, '.']);
    }
    const integrity = cached !== null ? lockIntegrity : `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`;
    versions.set(version, { manifest, file, integrity });
  }

  let base = '';
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/');
    if (path.startsWith('/-/')) {
      const file = path.slice(3);
      const found = [...byName.values()].flatMap((v) => [...v.values()]).find((v) => v.file === file);
      if (found === undefined) { res.writeHead(404).end(); return; }
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(readFileSync(join(dir, file)));
      return;
    }
    const name = path.slice(1);
    const versions = byName.get(name);
    if (versions === undefined) { res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}'); return; }
    const sorted = [...versions.keys()].sort(cmpVersion);
    const packument = {
      name,
      'dist-tags': { latest: sorted[sorted.length - 1] },
      versions: Object.fromEntries([...versions].map(([v, x]) => [v, {
        ...x.manifest, name, version: v, dist: { tarball: `${base}-/${x.file}`, integrity: x.integrity },
      }])),
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(packument));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  base = `http://127.0.0.1:${port}/`;
  return {
    url: base,
    packages: new Map([...byName].map(([n, v]) => [n, [...v.keys()]])),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
