/*
 * config/policy-url.ts - policy.url: where the HTTP policy service is.
 *
 * Exports: parsePolicyUrl().
 * Either http://HOST:PORT/PATH, or unix:/SOCKET[:/PATH] for HTTP over a Unix
 * socket (Postfix names its policy sockets unix:/path too); the HTTP path
 * after the socket is optional ("/"); the socket path ends at the last ":/".
 * The result has the shape net/policy-http.ts PolicyTarget takes.
 */

/** http://host:port/path or unix:/socket[:/path]; a string saying what is wrong otherwise. */
export function parsePolicyUrl(url: string): { origin: string; path: string; socketPath: string | null } | string {
  if (url.startsWith('unix:')) {
    const rest = url.slice(5);
    if (!rest.startsWith('/')) return 'want unix:/ABSOLUTE/SOCKET[:/PATH]';
    const i = rest.lastIndexOf(':/');
    const socketPath = i <= 0 ? rest : rest.slice(0, i);
    const path = i <= 0 ? '/' : rest.slice(i + 1);
    if (socketPath.length < 2) return 'the socket path is empty';
    return { origin: 'http://localhost', path, socketPath };
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'want http://HOST:PORT/PATH or unix:/SOCKET:/PATH';
  }
  if (u.protocol !== 'http:') return `scheme ${u.protocol} is not supported (http: or unix:; TLS to a local policy service buys nothing)`;
  if (u.username !== '' || u.password !== '') return 'credentials in the URL are not supported';
  return { origin: u.origin, path: `${u.pathname}${u.search}`, socketPath: null };
}

