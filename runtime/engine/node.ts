// One node's engine: compile engine/esp.ts or a policy file (examples/policy-*.ts, whose object
// carries the engine's ingress and crypto_setup too; once per process), load it through the loader, pin
// its maps 0600 under a 0700 directory, attach `egress`/`ingress` to the node's link device with
// tcx, and hand out the SA store that fills the maps (runtime/keys). A new key slot gets its
// bpf_crypto context through the sleepable `crypto_setup` program before any SA names it.
//
// No xfrm anywhere: the kernel sees plain tc programs and maps.

import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encode } from '../../compiler/dsl/index.ts';
import * as Engine from '../../engine/maps.ts';
import { CryptoKey, CryptoSetupArgs } from '../../engine/esp.ts';
import { createKernelKeyMap, EngineSaStore, kernelMapAccess, SaMeta, SaMetaKey } from '../keys/engine-store.ts';
import { objPin, type FD } from '../sys/index.ts';
import type { NodeDirectory } from '../keys/nodes.ts';
import { attachTc, configureDevice, loadObject, unload, type BpfObject } from '../loader/index.ts';
import type { ObjectSpec } from '../../compiler/elf/spec.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const ENGINE_SOURCE = join(ROOT, 'engine/esp.ts');
export const ENGINE_OBJECT = join(ROOT, 'bpf-out/engine.o');

const compiled = new Map<string, Promise<string>>();

/** The object a source compiles to: bpf-out/engine.o for engine/esp.ts, bpf-out/<name>.o for a
 *  policy file (examples/policy-*.ts: its egress, the engine's ingress and crypto_setup). */
export const engineObjectOf = (source: string): string => (resolve(source) === ENGINE_SOURCE ? ENGINE_OBJECT : join(ROOT, 'bpf-out', `${basename(source).replace(/\.ts$/, '')}.o`));

/** Compile the engine, or a policy file, into bpf-out/ (once per process and source); the path
 *  of the object. */
export function buildEngine(source: string = ENGINE_SOURCE): Promise<string> {
  const path = resolve(source);
  let p = compiled.get(path);
  if (!p) {
    p = (async () => {
      const { compileFile, formatDiagnostic } = await import('../../compiler/compile.ts');
      // A repository-relative path keeps file names in line info the same on every machine.
      const r = compileFile(relative(process.cwd(), path) || path, { elf: true });
      if (r.failed || !r.elf) throw new Error(`${relative(ROOT, path)} does not compile:\n${r.diagnostics.map(formatDiagnostic).join('\n')}`);
      const object = engineObjectOf(path);
      mkdirSync(dirname(object), { recursive: true });
      writeFileSync(object, new Uint8Array(r.elf.buffer, r.elf.byteOffset, r.elf.length));
      return object;
    })();
    compiled.set(path, p);
  }
  return p;
}

export interface IpcacheRoute {
  /** Destination prefix the policy matches: its address, and its length (default 32). */
  addr: string;
  prefixlen?: number;
  identity: number;
  /** Node IP the traffic tunnels to. */
  tunnelEndpoint: string;
  /** Non-zero: the policy says encrypt. */
  keyIndex: number;
}

export interface EngineNodeOptions {
  name: string;
  netns: string;
  /** The device towards the other nodes: egress encrypts, ingress decrypts. */
  linkDev: string;
  pinDir: string;
  nodes: NodeDirectory;
  /** Crypto driver: 'ecb(aes)' or the faster 'ecb(aes-generic)' (both from the bpf_crypto kfuncs). */
  algo?: 'aes' | 'aes-generic';
  /** Bound GSO on the link device so no superpacket reaches egress unsegmented (default: off). */
  gso?: boolean;
  /** false: load and fill the maps but attach nothing (benchmarks drive the programs by test run). */
  attach?: boolean;
  /** A compiled engine (object path, or a parsed spec, e.g. with larger maps) instead of building
   *  engine/esp.ts: where the compiler cannot run (the xfrm baseline's guest). */
  object?: string | ObjectSpec;
  /** A policy file (examples/policy-*.ts) compiled as the engine instead of engine/esp.ts. */
  policy?: string;
}

function gsoMaxSegs(netns: string, dev: string): number {
  const info = JSON.parse(execFileSync('ip', ['-n', netns, '-j', '-d', 'link', 'show', 'dev', dev], { encoding: 'utf8' })) as Array<{ gso_max_segs?: number }>;
  return info[0]?.gso_max_segs ?? 65535;
}
function setGsoMaxSegs(netns: string, dev: string, segs: number): void {
  execFileSync('ip', ['-n', netns, 'link', 'set', 'dev', dev, 'gso_max_segs', String(segs)], { stdio: 'ignore' });
}

