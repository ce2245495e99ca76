// Every valid instruction form of RFC 9669 (BPF ISA, cpu v4) in one table, ubpf style: what
// each opcode may carry in dst/src/offset/imm, and how LLVM writes it. The validator, the
// disassembler and the assembler are all driven by this table, so a form exists in all three
// or in none.
//
// A *form* is an opcode plus the field values that tell it apart from other forms of the same
// opcode (sdiv is DIV with offset 1, le16 is END with imm 16, a local call is CALL with src 1).
// Those values are pinned as numbers; every other field has a rule.
//
// The rules follow what the Linux verifier (6.x) accepts per instruction, which is stricter
// than what RFC 9669 can encode: reserved fields must be zero, r10 is never written, shifts by a
// constant stay below the operand width, and division by a constant zero is refused.
// Not here because RFC 9669 does not define them: may_goto (JMP|JCOND), callx (CALL|X),
// addr_space_cast (MOV|X offset 1), load-acquire/store-release (STX|ATOMIC on B/H).

import { AluOp, AtomicOp, CallSrc, Class, JmpOp, Mode, PseudoSrc, Size, Source } from './opcode.ts';
import { isWide, type Instruction } from './instruction.ts';

/**
 * What a field may hold when the form does not pin it to a value. (A reserved field is pinned
 * to 0.)
 *   reg      a register that is read: r0–r10
 *   wreg     a register that is written: r0–r9 (r10, the frame pointer, is read-only)
 *   imm      any signed 32-bit value
 *   off      any signed 16-bit value
 *   nonzero  a signed 32-bit value other than 0 (division by a constant)
 *   shift32  0–31, shift64  0–63 (shift by a constant)
 */
export type Rule = 'reg' | 'wreg' | 'imm' | 'off' | 'nonzero' | 'shift32' | 'shift64';
/** A rule, or the one value the field must hold in this form. */
export type FieldSpec = Rule | number;

export interface Form {
  /** Unique name, ubpf style (EBPF_OP_ADD64_IMM → 'add64_imm'). */
  name: string;
  opcode: number;
  dst: FieldSpec;
  src: FieldSpec;
  offset: FieldSpec;
  imm: FieldSpec;
  /** LD|IMM|DW only: the second slot's imm. */
  imm2?: FieldSpec;
  /** How the instruction moves the pc: offset = offset field, imm = imm field (gotol, local call). */
  jump?: 'offset' | 'imm';
  /** LLVM assembly template; placeholders are described in syntax.ts. */
  syntax: string;
  /** Further templates the assembler accepts (llvm-mc accepts them too). */
  also?: readonly string[];
  /**
   * What llvm-objdump-19 prints where it loses information (a local call prints like a helper
   * call, the second slot of ld_pseudo and the imm of ld_ind are dropped). syntax stays
   * lossless so that disassembly reassembles to the same bytes.
   */
  llvm?: string;
}

// ALU operations: name, LLVM operator. MOV, NEG and END have their own syntax below.
const ALU_BINARY: ReadonlyArray<[string, number, string]> = [
  ['add', AluOp.ADD, '+='],
  ['sub', AluOp.SUB, '-='],
  ['mul', AluOp.MUL, '*='],
  ['div', AluOp.DIV, '/='],
  ['or', AluOp.OR, '|='],
  ['and', AluOp.AND, '&='],
  ['lsh', AluOp.LSH, '<<='],
  ['rsh', AluOp.RSH, '>>='],
  ['mod', AluOp.MOD, '%='],
  ['xor', AluOp.XOR, '^='],
  ['arsh', AluOp.ARSH, 's>>='],
];

const JMP_CONDITIONS: ReadonlyArray<[string, number, string]> = [
  ['jeq', JmpOp.JEQ, '=='],
  ['jgt', JmpOp.JGT, '>'],
  ['jge', JmpOp.JGE, '>='],
  ['jset', JmpOp.JSET, '&'],
  ['jne', JmpOp.JNE, '!='],
  ['jsgt', JmpOp.JSGT, 's>'],
  ['jsge', JmpOp.JSGE, 's>='],
  ['jlt', JmpOp.JLT, '<'],
  ['jle', JmpOp.JLE, '<='],
  ['jslt', JmpOp.JSLT, 's<'],
  ['jsle', JmpOp.JSLE, 's<='],
];

const SIZES: ReadonlyArray<[string, number, string]> = [
  ['b', Size.B, 'u8'],
  ['h', Size.H, 'u16'],
  ['w', Size.W, 'u32'],
  ['dw', Size.DW, 'u64'],
];

