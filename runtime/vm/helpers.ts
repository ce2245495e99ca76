// BPF helper functions (CALL src 0), keyed by the kernel's helper id. Each follows the kernel's
// implementation in net/core/filter.c / kernel/bpf/helpers.c, including its errno results, as
// of Linux 6.18; where the VM has less state than an skb (no GSO, no offload, one CPU, linear
// data) the comment says what is left out.

import { bpf_func_id as F } from '../sys/constants.ts';
import { csumDiff, csumReplace2, csumReplace4, csumReplaceByDiff } from './checksum.ts';
import { ETH_HLEN, ETH_P_IP, ETH_P_IPV6, type SkbContext } from './context.ts';
import { dynptrHelpers } from './dynptr.ts';
import { VmFault } from './errors.ts';
import type { Machine } from './machine.ts';
import { Errno, RingbufMap, VmMap, type RingbufRecord } from './maps.ts';
import { address, NULL, type Region } from './memory.ts';
import type { NativeFunction } from './program.ts';

const u32 = (v: bigint): number => Number(v & 0xffffffffn);
const s32 = (v: bigint): number => Number(BigInt.asIntN(32, v));

const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;
const XDP_ABORTED = 0;
const XDP_REDIRECT = 4;
const BPF_F_INGRESS = 1;
const BPF_F_RECOMPUTE_CSUM = 1;
const BPF_F_INVALIDATE_HASH = 2;
const BPF_F_HDR_FIELD_MASK = 0xf;
const BPF_F_PSEUDO_HDR = 0x10;
const BPF_F_MARK_MANGLED_0 = 0x20;
const BPF_F_MARK_ENFORCE = 0x40;
const BPF_F_IPV6 = 0x80;
const CSUM_MANGLED_0 = 0xffff;
/** SKB_MAX_ALLOC on x86-64: 4 pages less the 320-byte skb_shared_info (filter.c's BPF_SKB_MAX_LEN). */
const BPF_SKB_MAX_LEN = 16384 - 320;
const INT_MAX = 0x7fffffff;

const Adj = {
  FIXED_GSO: 1 << 0,
  ENCAP_L3_IPV4: 1 << 1,
  ENCAP_L3_IPV6: 1 << 2,
  ENCAP_L4_GRE: 1 << 3,
  ENCAP_L4_UDP: 1 << 4,
  NO_CSUM_RESET: 1 << 5,
  ENCAP_L2_ETH: 1 << 6,
  // Linux 6.3+, not yet in the installed UAPI header.
  DECAP_L3_IPV4: 1 << 7,
  DECAP_L3_IPV6: 1 << 8,
} as const;
const ADJ_ROOM_ENCAP_L2_SHIFT = 56n;
const ADJ_ROOM_KNOWN = 0x1ffn | (0xffn << ADJ_ROOM_ENCAP_L2_SHIFT);
const BPF_ADJ_ROOM_NET = 0;
const BPF_ADJ_ROOM_MAC = 1;

/** The skb behind a helper's ctx argument; a helper used outside tc faults. */
function skbOf(m: Machine, ctx: bigint, helper: string): SkbContext {
  const skb = m.run.skb;
  if (!skb || !m.run.ctx || ctx !== address(m.run.ctx, 0)) throw new VmFault(`${helper}: r1 is not the __sk_buff context`);
  return skb;
}

export function mapOf(m: Machine, ptr: bigint): VmMap {
  return m.memory.object(ptr, 'map', (o): o is VmMap => o instanceof VmMap);
}

// --- maps ---

function mapLookupElem(m: Machine, mapPtr: bigint, keyPtr: bigint): bigint {
  const map = mapOf(m, mapPtr);
  const value = map.lookupRef(m.memory.read(keyPtr, map.keySize));
  if (!value) return NULL;
  return address(m.memory.regionOf(value, 'map_value', `${map.name} value`, !map.frozen), 0);
}

function mapUpdateElem(m: Machine, mapPtr: bigint, keyPtr: bigint, valuePtr: bigint, flags: bigint): number {
  const map = mapOf(m, mapPtr);
  if (map.frozen) return -Errno.EPERM;
  if (flags >> 32n) return -Errno.EINVAL;
  return map.updateElem(m.memory.read(keyPtr, map.keySize), m.memory.read(valuePtr, map.valueSize), Number(flags));
}

function mapDeleteElem(m: Machine, mapPtr: bigint, keyPtr: bigint): number {
  const map = mapOf(m, mapPtr);
  return map.deleteElem(m.memory.read(keyPtr, map.keySize));
}

