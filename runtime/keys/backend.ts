// Choosing where SAs go: the state file, memory, or the engine's pinned maps (engine-store.ts).
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_PIN_ROOT } from '../loader/names.ts';
import { type DfPolicy, EngineSaStore, type OuterMode, type OuterOptions, openPinnedKeyMaps } from './engine-store.ts';
import { type NodeDirectory, loadNodeDirectory } from './nodes.ts';
import { MemorySaStore, type SaStore, StateFileSaStore } from './store.ts';

export const BACKENDS = ['state', 'memory', 'engine'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Root keeps state under /run (tmpfs: keys do not survive a reboot); users under ~/.local/state. */
export function defaultStatePath(): string {
  if (process.env.EBPF_TS_KEY_STATE) return process.env.EBPF_TS_KEY_STATE;
  return process.getuid?.() === 0 ? '/run/ebpf-ts/keys.json' : join(homedir(), '.local', 'state', 'ebpf-ts', 'keys.json');
}

/** Where the engine's loader pins its maps by default (runtime/loader: <pin root>/<object name>). */
export const DEFAULT_ENGINE_PIN_DIR = join(DEFAULT_PIN_ROOT, 'engine');

/** What `--backend engine` needs: the pinned maps, the node directory and this node's name. */
export interface EngineBackendOptions extends OuterOptions {
  pinDir?: string;
  nodes: NodeDirectory;
  localNode: string;
}

/** The engine-backend flags as the CLI takes them (keys load/list/rotate, agent). */
export interface EngineFlags {
  pinDir?: string;
  nodes?: string;
  nodeAddr?: string[];
  outerMode?: string;
  outerTtl?: string;
  outerDf?: string;
}

export function engineOptionsFromFlags(flags: EngineFlags, localNode: string): EngineBackendOptions {
  const nodes = loadNodeDirectory(flags.nodes, flags.nodeAddr ?? []);
  if (flags.outerMode !== undefined && !['tunnel', 'transport'].includes(flags.outerMode)) throw new Error(`--outer-mode: expected tunnel or transport, got "${flags.outerMode}"`);
  if (flags.outerDf !== undefined && !['copy', 'set', 'clear'].includes(flags.outerDf)) throw new Error(`--outer-df: expected copy, set or clear, got "${flags.outerDf}"`);
  let ttl: number | undefined;
  if (flags.outerTtl !== undefined) {
    ttl = /^\d+$/.test(flags.outerTtl) ? Number(flags.outerTtl) : Number.NaN;
    if (!(ttl >= 1 && ttl <= 255)) throw new Error(`--outer-ttl: expected 1–255, got "${flags.outerTtl}"`);
  }
  return { pinDir: flags.pinDir, nodes, localNode, mode: flags.outerMode as OuterMode | undefined, ttl, df: flags.outerDf as DfPolicy | undefined };
}

export function openStore(backend: string, statePath = defaultStatePath(), engine?: EngineBackendOptions): SaStore {
  switch (backend) {
    case 'engine': {
      if (!engine) throw new Error('--backend engine needs the node directory (--nodes FILE or --node-addr NAME=IP) and --node');
      engine.nodes.resolve(engine.localNode); // before opening anything: this node needs an address
      const { maps } = openPinnedKeyMaps(engine.pinDir ?? DEFAULT_ENGINE_PIN_DIR);
      return new EngineSaStore({ ...engine, maps });
    }
    case 'state':
      return new StateFileSaStore(statePath);
    case 'memory':
      return new MemorySaStore();
    default:
      throw new Error(`--backend: "${backend}" is not one of ${BACKENDS.join(', ')}`);
  }
}
