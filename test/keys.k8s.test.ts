// The Kubernetes source against a local API server that speaks the real list/watch wire format:
// a SecretList for the list, and for ?watch=true a chunked stream of one JSON WatchEvent per line.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { KubernetesSecretSource, parseSecretRef, rotateSecretKey } from '../runtime/keys/k8s.ts';
import { parseKeyFile } from '../runtime/keys/keyfile.ts';
import { KeyManager } from '../runtime/keys/rotation.ts';
import { FakeClock, findKeyMaterial, FIXTURE_KEYS, installedKeyBytes, KEY128, KEY128_B, KEY256, line, logged, testLog, TrackedStore } from './keys/fixtures.ts';

// Nothing this file's code logged may carry key bytes.
afterAll(() => {
  expect(logged.length).toBeGreaterThan(0);
  expect(findKeyMaterial(logged, [...FIXTURE_KEYS, ...installedKeyBytes])).toEqual([]);
});

const b64 = (s: string) => Buffer.from(s).toString('base64');
const secret = (rv: string, keys: string) => ({
  kind: 'Secret',
  apiVersion: 'v1',
  metadata: { name: 'cilium-ipsec-keys', namespace: 'kube-system', resourceVersion: rv },
  type: 'Opaque',
  data: { keys: b64(keys) },
});
const list = (rv: string, items: object[]) => ({ kind: 'SecretList', apiVersion: 'v1', metadata: { resourceVersion: rv }, items });

type WatchScript = (req: IncomingMessage, res: ServerResponse) => void;
const event = (res: ServerResponse, type: string, object: object) => res.write(`${JSON.stringify({ type, object })}\n`);

let server: Server | undefined;
afterEach(async () => {
  const s = server;
  server = undefined;
  if (!s) return;
  s.closeAllConnections();
  await new Promise((r) => s.close(r));
});

