// An object in the kernel, loaded in libbpf's stages. Each stage is a method named by its verb and
// the object records the stage it reached; calling a later stage runs the earlier ones first.
//
//	openObject()  parse the ELF (or take an ObjectSpec), collect relocations; no kernel
//	prepare()     link each program with its .text callees; load BTF (ours + synthesised FUNCs +
//	              line-info strings, sanitised); create or reuse-by-pin the maps; initialise
//	              global data; freeze .rodata
//	relocate()    apply map, global, call and kfunc relocations (relocate.ts, one place)
//	load()        BPF_PROG_LOAD every program with func/line info; a refusal carries the log and
//	              the source line of the failing instruction
// Attaching is separate (attach.ts): a loaded program is an fd that tc, XDP or a test run takes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode as encodeInsns } from '../../compiler/asm/instruction.ts';
import type { Btf } from '../../compiler/btf/btf.ts';
import { readObject } from '../../compiler/elf/reader.ts';
import { ProgType } from '../../compiler/elf/sections.ts';
import type { ObjectSpec, ProgramSpec } from '../../compiler/elf/spec.ts';
import { BPF_F_SLEEPABLE } from '../sys/constants.ts';
import {
  BpfError,
  btfLoad,
  FD,
  objPin,
  progInfo,
  progLoad,
  progTestRun,
  VerifierError,
  type ProgInfo,
  type TestRunOptions,
  type TestRunResult,
} from '../sys/index.ts';
import { BtfEncoder, loaderBtf } from './btf.ts';
import { formatPosition, LoaderError, ProgramLoadError, type SourcePosition, within, wrap } from './errors.ts';
import { kernelBtf, kfuncId } from './kernel-btf.ts';
import { createMap, MapHandle, pin } from './maps.ts';
import { DEFAULT_PIN_ROOT, globalMapName, kernelName, objectNameOf, pinFileName } from './names.ts';
import { applyRelocations, extInfo, linkProgram, positionOf, type ExtInfo, type LinkedProgram } from './relocate.ts';

export type Stage = 'opened' | 'prepared' | 'relocated' | 'loaded' | 'closed';

export interface OpenOptions {
  /** The object's name (pin directory, global map prefix); default: the file name without .o. */
  name?: string;
}

export interface PrepareOptions {
  /** bpffs directory for maps pinned by name; default /sys/fs/bpf/ebpf-ts/<object>. */
  pinDir?: string;
  /** The kernel's BTF for kfunc ids (tests); default /sys/kernel/btf/vmlinux. */
  kernelBtf?: Btf;
  /** false: ignore Pinning.BY_NAME (a private instance, e.g. for a test run). */
  pinning?: boolean;
}

export interface LoadOptions {
  /** Verifier log level for successful loads too (1 or 2); failures always get a log. */
  logLevel?: number;
  /** Load only these programs (by name); default all. */
  programs?: string[];
}

/** A loaded program: its fd, the instructions the kernel got, and line info for messages. */
export class ProgramHandle {
  constructor(
    readonly name: string,
    readonly fd: FD,
    readonly spec: ProgramSpec,
    readonly linked: LinkedProgram,
    readonly ext: ExtInfo,
    /** The verifier log of a load with logLevel > 0. */
    readonly log: string[],
  ) {}

  get type(): number {
    return this.spec.progType;
  }

  info(): ProgInfo {
    return progInfo(this.fd);
  }

  /** BPF_PROG_TEST_RUN: a packet for tc/XDP programs, a context (ctxIn) for syscall programs.
   *  A syscall program takes no data or ctx_out (the kernel says EINVAL); it writes its context
   *  back into ctxIn itself, so results are read from that buffer after the run. */
  run(o: TestRunOptions = {}): TestRunResult {
    if (this.spec.progType === ProgType.SYSCALL) return progTestRun(this.fd, { ctxIn: o.ctxIn, dataSizeOut: 0, ctxSizeOut: 0 });
    return progTestRun(this.fd, o);
  }

