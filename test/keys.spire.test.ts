// SPIRE Workload API: a local gRPC server per node (the official workload.proto, a unix socket in a
// temp dir) streams real X.509 SVIDs made by openssl; one rotates mid-stream.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSource } from '../runtime/keys/agent.ts';
import { KeyManager } from '../runtime/keys/rotation.ts';
import { type Svid, WorkloadApiClient, parseSvid, spiffeGeneration, splitDerCertificates, verifySvidChain, workloadApiDefinition, workloadEndpointTarget } from '../runtime/keys/spire.ts';
import { makeCa, type TestCa } from './keys/certs.ts';
import { FakeClock, findKeyMaterial, FIXTURE_KEYS, installedKeyBytes, logged, settle, testLog, TrackedStore } from './keys/fixtures.ts';

// Nothing this file's code logged may carry key bytes.
afterAll(() => {
  expect(logged.length).toBeGreaterThan(0);
  expect(findKeyMaterial(logged, [...FIXTURE_KEYS, ...installedKeyBytes])).toEqual([]);
});

interface FakeAgent {
  server: grpc.Server;
  headers: string[];
  send(svid: { certDer: Buffer; keyDer: Buffer }, spiffeId: string): void;
  close(): Promise<void>;
}

async function startAgent(socket: string, ca: TestCa): Promise<FakeAgent> {
  const streams: grpc.ServerWritableStream<object, object>[] = [];
  const headers: string[] = [];
  let latest: object | undefined;
  const server = new grpc.Server();
  server.addService(workloadApiDefinition(), {
    FetchX509SVID(call: grpc.ServerWritableStream<object, object>) {
      const header = call.metadata.get('workload.spiffe.io')[0];
      headers.push(String(header));
      if (header !== 'true') return call.destroy(Object.assign(new Error('security header missing'), { code: grpc.status.INVALID_ARGUMENT }));
      streams.push(call);
      if (latest) call.write(latest);
    },
  });
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  return {
    server,
    headers,
    send(svid, spiffeId) {
      latest = { svids: [{ spiffe_id: spiffeId, x509_svid: svid.certDer, x509_svid_key: svid.keyDer, bundle: ca.certDer, hint: '' }], crl: [], federated_bundles: {} };
      for (const s of streams) s.write(latest);
    },
    close: () => new Promise<void>((r) => server.tryShutdown(() => r())),
  };
}

const ID_A = 'spiffe://example.org/spire/agent/node-a';
const ID_B = 'spiffe://example.org/spire/agent/node-b';
const nodeA = { id: '10.0.0.1', bootId: '' };
const nodeB = { id: '10.0.0.2', bootId: '' };

