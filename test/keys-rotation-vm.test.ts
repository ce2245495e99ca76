// Issue 6, "Rotation under traffic: zero loss, zero plaintext", in the VM (no root, runs always):
// the compiled engine (engine/esp.ts) in two runtime/vm instances, node1 and node2, each with its
// SAs filled by a KeyManager over an EngineSaStore on the instance's own maps (a new key slot gets
// its crypto context through crypto_keys + the crypto_setup program, as runtime/engine/node.ts
// does in the kernel). A sequence-numbered UDP stream runs pod1→pod2 (node1 egress → node2
// ingress) and back (node2 egress → node1 ingress); mid-stream both nodes rotate to a fresh key
// with a higher key ID (node2, then node1, gated on the peer's ack), a batch of packets sealed
// under the old key is held back and delivered only after both egress sides switched, and after
// the grace period (a fake clock) the old SPI is expired. Every packet must arrive intact, every
// egress output must be ESP (no payload byte in clear), and both SPIs must have carried traffic.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CompileResult } from '../compiler/compile.ts';
import * as dsl from '../compiler/dsl/index.ts';
import * as E from '../engine/esp.ts';
import { DEMO_KEY_FILE } from '../runtime/demo/engine-demo.ts';
import { EngineSaStore, SaMeta, SaMetaKey, vmMapAccess } from '../runtime/keys/engine-store.ts';
import { generateKeyLine } from '../runtime/keys/generate.ts';
import { NodeDirectory } from '../runtime/keys/nodes.ts';
import { type Clock, KeyManager } from '../runtime/keys/rotation.ts';
import { BPF_MAP_TYPE_HASH } from '../runtime/sys/constants.ts';
import { createMap } from '../runtime/vm/maps.ts';
import { VmObject } from '../runtime/vm/object.ts';
import { compileOrThrow } from './compiler/harness.ts';
import { SOURCE } from './engine-world.ts';

const GRACE_MS = 60_000;
const BEFORE = 200;
const AFTER = 200;
/** Packets sealed under the old key just before the switch and delivered after it (in flight). */
const IN_FLIGHT = 16;
const MARKER = 'ebpf-ts-rotation-marker';

const NODES = [
  { name: 'node1', ip: '10.250.0.1', pod: '10.1.1.10' },
  { name: 'node2', ip: '10.250.0.2', pod: '10.1.2.20' },
] as const;

const ipNum = (s: string): number => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
const u32Key = (n: number): Buffer => Buffer.from(dsl.encode(dsl.u32, n));

/** A fake clock: timers are recorded, never fired; the test advances `t` and calls expire(). */
class FakeClock implements Clock {
  t = 1_700_000_000_000;
  now(): number {
    return this.t;
  }
  setTimeout(): unknown {
    return {};
  }
  clearTimeout(): void {}
}

/** Ethernet + IPv4 + UDP from `src` to `dst`, payload "MARKER-<dir>-<seq>" padded to 64+ bytes. */
function udpFrame(src: string, dst: string, tag: string, seq: number): Buffer {
  const payload = Buffer.from(`${MARKER}-${tag}-${seq}-`.padEnd(64 + (seq % 37), 'x'));
  const f = Buffer.alloc(14 + 20 + 8 + payload.length);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
  const ip = f.subarray(14, 34);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 8 + payload.length, 2);
  ip.writeUInt16BE(seq & 0xffff, 4);
  ip.writeUInt16BE(0x4000, 6);
  ip[8] = 64;
  ip[9] = 17;
  ip.writeUInt32BE(ipNum(src), 12);
  ip.writeUInt32BE(ipNum(dst), 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += ip.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  ip.writeUInt16BE(~sum & 0xffff, 10);
  f.writeUInt16BE(40000, 34);
  f.writeUInt16BE(5410, 36);
  f.writeUInt16BE(8 + payload.length, 38);
  payload.copy(f, 42);
  return f;
}

/** The SPI of an ESP-in-IPv4 frame, or undefined when the frame is anything else. */
function espSpi(f: Buffer): number | undefined {
  if (f.length < 14 + 20 + 8 || f.readUInt16BE(12) !== 0x0800 || f[23] !== 50) return undefined;
  return f.readUInt32BE(14 + (f[14]! & 0x0f) * 4);
}

interface VmNode {
  name: string;
  vm: VmObject;
  store: EngineSaStore;
  setups: number;
}

