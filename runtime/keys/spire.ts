// Keys from SPIRE: the node's X.509 SVID comes from the SPIFFE Workload API (gRPC over the agent's
// unix socket), and each node pair's key is derived from the two nodes' SVID keys by ECDH P-256 +
// HKDF (derive.ts). When either SVID rotates, the pair gets a new SPI and key, and the key manager
// rotates to it like any other generation.
//
// SPI choice: there is no Cilium key ID here, and both ends must pick the same SPI without talking.
// The SPI is 32 bits of SHA-256 over the two leaf certificates' fingerprints (sorted), kept out of
// 0–255 (reserved by RFC 4303 and, for 1–15, used by Cilium key IDs). A new SVID on either side gives
// a new SPI, so the old and the new ingress SA coexist during the grace period.
import { createHash, createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { deriveSpiffePairKey, type NodeEndpoint } from './derive.ts';
import type { KeyGeneration } from './rotation.ts';
import { AEAD_GCM } from './sa.ts';

export const DEFAULT_SPIFFE_SOCKET = 'unix:///tmp/spire-agent/public/api.sock';
const PROTO = fileURLToPath(new URL('./proto/workload.proto', import.meta.url));

/** The Workload API service definition, from the official schema (also used by the test server). */
export function workloadApiDefinition(): grpc.ServiceDefinition {
  const pkg = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const loaded = grpc.loadPackageDefinition(pkg) as unknown as { SpiffeWorkloadAPI: grpc.ServiceClientConstructor };
  return loaded.SpiffeWorkloadAPI.service;
}

/**
 * SPIFFE_ENDPOINT_SOCKET to a gRPC target. The SPIFFE Workload Endpoint spec allows
 * unix:///absolute/path (also unix:/path) and tcp://IP:port.
 */
export function workloadEndpointTarget(uri = process.env.SPIFFE_ENDPOINT_SOCKET || DEFAULT_SPIFFE_SOCKET): string {
  const unix = /^unix:(?:\/\/)?(\/.+)$/.exec(uri);
  if (unix) return `unix://${unix[1]}`;
  const tcp = /^tcp:\/\/(\d{1,3}(?:\.\d{1,3}){3}):(\d+)$/.exec(uri);
  if (tcp) return `${tcp[1]}:${tcp[2]}`;
  throw new Error(`SPIFFE endpoint "${uri}": expected unix:///path/to/socket or tcp://IP:PORT`);
}

/** A bundle field is DER certificates back to back; split it on the outer SEQUENCE lengths. */
export function splitDerCertificates(der: Buffer): X509Certificate[] {
  const certs: X509Certificate[] = [];
  let off = 0;
  while (off < der.length) {
    if (der[off] !== 0x30) throw new Error(`certificate bundle: byte ${off} is not a DER SEQUENCE`);
    let len = der[off + 1];
    let header = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4) throw new Error(`certificate bundle: bad DER length at byte ${off}`);
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + der[off + 2 + i];
      header += n;
    }
    const end = off + header + len;
    if (end > der.length) throw new Error(`certificate bundle: certificate at byte ${off} runs past the end`);
    certs.push(new X509Certificate(der.subarray(off, end)));
    off = end;
  }
  return certs;
}

export interface Svid {
  spiffeId: string;
  /** Leaf first. */
  chain: X509Certificate[];
  privateKey: KeyObject;
  bundle: X509Certificate[];
}

export function trustDomainOf(spiffeId: string): string {
  const m = /^spiffe:\/\/([a-z0-9._-]+)(\/.*)?$/.exec(spiffeId);
  if (!m) throw new Error(`"${spiffeId}" is not a SPIFFE ID`);
  return m[1];
}

function uriSans(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
}

/**
 * Check an X.509-SVID chain as the X509-SVID spec requires: exactly one URI SAN, a spiffe:// ID in
 * `trustDomain`, leaf not a CA, each certificate signed by the next, the last by a bundle CA, all
 * within their validity at `now`.
 */
export function verifySvidChain(chain: X509Certificate[], bundle: X509Certificate[], trustDomain: string, now = new Date()): string {
  const leaf = chain[0];
  if (!leaf) throw new Error('SVID has no certificate');
  const uris = uriSans(leaf);
  if (uris.length !== 1) throw new Error(`SVID must have exactly one URI SAN, has ${uris.length}`);
  const id = uris[0];
  if (trustDomainOf(id) !== trustDomain) throw new Error(`SVID ${id} is not in trust domain ${trustDomain}`);
  if (leaf.ca) throw new Error(`SVID ${id} is a CA certificate`);
  for (const cert of chain) {
    if (now < new Date(cert.validFrom) || now > new Date(cert.validTo)) throw new Error(`SVID ${id}: certificate ${cert.subject.replace(/\n/g, ',')} is not valid now (${cert.validFrom} – ${cert.validTo})`);
  }
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i + 1].ca || !chain[i].verify(chain[i + 1].publicKey)) throw new Error(`SVID ${id}: certificate ${i} is not signed by certificate ${i + 1}`);
  }
  const top = chain[chain.length - 1];
  if (!bundle.some((ca) => ca.ca && top.checkIssued(ca) && top.verify(ca.publicKey))) throw new Error(`SVID ${id}: chain does not lead to a CA in the ${trustDomain} bundle`);
  return id;
}

