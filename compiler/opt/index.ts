// The optimisation pipeline: folding and copy propagation, dead-code elimination and CFG
// simplification, repeated until nothing changes (bounded, each pass only shrinks or rewrites).

import type { IrFunction } from '../ir/ir.ts';
import { simplifyCfg } from './cfg.ts';
import { eliminateDeadCode } from './dce.ts';
import { eliminateDeadMemoryStores, simplifyLocal } from './local.ts';
import { eliminateDeadStores } from './stores.ts';

export function optimise(f: IrFunction): void {
  for (let round = 0; round < 16; round++) {
    let changed = simplifyCfg(f);
    changed = simplifyLocal(f) || changed;
    changed = eliminateDeadCode(f) || changed;
    changed = eliminateDeadStores(f) || changed;
    changed = eliminateDeadMemoryStores(f) || changed;
    if (!changed) break;
  }
}
