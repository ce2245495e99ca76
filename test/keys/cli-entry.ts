// Runs the `keys` and `agent` commands as cli/main.ts will once the lead wires them in: the same
// program settings (exitOverride, one-line errors through runCommand). Used by test/keys.cli.test.ts.
import { Command, CommanderError } from 'commander';
import { register as registerAgent } from '../../cli/commands/agent.ts';
import { register as registerKeys } from '../../cli/commands/keys.ts';

const program = new Command().name('ebpf-ts').option('--debug').showHelpAfterError('(run with --help for usage)').exitOverride();
registerKeys(program);
registerAgent(program);
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exitCode = err.exitCode;
  else throw err;
}
