// The whole tree type-checks (strict): the DSL's guarantees lean on TypeScript's own checks
// (nullable lookups, integer types), so a type error anywhere is a failure, not a warning.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

it('tsc --noEmit reports no errors', { timeout: 180_000 }, () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', ROOT], { encoding: 'utf8', cwd: ROOT });
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
});
