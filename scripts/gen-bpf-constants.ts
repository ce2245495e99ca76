// Generates runtime/sys/constants.ts from the kernel UAPI header, so no bpf() number is typed by hand.
//
//   npx tsx scripts/gen-bpf-constants.ts [--header PATH] [--btf PATH|--no-btf] [--out PATH] [--check]
//
// Passes:
//   1. Read the header (default /usr/include/linux/bpf.h), join continued lines, strip comments.
//   2. Collect object-like #defines and enum members (named enums keep their grouping) as unevaluated
//      expressions, then evaluate them lazily, so a #define may name an enum member declared later
//      (BPF_F_REDIRECT_FLAGS does).
//   3. Collect helper ids from __BPF_FUNC_MAPPER (≤ 6.1: FN(name), id = position) or
//      ___BPF_FUNC_MAPPER (≥ 6.2: FN(name, id, ctx)).
//   4. Merge in the running kernel's BTF (/sys/kernel/btf/vmlinux), enums only: the installed
//      header can lag the kernel (Debian 12 ships 6.1 UAPI, which has no BPF_TCX_INGRESS or
//      BPF_LINK_TYPE_TCX). Only members of enums the header also names are added, and a value that
//      disagrees with the header is an error. #defines are not in BTF, so flags such as BPF_F_BEFORE
//      (6.6) come only from a header that has them: pass --header for a newer copy.
//   5. Emit TypeScript: one `as const` object per named enum, the helper table, and every name as a
//      top-level constant. Values beyond 2^53 are bigint literals.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

interface Member {
  name: string;
  value: bigint;
  fromBtf?: boolean;
}
interface EnumDecl {
  name: string;
  members: Member[];
}
export interface Parsed {
  enums: EnumDecl[]; // named enums, in header order
  constants: Map<string, bigint>; // every evaluable name: #defines and enum members
  helpers: Member[]; // BPF_FUNC_* in id order
  unevaluated: string[]; // #defines skipped (function-like bodies, casts, strings)
}

// ---- pass 1 and 2: the header -------------------------------------------------------------

function stripComments(text: string): string {
  return text
    .replace(/\\\n/g, ' ') // continued lines first, so a #define is one line
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\/\/[^\n]*/g, '');
}

/** A tiny evaluator for the C constant expressions the UAPI header uses: integers with U/L suffixes,
 *  names, unary - ~, binary << >> | & + -, parentheses and (__u64)-style casts (ignored). */
function evaluate(expr: string, lookup: (name: string) => bigint | undefined): bigint | undefined {
  const tokens = expr.match(/0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*|[A-Za-z_]\w*|<<|>>|[()|&+\-~]/g);
  if (!tokens || tokens.join('') !== expr.replace(/\s+/g, '')) return undefined;
  let pos = 0;
  const peek = (): string | undefined => tokens[pos];
  const primary = (): bigint | undefined => {
    const t = tokens[pos++];
    if (t === undefined) return undefined;
    if (t === '(') {
      // A cast like (__u64) is "(" type ")" followed by an operand.
      if (/^__[us]\d+$|^unsigned$|^int$|^long$/.test(peek() ?? '') && tokens[pos + 1] === ')') {
        pos += 2;
        return unary();
      }
      const v = or();
      if (tokens[pos++] !== ')') return undefined;
      return v;
    }
    if (t === '-') {
      const v = unary();
      return v === undefined ? undefined : -v;
    }
    if (t === '~') {
      const v = unary();
      return v === undefined ? undefined : ~v;
    }
    if (/^\d/.test(t)) return BigInt(t.replace(/[uUlL]+$/, ''));
    if (/^[A-Za-z_]/.test(t)) return lookup(t);
    return undefined;
  };
  const unary = primary;
  const binary = (next: () => bigint | undefined, ops: string[], apply: (op: string, a: bigint, b: bigint) => bigint) => () => {
    let a = next();
    while (a !== undefined && ops.includes(peek() ?? '')) {
      const op = tokens[pos++];
      const b = next();
      if (b === undefined) return undefined;
      a = apply(op, a, b);
    }
    return a;
  };
  const additive = binary(unary, ['+', '-'], (op, a, b) => (op === '+' ? a + b : a - b));
  const shift = binary(additive, ['<<', '>>'], (op, a, b) => (op === '<<' ? a << b : a >> b));
  const and = binary(shift, ['&'], (_op, a, b) => a & b);
  const or = binary(and, ['|'], (_op, a, b) => a | b);
  const v = or();
  return pos === tokens.length ? v : undefined;
}

