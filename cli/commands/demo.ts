// `ebpf-ts demo`: compile a DSL program, run it in the userspace VM over a traffic mix, and — with
// root and BPF — load it into the kernel, attach it to a veth inside two fresh network namespaces,
// pass real traffic between them, read its counters back, and remove everything it made.
//
// This is the toolchain end to end (compiler → ELF/BTF → VM → loader → tcx). Then the ESP engine
// between two nodes (runtime/demo/engine-demo.ts), or, without root/BPF, the same topology in the
// userspace VM (runtime/demo/vm-engine-demo.ts).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { formatListing } from '../../compiler/asm/listing.ts';
import { runCommand, UsageError } from '../errors.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const EXAMPLE = join(ROOT, 'examples/count-by-proto.ts');
const OBJECT = join(ROOT, 'bpf-out/count-by-proto.o');
const PROGRAM = 'classify';
const COUNTERS = 'counters';

const ETHERTYPES: Record<number, string> = { 0x0800: 'IPv4', 0x86dd: 'IPv6', 0x0806: 'ARP' };

interface Row {
  etherType: number;
  packets: bigint;
  bytes: bigint;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('compile an example and run it in the VM; as root, attach it between namespaces, then run the ESP engine between two nodes')
    .option('--vm-only', 'skip the kernel part even where root and BPF are available')
    .option('--pcap <file>', 'write every frame that crossed the link between the nodes to FILE (pcap), and FILE.esp_sa (Wireshark ESP SAs: demo keys)')
    .option('--tcp-mb <n>', 'megabytes sent pod→pod over TCP', '50')
    .option('--policy <file>', 'the egress policy compiled with the engine (default examples/policy-node-pair.ts; it must choose per-node-pair SAs, which the demo installs)')
    .action((opts: { vmOnly?: boolean; pcap?: string; tcpMb: string; policy?: string }) => runCommand(() => demo(opts)));
}

async function demo(opts: { vmOnly?: boolean; pcap?: string; tcpMb: string; policy?: string }): Promise<void> {
  if (opts.policy) checkDemoPolicy(opts.policy);
  const { compileFile, formatDiagnostic } = await import('../../compiler/compile.ts');
  step(`compile ${rel(EXAMPLE)}`);
  const t0 = performance.now();
  const compiled = compileFile(EXAMPLE, { elf: true });
  if (compiled.failed || !compiled.elf) {
    throw new UsageError(`the example does not compile:\n${compiled.diagnostics.map(formatDiagnostic).join('\n')}`, 1);
  }
  try {
    mkdirSync(dirname(OBJECT), { recursive: true });
    writeFileSync(OBJECT, new Uint8Array(compiled.elf.buffer, compiled.elf.byteOffset, compiled.elf.length));
  } catch (err) {
    // A checkout owned by someone else: the demo still runs, from memory.
    say(`(could not write ${rel(OBJECT)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; continuing from memory)`);
  }
  const prog = compiled.object.programs.find((p) => p.name === PROGRAM)!;
  const slots = prog.instructions.reduce((n, i) => n + (i.opcode === 0x18 ? 2 : 1), 0);
  say(`${rel(OBJECT)}: program ${PROGRAM} (${slots} instructions, section ${prog.section}), ${compiled.object.maps.length} map(s), ${compiled.elf.length} bytes, ${Math.round(performance.now() - t0)} ms`);
  say(formatListing(prog.instructions.slice(0, 8)).split('\n').map((l) => `    ${l}`).join('\n') + '\n    …');

  step('run in the userspace VM over a traffic mix');
  const { trafficMix } = await import('../../runtime/demo/frames.ts');
  const { readObject } = await import('../../compiler/elf/reader.ts');
  const { loadObject: loadVm } = await import('../../runtime/vm/index.ts');
  const vm = loadVm(readObject(compiled.elf));
  for (const f of trafficMix()) {
    const r = vm.runProgram(PROGRAM, { packet: f.bytes });
    say(`${f.label.padEnd(16)} ${String(f.bytes.length).padStart(4)} B → ${Number(r.retval) === 2 ? 'TC_ACT_SHOT (dropped)' : 'TC_ACT_OK'}`);
  }
  const vmMap = vm.map(COUNTERS);
  printCounters('VM counters', [...vmMap.keys()].map((k) => row(k, vmMap.lookup(k)!)));

  const why = opts.vmOnly ? '--vm-only given' : await kernelUnavailable();
  if (why) {
    step(`kernel part skipped: ${why}`);
    say('(the program above ran in the userspace VM only)');
    // The ESP engine demo in the VM instead: the same compiled object, keys and addresses, but
    // each node is a runtime/vm instance and the frames are synthesized (runtime/demo/vm-engine-demo.ts).
    const { runVmEngineDemo, VM_TCP_MB_MAX } = await import('../../runtime/demo/vm-engine-demo.ts');
    const { formatAudit } = await import('../../runtime/audit.ts');
    const mb = Number(opts.tcpMb);
    if (!Number.isFinite(mb) || mb <= 0) throw new UsageError(`--tcp-mb: expected a positive number, got "${opts.tcpMb}"`);
    const vmMb = Math.min(mb, VM_TCP_MB_MAX);
    const policy = opts.policy;
    step(`ESP engine between two nodes in the userspace VM, not the kernel (${why})`);
    say('runtime/vm interprets the compiled engine object (AES through node:crypto in place of the bpf_crypto kfuncs); no namespaces, tcx or sockets:');
    say('synthesized frames go through one node\'s egress program, "the link", and the other node\'s ingress program.');
    if (vmMb < mb) say(`(TCP pod→pod ${vmMb} MB, not ${mb}: the VM runs each full-sized frame in about 2.5 ms)`);
    const r = await runVmEngineDemo({ tcpBytes: Math.round(vmMb * 1024 * 1024), pcap: opts.pcap, source: policy ? resolve(policy) : undefined, step, say });
    for (const [node, rows] of Object.entries(r.audit)) {
      step(`audit of ${node} (VM maps)`);
      say(formatAudit(rows.filter((x) => x.packets > 0n || x.index <= 3), r.sas[node] ?? [], r.rules[node]));
    }
    const bad = Object.entries(r.tcp).filter(([, t]) => !t.intact).map(([p]) => p);
    const lostUdp = Object.entries(r.udp).filter(([, u]) => u.received !== u.sent || u.echoed !== u.sent).map(([p]) => p);
    if (bad.length || lostUdp.length || r.problems.length || r.link.plaintextIpv4 > 0 || r.link.esp !== r.link.frames || r.markerSeen) {
      throw new UsageError(`the VM engine demo failed: ${[...bad.map((p) => `TCP ${p} corrupted`), ...lostUdp.map((p) => `UDP ${p} lost datagrams`), r.problems[0] ?? '', r.link.esp !== r.link.frames ? `${r.link.frames - r.link.esp} non-ESP frames on the link` : '', r.markerSeen ? 'plaintext marker seen on the link' : ''].filter(Boolean).join('; ')}`, 1);
    }
    step('done (in the userspace VM): every path delivered its data, and the link between the nodes carried only ESP');
    return;
  }
  await kernelDemo();
  await engineDemo(opts);
}

