// Typed errors of the syscall layer. Each message is one line that says what failed and, where the
// errno has a usual cause for that command, what to do about it.
import { constants } from 'node:os';

const errnoNames = new Map<number, string>();
// Aliases share a number (EWOULDBLOCK = EAGAIN, ENOTSUP = EOPNOTSUPP); the kernel's name comes first.
for (const [name, value] of [['EAGAIN', 11], ['EOPNOTSUPP', 95], ['EDEADLK', 35], ...Object.entries(constants.errno)] as [string, number][]) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

/** strerror(3) text (glibc's wording, lower-cased) for the errnos bpf() returns. */
const descriptions: Record<string, string> = {
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  ESRCH: 'no such process',
  EINTR: 'interrupted system call',
  EIO: 'input/output error',
  E2BIG: 'argument list too long',
  EBADF: 'bad file descriptor',
  EAGAIN: 'resource temporarily unavailable',
  ENOMEM: 'cannot allocate memory',
  EACCES: 'permission denied',
  EFAULT: 'bad address',
  EBUSY: 'device or resource busy',
  EEXIST: 'file exists',
  ENODEV: 'no such device',
  ENOTDIR: 'not a directory',
  EINVAL: 'invalid argument',
  ENFILE: 'too many open files in system',
  EMFILE: 'too many open files',
  ENOSPC: 'no space left on device',
  ERANGE: 'numerical result out of range',
  ENOSYS: 'function not implemented',
  ELOOP: 'too many levels of symbolic links',
  ENOTSUP: 'operation not supported',
  EOPNOTSUPP: 'operation not supported',
  ENOTSUPP: 'operation not supported', // kernel-internal 524, leaks out of bpf()
  EXDEV: 'invalid cross-device link',
};

export function errnoName(errno: number): string {
  if (errno === 524) return 'ENOTSUPP';
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

export function describeErrno(errno: number): string {
  const name = errnoName(errno);
  return descriptions[name] ?? name;
}

/** The usual cause of `errno` from `command`, when there is one worth a line. */
function hint(command: string, errno: number): string | undefined {
  const name = errnoName(errno);
  if (name === 'EPERM') return 'needs CAP_BPF / root';
  // From BPF_PROG_LOAD EACCES is the verifier's verdict, from BPF_OBJ_* the file's mode.
  if (name === 'EACCES' && command !== 'BPF_PROG_LOAD' && !command.startsWith('BPF_OBJ_')) return 'needs CAP_BPF / root';
  if (name === 'E2BIG' && command === 'BPF_MAP_UPDATE_ELEM') return 'the map is full (max_entries)';
  if (name === 'E2BIG') return 'attr sets a field this kernel does not know (kernel too old for this feature)';
  if (name === 'EEXIST' && command === 'BPF_MAP_UPDATE_ELEM') return 'the key exists (BPF_NOEXIST)';
  if (name === 'ENOENT' && command === 'BPF_MAP_UPDATE_ELEM') return 'no such key (BPF_EXIST)';
  if (name === 'ENOTSUPP' || name === 'EOPNOTSUPP') return 'not supported by this kernel or this object type';
  return undefined;
}

/** A failed bpf() (or close()) call: the command, the errno, and a one-line message. */
export class BpfError extends Error {
  readonly command: string;
  readonly errno: number;
  /** ENOENT, EPERM, … */
  readonly code: string;

  constructor(command: string, errno: number, detail?: string) {
    const why = detail ?? hint(command, errno);
    super(`bpf(${command}): ${describeErrno(errno)}${why ? ` — ${why}` : ''}`);
    this.name = 'BpfError';
    this.command = command;
    this.errno = errno;
    this.code = errnoName(errno);
  }

  /** The same failure with a more specific explanation (a pin path's filesystem, say). */
  withDetail(detail: string): BpfError {
    return new BpfError(this.command, this.errno, detail);
  }
}

/** BPF_PROG_LOAD or BPF_BTF_LOAD rejected by the kernel's checker. Carries the whole log as
 *  lines; the message is the log's last meaningful line or two, where the reason usually is. */
export class VerifierError extends BpfError {
  readonly log: string[];
  /** True when the log did not fit even the largest buffer and its head is missing. */
  readonly truncated: boolean;

  constructor(command: string, errno: number, log: string[], truncated = false, what?: string) {
    const summary = summarizeLog(log);
    super(command, errno, `${what ? `${what}: ` : ''}${summary || 'the kernel gave no log'}`);
    this.name = 'VerifierError';
    this.log = log;
    this.truncated = truncated;
  }

  /** The full log between libbpf-style markers, for printing. */
  formatLog(): string {
    return ['-- BEGIN PROG LOAD LOG --', ...this.log, '-- END PROG LOAD LOG --'].join('\n');
  }
}

// Lines that close every log and say nothing about the failure.
const noise = [/^processed \d+ insns/, /^verification time/, /^stack depth/, /^max_states_per_insn/, /^-- END/, /^\s*$/];

/** The last one or two meaningful lines of a verifier log, joined by ": ". */
export function summarizeLog(log: readonly string[]): string {
  const meaningful = log.filter((l) => !noise.some((re) => re.test(l)));
  return meaningful.slice(-2).map((l) => l.trim()).join(': ');
}
