// Wiring a key source to the key manager: used by `keys load` (once) and `agent` (until stopped).
// Every log line names what changed by SPI, node pair, key ID and fingerprint — never key bytes.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { NodeEndpoint } from './derive.ts';
import type { KubernetesSecretSource } from './k8s.ts';
import { type KeyLog, KeyManager } from './rotation.ts';
import { KeyFileSource, type KeyTextSource, SecretDirSource } from './source.ts';
import { DEFAULT_SECRET, parseSecretRef } from './secret-ref.ts';
import type { SpiffePeer, Svid } from './spire.ts';
import type { SaStore } from './store.ts';

export type SourceKind = 'file' | 'dir' | 'k8s' | 'spire';

export interface SourceOptions {
  from: SourceKind;
  /** file: the key file; dir: the mounted secret directory. */
  path?: string;
  secret?: string;
  kubeconfig?: string;
  socket?: string;
  spiffeId?: string;
  /** SPIRE: each peer's SVID certificate (PEM or DER file), from peer discovery. */
  peerSvids?: { node: string; path: string }[];
  /** SPIRE: how long to wait for the first SVID (one-shot commands); default forever. */
  firstTimeoutMs?: number;
}

/** "NODE" or "NODE@BOOTID". */
export function parseEndpoint(text: string, what: string): NodeEndpoint {
  const at = text.lastIndexOf('@');
  const id = at < 0 ? text : text.slice(0, at);
  const bootId = at < 0 ? '' : text.slice(at + 1);
  if (!id || /\s/.test(id)) throw new Error(`${what}: expected NODE or NODE@BOOTID, got "${text}"`);
  return { id, bootId };
}

/** Log lines as `event key=value …`, values quoted when they contain spaces. */
export function lineLogger(write: (line: string) => void, prefix = ''): KeyLog {
  return (event, fields) => {
    const parts = Object.entries(fields ?? {}).map(([k, v]) => `${k}=${/[\s"]/.test(String(v)) ? JSON.stringify(String(v)) : v}`);
    write(`${prefix}${event}${parts.length ? ` ${parts.join(' ')}` : ''}`);
  };
}

export async function loadCertificates(path: string): Promise<X509Certificate[]> {
  const raw = readFileSync(path);
  const text = raw.toString('latin1');
  if (text.includes('-----BEGIN CERTIFICATE-----')) {
    return [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map((m) => new X509Certificate(m[0]));
  }
  const { splitDerCertificates } = await import('./spire.ts');
  return splitDerCertificates(raw);
}

/** A key-file source; `watch` turns a plain file into a watched one (the agent). */
// The Kubernetes client and gRPC load only for the sources that use them (the Kubernetes client
// alone takes seconds to import).
export async function textSource(opts: SourceOptions, log: KeyLog, watch: boolean): Promise<KeyTextSource | KubernetesSecretSource> {
  const onError = (err: Error) => log('key file rejected; keeping installed keys', { error: err.message });
  switch (opts.from) {
    case 'file':
      if (!opts.path) throw new Error('--from file needs a PATH');
      return watch ? new SecretDirSource(dirname(opts.path), { file: basename(opts.path), onError }) : new KeyFileSource(opts.path);
    case 'dir':
      if (!opts.path) throw new Error('--from dir needs a PATH (e.g. /etc/ipsec)');
      return new SecretDirSource(opts.path, { onError });
    case 'k8s': {
      const { KubernetesSecretSource, loadKubeConfig } = await import('./k8s.ts');
      return new KubernetesSecretSource({ kubeConfig: loadKubeConfig(opts.kubeconfig), secret: parseSecretRef(opts.secret ?? DEFAULT_SECRET), log });
    }
    default:
      throw new Error(`--from ${opts.from} is not a key-file source`);
  }
}

export interface RunningSource {
  close(): Promise<void>;
}

/**
 * Start a source feeding `manager`. Resolves once the first key is installed (or rejects: a bad
 * first key, an unreachable API); later changes are applied and logged until close().
 */
export async function startSource(opts: SourceOptions, manager: KeyManager, log: KeyLog, watch: boolean): Promise<RunningSource> {
  if (opts.from === 'spire') {
    const { WorkloadApiClient, spiffeGeneration } = await import('./spire.ts');
    const peers: SpiffePeer[] = [];
    for (const p of opts.peerSvids ?? []) peers.push({ node: parseEndpoint(p.node, '--peer-svid'), chain: await loadCertificates(p.path) });
    const client = new WorkloadApiClient({ socket: opts.socket, spiffeId: opts.spiffeId, firstTimeoutMs: opts.firstTimeoutMs, log });
    const apply = async (svid: Svid) => {
      await manager.applyGeneration(spiffeGeneration(svid, manager.local, peers));
      log('keys derived from SVID', { spiffeId: svid.spiffeId, peers: peers.length });
    };
    try {
      await apply(await client.start(apply));
    } catch (err) {
      client.close();
      throw err;
    }
    return { close: async () => client.close() };
  }
  const source = await textSource(opts, log, watch);
  await source.start(async (text, origin) => {
    const result = await manager.applyKeyFile(text, origin);
    if (result !== 'unchanged') log(`key ${result}`, { source: origin, generation: manager.currentLabel() ?? '' });
  });
  return source;
}

export interface AgentOptions extends SourceOptions {
  store: SaStore;
  local: NodeEndpoint;
  peers: NodeEndpoint[];
  graceMs?: number;
  log: KeyLog;
}

/** Run until `signal` aborts; then stop watching and leave the installed SAs in place. */
export async function runAgent(opts: AgentOptions, signal: AbortSignal): Promise<void> {
  if (opts.peers.length === 0) throw new Error('no peers: per-node-pair SAs need the remote nodes (--peer NODE, repeatable)');
  const manager = new KeyManager({ store: opts.store, local: opts.local, peers: opts.peers, graceMs: opts.graceMs, log: opts.log });
  await manager.restore();
  const source = await startSource(opts, manager, opts.log, true);
  opts.log('watching', { from: opts.from, node: opts.local.id, peers: opts.peers.length, generation: manager.currentLabel() ?? 'none' });
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await source.close();
  manager.close();
  opts.log('stopped; installed SAs left in place');
}
