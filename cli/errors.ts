// User-facing errors: the CLI prints their message as one line and exits non-zero, never a stack
// trace. Anything else that escapes is a bug in ebpf-ts and is reported as such (with --debug
// showing the stack).

export class UsageError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/** Run a command body; turn every error into one line on stderr and an exit code. */
export async function runCommand(body: () => unknown | Promise<unknown>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const debug = process.argv.includes('--debug') || process.env.EBPF_TS_DEBUG === '1';
    const e = err as Error & { exitCode?: number; details?: string };
    const message = (e?.message ?? String(err)).trimEnd();
    process.stderr.write(`ebpf-ts: error: ${message}\n`);
    if (e?.details && (process.argv.includes('--verbose') || debug)) process.stderr.write(`${e.details}\n`);
    if (debug && e?.stack) process.stderr.write(`${e.stack}\n`);
    process.exitCode = typeof e?.exitCode === 'number' ? e.exitCode : 1;
  }
}

/** Parse a non-negative integer option, or fail with a usage error naming it. */
export function parseCount(name: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${name}: expected a non-negative integer, got "${text}"`);
  return Number(text);
}

/** Hex bytes, with or without whitespace, optionally 0x-prefixed per byte. */
export function parseHex(name: string, text: string): Buffer {
  const clean = text.replace(/0x/gi, '').replace(/[\s:,]/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-f]/i.test(clean)) throw new UsageError(`${name}: not hex bytes: "${text.slice(0, 40)}"`);
  return Buffer.from(clean, 'hex');
}