function startNode(compiled: CompileResult, name: string, nodes: NodeDirectory): VmNode {
  const vm = new VmObject(compiled.object, { seed: 1 });
  const saMeta = createMap({ name: 'sa_meta', type: BPF_MAP_TYPE_HASH, keySize: SaMetaKey.size, valueSize: SaMeta.size, maxEntries: 64 });
  const node: VmNode = { name, vm, setups: 0, store: undefined as never };
  node.store = new EngineSaStore({
    maps: { encryptSa: vmMapAccess(vm.map('encrypt_sa')), ingressSa: vmMapAccess(vm.map('ingress_sa')), ghashTables: vmMapAccess(vm.map('ghash_tables')), saMeta: vmMapAccess(saMeta) },
    nodes,
    localNode: name,
    onKeySlot: (slot, key) => {
      // As EngineNode.createCryptoContext: the key into crypto_keys, crypto_setup, wipe crypto_keys.
      const keys = vm.map('crypto_keys');
      const value = Buffer.from(dsl.encode(E.CryptoKey, { key: [...key], keyLength: key.length, algo: 0 }));
      try {
        keys.update(u32Key(slot), value);
        const args = Buffer.from(dsl.encode(E.CryptoSetupArgs, { keyIndex: slot, err: 0 }));
        const r = vm.runProgram('crypto_setup', { ctx: args });
        const rc = Number(BigInt.asIntN(32, r.retval));
        if (rc !== 0) throw new Error(`${name}: crypto_setup for key slot ${slot} failed: ${rc}`);
        node.setups++;
      } finally {
        value.fill(0);
        keys.update(u32Key(slot), Buffer.alloc(value.length));
      }
    },
  });
  return node;
}

/** As EngineNode.route: traffic to `addr` is encrypted towards `tunnelEndpoint`. */
function route(n: VmNode, addr: string, tunnelEndpoint: string): void {
  const key = Buffer.from(dsl.encode(E.IpcacheKey, { prefixlen: 32, addr: ipNum(addr) }));
  const value = Buffer.from(dsl.encode(E.IpcacheEntry, { identity: 2, tunnelEndpoint: ipNum(tunnelEndpoint), keyIndex: 1 }));
  n.vm.map('ipcache').update(key, value);
}

