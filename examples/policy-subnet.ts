// Subnet-based encryption (the subnet-pool case): traffic from one listed subnet to another is
// encrypted under the SA of that subnet pair, encrypt_sa[{kind SUBNETS, source network,
// destination network}]. Traffic that does not run between two listed subnets passes in
// plaintext. The subnets (e.g. the cluster's pod CIDR pools) are this policy's own LPM trie,
// filled by userspace: prefix → the subnet's network address.

import { type i32, TcContext, be32, local, lpmTrieMap, struct } from '../compiler/dsl/index.ts';
import { ETH_HLEN, ETH_P_IP, EncryptKey, Eth, IpcacheKey, Ipv4, encrypt, keyWord, malformed, pass } from '../engine/policy.ts';

export { crypto_setup, ingress } from '../engine/policy.ts';

export const Subnet = struct({ network: be32 }, { name: 'subnet' });
export const subnets = lpmTrieMap({ key: IpcacheKey, value: Subnet, maxEntries: 1024 });

/** encrypt_sa key kind of this policy: selector = source network ‖ destination network. */
export const KEY_SUBNETS = 3;

const RULE_NOT_IPV4 = 0;
const RULE_OUTSIDE = 1;
const RULE_SUBNET_PAIR = 2;

/** @section tc/egress */
export function egress(skb: TcContext): i32 {
  const eth = skb.header(Eth, 0);
  if (eth === null || eth.proto !== ETH_P_IP) return pass(skb, RULE_NOT_IPV4);
  const ip = skb.header(Ipv4, ETH_HLEN);
  if (ip === null) return malformed(skb, RULE_NOT_IPV4);

  const src = local(IpcacheKey, { prefixlen: 32 });
  src.addr = ip.saddr;
  const dst = local(IpcacheKey, { prefixlen: 32 });
  dst.addr = ip.daddr;
  const from = subnets.lookup(src);
  const to = subnets.lookup(dst);
  if (from === null || to === null) return pass(skb, RULE_OUTSIDE);

  const key = local(EncryptKey, { kind: KEY_SUBNETS });
  keyWord(key, 0, from.network);
  keyWord(key, 1, to.network);
  return encrypt(skb, key, RULE_SUBNET_PAIR);
}