// STX|ATOMIC: the operation lives in imm.
const ATOMICS: ReadonlyArray<[string, number, string]> = [
  ['add', AtomicOp.ADD, '+='],
  ['or', AtomicOp.OR, '|='],
  ['and', AtomicOp.AND, '&='],
  ['xor', AtomicOp.XOR, '^='],
];

function buildForms(): Form[] {
  const forms: Form[] = [];
  const add = (f: Form): void => void forms.push(f);

  // ALU and ALU64.
  for (const [cls, bits, r, s] of [
    [Class.ALU64, '64', '{rd}', '{rs}'],
    [Class.ALU, '', '{wd}', '{ws}'],
  ] as const) {
    const shift: Rule = cls === Class.ALU64 ? 'shift64' : 'shift32';
    for (const [name, op, sym] of ALU_BINARY) {
      const isDiv = op === AluOp.DIV || op === AluOp.MOD;
      const immRule: Rule = isDiv ? 'nonzero' : op === AluOp.LSH || op === AluOp.RSH || op === AluOp.ARSH ? shift : 'imm';
      add({ name: `${name}${bits}_imm`, opcode: cls | Source.K | op, dst: 'wreg', src: 0, offset: 0, imm: immRule, syntax: `${r} ${sym} {imm}` });
      add({ name: `${name}${bits}_reg`, opcode: cls | Source.X | op, dst: 'wreg', src: 'reg', offset: 0, imm: 0, syntax: `${r} ${sym} ${s}` });
      if (isDiv) {
        // Signed division and modulo: same opcode, offset 1 (cpu v4).
        const sname = op === AluOp.DIV ? 'sdiv' : 'smod';
        const ssym = op === AluOp.DIV ? 's/=' : 's%=';
        add({ name: `${sname}${bits}_imm`, opcode: cls | Source.K | op, dst: 'wreg', src: 0, offset: 1, imm: 'nonzero', syntax: `${r} ${ssym} {imm}` });
        add({ name: `${sname}${bits}_reg`, opcode: cls | Source.X | op, dst: 'wreg', src: 'reg', offset: 1, imm: 0, syntax: `${r} ${ssym} ${s}` });
      }
    }
    add({ name: `neg${bits}`, opcode: cls | Source.K | AluOp.NEG, dst: 'wreg', src: 0, offset: 0, imm: 0, syntax: `${r} = -${r}` });
    add({ name: `mov${bits}_imm`, opcode: cls | Source.K | AluOp.MOV, dst: 'wreg', src: 0, offset: 0, imm: 'imm', syntax: `${r} = {imm}` });
    add({ name: `mov${bits}_reg`, opcode: cls | Source.X | AluOp.MOV, dst: 'wreg', src: 'reg', offset: 0, imm: 0, syntax: `${r} = ${s}` });
    // Sign-extending move (cpu v4): offset is the source width; 32 only makes sense for ALU64.
    for (const width of cls === Class.ALU64 ? [8, 16, 32] : [8, 16]) {
      add({ name: `movsx${bits}_${width}`, opcode: cls | Source.X | AluOp.MOV, dst: 'wreg', src: 'reg', offset: width, imm: 0, syntax: `${r} = (s${width})${s}` });
    }
  }
  // Byte swaps. ALU|END: the S bit picks the target order (K = to little, X = to big endian).
  // ALU64|END|K is the unconditional swap (cpu v4); ALU64|END|X is not defined.
  for (const width of [16, 32, 64]) {
    add({ name: `le${width}`, opcode: Class.ALU | Source.K | AluOp.END, dst: 'wreg', src: 0, offset: 0, imm: width, syntax: `{rd} = le${width} {rd}` });
    add({ name: `be${width}`, opcode: Class.ALU | Source.X | AluOp.END, dst: 'wreg', src: 0, offset: 0, imm: width, syntax: `{rd} = be${width} {rd}` });
    add({ name: `bswap${width}`, opcode: Class.ALU64 | Source.K | AluOp.END, dst: 'wreg', src: 0, offset: 0, imm: width, syntax: `{rd} = bswap${width} {rd}` });
  }

  // JMP and JMP32.
  add({ name: 'ja', opcode: Class.JMP | JmpOp.JA, dst: 0, src: 0, offset: 'off', imm: 0, jump: 'offset', syntax: 'goto {joff}' });
  // gotol: JMP32|JA takes its 32-bit offset from imm (cpu v4).
  add({ name: 'ja32', opcode: Class.JMP32 | JmpOp.JA, dst: 0, src: 0, offset: 0, imm: 'imm', jump: 'imm', syntax: 'gotol {jimm}' });
  for (const [cls, bits, r, s] of [
    [Class.JMP, '', '{rd}', '{rs}'],
    [Class.JMP32, '32', '{wd}', '{ws}'],
  ] as const) {
    for (const [name, op, sym] of JMP_CONDITIONS) {
      add({ name: `${name}${bits}_imm`, opcode: cls | Source.K | op, dst: 'reg', src: 0, offset: 'off', imm: 'imm', jump: 'offset', syntax: `if ${r} ${sym} {imm} goto {joff}` });
      add({ name: `${name}${bits}_reg`, opcode: cls | Source.X | op, dst: 'reg', src: 'reg', offset: 'off', imm: 0, jump: 'offset', syntax: `if ${r} ${sym} ${s} goto {joff}` });
    }
  }
  const CALL = Class.JMP | Source.K | JmpOp.CALL;
  add({ name: 'call', opcode: CALL, dst: 0, src: CallSrc.HELPER, offset: 0, imm: 'imm', syntax: 'call {imm}' });
  // llvm-objdump prints the relative target of a BPF-to-BPF call like a helper id; the kernel's
  // own disassembler writes `call pc+5`, which says what it is and reassembles unambiguously.
  add({ name: 'call_local', opcode: CALL, dst: 0, src: CallSrc.LOCAL, offset: 0, imm: 'imm', jump: 'imm', syntax: 'call {ctarget}', llvm: 'call {imm}' });
  // kfunc: imm is the BTF id, offset the fd_array index of the module BTF (0 = vmlinux).
  add({ name: 'call_kfunc', opcode: CALL, dst: 0, src: CallSrc.KFUNC, offset: 'off', imm: 'imm', syntax: 'call kfunc {imm}{optoff}', llvm: 'call {imm}' });
  add({ name: 'exit', opcode: Class.JMP | Source.K | JmpOp.EXIT, dst: 0, src: 0, offset: 0, imm: 0, syntax: 'exit' });

  // LD: the 64-bit immediate load and its pseudo sources (RFC 9669 §5.4).
  const LDDW = Class.LD | Mode.IMM | Size.DW;
  add({ name: 'lddw', opcode: LDDW, dst: 'wreg', src: PseudoSrc.IMM64, offset: 0, imm: 'imm', imm2: 'imm', syntax: '{rd} = {imm64} ll' });
  for (const [name, src, withValue] of [
    ['map_fd', PseudoSrc.MAP_FD, false],
    ['map_value', PseudoSrc.MAP_VALUE, true],
    ['btf_id', PseudoSrc.BTF_ID, true], // imm2: fd of the module BTF, 0 for vmlinux
    ['func', PseudoSrc.FUNC, false],
    ['map_idx', PseudoSrc.MAP_IDX, false],
    ['map_idx_value', PseudoSrc.MAP_IDX_VALUE, true],
  ] as const) {
    // llvm-objdump-19 prints `ld_pseudo r1, 2, imm` and drops the second slot; we append it
    // when it is not zero (see Form.llvm).
    add({
      name: `lddw_${name}`,
      opcode: LDDW,
      dst: 'wreg',
      src,
      offset: 0,
      imm: 'imm',
      imm2: withValue ? 'imm' : 0,
      syntax: `ld_pseudo\t{rd}, 0x${src.toString(16)}, {uimm}${withValue ? '{optimm2}' : ''}`,
      ...(withValue ? { llvm: `ld_pseudo\t{rd}, 0x${src.toString(16)}, {uimm}` } : {}),
    });
  }
  // Legacy packet access (cBPF heritage): r0 = ntoh(*(size *)(skb->data + imm [+ src])).
  // The result register is implicitly r0; dst is reserved. DW does not exist.
  for (const [sfx, size, type] of SIZES.filter(([, sz]) => sz !== Size.DW)) {
    add({ name: `ldabs${sfx}`, opcode: Class.LD | Mode.ABS | size, dst: 0, src: 0, offset: 0, imm: 'imm', syntax: `r0 = *(${type} *)skb[{imm}]` });
    add({
      name: `ldind${sfx}`,
      opcode: Class.LD | Mode.IND | size,
      dst: 0,
      src: 'reg',
      offset: 0,
      imm: 'imm',
      syntax: `r0 = *(${type} *)skb[{rs}{optimm}]`,
      llvm: `r0 = *(${type} *)skb[{rs}]`,
    });
  }

  // LDX, ST, STX. With alu32 (cpu v3+) llvm writes sub-64-bit loads and stores with w registers.
  for (const [sfx, size, type] of SIZES) {
    const narrow = size !== Size.DW;
    const dreg = narrow ? '{wd}' : '{rd}';
    const sreg = narrow ? '{ws}' : '{rs}';
    add({
      name: `ldx${sfx}`,
      opcode: Class.LDX | Mode.MEM | size,
      dst: 'wreg',
      src: 'reg',
      offset: 'off',
      imm: 0,
      syntax: `${dreg} = *(${type} *)({rs}{off})`,
      ...(narrow ? { also: [`{rd} = *(${type} *)({rs}{off})`] } : {}),
    });
    if (narrow) {
      const stype = type.replace('u', 's');
      add({ name: `ldxs${sfx}`, opcode: Class.LDX | Mode.MEMSX | size, dst: 'wreg', src: 'reg', offset: 'off', imm: 0, syntax: `{rd} = *(${stype} *)({rs}{off})` });
    }
    add({ name: `st${sfx}`, opcode: Class.ST | Mode.MEM | size, dst: 'reg', src: 0, offset: 'off', imm: 'imm', syntax: `*(${type} *)({rd}{off}) = {imm}` });
    add({
      name: `stx${sfx}`,
      opcode: Class.STX | Mode.MEM | size,
      dst: 'reg',
      src: 'reg',
      offset: 'off',
      imm: 0,
      syntax: `*(${type} *)({rd}{off}) = ${sreg}`,
      ...(narrow ? { also: [`*(${type} *)({rd}{off}) = {rs}`] } : {}),
    });
  }

  // STX|ATOMIC on W and DW: *(dst + off) op= src; FETCH also returns the old value in src.
  for (const [sfx, size, type, r] of [
    ['w', Size.W, 'u32', 'w'],
    ['dw', Size.DW, 'u64', 'r'],
  ] as const) {
    const opcode = Class.STX | Mode.ATOMIC | size;
    for (const [name, op, sym] of ATOMICS) {
      add({
        name: `atomic_${name}${sfx}`,
        opcode,
        dst: 'reg',
        src: 'reg',
        offset: 'off',
        imm: op,
        syntax: `lock *(${type} *)({rd}{off}) ${sym} {${r}s}`,
        ...(size === Size.W ? { also: [`lock *(${type} *)({rd}{off}) ${sym} {rs}`] } : {}),
      });
      add({
        name: `atomic_fetch_${name}${sfx}`,
        opcode,
        dst: 'reg',
        src: 'wreg',
        offset: 'off',
        imm: op | AtomicOp.FETCH,
        syntax: `{${r}s} = atomic_fetch_${name}((${type} *)({rd}{off}), {${r}s})`,
      });
    }
    const x = size === Size.W ? '32_32' : '_64';
    add({ name: `atomic_xchg${sfx}`, opcode, dst: 'reg', src: 'wreg', offset: 'off', imm: AtomicOp.XCHG, syntax: `{${r}s} = xchg${x}({rd}{off}, {${r}s})` });
    // cmpxchg compares with r0 and returns the old value in r0.
    add({ name: `atomic_cmpxchg${sfx}`, opcode, dst: 'reg', src: 'reg', offset: 'off', imm: AtomicOp.CMPXCHG, syntax: `${r}0 = cmpxchg${x}({rd}{off}, ${r}0, {${r}s})` });
  }
  return forms;
}

