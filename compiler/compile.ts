// The compiler entry point. A ts.Program and its type checker give the typed AST; compilation
// runs as a custom `before` transformer inside program.emit, so one pass over a source file gives
// both the BPF object (ObjectSpec, and ELF bytes when asked) and the JavaScript of the module.
//
// Pipeline per program (folders in order):
//   frontend/  typed TS AST → IR (CFG of basic blocks, virtual registers), diagnostics
//   opt/       constant folding + copy propagation, dead-code elimination, CFG simplification
//   isel/      legalize (two-address form, immediates)
//   regalloc/  graph colouring onto r0–r9 with spills; stack frame layout (≤ 512 bytes)
//   isel/      instruction selection → Instruction[] with relocations and line info
//   → ObjectSpec (+ BTF) → ELF via compiler/elf/writer.ts

import ts from 'typescript';
import { addFunc, addInt, addKptr, addPtr, findOrAdd } from './btf/builders.ts';
import { Btf } from './btf/btf.ts';
import { IntEncoding, Linkage } from './btf/types.ts';
import { type Diagnostic, diag, formatDiagnostic } from './diagnostics.ts';
import type { MapSpec, ObjectSpec, ProgramSpec } from './elf/spec.ts';
import { type IrFunction, formatFunction } from './ir/ir.ts';
import { ModuleInfo, mapTypeNumber } from './frontend/module.ts';
import { KFUNC_PROTOTYPES } from './frontend/helpers.ts';
import { checkLockMaps, checkSpinLocks } from './frontend/locks.ts';
import type { DType } from './frontend/types.ts';
import { legalize } from './isel/legalize.ts';
import { select } from './isel/select.ts';
import { optimise } from './opt/index.ts';
import { simplifyCfg } from './opt/cfg.ts';
import { allocateRegisters, layoutFrame } from './regalloc/allocate.ts';
import { writeObject } from './elf/writer.ts';
import { BPF_F_RDONLY_PROG, bpf_map_type } from '../runtime/sys/constants.ts';
import { linesFromSource } from './elf/writer.ts';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface CompileOptions {
  /** Also produce ELF bytes (needs compiler/elf/writer.ts). */
  elf?: boolean;
  /** Keep the IR listing of each program (after optimisation), for debugging and tests. */
  ir?: boolean;
  /** Skip the optimiser (for testing that optimisation preserves behaviour). */
  optimise?: boolean;
}

export interface CompileResult {
  object: ObjectSpec;
  elf?: Buffer;
  diagnostics: Diagnostic[];
  /** The module's JavaScript (the same source, for running in Node). */
  js: string;
  ir: Record<string, string>;
  /** Whether any diagnostic is an error. */
  failed: boolean;
  /** The DSL source files compiled into the object: this one, then the files it imports. */
  files: string[];
}

const STACK_LIMIT = 512;

