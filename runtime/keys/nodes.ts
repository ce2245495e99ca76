// The node directory: node name → outer IPv4 address, and optionally the device towards it. SAs
// name node pairs (runtime/keys/sa.ts); the engine's maps are keyed by addresses, so binding SAs to
// the maps needs this table. A node whose name is itself an IPv4 address needs no entry.
//
// File format (one node per line, `#` starts a comment):
//
//   # name      address     [device]
//   node-a      10.0.0.1
//   node-b      10.0.0.2    eth1
//
// The device is a name (resolved to its ifindex through /sys/class/net) or a number (an ifindex).
// On the command line the same entry is `--node-addr node-b=10.0.0.2,eth1`.
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';

export interface NodeAddress {
  name: string;
  /** Outer (tunnel endpoint) address. */
  ip: string;
  /** Output device towards the node; 0 or absent: the engine does a FIB lookup. */
  ifindex?: number;
}

/** A device name or number → ifindex. */
export type IfindexResolver = (device: string) => number;

export const sysfsIfindex: IfindexResolver = (device) => {
  if (/^\d+$/.test(device)) return Number(device);
  if (!/^[^/\s]{1,15}$/.test(device)) throw new Error(`"${device}" is not a network device name`);
  try {
    return Number(readFileSync(`/sys/class/net/${device}/ifindex`, 'utf8').trim());
  } catch {
    throw new Error(`no network device "${device}"`);
  }
};

/** The IPv4 address as the 32-bit number the maps store big-endian. */
export function ipv4ToNumber(ip: string): number {
  if (!isIPv4(ip)) throw new Error(`"${ip}" is not an IPv4 address`);
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

export function numberToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

export class NodeDirectory {
  readonly #byName = new Map<string, NodeAddress>();
  readonly #byIp = new Map<string, NodeAddress>();

  constructor(nodes: Iterable<NodeAddress> = []) {
    for (const n of nodes) this.add(n);
  }

  add(node: NodeAddress): void {
    if (!node.name || /\s/.test(node.name)) throw new Error(`node name "${node.name}" is empty or has spaces`);
    if (!isIPv4(node.ip)) throw new Error(`node ${node.name}: "${node.ip}" is not an IPv4 address`);
    if (isIPv4(node.name) && node.name !== node.ip) throw new Error(`node ${node.name}: a node named by an address must have that address, not ${node.ip}`);
    if (node.ifindex !== undefined && (!Number.isInteger(node.ifindex) || node.ifindex < 0 || node.ifindex > 0xffffffff))
      throw new Error(`node ${node.name}: ifindex ${node.ifindex} is not a u32`);
    const known = this.#byName.get(node.name);
    if (known) throw new Error(`node ${node.name} is listed twice`);
    const other = this.#byIp.get(node.ip);
    if (other) throw new Error(`nodes ${other.name} and ${node.name} both have address ${node.ip}`);
    const entry = { ...node };
    this.#byName.set(node.name, entry);
    this.#byIp.set(node.ip, entry);
  }

  /** The node's address entry; a name that is an IPv4 address stands for itself. */
  resolve(name: string): NodeAddress {
    const n = this.#byName.get(name);
    if (n) return n;
    if (isIPv4(name)) return this.#byIp.get(name) ?? { name, ip: name };
    throw new Error(`node ${name}: no address (add it to the node directory: --nodes FILE or --node-addr ${name}=IP)`);
  }

  /** The name for an address seen in a map key; the address itself when no node has it. */
  nameOf(ip: string): string {
    return this.#byIp.get(ip)?.name ?? ip;
  }

  list(): NodeAddress[] {
    return [...this.#byName.values()].map((n) => ({ ...n }));
  }
}

/** One `name address [device]` entry; `where` prefixes errors (file:line or the flag). */
function parseEntry(fields: string[], where: string, ifindexOf: IfindexResolver): NodeAddress {
  if (fields.length < 2 || fields.length > 3) throw new Error(`${where}: expected "NAME ADDRESS [DEVICE]", got ${fields.length} field${fields.length === 1 ? '' : 's'}`);
  const [name, ip, device] = fields;
  if (!isIPv4(ip)) throw new Error(`${where}: address "${ip}" is not an IPv4 address`);
  let ifindex: number | undefined;
  if (device !== undefined) {
    try {
      ifindex = ifindexOf(device);
    } catch (err) {
      throw new Error(`${where}: device: ${(err as Error).message}`);
    }
  }
  return { name, ip, ...(ifindex === undefined ? {} : { ifindex }) };
}

/** Parse the directory text; errors name the line. */
export function parseNodeDirectory(text: string, origin = 'nodes', ifindexOf: IfindexResolver = sysfsIfindex): NodeDirectory {
  const dir = new NodeDirectory();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    const where = `${origin}:${i + 1}`;
    const entry = parseEntry(line.split(/\s+/), where, ifindexOf);
    try {
      dir.add(entry);
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message}`);
    }
  });
  return dir;
}

/** `NAME=ADDRESS[,DEVICE]` as given to --node-addr. */
export function parseNodeFlag(text: string, ifindexOf: IfindexResolver = sysfsIfindex): NodeAddress {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new Error(`--node-addr: expected NAME=ADDRESS[,DEVICE], got "${text}"`);
  return parseEntry([text.slice(0, eq), ...text.slice(eq + 1).split(',')], '--node-addr', ifindexOf);
}

/** The directory from an optional file plus --node-addr flags (flags may add nodes, not repeat them). */
export function loadNodeDirectory(file: string | undefined, flags: string[] = [], ifindexOf: IfindexResolver = sysfsIfindex): NodeDirectory {
  let dir = new NodeDirectory();
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`--nodes ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
    dir = parseNodeDirectory(text, file, ifindexOf);
  }
  for (const f of flags) {
    const entry = parseNodeFlag(f, ifindexOf);
    try {
      dir.add(entry);
    } catch (err) {
      throw new Error(`--node-addr ${f}: ${(err as Error).message}`);
    }
  }
  return dir;
}
