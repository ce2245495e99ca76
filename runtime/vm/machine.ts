// The VM instance: guest memory, the per-frame stacks, the state of the current run (context,
// packet, redirect target) and the run entry point with BPF_PROG_TEST_RUN's contract. Helpers
// and kfuncs receive the Machine; the interpreter runs on it.

import { clone } from './bytes.ts';
import { SkbContext, XdpContext } from './context.ts';
import { VmError, VmFault } from './errors.ts';
import { execute, MAX_FRAMES, ProgramAbort, STACK_SIZE } from './interpreter.ts';
import { address, Memory, type Region } from './memory.ts';
import { Packet } from './packet.ts';
import type { Code } from './program.ts';
import type { VmMap } from './maps.ts';

/** What r1 points to: __sk_buff (tc, socket filters), xdp_md, a syscall program's buffer, or raw memory (conformance). */
export type ContextKind = 'tc' | 'xdp' | 'syscall' | 'memory';

export interface RunOptions {
  /** tc/xdp: the Ethernet frame. memory: the memory r1 points to. */
  packet?: ArrayLike<number>;
  /** tc: struct __sk_buff fields to set (mark, priority, ifindex, cb, …); xdp: struct xdp_md; syscall: the buffer. */
  ctx?: ArrayLike<number>;
  /** Run this many times on the same state, as the kernel's test run does; durationNs is the mean. */
  repeat?: number;
}

export interface Redirect {
  ifindex: number;
  flags: number;
  /** Through bpf_redirect_neigh. */
  neigh?: boolean;
}

export interface RunResult {
  /** The program's r0 (full 64 bits; the kernel's test run reports its low 32). */
  retval: bigint;
  /** The packet after the program (tc/xdp), the memory (memory mode), or empty. */
  packet: Buffer;
  /** ctx_out: the test-run fields of __sk_buff / xdp_md, or the syscall buffer. */
  ctx?: Buffer;
  durationNs: number;
  redirect?: Redirect;
  /** bpf_trace_printk output, one entry per call. */
  trace: string[];
  /** Instructions executed (all repeats). */
  instructions: number;
}

/** The state of one run; helpers read and change it. */
export interface RunState {
  kind: ContextKind;
  packet?: Packet;
  skb?: SkbContext;
  xdp?: XdpContext;
  ctx?: Region;
  /** memory mode: the test memory. */
  memory?: Region;
  redirect?: Redirect;
  /** The bpf_spin_lock held now (its guest address), between bpf_spin_lock and bpf_spin_unlock. */
  lock?: bigint;
}

export interface MachineOptions {
  /** Seed of bpf_get_prandom_u32 (xorshift32); runs are reproducible with a fixed seed. */
  seed?: number;
  /** Abort a run after this many instructions (the VM's stand-in for the verifier's termination proof). */
  instructionLimit?: number;
  /** bpf_ktime_get_ns; monotonic host time by default. */
  clock?: () => bigint;
}

export class Machine {
  readonly memory = new Memory();
  readonly stacks: Region[] = [];
  /** Frame depth of the running code; -1 when idle. */
  depth = -1;
  /** Instructions left in the current run. */
  budget = 0;
  readonly instructionLimit: number;
  run: RunState = { kind: 'memory' };
  trace: string[] = [];
  private seed: number;
  readonly clock: () => bigint;
  private readonly mapRegions = new WeakMap<VmMap, Region>();

  constructor(options: MachineOptions = {}) {
    for (let i = 0; i < MAX_FRAMES; i++) this.stacks.push(this.memory.addBuffer('stack', `stack[${i}]`, Buffer.alloc(STACK_SIZE)));
    this.instructionLimit = options.instructionLimit ?? 100_000_000;
    this.seed = (options.seed ?? 0x2545f491) >>> 0 || 1;
    this.clock = options.clock ?? (() => process.hrtime.bigint());
  }

  /** bpf_get_prandom_u32: xorshift32. */
  random(): number {
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed;
  }

  /** The guest pointer of a map (what LD_IMM64 src=1 loads). */
  mapPointer(map: VmMap): bigint {
    let region = this.mapRegions.get(map);
    if (!region) {
      region = this.memory.addObject(`map ${map.name}`, map);
      this.mapRegions.set(map, region);
      map.onRelease = (value) => this.memory.release(value);
    }
    return address(region, 0);
  }

  /** The bytes LD_ABS/LD_IND read: the packet, or the memory in conformance mode. */
  legacyPacket(): Buffer | undefined {
    return this.run.packet?.view() ?? this.run.memory?.buf;
  }

