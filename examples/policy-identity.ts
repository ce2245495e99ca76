// Identity-based encryption through the ipcache: the destination's security identity (Cilium's
// numeric identity of the longest ipcache prefix holding it) chooses the SA,
// encrypt_sa[{kind IDENTITY, identity}]. The world outside the cluster passes in plaintext; a
// destination the ipcache does not know is dropped (fail closed); an identity without an SA is
// dropped by encrypt (no SA).

import { type i32, TcContext, local } from '../compiler/dsl/index.ts';
import { ETH_HLEN, ETH_P_IP, EncryptKey, Eth, IDENTITY_WORLD, IpcacheKey, Ipv4, drop, encrypt, ipcache, keyWord, malformed, pass } from '../engine/policy.ts';

export { crypto_setup, ingress } from '../engine/policy.ts';

/** encrypt_sa key kind of this policy: selector word 0 = the destination's identity. */
export const KEY_IDENTITY = 4;

const RULE_NOT_IPV4 = 0;
const RULE_UNKNOWN = 1;
const RULE_WORLD = 2;
const RULE_IDENTITY = 3;

/** @section tc/egress */
export function egress(skb: TcContext): i32 {
  const eth = skb.header(Eth, 0);
  if (eth === null || eth.proto !== ETH_P_IP) return pass(skb, RULE_NOT_IPV4);
  const ip = skb.header(Ipv4, ETH_HLEN);
  if (ip === null) return malformed(skb, RULE_NOT_IPV4);

  const dst = local(IpcacheKey, { prefixlen: 32 });
  dst.addr = ip.daddr;
  const entry = ipcache.lookup(dst);
  if (entry === null) return drop(skb, RULE_UNKNOWN);
  if (entry.identity === IDENTITY_WORLD) return pass(skb, RULE_WORLD);

  const key = local(EncryptKey, { kind: KEY_IDENTITY });
  keyWord(key, 0, entry.identity);
  return encrypt(skb, key, RULE_IDENTITY);
}
