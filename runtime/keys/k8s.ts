// The key Secret from the Kubernetes API (default kube-system/cilium-ipsec-keys), kept current the
// way a client-go reflector does it:
//
//   list (fieldSelector metadata.name=NAME) → deliver data.keys, remember the list resourceVersion
//   watch from that resourceVersion, allowWatchBookmarks=true:
//     ADDED / MODIFIED  → deliver data.keys (base64-decoded); remember the object's resourceVersion
//     BOOKMARK          → remember its resourceVersion only (no data)
//     DELETED           → log; keep the installed keys (a deleted secret must not cut traffic)
//     ERROR 410 Gone    → the resourceVersion is too old (etcd compacted): list again
//   the watch ends (server timeout, dropped connection, error) → watch again from the last
//   resourceVersion after an exponential backoff with jitter; HTTP 410 on connect → list again.
import { CoreV1Api, KubeConfig, Watch } from '@kubernetes/client-node';

export { DEFAULT_SECRET, type SecretRef, parseSecretRef } from './secret-ref.ts';
import type { SecretRef } from './secret-ref.ts';

/** kubeconfig from a path, else the default chain ($KUBECONFIG, ~/.kube/config, in-cluster service account). */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error('no Kubernetes cluster configured (set KUBECONFIG, or run in a pod with a service account)');
  return kc;
}

export interface SecretWatchOptions {
  kubeConfig: KubeConfig;
  secret: SecretRef;
  /** The data key holding the key file (Cilium: "keys"). */
  dataKey?: string;
  /** Backoff between reconnects: starts here, doubles to maxBackoffMs (defaults 500 ms, 30 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Progress and errors, without key material. */
  log?: (event: string, fields?: Record<string, string | number>) => void;
}

type Sink = (text: string, origin: string) => Promise<void>;

interface WatchStatus {
  kind?: string;
  code?: number;
  reason?: string;
  message?: string;
}

interface SecretObject {
  metadata?: { name?: string; resourceVersion?: string };
  data?: Record<string, string>;
}

class Gone extends Error {}

export class KubernetesSecretSource {
  readonly origin: string;
  private readonly api: CoreV1Api;
  private readonly watcher: Watch;
  private readonly dataKey: string;
  private resourceVersion?: string;
  private closed = false;
  private events = 0;
  private abort?: AbortController;
  private wake?: () => void;
  private loop?: Promise<void>;
  /** Deliveries are chained so a slow rotation never interleaves with the next event. */
  private delivering: Promise<void> = Promise.resolve();
  /** Counters for tests and diagnostics. */
  readonly stats = { lists: 0, watches: 0, gone: 0, bookmarks: 0, reconnects: 0 };

  constructor(private readonly opts: SecretWatchOptions) {
    this.origin = `secret ${opts.secret.namespace}/${opts.secret.name}`;
    this.api = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.watcher = new Watch(opts.kubeConfig);
    this.dataKey = opts.dataKey ?? 'keys';
  }

  private log(event: string, fields?: Record<string, string | number>): void {
    this.opts.log?.(event, { secret: `${this.opts.secret.namespace}/${this.opts.secret.name}`, ...fields });
  }

  private decode(obj: SecretObject): string | undefined {
    const b64 = obj.data?.[this.dataKey];
    if (b64 === undefined) {
      this.log(`secret has no data.${this.dataKey}; keeping installed keys`);
      return undefined;
    }
    return Buffer.from(b64, 'base64').toString('utf8');
  }

  private deliver(sink: Sink, obj: SecretObject): Promise<void> {
    const text = this.decode(obj);
    if (text === undefined) return this.delivering;
    this.delivering = this.delivering.then(() =>
      sink(text, this.origin).catch((err) => this.log('rejected', { error: (err as Error).message })),
    );
    return this.delivering;
  }

  /** List once; a missing secret is logged, not an error (it may be created later). */
  private async list(sink: Sink): Promise<void> {
    this.stats.lists++;
    const { namespace, name } = this.opts.secret;
    const list = await this.api.listNamespacedSecret({ namespace, fieldSelector: `metadata.name=${name}` });
    this.resourceVersion = list.metadata?.resourceVersion;
    const secret = list.items.find((s) => s.metadata?.name === name);
    this.log('listed', { resourceVersion: this.resourceVersion ?? '', found: secret ? 'yes' : 'no' });
    if (secret) await this.deliver(sink, secret as SecretObject);
  }

