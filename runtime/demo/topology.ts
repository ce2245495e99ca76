// A two-node cluster on one machine: each "node" is a network namespace with a "pod" namespace
// behind its own veth, and the nodes are joined by one veth pair — the link the engine encrypts.
//
//   pod1 (10.251.1.2) ─ veth ─ node1 (10.251.1.1 | 10.250.0.1) ═══ link ═══ node2 (10.250.0.2 | 10.251.2.1) ─ veth ─ pod2 (10.251.2.2)
//
// Names carry a per-run tag so parallel runs never collide; destroy() removes every namespace it
// made (deleting a namespace deletes its veths), also after a failure halfway through building.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

export interface NodeHandles {
  /** Node namespace and its addresses. */
  ns: string;
  nodeIp: string;
  /** The node's end of the inter-node link. */
  linkDev: string;
  /** Pod namespace, its address, and the node-side device of the pod's veth. */
  podNs: string;
  podIp: string;
  podGateway: string;
  podHostDev: string;
  podSubnet: string;
}

export interface Topology {
  tag: string;
  nodes: [NodeHandles, NodeHandles];
  destroy(): string[];
}

export interface TopologyOptions {
  tag?: string;
  /** MTU of the routes between pods (Cilium lowers it by the ESP overhead: 1423 in the seed). */
  podRouteMtu?: number;
  /**
   * Keep the veths' checksum and segmentation offloads (default: off). The engine encrypts what
   * tc egress hands it: a CHECKSUM_PARTIAL packet would be encrypted before its L4 checksum is
   * filled in, and a GSO superpacket is too big to encrypt (dropped and counted) — so the hosts
   * send complete checksums and MTU-sized segments, as on a node that bounds GSO for IPsec.
   */
  offloads?: boolean;
}

const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
export const ip = (...args: string[]): string => run('ip', args);
/** Run a command inside a named namespace (nsenter keeps /sys and bpffs, unlike `ip netns exec`). */
export const inNetns = (ns: string, cmd: string, ...args: string[]): string => run('nsenter', [`--net=/run/netns/${ns}`, cmd, ...args]);

export function uniqueTag(): string {
  return `${process.pid.toString(36)}${Math.floor(Math.random() * 36 ** 3).toString(36)}`;
}

export function buildTopology(opts: TopologyOptions = {}): Topology {
  const tag = opts.tag ?? uniqueTag();
  const made: string[] = [];
  const destroy = (): string[] => {
    const problems: string[] = [];
    for (const ns of made.splice(0).reverse()) {
      try {
        ip('netns', 'del', ns);
      } catch (e) {
        problems.push(`netns ${ns}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    return problems;
  };
  const node = (i: 1 | 2): NodeHandles => ({
    ns: `ets-${tag}-n${i}`,
    nodeIp: `10.250.0.${i}`,
    linkDev: `ets-link${i}`,
    podNs: `ets-${tag}-p${i}`,
    podIp: `10.251.${i}.2`,
    podGateway: `10.251.${i}.1`,
    podHostDev: `ets-pod${i}`,
    podSubnet: `10.251.${i}.0/24`,
  });
  const nodes: [NodeHandles, NodeHandles] = [node(1), node(2)];
  try {
    for (const n of nodes) {
      for (const ns of [n.ns, n.podNs]) {
        ip('netns', 'add', ns);
        made.push(ns);
        ip('-n', ns, 'link', 'set', 'lo', 'up');
      }
      ip('link', 'add', n.podHostDev, 'netns', n.ns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.podNs);
      ip('-n', n.ns, 'addr', 'add', `${n.podGateway}/24`, 'dev', n.podHostDev);
      ip('-n', n.ns, 'link', 'set', n.podHostDev, 'up');
      ip('-n', n.podNs, 'addr', 'add', `${n.podIp}/24`, 'dev', 'eth0');
      ip('-n', n.podNs, 'link', 'set', 'eth0', 'up');
      ip('-n', n.podNs, 'route', 'add', 'default', 'via', n.podGateway);
      inNetns(n.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    }
    const [a, b] = nodes;
    if (!opts.offloads) {
      for (const n of nodes) {
        inNetns(n.podNs, 'ethtool', '-K', 'eth0', 'tx', 'off', 'tso', 'off', 'gso', 'off');
        inNetns(n.ns, 'ethtool', '-K', n.podHostDev, 'gro', 'off');
      }
    }
    ip('link', 'add', a.linkDev, 'netns', a.ns, 'type', 'veth', 'peer', 'name', b.linkDev, 'netns', b.ns);
    for (const [n, peer] of [[a, b], [b, a]] as const) {
      ip('-n', n.ns, 'addr', 'add', `${n.nodeIp}/24`, 'dev', n.linkDev);
      ip('-n', n.ns, 'link', 'set', n.linkDev, 'up');
      // Segmentation off on the link; its tx checksum offload stays on: the node's own TCP sends
      // CHECKSUM_PARTIAL, and without the offload the stack would fill the checksum in *after*
      // tc egress — inside the ciphertext, breaking the ICV. (The engine does not complete
      // partial checksums yet; the pods above send complete ones.)
      if (!opts.offloads) inNetns(n.ns, 'ethtool', '-K', n.linkDev, 'tso', 'off', 'gso', 'off', 'gro', 'off');
      const mtu = opts.podRouteMtu ? ['mtu', String(opts.podRouteMtu)] : [];
      ip('-n', n.ns, 'route', 'add', peer.podSubnet, 'via', peer.nodeIp, 'dev', n.linkDev, ...mtu);
    }
  } catch (e) {
    destroy();
    throw e;
  }
  return { tag, nodes, destroy };
}

/** Start a process inside a namespace (for servers, captures). */
export function spawnIn(ns: string, cmd: string, args: string[]): ChildProcess {
  return spawn('nsenter', [`--net=/run/netns/${ns}`, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}
