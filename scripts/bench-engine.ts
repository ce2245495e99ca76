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
import { readFileSync } from 'node:fs';
import { DEMO_KEY_FILE, startClusterEngines } from '../runtime/demo/engine-demo.ts';
import { EngineNode, buildEngine } from '../runtime/engine/node.ts';
import { NodeDirectory } from '../runtime/keys/nodes.ts';
import { KeyManager } from '../runtime/keys/rotation.ts';
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

/** Per-packet timing: one BPF_PROG_TEST_RUN per packet (repeat > 1 would re-run egress on the
 *  packet it already encrypted), the kernel-reported duration, median of `runs`. */
const RUNS = 400;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Two engines (node1 sends, node2 receives) loaded and filled but not attached. */
async function benchNodes(): Promise<{ sender: EngineNode; receiver: EngineNode; close(): void }> {
  const nodes = new NodeDirectory([
    { name: 'node1', ip: '10.250.0.1' },
    { name: 'node2', ip: '10.250.0.2' },
  ]);
  const keyText = readFileSync(DEMO_KEY_FILE, 'utf8');
  const started: EngineNode[] = [];
  try {
    for (const name of ['node1', 'node2']) {
      started.push(await EngineNode.start({ name, netns: '', linkDev: '', pinDir: `/sys/fs/bpf/ets-bench-${process.pid}-${name}`, nodes, attach: false }));
    }
    const [sender, receiver] = started as [EngineNode, EngineNode];
    sender.route({ addr: '10.251.2.2', identity: 2, tunnelEndpoint: '10.250.0.2', keyIndex: 1 });
    for (const [e, local, peer] of [[sender, 'node1', 'node2'], [receiver, 'node2', 'node1']] as const) {
      const m = new KeyManager({ store: e.store, local: { id: local, bootId: '' }, peers: [{ id: peer, bootId: '' }] });
      await m.applyKeyFile(keyText, DEMO_KEY_FILE);
      m.close();
    }
    return { sender, receiver, close: () => started.forEach((e) => e.stop()) };
  } catch (e) {
    started.forEach((x) => x.stop());
    throw e;
  }
}

export async function engineBench(ctx: EngineBenchContext): Promise<EngineBenchResult> {
  if (!ctx.root) return { unavailable: 'no repository root' };
  let nodes: Awaited<ReturnType<typeof benchNodes>>;
  try {
    await buildEngine();
    nodes = await benchNodes();
  } catch (e) {
    return { unavailable: `engine could not be loaded: ${(e as Error).message.split('\n')[0]}` };
  }
  const egress = nodes.sender.object.program('egress');
  const ingress = nodes.receiver.object.program('ingress');
  const egressNs: Record<number, number> = {};
  const ingressNs: Record<number, number> = {};
  for (const bytes of ctx.sizes) {
    const frame = ctx.frame(bytes);
    const encrypted: Buffer[] = [];
    const eTimes: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const r = egress.run({ dataIn: frame });
      if (r.retval !== 0 || r.dataOut.readUInt16BE(12) !== 0x0800 || r.dataOut[23] !== 50) throw new Error(`egress did not encrypt a ${bytes}-byte frame (retval ${r.retval})`);
      eTimes.push(r.duration);
      encrypted.push(Buffer.from(r.dataOut));
    }
    const iTimes: number[] = [];
    for (const esp of encrypted) {
      const r = ingress.run({ dataIn: esp });
      if (r.retval !== 0 || r.dataOut.length !== frame.length) throw new Error(`ingress did not decrypt the ${bytes}-byte frame (retval ${r.retval})`);
      iTimes.push(r.duration);
    }
    egressNs[bytes] = median(eTimes);
    ingressNs[bytes] = median(iTimes);
  }
  nodes.close();
  return {
    egressNs,
    ingressNs,
    attach: async (topology: Topology) => {
      const cluster = await startClusterEngines(topology);
      return () => void cluster.stop();
    },
    notes: [
      'engine: engine/esp.ts (egress + ingress, ecb(aes-generic) contexts), SAs derived per node pair from examples/keys/cilium-ipsec-keys',
      `egress/ingress: one BPF_PROG_TEST_RUN per packet (median of ${RUNS}): repeat would re-run egress on its own output;`,
      'ingress is fed the ESP packets egress produced, each once, so the replay window accepts every one',
      'egress and ingress encrypt 16·(blocks+1) bytes of keystream per packet (dynptrFromMem with a length, G7), not the whole 96-block scratch',
    ],
  };
}
