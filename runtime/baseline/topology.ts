// The guest's two-node topology and the xfrm configuration Cilium would give it.
//
// The addresses mirror runtime/baseline/guest/lib.sh (which builds the namespaces); the engine
// side uses them to build frames that can be injected on the wire between the nodes.
//
// The xfrm configuration follows Cilium's pkg/datapath/linux/ipsec (UpsertIPsecEndpoint and the
// default drop policy) for one local node and a list of remote nodes:
//   out state   src local  dst remote  spi K reqid 1 tunnel  mark 0x0e00|K<<12|id<<16 / 0xffffff00
//                                                            output-mark 0x0e00 / 0xffffff00
//   in state    src remote dst local   spi K reqid 1 tunnel  mark 0x0d00|id<<16 / 0xffff0f00
//                                                            output-mark 0x0d00 / 0xffffff00
//   out policy  local pods -> remote pods, mark as the out state, tmpl local->remote spi K reqid 1
//   in policy   remote pods -> local pods, mark 0x0d00/0x0f00, tmpl remote->local reqid 1
//   in policy   same selector, mark 0x0200/0x0f00 (to-proxy), optional tmpl 0.0.0.0->local
//   fwd policy  0/0 -> 0/0 priority 0xb9f, optional tmpl 0.0.0.0->local reqid 1 (once per node)
//   drop policy out 0/0 -> 0/0 mark 0x0e00/0x0f00 action block priority 100 (once per node)
// `id` is the remote node's Cilium node ID. Cilium's BPF programs set the marks; here the
// `tc -batch` lines do it with skbedit: pod traffic to a remote pod CIDR gets the out mark on
// lxc0 ingress, ESP from a remote node gets the decrypt mark on the wire's ingress.
import type { CiliumAeadKey } from './keys.ts';

export const RouteMarkDecrypt = 0x0d00;
export const RouteMarkEncrypt = 0x0e00;
export const RouteMarkToProxy = 0x0200;
export const IPsecMarkBitMask = 0x0f00;
export const IPsecMarkMaskOut = 0xffffff00;
export const IPsecMarkMaskIn = 0xffff0f00;
export const OutputMarkMask = 0xffffff00;
export const IPsecFwdPriority = 0x0b9f;
export const DefaultDropPriority = 100;
export const DefaultReqID = 1;

export interface Node {
  /** Namespace name in the guest. */
  ns: string;
  /** Cilium node ID, as other nodes know this node. */
  id: number;
  /** Outer (node) IPv4 address. */
  ip: string;
  /** MAC of the node's end of the wire. */
  mac: string;
  podCidr: string;
  podIp: string;
}

export const nodeA: Node = {
  ns: 'node-a',
  id: 1,
  ip: '192.168.0.1',
  mac: '02:00:c0:a8:00:01',
  podCidr: '10.0.1.0/24',
  podIp: '10.0.1.10',
};
export const nodeB: Node = {
  ns: 'node-b',
  id: 2,
  ip: '192.168.0.2',
  mac: '02:00:c0:a8:00:02',
  podCidr: '10.0.2.0/24',
  podIp: '10.0.2.10',
};

/** A remote node that exists only as xfrm configuration: the scale scenario's other peers. */
export interface Peer {
  id: number;
  ip: string;
  podCidr: string;
}

/**
 * The i-th synthetic peer (i ≥ 1): node IDs from 3 up, outer addresses in 172.16.0.0/12 and pod
 * CIDRs in 10.128.0.0/9, so none overlaps the real nodes. Enough room for 32,767 peers.
 */
export function syntheticPeer(i: number): Peer {
  if (!Number.isInteger(i) || i < 1 || i > 0x7fff) throw new RangeError(`synthetic peer ${i} out of range`);
  return {
    id: 2 + i,
    ip: `172.${16 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`,
    podCidr: `10.${128 + (i >> 8)}.${i & 0xff}.0/24`,
  };
}

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

export const encryptMark = (spi: number, nodeId: number) =>
  (RouteMarkEncrypt | (spi << 12) | (nodeId << 16)) >>> 0;
export const decryptMark = (nodeId: number) => (RouteMarkDecrypt | (nodeId << 16)) >>> 0;

