// The engine's side of `npm run bench` (issue 5) — the ONE place the bench gets engine figures
// from. scripts/bench.ts measures the no-op program, the bare ecb(aes) / ecb(aes-generic) kfunc
// calls and plaintext pod→pod TCP itself, then calls engineBench() for the engine columns.
//
// Contract for whoever wires the engine in (replace the body of engineBench, keep the types):
//   - Load the engine objects from bpf-out/engine-*.o through runtime/loader (pinning: false, or
//     a private pinDir you remove in close()), fill its maps with one benchmark SA (AES-128-GCM,
//     the policy of one examples/ file) so that a pod1→pod2 frame is encrypted.
//   - egressNs[bytes]: ctx.time(obj, <tc egress program>, frame, <its retval: TC_ACT_OK or
//     TC_ACT_REDIRECT>) for a plaintext frame of exactly `bytes` (ctx.frame(bytes) is an
//     Ethernet/IPv4/UDP 10.251.1.2 → 10.251.2.2 frame; use your own if the policy needs it).
//     ctx.time throws when the program returns anything else, so a drop is never timed.
//   - ingressNs[bytes]: the same for the tc ingress program, fed the ESP packet egress produced
//     from that frame (BPF_PROG_TEST_RUN's dataOut), with a replay window that accepts it on
//     every repeat (or a sequence far enough ahead) — say which in notes.
//   - attach(topology): attach egress/ingress to the topology bench.ts built with
//     engineTopology (the same one the plaintext run used), install SAs both ways, return a
//     cleanup that detaches and unpins everything. bench.ts then runs the identical TCP transfer
//     and destroys the namespaces itself.
//   - Never fabricate: a figure you could not measure stays out, with { unavailable: why }.
//
// The ratio line `engine/aes ratio at 1400 B: R` is egressNs[1400] ÷ the bare ecb(aes) call over
// 1408 bytes (1400 rounded up to 16), computed by bench.ts.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TopologyOptions, Topology } from '../runtime/demo/topology.ts';
import type { BpfObject } from '../runtime/loader/index.ts';

export interface EngineBenchContext {
  /** Frame sizes in bytes: 64, 512, 1400. */
  sizes: readonly number[];
  /** ns/run of a loaded tc program: BPF_PROG_TEST_RUN with repeat (calibrated), best of the
   *  rounds; throws when the program returns something other than expectRetval (default 0). */
  time(obj: BpfObject, program: string, dataIn: Buffer, expectRetval?: number): number;
  /** The frame the other columns are run with: Ethernet + IPv4 + UDP pod1 → pod2, exactly `bytes`. */
  frame(bytes: number): Buffer;
  /** Repository root (bpf-out/ is under it). */
  root: string;
}

export interface EngineFigures {
  /** tc egress (encrypt), ns/packet, keyed by frame size. */
  egressNs: Record<number, number>;
  /** tc ingress (verify + decrypt), ns/packet, keyed by the plaintext frame size. */
  ingressNs: Record<number, number>;
  /** Attach the engine to a topology bench.ts built with engineTopology; returns a cleanup.
   *  Absent: the engine TCP figure is printed as n/a with `tcpUnavailable` (or a default reason). */
  attach?(topology: Topology): Promise<() => void | Promise<void>>;
  tcpUnavailable?: string;
  /** Printed under the table: programs, SA, policy, replay-window handling. */
  notes?: string[];
  /** Release what engineBench loaded (called once the bench is done with it). */
  close?(): void;
}

export type EngineBenchResult = EngineFigures | { unavailable: string };

/** The topology both TCP runs use (plaintext and engine), so the ratio compares like with like:
 *  pod routes lowered by the ESP overhead as Cilium's `mtu 1423` routes in the seed. */
export const engineTopology: TopologyOptions = { podRouteMtu: 1423 };

/** Engine object files present under bpf-out/. */
export function engineObjects(root: string): string[] {
  try {
    return readdirSync(join(root, 'bpf-out')).filter((f) => /^engine-.*\.o$/.test(f));
  } catch {
    return [];
  }
}

export async function engineBench(ctx: EngineBenchContext): Promise<EngineBenchResult> {
  const objects = engineObjects(ctx.root);
  if (objects.length === 0) return { unavailable: 'engine objects not built (bpf-out/engine-*.o missing)' };
  // The engine is being written; until this hook loads it, say so rather than guess.
  return { unavailable: `engine objects present (${objects.join(', ')}) but scripts/bench-engine.ts does not load them yet` };
}