/** The ESP engine between two nodes (runtime/demo/engine-demo.ts), then its audit table. */
async function engineDemo(opts: { pcap?: string; tcpMb: string; policy?: string }): Promise<void> {
  const { runEngineDemo } = await import('../../runtime/demo/engine-demo.ts');
  const { formatAudit } = await import('../../runtime/audit.ts');
  const mb = Number(opts.tcpMb);
  if (!Number.isFinite(mb) || mb <= 0) throw new UsageError(`--tcp-mb: expected a positive number, got "${opts.tcpMb}"`);
  step('ESP engine: transparent encryption between two nodes, no xfrm');
  const r = await runEngineDemo({ tcpBytes: Math.round(mb * 1024 * 1024), pcap: opts.pcap, policy: opts.policy ? resolve(opts.policy) : undefined, step, say });
  for (const [node, rows] of Object.entries(r.audit)) {
    step(`audit of ${node}`);
    say(formatAudit(rows.filter((x) => x.packets > 0n || x.index <= 3), [], r.rules[node]).split('\n\nsecurity associations')[0]!);
  }
  const bad = Object.entries(r.tcp).filter(([, t]) => !t.intact).map(([p]) => p);
  const lostUdp = Object.entries(r.udp).filter(([, u]) => u.received !== u.sent).map(([p]) => p);
  if (bad.length || lostUdp.length || r.link.plaintextIpv4 > 0 || r.markerSeen) {
    throw new UsageError(`the engine demo failed: ${[...bad.map((p) => `TCP ${p} corrupted`), ...lostUdp.map((p) => `UDP ${p} lost datagrams`), r.link.plaintextIpv4 ? `${r.link.plaintextIpv4} plaintext frames on the link` : '', r.markerSeen ? 'plaintext marker seen on the link' : ''].filter(Boolean).join('; ')}`, 1);
  }
  step('done: every path delivered its data, and the link between the nodes carried only ESP');
}

async function kernelUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (CAP_BPF, CAP_NET_ADMIN)';
  try {
    if (execFileSync('stat', ['-f', '-c', '%T', '/sys/fs/bpf'], { encoding: 'utf8' }).trim() !== 'bpf_fs') return 'bpffs not mounted at /sys/fs/bpf';
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'needs iproute2 (ip) and bpffs';
  }
  return undefined;
}