  /** The source position of instruction slot `slot`, through line info. */
  sourceOf(slot: number): SourcePosition | undefined {
    return positionOf(this.ext.lines, slot);
  }

  pin(path: string): void {
    pin(this.fd, path);
  }
}

const DATA_SECTION = /^\.(data|rodata|bss)(\..*)?$/;

export class BpfObject {
  stage: Stage = 'opened';
  /** Non-fatal problems (BTF the kernel refused, so maps and programs went without it). */
  readonly warnings: string[] = [];
  readonly maps = new Map<string, MapHandle>();
  readonly programs = new Map<string, ProgramHandle>();
  pinDir: string;

  #btf: Btf | undefined; // what the kernel got (sanitised), when it took it
  #btfFd: FD | undefined;
  #linked = new Map<string, LinkedProgram>();
  #ext = new Map<string, ExtInfo>();
  #kernelBtf: Btf | undefined;

  constructor(
    readonly spec: ObjectSpec,
    readonly name: string,
  ) {
    this.pinDir = join(DEFAULT_PIN_ROOT, name);
  }

  /** The map named so (a BTF-defined map, or a global-data section like ".rodata"). */
  map(name: string): MapHandle {
    this.#require('prepared', `map ${name}`);
    return this.maps.get(name) ?? this.#unknown('map', name, [...this.maps.keys()]);
  }

  program(name: string): ProgramHandle {
    this.#require('loaded', `program ${name}`);
    return this.programs.get(name) ?? this.#unknown('program', name, [...this.programs.keys()]);
  }

  /** The instructions of `program` as they are after relocate() (what the kernel is given). */
  linked(program: string): LinkedProgram {
    this.#require('prepared', `program ${program}`);
    return this.#linked.get(program) ?? this.#unknown('program', program, [...this.#linked.keys()]);
  }

  get btfFd(): FD | undefined {
    return this.#btfFd;
  }

  // ---- prepare

