// What is loaded, read back from bpffs and the kernel: objects under the pin root (one directory
// each, as `load` leaves them), their programs, maps (with entry counts) and attachments, and
// maps opened by pin with the BTF the kernel holds for them (bpftool's way of decoding).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Btf } from '../../compiler/btf/btf.ts';
import { BPF_OBJ_GET_INFO_BY_FD } from '../sys/constants.ts';
import { bpf, BpfError, btfGetFdById, btfInfo, linkInfo, mapInfo, objGet, progInfo, writePointer, type FD } from '../sys/index.ts';
import { readRecords, type Attachment } from './attach.ts';
import { LoaderError } from './errors.ts';
import { MapHandle } from './maps.ts';
import { DEFAULT_PIN_ROOT } from './names.ts';

/** The BTF object `id` as the kernel holds it (what bpftool btf dump reads). */
export function kernelBtfById(id: number): Btf {
  const fd = btfGetFdById(id);
  try {
    const size = btfInfo(fd).size;
    const blob = Buffer.alloc(size);
    // attr.info: 0 bpf_fd | 4 info_len | 8 info; bpf_btf_info: 0 btf u64 | 8 btf_size u32 | …
    const info = Buffer.alloc(32);
    writePointer(info, 0, blob);
    info.writeUInt32LE(size, 8);
    const attr = Buffer.alloc(16);
    attr.writeUInt32LE(fd.value, 0);
    attr.writeUInt32LE(info.length, 4);
    writePointer(attr, 8, info);
    bpf(BPF_OBJ_GET_INFO_BY_FD, attr);
    return Btf.decode(blob);
  } finally {
    fd.close();
  }
}

/** A map pinned at `path`, with its BTF from the kernel when it has one. */
export function openPinnedMap(path: string, name = path.split('/').pop()!): MapHandle {
  const fd = objGet(path);
  try {
    const info = mapInfo(fd);
    let btf: Btf | undefined;
    if (info.btfId) {
      try {
        btf = kernelBtfById(info.btfId);
      } catch {
        btf = undefined; // decode without types rather than not at all
      }
    }
    return new MapHandle(info.name || name, fd, info, btf, btf ? info.btfKeyTypeId : 0, btf ? info.btfValueTypeId : 0, undefined, path);
  } catch (e) {
    fd.close();
    throw e;
  }
}

/** Pinned objects directly in `dir` (not in subdirectories), by file name. */
function pinsIn(dir: string): [string, string][] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((n): [string, string] => [n, join(dir, n)])
    .filter(([, p]) => statSync(p, { throwIfNoEntry: false })?.isFile() ?? false);
}

export interface ProgramStatus {
  name: string;
  id: number;
  type: number;
  tag: string;
  btfId: number;
  pin: string;
}

export interface MapStatus {
  name: string;
  id: number;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  entries: number;
  pin: string;
}

export interface AttachmentStatus {
  record: Attachment;
  /** Whether the link still exists and is attached (tcx/xdp); tc and device records say true. */
  live: boolean;
}

export interface ObjectStatus {
  name: string;
  pinDir: string;
  programs: ProgramStatus[];
  maps: MapStatus[];
  attachments: AttachmentStatus[];
}

/** Every object under the pin root. */
export function loadedObjects(root = DEFAULT_PIN_ROOT): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((n) => statSync(join(root, n)).isDirectory())
    .sort();
}

export function objectStatus(pinDir: string, name = pinDir.split('/').pop()!): ObjectStatus {
  const programs: ProgramStatus[] = pinsIn(join(pinDir, 'progs')).map(([n, pin]) => {
    const fd = objGet(pin);
    try {
      const i = progInfo(fd);
      return { name: n, id: i.id, type: i.type, tag: i.tag, btfId: i.btfId, pin };
    } finally {
      fd.close();
    }
  });
  const maps: MapStatus[] = [...pinsIn(pinDir), ...pinsIn(join(pinDir, 'maps'))].map(([n, pin]) => {
    const m = openPinnedMap(pin, n);
    try {
      return { name: n, id: m.info.id, type: m.info.type, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.info.maxEntries, entries: m.count(), pin };
    } finally {
      m.close();
    }
  });
  const attachments = readRecords(pinDir).map((record): AttachmentStatus => {
    if (record.kind !== 'tcx' && record.kind !== 'xdp') return { record, live: true };
    let fd: FD | undefined;
    try {
      fd = objGet(record.linkPin);
      // A detached link keeps its id but loses its device (ifindex 0).
      return { record, live: (linkInfo(fd).ifindex ?? 0) !== 0 };
    } catch (e) {
      if (e instanceof BpfError && e.code === 'ENOENT') return { record, live: false };
      throw e;
    } finally {
      fd?.close();
    }
  });
  return { name, pinDir, programs, maps, attachments };
}

/** The pin directory of an object given by name or directory; with neither, the only one. */
export function resolvePinDir(o: { object?: string; pinDir?: string }, root = DEFAULT_PIN_ROOT): string {
  if (o.pinDir) return o.pinDir;
  if (o.object) return join(root, o.object);
  const all = loadedObjects(root);
  if (all.length === 1) return join(root, all[0]!);
  if (all.length === 0) throw new LoaderError(`no object is loaded under ${root} (run ebpf-ts load OBJ first)`);
  throw new LoaderError(`several objects are loaded (${all.join(', ')}); say which with --object NAME`);
}
