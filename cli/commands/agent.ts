// `ebpf-ts agent`: long-running key agent. Watches one key source, keeps the SAs in sync (rotation
// with a grace period), logs each change without key material, and exits 0 on SIGTERM/SIGINT,
// leaving the installed SAs in place so traffic keeps flowing across an agent restart.
import { hostname } from 'node:os';
import { type Command, Option } from 'commander';
import { lineLogger, parseEndpoint, runAgent, type SourceKind } from '../../runtime/keys/agent.ts';
import { BACKENDS, type EngineFlags, defaultStatePath } from '../../runtime/keys/backend.ts';
import { DEFAULT_SECRET } from '../../runtime/keys/secret-ref.ts';
import { UsageError, runCommand } from '../errors.ts';
import { openBackend, parseDuration, withEngineOptions } from './keys.ts';

const collect = (value: string, previous: string[]) => [...previous, value];

export function register(program: Command): void {
  withEngineOptions(program
    .command('agent')
    .description('watch a key source and keep the SAs in sync until SIGTERM: --from file PATH | dir PATH | k8s [--secret NS/NAME] | spire [--socket URI]')
    .requiredOption('--from <source>', 'file, dir (mounted secret such as /etc/ipsec), k8s or spire')
    .argument('[path]', 'key file (file) or mounted secret directory (dir)')
    .option('--secret <ns/name>', 'Kubernetes secret', DEFAULT_SECRET)
    .option('--kubeconfig <path>', 'kubeconfig (default: $KUBECONFIG, ~/.kube/config, in-cluster)')
    .option('--socket <uri>', 'SPIFFE Workload API (default: $SPIFFE_ENDPOINT_SOCKET or unix:///tmp/spire-agent/public/api.sock)')
    .option('--spiffe-id <id>', 'which SVID to use if the workload has several')
    .option('--peer-svid <node=path>', "a peer's SVID certificate (PEM/DER) for --from spire (repeatable)", collect, [])
    .option('--node <id[@bootid]>', 'this node, as peers know it; default: the hostname')
    .option('--peer <id[@bootid]>', 'a remote node (repeatable)', collect, [])
    .addOption(new Option('--backend <name>', 'where SAs are written').choices([...BACKENDS]).default('state'))
    .option('--state <path>', `state file for --backend state (default ${defaultStatePath()})`)
    .option('--grace <duration>', 'keep a replaced key for this long (Cilium: ipsec-key-rotation-duration)', '5m'))
    .action(
      (
        path: string | undefined,
        o: EngineFlags & { from: string; secret: string; kubeconfig?: string; socket?: string; spiffeId?: string; peerSvid: string[]; node?: string; peer: string[]; backend: string; state?: string; grace: string },
      ) =>
        runCommand(async () => {
          if (!['file', 'dir', 'k8s', 'spire'].includes(o.from)) throw new UsageError(`--from: expected file, dir, k8s or spire, got "${o.from}"`);
          if ((o.from === 'file' || o.from === 'dir') && !path) throw new UsageError(`--from ${o.from} needs a PATH`);
          const local = parseEndpoint(o.node ?? hostname(), '--node');
          const peers = o.peer.map((p) => parseEndpoint(p, '--peer'));
          const peerSvids = o.peerSvid.map((spec) => {
            const eq = spec.indexOf('=');
            if (eq <= 0) throw new UsageError(`--peer-svid: expected NODE=PATH, got "${spec}"`);
            return { node: spec.slice(0, eq), path: spec.slice(eq + 1) };
          });
          for (const p of peerSvids) if (!peers.some((x) => x.id === parseEndpoint(p.node, '--peer-svid').id)) peers.push(parseEndpoint(p.node, '--peer-svid'));
          const log = lineLogger((l) => process.stderr.write(`${new Date().toISOString()} ${l}\n`), 'agent: ');
          const stop = new AbortController();
          const onSignal = (sig: string) => {
            log('signal received; stopping', { signal: sig });
            stop.abort();
          };
          process.once('SIGTERM', () => onSignal('SIGTERM'));
          process.once('SIGINT', () => onSignal('SIGINT'));
          await runAgent(
            {
              from: o.from as SourceKind,
              path,
              secret: o.secret,
              kubeconfig: o.kubeconfig,
              socket: o.socket,
              spiffeId: o.spiffeId,
              peerSvids,
              store: openBackend(o, local.id),
              local,
              peers,
              graceMs: parseDuration('--grace', o.grace),
              log,
            },
            stop.signal,
          );
        }),
    );
}