const ipv4 = (text: string): number => text.split('.').reduce((n, p) => (n << 8) | Number(p), 0) >>> 0;
const u32Key = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};

export class EngineNode {
  readonly store: EngineSaStore;
  previousGsoMaxSegs?: number;
  /** The key runtime's own bookkeeping map (key ID, install time; no key material). */
  private readonly saMeta: FD;
  private constructor(
    readonly options: EngineNodeOptions,
    readonly object: BpfObject,
  ) {
    const handle = (name: string) => object.map(name);
    this.saMeta = createKernelKeyMap('sa_meta');
    objPin(this.saMeta, join(options.pinDir, 'maps', 'sa_meta'));
    this.store = new EngineSaStore({
      maps: { encryptSa: handle('encrypt_sa'), ingressSa: handle('ingress_sa'), ghashTables: handle('ghash_tables'), saMeta: kernelMapAccess(this.saMeta, SaMetaKey.size, SaMeta.size) },
      nodes: options.nodes,
      localNode: options.name,
      onKeySlot: (slot, key) => this.createCryptoContext(slot, key),
    });
  }

  /** Load, pin (0600) and attach the engine on one node. */
  static async start(o: EngineNodeOptions): Promise<EngineNode> {
    const path = o.object ?? (await buildEngine(o.policy));
    mkdirSync(o.pinDir, { recursive: true, mode: 0o700 });
    chmodSync(o.pinDir, 0o700);
    const object = loadObject(path, { pinDir: o.pinDir });
    try {
      object.pinMaps();
      const node = new EngineNode(o, object);
      if (o.attach === false) return node;
      // Bound GSO: local TCP always builds GSO skbs (software GSO is forced for TCP sockets, even
      // with the device's gso off), and tc egress runs before segmentation. gso_max_segs 1 makes
      // TCP send one MSS per skb; a superpacket that still arrives is dropped and counted (too
      // big), never sent in clear. The previous value is restored by stop().
      configureDevice({ device: o.linkDev, netns: o.netns, pinDir: o.pinDir, gso: o.gso ?? false });
      node.previousGsoMaxSegs = gsoMaxSegs(o.netns, o.linkDev);
      setGsoMaxSegs(o.netns, o.linkDev, 1);
      attachTc(object.program('egress').fd, { device: o.linkDev, direction: 'egress', netns: o.netns, pinDir: o.pinDir, program: 'egress' });
      attachTc(object.program('ingress').fd, { device: o.linkDev, direction: 'ingress', netns: o.netns, pinDir: o.pinDir, program: 'ingress' });
      return node;
    } catch (e) {
      object.close();
      unload(o.pinDir);
      throw e;
    }
  }

  /** ipcache: `addr`/`prefixlen` (longest prefix match) has this identity, tunnel endpoint and
   *  key index (non-zero: the per-node-pair policies encrypt traffic to it). */
  route(r: IpcacheRoute): void {
    const key = Buffer.from(encode(Engine.IpcacheKey, { prefixlen: r.prefixlen ?? 32, addr: ipv4(r.addr) }));
    const value = Buffer.from(encode(Engine.IpcacheEntry, { identity: r.identity, tunnelEndpoint: ipv4(r.tunnelEndpoint), keyIndex: r.keyIndex }));
    this.object.map('ipcache').update(key, value);
  }

  /** The slot's ecb(aes) context: key into crypto_keys, run crypto_setup, wipe the key copy. */
  private createCryptoContext(slot: number, key: Buffer): void {
    const keys = this.object.map('crypto_keys');
    const algo = this.options.algo === 'aes' ? Engine.CRYPTO_ALGO_AES : Engine.CRYPTO_ALGO_AES_GENERIC;
    const value = Buffer.from(encode(CryptoKey, { key: [...key], keyLength: key.length, algo }));
    try {
      keys.update(u32Key(slot), value);
      const args = Buffer.from(encode(CryptoSetupArgs, { keyIndex: slot, err: 0 }));
      const r = this.object.program('crypto_setup').run({ ctxIn: args });
      if (r.retval !== 0) throw new Error(`crypto_setup for key slot ${slot} failed: ${r.retval} (err ${args.readInt32LE(4)})`);
    } finally {
      value.fill(0);
      // The context holds the key now; crypto_keys need not.
      keys.update(u32Key(slot), Buffer.alloc(value.length));
    }
  }

  /** Detach, unpin, close. */
  stop(): void {
    if (this.previousGsoMaxSegs !== undefined) {
      try {
        setGsoMaxSegs(this.options.netns, this.options.linkDev, this.previousGsoMaxSegs);
      } catch {
        // the device (or its namespace) is already gone
      }
    }
    this.saMeta.close();
    this.object.close();
    unload(this.options.pinDir);
  }
}
