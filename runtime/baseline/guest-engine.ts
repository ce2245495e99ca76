// The engine's loader inside the baseline guest: our own runtime (runtime/engine's EngineNode,
// runtime/keys' EngineSaStore, runtime/loader), bundled by engine-bundle.ts and run by the guest's
// copy of node. It loads the precompiled engine object (the compiler never runs in the guest),
// attaches it to a node's end of the wire and installs the SAs Cilium's xfrm would have: the key
// file's global key, SPI = key index, tunnel mode between the node addresses.
//
//   node guest-engine.mjs probe OBJECT               load every program, print the verifier's figures
//   node guest-engine.mjs up CONFIG.json             load, attach, fill (EngineNode); pins stay after exit
//   node guest-engine.mjs stats CONFIG.json [TAG]    one line: the real peer's SA counters and the audit
//   node guest-engine.mjs peers CONFIG.json PEERS.json   add synthetic peers (scale) to the running engine
//
// Output lines start with "engine:" so the scenario scripts and the host can find them.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { encode, view } from '../../compiler/dsl/index.ts';
import { readObject } from '../../compiler/elf/reader.ts';
import * as Engine from '../../engine/maps.ts';
import { EngineNode } from '../engine/node.ts';
import { ENCRYPT_KEY_KIND_NODE } from '../keys/engine-store.ts';
import { NodeDirectory, ipv4ToNumber } from '../keys/nodes.ts';
import { AEAD_GCM, Secret, type IcvBits } from '../keys/sa.ts';
import { loadObject, openPinnedMap, type MapHandle } from '../loader/index.ts';

export interface GuestEngineConfig {
  /** Node name = its network namespace in the guest. */
  name: string;
  ip: string;
  /** The device towards the other nodes (egress encrypts, ingress decrypts). */
  dev: string;
  pinDir: string;
  /** Path of the compiled engine, relative to the configuration file. */
  object: string;
  /** The real peer. */
  peer: { name: string; ip: string; podIp: string };
  /** Synthetic peers (scale): outer address and one pod address each, installed as map entries. */
  synthetic?: { ip: string; podIp: string }[];
  /** Map sizes where the object's defaults are too small (10,000 peers). */
  maxEntries?: Record<string, number>;
  key: { spi: number; keyHex: string; saltHex: string; icvBits: number };
  algo?: 'aes' | 'aes-generic';
}

const out = (s: string) => process.stdout.write(`engine: ${s}\n`);
const since = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e6;

function probe(object: string): void {
  const t = process.hrtime.bigint();
  const obj = loadObject(object, { pinning: false });
  for (const [name, p] of obj.programs) {
    const info = p.info();
    out(`loaded ${name} insns=${info.xlatedProgLen / 8} verified=${info.verifiedInsns} jited=${info.jitedProgLen}`);
  }
  out(`probe ok in ${since(t).toFixed(0)} ms`);
  obj.close();
}

function specWithSizes(c: GuestEngineConfig) {
  const spec = readObject(readFileSync(c.object));
  for (const [name, n] of Object.entries(c.maxEntries ?? {})) {
    const m = spec.maps.find((x) => x.name === name);
    if (!m) throw new Error(`engine object has no map ${name}`);
    m.maxEntries = Math.max(m.maxEntries, n);
  }
  return spec;
}

const ipv4Be = (ip: string) => ipv4ToNumber(ip);