// --- time, randomness, tracing ---

/** bpf_trace_printk: %d %i %u %x %X %c %s %p %% with l/ll/h length modifiers, widths and padding; up to three arguments. */
function tracePrintk(m: Machine, fmtPtr: bigint, fmtSize: bigint, a1: bigint, a2: bigint, a3: bigint): number {
  const size = u32(fmtSize);
  const fmt = m.memory.read(fmtPtr, size);
  if (size === 0 || fmt[size - 1] !== 0) return -Errno.EINVAL;
  const text = fmt.subarray(0, fmt.indexOf(0)).toString('latin1');
  const args = [a1, a2, a3];
  let next = 0;
  let bad = false;
  const out = text.replace(/%([-+ 0#]*)(\d*)(?:\.(\d+))?(hh|h|ll|l|z)?([diuxXcsp%])/g, (_all, flags: string, width: string, _prec, len: string | undefined, conv: string) => {
    if (conv === '%') return '%';
    if (next >= args.length) {
      bad = true;
      return '';
    }
    const arg = args[next++]!;
    const bits = len === 'll' || len === 'l' || len === 'z' ? 64 : len === 'h' ? 16 : len === 'hh' ? 8 : 32;
    let s: string;
    switch (conv) {
      case 'd':
      case 'i':
        s = BigInt.asIntN(bits, arg).toString();
        break;
      case 'u':
        s = BigInt.asUintN(bits, arg).toString();
        break;
      case 'x':
      case 'X':
        s = BigInt.asUintN(bits, arg).toString(16);
        if (conv === 'X') s = s.toUpperCase();
        if (flags.includes('#')) s = `0x${s}`;
        break;
      case 'c':
        s = String.fromCharCode(Number(arg & 0xffn));
        break;
      case 'p':
        s = `0x${BigInt.asUintN(64, arg).toString(16)}`;
        break;
      default: {
        // %s: a NUL-terminated string in guest memory, at most 64 KiB
        const bytes: number[] = [];
        for (let p = arg; bytes.length < 65536; p++) {
          const b = m.memory.read(p, 1)[0]!;
          if (b === 0) break;
          bytes.push(b);
        }
        s = Buffer.from(bytes).toString('latin1');
      }
    }
    const w = Number(width || 0);
    if (s.length < w) s = flags.includes('-') ? s.padEnd(w) : s.padStart(w, flags.includes('0') && conv !== 's' ? '0' : ' ');
    return s;
  });
  if (bad) return -Errno.EINVAL;
  m.trace.push(out);
  return Buffer.byteLength(out, 'latin1');
}

// --- skb data ---

function skbLoadBytes(m: Machine, ctx: bigint, offset: bigint, to: bigint, len: bigint): number {
  const skb = skbOf(m, ctx, 'bpf_skb_load_bytes');
  const off = u32(offset);
  const n = u32(len);
  const dst = m.memory.view(to, n, true);
  if (off > INT_MAX || off + n > skb.packet.length) {
    dst.fill(0);
    return -Errno.EFAULT;
  }
  dst.set(skb.packet.view().subarray(off, off + n));
  return 0;
}

function skbStoreBytes(m: Machine, ctx: bigint, offset: bigint, from: bigint, len: bigint, flags: bigint): number {
  const skb = skbOf(m, ctx, 'bpf_skb_store_bytes');
  if (flags & ~BigInt(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH)) return -Errno.EINVAL;
  const off = u32(offset);
  const n = u32(len);
  const src = m.memory.read(from, n);
  if (off > INT_MAX || off + n > skb.packet.length) return -Errno.EFAULT;
  skb.packet.view().set(src, off);
  // BPF_F_RECOMPUTE_CSUM updates skb->csum for CHECKSUM_COMPLETE; a test-run skb is CHECKSUM_NONE.
  if (flags & BigInt(BPF_F_INVALIDATE_HASH)) skb.hash = 0;
  return 0;
}

/** The 16-bit checksum field at `offset`, after the kernel's bounds checks; undefined → -EFAULT. */
function checksumField(skb: SkbContext, offset: number): Buffer | undefined {
  if (offset > 0xffff || offset + 2 > skb.packet.length) return undefined;
  return skb.packet.view().subarray(offset, offset + 2);
}

function l3CsumReplace(m: Machine, ctx: bigint, offset: bigint, from: bigint, to: bigint, flags: bigint): number {
  const skb = skbOf(m, ctx, 'bpf_l3_csum_replace');
  if (flags & ~BigInt(BPF_F_HDR_FIELD_MASK)) return -Errno.EINVAL;
  const field = checksumField(skb, u32(offset));
  if (!field) return -Errno.EFAULT;
  const sum = field.readUInt16LE(0);
  switch (Number(flags) & BPF_F_HDR_FIELD_MASK) {
    case 0:
      if (from !== 0n) return -Errno.EINVAL;
      field.writeUInt16LE(csumReplaceByDiff(sum, u32(to)));
      break;
    case 2:
      field.writeUInt16LE(csumReplace2(sum, u32(from) & 0xffff, u32(to) & 0xffff));
      break;
    case 4:
      field.writeUInt16LE(csumReplace4(sum, u32(from), u32(to)));
      break;
    default:
      return -Errno.EINVAL;
  }
  return 0;
}

function l4CsumReplace(m: Machine, ctx: bigint, offset: bigint, from: bigint, to: bigint, flags: bigint): number {
  const skb = skbOf(m, ctx, 'bpf_l4_csum_replace');
  const f = Number(BigInt.asUintN(32, flags));
  if (flags >> 32n || f & ~(BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE | BPF_F_PSEUDO_HDR | BPF_F_IPV6 | BPF_F_HDR_FIELD_MASK)) return -Errno.EINVAL;
  const field = checksumField(skb, u32(offset));
  if (!field) return -Errno.EFAULT;
  const mangledZero = (f & BPF_F_MARK_MANGLED_0) !== 0;
  const sum = field.readUInt16LE(0);
  // A zero UDP checksum means "none": leave it unless told to enforce.
  if (mangledZero && !(f & BPF_F_MARK_ENFORCE) && sum === 0) return 0;
  // A test-run skb is CHECKSUM_NONE, so the pseudo-header flag changes nothing (no skb->csum to fix up).
  switch (f & BPF_F_HDR_FIELD_MASK) {
    case 0:
      if (from !== 0n) return -Errno.EINVAL;
      field.writeUInt16LE(csumReplaceByDiff(sum, u32(to)));
      break;
    case 2:
      field.writeUInt16LE(csumReplace4(sum, u32(from) & 0xffff, u32(to) & 0xffff));
      break;
    case 4:
      field.writeUInt16LE(csumReplace4(sum, u32(from), u32(to)));
      break;
    default:
      return -Errno.EINVAL;
  }
  if (mangledZero && field.readUInt16LE(0) === 0) field.writeUInt16LE(CSUM_MANGLED_0);
  return 0;
}

function csumDiffHelper(m: Machine, from: bigint, fromSize: bigint, to: bigint, toSize: bigint, seed: bigint): number {
  const fs = u32(fromSize);
  const ts = u32(toSize);
  const a = fs ? m.memory.read(from, fs) : Buffer.alloc(0);
  const b = ts ? m.memory.read(to, ts) : Buffer.alloc(0);
  return csumDiff(a, b, u32(seed));
}

/** The smallest skb a program may trim to: the network header offset (a test-run skb has no transport header). */
const skbMinLen = (skb: SkbContext): number => skb.networkOffset;

function skbChangeTail(m: Machine, ctx: bigint, newLen: bigint, flags: bigint): number {
  const skb = skbOf(m, ctx, 'bpf_skb_change_tail');
  const len = u32(newLen);
  if (flags || len > BPF_SKB_MAX_LEN || len < skbMinLen(skb)) return -Errno.EINVAL;
  // __bpf_skb_change_tail refuses an encapsulated skb (after skb_adjust_room with an L3 ENCAP flag).
  if (skb.encapsulation) return -Errno.ENOTSUPP;
  skb.packet.resize(len);
  return 0;
}

function skbPullData(m: Machine, ctx: bigint, len: bigint): number {
  const skb = skbOf(m, ctx, 'bpf_skb_pull_data');
  // The VM's skb is always linear; only the length check remains (pskb_may_pull → -ENOMEM).
  return u32(len) > skb.packet.length ? -Errno.ENOMEM : 0;
}

/** Size of the fixed L3 header, or 0 for neither IPv4 nor IPv6 (bpf_skb_net_base_len). */
function netBaseLen(skb: SkbContext): number {
  return skb.protocol === ETH_P_IP ? 20 : skb.protocol === ETH_P_IPV6 ? 40 : 0;
}

/**
 * bpf_skb_adjust_room: insert or remove room after the MAC header (BPF_ADJ_ROOM_MAC) or after
 * the fixed L3 header (BPF_ADJ_ROOM_NET, 20 bytes for IPv4, 40 for IPv6). Grown room is zeroed.
 * ENCAP flags mark the skb encapsulated (a second encap is -EALREADY) and switch
 * skb->protocol to the new outer L3; DECAP flags switch it back. GSO is not modelled.
 */
function skbAdjustRoom(m: Machine, ctx: bigint, lenDiffArg: bigint, modeArg: bigint, flagsArg: bigint): number {
  const skb = skbOf(m, ctx, 'bpf_skb_adjust_room');
  const lenDiff = s32(lenDiffArg);
  const mode = u32(modeArg);
  if (flagsArg & ~ADJ_ROOM_KNOWN) return -Errno.EINVAL;
  const flags = Number(flagsArg & 0x1ffn);
  const innerMacLen = Number((flagsArg >> ADJ_ROOM_ENCAP_L2_SHIFT) & 0xffn);
  const abs = Math.abs(lenDiff);
  const shrink = lenDiff < 0;
  if (abs > 0xfff) return -Errno.EFAULT;
  if (skb.protocol !== ETH_P_IP && skb.protocol !== ETH_P_IPV6) return -Errno.ENOTSUPP;
  let off = ETH_HLEN; // skb_mac_header_len
  if (mode === BPF_ADJ_ROOM_NET) off += netBaseLen(skb);
  else if (mode !== BPF_ADJ_ROOM_MAC) return -Errno.ENOTSUPP;

  let lenMin = netBaseLen(skb);
  const decap = flags & (Adj.DECAP_L3_IPV4 | Adj.DECAP_L3_IPV6);
  if (decap) {
    if (!shrink || decap === (Adj.DECAP_L3_IPV4 | Adj.DECAP_L3_IPV6)) return -Errno.EINVAL;
    lenMin = decap === Adj.DECAP_L3_IPV4 ? 20 : 40;
  }
  const lenCur = skb.packet.length - skb.networkOffset;
  if (shrink ? abs >= lenCur || lenCur - abs < lenMin : skb.packet.length + abs > BPF_SKB_MAX_LEN) return -Errno.ENOTSUPP;

  if (shrink) {
    // bpf_skb_net_shrink: only FIXED_GSO, DECAP and NO_CSUM_RESET (an inner MAC length is an ENCAP flag too).
    if (flags & ~(Adj.FIXED_GSO | Adj.DECAP_L3_IPV4 | Adj.DECAP_L3_IPV6 | Adj.NO_CSUM_RESET) || innerMacLen) return -Errno.EINVAL;
    skb.packet.remove(off, abs);
    if (decap) skb.protocol = decap === Adj.DECAP_L3_IPV4 ? ETH_P_IP : ETH_P_IPV6;
    return 0;
  }
  // bpf_skb_net_grow: only an L3 ENCAP flag makes this an encapsulation (checked and marked);
  // L4 and L2 flags alone just insert room (Linux 6.18).
  const encap = flags & (Adj.ENCAP_L3_IPV4 | Adj.ENCAP_L3_IPV6);
  if (encap) {
    if (flags & Adj.ENCAP_L3_IPV4 && flags & Adj.ENCAP_L3_IPV6) return -Errno.EINVAL;
    if (flags & Adj.ENCAP_L4_GRE && flags & Adj.ENCAP_L4_UDP) return -Errno.EINVAL;
    if (flags & Adj.ENCAP_L2_ETH && innerMacLen < ETH_HLEN) return -Errno.EINVAL;
    if (skb.encapsulation) return -Errno.EALREADY;
    if (innerMacLen > abs) return -Errno.EINVAL;
  }
  skb.packet.insert(off, abs);
  if (encap) {
    skb.encapsulation = true;
    if (skb.protocol === ETH_P_IP && flags & Adj.ENCAP_L3_IPV6) skb.protocol = ETH_P_IPV6;
    else if (skb.protocol === ETH_P_IPV6 && flags & Adj.ENCAP_L3_IPV4) skb.protocol = ETH_P_IP;
  }
  return 0;
}

// --- xdp data ---

function xdpAdjustHead(m: Machine, _ctx: bigint, delta: bigint): number {
  const packet = m.run.xdp?.packet;
  if (!packet) throw new VmFault('bpf_xdp_adjust_head: not an XDP program');
  const d = s32(delta);
  // The frame keeps at least an Ethernet header; metadata is dropped when data moves over it.
  if (packet.length - d < ETH_HLEN || !packet.adjustHead(d)) return -Errno.EINVAL;
  return 0;
}

function xdpAdjustTail(m: Machine, _ctx: bigint, delta: bigint): number {
  const packet = m.run.xdp?.packet;
  if (!packet) throw new VmFault('bpf_xdp_adjust_tail: not an XDP program');
  const len = packet.length + s32(delta);
  // Tailroom of a test-run frame: 4 KiB page minus headroom and skb_shared_info.
  if (len < ETH_HLEN || packet.data + len > 4096 - 320) return -Errno.EINVAL;
  packet.resize(len);
  return 0;
}

function xdpAdjustMeta(m: Machine, _ctx: bigint, delta: bigint): number {
  const packet = m.run.xdp?.packet;
  if (!packet) throw new VmFault('bpf_xdp_adjust_meta: not an XDP program');
  const metaLen = packet.data - packet.meta - s32(delta);
  if (metaLen < 0 || metaLen > 32 || metaLen & 3 || !packet.setMetaLength(metaLen)) return -Errno.EACCES;
  return 0;
}

// --- redirect ---

function redirect(m: Machine, ifindex: bigint, flags: bigint): number {
  if (m.run.kind === 'xdp') {
    if (flags) return XDP_ABORTED;
    m.run.redirect = { ifindex: u32(ifindex), flags: 0 };
    return XDP_REDIRECT;
  }
  if (flags & ~BigInt(BPF_F_INGRESS)) return TC_ACT_SHOT;
  m.run.redirect = { ifindex: u32(ifindex), flags: Number(flags) };
  return TC_ACT_REDIRECT;
}

/** struct bpf_redir_neigh: nh_family and a 16-byte address. */
const REDIR_NEIGH_SIZE = 20;

function redirectNeigh(m: Machine, ifindex: bigint, _params: bigint, plen: bigint, flags: bigint): number {
  const len = u32(plen);
  if ((len && len < REDIR_NEIGH_SIZE) || flags) return TC_ACT_SHOT;
  m.run.redirect = { ifindex: u32(ifindex), flags: 0, neigh: true };
  return TC_ACT_REDIRECT;
}

// --- ring buffer ---

interface RingbufSlot {
  map: RingbufMap;
  record: RingbufRecord;
}
const isSlot = (o: unknown): o is RingbufSlot => typeof o === 'object' && o !== null && 'record' in o && 'map' in o;

function ringbufOf(m: Machine, ptr: bigint): RingbufMap {
  const map = mapOf(m, ptr);
  if (!(map instanceof RingbufMap)) throw new VmFault('not a ring buffer', `map ${map.name}`);
  return map;
}

function ringbufReserve(m: Machine, mapPtr: bigint, size: bigint, flags: bigint): bigint {
  const map = ringbufOf(m, mapPtr);
  if (flags || size > 0xffffffffn) return NULL;
  const record = map.reserve(Number(size));
  if (!record) return NULL;
  const region = m.memory.add({ kind: 'ringbuf', name: `${map.name} record`, buf: record.data, start: 0, end: record.data.length, writable: true, object: { map, record } satisfies RingbufSlot });
  return address(region, 0);
}

function ringbufFinish(m: Machine, data: bigint, state: 'committed' | 'discarded'): number {
  const region: Region | undefined = m.memory.regionAt(data);
  if (!region || region.kind !== 'ringbuf' || (data & 0xffffffffn) !== 0n || !isSlot(region.object) || region.object.record.state !== 'busy') {
    throw new VmFault('invalid ring buffer record', `${data.toString(16)} was not returned by bpf_ringbuf_reserve`);
  }
  region.object.record.state = state;
  m.memory.retire(region);
  return 0;
}

function ringbufOutput(m: Machine, mapPtr: bigint, data: bigint, size: bigint, flags: bigint): number {
  const map = ringbufOf(m, mapPtr);
  if (flags & ~3n) return -Errno.EINVAL;
  const bytes = m.memory.read(data, Number(size));
  const record = map.reserve(bytes.length);
  if (!record) return -Errno.EAGAIN;
  record.data.set(bytes);
  record.state = 'committed';
  return 0;
}

// --- bpf_loop, kptrs ---

const BPF_MAX_LOOPS = 1 << 23;

function loop(m: Machine, nrLoops: bigint, callback: bigint, callbackCtx: bigint, flags: bigint): number {
  if (flags) return -Errno.EINVAL;
  const n = u32(nrLoops);
  if (n > BPF_MAX_LOOPS) return -Errno.E2BIG;
  for (let i = 0; i < n; i++) {
    if (m.invoke(callback, [BigInt(i), callbackCtx]) & 0xffffffffn) return i + 1;
  }
  return n;
}

function kptrXchg(m: Machine, slot: bigint, ptr: bigint): bigint {
  const field = m.memory.view(slot, 8, true);
  const old = field.readBigUInt64LE(0);
  field.writeBigUInt64LE(BigInt.asUintN(64, ptr));
  return old;
}

// --- bpf_spin_lock ---
// The lock is the u32 of struct bpf_spin_lock in a map value: 1 while held. The VM runs one
// program at a time, so a held lock can only be the program's own: taking it again (or a second
// one, which the verifier refuses) would never return, and faults instead.

function spinLock(m: Machine, lock: bigint): number {
  const word = m.memory.view(lock, 4, true);
  if (m.run.lock !== undefined) throw new VmFault('bpf_spin_lock: a lock is already held (the verifier allows one at a time)');
  if (word.readUInt32LE(0) !== 0) throw new VmFault('bpf_spin_lock: the lock is taken and no other program runs to release it (deadlock)');
  word.writeUInt32LE(1);
  m.run.lock = lock;
  return 0;
}

function spinUnlock(m: Machine, lock: bigint): number {
  if (m.run.lock !== lock) throw new VmFault(m.run.lock === undefined ? 'bpf_spin_unlock: no lock is held' : 'bpf_spin_unlock: a different lock is held');
  m.memory.view(lock, 4, true).writeUInt32LE(0);
  m.run.lock = undefined;
  return 0;
}

type Native = (m: Machine, ...args: bigint[]) => bigint | number;
const bind = (fn: Native): NativeFunction => fn as NativeFunction;

/** Helpers by id. */
export const helpers: ReadonlyMap<number, NativeFunction> = new Map<number, NativeFunction>([
  [F.BPF_FUNC_map_lookup_elem, bind(mapLookupElem)],
  [F.BPF_FUNC_map_update_elem, bind(mapUpdateElem)],
  [F.BPF_FUNC_map_delete_elem, bind(mapDeleteElem)],
  [F.BPF_FUNC_ktime_get_ns, (m) => m.clock()],
  [F.BPF_FUNC_ktime_get_boot_ns, (m) => m.clock()],
  [F.BPF_FUNC_trace_printk, bind(tracePrintk)],
  [F.BPF_FUNC_get_prandom_u32, (m) => m.random()],
  [F.BPF_FUNC_get_smp_processor_id, () => 0],
  [F.BPF_FUNC_get_numa_node_id, () => 0],
  [F.BPF_FUNC_skb_store_bytes, bind(skbStoreBytes)],
  [F.BPF_FUNC_l3_csum_replace, bind(l3CsumReplace)],
  [F.BPF_FUNC_l4_csum_replace, bind(l4CsumReplace)],
  [F.BPF_FUNC_redirect, bind(redirect)],
  [F.BPF_FUNC_skb_load_bytes, bind(skbLoadBytes)],
  [F.BPF_FUNC_csum_diff, bind(csumDiffHelper)],
  [F.BPF_FUNC_skb_change_tail, bind(skbChangeTail)],
  [F.BPF_FUNC_skb_pull_data, bind(skbPullData)],
  [F.BPF_FUNC_skb_adjust_room, bind(skbAdjustRoom)],
  [F.BPF_FUNC_xdp_adjust_head, bind(xdpAdjustHead)],
  [F.BPF_FUNC_xdp_adjust_tail, bind(xdpAdjustTail)],
  [F.BPF_FUNC_xdp_adjust_meta, bind(xdpAdjustMeta)],
  [F.BPF_FUNC_redirect_neigh, bind(redirectNeigh)],
  [F.BPF_FUNC_ringbuf_output, bind(ringbufOutput)],
  [F.BPF_FUNC_ringbuf_reserve, bind(ringbufReserve)],
  [F.BPF_FUNC_ringbuf_submit, (m, data) => ringbufFinish(m, data, 'committed')],
  [F.BPF_FUNC_ringbuf_discard, (m, data) => ringbufFinish(m, data, 'discarded')],
  [F.BPF_FUNC_loop, bind(loop)],
  [F.BPF_FUNC_kptr_xchg, bind(kptrXchg)],
  [F.BPF_FUNC_spin_lock, bind(spinLock)],
  [F.BPF_FUNC_spin_unlock, bind(spinUnlock)],
  ...dynptrHelpers,
]);

