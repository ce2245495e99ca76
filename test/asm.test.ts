import { describe, expect, it } from 'vitest';
import * as asm from '../compiler/asm/index.ts';
import { assemble, AssemblyError, compareListings, decode, encode, formatInstruction, formatListing, type Instruction } from '../compiler/asm/index.ts';
import { FORMS, OPCODE_TABLE, validate, validateProgram } from '../compiler/asm/table.ts';
import { R0, R1, R2, R3, R10 } from '../compiler/asm/builder.ts';
import { Size } from '../compiler/asm/opcode.ts';
import { SAMPLES } from './asm/samples.ts';

const hexOf = (insns: readonly Instruction[]): string => encode(insns).toString('hex');
const expectSameProgram = (expected: readonly Instruction[], actual: readonly Instruction[]): void => {
  const diff = compareListings(expected, actual);
  expect(diff, diff).toBeUndefined();
};

describe('form table', () => {
  it('has exactly the opcodes of RFC 9669 appendix A', () => {
    // Typed from the RFC's opcode table, independently of table.ts.
    const rfc = `
      07 0f 17 1f 27 2f 37 3f 47 4f 57 5f 67 6f 77 7f 87 97 9f a7 af b7 bf c7 cf d7
      04 0c 14 1c 24 2c 34 3c 44 4c 54 5c 64 6c 74 7c 84 94 9c a4 ac b4 bc c4 cc d4 dc
      05 15 1d 25 2d 35 3d 45 4d 55 5d 65 6d 75 7d 85 95 a5 ad b5 bd c5 cd d5 dd
      06 16 1e 26 2e 36 3e 46 4e 56 5e 66 6e 76 7e a6 ae b6 be c6 ce d6 de
      18 20 28 30 40 48 50
      61 69 71 79 81 89 91
      62 6a 72 7a 63 6b 73 7b c3 db`;
    const expected = rfc.trim().split(/\s+/).map((h) => parseInt(h, 16)).sort((a, b) => a - b);
    expect([...OPCODE_TABLE.keys()].sort((a, b) => a - b)).toEqual(expected);
  });

  it('names every form once', () => {
    expect(new Set(FORMS.map((f) => f.name)).size).toBe(FORMS.length);
  });

  it('accepts every sample', () => {
    const rejected = SAMPLES.map(([f, s]) => [f.name, validate(s)]).filter(([, v]) => v);
    expect(rejected).toEqual([]);
  });

  it.each([
    [{ opcode: 0x87, dst: 1, src: 0, offset: 0, imm: 5 }, 'opcode 0x87 (neg64): imm must be 0, got 5'],
    [{ opcode: 0xb7, dst: 10, src: 0, offset: 0, imm: 1 }, 'opcode 0xb7 (mov64_imm): dst r10 is the read-only frame pointer'],
    [{ opcode: 0x37, dst: 1, src: 0, offset: 0, imm: 0 }, 'opcode 0x37 (div64_imm): division by constant zero'],
    [{ opcode: 0x64, dst: 1, src: 0, offset: 0, imm: 32 }, 'opcode 0x64 (lsh_imm): shift by 32 is out of range 0–31'],
    [{ opcode: 0x0f, dst: 1, src: 11, offset: 0, imm: 0 }, 'opcode 0x0f (add64_reg): src r11 is not a register (r0–r10)'],
    [{ opcode: 0x8d, dst: 0, src: 1, offset: 0, imm: 0 }, 'unknown opcode 0x8d'],
    [{ opcode: 0x86, dst: 0, src: 0, offset: 0, imm: 1 }, 'unknown opcode 0x86'],
    [{ opcode: 0x38, dst: 0, src: 0, offset: 0, imm: 1 }, 'unknown opcode 0x38'],
    [{ opcode: 0xdf, dst: 1, src: 0, offset: 0, imm: 16 }, 'unknown opcode 0xdf'],
    [{ opcode: 0xd4, dst: 1, src: 0, offset: 0, imm: 8 }, 'opcode 0xd4 (le16): imm must be 16, got 8'],
    [{ opcode: 0xbc, dst: 1, src: 2, offset: 32, imm: 0 }, 'opcode 0xbc (mov_reg): offset must be 0, got 32'],
    [{ opcode: 0x18, dst: 1, src: 7, offset: 0, imm: 0, imm2: 0 }, 'opcode 0x18 (lddw): src must be 0, got 7'],
    [{ opcode: 0x18, dst: 1, src: 1, offset: 0, imm: 3, imm2: 4 }, 'opcode 0x18 (lddw_map_fd): imm2 must be 0, got 4'],
    [{ opcode: 0xdb, dst: 1, src: 2, offset: 0, imm: 0x02 }, 'opcode 0xdb (atomic_adddw): imm must be 0, got 2'],
    [{ opcode: 0x85, dst: 0, src: 1, offset: 3, imm: 1 }, 'opcode 0x85 (call_local): offset must be 0, got 3'],
    [{ opcode: 0x95, dst: 0, src: 0, offset: 0, imm: 1 }, 'opcode 0x95 (exit): imm must be 0, got 1'],
    [{ opcode: 0x20, dst: 1, src: 0, offset: 0, imm: 1 }, 'opcode 0x20 (ldabsw): dst must be 0, got 1'],
  ] as Array<[Instruction, string]>)('rejects %o', (insn, message) => {
    expect(validate(insn)).toBe(message);
  });

  it('checks jump targets across the program', () => {
    // slots: 0 ja, 1-2 lddw, 3 jeq, 4 gotol, 5 call, 6 exit
    const prog = [asm.ja(1), asm.lddw(R1, 1n), asm.Jmp.jeq.imm(R1, 0, -4), asm.gotol(5), asm.call.local(-5), asm.exit()];
    expect(validateProgram(prog).map((e) => e.message)).toEqual([
      'insn 0: ja target slot 2 is the middle of a 64-bit immediate load',
      'insn 3: ja32 target slot 10 is outside the program (0–6)',
    ]);
    expect(validateProgram([]).map((e) => e.message)).toEqual(['insn 0: program is empty']);
  });
});