export function parseHeader(text: string): Parsed {
  const src = stripComments(text);
  const expressions = new Map<string, string>(); // name → expression, in declaration order
  const order: string[] = [];
  const declare = (name: string, expr: string) => {
    if (!expressions.has(name)) order.push(name);
    // `#define BPF_F_LINK BPF_F_LINK` marks an enum member as a macro for #ifdef; keep the enum's.
    if (expr.trim() === name) return;
    expressions.set(name, expr);
  };

  const defineRe = /^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)(?![\w(])[ \t]*([^\n]*)$/gm;
  const rawEnums: { name: string; members: string[] }[] = [];
  // Enum bodies may contain #define lines (BPF_F_REDIRECT_FLAGS sits inside an enum): take the
  // defines first, then drop every preprocessor line before reading enum bodies.
  for (const m of src.matchAll(defineRe)) if (m[2].trim() !== '') declare(m[1], m[2].trim());
  const noPreprocessor = src.replace(/^[ \t]*#[^\n]*$/gm, '');
  for (const m of noPreprocessor.matchAll(/\benum\s+(\w+)?\s*\{([^}]*)\}/g)) {
    const names: string[] = [];
    let previous: string | undefined;
    for (const entry of m[2].split(',')) {
      const e = /^\s*([A-Za-z_]\w*)\s*(?:=\s*([\s\S]+?))?\s*$/.exec(entry);
      if (!e) continue;
      // An implicit value is the previous member plus one.
      declare(e[1], e[2] ?? (previous === undefined ? '0' : `${previous} + 1`));
      names.push(e[1]);
      previous = e[1];
    }
    if (m[1] && m[1] !== 'bpf_func_id') rawEnums.push({ name: m[1], members: names });
  }

  const constants = new Map<string, bigint>();
  const unevaluated: string[] = [];
  const resolving = new Set<string>();
  const lookup = (name: string): bigint | undefined => {
    if (constants.has(name)) return constants.get(name);
    const expr = expressions.get(name);
    if (expr === undefined || resolving.has(name)) return undefined;
    resolving.add(name);
    const v = evaluate(expr, lookup);
    resolving.delete(name);
    if (v !== undefined) constants.set(name, v);
    return v;
  };
  const ordered = new Map<string, bigint>();
  for (const name of order) {
    if (name.startsWith('_')) continue; // include guards, __BPF_*_MAPPER helpers
    const v = lookup(name);
    if (v === undefined) unevaluated.push(name);
    else ordered.set(name, v);
  }

  const enums = rawEnums.map(({ name, members }) => ({
    name,
    members: members.filter((n) => !n.startsWith('__') && ordered.has(n)).map((n) => ({ name: n, value: ordered.get(n)! })),
  }));

  // ---- pass 3: helpers
  const helpers: Member[] = [];
  const mapper = /#[ \t]*define[ \t]+_{2,3}BPF_FUNC_MAPPER\((?:FN|[^)]*)\)([^\n]*)/.exec(src);
  if (!mapper) throw new Error('no __BPF_FUNC_MAPPER / ___BPF_FUNC_MAPPER in header');
  let position = 0;
  for (const fn of mapper[1].matchAll(/FN\(\s*(\w+)\s*(?:,\s*(\d+))?[^)]*\)/g)) {
    const id = fn[2] !== undefined ? BigInt(fn[2]) : BigInt(position);
    helpers.push({ name: `BPF_FUNC_${fn[1]}`, value: id });
    position++;
  }
  return { enums, constants: ordered, helpers, unevaluated };
}

