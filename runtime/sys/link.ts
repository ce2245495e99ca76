// Attaching: BPF links (BPF_LINK_CREATE, the owned, detachable kind) and the older
// BPF_PROG_ATTACH/DETACH, which tcx also accepts (6.6+) and which is the fallback where links
// are missing. BPF_F_BEFORE/AFTER/ID (1<<3, 1<<4, 1<<5, 6.6) are #defines newer than the
// installed UAPI header, so callers pass them as numbers until the header is updated.
import {
  BPF_LINK_CREATE,
  BPF_LINK_DETACH,
  BPF_LINK_UPDATE,
  BPF_NETKIT_PEER,
  BPF_NETKIT_PRIMARY,
  BPF_PROG_ATTACH,
  BPF_PROG_DETACH,
  BPF_PROG_QUERY,
  BPF_TCX_EGRESS,
  BPF_TCX_INGRESS,
} from './constants.ts';
import { BpfError } from './errors.ts';
import { FD, fdValue, type FdLike } from './fd.ts';
import { bpf, writePointer } from './syscall.ts';

/** tcx and netkit placement (6.6): relative to a program or link, by fd or by id. */
export interface Placement {
  /** With BPF_F_BEFORE/BPF_F_AFTER: the fd (or, with BPF_F_ID, the id) placed against. */
  relativeFd?: number;
  relativeId?: number;
  /** Fail with ESTALE unless the attach point's revision is this (0: don't check). */
  expectedRevision?: bigint;
}

export interface LinkCreateOptions {
  prog: FdLike;
  /** An fd (cgroup, map, prog) or, for xdp/tcx/netkit, an ifindex. */
  target: number;
  attachType: number;
  flags?: number;
  /** Tracing (fentry/fexit/…): the target's BTF id. */
  targetBtfId?: number;
  /** tcx / netkit */
  placement?: Placement;
  /** perf_event and tracing links: bpf_get_attach_cookie()'s value. */
  cookie?: bigint;
  /** BPF_TRACE_ITER: struct bpf_iter_link_info. */
  iterInfo?: Buffer;
}

/** BPF_LINK_CREATE: returns the link's fd; closing it (unless pinned) detaches. */
export function linkCreate(o: LinkCreateOptions): FD {
  // attr.link_create:
  //	 0 prog_fd | 4 target_fd / target_ifindex | 8 attach_type | 12 flags
  //	16 union {
  //	     target_btf_id u32;
  //	     { iter_info u64; iter_info_len u32 @24 };
  //	     perf_event { bpf_cookie u64 };
  //	     tracing { target_btf_id u32; cookie u64 @24 };
  //	     tcx / netkit { relative_fd | relative_id u32; expected_revision u64 @24 };
  //	     … (kprobe_multi, uprobe_multi, netfilter) } | 64
  const attr = Buffer.alloc(64);
  attr.writeUInt32LE(fdValue(o.prog), 0);
  attr.writeUInt32LE(o.target, 4);
  attr.writeUInt32LE(o.attachType, 8);
  attr.writeUInt32LE(o.flags ?? 0, 12);
  if (o.placement) {
    attr.writeUInt32LE(o.placement.relativeFd ?? o.placement.relativeId ?? 0, 16);
    attr.writeBigUInt64LE(o.placement.expectedRevision ?? 0n, 24);
  } else if (o.iterInfo) {
    writePointer(attr, 16, o.iterInfo);
    attr.writeUInt32LE(o.iterInfo.length, 24);
  } else if (o.targetBtfId !== undefined) {
    attr.writeUInt32LE(o.targetBtfId, 16);
    if (o.cookie !== undefined) attr.writeBigUInt64LE(o.cookie, 24);
  } else if (o.cookie !== undefined) {
    attr.writeBigUInt64LE(o.cookie, 16); // perf_event.bpf_cookie
  }
  return new FD(bpf(BPF_LINK_CREATE, attr));
}

/** BPF_LINK_UPDATE: swap the link's program (atomically; with BPF_F_REPLACE only if it is oldProg). */
export function linkUpdate(link: FdLike, newProg: FdLike, flags = 0, oldProg?: FdLike): void {
  // 0 link_fd | 4 new_prog_fd | 8 flags | 12 old_prog_fd | 16
  const attr = Buffer.alloc(16);
  attr.writeUInt32LE(fdValue(link), 0);
  attr.writeUInt32LE(fdValue(newProg), 4);
  attr.writeUInt32LE(flags, 8);
  attr.writeUInt32LE(oldProg === undefined ? 0 : fdValue(oldProg), 12);
  bpf(BPF_LINK_UPDATE, attr);
}

