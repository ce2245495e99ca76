// The policy API (issue 5): what an egress policy imports. A policy is a DSL file, compiled on its
// own into the engine object: it defines the `egress` program (the decision) and re-exports the
// engine's other programs, which makes them programs of its object too:
//
//   export { crypto_setup, ingress } from '../engine/policy.ts';
//
//   /** @section tc/egress */
//   export function egress(skb: TcContext): i32 {
//     …decide from the packet and the maps…
//     return pass(skb, RULE_A);              // plaintext
//     return drop(skb, RULE_B);              // dropped
//     return encrypt(skb, key, RULE_C);      // ESP under encrypt_sa[key]; no SA → dropped (fail closed)
//   }
//
// `key` is a `local(EncryptKey, { kind })` whose 16 selector bytes the policy fills (keyWord):
// the encryption map's key is whatever the policy chooses (the destination node, a subnet pair,
// an identity…); userspace installs the SA under the same bytes (runtime/keys). Rule numbers
// (0 … MAX_RULES − 1) are the policy's own: policy_audit counts packets and bytes per rule and
// verdict (`ebpf-ts audit`). Examples: examples/policy-*.ts.

import { be16, struct } from '../compiler/dsl/index.ts';

export {
  ENCRYPT_KEY_NODE,
  ETH_HLEN,
  ETH_P_IP,
  EncryptKey,
  Eth,
  IpcacheEntry,
  IpcacheKey,
  Ipv4,
  MAX_RULES,
  drop,
  encrypt,
  ipcache,
  keyWord,
  malformed,
  pass,
} from './esp.ts';

/** The programs every policy's object carries besides its own egress. */
export { crypto_setup, ingress } from './esp.ts';

/** TCP and UDP ports, the first 4 bytes of either header. */
export const L4Ports = struct({ src: be16, dst: be16 }, { name: 'l4_ports' });
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
/** The fragment offset bits of Ipv4.frag: non-zero on a non-first fragment (no L4 header). */
export const IP_OFFSET = 0x1fff;
/** Cilium's reserved identities (pkg/identity): the world outside the cluster, this host. */
export const IDENTITY_HOST = 1;
export const IDENTITY_WORLD = 2;