/** Every form, in ISA order. */
export const FORMS: readonly Form[] = Object.freeze(buildForms());

/** The forms of each valid opcode; an opcode that is not a key is invalid. */
export const OPCODE_TABLE: ReadonlyMap<number, readonly Form[]> = (() => {
  const table = new Map<number, Form[]>();
  for (const f of FORMS) {
    const list = table.get(f.opcode) ?? [];
    list.push(f);
    table.set(f.opcode, list);
  }
  return table;
})();

export const FORM_BY_NAME: ReadonlyMap<string, Form> = new Map(FORMS.map((f) => [f.name, f]));

type Field = 'dst' | 'src' | 'offset' | 'imm' | 'imm2';
const FIELDS: readonly Field[] = ['dst', 'src', 'offset', 'imm', 'imm2'];

function fieldValue(insn: Instruction, field: Field): number {
  return field === 'imm2' ? (insn.imm2 ?? 0) : insn[field];
}

/** Why value does not satisfy spec, or undefined. */
function checkField(field: Field, spec: FieldSpec, value: number): string | undefined {
  if (typeof spec === 'number') return value === spec ? undefined : `${field} must be ${spec}, got ${value}`;
  switch (spec) {
    case 'reg':
      return value <= 10 ? undefined : `${field} r${value} is not a register (r0–r10)`;
    case 'wreg':
      return value <= 9 ? undefined : value === 10 ? `${field} r10 is the read-only frame pointer` : `${field} r${value} is not a register (r0–r10)`;
    case 'imm':
    case 'off':
      return undefined; // the encoding already bounds them
    case 'nonzero':
      return value !== 0 ? undefined : `division by constant zero`;
    case 'shift32':
      return value >= 0 && value < 32 ? undefined : `shift by ${value} is out of range 0–31`;
    case 'shift64':
      return value >= 0 && value < 64 ? undefined : `shift by ${value} is out of range 0–63`;
  }
}