// ---- pass 4: enums from kernel BTF -----------------------------------------------------------

/** Named enums in a raw BTF blob (ENUM and ENUM64), as name → members. Only what this needs:
 *  type records are walked to skip their trailing data, nothing else is decoded. */
export function btfEnums(blob: Buffer): Map<string, Member[]> {
  // struct btf_header { u16 magic; u8 version; u8 flags; u32 hdr_len;
  //                     u32 type_off; u32 type_len; u32 str_off; u32 str_len; }
  if (blob.readUInt16LE(0) !== 0xeb9f) throw new Error('not a little-endian BTF blob');
  const hdrLen = blob.readUInt32LE(4);
  const typeStart = hdrLen + blob.readUInt32LE(8);
  const typeEnd = typeStart + blob.readUInt32LE(12);
  const strStart = hdrLen + blob.readUInt32LE(16);
  const str = (off: number) => blob.toString('latin1', strStart + off, blob.indexOf(0, strStart + off));
  const out = new Map<string, Member[]>();
  for (let p = typeStart; p < typeEnd; ) {
    // struct btf_type { u32 name_off; u32 info (vlen:16, kind:5 at bit 24, kflag at 31); u32 size_or_type; }
    const nameOff = blob.readUInt32LE(p);
    const info = blob.readUInt32LE(p + 4);
    const vlen = info & 0xffff;
    const kind = (info >>> 24) & 0x1f;
    const kflag = info >>> 31; // set: members are signed
    p += 12;
    let tail: number;
    switch (kind) {
      case 1: /* INT */ case 14: /* VAR */ case 17: /* DECL_TAG */ tail = 4; break;
      case 3: /* ARRAY */ tail = 12; break;
      case 4: /* STRUCT */ case 5: /* UNION */ tail = 12 * vlen; break;
      case 6: /* ENUM */ tail = 8 * vlen; break;
      case 13: /* FUNC_PROTO */ tail = 8 * vlen; break;
      case 15: /* DATASEC */ tail = 12 * vlen; break;
      case 19: /* ENUM64 */ tail = 12 * vlen; break;
      default: tail = 0; // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG: no trailing data
    }
    if ((kind === 6 || kind === 19) && nameOff !== 0) {
      const members: Member[] = [];
      for (let i = 0; i < vlen; i++) {
        if (kind === 6) {
          const q = p + 8 * i;
          const v = kflag ? BigInt(blob.readInt32LE(q + 4)) : BigInt(blob.readUInt32LE(q + 4));
          members.push({ name: str(blob.readUInt32LE(q)), value: v });
        } else {
          const q = p + 12 * i;
          const v = (BigInt(blob.readUInt32LE(q + 8)) << 32n) | BigInt(blob.readUInt32LE(q + 4));
          members.push({ name: str(blob.readUInt32LE(q)), value: kflag ? BigInt.asIntN(64, v) : v });
        }
      }
      out.set(str(nameOff), members);
    }
    p += tail;
  }
  return out;
}

export function mergeBtf(parsed: Parsed, enums: Map<string, Member[]>): number {
  let added = 0;
  const addTo = (target: Member[], from: Member[] | undefined, where: string) => {
    if (!from) return;
    const known = new Map(target.map((m) => [m.name, m.value]));
    for (const m of from) {
      if (m.name.startsWith('__')) continue; // __MAX_BPF_* sentinels
      const have = known.get(m.name) ?? parsed.constants.get(m.name);
      if (have !== undefined) {
        if (have !== m.value) throw new Error(`${where}: ${m.name} is ${have} in the header but ${m.value} in kernel BTF`);
        continue;
      }
      target.push({ ...m, fromBtf: true });
      parsed.constants.set(m.name, m.value);
      added++;
    }
  };
  for (const e of parsed.enums) addTo(e.members, enums.get(e.name), `enum ${e.name}`);
  addTo(parsed.helpers, enums.get('bpf_func_id'), 'enum bpf_func_id');
  parsed.helpers.sort((a, b) => Number(a.value - b.value));
  return added;
}

