// Builds the guest's helpers on the host, cached by source hash: netprobe (guest/netprobe.c, a
// static binary) and the peer-mark tc program (guest/peer-mark.bpf.c, a BPF object).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from './kernel.ts';

export const NETPROBE_SOURCE = new URL('./guest/netprobe.c', import.meta.url).pathname;
export const PEER_MARK_SOURCE = new URL('./guest/peer-mark.bpf.c', import.meta.url).pathname;

export class ToolchainUnavailable extends Error {}

function build(source: string, name: string, compile: (out: string) => [string, string[]]): string {
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 16);
  const dir = join(cacheDir(), 'tools');
  const out = join(dir, `${name}-${hash}`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  // Compile to a private name, then rename: concurrent builders never see a partial file.
  const tmp = `${out}.tmp-${process.pid}`;
  const [cmd, args] = compile(tmp);
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new ToolchainUnavailable(`${cmd} ${name}: ${err.stderr?.toString().trim() || err.message}`);
  }
  renameSync(tmp, out);
  return out;
}

/** Path of a static netprobe for this source; compiles it with the host's cc on first use. */
export function buildNetprobe(): string {
  return build(NETPROBE_SOURCE, 'netprobe', (out) => ['cc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-o', out, NETPROBE_SOURCE]]);
}

/** The clang that can target BPF: clang-19 (Debian bookworm's LLVM 19) or plain clang. */
function bpfClang(): string {
  for (const c of ['clang-19', 'clang']) {
    try {
      if (execFileSync(c, ['-print-targets'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().includes('bpf')) return c;
    } catch {
      // not installed
    }
  }
  throw new ToolchainUnavailable('no clang with the BPF target (Debian: apt-get install clang-19)');
}

/** Path of the peer-mark BPF object (tc direct action, section "tc"). */
export function buildPeerMark(): string {
  return build(PEER_MARK_SOURCE, 'peer-mark.o', (out) => [bpfClang(), ['-target', 'bpf', '-O2', '-Wall', '-Werror', '-c', PEER_MARK_SOURCE, '-o', out]]);
}

/**
 * The node executable that runs the engine's loader in the guest: this process's own node,
 * stripped of its debug information (the guest unpacks every byte of the initramfs on an emulated
 * CPU), cached by the binary's size and modification time. Falls back to the binary as it is.
 */
export function guestNode(): string {
  const node = process.execPath;
  const st = statSync(node);
  const dir = join(cacheDir(), 'tools');
  const out = join(dir, `node-${createHash('sha256').update(`${node}:${st.size}:${st.mtimeMs}`).digest('hex').slice(0, 16)}`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  try {
    execFileSync('strip', ['-o', tmp, node], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return node;
  }
  renameSync(tmp, out);
  return out;
}