  /** One watch connection; resolves when it ends, rejects with Gone on 410. */
  private watchOnce(sink: Sink): Promise<void> {
    this.stats.watches++;
    const { namespace, name } = this.opts.secret;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve();
      };
      const onEvent = (type: string, obj: SecretObject & WatchStatus) => {
        this.events++;
        if (type === 'ERROR') {
          if (obj.code === 410) finish(new Gone(obj.message ?? 'resource version too old'));
          else finish(new Error(`watch error ${obj.code ?? ''} ${obj.reason ?? ''}: ${obj.message ?? ''}`.trim()));
          this.abort?.abort();
          return;
        }
        const rv = obj.metadata?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        if (type === 'BOOKMARK') {
          this.stats.bookmarks++;
          return;
        }
        if (obj.metadata?.name !== name) return;
        if (type === 'ADDED' || type === 'MODIFIED') {
          this.log('secret changed', { event: type, resourceVersion: rv ?? '' });
          void this.deliver(sink, obj);
        } else if (type === 'DELETED') {
          this.log('secret deleted; keeping installed keys', { resourceVersion: rv ?? '' });
        }
      };
      const done = (err: unknown) => {
        const status = (err as { statusCode?: number } | null)?.statusCode;
        if (status === 410) finish(new Gone('HTTP 410'));
        else finish(err ?? undefined);
      };
      this.watcher
        .watch(
          `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`,
          {
            fieldSelector: `metadata.name=${name}`,
            resourceVersion: this.resourceVersion,
            allowWatchBookmarks: true,
            // Like client-go, make the server end each watch after 5–10 min so stale
            // connections behind NATs and proxies are replaced.
            timeoutSeconds: 300 + Math.floor(Math.random() * 300),
          },
          onEvent,
          done,
        )
        .then((controller) => {
          this.abort = controller;
          if (this.closed) controller.abort();
        }, finish);
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /**
   * Start: the first list must succeed (so the caller learns at once about a wrong kubeconfig or
   * missing RBAC); after that the watch loop keeps going until close().
   */
  async start(sink: Sink): Promise<void> {
    try {
      await this.list(sink);
    } catch (err) {
      throw new Error(`${this.origin}: ${describeApiError(err)}`);
    }
    const initial = this.opts.backoffMs ?? 500;
    const max = this.opts.maxBackoffMs ?? 30_000;
    this.loop = (async () => {
      let backoff = initial;
      let needList = false;
      while (!this.closed) {
        try {
          if (needList) {
            await this.list(sink);
            needList = false;
          }
          const started = Date.now();
          const eventsBefore = this.events;
          await this.watchOnce(sink);
          // A clean end after a useful watch (server timeout, events seen) reconnects at once from
          // the last resourceVersion; an immediately closed one counts as a failure.
          if (this.events > eventsBefore || Date.now() - started > 5_000) {
            backoff = initial;
            continue;
          }
          throw new Error('watch closed without events');
        } catch (err) {
          if (this.closed) break;
          if (err instanceof Gone) {
            this.stats.gone++;
            this.log('resourceVersion expired (410 Gone); listing again', { resourceVersion: this.resourceVersion ?? '' });
            needList = true;
            this.resourceVersion = undefined;
            continue;
          }
          this.stats.reconnects++;
          const wait = Math.round(backoff * (0.5 + Math.random() / 2));
          this.log('watch failed; reconnecting', { error: describeApiError(err), inMs: wait });
          await this.sleep(wait);
          backoff = Math.min(max, backoff * 2);
        }
      }
    })();
  }

  /** Wait for deliveries in progress (tests). */
  idle(): Promise<void> {
    return this.delivering;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.abort?.abort();
    this.wake?.();
    await this.loop;
    await this.delivering;
  }
}

function describeApiError(err: unknown): string {
  const e = err as { code?: number; statusCode?: number; body?: unknown; message?: string };
  const code = e?.code ?? e?.statusCode;
  let reason = '';
  if (typeof e?.body === 'string') {
    try {
      reason = (JSON.parse(e.body) as WatchStatus).message ?? '';
    } catch {
      reason = '';
    }
  } else if (e?.body && typeof e.body === 'object') reason = (e.body as WatchStatus).message ?? '';
  const first = (reason || e?.message || String(err)).split('\n')[0];
  return code ? `HTTP ${code}: ${first.replace(/^HTTP-Code: \d+\s*/, '')}` : first;
}

/**
 * Rotate the key in the Secret itself (what Cilium's docs do with `kubectl patch`): read it, put a
 * fresh key with the next key ID in `data.keys`, and replace it conditionally on the resourceVersion
 * read, so two concurrent rotations cannot both win. Watching agents then roll the key out.
 */
export async function rotateSecretKey(
  kubeConfig: KubeConfig,
  ref: SecretRef,
  nextLine: (currentText: string | undefined) => string,
  dataKey = 'keys',
): Promise<{ text: string; resourceVersion?: string }> {
  const api = kubeConfig.makeApiClient(CoreV1Api);
  const origin = `secret ${ref.namespace}/${ref.name}`;
  let current;
  try {
    current = await api.readNamespacedSecret({ name: ref.name, namespace: ref.namespace });
  } catch (err) {
    throw new Error(`${origin}: ${describeApiError(err)}`);
  }
  const b64 = current.data?.[dataKey];
  const text = `${nextLine(b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8'))}\n`;
  const body = { ...current, data: { ...current.data, [dataKey]: Buffer.from(text).toString('base64') } };
  try {
    const updated = await api.replaceNamespacedSecret({ name: ref.name, namespace: ref.namespace, body });
    return { text, resourceVersion: updated.metadata?.resourceVersion };
  } catch (err) {
    const e = err as { code?: number };
    if (e?.code === 409) throw new Error(`${origin}: changed by someone else while rotating (409 Conflict); run keys rotate again`);
    throw new Error(`${origin}: ${describeApiError(err)}`);
  }
}
