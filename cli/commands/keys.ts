// `ebpf-ts keys …`: load, list, generate and rotate IPsec keys. Only `keys generate` prints key
// material (printing a new key is its purpose); everything else shows SPIs, key IDs and fingerprints.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { type Command, Option } from 'commander';
import { type SourceKind, lineLogger, parseEndpoint, startSource } from '../../runtime/keys/agent.ts';
import { BACKENDS, DEFAULT_ENGINE_PIN_DIR, type EngineFlags, defaultStatePath, engineOptionsFromFlags, openStore } from '../../runtime/keys/backend.ts';
import type { NodeEndpoint } from '../../runtime/keys/derive.ts';
import { generateKeyLine } from '../../runtime/keys/generate.ts';
import { DEFAULT_SECRET, parseSecretRef } from '../../runtime/keys/secret-ref.ts';
import { type GlobalKey, nextKeyId, parseKeyFile } from '../../runtime/keys/keyfile.ts';
import { DEFAULT_GRACE_MS, KeyManager } from '../../runtime/keys/rotation.ts';
import { type IcvBits, saFingerprint } from '../../runtime/keys/sa.ts';
import type { SaStore } from '../../runtime/keys/store.ts';
import { UsageError, parseCount, runCommand } from '../errors.ts';

/** Go-style durations as Cilium's --ipsec-key-rotation-duration takes them: 5m, 90s, 1m30s, 250ms. */
export function parseDuration(name: string, text: string): number {
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  if (!/^(\d+(ms|s|m|h))+$/.test(text)) throw new UsageError(`${name}: expected a duration like 5m, 90s or 1m30s, got "${text}"`);
  let ms = 0;
  for (const m of text.matchAll(/(\d+)(ms|s|m|h)/g)) ms += Number(m[1]) * unit[m[2]];
  return ms;
}

const collect = (value: string, previous: string[]) => [...previous, value];

interface NodeOpts extends EngineFlags {
  node?: string;
  peer: string[];
  backend: string;
  state?: string;
  grace?: string;
}

function withNodeOptions(cmd: Command): Command {
  return cmd
    .option('--node <id[@bootid]>', 'this node, as peers know it (node IP or name); default: the hostname')
    .option('--peer <id[@bootid]>', 'a remote node to keep per-node-pair SAs with (repeatable)', collect, [])
    .addOption(new Option('--backend <name>', 'where SAs are written').choices([...BACKENDS]).default('state'))
    .option('--state <path>', `state file for --backend state (default ${defaultStatePath()})`)
    .option('--grace <duration>', 'keep a replaced key for this long', '5m');
}

/** Flags of --backend engine: the pinned maps, the node directory, and the outer header. */
export function withEngineOptions(cmd: Command): Command {
  return cmd
    .option('--pin-dir <dir>', `bpffs directory of the engine's pinned maps, for --backend engine (default ${DEFAULT_ENGINE_PIN_DIR})`)
    .option('--nodes <file>', 'node directory for --backend engine: lines "NAME ADDRESS [DEVICE]"')
    .option('--node-addr <name=ip[,dev]>', 'a node directory entry (repeatable)', collect, [])
    .option('--outer-mode <mode>', 'tunnel (default) or transport')
    .option('--outer-ttl <n>', 'outer TTL (default 64)')
    .option('--outer-df <policy>', 'outer DF bit: copy (default), set or clear');
}

/** The store for --backend; engine flags matter only with --backend engine. */
export function openBackend(o: EngineFlags & { backend: string; state?: string }, localNode: string): SaStore {
  return openStore(o.backend, o.state, o.backend === 'engine' ? engineOptionsFromFlags(o, localNode) : undefined);
}

function nodeSetup(o: NodeOpts): { store: SaStore; local: NodeEndpoint; peers: NodeEndpoint[]; graceMs: number } {
  const local = parseEndpoint(o.node ?? hostname(), '--node');
  const peers = o.peer.map((p) => parseEndpoint(p, '--peer'));
  if (peers.some((p) => p.id === local.id)) throw new UsageError(`--peer ${local.id} is this node`);
  const graceMs = o.grace === undefined ? DEFAULT_GRACE_MS : parseDuration('--grace', o.grace);
  return { store: openBackend(o, local.id), local, peers, graceMs };
}

const stdoutLog = lineLogger((l) => process.stdout.write(`${l}\n`));

function checkSource(from: string, path: string | undefined): SourceKind {
  if (!['file', 'dir', 'k8s', 'spire'].includes(from)) throw new UsageError(`--from: expected file, dir, k8s or spire, got "${from}"`);
  if ((from === 'file' || from === 'dir') && !path) throw new UsageError(`--from ${from} needs a PATH`);
  if ((from === 'k8s' || from === 'spire') && path) throw new UsageError(`--from ${from} takes no PATH (got "${path}")`);
  return from as SourceKind;
}

