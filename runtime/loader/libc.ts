// The few libc calls the loader needs beyond bpf(): network namespaces (setns), netlink and
// ethtool sockets, interface names. Bound lazily through koffi, errno read right after each call
// on the same thread, as runtime/sys/syscall.ts does for bpf().
import koffi, { type LibraryHandle } from 'koffi';
import { describeErrno, errnoName } from '../sys/errors.ts';

let lib: LibraryHandle | undefined;
const fns = new Map<string, (...args: unknown[]) => unknown>();

function fn(signature: string): (...args: unknown[]) => unknown {
  let f = fns.get(signature);
  if (!f) {
    lib ??= koffi.load('libc.so.6');
    f = lib.func(signature) as (...args: unknown[]) => unknown;
    fns.set(signature, f);
  }
  return f;
}

/** A failed libc call: the function, errno and its name, one line. */
export class SystemError extends Error {
  readonly code: string;
  constructor(
    readonly call: string,
    readonly errno: number,
    detail?: string,
  ) {
    super(`${call}: ${describeErrno(errno)}${detail ? ` — ${detail}` : ''}`);
    this.name = 'SystemError';
    this.code = errnoName(errno);
  }
}

function call(name: string, signature: string, args: unknown[]): number {
  koffi.errno(0);
  const r = Number(fn(signature)(...args));
  if (r < 0) throw new SystemError(name, koffi.errno());
  return r;
}

export const CLONE_NEWNET = 0x40000000;
export const AF_INET = 2;
export const AF_NETLINK = 16;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;

export const setns = (fd: number, nstype: number): number => call('setns', 'int setns(int fd, int nstype)', [fd, nstype]);
export const socket = (domain: number, type: number, protocol: number): number => call('socket', 'int socket(int domain, int type, int protocol)', [domain, type, protocol]);
export const closeSocket = (fd: number): number => call('close', 'int close(int fd)', [fd]);
export const bind = (fd: number, addr: Buffer): number => call('bind', 'int bind(int fd, void *addr, uint32_t len)', [fd, addr, addr.length]);
export const send = (fd: number, buf: Buffer): number => call('send', 'long send(int fd, void *buf, size_t len, int flags)', [fd, buf, buf.length, 0]);
export const recv = (fd: number, buf: Buffer): number => call('recv', 'long recv(int fd, _Out_ void *buf, size_t len, int flags)', [fd, buf, buf.length, 0]);
export const setsockoptInt = (fd: number, level: number, name: number, value: number): number => {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value, 0);
  return call('setsockopt', 'int setsockopt(int fd, int level, int name, void *val, uint32_t len)', [fd, level, name, v, 4]);
};
/** ioctl(fd, request, arg) where arg points at `arg`'s bytes (struct ifreq). */
export const ioctl = (fd: number, request: number, arg: Buffer): number => call('ioctl', 'int ioctl(int fd, unsigned long request, void *arg)', [fd, request, arg]);

/** if_nametoindex(3) in the calling thread's network namespace; 0 when there is no such device. */
export function ifNameToIndex(name: string): number {
  return Number(fn('unsigned int if_nametoindex(const char *name)')(name));
}

export const addressOf = (buf: Buffer): bigint => koffi.address(buf) as bigint;
