/*
 * log/reopen-signal.ts - SIGUSR1 reopens the log file (logrotate's postrotate).
 *
 * Exports: installLogReopen(logger).
 * After logrotate renames the file, lines go on to the renamed one until the
 * screener opens log.file again by name: `kill -USR1 <pid>` in postrotate.
 * Installed for every destination: Node's default for SIGUSR1 starts the
 * inspector (a debugger port), which a mail server must not do on a signal
 * meant for its logs. Logged as LOG REOPEN (error level when the open failed:
 * the lines go on to the old file).
 */
import { Emitter } from './emit.js';
import { EV } from './events.js';
import { logOutput, type Logger } from './logger.js';

/** installLogReopen - SIGUSR1 reopens `logger`'s file destination; returns the function that removes the handler. */
export function installLogReopen(logger: Logger, file: string | null): () => void {
  const em = new Emitter(logger);
  const onSignal = (): void => {
    const out = logOutput(logger);
    if (out === undefined || out.kind !== 'file') return;
    out.reopen((err) => {
      if (err === null) em.emit(EV.LOG_REOPEN, { file });
      else em.emit(EV.LOG_REOPEN, { file, error: (err as NodeJS.ErrnoException).code ?? err.message }, 'error');
    });
  };
  process.on('SIGUSR1', onSignal);
  return () => process.off('SIGUSR1', onSignal);
}
