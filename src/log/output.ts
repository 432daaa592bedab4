/*
 * log/output.ts - the configured log destination, opened.
 *
 * Exports: openLogOutput(log), LogConfig.
 * stdout (log/out-fd.ts on descriptor 1), file (log.file, appended to,
 * reopened on SIGUSR1: log/reopen-signal.ts) or syslog (log/out-syslog.ts),
 * each bounded by log.buffer. A file that cannot be opened is a configuration
 * error naming log.file and the fix, never a stack trace.
 */
import type { Config } from '../config/types.js';
import { ScreenError } from '../util/errors.js';
import type { LineOut } from './out-base.js';
import { openFd, openFile } from './out-fd.js';
import { openSyslog } from './out-syslog.js';

export type LogConfig = Config['log'];

/** openLogOutput - the destination `log` names; throws SCR_ERR_CONFIG naming log.file when the file cannot be opened. */
export function openLogOutput(log: LogConfig): LineOut {
  switch (log.destination) {
    case 'stdout':
      return openFd(1, log.buffer);
    case 'syslog':
      return openSyslog(log.syslog.address.host, log.syslog.address.port, log.buffer, log.syslog.transport);
    case 'file': {
      const file = log.file;
      if (file === null) {
        throw new ScreenError('SCR_ERR_CONFIG', 'log.file: log.destination is file: set log.file to the file to append to', { key: 'log.file', value: null });
      }
      try {
        return openFile(file, log.buffer);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new ScreenError('SCR_ERR_CONFIG',
          `log.file: cannot open "${file}" for appending (${e.code ?? e.message}): create its directory and let the screener's user write there, or choose another log.file`,
          { key: 'log.file', value: file });
      }
    }
  }
}
