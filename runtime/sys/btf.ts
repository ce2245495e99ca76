// BPF_BTF_LOAD: hand the kernel a BTF blob (types for maps, func_info, line_info).
import { BPF_BTF_LOAD } from './constants.ts';
import { BpfError } from './errors.ts';
import { FD } from './fd.ts';
import { withLog } from './log.ts';
import { bpf, writePointer } from './syscall.ts';

export interface BtfLoadOptions {
  /** 0 (default): log only after a failure. */
  logLevel?: number;
  logSize?: number;
}

export interface LoadedBtf {
  fd: FD;
  log: string[];
}

/** BPF_BTF_LOAD with the same log protocol as programs. Throws VerifierError (command
 *  BPF_BTF_LOAD) with the BTF checker's log when the blob is rejected. */
export function btfLoad(blob: Buffer, o: BtfLoadOptions = {}): LoadedBtf {
  // 0 btf u64 | 8 btf_log_buf u64 | 16 btf_size u32 | 20 btf_log_size u32
  // 24 btf_log_level u32 | 28 btf_log_true_size u32 (out, 6.4+) | 32
  const attr = Buffer.alloc(32);
  writePointer(attr, 0, blob);
  attr.writeUInt32LE(blob.length, 16);
  const { result, log } = withLog('BPF_BTF_LOAD', { level: o.logLevel ?? 0, size: o.logSize }, ({ level, buffer }) => {
    writePointer(attr, 8, buffer);
    attr.writeUInt32LE(buffer?.length ?? 0, 20);
    attr.writeUInt32LE(level, 24);
    attr.writeUInt32LE(0, 28);
    try {
      return { result: bpf(BPF_BTF_LOAD, attr), trueSize: 0 };
    } catch (e) {
      if (!(e instanceof BpfError)) throw e;
      return { error: e, trueSize: attr.readUInt32LE(28) };
    }
  });
  return { fd: new FD(result), log };
}