/** BPF_LINK_DETACH: detach now, even while pinned or held by others; the fd stays valid. */
export function linkDetach(link: FdLike): void {
  const attr = Buffer.alloc(4);
  attr.writeUInt32LE(fdValue(link), 0); // link_detach.link_fd
  bpf(BPF_LINK_DETACH, attr);
}

export interface ProgAttachOptions {
  /** cgroup / sockmap fd, or the ifindex for tcx. */
  target: number;
  prog: FdLike;
  attachType: number;
  flags?: number; // BPF_F_ALLOW_MULTI, BPF_F_REPLACE, BPF_F_BEFORE, …
  /** BPF_F_REPLACE: the program to replace (cgroup). */
  replaceProg?: FdLike;
  /** tcx (6.6) */
  placement?: Placement;
}

// attr for BPF_PROG_ATTACH / BPF_PROG_DETACH:
//	 0 target_fd / target_ifindex | 4 attach_bpf_fd | 8 attach_type | 12 attach_flags
//	16 replace_bpf_fd / relative_fd / relative_id | 20 pad | 24 expected_revision u64 | 32
function attachAttr(o: ProgAttachOptions): Buffer {
  const attr = Buffer.alloc(32);
  attr.writeUInt32LE(o.target, 0);
  attr.writeUInt32LE(fdValue(o.prog), 4);
  attr.writeUInt32LE(o.attachType, 8);
  attr.writeUInt32LE(o.flags ?? 0, 12);
  const relative = o.replaceProg !== undefined ? fdValue(o.replaceProg) : (o.placement?.relativeFd ?? o.placement?.relativeId ?? 0);
  attr.writeUInt32LE(relative, 16);
  attr.writeBigUInt64LE(o.placement?.expectedRevision ?? 0n, 24);
  return attr;
}

/** BPF_PROG_ATTACH: attach without a link; it stays until progDetach (or the target goes). */
export function progAttach(o: ProgAttachOptions): void {
  bpf(BPF_PROG_ATTACH, attachAttr(o));
}

/** BPF_PROG_DETACH: `prog` names which program to remove (tcx, multi-attach cgroups). */
export function progDetach(o: ProgAttachOptions): void {
  bpf(BPF_PROG_DETACH, attachAttr(o));
}

export interface ProgQueryResult {
  progIds: number[];
  /** tcx (6.6): the link ids beside the programs, 0 where a program is attached without one. */
  linkIds: number[];
  attachFlags: number;
  /** tcx (6.6): the attach point's revision, for expectedRevision. */
  revision: bigint;
}

const mprog = new Set<number>([BPF_TCX_INGRESS, BPF_TCX_EGRESS, BPF_NETKIT_PRIMARY, BPF_NETKIT_PEER]);

/** BPF_PROG_QUERY: what is attached at (target, attachType). */
export function progQuery(target: number, attachType: number, queryFlags = 0, capacity = 64): ProgQueryResult {
  for (;;) {
    // attr.query:
    //	 0 target_fd / target_ifindex | 4 attach_type | 8 query_flags | 12 attach_flags (out)
    //	16 prog_ids u64 | 24 prog_cnt / count u32 (in/out) | 28 pad | 32 prog_attach_flags u64
    //	40 link_ids u64 | 48 link_attach_flags u64 | 56 revision u64 (out) | 64
    const attr = Buffer.alloc(64);
    const progIds = Buffer.alloc(4 * capacity);
    const linkIds = Buffer.alloc(4 * capacity);
    attr.writeUInt32LE(target, 0);
    attr.writeUInt32LE(attachType, 4);
    attr.writeUInt32LE(queryFlags, 8);
    writePointer(attr, 16, progIds);
    attr.writeUInt32LE(capacity, 24);
    // link_ids exists for the mprog attach points only (6.6); before 6.6 the kernel's zero-tail
    // check would refuse it, so other attach types leave it out.
    if (mprog.has(attachType)) writePointer(attr, 40, linkIds);
    try {
      bpf(BPF_PROG_QUERY, attr);
    } catch (e) {
      // ENOSPC: more than `capacity` attached; prog_cnt says how many.
      if (e instanceof BpfError && e.code === 'ENOSPC' && attr.readUInt32LE(24) > capacity) {
        capacity = attr.readUInt32LE(24);
        continue;
      }
      throw e;
    }
    const count = Math.min(attr.readUInt32LE(24), capacity);
    const read = (b: Buffer) => Array.from({ length: count }, (_, i) => b.readUInt32LE(4 * i));
    return { progIds: read(progIds), linkIds: read(linkIds), attachFlags: attr.readUInt32LE(12), revision: attr.readBigUInt64LE(56) };
  }
}