interface X509SvidMessage {
  spiffe_id: string;
  x509_svid: Buffer;
  x509_svid_key: Buffer;
  bundle: Buffer;
  hint?: string;
}

/** One Workload API SVID entry, parsed and checked. The private key must match the leaf. */
export function parseSvid(msg: X509SvidMessage): Svid {
  const chain = splitDerCertificates(msg.x509_svid);
  const bundle = splitDerCertificates(msg.bundle);
  const privateKey = createPrivateKey({ key: msg.x509_svid_key, format: 'der', type: 'pkcs8' });
  const id = verifySvidChain(chain, bundle, trustDomainOf(msg.spiffe_id));
  if (id !== msg.spiffe_id) throw new Error(`SVID certificate names ${id}, the response says ${msg.spiffe_id}`);
  if (!chain[0].checkPrivateKey(privateKey)) throw new Error(`SVID ${id}: private key does not match the certificate`);
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(`SVID ${id}: key is ${privateKey.asymmetricKeyType}, key derivation needs EC P-256`);
  }
  return { spiffeId: id, chain, privateKey, bundle };
}

/** The SPI both ends pick for a pair of SVIDs (see the file comment). */
export function spiForCertificates(a: X509Certificate, b: X509Certificate): number {
  const [x, y] = [a.fingerprint256, b.fingerprint256].sort();
  const h = createHash('sha256').update('ebpf-ts spiffe spi v1\0').update(x).update('\0').update(y).digest();
  return 256 + (h.readUInt32BE(0) % (0x1_0000_0000 - 256));
}

export interface SpiffePeer {
  node: NodeEndpoint;
  /** The peer's SVID chain, leaf first (from peer discovery); checked against our bundle. */
  chain: X509Certificate[];
}

/** A key generation for the current own SVID and peer SVIDs. */
export function spiffeGeneration(own: Svid, local: NodeEndpoint, peers: SpiffePeer[]): KeyGeneration {
  const trustDomain = trustDomainOf(own.spiffeId);
  const byNode = new Map<string, { id: string; leaf: X509Certificate }>();
  for (const p of peers) byNode.set(p.node.id, { id: verifySvidChain(p.chain, own.bundle, trustDomain), leaf: p.chain[0] });
  const ownLeaf = own.chain[0];
  const peerOf = (node: NodeEndpoint) => {
    const p = byNode.get(node.id);
    if (!p) throw new Error(`no SVID known for peer ${node.id}`);
    return p;
  };
  const idOf = (node: NodeEndpoint) => (node.id === local.id ? own.spiffeId : peerOf(node).id);
  return {
    label: `SVID ${ownLeaf.serialNumber.toLowerCase().slice(0, 16)}`,
    keyIndex: 0,
    algorithm: AEAD_GCM,
    icvBits: 128,
    spiFor: (peer) => spiForCertificates(ownLeaf, peerOf(peer).leaf),
    pairKey: (sender, receiver) => {
      const peer = sender.id === local.id ? receiver : sender;
      return deriveSpiffePairKey({
        ownPrivateKey: own.privateKey,
        peerPublicKey: peerOf(peer).leaf.publicKey,
        senderId: idOf(sender),
        receiverId: idOf(receiver),
        spi: spiForCertificates(ownLeaf, peerOf(peer).leaf),
      });
    },
  };
}

export interface WorkloadClientOptions {
  /** SPIFFE_ENDPOINT_SOCKET form; default from the environment, then the SPIRE default. */
  socket?: string;
  /** Which SVID to use when the workload has several: by SPIFFE ID or hint; default the first. */
  spiffeId?: string;
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Give up on the first SVID after this long (one-shot commands); default: retry forever (agent). */
  firstTimeoutMs?: number;
  log?: (event: string, fields?: Record<string, string | number>) => void;
}

/**
 * FetchX509SVID, kept open: each message is a (possibly rotated) SVID set. The stream is re-opened
 * with exponential backoff when it fails: UNAVAILABLE (agent not up yet, restarting) is the common
 * case; PERMISSION_DENIED (no registration entry yet) is retried too, as SPIFFE client libraries do.
 * INVALID_ARGUMENT means this client is wrong (e.g. the security header) and is not retried.
 */
