// The bpf_conformance plugin protocol.
import { describe, expect, it } from 'vitest';
import { conformancePlugin } from '../runtime/vm/index.ts';

describe('conformance plugin', () => {
  it('runs hex bytecode from stdin and prints r0', () => {
    expect(conformancePlugin([], 'b7 00 00 00 03 00 00 00 95 00 00 00 00 00 00 00')).toEqual({ stdout: '0x3\n', stderr: '', exitCode: 0 });
  });

  it('passes memory as r1 and its length as r2', () => {
    // r0 = *(u8 *)(r1 + 1); r0 += r2; exit
    const program = '71 10 01 00 00 00 00 00 0f 20 00 00 00 00 00 00 95 00 00 00 00 00 00 00';
    expect(conformancePlugin(['aa  bb  11  '], program).stdout).toBe(`0x${(0xbb + 3).toString(16)}\n`);
  });

  it('prints 64-bit results unsigned', () => {
    // r0 = -1; exit
    expect(conformancePlugin([], 'b7 00 00 00 ff ff ff ff 95 00 00 00 00 00 00 00').stdout).toBe('0xffffffffffffffff\n');
  });

  it('fails with a message on stderr for invalid programs and faults', () => {
    const bad = conformancePlugin([], 'b7 00 00 00 03 00 00 00');
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toContain('falls off the end');
    const fault = conformancePlugin([], '79 00 00 00 00 00 00 00 95 00 00 00 00 00 00 00');
    expect(fault.exitCode).not.toBe(0);
    expect(fault.stderr).toContain('out of bounds memory access at PC 0');
    expect(conformancePlugin([], 'zz').exitCode).not.toBe(0);
  });
});
