// BPF_OBJ_GET_INFO_BY_FD for programs, maps, links and BTF objects. Each struct is read at the
// size this code knows; the kernel copies min(ours, its own), so older kernels leave the tail zero.
import { BPF_LINK_TYPE_NETKIT, BPF_LINK_TYPE_TCX, BPF_LINK_TYPE_XDP, BPF_OBJ_GET_INFO_BY_FD } from './constants.ts';
import { fdValue, type FdLike } from './fd.ts';
import { bpf, writePointer } from './syscall.ts';

// attr.info: 0 bpf_fd u32 | 4 info_len u32 (in/out) | 8 info u64 | 16
function getInfo(fd: FdLike, info: Buffer): number {
  const attr = Buffer.alloc(16);
  attr.writeUInt32LE(fdValue(fd), 0);
  attr.writeUInt32LE(info.length, 4);
  writePointer(attr, 8, info);
  bpf(BPF_OBJ_GET_INFO_BY_FD, attr);
  return attr.readUInt32LE(4);
}

const cString = (buf: Buffer, offset: number, size: number): string => {
  const field = buf.subarray(offset, offset + size);
  const end = field.indexOf(0);
  return field.toString('latin1', 0, end < 0 ? size : end);
};

export interface ProgInfo {
  type: number;
  id: number;
  /** The kernel's 8-byte hash of the program, hex (bpftool's "tag"). */
  tag: string;
  jitedProgLen: number;
  xlatedProgLen: number;
  loadTime: bigint; // ns since boot
  createdByUid: number;
  mapIds: number[];
  name: string;
  ifindex: number;
  gplCompatible: boolean;
  btfId: number;
  nrFuncInfo: number;
  nrLineInfo: number;
  runTimeNs: bigint; // with BPF_ENABLE_STATS
  runCnt: bigint;
  recursionMisses: bigint;
  verifiedInsns: number;
  attachBtfObjId: number;
  attachBtfId: number;
}

const PROG_INFO_SIZE = 232; // sizeof(struct bpf_prog_info), 6.1..6.18
const MAP_IDS_GUESS = 64;

/** Program info, with the ids of the maps it uses (a second call when there are many). */
export function progInfo(fd: FdLike): ProgInfo {
  let capacity = MAP_IDS_GUESS;
  for (;;) {
    const info = Buffer.alloc(PROG_INFO_SIZE);
    const mapIds = Buffer.alloc(4 * capacity);
    info.writeUInt32LE(capacity, 52); //    nr_map_ids (in: room, out: count)
    writePointer(info, 56, mapIds); //      map_ids
    getInfo(fd, info);
    const nrMapIds = info.readUInt32LE(52);
    if (nrMapIds > capacity) {
      capacity = nrMapIds;
      continue;
    }
    return {
      type: info.readUInt32LE(0), //                 type
      id: info.readUInt32LE(4), //                   id
      tag: info.subarray(8, 16).toString('hex'), //  tag[8]
      jitedProgLen: info.readUInt32LE(16), //        jited_prog_len
      xlatedProgLen: info.readUInt32LE(20), //       xlated_prog_len
      // 24 jited_prog_insns u64, 32 xlated_prog_insns u64
      loadTime: info.readBigUInt64LE(40), //         load_time
      createdByUid: info.readUInt32LE(48), //        created_by_uid
      mapIds: Array.from({ length: nrMapIds }, (_, i) => mapIds.readUInt32LE(4 * i)),
      name: cString(info, 64, 16), //                name[16]
      ifindex: info.readUInt32LE(80), //             ifindex
      gplCompatible: (info.readUInt32LE(84) & 1) === 1, // gpl_compatible:1
      // 88 netns_dev, 96 netns_ino, 104 nr_jited_ksyms, 108 nr_jited_func_lens,
      // 112 jited_ksyms, 120 jited_func_lens
      btfId: info.readUInt32LE(128), //              btf_id
      // 132 func_info_rec_size, 136 func_info u64
      nrFuncInfo: info.readUInt32LE(144), //         nr_func_info
      nrLineInfo: info.readUInt32LE(148), //         nr_line_info
      // 152 line_info, 160 jited_line_info, 168 nr_jited_line_info, 172 line_info_rec_size,
      // 176 jited_line_info_rec_size, 180 nr_prog_tags, 184 prog_tags
      runTimeNs: info.readBigUInt64LE(192), //       run_time_ns
      runCnt: info.readBigUInt64LE(200), //          run_cnt
      recursionMisses: info.readBigUInt64LE(208), // recursion_misses
      verifiedInsns: info.readUInt32LE(216), //      verified_insns
      attachBtfObjId: info.readUInt32LE(220), //     attach_btf_obj_id
      attachBtfId: info.readUInt32LE(224), //        attach_btf_id
    };
  }
}