export class WorkloadApiClient {
  private client?: grpc.Client;
  private call?: grpc.ClientReadableStream<unknown>;
  private closed = false;
  private timer?: NodeJS.Timeout;
  private lastFingerprint?: string;
  readonly target: string;
  readonly stats = { streams: 0, unavailable: 0, updates: 0 };

  constructor(private readonly opts: WorkloadClientOptions = {}) {
    this.target = workloadEndpointTarget(opts.socket);
  }

  /**
   * Open the stream. Resolves with the first usable SVID; later rotations go to `onRotate`.
   * Rejects on a non-retryable error before the first SVID.
   */
  start(onRotate: (svid: Svid) => void | Promise<void>): Promise<Svid> {
    const Service = grpc.makeGenericClientConstructor(workloadApiDefinition(), 'SpiffeWorkloadAPI');
    this.client = new Service(this.target, grpc.credentials.createInsecure());
    let backoff = this.opts.backoffMs ?? 200;
    const max = this.opts.maxBackoffMs ?? 30_000;
    return new Promise<Svid>((resolveFirst, rejectFirstRaw) => {
      let first = true;
      let lastError = 'no response';
      let deadline: NodeJS.Timeout | undefined;
      const rejectFirst = (err: Error) => {
        first = false;
        clearTimeout(deadline);
        this.close();
        rejectFirstRaw(err);
      };
      if (this.opts.firstTimeoutMs !== undefined) {
        deadline = setTimeout(
          () => rejectFirst(new Error(`no SVID from the Workload API at ${this.target} within ${this.opts.firstTimeoutMs} ms (last: ${lastError})`)),
          this.opts.firstTimeoutMs,
        );
      }
      const open = () => {
        if (this.closed) return;
        this.stats.streams++;
        const md = new grpc.Metadata();
        md.set('workload.spiffe.io', 'true'); // mandatory: proves the caller is a workload, not a browser-driven SSRF
        const call = (this.client as unknown as { FetchX509SVID(req: object, md: grpc.Metadata): grpc.ClientReadableStream<{ svids: X509SvidMessage[] }> }).FetchX509SVID({}, md);
        this.call = call;
        // 'error' and 'end' can both follow one failed stream: re-open once per stream.
        let reopened = false;
        const reopen = (ms: number) => {
          if (reopened || this.closed) return;
          reopened = true;
          this.timer = setTimeout(open, ms);
        };
        call.on('data', (resp: { svids: X509SvidMessage[] }) => {
          backoff = this.opts.backoffMs ?? 200;
          let svid: Svid;
          try {
            const entry = this.opts.spiffeId ? resp.svids.find((s) => s.spiffe_id === this.opts.spiffeId || s.hint === this.opts.spiffeId) : resp.svids[0];
            if (!entry) throw new Error(this.opts.spiffeId ? `no SVID ${this.opts.spiffeId} in the Workload API response` : 'Workload API response has no SVIDs');
            svid = parseSvid(entry);
          } catch (err) {
            lastError = (err as Error).message;
            this.opts.log?.('SVID rejected; keeping the current keys', { error: lastError });
            return;
          }
          const fp = svid.chain[0].fingerprint256;
          if (fp === this.lastFingerprint) return;
          this.lastFingerprint = fp;
          this.stats.updates++;
          this.opts.log?.('SVID received', { spiffeId: svid.spiffeId, serial: svid.chain[0].serialNumber.toLowerCase(), notAfter: svid.chain[0].validTo });
          if (first) {
            first = false;
            clearTimeout(deadline);
            resolveFirst(svid);
          } else {
            void Promise.resolve(onRotate(svid)).catch((err) => this.opts.log?.('re-key failed', { error: (err as Error).message }));
          }
        });
        call.on('error', (err: grpc.ServiceError) => {
          if (this.closed || err.code === grpc.status.CANCELLED) return;
          if (err.code === grpc.status.INVALID_ARGUMENT) {
            const e = new Error(`Workload API at ${this.target}: ${err.details || err.message}`);
            if (first) rejectFirst(e);
            else this.opts.log?.('Workload API refused the request', { error: e.message });
            return;
          }
          if (err.code === grpc.status.UNAVAILABLE) this.stats.unavailable++;
          lastError = `${grpc.status[err.code] ?? err.code}: ${(err.details || err.message).split('\n')[0]}`;
          const wait = Math.round(backoff * (0.5 + Math.random() / 2));
          this.opts.log?.('Workload API stream failed; retrying', { code: grpc.status[err.code] ?? err.code, inMs: wait });
          backoff = Math.min(max, backoff * 2);
          reopen(wait);
        });
        call.on('end', () => {
          // The agent ended the stream (restart): re-open it.
          reopen(backoff);
        });
      };
      open();
    });
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.call?.cancel();
    this.client?.close();
  }
}