function aead(key: CiliumAeadKey): string {
  return `aead ${key.algorithm} 0x${Buffer.from(key.keyAndSalt).toString('hex')} ${key.icvBits}`;
}

/** Lines once per node: the catch-all drop of marked traffic and the optional fwd policy. */
export function xfrmNodeLines(local: Node): string[] {
  return [
    `xfrm policy add src 0.0.0.0/0 dst 0.0.0.0/0 dir out priority ${DefaultDropPriority} ` +
      `mark ${hex(RouteMarkEncrypt)} mask ${hex(IPsecMarkBitMask)} action block`,
    `xfrm policy add src 0.0.0.0/0 dst 0.0.0.0/0 dir fwd priority ${IPsecFwdPriority} ` +
      `tmpl src 0.0.0.0 dst ${local.ip} proto esp reqid ${DefaultReqID} mode tunnel level use`,
  ];
}

/** Lines for one remote node on the local node: two states, three policies. */
export function xfrmPeerLines(local: Node, remote: Peer, key: CiliumAeadKey): string[] {
  const out = encryptMark(key.spi, remote.id);
  const inMark = decryptMark(remote.id);
  const tunnel = `proto esp spi ${key.spi} reqid ${DefaultReqID} mode tunnel`;
  return [
    `xfrm state add src ${local.ip} dst ${remote.ip} ${tunnel} ` +
      `mark ${hex(out)} mask ${hex(IPsecMarkMaskOut)} ` +
      `output-mark ${hex(RouteMarkEncrypt)} mask ${hex(OutputMarkMask)} ${aead(key)}`,
    `xfrm state add src ${remote.ip} dst ${local.ip} ${tunnel} ` +
      `mark ${hex(inMark)} mask ${hex(IPsecMarkMaskIn)} ` +
      `output-mark ${hex(RouteMarkDecrypt)} mask ${hex(OutputMarkMask)} ${aead(key)}`,
    `xfrm policy add src ${local.podCidr} dst ${remote.podCidr} dir out ` +
      `mark ${hex(out)} mask ${hex(IPsecMarkMaskOut)} ` +
      `tmpl src ${local.ip} dst ${remote.ip} proto esp spi ${key.spi} reqid ${DefaultReqID} mode tunnel`,
    `xfrm policy add src ${remote.podCidr} dst ${local.podCidr} dir in ` +
      `mark ${hex(RouteMarkDecrypt)} mask ${hex(IPsecMarkBitMask)} ` +
      `tmpl src ${remote.ip} dst ${local.ip} proto esp reqid ${DefaultReqID} mode tunnel`,
    `xfrm policy add src ${remote.podCidr} dst ${local.podCidr} dir in ` +
      `mark ${hex(RouteMarkToProxy)} mask ${hex(IPsecMarkBitMask)} ` +
      `tmpl src 0.0.0.0 dst ${local.ip} proto esp reqid ${DefaultReqID} mode tunnel level use`,
  ];
}

/**
 * The marks Cilium's BPF programs would set, as `tc -batch` lines for the local node: traffic
 * from the pod to the remote pod CIDR gets the encrypt mark of that remote node; ESP arriving on
 * the wire from the remote node gets the decrypt mark carrying the remote node's ID (bpf_host
 * finds that ID in the ipcache). One remote node only: the scale scenario's synthetic peers never
 * carry traffic, and a tc rule per peer would add its own linear cost to what is measured.
 */
export function tcMarkLines(remote: Node, spi: number): string[] {
  return [
    'qdisc add dev lxc0 clsact',
    `filter add dev lxc0 ingress pref 1 protocol ip u32 match ip dst ${remote.podCidr} ` +
      `action skbedit mark ${hex(encryptMark(spi, remote.id))}`,
    'qdisc add dev eth0 clsact',
    `filter add dev eth0 ingress pref 1 protocol ip u32 match ip protocol 50 0xff ` +
      `match ip src ${remote.ip}/32 action skbedit mark ${hex(decryptMark(remote.id))}`,
  ];
}

/** The whole xfrm configuration of one node of the pair, as an `ip -batch` file. */
export function xfrmPairBatch(local: Node, remote: Node, key: CiliumAeadKey): string {
  return [...xfrmNodeLines(local), ...xfrmPeerLines(local, remote, key)].join('\n') + '\n';
}
