// Kernel object names (char[16] of [A-Za-z0-9_.]) and bpffs paths derived from object names.
import { basename } from 'node:path';

/** Where objects are pinned, one directory each; EBPF_TS_PIN_ROOT overrides it (tests). */
export const DEFAULT_PIN_ROOT = process.env.EBPF_TS_PIN_ROOT || '/sys/fs/bpf/ebpf-ts';

/** "counter.o" → "counter": the object's name, used for its pin directory and map prefixes. */
export function objectNameOf(path: string): string {
  return basename(path).replace(/\.(o|bpf\.o|ts)$/, '').replace(/[^A-Za-z0-9_.-]/g, '_') || 'object';
}

/** A valid kernel object name: invalid bytes become '_', at most 15 bytes. */
export function kernelName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.]/g, '_').slice(0, 15);
}

/** libbpf's internal map name: up to 8 bytes of the object name, then the section (".rodata"). */
export function globalMapName(objectName: string, section: string): string {
  const suffix = section.replace(/[^A-Za-z0-9_.]/g, '_').slice(0, 15);
  const prefix = objectName.replace(/[^A-Za-z0-9_]/g, '_').slice(0, Math.min(8, 15 - suffix.length));
  return `${prefix}${suffix}`;
}

/** A file name in bpffs for a map, program or link name. bpffs refuses names with a dot (EPERM:
 *  "reserved for future extensions"), so ".rodata" pins as "_rodata", as libbpf sanitises. */
export function pinFileName(name: string): string {
  return name.replace(/[^A-Za-z0-9_@-]/g, '_');
}
