// What the guest needs to run the engine: node (copied with its shared libraries by qemu.ts),
// guest-engine.ts bundled into one ES module by esbuild, koffi (external: its native module is found
// relative to its own files, so the package is copied as it is, minus sources and docs), and the
// compiled engine object. The compiler is left out of the bundle (the guest never compiles).
//
// Layout (under the scenario directory, so --native runs it from its temporary copy too):
// engine/guest-engine.mjs, engine/node_modules/{koffi,@koromix/koffi-linux-x64}, engine/engine.o.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ArchiveEntry } from './initramfs.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const GUEST_ENGINE_DIR = '/scenario/engine';
export const GUEST_ENGINE_ENTRY = `${GUEST_ENGINE_DIR}/guest-engine.mjs`;
export const GUEST_ENGINE_OBJECT = `${GUEST_ENGINE_DIR}/engine.o`;

export class BundleUnavailable extends Error {}

let bundled: Promise<Buffer> | undefined;

/** guest-engine.ts and everything it imports but koffi and the compiler, as one ES module. */
export function bundleGuestEngine(): Promise<Buffer> {
  bundled ??= (async () => {
    let esbuild: typeof import('esbuild');
    try {
      esbuild = await import('esbuild');
    } catch (e) {
      throw new BundleUnavailable(`esbuild (installed with tsx) cannot be loaded: ${(e as Error).message}`);
    }
    const r = await esbuild.build({
      entryPoints: [join(ROOT, 'runtime/baseline/guest-engine.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      write: false,
      external: ['koffi'],
      logLevel: 'silent',
      // ESM output with CommonJS dependencies inside needs a require().
      banner: { js: "import { createRequire as __etsCreateRequire } from 'node:module'; const require = __etsCreateRequire(import.meta.url);" },
      plugins: [
        {
          name: 'no-compiler',
          setup(b) {
            // runtime/engine/node.ts imports the compiler lazily (buildEngine); the guest passes a
            // compiled object instead, so that import is never taken and stays out of the bundle.
            b.onResolve({ filter: /compiler\/compile\.ts$/ }, (a) => ({ path: a.path, external: true }));
          },
        },
      ],
    });
    if (r.errors.length || r.outputFiles.length !== 1) throw new Error(`bundling guest-engine.ts failed: ${JSON.stringify(r.errors.slice(0, 3))}`);
    return Buffer.from(r.outputFiles[0].contents);
  })();
  return bundled;
}

/** koffi's JavaScript and the Linux x64 (glibc) native module, at their node_modules paths. */
function koffiEntries(): ArchiveEntry[] {
  const entries: ArchiveEntry[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) {
        if (!['vendor', 'doc', 'musl_x64'].includes(name)) walk(path);
      } else if (/\.(js|cjs|json|node)$/.test(name) && name !== 'cnoke.cjs') {
        entries.push({ path: `${GUEST_ENGINE_DIR}/${relative(ROOT, path)}`, mode: 0o644, data: readFileSync(path) });
      }
    }
  };
  for (const pkg of ['node_modules/koffi', 'node_modules/@koromix/koffi-linux-x64']) {
    try {
      walk(join(ROOT, pkg));
    } catch (e) {
      throw new BundleUnavailable(`${pkg}: ${(e as Error).message}`);
    }
  }
  if (!entries.some((e) => e.path.endsWith('linux_x64/koffi.node'))) throw new BundleUnavailable('no linux_x64 koffi.node in node_modules');
  return entries;
}

/** The files of the engine's loader for GuestSpec.files; node itself goes in GuestSpec.binaries. */
export async function guestEngineFiles(engineObject: Buffer): Promise<ArchiveEntry[]> {
  return [
    { path: GUEST_ENGINE_ENTRY, mode: 0o644, data: await bundleGuestEngine() },
    { path: GUEST_ENGINE_OBJECT, mode: 0o644, data: engineObject },
    ...koffiEntries(),
  ];
}

const compiled = new Map<string, Promise<Buffer>>();

/** A DSL file of this repository (path relative to its root) compiled in memory, once per process. */
function compileDsl(file: string): Promise<Buffer> {
  let p = compiled.get(file);
  if (!p) {
    p = (async () => {
      const { compileFile, formatDiagnostic } = await import('../../compiler/compile.ts');
      // A repository-relative name keeps file names in line info the same on every machine.
      const rel = relative(process.cwd(), join(ROOT, file));
      const r = compileFile(rel.startsWith('..') ? join(ROOT, file) : rel, { elf: true });
      if (r.failed || !r.elf) throw new Error(`${file} does not compile:\n${r.diagnostics.map(formatDiagnostic).join('\n')}`);
      return Buffer.from(r.elf.buffer, r.elf.byteOffset, r.elf.length);
    })();
    compiled.set(file, p);
  }
  return p;
}

/**
 * engine/esp.ts compiled now, in memory: the guest loads exactly the engine of this tree, never a
 * stale bpf-out/engine.o, and nothing in the tree is written (other test files may be reading
 * bpf-out/ at the same time).
 */
export function compileEngine(): Promise<Buffer> {
  return compileDsl('engine/esp.ts');
}