export function compileFile(path: string, opts: CompileOptions = {}): CompileResult {
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    skipLibCheck: true,
    rewriteRelativeImportExtensions: true,
    types: [],
    noEmitOnError: false,
  };
  const program = ts.createProgram([path], options);
  const checker = program.getTypeChecker();
  const sourceFile = program.getSourceFile(path);
  const diagnostics: Diagnostic[] = [];
  const object: ObjectSpec = { license: 'GPL', programs: [], functions: [], maps: [], variables: [], btf: new Btf() };
  const irDumps: Record<string, string> = {};
  let js = '';
  let files: string[] = [path];
  if (!sourceFile) throw new Error(`cannot read ${path}`);

  for (const d of [...program.getSyntacticDiagnostics(sourceFile), ...program.getSemanticDiagnostics(sourceFile)]) {
    if (d.category === ts.DiagnosticCategory.Error) diagnostics.push(diag.typescript(d));
  }

  const bpf: ts.TransformerFactory<ts.SourceFile> = () => (sf) => {
    if (sf.fileName !== sourceFile.fileName) return sf;
    const module = new ModuleInfo(checker, program.getSourceFile(sf.fileName)!);
    module.collect();
    const btf = object.btf!;
    const typeIds = new Map<DType, number>();
    for (const m of module.mapOrder) {
      if (m.kind === 'ringbuf') {
        object.maps.push({ name: m.name, type: mapTypeNumber(m.kind), keySize: 0, valueSize: 0, maxEntries: m.maxEntries, flags: m.flags, pinning: m.pinning, keyTypeId: 0, valueTypeId: 0 });
        continue;
      }
      const spec: MapSpec = {
        name: m.name,
        type: mapTypeNumber(m.kind),
        keySize: m.key.size,
        valueSize: m.value.size,
        maxEntries: m.maxEntries,
        flags: m.flags,
        pinning: m.pinning,
        keyTypeId: btfType(btf, m.key, typeIds),
        valueTypeId: btfType(btf, m.value, typeIds),
      };
      object.maps.push(spec);
    }
    layoutGlobals(module, object, (t) => btfType(btf, t, typeIds));
    /** optimise → legalize → allocate → frame → select, for a program or a .text function. */
    const backEnd = (f: IrFunction, decl: ts.FunctionDeclaration): ReturnType<typeof select> => {
      if (opts.optimise !== false) optimise(f);
      legalize(f);
      allocateRegisters(f);
      simplifyCfg(f); // moves coalesced away can leave blocks that only jump
      const frame = layoutFrame(f);
      if (frame > STACK_LIMIT) module.diagnostics.push(diag.stackLimit(decl.name ?? decl, frame));
      if (opts.ir) irDumps[f.name] = formatFunction(f);
      const selected = select(f);
      for (const r of selected.relocations) if (r.kind === 'kfunc') declareKfunc(btf, r.symbol);
      return selected;
    };
    // The spin lock rules (compiler/frontend/locks.ts), on the IR as lowered (before the back end).
    const lockMemo = new Map<string, boolean>();
    module.diagnostics.push(...checkLockMaps(module.mapOrder, module.files));
    const textFunctions = (): Map<string, IrFunction> => new Map(module.subprograms.flatMap((s) => (s.ir ? [[s.name, s.ir] as [string, IrFunction]] : [])));
    for (const p of module.programs) {
      const lowered = module.lowerProgram(p);
      module.diagnostics.push(...checkSpinLocks(lowered.ir, textFunctions(), lockMemo));
      const { instructions, relocations } = backEnd(lowered.ir, p.decl);
      if (instructions.length > 0) instructions[0] = { ...instructions[0]!, symbol: p.name };
      const funcId = addFunc(btf, p.name, addInt(btf, 'int', 4, true), [{ name: 'ctx', type: addPtr(btf, 0) }], Linkage.GLOBAL);
      const spec: ProgramSpec = {
        name: p.name,
        section: p.section,
        progType: p.progType,
        attachType: p.attachType,
        sleepable: p.context === 'syscall' || p.section.endsWith('.s'),
        instructions,
        relocations,
        funcInfo: [{ insnOff: 0, typeId: funcId }],
        lineInfo: linesFromSource(instructions),
      };
      object.programs.push(spec);
    }
    // .text functions: lowered while the programs that call them were.
    const text = textFunctions();
    for (const sub of module.subprograms) if (sub.ir) module.diagnostics.push(...checkSpinLocks(sub.ir, text, lockMemo));
    for (const sub of module.subprograms) {
      if (!sub.ir) continue;
      const { instructions, relocations } = backEnd(sub.ir, sub.fn);
      if (instructions.length > 0) instructions[0] = { ...instructions[0]!, symbol: sub.name };
      const long = addInt(btf, 'long', 8, true);
      const funcId = addFunc(btf, sub.name, long, sub.fn.parameters.map((prm, i) => ({ name: ts.isIdentifier(prm.name) ? prm.name.text : `arg${i}`, type: long })), Linkage.STATIC);
      object.functions.push({ name: sub.name, instructions, relocations, funcInfo: [{ insnOff: 0, typeId: funcId }], lineInfo: linesFromSource(instructions) });
    }
    // TypeScript's own errors in the imported files too: their code is compiled here.
    for (const f of module.files.slice(1)) {
      for (const d of [...program.getSyntacticDiagnostics(f), ...program.getSemanticDiagnostics(f)]) {
        if (d.category === ts.DiagnosticCategory.Error) diagnostics.push(diag.typescript(d));
      }
    }
    files = module.files.map((f) => f.fileName);
    diagnostics.push(...module.diagnostics);
    return userspaceModule(sf, module, basename(sf.fileName).replace(/\.ts$/, ''));
  };

  program.emit(sourceFile, (name, text) => {
    if (name.endsWith('.js')) js = text;
  }, undefined, false, { before: [bpf] });

  const failed = diagnostics.some((d) => d.severity === 'error');
  let elf: Buffer | undefined;
  if (opts.elf && !failed) elf = writeObject(object);
  return { object, elf, diagnostics, js, ir: irDumps, failed, files };
}

const USERSPACE = pathToFileURL(resolve(dirname(fileURLToPath(import.meta.url)), 'dsl', 'userspace.ts')).href;