describe('key rotation under traffic in the VM engine', () => {
  let compiled: CompileResult;
  beforeAll(() => {
    compiled = compileOrThrow(SOURCE);
  }, 120_000);

  it("rotates mid-stream (peer-ack gate): no packet lost, only ESP between the nodes (both SPIs), old SPI gone after grace", { timeout: 300_000 }, async () => {
    const directory = new NodeDirectory(NODES.map((n) => ({ name: n.name, ip: n.ip })));
    const [n1, n2] = NODES.map((n) => startNode(compiled, n.name, directory)) as [VmNode, VmNode];
    route(n1, NODES[1].pod, NODES[1].ip);
    route(n2, NODES[0].pod, NODES[0].ip);

    const clock = new FakeClock();
    const acks: Promise<void>[] = [];
    const byName = new Map<string, KeyManager>();
    const managers = ([[n1, 'node2'], [n2, 'node1']] as const).map(([n, peer]) => {
      const m = new KeyManager({
        store: n.store,
        local: { id: n.name, bootId: '' },
        peers: [{ id: peer, bootId: '' }],
        graceMs: GRACE_MS,
        egressGate: 'peer-ack',
        clock,
        onIngressReady: (spis) => {
          for (const [p, spi] of spis) acks.push(byName.get(p)!.peerReady(n.name, spi));
        },
      });
      byName.set(n.name, m);
      return m;
    });
    const [m1, m2] = managers as [KeyManager, KeyManager];
    const keyText = readFileSync(DEMO_KEY_FILE, 'utf8');
    for (const m of managers) expect(await m.applyKeyFile(keyText, DEMO_KEY_FILE)).toBe('installed');
    await Promise.all(acks);

    const spisOf = async (n: VmNode) => (await n.store.list()).map((s) => `${s.direction}:${s.spi}`).sort();
    const oldSpis = new Set((await n1.store.list()).map((s) => s.spi));
    expect(oldSpis.size).toBe(1);
    const oldSpi = [...oldSpis][0]!;
    const newSpi = oldSpi + 1;
    for (const n of [n1, n2]) expect(await spisOf(n)).toEqual([`egress:${oldSpi}`, `ingress:${oldSpi}`]);

    // Traffic: per direction, every frame through the sender's egress (must be ESP, no marker
    // byte), then the receiver's ingress (must give back the frame as sent).
    const dirs = [
      { tag: 'fwd', from: n1, to: n2, src: NODES[0].pod, dst: NODES[1].pod },
      { tag: 'rev', from: n2, to: n1, src: NODES[1].pod, dst: NODES[0].pod },
    ];
    const stats = new Map(dirs.map((d) => [d.tag, { sent: 0, delivered: new Set<number>(), bySpi: new Map<number, number>(), plaintext: 0, problems: [] as string[] }]));
    const seal = (d: (typeof dirs)[number]): { seq: number; plain: Buffer; esp: Buffer } => {
      const s = stats.get(d.tag)!;
      const seq = s.sent++;
      const plain = udpFrame(d.src, d.dst, d.tag, seq);
      const out = d.from.vm.runProgram('egress', { packet: Buffer.from(plain) });
      const spi = espSpi(out.packet);
      if (spi === undefined || out.packet.includes(MARKER)) s.plaintext++;
      else s.bySpi.set(spi, (s.bySpi.get(spi) ?? 0) + 1);
      const rc = Number(BigInt.asUintN(32, out.retval));
      if (rc !== dsl.TC_ACT_OK && rc !== dsl.TC_ACT_REDIRECT) s.problems.push(`#${seq}: egress returned ${rc}`);
      return { seq, plain, esp: out.packet };
    };
    const deliver = (d: (typeof dirs)[number], p: { seq: number; plain: Buffer; esp: Buffer }): void => {
      const s = stats.get(d.tag)!;
      if (espSpi(p.esp) === undefined) return; // counted as plaintext already; never "delivered"
      const back = d.to.vm.runProgram('ingress', { packet: Buffer.from(p.esp) });
      const rc = Number(BigInt.asUintN(32, back.retval));
      if (rc !== dsl.TC_ACT_OK) s.problems.push(`#${p.seq}: ingress returned ${rc} (SPI ${espSpi(p.esp)})`);
      else if (!back.packet.equals(p.plain)) s.problems.push(`#${p.seq}: delivered frame differs`);
      else s.delivered.add(p.seq);
    };
    const traffic = (n: number): void => {
      for (let i = 0; i < n; i++) for (const d of dirs) deliver(d, seal(d));
    };

    traffic(BEFORE);

    // In flight: sealed under the old key now, delivered once both egress sides have switched.
    const held = dirs.map((d) => ({ d, packets: Array.from({ length: IN_FLIGHT }, () => seal(d)) }));

    // Rotate: node2 first (its new ingress SA in place before node1 can send under the new key),
    // then node1; traffic keeps flowing between the steps. With the peer-ack gate, node2's egress
    // waits until node1 announced the new ingress SPI.
    const newKeyText = `${generateKeyLine({ spi: newSpi, aesBits: 128 })}\n`;
    clock.t += 1000;
    expect(await m2.applyKeyFile(newKeyText, 'rotated-keys')).toBe('rotated');
    await Promise.all(acks);
    expect(await spisOf(n2)).toEqual([`egress:${oldSpi}`, `ingress:${newSpi}`, `ingress:${oldSpi}`].sort());
    traffic(20);
    clock.t += 1000;
    expect(await m1.applyKeyFile(newKeyText, 'rotated-keys')).toBe('rotated');
    await Promise.all(acks);
    for (const n of [n1, n2]) expect(await spisOf(n), n.name).toEqual([`egress:${newSpi}`, `ingress:${newSpi}`, `ingress:${oldSpi}`].sort());

    traffic(10);
    for (const { d, packets } of held) for (const p of packets) deliver(d, p);
    traffic(AFTER - 10);

    // Grace: nothing expires before it ends, the old ingress SAs go after it.
    clock.t += GRACE_MS / 2;
    expect(await m1.expire()).toBe(0);
    expect(await m2.expire()).toBe(0);
    clock.t += GRACE_MS;
    expect(await m1.expire()).toBe(1);
    expect(await m2.expire()).toBe(1);
    for (const n of [n1, n2]) {
      const sas = await n.store.list();
      expect(sas.some((s) => s.spi === oldSpi), `${n.name} still has SPI ${oldSpi}`).toBe(false);
      expect(sas.map((s) => `${s.direction}:${s.spi}`).sort()).toEqual([`egress:${newSpi}`, `ingress:${newSpi}`]);
    }
    // Still flowing under the new key alone.
    traffic(20);

    for (const d of dirs) {
      const s = stats.get(d.tag)!;
      const missing = Array.from({ length: s.sent }, (_, i) => i).filter((i) => !s.delivered.has(i));
      console.log(
        `[vm ${d.tag}] rotation ${oldSpi}→${newSpi}: ${s.delivered.size}/${s.sent} delivered, ${s.plaintext} plaintext, ` +
          `${[...s.bySpi].map(([spi, c]) => `SPI ${spi}: ${c}`).join(', ')}; crypto setups node1 ${n1.setups}, node2 ${n2.setups}`,
      );
      expect(s.problems.slice(0, 10), `${s.problems.length} problems (${d.tag})`).toEqual([]);
      expect(missing.slice(0, 20), `${missing.length} packets lost (${d.tag})`).toEqual([]);
      expect(s.plaintext, `plaintext frames (${d.tag})`).toBe(0);
      expect([...s.bySpi.keys()].sort()).toEqual([oldSpi, newSpi]);
      expect(s.bySpi.get(oldSpi)!).toBeGreaterThanOrEqual(BEFORE);
      expect(s.bySpi.get(newSpi)!).toBeGreaterThanOrEqual(AFTER);
      expect(s.sent).toBe(BEFORE + IN_FLIGHT + 20 + AFTER + 20);
    }
    // Each node created one crypto context per key slot it uses: the old and new pair keys, both directions.
    expect(n1.setups).toBeGreaterThanOrEqual(2);
    expect(n2.setups).toBeGreaterThanOrEqual(2);
    for (const m of managers) m.close();
  });
});
