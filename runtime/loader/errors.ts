// Loader errors. Each message is one line with the path to the fault, outermost first, as
// cilium/ebpf words them:
//	object counter: program classify: load: invalid access to packet (at examples/x.ts:12)
// A program the verifier rejects keeps the whole log (details, printed with --verbose between
// libbpf's markers) and the source location the failing instruction came from.
import { VerifierError } from '../sys/index.ts';

export class LoaderError extends Error {
  constructor(
    message: string,
    options?: { cause?: unknown },
    /** Extra text the CLI prints with --verbose (the verifier log). */
    readonly details?: string,
  ) {
    super(message, options);
    this.name = 'LoaderError';
  }
}

/** Run fn; if it throws, prefix its message with `segment`. Keeps the verifier details. */
export function within<T>(segment: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw wrap(segment, e);
  }
}

export function wrap(segment: string, e: unknown): LoaderError {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof ProgramLoadError) return new ProgramLoadError(`${segment}: ${message}`, e.verifier, e.location, e.log);
  const details = (e as { details?: string })?.details;
  return new LoaderError(`${segment}: ${message}`, { cause: e }, details);
}

/** Where an instruction came from, through line info. */
export interface SourcePosition {
  file: string;
  line: number;
  column: number;
  text: string;
}

export const formatPosition = (p: SourcePosition): string => `${p.file}:${p.line}${p.column ? `:${p.column}` : ''}`;

/** BPF_PROG_LOAD refused the program. `verifier` is the syscall layer's error (errno and log). */
export class ProgramLoadError extends LoaderError {
  constructor(
    message: string,
    readonly verifier: VerifierError | undefined,
    /** The source line of the instruction the verifier stopped at, when line info says. */
    readonly location: SourcePosition | undefined,
    /** The verifier log with instruction numbers annotated with file:line. */
    readonly log: string[],
  ) {
    super(message, { cause: verifier }, log.length > 0 ? ['-- BEGIN PROG LOAD LOG --', ...log, '-- END PROG LOAD LOG --'].join('\n') : undefined);
    this.name = 'ProgramLoadError';
  }

  /** The message, then the log's last `n` lines: what the CLI prints without --verbose. */
  tail(n = 8): string {
    return [this.message, ...this.log.slice(-n).map((l) => `  ${l}`)].join('\n');
  }
}