  prepare(o: PrepareOptions = {}): this {
    if (this.stage !== 'opened') return this;
    if (o.pinDir) this.pinDir = o.pinDir;
    this.#kernelBtf = o.kernelBtf;
    try {
      within(`object ${this.name}`, () => {
        const lbtf = loaderBtf(this.spec);
        for (const p of this.spec.programs) {
          this.#linked.set(p.name, within(`program ${p.name}`, () => linkProgram(this.spec, p, (n) => lbtf?.syntheticFuncs.get(n) ?? 0)));
        }
        if (lbtf) this.#loadBtf(lbtf.btf);
        if (!this.#btfFd) for (const [name, linked] of this.#linked) this.#ext.set(name, extInfo(linked, null));
        for (const m of this.spec.maps) {
          within(`map ${m.name}`, () => {
            const { handle } = createMap(m, {
              kernelName: m.section ? globalMapName(this.name, m.section) : kernelName(m.name),
              btfFd: this.#btfFd,
              btf: this.#btf,
              pinPath: o.pinning === false ? undefined : join(this.pinDir, pinFileName(m.name)),
            });
            this.maps.set(m.name, handle);
          });
        }
      });
    } catch (e) {
      this.close();
      throw e;
    }
    this.stage = 'prepared';
    return this;
  }

  /** Load the object's BTF with every program's line strings; on refusal go on without BTF
   *  (libbpf does the same) unless a map needs it (kptr fields, special fields). */
  #loadBtf(btf: Btf): void {
    const encoder = new BtfEncoder(btf);
    const ext = new Map<string, ExtInfo>();
    for (const [name, linked] of this.#linked) ext.set(name, extInfo(linked, encoder.add));
    try {
      this.#btfFd = btfLoad(encoder.encode()).fd;
      this.#btf = btf;
      this.#ext = ext;
    } catch (e) {
      if (!(e instanceof BpfError) || e.code === 'EPERM') throw wrap('loading BTF', e);
      const why = e instanceof VerifierError ? e.message : `${e.message}`;
      this.warnings.push(`kernel refused the object's BTF (${why}); loading without BTF`);
    }
  }

  // ---- relocate

  relocate(): this {
    if (this.stage === 'opened') this.prepare();
    if (this.stage !== 'prepared') return this;
    try {
      within(`object ${this.name}`, () => {
        const targets = {
          mapFd: (name: string) => {
            const m = this.maps.get(name);
            if (!m || m.spec?.section) throw new LoaderError(`unknown map "${name}"`);
            return m.fd.value;
          },
          globalFd: (section: string) => {
            if (!DATA_SECTION.test(section)) throw new LoaderError(`"${section}" is not a global-data section`);
            return (this.maps.get(section) ?? fail(`no map for global-data section "${section}"`)).fd.value;
          },
          kfuncId: (name: string) => kfuncId(name, this.#kernelBtf ?? kernelBtf()),
        };
        for (const [name, linked] of this.#linked) within(`program ${name}`, () => applyRelocations(linked, targets));
      });
    } catch (e) {
      this.close();
      throw e;
    }
    this.stage = 'relocated';
    return this;
  }

  // ---- load

  load(o: LoadOptions = {}): this {
    if (this.stage === 'opened' || this.stage === 'prepared') this.relocate();
    if (this.stage !== 'relocated') return this;
    try {
      for (const p of this.spec.programs) {
        if (o.programs && !o.programs.includes(p.name)) continue;
        this.programs.set(p.name, this.#loadProgram(p, o));
      }
    } catch (e) {
      this.close();
      throw e;
    }
    this.stage = 'loaded';
    return this;
  }

  #loadProgram(p: ProgramSpec, o: LoadOptions): ProgramHandle {
    const linked = this.#linked.get(p.name)!;
    const ext = this.#ext.get(p.name)!;
    const where = `object ${this.name}: program ${p.name}`;
    if (p.progType === ProgType.UNSPEC) throw new LoaderError(`${where}: section "${p.section}" has no program type`);
    try {
      const { fd, log } = progLoad({
        type: p.progType,
        insns: encodeInsns(linked.instructions),
        license: this.spec.license || 'GPL',
        name: kernelName(p.name),
        flags: p.sleepable || p.progType === ProgType.SYSCALL ? BPF_F_SLEEPABLE : 0,
        expectedAttachType: p.attachType,
        btfFd: this.#btfFd,
        funcInfo: ext.funcInfo ?? undefined,
        lineInfo: ext.lineInfo ?? undefined,
        logLevel: o.logLevel,
      });
      return new ProgramHandle(p.name, fd, p, linked, ext, log);
    } catch (e) {
      if (e instanceof VerifierError) throw verifierFailure(where, e, ext);
      throw wrap(where, e);
    }
  }

  // ---- after load

  /** Pin every program under <pinDir>/progs/ (so it outlives this process). */
  pinPrograms(dir = join(this.pinDir, 'progs')): void {
    this.#require('loaded', 'pinning');
    for (const [name, p] of this.programs) within(`program ${name}`, () => p.pin(join(dir, pinFileName(name))));
  }

  /** Pin every map not pinned yet under <pinDir>/maps/ (BY_NAME maps stay where they are). */
  pinMaps(dir = join(this.pinDir, 'maps')): void {
    this.#require('prepared', 'pinning');
    for (const [name, m] of this.maps) {
      if (m.pinnedAt) continue;
      const path = join(dir, pinFileName(name));
      within(`map ${name}`, () => pin(m.fd, path));
      m.pinnedAt = path;
    }
  }

  /** Close every fd the object holds. Pinned and attached objects stay in the kernel. */
  close(): void {
    for (const p of this.programs.values()) p.fd.close();
    for (const m of this.maps.values()) m.close();
    this.#btfFd?.close();
    this.programs.clear();
    this.maps.clear();
    this.stage = 'closed';
  }

  #require(stage: 'prepared' | 'loaded', what: string): void {
    const order: Stage[] = ['opened', 'prepared', 'relocated', 'loaded'];
    if (this.stage === 'closed') throw new LoaderError(`object ${this.name}: ${what}: the object is closed`);
    if (order.indexOf(this.stage) < order.indexOf(stage)) throw new LoaderError(`object ${this.name}: ${what}: the object is only ${this.stage} (call ${stage === 'loaded' ? 'load' : 'prepare'}() first)`);
  }

  #unknown(kind: string, name: string, known: string[]): never {
    throw new LoaderError(`object ${this.name}: no ${kind} "${name}" (has: ${known.join(', ') || 'none'})`);
  }
}

const fail = (message: string): never => {
  throw new LoaderError(message);
};

// Verifier log lines that name an instruction: "12: (85) call …", "from 4 to 9: …", "12: R0=…".
const INSN_LINE = /^(\d+): /;

// Lines after the reason that say nothing about it.
const TRAILER = [/^processed \d+ insns/, /^verification time/, /^stack depth/, /^max_states_per_insn/, /^\s*$/, /^(cur|old) state:/, /^-- END/];
const INLINE_REASON = /(infinite loop detected at insn \d+|back-edge from insn \d+ to \d+)/;

/** The verifier's reason: the last line that is neither an instruction nor a state dump (some
 *  reasons, like "infinite loop detected", are appended to an instruction line instead). */
export function reasonOf(log: readonly string[]): string {
  const lines = log.filter((l) => !TRAILER.some((re) => re.test(l)));
  for (let i = lines.length - 1; i >= Math.max(0, lines.length - 3); i--) {
    const inline = INLINE_REASON.exec(lines[i]!);
    if (inline) return inline[1]!;
  }
  const last = [...lines].reverse().find((l) => !INSN_LINE.test(l) && !/^from \d+ to \d+:/.test(l));
  return last?.trim() ?? '';
}

/** A verifier refusal as a ProgramLoadError: the log's last lines for the message, every
 *  instruction line annotated with its source file:line, and the failing instruction's line. */
export function verifierFailure(where: string, e: VerifierError, ext: ExtInfo): ProgramLoadError {
  let lastInsn: number | undefined;
  const log = e.log.map((line) => {
    const m = INSN_LINE.exec(line);
    if (!m) return line;
    const slot = Number(m[1]);
    lastInsn = slot;
    const pos = positionOf(ext.lines, slot);
    return pos ? `${line}  ; ${formatPosition(pos)}` : line;
  });
  const location = lastInsn === undefined ? undefined : positionOf(ext.lines, lastInsn);
  const at = location ? ` (insn ${lastInsn} at ${formatPosition(location)}${location.text ? `: ${location.text.trim()}` : ''})` : lastInsn !== undefined ? ` (insn ${lastInsn})` : '';
  const reason = reasonOf(e.log) || e.message.replace(/^bpf\(BPF_PROG_LOAD\): /, '');
  return new ProgramLoadError(`${where}: load: ${reason}${at}`, e, location, log);
}

/** Parse an ELF object (path or bytes) or take an ObjectSpec. No kernel involved. */
export function openObject(source: string | Buffer | ObjectSpec, o: OpenOptions = {}): BpfObject {
  if (typeof source === 'string') {
    let bytes: Buffer;
    try {
      bytes = readFileSync(source);
    } catch (e) {
      throw new LoaderError(`${source}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const spec = within(source, () => readObject(bytes));
    return new BpfObject(spec, o.name ?? objectNameOf(source));
  }
  if (Buffer.isBuffer(source)) return new BpfObject(within('object', () => readObject(source)), o.name ?? 'object');
  return new BpfObject(source, o.name ?? 'object');
}

/** open → prepare → relocate → load in one call. */
export function loadObject(source: string | Buffer | ObjectSpec, o: OpenOptions & PrepareOptions & LoadOptions = {}): BpfObject {
  return openObject(source, o).prepare(o).load(o);
}
