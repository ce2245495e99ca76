// Attaching programs to devices, recording what was done so detach undoes exactly that.
//
//	tc   tcx link (BPF_LINK_CREATE, Linux ≥ 6.6), pinned under <pinDir>/links/ so it outlives the
//	     process; where tcx is missing (EINVAL/EOPNOTSUPP from an older kernel) or mode 'tc' is
//	     asked for: clsact qdisc + direct-action cls_bpf filter over rtnetlink.
//	xdp  XDP link (BPF_LINK_CREATE), pinned the same way.
//	device settings (MTU, GSO on/off, gso_max_size) set through rtnetlink/ethtool, the previous
//	     values recorded and restored on detach.
//
// Records live beside the pins, so they exist exactly as long as the pins do: bpffs holds only
// directories, pinned objects and symlinks, so each record is a symlink under
// <pinDir>/attachments/ whose target is the record's JSON (one attachment per link).
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { BPF_TCX_EGRESS, BPF_TCX_INGRESS, BPF_XDP } from '../sys/constants.ts';
import { BpfError, FD, fdValue, linkCreate, linkDetach, linkInfo, objGet, progInfo, type FdLike } from '../sys/index.ts';
import { LoaderError } from './errors.ts';
import { pin } from './maps.ts';
import { pinFileName } from './names.ts';
import { addBpfFilter, addClsact, clsactParent, deleteClsact, deleteFilter, getGso, getLink, listFilters, NetlinkError, setGso, setLink, TC_H_MIN_EGRESS, TC_H_MIN_INGRESS } from './netlink.ts';
import { deviceIndex, withNetns } from './netns.ts';

export type Direction = 'ingress' | 'egress';

interface RecordBase {
  id: string;
  device: string;
  ifindex: number;
  netns?: string;
}

export interface TcxRecord extends RecordBase {
  kind: 'tcx';
  program: string;
  progId: number;
  direction: Direction;
  linkId: number;
  linkPin: string;
}

export interface TcRecord extends RecordBase {
  kind: 'tc';
  program: string;
  progId: number;
  direction: Direction;
  parent: number;
  handle: number;
  priority: number;
  /** We added the clsact qdisc (so detach removes it once it holds no filters). */
  createdQdisc: boolean;
}

export interface XdpRecord extends RecordBase {
  kind: 'xdp';
  program: string;
  progId: number;
  linkId: number;
  linkPin: string;
  mode: XdpMode;
}

export interface DeviceRecord extends RecordBase {
  kind: 'device';
  /** Values before we changed them; only the settings we changed appear. */
  previous: DeviceSettings;
  applied: DeviceSettings;
}

export type Attachment = TcxRecord | TcRecord | XdpRecord | DeviceRecord;

export interface DeviceSettings {
  mtu?: number;
  /** GSO on/off (ethtool -K DEV gso on|off). */
  gso?: boolean;
  /** Bound on GSO packet size (ip link set DEV gso_max_size N). */
  gsoMaxSize?: number;
}

export type XdpMode = 'auto' | 'native' | 'generic';
const XDP_FLAGS = { auto: 0, generic: 1 << 1, native: 1 << 2 } as const;

// ---- records

const recordsDir = (pinDir: string): string => join(pinDir, 'attachments');