let ca: TestCa;
let dir: string;
beforeAll(() => {
  ca = makeCa('example.org');
  dir = mkdtempSync(join(tmpdir(), 'ebpf-ts-spire-'));
});
afterAll(() => {
  ca?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('SPIRE Workload API source', () => {
  it('endpoint URIs', () => {
    expect(workloadEndpointTarget('unix:///tmp/spire-agent/public/api.sock')).toBe('unix:///tmp/spire-agent/public/api.sock');
    expect(workloadEndpointTarget('unix:/run/spire/sockets/agent.sock')).toBe('unix:///run/spire/sockets/agent.sock');
    expect(workloadEndpointTarget('tcp://127.0.0.1:8081')).toBe('127.0.0.1:8081');
    expect(() => workloadEndpointTarget('http://x')).toThrow(/expected unix:\/\/\/path\/to\/socket or tcp:\/\/IP:PORT/);
  });

  it('a one-shot fetch gives up after its deadline with the last error', async () => {
    const client = new WorkloadApiClient({ socket: `unix://${join(dir, 'nobody.sock')}`, backoffMs: 20, firstTimeoutMs: 300 });
    await expect(client.start(() => {})).rejects.toThrow(/^no SVID from the Workload API at unix:\/\/\S+nobody.sock within 300 ms \(last: UNAVAILABLE: /);
  });

  it('SVID checks: URI SAN, trust domain, chain, key match', () => {
    const a = ca.issue(ID_A, 100);
    const b = ca.issue(ID_B, 101);
    const svid = parseSvid({ spiffe_id: ID_A, x509_svid: a.certDer, x509_svid_key: a.keyDer, bundle: ca.certDer });
    expect(svid.spiffeId).toBe(ID_A);
    expect(() => parseSvid({ spiffe_id: ID_A, x509_svid: a.certDer, x509_svid_key: b.keyDer, bundle: ca.certDer })).toThrow(/private key does not match/);
    expect(() => parseSvid({ spiffe_id: ID_B, x509_svid: a.certDer, x509_svid_key: a.keyDer, bundle: ca.certDer })).toThrow(/certificate names .*node-a, the response says .*node-b/);
    const other = makeCa('example.org');
    try {
      expect(() => verifySvidChain(splitDerCertificates(a.certDer), splitDerCertificates(other.certDer), 'example.org')).toThrow(/does not lead to a CA/);
    } finally {
      other.dispose();
    }
    expect(() => verifySvidChain(splitDerCertificates(a.certDer), splitDerCertificates(ca.certDer), 'other.org')).toThrow(/not in trust domain other.org/);
    expect(() => verifySvidChain(splitDerCertificates(ca.certDer), splitDerCertificates(ca.certDer), 'example.org')).toThrow(/is a CA certificate/);
  });

  it('retries UNAVAILABLE, both nodes derive the same keys, re-keys on a mid-stream rotation', async () => {
    const sockA = join(dir, 'a.sock');
    const sockB = join(dir, 'b.sock');
    const a1 = ca.issue(ID_A, 1);
    const a2 = ca.issue(ID_A, 2);
    const b1 = ca.issue(ID_B, 3);

    // Node A's client starts before its agent: the first attempts fail with UNAVAILABLE.
    const rotations: Svid[] = [];
    const clientA = new WorkloadApiClient({ socket: `unix://${sockA}`, backoffMs: 20, maxBackoffMs: 100, log: testLog });
    const firstA = clientA.start((svid) => {
      rotations.push(svid);
    });
    await until(() => clientA.stats.unavailable >= 1, 'an UNAVAILABLE');
    const agentA = await startAgent(sockA, ca);
    agentA.send(a1, ID_A);
    const agentB = await startAgent(sockB, ca);
    agentB.send(b1, ID_B);
    const clientB = new WorkloadApiClient({ socket: `unix:${sockB}`, log: testLog });
    const [svidA, svidB] = await Promise.all([firstA, clientB.start(() => {})]);
    expect(agentA.headers).toEqual(['true']);
    expect(svidA.spiffeId).toBe(ID_A);

    const clock = new FakeClock();
    const storeA = new TrackedStore();
    const storeB = new TrackedStore();
    const mA = new KeyManager({ store: storeA, local: nodeA, peers: [nodeB], clock, log: testLog, graceMs: 60_000 });
    const mB = new KeyManager({ store: storeB, local: nodeB, peers: [nodeA], clock, log: testLog, graceMs: 60_000 });
    await mA.applyGeneration(spiffeGeneration(svidA, nodeA, [{ node: nodeB, chain: svidB.chain }]));
    await mB.applyGeneration(spiffeGeneration(svidB, nodeB, [{ node: nodeA, chain: svidA.chain }]));

    const matches = () => {
      const aOut = storeA.egressFor(nodeA.id, nodeB.id)!;
      const bIn = storeB.ingressFor(nodeB.id, nodeA.id, aOut.spi);
      const bOut = storeB.egressFor(nodeB.id, nodeA.id)!;
      const aIn = storeA.ingressFor(nodeA.id, nodeB.id, bOut.spi);
      return { aOut, ok: !!bIn && aOut.key.equals(bIn.key) && aOut.salt.equals(bIn.salt) && !!aIn && bOut.key.equals(aIn.key) && bOut.spi === aOut.spi };
    };
    const before = matches();
    expect(before.ok).toBe(true);
    expect(before.aOut.spi).toBeGreaterThanOrEqual(256);
    expect(before.aOut.key.length).toBe(32);

    // Rotation mid-stream on node A's agent; node B learns A's new certificate from peer discovery.
    agentA.send(a2, ID_A);
    await until(() => rotations.length === 1, 'the rotated SVID');
    const svidA2 = rotations[0];
    expect(svidA2.chain[0].serialNumber).toBe('02');
    await mA.applyGeneration(spiffeGeneration(svidA2, nodeA, [{ node: nodeB, chain: svidB.chain }]));
    await mB.applyGeneration(spiffeGeneration(svidB, nodeB, [{ node: nodeA, chain: svidA2.chain }]));
    const after = matches();
    expect(after.ok).toBe(true);
    expect(after.aOut.spi).not.toBe(before.aOut.spi);
    expect(after.aOut.key.equals(before.aOut.key)).toBe(false);
    // The old ingress SA stays for the grace period, then goes.
    expect(storeA.ingressFor(nodeA.id, nodeB.id, before.aOut.spi)).toBeDefined();
    await clock.advance(60_000);
    await settle();
    expect(storeA.ingressFor(nodeA.id, nodeB.id, before.aOut.spi)).toBeUndefined();
    expect((await storeA.list()).map((e) => `${e.direction}:${e.spi}`).sort()).toEqual([`egress:${after.aOut.spi}`, `ingress:${after.aOut.spi}`]);

    // A broken SVID on the stream (key of another SVID) is rejected; nothing changes.
    agentA.send({ certDer: a2.certDer, keyDer: b1.keyDer }, ID_A);
    await until(() => logged.some((l) => l.includes('private key does not match')), 'the rejected SVID');
    expect(rotations).toHaveLength(1);

    clientA.close();
    clientB.close();
    await agentA.close();
    await agentB.close();
  });

  it('startSource (agent wiring) re-keys by itself when the SVID rotates', async () => {
    const sock = join(dir, 'c.sock');
    const a1 = ca.issue(ID_A, 20);
    const a2 = ca.issue(ID_A, 21);
    const b1 = ca.issue(ID_B, 22);
    const peerCert = join(dir, 'b.der');
    writeFileSync(peerCert, b1.certDer);
    const agent = await startAgent(sock, ca);
    agent.send(a1, ID_A);
    const store = new TrackedStore();
    const manager = new KeyManager({ store, local: nodeA, peers: [nodeB], clock: new FakeClock(), log: testLog });
    const running = await startSource({ from: 'spire', socket: `unix://${sock}`, peerSvids: [{ node: nodeB.id, path: peerCert }] }, manager, testLog, true);
    const first = store.egressFor(nodeA.id, nodeB.id)!;
    expect(first.spi).toBeGreaterThanOrEqual(256);
    agent.send(a2, ID_A);
    await until(() => store.egressFor(nodeA.id, nodeB.id)!.spi !== first.spi, 'the re-key after rotation');
    expect(store.egressFor(nodeA.id, nodeB.id)!.key.equals(first.key)).toBe(false);
    expect(store.ingressFor(nodeA.id, nodeB.id, first.spi)).toBeDefined(); // grace period
    await running.close();
    await agent.close();
  });

  it('a peer SVID from another trust domain is refused', async () => {
    const a = ca.issue(ID_A, 10);
    const other = makeCa('evil.org');
    try {
      const evil = other.issue('spiffe://evil.org/node', 11);
      const svidA = parseSvid({ spiffe_id: ID_A, x509_svid: a.certDer, x509_svid_key: a.keyDer, bundle: ca.certDer });
      expect(() => spiffeGeneration(svidA, nodeA, [{ node: nodeB, chain: splitDerCertificates(evil.certDer) }])).toThrow(/not in trust domain example.org/);
    } finally {
      other.dispose();
    }
  });
});
