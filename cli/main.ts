// The `ebpf-ts` command line. Each command lives in cli/commands/<name>.ts and is imported only
// when it runs, so a command's dependencies (koffi, the TypeScript compiler) load on demand.
import { Command, CommanderError } from 'commander';

const program = new Command()
  .name('ebpf-ts')
  .description('TypeScript toolchain for transparent encryption after xfrm: DSL → eBPF, ESP engine, runtime')
  .option('--debug', 'print stack traces of internal errors')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

const commands: { name: string; load: () => Promise<{ register(program: Command): void }> }[] = [
  { name: 'asm', load: () => import('./commands/asm.ts') },
  { name: 'disasm', load: () => import('./commands/disasm.ts') },
  { name: 'run', load: () => import('./commands/run.ts') },
  { name: 'conformance-plugin', load: () => import('./commands/conformance.ts') },
  { name: 'demo', load: () => import('./commands/demo.ts') },
  { name: 'keys', load: () => import('./commands/keys.ts') },
  { name: 'agent', load: () => import('./commands/agent.ts') },
  { name: 'audit', load: () => import('./commands/audit.ts') },
  { name: 'compile', load: () => import('./commands/compile.ts') },
  { name: 'load', load: () => import('./commands/load.ts') },
  { name: 'attach', load: () => import('./commands/attach.ts') },
  { name: 'detach', load: () => import('./commands/detach.ts') },
  { name: 'status', load: () => import('./commands/status.ts') },
  { name: 'map', load: () => import('./commands/map.ts') },
  { name: 'prog', load: () => import('./commands/prog.ts') },
];

// Register only the command being run (or all, for --help), so startup stays fast.
const requested = process.argv.slice(2).find((a) => !a.startsWith('-'));
const selected = commands.filter((c) => requested === undefined || c.name === requested);
for (const c of selected.length > 0 ? selected : commands) (await c.load()).register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exitCode = err.exitCode;
  else throw err;
}