function problems(form: Form, insn: Instruction): string[] {
  const out: string[] = [];
  for (const field of FIELDS) {
    const spec = field === 'imm2' ? (isWide(insn) ? (form.imm2 ?? 0) : undefined) : form[field];
    if (spec === undefined) continue;
    const p = checkField(field, spec, fieldValue(insn, field));
    if (p) out.push(p);
  }
  return out;
}

/** The form whose pinned values (reserved fields included) match insn, ignoring register and range rules. */
export function matchForm(insn: Instruction): Form | undefined {
  const forms = OPCODE_TABLE.get(insn.opcode);
  if (!forms) return undefined;
  return forms.find((form) =>
    FIELDS.every((field) => {
      const spec = field === 'imm2' ? (form.imm2 ?? 0) : form[field];
      const v = fieldValue(insn, field);
      return typeof spec === 'number' ? v === spec : true;
    }),
  );
}

/** The form insn satisfies completely, or undefined. */
export function formOf(insn: Instruction): Form | undefined {
  return OPCODE_TABLE.get(insn.opcode)?.find((f) => problems(f, insn).length === 0);
}

/**
 * Why one instruction is invalid, or undefined. The message names the closest form:
 * `opcode 0x87 (neg64): imm is reserved and must be 0, got 5`.
 */
