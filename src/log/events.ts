/*
 * log/events.ts - every log event in one table: the monitoring interface.
 *
 * Exports: EVENTS (the table), EventSpec, EventLevel, EventName, EV (name
 *          constants, EV.NON_SMTP_COMMAND = 'NON-SMTP COMMAND'), evKey(name),
 *          eventSpec(name).
 * Every decision is one pino line with `event` set to a name of this table,
 * plus `client` and `port` when a client is involved (and `stress: true` for a
 * connection served by the stress personality). Each row says the level
 * log/emit.ts logs it at, its fields and the README's translation: `npm run
 * docs` writes the README's log event table from it (log/reference.ts) and the
 * docs test fails when they differ, so fields and texts are reviewed here.
 */

export type EventLevel = 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export interface EventSpec {
  /** As logged in `event`. */
  readonly name: string;
  /** The level emit() logs it at unless the call names another. */
  readonly level: EventLevel;
  /** Some calls log at another level: which, and when (README text following the level). */
  readonly also?: { readonly level: EventLevel; readonly when: string };
  /**
   * [field, one-line meaning], in README order. "name {a, b}" or "name [{a, b}]" shows a field's
   * shape; "/ name" starts the fields of another form of the event (or fields only some calls add).
   */
  readonly fields: ReadonlyArray<readonly [string, string]>;
  /** The README's Translation column: what the line means to the postmaster. */
  readonly translation: string;
}

