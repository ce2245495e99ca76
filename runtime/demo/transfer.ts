// Checksummed TCP transfers and UDP exchanges between namespaces, with both ends run by
// runtime/demo/transfer-agent.ts inside their namespace (no netcat or iperf needed).
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const AGENT = join(dirname(fileURLToPath(import.meta.url)), 'transfer-agent.ts');

interface Agent {
  lines: AsyncGenerator<Record<string, unknown>>;
  done: Promise<number>;
  kill(): void;
}

function agent(ns: string, args: string[]): Agent {
  const child = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, '--import', 'tsx', AGENT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  async function* lines() {
    let buf = '';
    for await (const chunk of child.stdout) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        yield JSON.parse(line) as Record<string, unknown>;
      }
    }
    const code = await done;
    if (code !== 0) throw new Error(`transfer agent ${args[0]} in ${ns} exited ${code}: ${stderr.trim().split('\n').pop()}`);
  }
  return { lines: lines(), done, kill: () => child.kill('SIGKILL') };
}

async function next(a: Agent, what: string, ms: number): Promise<Record<string, unknown>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)));
  try {
    const r = await Promise.race([a.lines.next(), timeout]);
    if (r.done) throw new Error(`${what}: agent ended without output`);
    return r.value;
  } finally {
    clearTimeout(timer);
  }
}

export interface TcpResult {
  bytes: number;
  intact: boolean;
  seconds: number;
  /** Megabits per second, payload only. */
  mbps: number;
}

/** Send `bytes` over TCP from one namespace to another and check the SHA-256 on both ends. */
export async function tcpTransfer(fromNs: string, toNs: string, toIp: string, bytes: number, port = 5201, timeoutMs = 120_000): Promise<TcpResult> {
  const server = agent(toNs, ['tcp-server', String(port)]);
  try {
    await next(server, 'tcp server', 15_000);
    const client = agent(fromNs, ['tcp-client', toIp, String(port), String(bytes)]);
    try {
      const sent = await next(client, 'tcp client', timeoutMs);
      const received = await next(server, 'tcp server', 15_000);
      const seconds = Number(sent.seconds);
      return { bytes: Number(received.bytes), intact: received.sha256 === sent.sha256 && received.bytes === bytes, seconds, mbps: (bytes * 8) / seconds / 1e6 };
    } finally {
      client.kill();
    }
  } finally {
    server.kill();
  }
}

/** Send datagrams from one namespace and return what arrived at the other within `ms`. */
export async function udpExchange(fromNs: string, toNs: string, toIp: string, texts: string[], port = 5300, ms = 3000): Promise<string[]> {
  const server = agent(toNs, ['udp-server', String(port), String(texts.length), String(ms)]);
  try {
    await next(server, 'udp server', 15_000);
    const client = agent(fromNs, ['udp-client', toIp, String(port), ...texts]);
    await client.done;
    const r = await next(server, 'udp server', ms + 15_000);
    return r.datagrams as string[];
  } finally {
    server.kill();
  }
}