/** The program as the kernel rewrote it (xlated): what bpftool prog dump xlated shows. */
export function progXlatedInsns(fd: FdLike): Buffer {
  const len = progInfo(fd).xlatedProgLen;
  const info = Buffer.alloc(PROG_INFO_SIZE);
  const insns = Buffer.alloc(len);
  info.writeUInt32LE(len, 20); //      xlated_prog_len
  writePointer(info, 32, insns); //    xlated_prog_insns
  getInfo(fd, info);
  return insns.subarray(0, Math.min(len, info.readUInt32LE(20)));
}

export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
  ifindex: number;
  btfVmlinuxValueTypeId: number;
  btfId: number;
  btfKeyTypeId: number;
  btfValueTypeId: number;
  mapExtra: bigint;
}

export function mapInfo(fd: FdLike): MapInfo {
  const info = Buffer.alloc(88); // sizeof(struct bpf_map_info) up to map_extra
  getInfo(fd, info);
  return {
    type: info.readUInt32LE(0), //                     type
    id: info.readUInt32LE(4), //                       id
    keySize: info.readUInt32LE(8), //                  key_size
    valueSize: info.readUInt32LE(12), //               value_size
    maxEntries: info.readUInt32LE(16), //              max_entries
    flags: info.readUInt32LE(20), //                   map_flags
    name: cString(info, 24, 16), //                    name[16]
    ifindex: info.readUInt32LE(40), //                 ifindex
    btfVmlinuxValueTypeId: info.readUInt32LE(44), //   btf_vmlinux_value_type_id
    // 48 netns_dev u64, 56 netns_ino u64
    btfId: info.readUInt32LE(64), //                   btf_id
    btfKeyTypeId: info.readUInt32LE(68), //            btf_key_type_id
    btfValueTypeId: info.readUInt32LE(72), //          btf_value_type_id
    // 76 btf_vmlinux_id (6.x) / pad
    mapExtra: info.readBigUInt64LE(80), //             map_extra
  };
}

export interface LinkInfo {
  type: number; // bpf_link_type
  id: number;
  progId: number;
  /** tcx, netkit and xdp links: the device. */
  ifindex?: number;
  /** tcx and netkit links: BPF_TCX_INGRESS/EGRESS, BPF_NETKIT_PRIMARY/PEER. */
  attachType?: number;
  /** The raw type-specific union, for link types not decoded here. */
  raw: Buffer;
}

export function linkInfo(fd: FdLike): LinkInfo {
  // 0 type u32 | 4 id u32 | 8 prog_id u32 | 12 pad | 16 union { tcx: ifindex u32, attach_type u32;
  // xdp: ifindex u32; netkit: ifindex, attach_type; … } (the largest member is under 48 bytes)
  const info = Buffer.alloc(64);
  getInfo(fd, info);
  const type = info.readUInt32LE(0);
  const out: LinkInfo = { type, id: info.readUInt32LE(4), progId: info.readUInt32LE(8), raw: info.subarray(16) };
  if (type === BPF_LINK_TYPE_TCX || type === BPF_LINK_TYPE_NETKIT) {
    out.ifindex = info.readUInt32LE(16);
    out.attachType = info.readUInt32LE(20);
  } else if (type === BPF_LINK_TYPE_XDP) {
    out.ifindex = info.readUInt32LE(16);
  }
  return out;
}

export interface BtfInfo {
  id: number;
  size: number;
  name: string;
  kernel: boolean;
}

export function btfInfo(fd: FdLike): BtfInfo {
  // 0 btf u64 | 8 btf_size u32 | 12 id u32 | 16 name u64 | 24 name_len u32 | 28 kernel_btf u32 | 32
  const info = Buffer.alloc(32);
  const name = Buffer.alloc(64);
  writePointer(info, 16, name);
  info.writeUInt32LE(name.length, 24);
  getInfo(fd, info);
  return { id: info.readUInt32LE(12), size: info.readUInt32LE(8), name: cString(name, 0, name.length), kernel: info.readUInt32LE(28) !== 0 };
}