async function up(c: GuestEngineConfig): Promise<void> {
  const t0 = process.hrtime.bigint();
  const nodes = new NodeDirectory([
    { name: c.name, ip: c.ip },
    { name: c.peer.name, ip: c.peer.ip },
  ]);
  const node = await EngineNode.start({
    name: c.name,
    netns: c.name,
    linkDev: c.dev,
    pinDir: c.pinDir,
    nodes,
    algo: c.algo ?? 'aes',
    object: c.maxEntries ? specWithSizes(c) : c.object,
  });
  out(`loaded and attached to ${c.name}/${c.dev} in ${since(t0).toFixed(0)} ms`);
  for (const [name, p] of node.object.programs) {
    const info = p.info();
    out(`program ${name} insns=${info.xlatedProgLen / 8} verified=${info.verifiedInsns}`);
  }
  const key = Buffer.from(c.key.keyHex, 'hex');
  const salt = Buffer.from(c.key.saltHex, 'hex');
  const sa = {
    localNode: c.name,
    remoteNode: c.peer.name,
    spi: c.key.spi,
    keyIndex: c.key.spi,
    algorithm: AEAD_GCM,
    icvBits: c.key.icvBits as IcvBits,
    createdAt: Date.now(),
  } as const;
  // Cilium without '+': the key file's key on both directions of every node pair.
  await node.store.install({ ...sa, direction: 'egress', key: new Secret(key), salt: new Secret(salt) });
  await node.store.install({ ...sa, direction: 'ingress', key: new Secret(key), salt: new Secret(salt) });
  // Policy, as Cilium's xfrm policies: pod traffic to the peer's pod is encrypted towards the peer.
  // Not the peer node's own address: egress encrypts whatever the policy names, ESP included, and
  // the scenarios put host-built ESP on the wire from this node.
  node.route({ addr: c.peer.podIp, identity: 2, tunnelEndpoint: c.peer.ip, keyIndex: c.key.spi });

  if (c.synthetic?.length) addPeers(c, c.synthetic, { encryptSa: node.object.map('encrypt_sa'), ingressSa: node.object.map('ingress_sa'), ipcache: node.object.map('ipcache') });
  out(`up ${c.name} in ${since(t0).toFixed(0)} ms`);
}

interface PeerMaps {
  encryptSa: MapHandle;
  ingressSa: MapHandle;
  ipcache: MapHandle;
}

/**
 * Synthetic peers as map entries beside the real one: the same SA value (same key slot, so no
 * bpf_crypto context per peer) under each peer's own encryption-map and ingress keys, and an
 * ipcache entry (what EngineNode.route writes) for one pod address of each. Written directly rather
 * than through the store: the store refuses one egress key on two node pairs (GCM nonces), which is
 * what Cilium does without '+' and harmless for peers that never send, and its per-install slot
 * scan would make 10,000 installs quadratic.
 */
function addPeers(c: GuestEngineConfig, peers: { ip: string; podIp: string }[], m: PeerMaps): void {
  const t1 = process.hrtime.bigint();
  const egressKey = (ip: string) => {
    const selector = Buffer.alloc(16);
    selector.writeUInt32BE(ipv4Be(ip), 0);
    return Buffer.from(encode(Engine.EncryptKey, { kind: ENCRYPT_KEY_KIND_NODE, selector }));
  };
  const ingressKey = (src: string) => Buffer.from(encode(Engine.IngressKey, { spi: c.key.spi, src: ipv4Be(src), dst: ipv4Be(c.ip) }));
  const realEgress = m.encryptSa.lookup(egressKey(c.peer.ip));
  const realIngress = m.ingressSa.lookup(ingressKey(c.peer.ip));
  if (!realEgress || !realIngress) throw new Error("the real peer's SAs are not in the maps");
  // The real SAs carry live state (sequence number, replay window, counters): the copies start
  // fresh, as the store installs an SA.
  const fresh = (fields: Record<string, unknown>, names: string[]) => {
    for (const name of names) {
      const f = fields[name];
      if (typeof f === 'bigint') fields[name] = name === 'seq' ? 1n : 0n;
      else if (f && typeof f === 'object' && 'length' in f) for (let i = 0; i < (f as bigint[]).length; i++) (f as bigint[])[i] = 0n;
      else throw new Error(`SA field ${name} is not a counter`);
    }
  };
  const ingressFields = view(Engine.IngressSa, realIngress) as unknown as Record<string, unknown> & { top: bigint; window: bigint[] };
  fresh(ingressFields, ['top', 'window', 'packets', 'bytes', 'replayDrops', 'icvDrops']);
  if (ingressFields.top !== 0n || [...ingressFields.window].some((w) => w !== 0n)) throw new Error('could not reset the replay window through the layout view');
  try {
    for (const p of peers) {
      const v: Buffer = Buffer.from(realEgress);
      const fields = view(Engine.EncryptSa, v) as unknown as { outerDst: number };
      fresh(fields as unknown as Record<string, unknown>, ['seq', 'packets', 'bytes', 'dropped']);
      fields.outerDst = ipv4Be(p.ip);
      if (fields.outerDst !== ipv4Be(p.ip) || v.equals(realEgress)) throw new Error('could not rewrite outerDst through the layout view');
      m.encryptSa.update(egressKey(p.ip), v);
      v.fill(0);
      m.ingressSa.update(ingressKey(p.ip), realIngress);
      m.ipcache.update(
        Buffer.from(encode(Engine.IpcacheKey, { prefixlen: 32, addr: ipv4Be(p.podIp) })),
        Buffer.from(encode(Engine.IpcacheEntry, { identity: 2, tunnelEndpoint: ipv4Be(p.ip), keyIndex: c.key.spi })),
      );
    }
  } finally {
    realEgress.fill(0);
    realIngress.fill(0);
  }
  out(`peers added=${peers.length} install_ms=${since(t1).toFixed(1)}`);
}

