// Where key files come from. A source delivers the whole key-file text each time it may have changed;
// the key manager decides whether anything changed (same text, same key ID → nothing to do), so
// sources may deliver duplicates freely (a relist, a poll, a spurious inotify event).
import { createHash } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { join } from 'node:path';

export type KeyTextSink = (text: string, origin: string) => Promise<void>;

export interface KeyTextSource {
  /** Human-readable origin for logs ("/etc/ipsec/keys", "secret kube-system/cilium-ipsec-keys"). */
  readonly origin: string;
  /** Deliver the current text once, then on every change until close(). */
  start(sink: KeyTextSink): Promise<void>;
  close(): Promise<void>;
}

export class KeyFileSource implements KeyTextSource {
  constructor(readonly origin: string) {}
  async start(sink: KeyTextSink): Promise<void> {
    await sink(readKeyText(this.origin), this.origin);
  }
  async close(): Promise<void> {}
}

export function readKeyText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(`${path}: ${e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message}`);
  }
}

export interface DirWatchOptions {
  /** File name inside the directory (Cilium mounts the secret's `keys` entry). */
  file?: string;
  /** Re-read this often even without an event: inotify can miss a swap (default 30 s). */
  pollMs?: number;
  /** Coalesce the burst of events one kubelet update makes (default 50 ms). */
  debounceMs?: number;
  /** Errors of reading or applying; the watch goes on, and the keys in place stay. */
  onError?: (err: Error) => void;
}

/**
 * Watch a mounted Secret. Kubelet's atomic writer never edits `keys` in place: it writes a new
 * `..<timestamp>/` directory, points a `..data_tmp` symlink at it, renames that over `..data`
 * (one atomic rename), and `keys` itself is a symlink to `..data/keys`. An inotify watch on the
 * file would follow the old inode into the deleted directory, so this watches the directory, re-reads
 * `keys` through the symlinks after any event, and delivers the text only when its hash changed.
 */
export class SecretDirSource implements KeyTextSource {
  readonly origin: string;
  private watcher?: FSWatcher;
  private poll?: NodeJS.Timeout;
  private debounce?: NodeJS.Timeout;
  private lastHash?: string;
  private running: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    readonly dir: string,
    private readonly opts: DirWatchOptions = {},
  ) {
    this.origin = join(dir, opts.file ?? 'keys');
  }

  async start(sink: KeyTextSink): Promise<void> {
    const check = () => {
      if (this.closed) return;
      this.running = this.running.then(async () => {
        let text: string;
        try {
          text = readKeyText(this.origin);
        } catch (err) {
          // Between kubelet's rename and cleanup a read can transiently fail; the next event or
          // poll retries. Report it, keep the installed keys.
          this.opts.onError?.(err as Error);
          return;
        }
        const hash = createHash('sha256').update(text).digest('hex');
        if (hash === this.lastHash) return;
        try {
          await sink(text, this.origin);
          this.lastHash = hash;
        } catch (err) {
          // A rejected file is remembered too, so it is not re-reported on every poll; a fixed
          // file has another hash and is applied.
          this.lastHash = hash;
          this.opts.onError?.(err as Error);
        }
      });
    };
    // The first load must succeed (or throw to the caller): an agent must not start keyless silently.
    const text = readKeyText(this.origin);
    await sink(text, this.origin);
    this.lastHash = createHash('sha256').update(text).digest('hex');

    this.watcher = watch(this.dir, { persistent: true }, () => {
      clearTimeout(this.debounce);
      this.debounce = setTimeout(check, this.opts.debounceMs ?? 50);
    });
    this.watcher.on('error', (err) => this.opts.onError?.(err));
    this.poll = setInterval(check, this.opts.pollMs ?? 30_000);
  }

  /** Wait until the change handling in progress (if any) has finished: for tests and shutdown. */
  idle(): Promise<void> {
    return this.running;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    clearInterval(this.poll);
    clearTimeout(this.debounce);
    await this.running;
  }
}