async function kernelDemo(): Promise<void> {
  const { loadObject, attachTc, unload } = await import('../../runtime/loader/index.ts');
  const tag = `${process.pid.toString(36)}${Date.now().toString(36).slice(-3)}`;
  const nsA = `ets-demo-${tag}-a`;
  const nsB = `ets-demo-${tag}-b`;
  const pinDir = `/sys/fs/bpf/ets-demo-${tag}`;
  const made: string[] = [];
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  let obj: { close(): void } | undefined;
  try {
    step(`build two network namespaces joined by a veth pair (${nsA}, ${nsB})`);
    for (const ns of [nsA, nsB]) {
      ip('netns', 'add', ns);
      made.push(ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    ip('link', 'add', 'veth-a', 'netns', nsA, 'address', '02:00:00:00:00:0a', 'type', 'veth', 'peer', 'name', 'veth-b', 'netns', nsB, 'address', '02:00:00:00:00:0b');
    ip('-n', nsA, 'addr', 'add', '10.250.0.1/24', 'dev', 'veth-a');
    ip('-n', nsB, 'addr', 'add', '10.250.0.2/24', 'dev', 'veth-b');
    ip('-n', nsA, 'link', 'set', 'veth-a', 'up');
    ip('-n', nsB, 'link', 'set', 'veth-b', 'up');
    // The example drops frames whose destination MAC bytes sum above 600 — broadcast ARP among
    // them — so the neighbours are static.
    ip('-n', nsA, 'neigh', 'add', '10.250.0.2', 'lladdr', '02:00:00:00:00:0b', 'dev', 'veth-a', 'nud', 'permanent');
    ip('-n', nsB, 'neigh', 'add', '10.250.0.1', 'lladdr', '02:00:00:00:00:0a', 'dev', 'veth-b', 'nud', 'permanent');

    step(`load ${rel(OBJECT)} into the kernel (pinned under ${pinDir}) and attach ${PROGRAM} to veth-a ingress`);
    const loaded = loadObject(OBJECT, { pinDir });
    obj = loaded;
    const link = attachTc(loaded.program(PROGRAM).fd, { device: 'veth-a', direction: 'ingress', netns: nsA, pinDir, program: PROGRAM });
    say(`attached through ${link.kind === 'tcx' ? 'a tcx link' : 'clsact + cls_bpf'}`);

    step('send traffic from the second namespace to the first');
    const ping = execFileSync('ip', ['netns', 'exec', nsB, 'ping', '-c', '5', '-i', '0.2', '-W', '2', '10.250.0.1'], { encoding: 'utf8' });
    say(ping.split('\n').find((l) => l.includes('packets transmitted')) ?? ping.trim());
    execFileSync('ip', ['netns', 'exec', nsB, 'bash', '-c', 'for i in 1 2 3; do echo datagram-$i > /dev/udp/10.250.0.1/9999; done'], { stdio: 'ignore' });
    say('3 UDP datagrams sent to 10.250.0.1:9999');

    const counters = loaded.map(COUNTERS);
    printCounters('kernel counters (read back from the BPF map)', [...counters.keys()].map((k) => row(k, counters.lookup(k)!)));
  } finally {
    step('clean up: detach, unpin, delete the namespaces');
    const problems: string[] = [];
    try {
      obj?.close();
      unload(pinDir);
    } catch (e) {
      problems.push((e as Error).message);
    }
    for (const ns of made.reverse()) {
      try {
        ip('netns', 'del', ns);
      } catch (e) {
        problems.push(`netns ${ns}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    say(problems.length === 0 ? 'nothing left behind' : `left behind: ${problems.join('; ')}`);
  }
}

function row(key: Buffer, value: Buffer): Row {
  return { etherType: key.readUInt32LE(0), packets: value.readBigUInt64LE(0), bytes: value.readBigUInt64LE(8) };
}

function printCounters(title: string, rows: Row[]): void {
  say(`${title}:`);
  say(`    ${'ethertype'.padEnd(16)}${'packets'.padStart(8)}${'bytes'.padStart(10)}`);
  for (const r of rows.sort((a, b) => a.etherType - b.etherType)) {
    const name = `0x${r.etherType.toString(16).padStart(4, '0')} ${ETHERTYPES[r.etherType] ?? ''}`;
    say(`    ${name.padEnd(16)}${String(r.packets).padStart(8)}${String(r.bytes).padStart(10)}`);
  }
  if (rows.length === 0) say('    (no entries)');
}

const rel = (p: string): string => p.replace(`${ROOT}/`, '');
const step = (s: string): void => console.log(`\n==> ${s}`);
const say = (s: string): void => console.log(s);

/**
 * The demo routes each node's pod prefix through the ipcache and installs per-node-pair SAs
 * ({kind NODE, node IP}) from the Cilium key file: a policy keyed otherwise would only show
 * fail-closed drops. Say so before compiling anything.
 */
function checkDemoPolicy(file: string): void {
  const path = resolve(file);
  if (!existsSync(path)) throw new UsageError(`--policy: no such file ${file}`, 1);
  const source = readFileSync(path, 'utf8');
  if (!/\bipcache\b/.test(source) || !/\bENCRYPT_KEY_NODE\b/.test(source)) {
    throw new UsageError(
      `--policy ${file}: the demo installs per-node-pair SAs (encrypt_sa {kind ENCRYPT_KEY_NODE, node IP}) and routes pods through the ipcache; ` +
        'this policy chooses other SA keys (e.g. examples/policy-subnet.ts, policy-identity.ts: their tests are test/engine-policy.test.ts)',
      1,
    );
  }
}
