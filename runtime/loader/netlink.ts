// rtnetlink, the little of it the loader speaks: clsact qdiscs and cls_bpf filters (the tc
// attach path for kernels before tcx, Linux < 6.6, as libbpf's bpf_tc_* do), link MTU and GSO
// limits, and ethtool's GSO feature flag. One socket per request; every request asks for an
// ACK, and NETLINK_EXT_ACK makes the kernel say why it refused.
//
// Message layout (all little-endian on the hosts we run on):
//	nlmsghdr  { u32 len; u16 type; u16 flags; u32 seq; u32 pid }                       16 bytes
//	tcmsg     { u8 family; u8 pad[3]; i32 ifindex; u32 handle; u32 parent; u32 info }  20 bytes
//	ifinfomsg { u8 family; u8 pad; u16 type; i32 index; u32 flags; u32 change }        16 bytes
//	rtattr    { u16 len; u16 type; payload; pad to 4 }
import { view } from './bytes.ts';
import { LoaderError } from './errors.ts';
import { addressOf, AF_INET, AF_NETLINK, bind, closeSocket, ioctl, recv, send, setsockoptInt, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_RAW, socket } from './libc.ts';
import { describeErrno, errnoName } from '../sys/errors.ts';

const NETLINK_ROUTE = 0;
const SOL_NETLINK = 270;
const NETLINK_EXT_ACK = 11;

const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1;
const NLM_F_MULTI = 0x2;
const NLM_F_ACK = 0x4;
const NLM_F_ECHO = 0x8;
const NLM_F_DUMP = 0x300;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const NLM_F_ACK_TLVS = 0x200; // in NLMSG_ERROR replies
const NLMSGERR_ATTR_MSG = 1;
const NLA_F_NESTED = 0x8000;

const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;
const RTM_NEWQDISC = 36;
const RTM_DELQDISC = 37;
const RTM_NEWTFILTER = 44;
const RTM_DELTFILTER = 45;
const RTM_GETTFILTER = 46;

const IFLA_MTU = 4;
const IFLA_IFNAME = 3;
const IFLA_GSO_MAX_SEGS = 40;
const IFLA_GSO_MAX_SIZE = 41;

const TCA_KIND = 1;
const TCA_OPTIONS = 2;
const TCA_BPF_FD = 6;
const TCA_BPF_NAME = 7;
const TCA_BPF_FLAGS = 8;
const TCA_BPF_ID = 11;
const TCA_BPF_FLAG_ACT_DIRECT = 1;

// Handles (linux/pkt_sched.h): clsact lives at TC_H_CLSACT; its two filter chains are minor
// numbers of it.
export const TC_H_CLSACT = 0xfffffff1;
const TC_H_CLSACT_HANDLE = 0xffff0000; // TC_H_MAKE(TC_H_CLSACT, 0)
export const TC_H_MIN_INGRESS = 0xfff2;
export const TC_H_MIN_EGRESS = 0xfff3;
export const clsactParent = (direction: 'ingress' | 'egress'): number => (0xffff0000 | (direction === 'ingress' ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS)) >>> 0;
const ETH_P_ALL = 0x0003;
const htons = (v: number): number => ((v & 0xff) << 8) | ((v >> 8) & 0xff);

export class NetlinkError extends LoaderError {
  constructor(
    readonly what: string,
    readonly errno: number,
    readonly extack?: string,
  ) {
    super(`${what}: ${describeErrno(errno)}${extack ? ` (${extack})` : ''}${errno === 1 ? ' — needs CAP_NET_ADMIN / root' : ''}`);
  }
  get code(): string {
    return errnoName(this.errno);
  }
}

const concat = (parts: Buffer[]): Buffer => Buffer.concat(parts.map(view));

interface Attr {
  type: number;
  data: Buffer | Attr[];
}

function encodeAttrs(attrs: Attr[]): Buffer {
  const parts: Buffer[] = [];
  for (const a of attrs) {
    const payload = Array.isArray(a.data) ? encodeAttrs(a.data) : a.data;
    const head = Buffer.alloc(4);
    head.writeUInt16LE(4 + payload.length, 0);
    head.writeUInt16LE(a.type | (Array.isArray(a.data) ? NLA_F_NESTED : 0), 2);
    parts.push(head, payload, Buffer.alloc((4 - (payload.length % 4)) % 4));
  }
  return concat(parts);
}

/** Attributes of a message body: type (without NLA_F_* bits) → payload; later duplicates win. */
export function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let off = 0; off + 4 <= buf.length; ) {
    const len = buf.readUInt16LE(off);
    if (len < 4) break;
    out.set(buf.readUInt16LE(off + 2) & 0x3fff, buf.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
  return out;
}

const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
};
const cstr = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');

export interface Message {
  type: number;
  flags: number;
  body: Buffer;
}

let seq = Math.floor(Date.now() / 1000) & 0xffff;