export function validate(insn: Instruction): string | undefined {
  const forms = OPCODE_TABLE.get(insn.opcode);
  const hex = `0x${insn.opcode.toString(16).padStart(2, '0')}`;
  if (!forms) return `unknown opcode ${hex}`;
  // The closest form is the one whose distinguishing fields (those pinned to different values
  // by forms of this opcode: src of lddw, imm of atomics) match, then the one with fewest faults.
  const discriminants = FIELDS.filter((field) => new Set(forms.map((f) => f[field]).filter((v) => typeof v === 'number')).size > 1);
  let best: { form: Form; problems: string[]; rank: number } | undefined;
  for (const form of forms) {
    const p = problems(form, insn);
    if (p.length === 0) return undefined;
    const misses = discriminants.filter((field) => form[field] !== fieldValue(insn, field)).length;
    const rank = misses * 100 + p.length;
    if (!best || rank < best.rank) best = { form, problems: p, rank };
  }
  return `opcode ${hex} (${best!.form.name}): ${best!.problems.join('; ')}`;
}

export class ValidationError extends Error {
  constructor(
    readonly index: number,
    readonly reason: string,
  ) {
    super(`insn ${index}: ${reason}`);
  }
}

/**
 * Program-level checks on top of validate(): every jump and local call lands on the start of an
 * instruction inside the program (never on the second slot of a 64-bit load), and the program
 * is not empty. Indexes in errors are instruction indexes; the slot is given where it differs.
 */
export function validateProgram(insns: readonly Instruction[]): ValidationError[] {
  const errors: ValidationError[] = [];
  if (insns.length === 0) return [new ValidationError(0, 'program is empty')];
  const starts = new Set<number>();
  const slotOf: number[] = [];
  let slot = 0;
  for (const insn of insns) {
    slotOf.push(slot);
    starts.add(slot);
    slot += isWide(insn) ? 2 : 1;
  }
  const total = slot;
  insns.forEach((insn, i) => {
    const reason = validate(insn);
    if (reason) return void errors.push(new ValidationError(i, reason));
    const form = formOf(insn)!;
    if (!form.jump) return;
    const target = slotOf[i]! + 1 + (form.jump === 'offset' ? insn.offset : insn.imm);
    if (target < 0 || target >= total) errors.push(new ValidationError(i, `${form.name} target slot ${target} is outside the program (0–${total - 1})`));
    else if (!starts.has(target)) errors.push(new ValidationError(i, `${form.name} target slot ${target} is the middle of a 64-bit immediate load`));
  });
  return errors;
}
