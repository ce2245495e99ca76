// One CPU's share of test/engine-replay-race.test.ts: opens the pinned ingress program, says
// `ready`, reads the common start time (ms since the epoch) from stdin and waits for it, then runs
// every ESP packet of the file once, in order, and prints which ones it delivered (retval 0 and
// the decapsulated length) as JSON on stdout.
//
//   tsx test/support/replay-child.ts <pinned prog> <packets file> <frame length>
import { readFileSync } from 'node:fs';
import { objGet } from '../../runtime/sys/obj.ts';
import { progTestRun } from '../../runtime/sys/prog.ts';

const [progPath, packetsPath, frameLen] = process.argv.slice(2) as [string, string, string];
const raw = readFileSync(packetsPath);
const packets: Buffer[] = [];
for (let off = 0; off < raw.length; ) {
  const n = raw.readUInt32LE(off);
  packets.push(raw.subarray(off + 4, off + 4 + n));
  off += 4 + n;
}
const prog = objGet(progPath);
process.stdout.write('ready\n');
const startAt = await new Promise<number>((done) => process.stdin.once('data', (d) => done(Number(String(d).trim()))));
process.stdin.destroy();
while (Date.now() < startAt); // the barrier: both children start together
const began = Date.now();
const delivered: number[] = [];
let dropped = 0;
for (let i = 0; i < packets.length; i++) {
  const r = progTestRun(prog, { dataIn: packets[i]!, dataSizeOut: packets[i]!.length + 256 });
  if (r.retval === 0 && r.dataOut.length === Number(frameLen)) delivered.push(i);
  else if (r.retval === 2) dropped++;
  else throw new Error(`packet ${i}: retval ${r.retval}, ${r.dataOut.length} bytes`);
}
const ended = Date.now();
prog.close();
process.stdout.write(JSON.stringify({ began, ended, delivered, dropped }));
