// The verifier/BTF log protocol shared by BPF_PROG_LOAD and BPF_BTF_LOAD, done the libbpf way:
//   1. Try without a log (level 0): the common case, success, costs no buffer.
//   2. On failure, retry with level 1 and a buffer, so the error carries the kernel's reason.
//   3. On ENOSPC the log did not fit: grow the buffer ×4 (or to log_true_size, 6.4+) up to 16 MiB
//      and retry. At the limit, keep what came back: since 6.4 the log rotates, so its tail (where
//      the reason is) survives.
// EAGAIN is retried a few times as libbpf does: the verifier returns it when a signal interrupts it.
import { BpfError, VerifierError } from './errors.ts';

export const LOG_INITIAL_SIZE = 64 * 1024;
export const LOG_MAX_SIZE = 16 * 1024 * 1024;
const EAGAIN_RETRIES = 5;

export interface LogRequest {
  /** 0: no log unless the load fails. 1, 2 (|4 for stats): always log at that level. */
  level: number;
  /** Initial buffer size when a log is wanted. */
  size?: number;
}

export interface LogAttempt {
  level: number;
  buffer: Buffer | null;
}

export interface LogOutcome {
  result: number;
  /** The log of the successful attempt, when one was requested (level > 0). */
  log: string[];
}

/** Split a log buffer (NUL-terminated, possibly without the NUL when full) into lines. */
export function logLines(buf: Buffer | null): string[] {
  if (!buf) return [];
  const end = buf.indexOf(0);
  const text = buf.toString('utf8', 0, end < 0 ? buf.length : end);
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/**
 * Run `attempt` (which issues the syscall with the given log level/buffer and returns the
 * result, or throws BpfError; `trueSize` reads back log_true_size when the kernel reports it)
 * under the protocol above. Failures become VerifierError when the kernel left a log.
 */
export function withLog(
  command: string,
  request: LogRequest,
  attempt: (a: LogAttempt) => { result?: number; error?: BpfError; trueSize: number },
  what?: string,
): LogOutcome {
  let level = request.level;
  let size = request.size ?? LOG_INITIAL_SIZE;
  let eagain = 0;
  for (;;) {
    const buffer = level > 0 ? Buffer.alloc(size) : null;
    const { result, error, trueSize } = attempt({ level, buffer });
    if (error === undefined) return { result: result!, log: logLines(buffer) };
    if (error.code === 'EAGAIN' && eagain++ < EAGAIN_RETRIES) continue;
    if (level === 0) {
      // Failed without a log: ask again with one (libbpf does the same).
      level = 1;
      continue;
    }
    if (error.code === 'ENOSPC' && size < LOG_MAX_SIZE) {
      size = Math.min(LOG_MAX_SIZE, Math.max(size * 4, trueSize));
      continue;
    }
    const lines = logLines(buffer);
    if (lines.length === 0) throw error; // not the verifier: EPERM, EBADF, a bad attr…
    const truncated = error.code === 'ENOSPC';
    throw new VerifierError(command, error.errno, lines, truncated, what);
  }
}