  /** Call a function pointer (LD_IMM64 src=4) with up to five arguments: bpf_loop's callback. */
  invoke(fn: bigint, args: readonly bigint[]): bigint {
    const code = this.memory.object(fn & ~0xffffffffn, 'function', isCode);
    const slot = Number(fn & 0xffffffffn);
    if (slot >= code.op.length || code.insnAt[slot]! < 0) throw new VmFault('invalid function pointer', `slot ${slot} of ${code.name}`);
    return execute(this, code, slot, args);
  }

  /** Set up the context for one run and return r1 (and r2 for memory mode). */
  private prepare(kind: ContextKind, options: RunOptions): bigint[] {
    for (const region of [this.run.ctx, this.run.packet?.region, this.run.memory]) if (region) this.memory.retire(region);
    this.run = { kind };
    switch (kind) {
      case 'tc': {
        const packet = new Packet(this.memory, options.packet ?? []);
        let skb: SkbContext;
        try {
          skb = SkbContext.forTestRun(packet, options.ctx ? clone(options.ctx) : undefined);
        } catch (e) {
          throw new VmError(`test run: ${(e as Error).message}`, 0);
        }
        const ctx = this.memory.add({ kind: 'ctx', name: '__sk_buff', buf: skb.fields, start: 0, end: 0, writable: false, access: skb });
        this.run = { kind, packet, skb, ctx };
        return [address(ctx, 0)];
      }
      case 'xdp': {
        const packet = new Packet(this.memory, options.packet ?? []);
        const md = options.ctx ? clone(options.ctx) : undefined;
        const xdp = new XdpContext(packet, md && md.length >= 16 ? md.readUInt32LE(12) || 1 : 1, md && md.length >= 20 ? md.readUInt32LE(16) : 0);
        const ctx = this.memory.add({ kind: 'ctx', name: 'xdp_md', buf: Buffer.alloc(0), start: 0, end: 0, writable: false, access: xdp });
        this.run = { kind, packet, xdp, ctx };
        return [address(ctx, 0)];
      }
      case 'syscall': {
        const buf = clone(options.ctx ?? []);
        const ctx = this.memory.addBuffer('ctx', 'syscall ctx', buf);
        this.run = { kind, ctx };
        return [buf.length ? address(ctx, 0) : 0n];
      }
      case 'memory': {
        const bytes = options.packet ?? [];
        if (bytes.length === 0) return [0n, 0n];
        const memory = this.memory.addBuffer('memory', 'memory', clone(bytes));
        this.run = { kind, memory };
        return [address(memory, 0), BigInt(bytes.length)];
      }
    }
  }

  /** Run `code` from its first instruction with BPF_PROG_TEST_RUN's contract. */
  runCode(code: Code, kind: ContextKind, options: RunOptions = {}): RunResult {
    const args = this.prepare(kind, options);
    const repeat = Math.max(1, options.repeat ?? 1);
    this.trace = [];
    let retval = 0n;
    let instructions = 0;
    const start = process.hrtime.bigint();
    for (let i = 0; i < repeat; i++) {
      this.budget = this.instructionLimit;
      this.depth = -1;
      try {
        retval = execute(this, code, 0, args);
      } catch (e) {
        if (!(e instanceof ProgramAbort)) {
          // A fault inside the locked region must not leave the map's lock taken for later runs.
          if (this.run.lock !== undefined) this.memory.view(this.run.lock, 4, true).writeUInt32LE(0);
          this.run.lock = undefined;
          throw e;
        }
        retval = 0n;
      }
      instructions += this.instructionLimit - this.budget;
      const lock = this.run.lock;
      if (lock !== undefined) {
        // The verifier refuses such a program ("bpf_spin_unlock is missing"); the VM reports it.
        this.run.lock = undefined;
        this.memory.view(lock, 4, true).writeUInt32LE(0);
        throw new VmError('the program exited holding a bpf_spin_lock (the verifier refuses this: bpf_spin_unlock is missing)', 0);
      }
    }
    const durationNs = Number(process.hrtime.bigint() - start) / repeat;
    const run = this.run;
    const result: RunResult = { retval, packet: Buffer.alloc(0), durationNs, trace: this.trace, instructions };
    if (run.packet) result.packet = run.packet.bytes();
    else if (run.memory) result.packet = clone(run.memory.buf);
    if (run.skb) result.ctx = run.skb.ctxOut();
    else if (run.xdp) result.ctx = run.xdp.ctxOut();
    else if (run.kind === 'syscall' && run.ctx) result.ctx = clone(run.ctx.buf);
    if (run.redirect) result.redirect = run.redirect;
    return result;
  }
}

const isCode = (o: unknown): o is Code => typeof o === 'object' && o !== null && 'insnAt' in o && 'natives' in o;