async function serve(lists: object[], watches: WatchScript[]) {
  const requests: string[] = [];
  server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const q = url.searchParams;
    expect(url.pathname).toBe('/api/v1/namespaces/kube-system/secrets');
    expect(q.get('fieldSelector')).toBe('metadata.name=cilium-ipsec-keys');
    expect(req.headers.authorization).toBe('Bearer test-token');
    if (q.get('watch') === 'true') {
      expect(q.get('allowWatchBookmarks')).toBe('true');
      requests.push(`watch rv=${q.get('resourceVersion')}`);
      const script = watches.shift();
      if (!script) return void res.writeHead(200, { 'content-type': 'application/json' }); // hold open
      return script(req, res);
    }
    requests.push('list');
    const body = lists.shift();
    if (!body) throw new Error('unexpected list');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'test', token: 'test-token' }],
    contexts: [{ name: 'test', cluster: 'test', user: 'test' }],
    currentContext: 'test',
  });
  return { kc, requests };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('Kubernetes secret source', () => {
  it('list, watch, bookmark, dropped connection, 410 in-stream and on connect: ends with the latest key', async () => {
    const { kc, requests } = await serve(
      [list('100', [secret('90', line('3+'))]), list('200', [secret('190', line('5+', KEY256))]), list('300', [secret('290', line('6+', KEY128))])],
      [
        // 1: a bookmark, a real change, then the connection drops mid-stream.
        (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
          event(res, 'BOOKMARK', { kind: 'Secret', apiVersion: 'v1', metadata: { resourceVersion: '105' } });
          event(res, 'MODIFIED', secret('110', line('4+', KEY128_B)));
          setTimeout(() => res.socket?.destroy(), 50);
        },
        // 2: the watch from 110 is answered with an in-stream 410 Gone Status.
        (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          event(res, 'ERROR', { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'too old resource version: 110 (150)', reason: 'Expired', code: 410 });
          res.end();
        },
        // 3: after the relist, the watch itself gets HTTP 410.
        (_req, res) => {
          res.writeHead(410, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 410, reason: 'Gone' }));
        },
        // 4: one more change, then the stream stays open.
        (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          event(res, 'MODIFIED', secret('310', line('7+', KEY128_B)));
        },
      ],
    );
    const store = new TrackedStore();
    const manager = new KeyManager({ store, local: { id: 'n1', bootId: '' }, peers: [{ id: 'n2', bootId: '' }], clock: new FakeClock(), log: testLog });
    const source = new KubernetesSecretSource({ kubeConfig: kc, secret: parseSecretRef('kube-system/cilium-ipsec-keys'), backoffMs: 20, maxBackoffMs: 100, log: testLog });
    const spis: number[] = [];
    await source.start(async (text, origin) => {
      await manager.applyKeyFile(text, origin);
      spis.push(store.egressFor('n1', 'n2')!.spi);
    });
    await until(() => spis.at(-1) === 7, 'key ID 7');
    await source.close();
    expect(requests).toEqual(['list', 'watch rv=100', 'watch rv=110', 'list', 'watch rv=200', 'list', 'watch rv=300']);
    expect(spis).toEqual([3, 4, 5, 6, 7]);
    expect(source.stats).toMatchObject({ lists: 3, gone: 2, bookmarks: 1 });
    // The store holds the latest key in force.
    expect(store.egressFor('n1', 'n2')!.keyIndex).toBe(7);
  });

  it('a bad key file in the secret is rejected and logged; the keys stay', async () => {
    const { kc } = await serve(
      [list('100', [secret('90', line('3+'))])],
      [
        (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          event(res, 'MODIFIED', secret('110', line('4+', KEY128_B, 12)));
        },
      ],
    );
    const store = new TrackedStore();
    const manager = new KeyManager({ store, local: { id: 'n1', bootId: '' }, peers: [{ id: 'n2', bootId: '' }], clock: new FakeClock(), log: testLog });
    const source = new KubernetesSecretSource({ kubeConfig: kc, secret: { namespace: 'kube-system', name: 'cilium-ipsec-keys' }, log: testLog });
    await source.start((text, origin) => manager.applyKeyFile(text, origin).then(() => {}));
    await until(() => logged.some((l) => l.includes('field 4 (icv-bits): 12 is not a valid ICV length')), 'the rejection in the log');
    await source.close();
    expect(store.egressFor('n1', 'n2')!.spi).toBe(3);
    expect(logged.find((l) => l.includes('12 is not a valid'))).toMatch(/secret kube-system\/cilium-ipsec-keys:1: field 4/);
  });

  it('the first list failing is one clear error', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 't', server: 'http://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 't' }],
      contexts: [{ name: 't', cluster: 't', user: 't' }],
      currentContext: 't',
    });
    const source = new KubernetesSecretSource({ kubeConfig: kc, secret: { namespace: 'kube-system', name: 'x' } });
    await expect(source.start(async () => {})).rejects.toThrow(/^secret kube-system\/x: .*ECONNREFUSED/);
  });

  it('rotateSecretKey: next key ID into data.keys, conditional on resourceVersion; 409 is one clear line', async () => {
    let stored = secret('500', line('15+', KEY256, 96));
    const puts: { rv: string; keys: string }[] = [];
    let conflict = false;
    server = createServer((req, res) => {
      expect(req.url).toBe('/api/v1/namespaces/kube-system/secrets/cilium-ipsec-keys');
      if (req.method === 'GET') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stored));
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const obj = JSON.parse(body);
        puts.push({ rv: obj.metadata.resourceVersion, keys: Buffer.from(obj.data.keys, 'base64').toString() });
        if (conflict) return void res.writeHead(409, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 409, reason: 'Conflict', message: 'the object has been modified' }));
        stored = { ...obj, metadata: { ...obj.metadata, resourceVersion: '501' } };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stored));
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 't', server: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, skipTLSVerify: true }],
      users: [{ name: 't', token: 'test-token' }],
      contexts: [{ name: 't', cluster: 't', user: 't' }],
      currentContext: 't',
    });
    const ref = { namespace: 'kube-system', name: 'cilium-ipsec-keys' };
    const next = (current: string | undefined) => {
      const [k] = parseKeyFile(current!);
      return `${k.spi === 15 ? 1 : k.spi + 1}+ rfc4106(gcm(aes)) ${KEY128_B} ${k.icvBits}`;
    };
    const r = await rotateSecretKey(kc, ref, next);
    expect(r.resourceVersion).toBe('501');
    expect(puts).toEqual([{ rv: '500', keys: `1+ rfc4106(gcm(aes)) ${KEY128_B} 96\n` }]);
    conflict = true;
    await expect(rotateSecretKey(kc, ref, next)).rejects.toThrow(/^secret kube-system\/cilium-ipsec-keys: changed by someone else while rotating \(409 Conflict\); run keys rotate again$/);
  });

  it('parses NS/NAME', () => {
    expect(parseSecretRef('kube-system/cilium-ipsec-keys')).toEqual({ namespace: 'kube-system', name: 'cilium-ipsec-keys' });
    expect(() => parseSecretRef('cilium-ipsec-keys')).toThrow(/expected NAMESPACE\/NAME/);
    expect(() => parseSecretRef('Kube/x')).toThrow(/expected NAMESPACE\/NAME/);
  });
});