export function readRecords(pinDir: string): Attachment[] {
  const dir = recordsDir(pinDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((name) => {
      try {
        return JSON.parse(readlinkSync(join(dir, name))) as Attachment;
      } catch {
        throw new LoaderError(`${join(dir, name)}: not an attachment record (remove it by hand)`);
      }
    });
}

function writeRecord(pinDir: string, r: Attachment): void {
  const dir = recordsDir(pinDir);
  mkdirSync(dir, { recursive: true });
  symlinkSync(JSON.stringify(r), join(dir, pinFileName(r.id)));
}

function removeRecord(pinDir: string, r: Attachment): void {
  rmSync(join(recordsDir(pinDir), pinFileName(r.id)), { force: true });
}

function recordId(kind: string, device: string, netns: string | undefined, direction?: string): string {
  return `${[kind, direction, device].filter(Boolean).join('-')}@${netns ?? 'host'}`;
}

function refuseDuplicate(pinDir: string, id: string): void {
  if (readRecords(pinDir).some((r) => r.id === id)) throw new LoaderError(`already attached (${id}); detach it first`);
}

// ---- tc

export interface TcAttachOptions {
  device: string;
  direction: Direction;
  netns?: string;
  /** 'auto' (default): tcx, falling back to clsact/cls_bpf; 'tcx' or 'tc' forces one. */
  mode?: 'auto' | 'tcx' | 'tc';
  /** The object's pin directory: links and records go under it. */
  pinDir: string;
  /** Program name for records and the cls_bpf filter name. */
  program: string;
}

const tcxUnsupported = (e: unknown): boolean => e instanceof BpfError && ['EINVAL', 'EOPNOTSUPP', 'ENOTSUPP'].includes(e.code);

export function attachTc(prog: FdLike, o: TcAttachOptions): TcxRecord | TcRecord {
  const mode = o.mode ?? 'auto';
  const progId = progInfo(prog).id;
  const base = { device: o.device, netns: o.netns, program: o.program, progId, direction: o.direction };
  const tcxId = recordId('tcx', o.device, o.netns, o.direction);
  const tcId = recordId('tc', o.device, o.netns, o.direction);
  refuseDuplicate(o.pinDir, tcxId);
  refuseDuplicate(o.pinDir, tcId);
  const made = withNetns(o.netns, (): { link: FD; ifindex: number } | TcRecord => {
    const ifindex = deviceIndex(o.device, o.netns);
    if (mode !== 'tc') {
      try {
        return { link: linkCreate({ prog, target: ifindex, attachType: o.direction === 'ingress' ? BPF_TCX_INGRESS : BPF_TCX_EGRESS }), ifindex };
      } catch (e) {
        if (mode === 'tcx' || !tcxUnsupported(e)) throw attachError(`tcx ${o.direction} on ${o.device}`, e);
      }
    }
    const createdQdisc = addClsact(ifindex);
    try {
      const f = addBpfFilter(ifindex, clsactParent(o.direction), fdValue(prog), o.program);
      return { kind: 'tc', id: tcId, ...base, ifindex, parent: f.parent, handle: f.handle, priority: f.priority, createdQdisc };
    } catch (e) {
      if (createdQdisc) deleteClsact(ifindex);
      throw e;
    }
  });
  if ('kind' in made) {
    writeRecord(o.pinDir, made);
    return made;
  }
  const linkPin = join(o.pinDir, 'links', pinFileName(tcxId));
  const record: TcxRecord = { kind: 'tcx', id: tcxId, ...base, ifindex: made.ifindex, linkId: linkInfo(made.link).id, linkPin };
  finishLink(made.link, linkPin, () => writeRecord(o.pinDir, record));
  return record;
}

/** Pin the link and write its record; if either fails, nothing stays attached. */
function finishLink(link: FD, linkPin: string, write: () => void): void {
  try {
    pin(link, linkPin);
    try {
      write();
    } catch (e) {
      rmSync(linkPin, { force: true });
      throw e;
    }
  } catch (e) {
    try {
      linkDetach(link);
    } catch {
      /* closing the fd below detaches an unpinned link anyway */
    }
    throw e;
  } finally {
    link.close();
  }
}

function attachError(what: string, e: unknown): LoaderError {
  const msg = e instanceof Error ? e.message : String(e);
  return new LoaderError(`attaching ${what}: ${msg}`, { cause: e });
}

// ---- xdp

export interface XdpAttachOptions {
  device: string;
  netns?: string;
  mode?: XdpMode;
  pinDir: string;
  program: string;
}

export function attachXdp(prog: FdLike, o: XdpAttachOptions): XdpRecord {
  const mode = o.mode ?? 'auto';
  const id = recordId('xdp', o.device, o.netns);
  refuseDuplicate(o.pinDir, id);
  const progId = progInfo(prog).id;
  const { link, ifindex } = withNetns(o.netns, () => {
    const ifindex = deviceIndex(o.device, o.netns);
    try {
      return { link: linkCreate({ prog, target: ifindex, attachType: BPF_XDP, flags: XDP_FLAGS[mode] }), ifindex };
    } catch (e) {
      throw attachError(`xdp on ${o.device}`, e);
    }
  });
  const linkPin = join(o.pinDir, 'links', pinFileName(id));
  const record: XdpRecord = { kind: 'xdp', id, device: o.device, ifindex, netns: o.netns, program: o.program, progId, linkId: linkInfo(link).id, linkPin, mode };
  finishLink(link, linkPin, () => writeRecord(o.pinDir, record));
  return record;
}

// ---- device settings

export interface DeviceOptions extends DeviceSettings {
  device: string;
  netns?: string;
  pinDir: string;
}

/** Change MTU / GSO of a device and record the previous values (restored by detach). A device
 *  configured before keeps its first record, so detach restores the original values. */
export function configureDevice(o: DeviceOptions): DeviceRecord {
  const id = recordId('device', o.device, o.netns);
  const earlier = readRecords(o.pinDir).find((r): r is DeviceRecord => r.kind === 'device' && r.id === id);
  const record = withNetns(o.netns, (): DeviceRecord => {
    const ifindex = deviceIndex(o.device, o.netns);
    const link = getLink(ifindex);
    const previous: DeviceSettings = { ...earlier?.previous };
    const applied: DeviceSettings = { ...earlier?.applied };
    if (o.gso !== undefined) {
      previous.gso ??= getGso(o.device);
      setGso(o.device, o.gso);
      applied.gso = o.gso;
    }
    if (o.gsoMaxSize !== undefined || o.mtu !== undefined) {
      if (o.mtu !== undefined) (previous.mtu ??= link.mtu), (applied.mtu = o.mtu);
      if (o.gsoMaxSize !== undefined) (previous.gsoMaxSize ??= link.gsoMaxSize), (applied.gsoMaxSize = o.gsoMaxSize);
      setLink(ifindex, { mtu: o.mtu, gsoMaxSize: o.gsoMaxSize });
    }
    return { kind: 'device', id, device: o.device, ifindex, netns: o.netns, previous, applied };
  });
  if (earlier) removeRecord(o.pinDir, earlier);
  writeRecord(o.pinDir, record);
  return record;
}

// ---- detach

export interface DetachFilter {
  device?: string;
  direction?: Direction;
  netns?: string;
  program?: string;
  kind?: Attachment['kind'];
}

const matches = (r: Attachment, f: DetachFilter): boolean =>
  (f.device === undefined || r.device === f.device) &&
  (f.netns === undefined || (r.netns ?? '') === f.netns) &&
  (f.kind === undefined || r.kind === f.kind) &&
  (f.direction === undefined || ('direction' in r && r.direction === f.direction)) &&
  (f.program === undefined || ('program' in r && r.program === f.program));

export interface DetachResult {
  detached: Attachment[];
  /** Records whose target was already gone (device deleted, link detached by someone else). */
  stale: Attachment[];
}

/** Undo the recorded attachments that match `filter` (all by default); device settings last. */
export function detach(pinDir: string, filter: DetachFilter = {}): DetachResult {
  const result: DetachResult = { detached: [], stale: [] };
  const records = readRecords(pinDir).filter((r) => matches(r, filter));
  const order = [...records.filter((r) => r.kind !== 'device'), ...records.filter((r) => r.kind === 'device')];
  for (const r of order) {
    const gone = undo(r);
    removeRecord(pinDir, r);
    (gone ? result.stale : result.detached).push(r);
  }
  return result;
}

/** Undo one attachment; true when there was nothing left to undo. */
function undo(r: Attachment): boolean {
  switch (r.kind) {
    case 'tcx':
    case 'xdp': {
      let link: FD;
      try {
        link = objGet(r.linkPin);
      } catch (e) {
        if (e instanceof BpfError && e.code === 'ENOENT') return true;
        throw e;
      }
      try {
        linkDetach(link);
      } catch (e) {
        if (!(e instanceof BpfError && (e.code === 'ENOLINK' || e.code === 'EINVAL'))) throw e;
      } finally {
        link.close();
      }
      rmSync(r.linkPin, { force: true }); // (the fake backend's pins are not files)
      return false;
    }
    case 'tc':
      return withNetns(r.netns, () => {
        const ifindex = deviceIndexOrNull(r.device);
        if (ifindex === null || ifindex !== r.ifindex) return true;
        const ours = listFilters(ifindex, r.parent).find((f) => f.handle === r.handle && f.priority === r.priority);
        // Only remove the filter if it still runs our program (someone may have replaced it).
        if (!ours || ours.progId !== r.progId) return true;
        deleteFilter(ifindex, r);
        if (r.createdQdisc) {
          const left = [TC_H_MIN_INGRESS, TC_H_MIN_EGRESS].flatMap((min) => listFilters(ifindex, (0xffff0000 | min) >>> 0));
          if (left.length === 0) deleteClsact(ifindex);
        }
        return false;
      });
    case 'device':
      return withNetns(r.netns, () => {
        const ifindex = deviceIndexOrNull(r.device);
        if (ifindex === null) return true;
        if (r.previous.gso !== undefined) setGso(r.device, r.previous.gso);
        setLink(ifindex, { mtu: r.previous.mtu, gsoMaxSize: r.previous.gsoMaxSize });
        return false;
      });
  }
}

function deviceIndexOrNull(device: string): number | null {
  try {
    return deviceIndex(device);
  } catch {
    return null;
  }
}

// ---- unload

/** Detach everything recorded under `pinDir`, then remove every pin in it (programs, maps,
 *  links) and the directory: nothing of the object stays in the kernel once fds are closed. */
export function unload(pinDir: string): DetachResult {
  const result = detach(pinDir);
  if (existsSync(pinDir)) rmSync(pinDir, { recursive: true, force: true });
  return result;
}

export { NetlinkError };
