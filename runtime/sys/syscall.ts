// The one chokepoint: every bpf() call and every close() of a BPF fd in this project goes through
// `bpf()` and `closeFd()` below, so tests swap the backend for a fake (aya's override_syscall) and
// exercise loader logic without root.
//
// The backend speaks the kernel's convention: a result ≥ 0, or -errno. Translating that into a
// typed error happens here once, not in each wrapper.
import koffi, { type LibraryHandle } from 'koffi';
import { bpf_cmd } from './constants.ts';
import { BpfError } from './errors.ts';

/** bpf(cmd, &attr, sizeof(attr)): a result ≥ 0, or -errno. */
export type BpfSyscall = (cmd: number, attr: Buffer) => number;

export interface SyscallBackend {
  bpf: BpfSyscall;
  /** close(fd): 0, or -errno. */
  close(fd: number): number;
}

// __NR_bpf per architecture (arch/*/include/uapi/asm/unistd*.h; the generic table is 280).
const SYS_BPF: Record<string, number> = { x64: 321, arm64: 280, riscv64: 280, loong64: 280, ia32: 357, arm: 386, s390x: 351, ppc64: 361 };

let libc: LibraryHandle | undefined;
let kernelBpf: BpfSyscall | undefined;
let kernelClose: ((fd: number) => number) | undefined;

function loadLibc(): LibraryHandle {
  libc ??= koffi.load('libc.so.6');
  return libc;
}

/** The real backend: libc syscall(2). errno is reset before the call and read right after it, on
 *  the same thread, before any other native call can clobber it. */
export const kernelBackend: SyscallBackend = {
  bpf(cmd, attr) {
    if (!kernelBpf) {
      const nr = SYS_BPF[process.arch];
      if (nr === undefined) throw new Error(`bpf(): no syscall number known for ${process.arch}`);
      // long syscall(long number, ...): the variadic form, so the ABI is right on every arch.
      const syscall = loadLibc().func('long syscall(long number, ...)');
      kernelBpf = (c, a) => {
        koffi.errno(0);
        const r = Number(syscall(nr, 'int', c, 'void *', a, 'uint', a.length));
        return r < 0 ? -koffi.errno() : r;
      };
    }
    return kernelBpf(cmd, attr);
  },
  close(fd) {
    if (!kernelClose) {
      const close = loadLibc().func('int close(int fd)');
      kernelClose = (f) => {
        koffi.errno(0);
        return close(f) < 0 ? -koffi.errno() : 0;
      };
    }
    return kernelClose(fd);
  },
};

let backend: SyscallBackend = kernelBackend;

/** Route every bpf() (and BPF fd close) to `fake` until restoreSyscall(). A bare function fakes
 *  bpf() only; close() then does nothing, because its fds are not the process's. */
export function overrideSyscall(fake: SyscallBackend | BpfSyscall): void {
  backend = typeof fake === 'function' ? { bpf: fake, close: () => 0 } : fake;
}

export function restoreSyscall(): void {
  backend = kernelBackend;
}

export function syscallOverridden(): boolean {
  return backend !== kernelBackend;
}

const commandNames = new Map<number, string>(Object.entries(bpf_cmd).map(([name, value]) => [value, name]));
/** BPF_PROG_LOAD for 5; the number for a command this header does not know. */
export function commandName(cmd: number): string {
  return commandNames.get(cmd) ?? `bpf_cmd ${cmd}`;
}

/** bpf(cmd, attr): the result (an fd, an id, 0), or throws BpfError. `attr` must stay the exact
 *  size of the fields written: the kernel checks that bytes past the ones it knows are zero. */
export function bpf(cmd: number, attr: Buffer): number {
  const r = backend.bpf(cmd, attr);
  if (r < 0) throw new BpfError(commandName(cmd), -r);
  return r;
}

/** close(2) of a BPF fd, through the backend. Closing twice is the caller's bug: it may close an
 *  unrelated fd that reused the number, so it is not hidden. */
export function closeFd(fd: number): void {
  const r = backend.close(fd);
  if (r < 0) throw new BpfError('close', -r);
}

// ---- pointers inside attr ----------------------------------------------------------------------
//
// attr fields like `insns` and `log_buf` are user addresses. A Buffer's address is stable once V8
// has given it an off-heap backing store (koffi.address() makes sure of that). The pointed-to
// Buffers are tied to the attr Buffer in a WeakMap, so they cannot be collected while the attr
// is alive, which is at least until bpf() returns.
const pointees = new WeakMap<Buffer, Buffer[]>();

/** Address of a Buffer's first byte; 0 for null or an empty buffer (the kernel's "no pointer"). */
export function addressOf(buf: Buffer | null | undefined): bigint {
  if (!buf || buf.length === 0) return 0n;
  return koffi.address(buf);
}

/** Write `buf`'s address as a u64 at attr[offset], and keep `buf` alive as long as `attr`. */
export function writePointer(attr: Buffer, offset: number, buf: Buffer | null | undefined): void {
  attr.writeBigUInt64LE(addressOf(buf), offset);
  if (buf && buf.length > 0) {
    const list = pointees.get(attr);
    if (list) list.push(buf);
    else pointees.set(attr, [buf]);
  }
}

/** A Buffer over `length` bytes at a user address: how a fake backend reads and writes the
 *  memory that attr points to, as the kernel would. */
export function memoryAt(address: bigint, length: number): Buffer {
  if (address === 0n) throw new BpfError('memory', 14 /* EFAULT */);
  if (length === 0) return Buffer.alloc(0);
  return Buffer.from(koffi.view(address, length));
}

/** The NUL-terminated string at a user address (at most `max` bytes), read a byte at a time so
 *  no read strays past the terminator into memory that may not be mapped. */
export function cStringAt(address: bigint, max = 4096): string {
  const bytes: number[] = [];
  for (let i = 0; i < max; i++) {
    const b = new Uint8Array(koffi.view(address + BigInt(i), 1))[0];
    if (b === 0) break;
    bytes.push(b);
  }
  return Buffer.from(bytes).toString('utf8');
}
