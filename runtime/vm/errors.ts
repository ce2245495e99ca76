// The two ways a program fails in the VM: it is rejected when loaded (VmLoadError, the
// verifier's role), or it faults while running (VmError, carrying the PC and a dump of the
// machine so a failure can be read without re-running it — ubpf's message shape).

export class VmLoadError extends Error {
  constructor(
    message: string,
    /** Slot index (8-byte units) of the rejected instruction, when one is at fault. */
    readonly pc?: number,
  ) {
    super(message);
    this.name = 'VmLoadError';
  }
}

export class VmError extends Error {
  constructor(
    /** First line: what went wrong, e.g. `out of bounds memory access at PC 17`. */
    readonly reason: string,
    readonly pc: number,
    /** Instruction, registers and region table, one per line. */
    readonly dump: string = '',
  ) {
    super(dump ? `${reason}\n${dump}` : reason);
    this.name = 'VmError';
  }
}

/** Raised inside a helper or memory access; the interpreter adds the PC and the dump. */
export class VmFault extends Error {
  constructor(
    message: string,
    /** What was accessed, e.g. `4-byte load at 0x300000010 (stack[0])`. */
    readonly detail = '',
  ) {
    super(message);
    this.name = 'VmFault';
  }
}
