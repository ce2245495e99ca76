// The xfrm baseline: runs the scenarios in a qemu guest (or natively) and writes the report.
//
//   npm run baseline -- [--accel tcg|kvm] [--native] [--points 1,1000,10000] [--skip-scale]
//                       [--keys FILE] [--out DIR] [--pcap FILE] [--refresh-kernel] [--quiet]
//
// Writes OUT/REPORT.md, OUT/scale.svg and OUT/results.json (default OUT: test/baseline). Exits 1
// when any scenario reports a problem (the report is written regardless and lists them), 2 when
// the baseline cannot run here at all (no qemu, no kernel package, no ESP natively).
//
// Passes: 1. the guest kernel (download once into the cache, unless --native) and the engine,
// compiled from engine/esp.ts now (never a stale bpf-out/engine.o); 2. scenario 1, xfrm <-> xfrm;
// 3. scenario 2, engine <-> xfrm; 4. scenario 3, engine <-> engine; 5. scenario 4 at each scale
// point, xfrm and then the engine; 6. the report.
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
import { compileEngine } from '../runtime/baseline/engine-bundle.ts';
import {
  ENGINE_PAIR,
  ENGINE_XFRM,
  runEngineScale,
  runPair,
  runScale,
  SCALE_POINTS,
  type PairOutcome,
  type ScaleOutcome,
} from '../runtime/baseline/scenarios.ts';

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

  say('compile engine/esp.ts');
  let engineObject: Buffer | undefined;
  let engineMissing: string | undefined;
  try {
    engineObject = await compileEngine();
    say(`engine: ${engineObject.length} bytes`);
  } catch (e) {
    engineMissing = `engine/esp.ts does not compile: ${(e as Error).message.split('\n').slice(0, 3).join(' ')}`;
    say(engineMissing);
  }
  const outcome = (o: PairOutcome) => `${o.problems.length ? `${o.problems.length} problem(s)` : 'pass'} in ${(o.guest.wallMs / 1000).toFixed(0)} s`;
  /** An engine scenario that throws (the engine did not come up) is reported, not fatal. */
  const attempt = async <T>(what: string, fn: () => Promise<T>): Promise<{ value?: T; missing?: string }> => {
    if (!engineObject) return { missing: engineMissing };
    try {
      return { value: await fn() };
    } catch (e) {
      const missing = (e as Error).message.split('\n').slice(0, 6).join(' ').slice(0, 600);
      say(`${what}: failed: ${missing}`);
      return { missing: `failed: ${missing}` };
    }
  };

  say('scenario 1: xfrm <-> xfrm');
  const pair: PairOutcome = await runPair({ kernel, key, accel: args.accel, onLog });
  say(`scenario 1: ${outcome(pair)}`);
  if (args.pcap) {
    writeFileSync(args.pcap, pair.esp.pcap);
    say(`wrote ${pair.esp.frames.length} ESP frames of node-a's xfrm to ${args.pcap}`);
  }
  say('scenario 2: engine (node-a) <-> xfrm (node-b)');
  const s2 = await attempt('scenario 2', () => runPair({ kernel, key, accel: args.accel, onLog, roles: ENGINE_XFRM, engineObject }));
  if (s2.value) say(`scenario 2: ${outcome(s2.value)}`);
  say('scenario 3: engine <-> engine');
  const s3 = await attempt('scenario 3', () => runPair({ kernel, key, accel: args.accel, onLog, roles: ENGINE_PAIR, engineObject }));
  if (s3.value) say(`scenario 3: ${outcome(s3.value)}`);

  let scale: ScaleOutcome | undefined;
  let engineScale: { value?: ScaleOutcome; missing?: string } = { missing: 'skipped (--skip-scale)' };
  if (!args.skipScale) {
    say(`scenario 4 (xfrm): ${args.points.join(', ')} peers`);
    scale = await runScale({ kernel, key, accel: args.accel, points: args.points, onLog });
    say(`scenario 4 (xfrm): ${scale.problems.length ? `${scale.problems.length} problem(s)` : 'pass'} in ${(scale.guest.wallMs / 1000).toFixed(0)} s`);
    say(`scenario 4 (engine): ${args.points.join(', ')} peers`);
    engineScale = await attempt('scenario 4 (engine)', () => runEngineScale({ kernel, key, accel: args.accel, points: args.points, onLog, engineObject }));
    const es = engineScale.value;
    if (es) say(`scenario 4 (engine): ${es.problems.length ? `${es.problems.length} problem(s)` : 'pass'} in ${(es.guest.wallMs / 1000).toFixed(0)} s`);
  }

  const qemu = args.accel === 'native' ? 'not used' : execFileSync('qemu-system-x86_64', ['--version']).toString().split('\n')[0];
  const report = renderReport({
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    accel: args.accel,
    host: `${hostDescription()}; load average ${loadBefore.toFixed(1)} at start, ${loadavg()[0].toFixed(1)} at end`,
    qemu,
    kernel,
    aeadDriver: pair.aeadDriver || scale?.aeadDriver || '',
    keyFile: relative(root, args.keys),
    pair,
    engineXfrm: s2.value,
    engineXfrmMissing: s2.missing,
    enginePair: s3.value,
    enginePairMissing: s3.missing,
    scale,
    scaleMissing: args.skipScale ? 'skipped (--skip-scale)' : undefined,
    engineScale: engineScale.value,
    engineScaleMissing: engineScale.missing,
    wallSeconds: (Date.now() - started) / 1000,
  });
  mkdirSync(args.out, { recursive: true });
  writeFileSync(join(args.out, 'REPORT.md'), report);
  if (scale || engineScale.value) {
    writeFileSync(join(args.out, 'scale.svg'), renderScaleSvg(scale?.points ?? [], { accel: args.accel, enginePoints: engineScale.value?.points, enginePending: engineScale.missing }));
  }
  const pairJson = (o: PairOutcome | undefined) =>
    o && {
      problems: o.problems,
      ping: o.ping,
      udp: o.udp,
      tcp: o.tcp,
      tcpAToBEspPackets: o.tcpAToBEspPackets,
      tcpBToAEspPackets: o.tcpBToAEspPackets,
      xfrmStat: o.xfrmStat,
      engine: o.engine,
      engineLoad: o.engineLoad,
      negative: o.negative,
      replayDropped: o.replayDropped,
      guestSeconds: o.guest.wallMs / 1000,
    };
  const scaleJson = (o: ScaleOutcome | undefined) =>
    o && { problems: o.problems, points: o.points, inputStateCache: o.inputStateCache, activeMissing: o.activeMissing, guestSeconds: o.guest.wallMs / 1000 };
  writeFileSync(
    join(args.out, 'results.json'),
    JSON.stringify(
      {
        execution: args.accel,
        kernel: { package: kernel.package, version: kernel.version, release: kernel.release },
        aeadDriver: pair.aeadDriver,
        pair: pairJson(pair),
        engineXfrm: pairJson(s2.value) ?? { missing: s2.missing },
        enginePair: pairJson(s3.value) ?? { missing: s3.missing },
        scale: scaleJson(scale) ?? null,
        engineScale: scaleJson(engineScale.value) ?? { missing: engineScale.missing },
        wallSeconds: (Date.now() - started) / 1000,
      },
      null,
      2,
    ) + '\n',
  );
  say(`wrote ${relative(root, join(args.out, 'REPORT.md'))}`);
  const problems = [
    ...pair.problems,
    ...(s2.value?.problems ?? (s2.missing ? [`scenario 2: ${s2.missing}`] : [])),
    ...(s3.value?.problems ?? (s3.missing ? [`scenario 3: ${s3.missing}`] : [])),
    ...(scale?.problems ?? []),
    ...(engineScale.value?.problems ?? (engineScale.missing && !args.skipScale ? [`scenario 4 (engine): ${engineScale.missing}`] : [])),
  ];
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
