// A port exempted from encryption: per-node-pair SAs (examples/policy-node-pair.ts), except that
// TCP and UDP to port 4240 (Cilium's health checks, which must work before keys exist) pass in
// plaintext. Everything else the ipcache gives a key index is encrypted, or dropped without an SA.

import { type i32, TcContext, local } from '../compiler/dsl/index.ts';
import { ENCRYPT_KEY_NODE, ETH_HLEN, ETH_P_IP, EncryptKey, Eth, IPPROTO_TCP, IPPROTO_UDP, IP_OFFSET, IpcacheKey, Ipv4, L4Ports, encrypt, ipcache, keyWord, malformed, pass } from '../engine/policy.ts';

export { crypto_setup, ingress } from '../engine/policy.ts';

export const EXEMPT_PORT = 4240;

const RULE_NOT_IPV4 = 0;
const RULE_NO_KEY = 1;
const RULE_NODE = 2;
const RULE_EXEMPT_PORT = 3;

/** @section tc/egress */
export function egress(skb: TcContext): i32 {
  const eth = skb.header(Eth, 0);
  if (eth === null || eth.proto !== ETH_P_IP) return pass(skb, RULE_NOT_IPV4);
  const ip = skb.header(Ipv4, ETH_HLEN);
  if (ip === null) return malformed(skb, RULE_NOT_IPV4);

  // The exemption: TCP or UDP to EXEMPT_PORT (first fragments and whole packets: only they have ports).
  if ((ip.protocol === IPPROTO_TCP || ip.protocol === IPPROTO_UDP) && (ip.frag & IP_OFFSET) === 0) {
    const ports = skb.header(L4Ports, ETH_HLEN + (ip.vihl & 15) * 4);
    if (ports !== null && ports.dst === EXEMPT_PORT) return pass(skb, RULE_EXEMPT_PORT);
  }

  const dst = local(IpcacheKey, { prefixlen: 32 });
  dst.addr = ip.daddr;
  const entry = ipcache.lookup(dst);
  if (entry === null || entry.keyIndex === 0 || entry.tunnelEndpoint === 0) return pass(skb, RULE_NO_KEY);

  const key = local(EncryptKey, { kind: ENCRYPT_KEY_NODE });
  keyWord(key, 0, entry.tunnelEndpoint);
  return encrypt(skb, key, RULE_NODE);
}
