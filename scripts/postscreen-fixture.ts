/*
 * scripts/postscreen-fixture.ts - make fixtures/syslog/postscreen-real.log: the
 * lines real Postfix postscreen(8) logs for the three clients of
 * test/helpers/log-clients.ts (clean, pregreet, hangup).
 *
 * Usage (as root, Postfix installed): node dist/scripts/postscreen-fixture.js > fixtures/syslog/postscreen-real.log
 * Starts a private Postfix (test/helpers/postfix.ts) with a postscreen service
 * on a free loopback port (greet action enforce, no access list so loopback is
 * screened, no DNSBL), runs the clients from 127.0.5.1-3 and prints the
 * postscreen lines of its mail log, which postlogd writes as syslog does:
 * "Mon DD HH:MM:SS host postfix/postscreen[pid]: ...".
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startPostfix, findExecutable } from '../test/helpers/postfix.js';
import { freePort } from '../test/helpers/ports.js';
import { runLogClients } from '../test/helpers/log-clients.js';

const run = promisify(execFile);
const GREET_WAIT_MS = 2000;

const pf = await startPostfix({
  main: {
    postscreen_access_list: '',
    postscreen_greet_action: 'enforce',
    postscreen_greet_wait: `${GREET_WAIT_MS / 1000}s`,
    postscreen_dnsbl_sites: '',
  },
});
try {
  const postconf = findExecutable('postconf') ?? 'postconf';
  const postfix = findExecutable('postfix') ?? 'postfix';
  const port = await freePort();
  await run(postconf, ['-c', pf.configDir, '-Me',
    `127.0.0.1:${port}/inet = 127.0.0.1:${port} inet n - n - 1 postscreen`,
    'smtpd/pass = smtpd pass - - n - - smtpd',
    'dnsblog/unix = dnsblog unix - - n - 0 dnsblog',
    'tlsproxy/unix = tlsproxy unix - - n - 0 tlsproxy']);
  await run(postfix, ['-c', pf.configDir, 'reload']);
  await new Promise((r) => setTimeout(r, 1500));
  await runLogClients(port, ['127.0.5.1', '127.0.5.2', '127.0.5.3'], GREET_WAIT_MS);
  await new Promise((r) => setTimeout(r, 1000));
  const lines = pf.maillog().split('\n').filter((l) => / postfix\/postscreen\[\d+\]: /.test(l));
  process.stdout.write(lines.join('\n') + '\n');
} finally {
  await pf.stop();
}
