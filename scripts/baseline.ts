// The xfrm baseline: runs the scenarios in a qemu guest (or natively) and writes the report.
//
//   npm run baseline -- [--accel tcg|kvm] [--native] [--points 1,1000,10000] [--skip-scale]
//                       [--keys FILE] [--out DIR] [--pcap FILE] [--refresh-kernel] [--quiet]
//
// Writes OUT/REPORT.md, OUT/scale.svg and OUT/results.json (default OUT: test/baseline). Exits 1
// when any scenario reports a problem (the report is written regardless and lists them), 2 when
// the baseline cannot run here at all (no qemu, no kernel package, no ESP natively).
//
// Passes: 1. the guest kernel (download once into the cache, unless --native); 2. scenario 1,
// xfrm <-> xfrm; 3. scenario 4's xfrm side at each scale point; 4. the report. The engine's
// columns say "pending engine" until scenarios 2, 3 and the engine side of 4 exist.
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureKernel, KernelUnavailable, type GuestKernel } from '../runtime/baseline/kernel.ts';
import { readCiliumKeys } from '../runtime/baseline/keys.ts';
import { nativeUnavailable } from '../runtime/baseline/native.ts';
import { hasQemu, type Execution } from '../runtime/baseline/qemu.ts';
import { renderReport, renderScaleSvg } from '../runtime/baseline/report.ts';
import { runPair, runScale, SCALE_POINTS, type PairOutcome, type ScaleOutcome } from '../runtime/baseline/scenarios.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface Args {
  accel: Execution;
  points: number[];
  skipScale: boolean;
  keys: string;
  out: string;
  pcap?: string;
  refreshKernel: boolean;
  quiet: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    accel: (process.env.EBPF_TS_BASELINE_ACCEL as Execution | undefined) ?? 'tcg',
    points: [...SCALE_POINTS],
    skipScale: false,
    keys: join(root, 'examples/keys/cilium-ipsec-keys'),
    out: join(root, 'test/baseline'),
    refreshKernel: false,
    quiet: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const next = () => {
      const v = argv[++i];
      if (v === undefined) usage(`${argv[i - 1]} needs a value`);
      return v;
    };
    switch (argv[i]) {
      case '--accel': {
        const v = next();
        if (v !== 'tcg' && v !== 'kvm') usage(`--accel ${v}: tcg or kvm`);
        a.accel = v;
        break;
      }
      case '--native': a.accel = 'native'; break;
      case '--points': a.points = next().split(',').map((s) => Number(s.replace(/_/g, ''))); break;
      case '--skip-scale': a.skipScale = true; break;
      case '--keys': a.keys = resolve(next()); break;
      case '--out': a.out = resolve(next()); break;
      case '--pcap': a.pcap = resolve(next()); break;
      case '--refresh-kernel': a.refreshKernel = true; break;
      case '--quiet': a.quiet = true; break;
      case '-h': case '--help': usage(); break;
      default: usage(`unknown argument ${argv[i]}`);
    }
  }
  if (a.accel !== 'tcg' && a.accel !== 'kvm' && a.accel !== 'native') usage(`EBPF_TS_BASELINE_ACCEL=${a.accel}: tcg or kvm`);
  if (a.points.some((p) => !Number.isInteger(p) || p < 1)) usage('--points: positive integers, e.g. 1,1000,10000');
  return a;
}

function usage(error?: string): never {
  if (error) console.error(`baseline: ${error}`);
  console.error('usage: npm run baseline -- [--accel tcg|kvm] [--native] [--points 1,1000,10000] [--skip-scale]\n' +
    '                          [--keys FILE] [--out DIR] [--pcap FILE] [--refresh-kernel] [--quiet]');
  process.exit(error ? 2 : 0);
}