// ---- pass 5: TypeScript ------------------------------------------------------------------------

function literal(v: bigint): string {
  const safe = v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER);
  if (!safe) return `${v < 0n ? '-' : ''}0x${(v < 0n ? -v : v).toString(16)}n`;
  return v >= 0x10000n ? `0x${v.toString(16)}` : v.toString();
}

export function emit(parsed: Parsed, sources: string): string {
  const out: string[] = [];
  out.push(`// GENERATED by scripts/gen-bpf-constants.ts from ${sources}. Do not edit: run \`npx tsx scripts/gen-bpf-constants.ts\`.`);
  out.push('// Names are the kernel\'s own. Members marked "kernel BTF" are newer than the installed UAPI header.');
  out.push('/* eslint-disable */');
  out.push('');
  const block = (name: string, doc: string, members: Member[]) => {
    out.push(`/** ${doc} */`);
    out.push(`export const ${name} = {`);
    for (const m of members) out.push(`  ${m.name}: ${literal(m.value)},${m.fromBtf ? ' // kernel BTF' : ''}`);
    out.push('} as const;');
    out.push(`export type ${name} = (typeof ${name})[keyof typeof ${name}];`);
    out.push('');
  };
  for (const e of parsed.enums) block(e.name, `enum ${e.name}`, e.members);
  block('bpf_func_id', 'enum bpf_func_id: helper ids, from the BPF_FUNC_MAPPER list', parsed.helpers);
  out.push('/** Helper id by the helper\'s name without the bpf_ prefix (map_lookup_elem → 1). */');
  out.push('export const helperIds: Readonly<Record<string, number>> = Object.fromEntries(');
  out.push("  Object.entries(bpf_func_id).map(([name, id]) => [name.slice('BPF_FUNC_'.length), id]),");
  out.push(');');
  out.push('');
  out.push('// Every name as a constant: #defines, anonymous-enum members, named-enum members.');
  const emitted = new Set<string>();
  const top = (name: string, value: bigint, fromBtf?: boolean) => {
    if (emitted.has(name)) return;
    emitted.add(name);
    out.push(`export const ${name} = ${literal(value)};${fromBtf ? ' // kernel BTF' : ''}`);
  };
  for (const [name, value] of parsed.constants) {
    const inEnum = parsed.enums.find((e) => e.members.some((m) => m.name === name && m.fromBtf));
    top(name, value, inEnum !== undefined);
  }
  for (const h of parsed.helpers) top(h.name, h.value, h.fromBtf);
  out.push('');
  return out.join('\n');
}

export interface Options {
  header?: string;
  btf?: string | null; // null: no BTF merge
}

export function generate(options: Options = {}): string {
  const header = options.header ?? '/usr/include/linux/bpf.h';
  const parsed = parseHeader(readFileSync(header, 'utf8'));
  let sources = header;
  const btf = options.btf === undefined ? '/sys/kernel/btf/vmlinux' : options.btf;
  if (btf !== null && existsSync(btf)) {
    mergeBtf(parsed, btfEnums(readFileSync(btf)));
    const release = btf === '/sys/kernel/btf/vmlinux' ? ` (Linux ${execFileSync('uname', ['-r']).toString().trim()})` : '';
    sources += ` and ${btf}${release}`;
  }
  return emit(parsed, sources);
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const args = process.argv.slice(2);
  const arg = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const out = arg('--out') ?? resolve(dirname(fileURLToPath(import.meta.url)), '../runtime/sys/constants.ts');
  const text = generate({ header: arg('--header'), btf: args.includes('--no-btf') ? null : arg('--btf') });
  if (args.includes('--check')) {
    const same = existsSync(out) && readFileSync(out, 'utf8') === text;
    console.log(same ? `${out} is up to date` : `${out} differs from what the generator writes`);
    process.exit(same ? 0 : 1);
  }
  writeFileSync(out, text);
  console.log(`wrote ${out}`);
}
