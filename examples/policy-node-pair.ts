// Per-node-pair SAs (Cilium's default IPsec model, and the engine's default policy: engine/esp.ts
// `egress`). Traffic to a destination whose ipcache entry carries a key index is encrypted under
// the SA of the destination's node, encrypt_sa[{kind NODE, node IP}]; everything else passes.
//
//   npx ebpf-ts compile examples/policy-node-pair.ts     # egress + ingress + crypto_setup

import { type i32, TcContext, local } from '../compiler/dsl/index.ts';
import { ENCRYPT_KEY_NODE, ETH_HLEN, ETH_P_IP, EncryptKey, Eth, IpcacheKey, Ipv4, encrypt, ipcache, keyWord, malformed, pass } from '../engine/policy.ts';

export { crypto_setup, ingress } from '../engine/policy.ts';

// Rule numbers: the index of each rule's counters in policy_audit (`ebpf-ts audit`).
const RULE_NOT_IPV4 = 0;
const RULE_NO_KEY = 1;
const RULE_NODE = 2;

/** @section tc/egress */
export function egress(skb: TcContext): i32 {
  const eth = skb.header(Eth, 0);
  if (eth === null || eth.proto !== ETH_P_IP) return pass(skb, RULE_NOT_IPV4);
  const ip = skb.header(Ipv4, ETH_HLEN);
  if (ip === null) return malformed(skb, RULE_NOT_IPV4);

  // ipcache: the longest prefix holding the destination → {identity, tunnel endpoint, key index}.
  const dst = local(IpcacheKey, { prefixlen: 32 });
  dst.addr = ip.daddr;
  const entry = ipcache.lookup(dst);
  if (entry === null || entry.keyIndex === 0 || entry.tunnelEndpoint === 0) return pass(skb, RULE_NO_KEY);

  // One SA per destination node.
  const key = local(EncryptKey, { kind: ENCRYPT_KEY_NODE });
  keyWord(key, 0, entry.tunnelEndpoint);
  return encrypt(skb, key, RULE_NODE);
}
