// Network namespaces by name (/run/netns/NAME, as `ip netns add` makes them). Work inside one runs
// between two setns(2) calls on this thread: into the namespace, and back to the one we came
// from. Only the calling thread moves, so `fn` must be synchronous: an await would let other code
// run on this thread inside the wrong namespace. (`ip netns exec` would also remount /sys; setns
// changes nothing but the network namespace.)
import { closeSync, existsSync, openSync } from 'node:fs';
import { LoaderError } from './errors.ts';
import { CLONE_NEWNET, ifNameToIndex, setns, SystemError } from './libc.ts';

export const NETNS_DIR = '/run/netns';

export function netnsPath(name: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new LoaderError(`network namespace "${name}": not a valid name`);
  return `${NETNS_DIR}/${name}`;
}

export function withNetns<T>(name: string | undefined, fn: () => T): T {
  if (!name) return guardSync(fn());
  const path = netnsPath(name);
  if (!existsSync(path)) throw new LoaderError(`network namespace "${name}" does not exist (${path}; create it with ip netns add ${name})`);
  const self = openSync('/proc/thread-self/ns/net', 'r');
  let target: number | undefined;
  try {
    target = openSync(path, 'r');
    try {
      setns(target, CLONE_NEWNET);
    } catch (e) {
      if (e instanceof SystemError && e.code === 'EPERM') throw new LoaderError(`entering network namespace "${name}": operation not permitted — needs CAP_SYS_ADMIN / root`);
      throw e;
    }
    try {
      return guardSync(fn());
    } finally {
      setns(self, CLONE_NEWNET);
    }
  } finally {
    if (target !== undefined) closeSync(target);
    closeSync(self);
  }
}

function guardSync<T>(v: T): T {
  if (v instanceof Promise) throw new Error('withNetns: the callback must be synchronous');
  return v;
}

/** The ifindex of `device` in the current thread's namespace, or a one-line error. */
export function deviceIndex(device: string, netns?: string): number {
  const ifindex = ifNameToIndex(device);
  if (ifindex === 0) throw new LoaderError(`no device "${device}"${netns ? ` in network namespace "${netns}"` : ''}`);
  return ifindex;
}