describe('builder', () => {
  it('builds every form the way the assembler reads its text', () => {
    const built = [
      asm.Alu64.add.imm(R1, 22),
      asm.Alu64.add.reg(R1, R2),
      asm.Alu32.sub.imm(R1, -1),
      asm.Alu64.sdiv.reg(R1, R2),
      asm.Alu32.smod.imm(R1, 3),
      asm.Alu64.arsh.imm(R1, 63),
      asm.Alu64.neg(R1),
      asm.Alu32.neg(R1),
      asm.Mov64.imm(R0, 3),
      asm.Mov32.reg(R1, R2),
      asm.movsx64(R1, R2, 32),
      asm.movsx32(R1, R2, 8),
      asm.le16(R1),
      asm.be32(R1),
      asm.bswap64(R1),
      asm.Jmp.jsgt.imm(R1, -5, 2),
      asm.Jmp32.jset.reg(R1, R2, -1),
      asm.ja(0),
      asm.gotol(100000),
      asm.call.helper(1),
      asm.call.kfunc(1234, 2),
      asm.call.local(-20),
      asm.exit(),
      asm.ldx(Size.W, R0, R1, 8),
      asm.ldxsx(Size.B, R0, R1, -1),
      asm.st(Size.DW, R10, -8, 0),
      asm.stx(Size.H, R10, R3, -2),
      asm.Atomic.add(Size.W, R1, R2, 0),
      asm.Atomic.fetchXor(Size.DW, R1, R2, 4),
      asm.Atomic.xchg(Size.W, R1, R2, 0),
      asm.Atomic.cmpxchg(Size.DW, R1, R2, 0),
      asm.lddw(R1, 0x123456789abcdef0n),
      asm.lddw(R1, -1),
      asm.ldMapFd(R1, 3),
      asm.ldMapValue(R1, 3, 16),
      asm.ldBtfId(R1, 99),
      asm.ldFunc(R1, 7),
      asm.ldMapIdx(R1, 0),
      asm.ldMapIdxValue(R1, 1, 8),
      asm.ldAbs(Size.H, 12),
      asm.ldInd(Size.B, R2, 1),
    ];
    const text = `
      r1 += 22
      r1 += r2
      w1 -= -1
      r1 s/= r2
      w1 s%= 3
      r1 s>>= 63
      r1 = -r1
      w1 = -w1
      r0 = 3
      w1 = w2
      r1 = (s32)r2
      w1 = (s8)w2
      r1 = le16 r1
      r1 = be32 r1
      r1 = bswap64 r1
      if r1 s> -5 goto +2
      if w1 & w2 goto -1
      goto +0
      gotol +100000
      call 1
      call kfunc 1234, 2
      call pc-20
      exit
      w0 = *(u32 *)(r1 + 8)
      r0 = *(s8 *)(r1 - 1)
      *(u64 *)(r10 - 8) = 0
      *(u16 *)(r10 - 2) = w3
      lock *(u32 *)(r1 + 0) += w2
      r2 = atomic_fetch_xor((u64 *)(r1 + 4), r2)
      w2 = xchg32_32(r1 + 0, w2)
      r0 = cmpxchg_64(r1 + 0, r0, r2)
      r1 = 0x123456789abcdef0 ll
      r1 = -1 ll
      ld_pseudo r1, 1, 3
      ld_pseudo r1, 2, 3, 16
      ld_pseudo r1, 3, 99
      ld_pseudo r1, 4, 7
      ld_pseudo r1, 5, 0
      ld_pseudo r1, 6, 1, 8
      r0 = *(u16 *)skb[12]
      r0 = *(u8 *)skb[r2 + 1]`;
    expectSameProgram(assemble(text).insns, built);
  });

  it('resolves labels, counting a 64-bit load as two slots', () => {
    const prog = asm.link([
      asm.label('entry'),
      asm.Jmp.jeq.imm(R1, 0, 'out'),
      asm.lddw(R0, 1n),
      asm.gotol('entry'),
      asm.label('out'),
      asm.label('alias'),
      asm.Mov64.imm(R0, 0),
      asm.call.local('entry'),
      asm.call.local('elsewhere'),
      asm.exit(),
    ]);
    expect(prog.map((i) => formatInstruction(i))).toEqual([
      'if r1 == 0x0 goto +0x3',
      'r0 = 0x1 ll',
      'gotol -0x4',
      'r0 = 0x0',
      'call pc-0x6',
      'call pc+0x0',
      'exit',
    ]);
    expect(prog[0]!.symbol).toBe('entry');
    expect(prog[3]!.symbol).toBe('out');
    expect(prog[0]!.reference).toBeUndefined();
    expect(prog[5]!.reference).toBe('elsewhere'); // left for the linker
    expect(() => asm.link([asm.ja('nowhere'), asm.exit()])).toThrow('insn 0: jump to undefined label "nowhere"');
    const far = [asm.ja('end'), ...Array.from({ length: 0x8000 }, () => asm.Mov64.imm(R0, 0)), asm.label('end'), asm.exit()];
    expect(() => asm.link(far)).toThrow('insn 0: label "end" is 32768 slots away, beyond a 16-bit jump offset (use gotol)');
  });
});