/** The JavaScript side of a DSL file (issue 3, "one source file gives two things"): each program
 *  becomes `{ object: 'bpf-out/<file>.o', program: '<name>' }`, each map declaration a typed
 *  userspace handle (compiler/dsl/userspace.ts) built from the same key/value descriptors, and
 *  relative imports absolute file URLs (the module runs wherever it is written). */
function userspaceModule(sf: ts.SourceFile, module: ModuleInfo, objectName: string): ts.SourceFile {
  const f = ts.factory;
  const str = (t: string): ts.StringLiteral => f.createStringLiteral(t);
  const exportMods = [f.createModifier(ts.SyntaxKind.ExportKeyword)];
  const out: ts.Statement[] = [
    f.createImportDeclaration(undefined, f.createImportClause(false, undefined, f.createNamespaceImport(f.createIdentifier('__ebpf'))), str(USERSPACE)),
  ];
  const programRef = (name: string): ts.Statement => {
    const ref = f.createObjectLiteralExpression([f.createPropertyAssignment('object', str(`bpf-out/${objectName}.o`)), f.createPropertyAssignment('program', str(name))]);
    const frozen = f.createCallExpression(f.createPropertyAccessExpression(f.createIdentifier('Object'), 'freeze'), undefined, [ref]);
    return f.createVariableStatement(exportMods, f.createVariableDeclarationList([f.createVariableDeclaration(name, undefined, undefined, frozen)], ts.NodeFlags.Const));
  };
  for (let s of sf.statements) {
    const program = ts.isFunctionDeclaration(s) ? module.programs.find((p) => p.decl === s) : undefined;
    if (program) {
      out.push(programRef(program.name));
      continue;
    }
    // `export { ingress } from './engine.ts'`: a program of this object (ModuleInfo), so a
    // reference into this object, not the imported module's.
    if (ts.isExportDeclaration(s) && s.exportClause && ts.isNamedExports(s.exportClause)) {
      const typeOnly = s.isTypeOnly;
      const isProgram = (e: ts.ExportSpecifier): boolean => !typeOnly && !e.isTypeOnly && module.programs.some((p) => p.name === e.name.text && p.decl.getSourceFile() !== sf);
      const programs = s.exportClause.elements.filter(isProgram);
      if (programs.length > 0) {
        for (const e of programs) out.push(programRef(e.name.text));
        const rest = s.exportClause.elements.filter((e) => !isProgram(e));
        if (rest.length === 0) continue;
        s = f.updateExportDeclaration(s, s.modifiers, s.isTypeOnly, f.updateNamedExports(s.exportClause, rest), s.moduleSpecifier, s.attributes);
      }
    }
    if ((ts.isImportDeclaration(s) || ts.isExportDeclaration(s)) && s.moduleSpecifier && ts.isStringLiteral(s.moduleSpecifier) && s.moduleSpecifier.text.startsWith('.')) {
      const url = str(pathToFileURL(resolve(dirname(sf.fileName), s.moduleSpecifier.text)).href);
      out.push(ts.isImportDeclaration(s) ? f.updateImportDeclaration(s, s.modifiers, s.importClause, url, s.attributes) : f.updateExportDeclaration(s, s.modifiers, s.isTypeOnly, s.exportClause, url, s.attributes));
      continue;
    }
    if (ts.isVariableStatement(s)) {
      const decls = s.declarationList.declarations.map((d) => {
        const sym = ts.isIdentifier(d.name) ? module.checker.getSymbolAtLocation(d.name) : undefined;
        const m = sym && module.maps.get(sym);
        const init = d.initializer && ts.isCallExpression(d.initializer) ? d.initializer : undefined;
        const opts = init?.arguments[0];
        if (!m || !opts || !ts.isObjectLiteralExpression(opts)) return d;
        const option = (name: string): ts.Expression | undefined => opts.properties.find((p): p is ts.PropertyAssignment => ts.isPropertyAssignment(p) && ts.isIdentifier(p.name) && p.name.text === name)?.initializer;
        const props = [
          f.createPropertyAssignment('name', str(m.name)),
          f.createPropertyAssignment('kind', str(m.kind)),
          ...(['key', 'value'] as const).flatMap((k) => (option(k) ? [f.createPropertyAssignment(k, option(k)!)] : [])),
          f.createPropertyAssignment('maxEntries', f.createNumericLiteral(m.maxEntries)),
          f.createPropertyAssignment('flags', f.createNumericLiteral(m.flags)),
        ];
        const handle = f.createCallExpression(f.createPropertyAccessExpression(f.createIdentifier('__ebpf'), 'mapHandle'), undefined, [f.createObjectLiteralExpression(props)]);
        return f.updateVariableDeclaration(d, d.name, d.exclamationToken, undefined, handle);
      });
      out.push(f.updateVariableStatement(s, s.modifiers, f.updateVariableDeclarationList(s.declarationList, decls)));
      continue;
    }
    out.push(s);
  }
  return f.updateSourceFile(sf, out);
}