function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** Atomic 0600 write beside the target (same filesystem, so rename is atomic). */
function writeKeyFile(path: string, text: string): void {
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
  renameSync(tmp, path);
}

/** The next key line after `current`, same AES size and ICV; a first key if there is none. */
function nextLine(currentText: string | undefined, origin: string): { line: string; from?: number } {
  if (currentText === undefined || currentText.trim() === '') return { line: generateKeyLine({ spi: 1 }) };
  let current: GlobalKey;
  try {
    current = parseKeyFile(currentText, origin).at(-1)!;
  } catch (err) {
    throw new Error(`cannot rotate: the current key does not parse: ${(err as Error).message}`);
  }
  return { line: generateKeyLine({ spi: nextKeyId(current.spi), aesBits: current.key.length === 16 ? 128 : 256, icvBits: current.icvBits }), from: current.spi };
}

export function register(program: Command): void {
  const keys = program.command('keys').description('IPsec keys: Cilium key files, Kubernetes secrets, SPIRE SVIDs → SAs');

  withEngineOptions(withNodeOptions(
    keys
      .command('load')
      .description('install SAs from a key source once: --from file PATH | dir PATH | k8s [--secret NS/NAME] | spire [--socket URI]')
      .requiredOption('--from <source>', 'file, dir (mounted secret), k8s or spire')
      .argument('[path]', 'key file (file) or mounted secret directory (dir)')
      .option('--secret <ns/name>', 'Kubernetes secret', DEFAULT_SECRET)
      .option('--kubeconfig <path>', 'kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)')
      .option('--socket <uri>', 'SPIFFE Workload API (default: $SPIFFE_ENDPOINT_SOCKET or unix:///tmp/spire-agent/public/api.sock)')
      .option('--spiffe-id <id>', 'which SVID to use if the workload has several')
      .option('--peer-svid <node=path>', "a peer's SVID certificate (PEM/DER) for --from spire (repeatable)", collect, []),
  )).action((path: string | undefined, o: NodeOpts & { from: string; secret: string; kubeconfig?: string; socket?: string; spiffeId?: string; peerSvid: string[] }) =>
    runCommand(async () => {
      const from = checkSource(o.from, path);
      const { store, local, peers, graceMs } = nodeSetup(o);
      const peerSvids = o.peerSvid.map((spec) => {
        const eq = spec.indexOf('=');
        if (eq <= 0) throw new UsageError(`--peer-svid: expected NODE=PATH, got "${spec}"`);
        return { node: spec.slice(0, eq), path: spec.slice(eq + 1) };
      });
      if (from === 'spire') for (const p of peerSvids) if (!peers.some((x) => x.id === parseEndpoint(p.node, '--peer-svid').id)) peers.push(parseEndpoint(p.node, '--peer-svid'));
      if (peers.length === 0) throw new UsageError('no peers: per-node-pair SAs need the remote nodes (--peer NODE, repeatable)');
      const manager = new KeyManager({ store, local, peers, graceMs, log: stdoutLog });
      await manager.restore();
      const source = await startSource({ from, path, secret: o.secret, kubeconfig: o.kubeconfig, socket: o.socket, spiffeId: o.spiffeId, peerSvids, firstTimeoutMs: 30_000 }, manager, stdoutLog, false);
      await source.close();
      if (!manager.currentLabel()) throw new Error(`--from ${from}: no key found${from === 'k8s' ? ` (secret ${o.secret} missing or without data.keys)` : ''}`);
      await manager.expire();
      manager.close();
    }),
  );

  withEngineOptions(
    keys
      .command('list')
      .description('installed SAs: SPI, algorithm, key fingerprint, age, packets (never key bytes)')
      .option('--json', 'one JSON document')
      .addOption(new Option('--backend <name>', 'where SAs are read from').choices([...BACKENDS]).default('state'))
      .option('--state <path>', `state file (default ${defaultStatePath()})`)
      .option('--node <id[@bootid]>', 'this node, for --backend engine; default: the hostname'),
  ).action((o: EngineFlags & { json?: boolean; backend: string; state?: string; node?: string }) =>
      runCommand(async () => {
        const entries = await openBackend(o, parseEndpoint(o.node ?? hostname(), '--node').id).list();
        const now = Date.now();
        const rows = entries
          .sort((a, b) => a.remoteNode.localeCompare(b.remoteNode) || a.direction.localeCompare(b.direction) || a.createdAt - b.createdAt)
          .map((e) => ({
            direction: e.direction,
            spi: e.spi,
            keyId: e.keyIndex,
            local: e.localNode,
            remote: e.remoteNode,
            algorithm: `${e.algorithm}/${e.key.length * 8}`,
            icvBits: e.icvBits,
            fingerprint: saFingerprint(e),
            created: new Date(e.createdAt).toISOString(),
            ageSeconds: Math.floor((now - e.createdAt) / 1000),
            packets: e.packets.toString(),
            bytes: e.bytes.toString(),
          }));
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ sas: rows }, null, 2)}\n`);
          return;
        }
        if (rows.length === 0) {
          process.stdout.write('no SAs installed\n');
          return;
        }
        const table = [
          ['DIRECTION', 'SPI', 'KEY-ID', 'LOCAL', 'REMOTE', 'ALGORITHM', 'ICV', 'FINGERPRINT', 'AGE', 'PACKETS', 'BYTES'],
          ...rows.map((r) => [r.direction, String(r.spi), String(r.keyId || '-'), r.local, r.remote, r.algorithm, String(r.icvBits), r.fingerprint, formatAge(r.ageSeconds * 1000), r.packets, r.bytes]),
        ];
        const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
        for (const row of table) process.stdout.write(`${row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()}\n`);
      }),
    );

  keys
    .command('generate')
    .description('print a fresh Cilium key line from the system CSPRNG (for kubectl create secret … --from-literal=keys=…)')
    .option('--spi <n>', 'key ID 1–15', '1')
    .addOption(new Option('--aes <bits>', 'AES key size').choices(['128', '256']).default('256'))
    .addOption(new Option('--icv <bits>', 'ICV length').choices(['64', '96', '128']).default('128'))
    .action((o: { spi: string; aes: string; icv: string }) =>
      runCommand(() => {
        const spi = parseCount('--spi', o.spi);
        if (spi < 1 || spi > 15) throw new UsageError(`--spi: key IDs are 1–15, got ${spi}`);
        process.stdout.write(`${generateKeyLine({ spi, aesBits: Number(o.aes) as 128 | 256, icvBits: Number(o.icv) as IcvBits })}\n`);
      }),
    );

  withEngineOptions(withNodeOptions(
    keys
      .command('rotate')
      .description('replace the key with a fresh one under the next key ID: --from file PATH (rewrites it, then installs) | k8s [--secret NS/NAME] (updates the secret; agents roll it out)')
      .requiredOption('--from <source>', 'file or k8s')
      .argument('[path]', 'key file (file)')
      .option('--secret <ns/name>', 'Kubernetes secret', DEFAULT_SECRET)
      .option('--kubeconfig <path>', 'kubeconfig'),
  )).action((path: string | undefined, o: NodeOpts & { from: string; secret: string; kubeconfig?: string }) =>
    runCommand(async () => {
      const from = checkSource(o.from, path);
      if (from === 'dir') throw new UsageError('--from dir: a mounted secret is read-only; rotate the Secret (--from k8s) and kubelet updates the mount');
      if (from === 'spire') throw new UsageError('--from spire: keys follow SVID rotation; rotate SVIDs in SPIRE');
      if (from === 'k8s') {
        const ref = parseSecretRef(o.secret);
        let previous: number | undefined;
        const { loadKubeConfig, rotateSecretKey } = await import('../../runtime/keys/k8s.ts');
        const { text, resourceVersion } = await rotateSecretKey(loadKubeConfig(o.kubeconfig), ref, (current) => {
          const n = nextLine(current, `secret ${o.secret}`);
          previous = n.from;
          return n.line;
        });
        const [k] = parseKeyFile(text);
        stdoutLog('secret updated', { secret: o.secret, keyId: k.spi, previousKeyId: previous ?? 'none', fingerprint: k.key.fingerprint(), resourceVersion: resourceVersion ?? '' });
        return;
      }
      const file = path!;
      const { store, local, peers, graceMs } = nodeSetup(o);
      if (peers.length === 0) throw new UsageError('no peers: per-node-pair SAs need the remote nodes (--peer NODE, repeatable)');
      const manager = new KeyManager({ store, local, peers, graceMs, log: stdoutLog });
      await manager.restore();
      const n = nextLine(existsSync(file) ? readFileSync(file, 'utf8') : undefined, file);
      // Check against what is installed before touching the file, so a refused rotation changes nothing.
      const result = await manager.applyKeyFile(n.line, file);
      writeKeyFile(file, `${n.line}\n`);
      await manager.expire();
      manager.close();
      const [k] = parseKeyFile(n.line);
      stdoutLog(`key ${result}`, { file, keyId: k.spi, previousKeyId: n.from ?? 'none', fingerprint: k.key.fingerprint() });
    }),
  );
}