/** Adds synthetic peers to a running engine through its pinned maps. */
function peersCommand(c: GuestEngineConfig, peersFile: string): void {
  const peers = JSON.parse(readFileSync(peersFile, 'utf8')) as { ip: string; podIp: string }[];
  const open = (name: string) => openPinnedMap(`${c.pinDir}/maps/${name}`);
  const m = { encryptSa: open('encrypt_sa'), ingressSa: open('ingress_sa'), ipcache: open('ipcache') };
  try {
    addPeers(c, peers, m);
  } finally {
    for (const h of Object.values(m)) h.fd.close();
  }
}

/** The real peer's egress and ingress SA counters and the audit rows that are not zero. */
function stats(c: GuestEngineConfig, tag: string): void {
  const encryptSa = openPinnedMap(`${c.pinDir}/maps/encrypt_sa`);
  const ingressSa = openPinnedMap(`${c.pinDir}/maps/ingress_sa`);
  const audit = openPinnedMap(`${c.pinDir}/maps/audit`);
  const selector = Buffer.alloc(16);
  selector.writeUInt32BE(ipv4Be(c.peer.ip), 0);
  const e = encryptSa.lookup(Buffer.from(encode(Engine.EncryptKey, { kind: ENCRYPT_KEY_KIND_NODE, selector })));
  const i = ingressSa.lookup(Buffer.from(encode(Engine.IngressKey, { spi: c.key.spi, src: ipv4Be(c.peer.ip), dst: ipv4Be(c.ip) })));
  const ev = e ? (view(Engine.EncryptSa, e) as { packets: bigint; bytes: bigint; seq: bigint; dropped: bigint }) : undefined;
  const iv = i ? (view(Engine.IngressSa, i) as { packets: bigint; bytes: bigint; replayDrops: bigint; icvDrops: bigint }) : undefined;
  const parts = [
    `stats ${tag}`,
    `egress_packets=${ev?.packets ?? 'none'}`,
    `egress_bytes=${ev?.bytes ?? 'none'}`,
    `egress_dropped=${ev?.dropped ?? 'none'}`,
    `ingress_packets=${iv?.packets ?? 'none'}`,
    `ingress_bytes=${iv?.bytes ?? 'none'}`,
    `ingress_replay=${iv?.replayDrops ?? 'none'}`,
    `ingress_icv=${iv?.icvDrops ?? 'none'}`,
  ];
  e?.fill(0);
  i?.fill(0);
  // Every audit slot by index, packets summed over the CPUs (the host names the reasons).
  const stride = Math.ceil(audit.valueSize / 8) * 8;
  for (let index = 0; index < audit.info.maxEntries; index++) {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(index);
    const v = audit.lookup(key);
    let packets = 0n;
    for (let off = 0; v && off + 8 <= v.length; off += stride) packets += v.readBigUInt64LE(off);
    parts.push(`audit_${index}=${packets}`);
  }
  out(parts.join(' '));
  for (const m of [encryptSa, ingressSa, audit]) m.fd.close();
}

async function main(argv: string[]): Promise<void> {
  const [command, arg, tag] = argv;
  if (command === 'probe' && arg) return probe(arg);
  const config = () => {
    const c = JSON.parse(readFileSync(arg, 'utf8')) as GuestEngineConfig;
    return { ...c, object: resolve(dirname(arg), c.object) };
  };
  if (command === 'up' && arg) return up(config());
  if (command === 'stats' && arg) return stats(config(), tag ?? '-');
  if (command === 'peers' && arg && tag) return peersCommand(config(), tag);
  throw new Error('usage: guest-engine probe OBJECT | up CONFIG.json | stats CONFIG.json [TAG] | peers CONFIG.json PEERS.json');
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e: Error) => {
    process.stdout.write(`engine: error ${(e.stack ?? e.message).split('\n').join('\nengine:   ')}\n`);
    process.exit(1);
  },
);