/** Place every rodata/global in its section (C alignment), and describe each section as a
 *  global-data map (one array entry holding the whole section) with its variables. */
function layoutGlobals(module: ModuleInfo, object: ObjectSpec, typeId: (t: DType) => number): void {
  for (const section of ['.rodata', '.data', '.bss'] as const) {
    const members = [...module.globals.values()].filter((g) => g.section === section);
    if (members.length === 0) continue;
    let size = 0;
    for (const g of members) {
      const align = g.type.kind === 'int' ? g.type.size : g.type.align;
      g.offset = Math.ceil(size / align) * align;
      size = g.offset + g.type.size;
    }
    size = Math.ceil(size / 8) * 8;
    const initialValue = Buffer.alloc(size);
    for (const g of members) {
      initialValue.set(g.init, g.offset);
      object.variables.push({ name: g.name, section, offset: g.offset, size: g.type.size, typeId: typeId(g.type) });
    }
    object.maps.push({
      name: section,
      type: bpf_map_type.BPF_MAP_TYPE_ARRAY,
      keySize: 4,
      valueSize: size,
      maxEntries: 1,
      flags: section === '.rodata' ? BPF_F_RDONLY_PROG : 0,
      pinning: 0,
      keyTypeId: 0,
      valueTypeId: 0,
      section,
      initialValue: section === '.bss' ? undefined : initialValue,
      readOnly: section === '.rodata',
    });
  }
}

/** An extern FUNC for kfunc `name` (listed in .ksyms by the ELF writer), from KFUNC_PROTOTYPES. */
function declareKfunc(btf: Btf, name: string): void {
  if (btf.findAll(name, 'func').length > 0) return;
  const proto = KFUNC_PROTOTYPES[name];
  if (!proto) throw new Error(`kfunc ${name}: no prototype in compiler/frontend/helpers.ts`);
  const type = (c: string): number => {
    const ptr = c.endsWith('*');
    const base = c.replace(/\s*\*$/, '');
    let id: number;
    if (base.startsWith('struct ')) {
      const n = base.slice(7);
      id = btf.findStruct(n) ?? btf.add({ kind: 'struct', name: n, size: 0, members: [] });
    } else if (base === 'void') id = 0;
    else if (base === 'int') id = addInt(btf, 'int', 4, true);
    else if (base === 'u32') id = addInt(btf, 'unsigned int', 4, false);
    else if (base === 'u64') id = addInt(btf, 'unsigned long long', 8, false);
    else throw new Error(`kfunc ${name}: unknown C type ${c}`);
    return ptr ? addPtr(btf, id) : id;
  };
  const fproto = btf.add({ kind: 'func_proto', returnType: type(proto.returns), params: proto.params.map(([n, t]) => ({ name: n, type: type(t) })) });
  btf.add({ kind: 'func', name, type: fproto, linkage: Linkage.EXTERN });
}

/** The BTF of a DSL type (ints, arrays, structs), deduplicated per compilation. */
function btfType(btf: Btf, t: DType, cache: Map<DType, number>): number {
  const hit = cache.get(t);
  if (hit !== undefined) return hit;
  let id: number;
  if (t.kind === 'int') {
    const name = t.bigEndian ? `__be${t.size * 8}` : `${t.signed ? '' : 'unsigned '}${['char', 'short', '', 'int', '', '', '', 'long long'][t.size - 1]}`.trim();
    const base = findOrAdd(btf, { kind: 'int', name: name.startsWith('__be') ? `unsigned ${t.size === 2 ? 'short' : 'int'}` : name, size: t.size, encoding: t.signed ? IntEncoding.SIGNED : 0, bitOffset: 0, bits: t.size * 8 });
    id = t.bigEndian ? findOrAdd(btf, { kind: 'typedef', name, type: base }) : base;
  } else if (t.kind === 'array') {
    const index = addInt(btf, '__ARRAY_SIZE_TYPE__', 4, false);
    id = findOrAdd(btf, { kind: 'array', type: btfType(btf, t.element, cache), indexType: index, nelems: t.length });
  } else if (t.kind === 'kptr') {
    id = addKptr(btf, t.target);
  } else {
    const members = t.layout.map((f) => ({ name: f.name, type: btfType(btf, f.type, cache), bitOffset: f.offset * 8 }));
    id = btf.add({ kind: 'struct', name: t.name === 'anon' ? '' : t.name, size: t.size, members });
  }
  cache.set(t, id);
  return id;
}

export { formatDiagnostic };