function hostDescription(): string {
  const model = /model name\s*:\s*(.*)/.exec(execFileSync('cat', ['/proc/cpuinfo']).toString())?.[1] ?? 'unknown CPU';
  return `${model}, ${cpus().length} CPUs, Linux ${execFileSync('uname', ['-r']).toString().trim()}`;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  // TCG timings move with whatever else the host runs; the report says how busy it was.
  const loadBefore = loadavg()[0];
  const say = (s: string) => console.error(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${s}`);
  const onLog = args.quiet ? undefined : (l: string) => console.error(`    guest: ${l}`);
  const key = readCiliumKeys(args.keys);

  let kernel: GuestKernel;
  if (args.accel === 'native') {
    const why = nativeUnavailable();
    if (why) {
      console.error(`baseline: --native: ${why}`);
      return 2;
    }
    kernel = { package: 'host kernel', version: '', release: execFileSync('uname', ['-r']).toString().trim(), vmlinuz: '', root: '' };
  } else {
    if (!hasQemu()) {
      console.error('baseline: qemu-system-x86_64 not found (Debian: apt-get install qemu-system-x86)');
      return 2;
    }
    try {
      kernel = ensureKernel({ refresh: args.refreshKernel, log: say });
    } catch (e) {
      if (e instanceof KernelUnavailable) {
        console.error(`baseline: guest kernel unavailable: ${e.message}`);
        return 2;
      }
      throw e;
    }
  }
  say(`guest kernel ${kernel.package} ${kernel.version} (${kernel.release}); execution: ${args.accel}`);

  say('scenario 1: xfrm <-> xfrm');
  const pair: PairOutcome = await runPair({ kernel, key, accel: args.accel, onLog });
  say(`scenario 1: ${pair.problems.length ? `${pair.problems.length} problem(s)` : 'pass'} in ${(pair.guest.wallMs / 1000).toFixed(0)} s`);
  if (args.pcap) {
    writeFileSync(args.pcap, pair.esp.pcap);
    say(`wrote ${pair.esp.frames.length} ESP frames of node-a's xfrm to ${args.pcap}`);
  }

  let scale: ScaleOutcome | undefined;
  if (!args.skipScale) {
    say(`scenario 4 (xfrm): ${args.points.join(', ')} peers`);
    scale = await runScale({ kernel, key, accel: args.accel, points: args.points, onLog });
    say(`scenario 4: ${scale.problems.length ? `${scale.problems.length} problem(s)` : 'pass'} in ${(scale.guest.wallMs / 1000).toFixed(0)} s`);
  }

  const qemu = args.accel === 'native' ? 'not used' : execFileSync('qemu-system-x86_64', ['--version']).toString().split('\n')[0];
  const enginePending = 'pending engine';
  const report = renderReport({
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    accel: args.accel,
    host: `${hostDescription()}; load average ${loadBefore.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end`,
    qemu,
    kernel,
    aeadDriver: pair.aeadDriver || scale?.aeadDriver || '',
    keyFile: relative(root, args.keys),
    pair,
    scale,
    scaleMissing: args.skipScale ? 'skipped (--skip-scale)' : undefined,
    engine: { pending: enginePending },
    wallSeconds: (Date.now() - started) / 1000,
  });
  mkdirSync(args.out, { recursive: true });
  writeFileSync(join(args.out, 'REPORT.md'), report);
  if (scale) writeFileSync(join(args.out, 'scale.svg'), renderScaleSvg(scale.points, { accel: args.accel, enginePending }));
  writeFileSync(
    join(args.out, 'results.json'),
    JSON.stringify(
      {
        execution: args.accel,
        kernel: { package: kernel.package, version: kernel.version, release: kernel.release },
        aeadDriver: pair.aeadDriver,
        pair: {
          problems: pair.problems,
          ping: pair.ping,
          udp: pair.udp,
          tcp: pair.tcp,
          tcpAToBEspPackets: pair.tcpAToBEspPackets,
          xfrmStat: pair.xfrmStat,
        },
        scale: scale
          ? { problems: scale.problems, points: scale.points, inputStateCache: scale.inputStateCache, activeMissing: scale.activeMissing }
          : null,
        engine: enginePending,
      },
      null,
      2,
    ) + '\n',
  );
  say(`wrote ${relative(root, join(args.out, 'REPORT.md'))}`);
  const problems = [...pair.problems, ...(scale?.problems ?? [])];
  for (const p of problems) console.error(`problem: ${p}`);
  return problems.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(2);
  },
);
