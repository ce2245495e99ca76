// One end of a checksummed transfer, run inside a namespace by runtime/demo/transfer.ts:
//   tcp-server PORT            accept one connection, read to EOF, print {bytes, sha256}
//   tcp-client HOST PORT BYTES send BYTES pseudo-random bytes, print {bytes, sha256, seconds}
//   udp-server PORT COUNT MS   collect up to COUNT datagrams for MS milliseconds, print their payloads
//   udp-client HOST PORT TEXT… send each TEXT as one datagram
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';

const [mode, ...args] = process.argv.slice(2);
const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

switch (mode) {
  case 'tcp-server': {
    const server = createServer((sock) => {
      const hash = createHash('sha256');
      let bytes = 0;
      sock.on('data', (d) => {
        bytes += d.length;
        hash.update(d);
      });
      sock.on('end', () => {
        out({ bytes, sha256: hash.digest('hex') });
        sock.end();
        server.close();
      });
    });
    server.listen(Number(args[0]), () => out({ listening: true }));
    break;
  }
  case 'tcp-client': {
    const [host, port, total] = [args[0]!, Number(args[1]), Number(args[2])];
    const hash = createHash('sha256');
    const block = Buffer.alloc(64 * 1024);
    let seed = 0x9e3779b9;
    let sent = 0;
    const started = process.hrtime.bigint();
    const sock = connect(port, host, () => {
      const pump = () => {
        while (sent < total) {
          for (let i = 0; i < block.length; i += 4) {
            seed ^= seed << 13;
            seed ^= seed >>> 17;
            seed ^= seed << 5;
            block.writeInt32LE(seed | 0, i);
          }
          const chunk = block.subarray(0, Math.min(block.length, total - sent));
          hash.update(chunk);
          sent += chunk.length;
          if (!sock.write(Buffer.from(chunk))) return void sock.once('drain', pump);
        }
        sock.end();
      };
      pump();
    });
    sock.on('close', () => out({ bytes: sent, sha256: hash.digest('hex'), seconds: Number(process.hrtime.bigint() - started) / 1e9 }));
    sock.on('error', (e) => {
      process.stderr.write(`${e.message}\n`);
      process.exitCode = 1;
    });
    break;
  }
  case 'udp-server': {
    const [port, count, ms] = [Number(args[0]), Number(args[1]), Number(args[2])];
    const got: string[] = [];
    const sock = createSocket('udp4');
    const done = () => {
      out({ datagrams: got });
      sock.close();
    };
    const timer = setTimeout(done, ms);
    sock.on('message', (m) => {
      got.push(m.toString('utf8'));
      if (got.length >= count) {
        clearTimeout(timer);
        done();
      }
    });
    sock.bind(port, () => out({ listening: true }));
    break;
  }
  case 'udp-client': {
    const [host, port, ...texts] = args;
    const sock = createSocket('udp4');
    let pending = texts.length;
    for (const t of texts) sock.send(t, Number(port), host, () => --pending === 0 && sock.close());
    break;
  }
  default:
    process.stderr.write(`transfer-agent: unknown mode ${mode}\n`);
    process.exitCode = 2;
}
