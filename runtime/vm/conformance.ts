// The bpf_conformance plugin protocol (as ubpf, rbpf and PREVAIL implement it): the program
// arrives on stdin as hex bytes separated by whitespace (or, with --elf, a hex-encoded ELF
// object whose program is the function `main`); the optional first argument is the memory in
// the same form. r1 points to the memory and r2 holds its length (both 0 without memory).
// The final r0 is printed in hex (`0x3`) with exit code 0; a program that fails to load or
// faults exits non-zero with the reason on stderr.

import { decode } from '../../compiler/asm/instruction.ts';
import { readObject } from '../../compiler/elf/reader.ts';
import { u8 } from './bytes.ts';
import { loadObject, runInstructions } from './object.ts';

export interface PluginResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

function parseHex(text: string, what: string): Buffer {
  const tokens = text.split(/\s+/).filter(Boolean);
  const out = Buffer.alloc(tokens.length);
  tokens.forEach((t, i) => {
    if (!/^(0x)?[0-9a-fA-F]{1,2}$/.test(t)) throw new Error(`${what}: "${t}" is not a hex byte`);
    out[i] = parseInt(t.replace(/^0x/, ''), 16);
  });
  return out;
}

export function conformancePlugin(argv: readonly string[], stdin: string): PluginResult {
  try {
    const elf = argv.includes('--elf');
    const memoryArg = argv.find((a) => !a.startsWith('--'));
    const memory = memoryArg === undefined ? Buffer.alloc(0) : parseHex(memoryArg, 'memory');
    const program = parseHex(stdin, 'program');
    let retval: bigint;
    if (elf) {
      const object = loadObject(readObject(program));
      if (!object.programs.has('main')) throw new Error('the ELF object has no function "main"');
      const code = object.program('main').code;
      retval = object.machine.runCode(code, 'memory', { packet: memory }).retval;
    } else {
      retval = runInstructions(decode(u8(program)), { kind: 'memory', packet: memory }).retval;
    }
    return { stdout: `0x${retval.toString(16)}\n`, stderr: '', exitCode: 0 };
  } catch (e) {
    return { stdout: '', stderr: `${(e as Error).message}\n`, exitCode: 1 };
  }
}
