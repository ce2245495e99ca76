// Errors carry the path to the fault, outermost first, as cilium/ebpf does:
//	section "tc": symbol egress: insn 24: relocating: unknown map "sa_map"
// Each layer wraps with its own segment; the original error stays reachable as `cause`.

export class ObjectError extends Error {
  constructor(
    readonly path: readonly string[],
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super([...path, reason].join(': '), options);
    this.name = 'ObjectError';
  }
}

/** Run fn; if it throws, prefix the error with `segment` (e.g. 'section "tc"', 'insn 24'). */
export function within<T>(segment: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ObjectError) throw new ObjectError([segment, ...e.path], e.reason, { cause: e.cause });
    const reason = e instanceof Error ? e.message : String(e);
    throw new ObjectError([segment], reason, { cause: e });
  }
}

export const fail = (reason: string): never => {
  throw new ObjectError([], reason);
};