describe('assembler', () => {
  it('round-trips every sample: bytes → text → bytes', () => {
    const all = SAMPLES.map(([, s]) => s);
    const text = decode(new Uint8Array(encode(all))).map((i) => formatInstruction(i)).join('\n');
    expectSameProgram(all, assemble(text).insns);
  });

  it('round-trips a program with labels through its listing text', () => {
    const text = `
      ; comments in three styles
      entry:  r2 = 0xffffffff   # the same as -1
        if w1 s<= w2 goto done  // to a label
        r1 = -0x8000000000000000 ll
        call helper_like
        gotol entry
      helper_like:
        r0 = *(u64 *)(r10 - 0x8)
      done: exit`;
    const first = assemble(text, { file: 'prog.s' });
    expect([...first.labels]).toEqual([['entry', 0], ['helper_like', 5], ['done', 6]]);
    const again = assemble(first.insns.map((i) => formatInstruction(i)).join('\n'));
    expectSameProgram(first.insns, again.insns);
    expect(formatInstruction(first.insns[0]!)).toBe('r2 = -0x1');
    expect(first.insns[3]!.imm).toBe(1); // call helper_like: slot 4 → slot 6 (after the lddw)
  });

  it('reports every error with line and column', () => {
    const text = ['r0 = 1', 'r1 += r11', 'if r1 > 5 goto', 'w1 = *(u32 *)(r2 + 0x10000)', 'r1 = -r2', 'r0 = 0x100000000', 'bogus r1', 'x: exit', 'x: exit'].join('\n');
    let error: unknown;
    try {
      assemble(text, { file: 'bad.s' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AssemblyError);
    expect((error as AssemblyError).message.split('\n')).toEqual([
      "bad.s:2:7: unexpected 'r11', expected an immediate",
      'bad.s:3:15: expected a jump target',
      'bad.s:4:20: offset 65536 is out of range -32768..32767',
      "bad.s:5:7: r2 must be the same register as r1",
      "bad.s:6:17: expected 'll' at end of line", // a 64-bit constant needs lddw
      "bad.s:7:1: unknown instruction 'bogus'",
      'bad.s:9:1: label "x" is already defined',
    ]);
  });

  it('refuses unknown symbols unless told to leave them to the linker', () => {
    expect(() => assemble('goto out\nexit')).toThrow('<asm>:1:1: jump to undefined label "out"');
    expect(() => assemble('r1 = my_map ll\nexit')).toThrow('<asm>:1:1: undefined symbol "my_map"');
    const { insns } = assemble('r1 = my_map ll\ncall other\nexit', { allowExternal: true });
    expect(insns.map((i) => i.reference)).toEqual(['my_map', 'other', undefined]);
  });
});

describe('disassembler', () => {
  it('keeps what llvm-objdump-19 drops, and can print exactly what it prints', () => {
    // Bytes checked by hand against RFC 9669 and the kernel's encoding; llvm-mc-19 cannot
    // express these as text (see asm-llvm.test.ts), so they are pinned here.
    const cases: Array<[string, string, string]> = [
      ['85100000fbffffff', 'call pc-0x5', 'call -0x5'], // the bytes llvm-mc-19 emits for a local `call foo`
      ['8520010005000000', 'call kfunc 0x5, 0x1', 'call 0x5'],
      ['1821000003000000' + '0000000008000000', 'ld_pseudo\tr1, 0x2, 0x3, 0x8', 'ld_pseudo\tr1, 0x2, 0x3'],
      ['4010000005000000', 'r0 = *(u32 *)skb[r1 + 0x5]', 'r0 = *(u32 *)skb[r1]'],
      ['06000000ffffff7f', 'gotol +0x7fffffff', 'gotol +0x7fffffff'],
    ];
    for (const [hex, lossless, llvm] of cases) {
      const [insn] = decode(new Uint8Array(Buffer.from(hex, 'hex')));
      expect(formatInstruction(insn!)).toBe(lossless);
      expect(formatInstruction(insn!, { dialect: 'llvm' })).toBe(llvm);
      expect(hexOf(assemble(lossless).insns)).toBe(hex);
    }
    expect(formatInstruction({ opcode: 0x87, dst: 1, src: 0, offset: 0, imm: 1 })).toBe('<unknown>');
  });

  it('formats a listing with symbols, targets, sources and a mark', () => {
    const { insns } = assemble('entry:\n  if r1 == 0 goto out\n  r0 = 1 ll\nout:\n  exit', { file: 'p.s' });
    insns.push({ opcode: 0x8d, dst: 0, src: 0, offset: 0, imm: 0 });
    expect(formatListing(insns, { mark: 3 })).toBe(
      [
        'entry:',
        '      0: if r1 == 0x0 goto +0x2 <out>        ; p.s:2: if r1 == 0 goto out',
        '      1: r0 = 0x1 ll                         ; p.s:3: r0 = 1 ll',
        'out:',
        '=>    3: exit                                ; p.s:5: exit',
        '      4: <unknown>                           ; opcode 0x8d dst 0 src 0 off 0 imm 0x0',
      ].join('\n'),
    );
    expect(formatListing(insns.slice(0, 1), { bytes: true, source: false })).toBe('entry:\n      0: 15 01 02 00 00 00 00 00                          if r1 == 0x0 goto +0x2');
  });

  it('shows both listings when programs differ', () => {
    const diff = compareListings([asm.Mov64.imm(R0, 1), asm.exit()], [asm.Mov64.imm(R0, 2), asm.exit()]);
    expect(diff).toBe(
      ['bytecode differs', '  expected          | actual', '!       0: r0 = 0x1 |       0: r0 = 0x2', '        1: exit     |       1: exit'].join('\n'),
    );
    expect(compareListings([asm.exit()], [asm.exit()])).toBeUndefined();
  });
});