const TABLE = [
  // ---- the process ----
  { name: 'STARTED', level: 'info', also: { level: 'warn', when: 'with `warning`' },
    fields: [['listen', 'every listener as bound, "host:port"'], ['backend', 'the backend, "host:port" (the built-in sink as bound)'],
      ['handoff', 'backend.handoff'], ['pid', 'the process id'], ['fd_limit', 'the soft file descriptor limit, null when unknown'],
      ['stress {enter, leave, limit}', 'the stress watermarks as connection counts'],
      ['admin', 'the admin listeners as bound, "host:port" (only with admin.listen)'],
      ['user', '`smtpscreen run`: the user it runs as from now on (null: not switched)'], ['uid', 'its effective uid'], ['gid', 'its effective gid'],
      ['warning', 'why the configuration does not work as written (at warn)'],
      ['workers [{worker, pid}]', 'with `workers` above 1: the worker processes (from the primary)'],
      ['accept', 'with `workers` above 1: `workers_accept`, shared (each worker accepts) or primary (the primary accepts and hands over)']],
    translation: 'The listeners are bound (ports as bound: port 0 in the config gives a free port). `stress`: the stress ' +
      'watermarks as connection counts. Logged at warn, with `warning`, when `limits.max_connections` exceeds the ' +
      'clients the file descriptor limit allows ((limit − 64) / 2: each may need a backend descriptor too), or when ' +
      '`admin.allow_remote` is on without `admin.token` or `admin.token_file` (anyone who reaches the admin port reads it).' },
  { name: 'START FAILED', level: 'fatal',
    fields: [['code', 'the error code (SCR_ERR_CONFIG, EADDRINUSE, ...)'], ['message', 'what failed, naming the key or file']],
    translation: 'Start-up failed (port in use, unreadable access list, a file or a backend the configuration needs); exit 2. ' +
      'A configuration with a bad or refused value (exit 1) is logged too, in JSON.' },
  { name: 'STOPPING', level: 'info',
    fields: [['signal', 'the signal received (close: stopped by the program)'], ['open', 'sessions still open'],
      ['drain_ms', 'how long they may take'], ['workers', 'with `workers` above 1, from the primary: the workers told to drain (each logs its own STOPPING)']],
    translation: 'A signal arrived: no more accepts; `open` sessions get up to `drain_ms`.' },
  { name: 'STOPPED', level: 'info',
    fields: [['forced', 'sessions cut at the drain deadline (or by a second stop signal)']],
    translation: 'Done; `forced` sessions were cut at the drain deadline (or by a second stop signal).' },
  { name: 'SIGNAL', level: 'warn',
    fields: [['signal', 'a second SIGTERM/SIGINT, or SIGHUP while stopping'], ['action', 'cut or ignored'], ['reason', 'what it did and why']],
    translation: 'A signal that does not start a stop. `action: cut` for a second SIGTERM/SIGINT during the drain: the open ' +
      'sessions are cut now, then the snapshot is written and the exit is 0 as usual. `action: ignored` for a SIGHUP ' +
      'while stopping (SIGHUP otherwise reloads: RELOAD).' },
  { name: 'RELOAD', level: 'info', also: { level: 'error', when: 'for `ok: false` (warn with `restart_needed`)' },
    fields: [['ok', 'true: new connections get the new configuration'], ['generation', 'the configuration generation serving new connections (1 at start)'],
      ['changed', 'the keys whose value changed'], ['added', 'listeners bound, "host:port"'], ['removed', 'listeners closed (their sessions finish)'],
      ['access_entries', 'entries of the access list as read again'], ['dnsbl', 'kept (same sites and resolver: cache and site health kept), new or none'],
      ['backend', 'the backend new handoffs go to'], ['restart_needed', 'changed keys only a restart applies (at warn)'],
      ['/ error', 'why the reload failed (ok: false)'], ['code', 'the error code']],
    translation: 'SIGHUP: the configuration file and the access list were read again. `ok: true`: new connections get the new ' +
      'configuration (sessions in flight finish with the one they started with; the verdict cache is kept); `changed` ' +
      'lists the keys, `added`/`removed` the listeners. `restart_needed` (at warn): keys a running screener cannot apply ' +
      '(`cache.max_entries`, `cache.store`, `cache.redis.*`, `log.*`, `user`, `group`, `allow_root`, `admin.listen`, `admin.socket`, `workers`). `ok: false` (at error): the file, the access list, a ' +
      'certificate or a new listener failed (`error` names it: after the drop to `user`, a new port below 1024 cannot be ' +
      'bound); the screener goes on with the configuration it had.' },
  { name: 'ACCEPT ERROR', level: 'error',
    fields: [['code', 'EMFILE, ENFILE, or the code the listener reported'], ['message', 'the error text'],
      ['listener', 'the listener, "host:port"'], ['count', 'accept errors since the last such line']],
    translation: 'Accepting is failing: `EMFILE` when the descriptors smtpscreen holds, plus a backend descriptor for every ' +
      'client that may still be handed over, come within 64 of the process limit (new ' +
      'clients then get `421 4.3.2 All server ports are busy`), or an error the listener reported. `count` since the ' +
      'last such line, at most one a second. The accept loop goes on.' },
  { name: 'INTERNAL ERROR', level: 'error',
    fields: [['where', 'the handler that threw (process: caught at the process level, no client)'], ['phase', 'the phase of the session'],
      ['error', 'the error message'], ['stack', 'its stack trace']],
    translation: 'A handler threw: that session got `421 4.3.2` and was closed, the process goes on; `where` names the ' +
      'handler (`process`: caught at the process level). A bug: please report it.' },
  { name: 'LOG DROPPED', level: 'warn',
    fields: [['dropped', 'lines dropped since the last such line'], ['total', 'lines dropped since start'],
      ['destination', 'stdout, file or syslog (log.destination)']],
    translation: 'The log destination could not keep up (a reader that stopped reading, a slow disk, a syslog daemon that ' +
      'is not listening): `dropped` lines did not fit in `log.buffer` and were thrown away rather than stall the ' +
      'screener. Logged once the destination has caught up again.' },
  { name: 'LOG REOPEN', level: 'info', also: { level: 'error', when: 'with `error`' },
    fields: [['file', 'log.file'], ['error', 'why it could not be opened (at error: lines go on to the old file)']],
    translation: 'SIGUSR1 (logrotate\'s postrotate): `log.file` was opened again by name, so lines go to the new file. At error ' +
      'the file could not be opened (`error`), and lines go on to the old one.' },
  { name: 'WORKER STARTED', level: 'info',
    fields: [['worker', 'the worker index (0-based)'], ['pid', 'its process id'], ['restarts', 'how many times this index was forked again']],
    translation: 'With `workers` above 1, from the primary: a worker is ready and gets connections from now on (at start, once per ' +
      'worker before STARTED; later, after a restart).' },
  { name: 'WORKER EXITED', level: 'error',
    fields: [['worker', 'the worker index'], ['pid', 'its process id'], ['code', 'its exit code (null when killed by a signal)'],
      ['signal', 'the signal that killed it, or null'], ['uptime_ms', 'how long it ran'], ['open', 'connections it held (cut)'],
      ['restart_in_ms', 'when it is forked again: 0 after a long run, a doubling delay (1 s to 60 s) after a short one; null during start-up']],
    translation: 'With `workers` above 1, from the primary: a worker died outside a stop. Its `open` clients were cut (they retry, ' +
      'as after any lost connection); the other workers\' clients go on. Its networks go to the next worker until it is back. ' +
      'During start-up the start fails instead (START FAILED).' },
  // ---- one connection ----
  { name: 'CONNECT', level: 'info',
    fields: [['client', 'the client address'], ['port', 'the client port'], ['local', 'the address it connected to'],
      ['local_port', 'the port it connected to']],
    translation: 'A client connected (after any PROXY header: the real client).' },
  { name: 'ALL PORTS BUSY', level: 'info',
    fields: [['client', 'the client address'], ['port', 'the client port'],
      ['count', 'connections open (with `workers_accept: shared`: this worker\'s plus the others\' as last reported)'],
      ['limit', 'which limit: connections (limits.max_connections) or fds (the file descriptor limit)']],
    translation: 'Over `limits.max_connections` (`limit: connections`) or near the file descriptor limit (`limit: fds`, ' +
      'see ACCEPT ERROR): 421 and close. With `workers` above 1 it comes from the primary (`workers_accept: primary`) or ' +
      'from the worker that accepted (`shared`, with its `worker`).' },
  { name: 'TOO MANY CONNECTIONS', level: 'info',
    fields: [['client', 'the client address'], ['port', 'the client port'],
      ['count', 'connections of this address already open (with `workers_accept: shared`: on the host, as last reported, when that is more)']],
    translation: 'Over `limits.max_per_client` for this address: 421 and close.' },
  { name: 'PROXY FAIL', level: 'warn',
    fields: [['peer', 'the address that sent the header'], ['port', 'its port'], ['reason', 'malformed: <why>, timeout or untrusted'],
      ['listener', 'the listener, "host:port"']],
    translation: 'A PROXY header was malformed (`malformed: <why>`), late (`timeout`) or from an untrusted peer (`untrusted`): ' +
      'closed.' },
  { name: 'ALLOWLISTED', level: 'info',
    fields: [['entry', 'the access list entry that matched']],
    translation: 'A `permit` entry matched: handed over at once.' },
  { name: 'ALLOWLIST SPF', level: 'info', also: { level: 'warn', when: 'with `error`' },
    fields: [['domain', 'the access.spf domain'], ['entries', 'netblocks now permitted for it'], ['added', 'netblocks new since the last walk'],
      ['removed', 'netblocks gone since the last walk'], ['next_ms', 'ms until the next walk'], ['lookups', 'DNS-querying terms the walk used (at most 10)'],
      ['skipped', 'terms not collected (macro, ptr, exists, not a pass, +all, wider than /8 or /16), at most 20'],
      ['error', 'why the walk failed: the last good set is kept'], ['temporary', 'true: a DNS error; false: a broken record'],
      ['dropped', 'true: the domain left access.spf (a reload)']],
    translation: 'A domain of `access.spf` was walked: logged the first time, when its netblocks changed, when a walk failed (`error`, ' +
      'the previous set stays) and when a reload dropped the domain.' },
  { name: 'DENYLISTED', level: 'info',
    fields: [['entry', 'the access list entry that matched'], ['action', 'access.action: enforce, drop, ignore or shadow'], ['would', 'with action shadow: reject, drop (what the configured action would have done)']],
    translation: 'A `reject` entry matched; `action` says what follows (`shadow`: logged with `would`, the tests go on as if it were not listed).' },
  { name: 'PASS OLD', level: 'info', fields: [['tier', 'shared: the record came from Redis (cache.store: redis), not from this process']],
    translation: 'Every enabled test has an unexpired pass: handed over at once. With `tier: shared` the pass was found in the shared ' +
      'store (another screener saw the client) once its answer came, during the greet wait.' },
  { name: 'PASS NEW', level: 'info',
    fields: [['dnsbl_score', 'the DNSBL score'], ['dnsbl_late', 'the sites that had not answered'],
      ['allowlisted', 'true: the score reached dnsbl.allowlist_threshold'], ['/ deep', 'the deep tests passed']],
    translation: 'The client passed the tests now; remembered, handed over. With DNSBL sites: its score, the sites that had not ' +
      'answered (then the DNSBL pass is not remembered), and `allowlisted` when the score reached ' +
      '`dnsbl.allowlist_threshold` and ended the greet wait early. With `deep` (the deep tests it passed): logged ' +
      'when its dummy session ends; it was not handed over, its next connection is a `PASS OLD`.' },
  { name: 'PREGREET', level: 'info',
    fields: [['bytes', 'bytes sent before the greeting was complete'], ['after_ms', 'when the first came, after connecting'],
      ['sample', 'the start, escaped'], ['action', 'pregreet.action'], ['would', 'with action shadow: reject, drop (what the configured action would have done)']],
    translation: 'The client sent `bytes` bytes `after_ms` after connecting, before the greeting was complete; `sample` is the ' +
      'start, escaped.' },
  { name: 'PREGREET LIMIT', level: 'info',
    fields: [['bytes', 'bytes sent before the greeting so far'], ['kept', 'the early bytes kept (4096)'],
      ['discarded', 'bytes read past that and not kept'], ['action', 'pregreet.action'], ['outcome', '421 (ignore) or dummy (enforce)']],
    translation: 'The client sent more than 4 KiB before the greeting: what came past the first 4 KiB is read and ' +
      'discarded, not kept (each client\'s early bytes cost at most 4 KiB; `discarded` counts them when this is logged). Under `ignore` its stream could not reach ' +
      'the backend whole: `421 4.7.0 <host> Error: too much data before the greeting` and close. Under `enforce` the ' +
      'dummy engine goes on (it accepts no mail, so the gap costs nothing). Once per session.' },
  { name: 'HANGUP', level: 'info',
    fields: [['after_ms', 'time since connecting'], ['phase', 'pregreet, dummy, handoff, or accept (before it was a session)'],
      ['reason', 'at accept: why (peer address unreadable)']],
    translation: 'The client left `after_ms` after connecting, during `phase` (pregreet, dummy, handoff). Not a failure. ' +
      '`phase: accept` (no client, no port): the peer reset the connection before it was accepted (a port scanner), so ' +
      'its address could not be read; it never becomes a session.' },
  { name: 'NOQUEUE', level: 'info',
    fields: [['reply', 'the reply to RCPT'], ['helo', 'the HELO/EHLO name'], ['from', 'the MAIL FROM address'],
      ['to', 'the RCPT TO address'], ['proto', 'SMTP or ESMTP'], ['reason', 'why the recipient was refused']],
    translation: 'The dummy engine refused a recipient; the envelope is logged. `reason`: the enforced failure (denylist, ' +
      'pregreet, dnsbl, pipelining, non_smtp, bare_newline) with its 550, or why a client still under test gets the ' +
      '450: greylist, deep (deep tests to pass first).' },
  { name: 'DATA WITHOUT VALID RCPT', level: 'info',
    fields: [['command', 'DATA or BDAT'], ['helo', 'the HELO/EHLO name'], ['from', 'the MAIL FROM address']],
    translation: 'The client sent DATA (or BDAT) after MAIL although the dummy engine refused every recipient (and never offered ' +
      'PIPELINING): `554 5.5.1 Error: no valid recipients` and close. A legitimate client never does this. Postscreen format: ' +
      '`DATA without valid RCPT from [addr]:port`, as postscreen logs it.' },
  { name: 'COMMAND TIME LIMIT', level: 'info',
    fields: [['after', 'the last command before the wait']],
    translation: 'The client took longer than `dummy.command_time_limit` for one command: 421 and close.' },
  { name: 'COMMAND COUNT LIMIT', level: 'info',
    fields: [['after', 'the last command'], ['count', 'commands so far'], ['limit', 'dummy.command_count_limit']],
    translation: 'More than `dummy.command_count_limit` commands: 421 and close.' },
  { name: 'COMMAND LENGTH LIMIT', level: 'info',
    fields: [['after', 'the last command'], ['length', 'the line\'s length in bytes']],
    translation: 'A line longer than `dummy.line_length_limit`: 421 and close.' },
  { name: 'COMMAND ERROR LIMIT', level: 'info',
    fields: [['after', 'the last command'], ['count', 'error replies so far'], ['limit', 'dummy.hard_error_limit']],
    translation: 'The client got `dummy.hard_error_limit` error replies (4xx/5xx, refused recipients included): `421 4.7.0 ' +
      '<host> Error: too many errors` and close.' },
  { name: 'TLS FAIL', level: 'info',
    fields: [['reason', 'the OpenSSL error code, timeout, or busy'], ['after_ms', 'time since STARTTLS'], ['limit', 'tls.max_handshakes (busy only)']],
    translation: 'STARTTLS in the dummy engine (`tls.cert`, `tls.key`) was accepted but the TLS handshake failed (`reason`: the ' +
      'OpenSSL error code, e.g. a client that sent garbage instead of a ClientHello) or did not finish within ' +
      '`dummy.command_time_limit` (`reason: timeout`); or `tls.max_handshakes` handshakes were already in progress ' +
      '(`reason: busy`, the client got 421 instead of 220); the session is closed, the screener goes on.' },
  { name: 'COMMAND PIPELINING', level: 'info',
    fields: [['after', 'the command'], ['sample', 'the input sent with it, escaped'], ['action', 'deep.pipelining.action'], ['would', 'with action shadow: reject, drop (what the configured action would have done)']],
    translation: 'Deep test: the client sent more input with the command `after` (before our reply); `sample` is that input, ' +
      'escaped. `action` follows.' },
  { name: 'NON-SMTP COMMAND', level: 'info',
    fields: [['after', 'the previous command'], ['sample', 'the line, escaped'], ['action', 'deep.non_smtp.action'], ['would', 'with action shadow: reject, drop (what the configured action would have done)']],
    translation: 'Deep test: after the command `after`, a line that is no SMTP (a forbidden verb such as `GET`, a header-like ' +
      '`Name: value`, a verb that is not UTF-8); `sample` is the line, escaped.' },
  { name: 'BARE NEWLINE', level: 'info',
    fields: [['after', 'the previous command'], ['sample', 'the line, escaped'], ['action', 'deep.bare_newline.action'], ['would', 'with action shadow: reject, drop (what the configured action would have done)']],
    translation: 'Deep test: after the command `after`, a line ended by LF without CR; `sample` is the line, escaped.' },
  { name: 'HANDOFF', level: 'info',
    fields: [['backend', 'the backend, "host:port"'], ['mode', 'backend.handoff'],
      ['verdict', 'allowlisted, old, new, ignored or untested'], ['code', 'the reply code the client got from the backend'],
      ['handshake_ms', 'time from the backend connect to the splice'], ['/ after', 'RCPT: a same-connection handoff'],
      ['relayed', 'the replayed command whose reply the client got: MAIL or RCPT'], ['/ route', 'the route the policy service named'],
      ['/ backend_name', 'with backends: configured, the backend\'s name (default or a backends[].name)'], ['rule', 'the index of the routes: rule that chose it (none: no rule matched)']],
    translation: "The backend took the client (`verdict`: allowlisted, old, new, ignored, untested); `code` is its greeting's. " +
      "After a same-connection handoff (`deep.after_pass: handoff`): `after: RCPT`, and `code` is the backend's reply " +
      'to the replayed RCPT (`relayed: RCPT`) or MAIL (`relayed: MAIL`, a refused sender), which the client got as ' +
      'its RCPT reply.' },
  { name: 'ROUTE FALLBACK', level: 'warn',
    fields: [['rule', 'the index of the routes: rule'], ['backend_name', 'the backend it names'], ['backend', 'its address, "host:port"'],
      ['to', 'default (the default backend took the client) or tempfail (the client got 421)']],
    translation: 'The routes: rule `rule` sent the client to `backend_name`, which its probe finds down (BACKEND FAIL with `probe: true`); ' +
      'by routes_fallback the client went to the default backend (`to: default`) or got 421 and retries later (`to: tempfail`).' },
  { name: 'HANDOFF FALLBACK', level: 'info',
    fields: [['reason', 'why the handoff could not be exact'], ['stage', 'where: start, connect, greeting, xclient, helo, mail, rcpt']],
    translation: '`deep.after_pass: handoff` could not hand the client over exactly (`reason`: tls, backend EHLO not learned, ' +
      'backend does not offer XCLIENT, stopping, backend no longer offers KEYWORD, backend: <failure>) at `stage` ' +
      '(start, connect, greeting, xclient, helo, mail, rcpt); the client gets the 450 as with `reconnect` and its ' +
      'retry is a `PASS OLD`.' },
  { name: 'BACKEND FAIL', level: 'info', also: { level: 'warn', when: 'from the backend probe (`probe: true`)' },
    fields: [['backend', 'the backend, "host:port"'], ['stage', 'connect, greeting, proxy, xclient, helo, mail or rcpt; the probe: connect, greeting, ehlo'],
      ['reason', 'handoff mode, the error code, timeout, closed, malformed reply, or the reply that failed'],
      ['detail', 'with handoff mode: what the backend answered and the fix'],
      ['/ probe', 'true: the backend probe found it down'], ['retry_ms', 'when the probe asks again']],
    translation: 'The backend could not be reached or failed the handshake at `stage` (connect, greeting, proxy: the NOOP ' +
      'that follows a PROXY header, xclient; in a same-connection handoff also helo, mail, rcpt); `reason`: the socket ' +
      'error code (e.g. `ECONNREFUSED`), `timeout`, `closed` (the backend ended the connection), `malformed reply: <why>`, ' +
      'the backend\'s refusing reply, or `handoff mode`: the backend speaks another handoff protocol than `backend.handoff` ' +
      '(it answered the PROXY header as SMTP commands, refused XCLIENT, or greets only after a PROXY header), `detail` ' +
      "says what it answered and the fix. The client got 421 (or, in a same-connection handoff, the fallback's 450). " +
      'With `probe: true` (at warn) the backend probe found it down: probed at start, every `retry_ms` (a minute) while ' +
      'down, and at once when a handoff fails while it was up; logged once per outage (and when the reason changes), `BACKEND OK` when it answers.' },
  { name: 'BACKEND OK', level: 'info',
    fields: [['backend', 'the backend, "host:port"'], ['mode', 'backend.handoff, which it speaks'],
      ['/ down_ms', 'since the probe first found it down (a recovery)']],
    translation: 'The backend answers the probe in the configured handoff mode: at start (the first probe), or again after a ' +
      '`BACKEND FAIL` with `probe: true` (with `down_ms`; once per outage).' },
  { name: 'BACKEND EHLO', level: 'info', also: { level: 'warn', when: 'for `state: failed` and with `warning`' },
    fields: [['backend', 'the backend, "host:port"'], ['state', 'learned, changed or failed'],
      ['offered', 'the EHLO keywords the dummy engine now offers'], ['xclient', 'the XCLIENT attributes the backend offers, null: none'],
      ['warning', 'why every handoff would fail (at warn)'], ['/ reason', 'why the backend could not be asked'],
      ['retry_ms', 'when it is asked again']],
    translation: "`deep.after_pass: handoff`: the backend's EHLO reply was `learned` (at start) or has `changed`; `offered` are " +
      'the keywords the dummy engine now offers, `xclient` the XCLIENT attributes the backend offers (null: none; ' +
      'with `backend.handoff: xclient` that is logged at warn with a `warning`: every handoff would fail). `state: ' +
      'failed` (at warn): the backend could not be asked (`reason`); asked again every `retry_ms`.' },
  { name: 'DISCONNECT', level: 'info',
    fields: [['duration_ms', 'time since connecting'], ['bytes_in', 'bytes from the client'], ['bytes_out', 'bytes to the client'],
      ['phase', 'the phase the session ended in']],
    translation: 'The connection closed; bytes from and to the client.' },
  { name: 'SOCKET ERROR', level: 'debug',
    fields: [['code', 'the socket error code (ECONNRESET, EPIPE, ...)'], ['phase', 'the phase of the session']],
    translation: 'A network error on a socket of the session, e.g. the client reset the connection. Expected on the Internet, ' +
      'hence at debug; DISCONNECT follows.' },
  // ---- the screener's state ----
  { name: 'CACHE', level: 'info', also: { level: 'error', when: 'for `op: error`' },
    fields: [['op', 'load, save or error'], ['file', 'the snapshot file'], ['entries', 'records loaded or saved'],
      ['skipped', 'corrupt lines skipped at load'], ['expired', 'records dropped as expired'],
      ['removed_temps', 'at load: leftover temp files of crashed saves deleted'],
      ['/ error', 'why it failed'], ['during', 'load or save'], ['set_aside', 'where a corrupt snapshot was moved']],
    translation: 'The snapshot was loaded or saved, or failed (`op: error`). `removed_temps`: at load, the temp files that ' +
      'saves cut short by a crash had left (`.<file>.tmp-<pid>` beside the snapshot), now deleted.' },
  { name: 'STORE FAIL', level: 'warn',
    fields: [['store', 'redis'], ['url', 'the Redis URL, without its password'], ['reason', 'why: the connection\'s error, closed, or timeout (an answer later than cache.redis.timeout)']],
    translation: 'The shared store stopped answering in time. Sessions go on as if it had no record (verdicts from this process\'s ' +
      'memory, greylisting decided here); nobody is rejected for it. Verdicts to write wait (up to `cache.redis.pending_writes`, the ' +
      'newest per client); the client reconnects in the background. Once per transition: STORE OK follows when it answers again.' },
  { name: 'STORE OK', level: 'info',
    fields: [['store', 'redis'], ['url', 'the Redis URL, without its password'], ['down_ms', 'how long it was failing (absent at the first connection)'],
      ['timeouts', 'lookups that ran past the deadline meanwhile'], ['flushed', 'waiting verdicts written now'],
      ['dropped', 'verdicts not written: more than cache.redis.pending_writes waited, or a write failed twice']],
    translation: 'The shared store answers (at start: it is connected). After a STORE FAIL: how long it was away, what that cost.' },
  { name: 'CACHE ADMIN', level: 'info',
    fields: [['op', 'delete, pass or import'], ['address', 'the client address (delete, pass)'], ['ttl_ms', 'pass: how long'],
      ['entries', 'import: records imported'], ['skipped', 'import: lines that were no snapshot record'],
      ['by', 'socket (the running screener, through admin.socket) or offline (the snapshot of a stopped screener)'], ['file', 'offline: the snapshot file']],
    translation: '`smtpscreen cache` changed the verdict cache: a client forgotten (`delete`: its next connection is screened ' +
      'again), passed by hand (`pass`: every test passed for `ttl_ms`, its next connection is PASS OLD) or records imported.' },
  { name: 'DNSBL', level: 'info',
    fields: [['score', 'the summed weights'], ['hits [{site, weight, records}]', 'the sites that listed the client, with their answers'],
      ['action', 'dnsbl.action'], ['would', 'with action shadow: reject, drop (what the configured action would have done)'], ['lookup_ms', 'time the lookups took'], ['late', 'the sites that had not answered']],
    translation: "The client's DNSBL score reached `dnsbl.threshold`: `hits` are the sites that listed it with their weights and " +
      'answers; `late` the sites whose answer had not arrived (counted as not listed). `action` follows.' },
  { name: 'DNSBL SITE', level: 'warn', also: { level: 'info', when: 'for `state: resumed`' },
    fields: [['site', 'the DNSBL domain'], ['state', 'suspended or resumed'], ['reason', 'why']],
    translation: 'A site was suspended (its probe failed or it answered errors `dnsbl.health.error_limit` times in a row: its ' +
      'weight counts as zero) or resumed (its probe passed).' },
  { name: 'DNSBL WARNING', level: 'warn',
    fields: [['site', 'the DNSBL domain'], ['reason', 'error-answer, slow or overload'], ['value', 'the reserved answer (error-answer)'],
      ['lookup_ms', 'how long the answer took (slow)'], ['/ count', 'lookups of the site that ran out of time in our resolver queue since the last such line (overload)'],
      ['total', 'such lookups since start, all sites']],
    translation: "A site gave a reserved error answer (`error-answer`, e.g. Spamhaus's 127.255.255.254 for queries through " +
      'public resolvers: never a listing) or was slower than `dnsbl.slow_warning` (`slow`), at most once a minute per ' +
      'site and reason; or lookups of the site ran out of time in smtpscreen\'s own resolver queue (`overload`: a burst ' +
      'beyond what the resolver sends at once), at most once a second per site. Overload is not the site\'s fault: it never ' +
      'counts against its health.' },
  { name: 'GREYLIST', level: 'info',
    fields: [['network', 'the client network greylisting keys on'], ['state', 'defer or pass'], ['reason', 'new, early or expired'],
      ['wait_ms', 'time left before a retry is accepted'], ['delay_ms', 'time between the first try and this retry'],
      ['action', 'shadow (greylist.action or mode shadow; only then)'], ['would', 'defer (with action shadow)']],
    translation: 'Greylisting: `state: defer` (`reason` new, early with `wait_ms` left, or expired: the 450 follows at RCPT and ' +
      'NOQUEUE logs the envelope) or `state: pass` (a retry from `network` after `delay_ms`, within the window). With ' +
      '`action: shadow, would: defer` the deferral was shadowed: the client was handed over, its first try is recorded.' },
  { name: 'POLICY', level: 'info',
    fields: [['decision', 'permit, route, reject, defer or dunno'], ['action', 'policy.action (reject and defer)'],
      ['reply', 'the service\'s text'], ['route', 'the route name (route)'], ['ttl_ms', 'how long the reply is cached'],
      ['cached', 'true: from the cache, not asked'], ['lookup_ms', 'time the call took'], ['failure', 'the call failed: timeout, error, status, bad-reply, breaker open (policy.fail decides)'],
      ['/ stage', 'rcpt: asked at RCPT (policy.at_rcpt)'], ['helo', 'the HELO name'], ['from', 'MAIL FROM'], ['to', 'RCPT TO']],
    translation: 'The policy service\'s decision for a client under test: `permit` and `route` hand it over now (as an allowlist; ' +
      '`route` is matched by `routes:` rules with `policy_route`), `reject` and `defer` fail it under `action`, `dunno` leaves it to the ' +
      'other tests (logged only with `failure`: the call failed and `policy.fail: open` made it a dunno). With `stage: rcpt`: ' +
      'asked at RCPT in the dummy engine.' },
  { name: 'POLICY WARNING', level: 'warn',
    fields: [['reason', 'slow, timeout, error, status, bad-reply or busy'], ['detail', 'what failed'], ['lookup_ms', 'time the call took'],
      ['count', 'such calls since the last such line'], ['in_flight', 'calls waiting (busy)'], ['limit', 'policy.max_in_flight (busy)']],
    translation: 'The policy service was slower than `policy.slow_warning` (`slow`), did not answer within `policy.budget` ' +
      '(`timeout`), failed (`error`: connection refused or closed; `status`: not HTTP 200; `bad-reply`: not a valid reply), ' +
      'or a client was not asked because `policy.max_in_flight` calls were waiting (`busy`: dunno at once). At most once ' +
      'a second per reason; `count` since the last line.' },
  { name: 'POLICY BREAKER', level: 'info', also: { level: 'warn', when: 'for `state: open`' },
    fields: [['state', 'open, half-open or closed'], ['reason', 'why it opened'], ['open_ms', 'how long no call is made'],
      ['down_ms', 'since it opened (closed)']],
    translation: '`open` (at warn): `policy.breaker.failures` calls failed within `policy.breaker.window`, or the probe failed: ' +
      'no call for `open_ms`, every client gets what `policy.fail` says. `half-open`: the next client\'s call is the probe. ' +
      '`closed`: the probe was answered, calls resume.' },
  { name: 'STRESS', level: 'info', also: { level: 'warn', when: 'for `state: enter`' },
    fields: [['state', 'enter or leave'], ['count', 'connections open'], ['limit', 'the connection limit'],
      ['threshold', 'the watermark crossed']],
    translation: '`state: enter` (at warn): `count` open connections reached `threshold` (`stress.enter_at` of `limit`), and new ' +
      'connections get the stress personality. `state: leave`: the count fell to `threshold` (`stress.leave_at`), and ' +
      'new connections are normal again. Once per transition; postscreen format: `entering STRESS mode with 9 ' +
      'connections`.' },
] as const satisfies readonly EventSpec[];

/** The table, in README order. */
export const EVENTS: readonly EventSpec[] = TABLE;

export type EventName = (typeof TABLE)[number]['name'];

/** "NON-SMTP COMMAND" -> "NON_SMTP_COMMAND": the EV key of a name. */
type Key<S extends string> =
  S extends `${infer A} ${infer B}` ? Key<`${A}_${B}`> : S extends `${infer A}-${infer B}` ? Key<`${A}_${B}`> : S;

export function evKey(name: string): string {
  return name.replace(/[ -]/g, '_');
}

/** Name constants, so that a misspelt event does not compile: EV.PASS_NEW === 'PASS NEW'. */
export const EV = Object.freeze(Object.fromEntries(TABLE.map((e) => [evKey(e.name), e.name]))) as
  { readonly [N in EventName as Key<N>]: N };

const BY_NAME: ReadonlyMap<string, EventSpec> = new Map(TABLE.map((e) => [e.name, e]));

/** The row of an event name, or undefined. */
export function eventSpec(name: string): EventSpec | undefined {
  return BY_NAME.get(name);
}