/** Send one request and collect the replies up to the ACK (or the end of a dump). */
function request(what: string, type: number, flags: number, body: Buffer): Message[] {
  const fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  try {
    setsockoptInt(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
    const addr = Buffer.alloc(12); // sockaddr_nl { u16 family; u16 pad; u32 pid; u32 groups }
    addr.writeUInt16LE(AF_NETLINK, 0);
    bind(fd, addr);
    const mySeq = ++seq;
    const header = Buffer.alloc(16);
    header.writeUInt32LE(16 + body.length, 0);
    header.writeUInt16LE(type, 4);
    header.writeUInt16LE(flags | NLM_F_REQUEST | NLM_F_ACK, 6);
    header.writeUInt32LE(mySeq, 8);
    send(fd, concat([header, body]));
    const replies: Message[] = [];
    const buf = Buffer.alloc(65536);
    for (;;) {
      const n = recv(fd, buf);
      for (let off = 0; off + 16 <= n; ) {
        const len = buf.readUInt32LE(off);
        const mtype = buf.readUInt16LE(off + 4);
        const mflags = buf.readUInt16LE(off + 6);
        const mseq = buf.readUInt32LE(off + 8);
        const payload = Buffer.from(view(buf.subarray(off + 16, off + len)));
        off += (len + 3) & ~3;
        if (len < 16 || mseq !== mySeq) continue;
        if (mtype === NLMSG_DONE) return replies;
        if (mtype === NLMSG_ERROR) {
          const errno = -payload.readInt32LE(0);
          if (errno === 0) return replies;
          let extack: string | undefined;
          if (mflags & NLM_F_ACK_TLVS) {
            // After the error code: the request's header (its body too unless capped), then TLVs.
            const origLen = mflags & 0x100 /* NLM_F_CAPPED */ ? 16 : payload.readUInt32LE(4);
            const msg = parseAttrs(payload.subarray(4 + ((origLen + 3) & ~3))).get(NLMSGERR_ATTR_MSG);
            if (msg) extack = msg.toString('utf8').replace(/\0.*$/s, '');
          }
          throw new NetlinkError(what, errno, extack);
        }
        replies.push({ type: mtype, flags: mflags, body: payload });
        if (!(mflags & NLM_F_MULTI) && !(flags & NLM_F_DUMP) && !(flags & NLM_F_ECHO)) return replies;
      }
    }
  } finally {
    closeSocket(fd);
  }
}

function tcmsg(ifindex: number, handle: number, parent: number, info: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt8(0, 0); // AF_UNSPEC
  b.writeInt32LE(ifindex, 4);
  b.writeUInt32LE(handle >>> 0, 8);
  b.writeUInt32LE(parent >>> 0, 12);
  b.writeUInt32LE(info >>> 0, 16);
  return b;
}

const withAttrs = (head: Buffer, attrs: Attr[]): Buffer => concat([head, encodeAttrs(attrs)]);

// ---- clsact + cls_bpf

/** Add the clsact qdisc; false when the device already has one (it is then not ours to delete). */
export function addClsact(ifindex: number): boolean {
  try {
    request('adding clsact qdisc', RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, withAttrs(tcmsg(ifindex, TC_H_CLSACT_HANDLE, TC_H_CLSACT, 0), [{ type: TCA_KIND, data: cstr('clsact') }]));
    return true;
  } catch (e) {
    if (e instanceof NetlinkError && e.code === 'EEXIST') return false;
    throw e;
  }
}

export function deleteClsact(ifindex: number): void {
  request('deleting clsact qdisc', RTM_DELQDISC, 0, withAttrs(tcmsg(ifindex, TC_H_CLSACT_HANDLE, TC_H_CLSACT, 0), [{ type: TCA_KIND, data: cstr('clsact') }]));
}

export interface TcFilter {
  parent: number;
  handle: number;
  priority: number;
  kind: string;
  /** cls_bpf: the program's id. */
  progId?: number;
  name?: string;
}

function parseFilter(m: Message): TcFilter {
  const info = m.body.readUInt32LE(16);
  const attrs = parseAttrs(m.body.subarray(20));
  const kind = attrs.get(TCA_KIND)?.toString('utf8').replace(/\0.*$/s, '') ?? '';
  const options = attrs.get(TCA_OPTIONS);
  const opts = options ? parseAttrs(options) : new Map<number, Buffer>();
  return {
    parent: m.body.readUInt32LE(12),
    handle: m.body.readUInt32LE(8),
    priority: info >>> 16,
    kind,
    progId: opts.get(TCA_BPF_ID)?.readUInt32LE(0),
    name: opts.get(TCA_BPF_NAME)?.toString('utf8').replace(/\0.*$/s, ''),
  };
}

/** Add a direct-action cls_bpf filter; priority 0 lets the kernel choose. Returns what the
 *  kernel made (NLM_F_ECHO), since detach must name the exact handle and priority. */
export function addBpfFilter(ifindex: number, parent: number, progFd: number, name: string, handle = 1, priority = 0): TcFilter {
  const replies = request('adding cls_bpf filter', RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO, withAttrs(tcmsg(ifindex, handle, parent, ((priority << 16) | htons(ETH_P_ALL)) >>> 0), [
    { type: TCA_KIND, data: cstr('bpf') },
    { type: TCA_OPTIONS, data: [
      { type: TCA_BPF_FD, data: u32(progFd) },
      { type: TCA_BPF_NAME, data: cstr(name) },
      { type: TCA_BPF_FLAGS, data: u32(TCA_BPF_FLAG_ACT_DIRECT) },
    ] },
  ]));
  const echoed = replies.find((m) => m.type === RTM_NEWTFILTER);
  if (!echoed) throw new LoaderError('adding cls_bpf filter: the kernel did not echo the filter');
  return parseFilter(echoed);
}

export function deleteFilter(ifindex: number, f: Pick<TcFilter, 'parent' | 'handle' | 'priority'>): void {
  request('deleting cls_bpf filter', RTM_DELTFILTER, 0, withAttrs(tcmsg(ifindex, f.handle, f.parent, ((f.priority << 16) | htons(ETH_P_ALL)) >>> 0), [{ type: TCA_KIND, data: cstr('bpf') }]));
}

/** Filters on a clsact chain (only those with a handle: the per-priority heads carry none). */
export function listFilters(ifindex: number, parent: number): TcFilter[] {
  try {
    return request('listing tc filters', RTM_GETTFILTER, NLM_F_DUMP, tcmsg(ifindex, 0, parent, 0))
      .filter((m) => m.type === RTM_NEWTFILTER)
      .map(parseFilter)
      .filter((f) => f.handle !== 0);
  } catch (e) {
    if (e instanceof NetlinkError && (e.code === 'EINVAL' || e.code === 'ENOENT')) return []; // no clsact
    throw e;
  }
}

// ---- link settings

export interface LinkSettings {
  name: string;
  mtu: number;
  gsoMaxSize: number;
  gsoMaxSegs: number;
}

export function getLink(ifindex: number): LinkSettings {
  const body = Buffer.alloc(16);
  body.writeInt32LE(ifindex, 4);
  const reply = request('reading link', RTM_GETLINK, 0, body).find((m) => m.type === RTM_NEWLINK);
  if (!reply) throw new LoaderError(`reading link ${ifindex}: no reply`);
  const attrs = parseAttrs(reply.body.subarray(16));
  return {
    name: attrs.get(IFLA_IFNAME)?.toString('utf8').replace(/\0.*$/s, '') ?? '',
    mtu: attrs.get(IFLA_MTU)?.readUInt32LE(0) ?? 0,
    gsoMaxSize: attrs.get(IFLA_GSO_MAX_SIZE)?.readUInt32LE(0) ?? 0,
    gsoMaxSegs: attrs.get(IFLA_GSO_MAX_SEGS)?.readUInt32LE(0) ?? 0,
  };
}

export function setLink(ifindex: number, s: { mtu?: number; gsoMaxSize?: number }): void {
  const body = Buffer.alloc(16);
  body.writeInt32LE(ifindex, 4);
  const attrs: Attr[] = [];
  if (s.mtu !== undefined) attrs.push({ type: IFLA_MTU, data: u32(s.mtu) });
  if (s.gsoMaxSize !== undefined) attrs.push({ type: IFLA_GSO_MAX_SIZE, data: u32(s.gsoMaxSize) });
  if (attrs.length === 0) return;
  request('setting link', RTM_NEWLINK, 0, withAttrs(body, attrs));
}

// ---- ethtool (GSO on/off is a feature flag, not a link attribute)

const SIOCETHTOOL = 0x8946;
const ETHTOOL_GGSO = 0x23;
const ETHTOOL_SGSO = 0x24;

function ethtool(device: string, cmd: number, data: number): number {
  const value = Buffer.alloc(8); // struct ethtool_value { u32 cmd; u32 data; }
  value.writeUInt32LE(cmd, 0);
  value.writeUInt32LE(data, 4);
  const ifr = Buffer.alloc(40); // struct ifreq { char name[16]; union { void *data; … } }
  ifr.write(device.slice(0, 15), 0, 'latin1');
  ifr.writeBigUInt64LE(addressOf(value), 16);
  const fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  try {
    ioctl(fd, SIOCETHTOOL, ifr);
  } finally {
    closeSocket(fd);
  }
  return value.readUInt32LE(4);
}

export const getGso = (device: string): boolean => ethtool(device, ETHTOOL_GGSO, 0) !== 0;
export const setGso = (device: string, on: boolean): void => void ethtool(device, ETHTOOL_SGSO, on ? 1 : 0);
