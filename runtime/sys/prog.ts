// BPF_PROG_LOAD and BPF_PROG_TEST_RUN.
import { BPF_PROG_LOAD, BPF_PROG_TEST_RUN } from './constants.ts';
import { BpfError } from './errors.ts';
import { FD, fdValue, type FdLike } from './fd.ts';
import { withLog } from './log.ts';
import { writeObjectName } from './map.ts';
import { bpf, writePointer } from './syscall.ts';

export interface ProgLoadOptions {
  type: number; // bpf_prog_type
  /** Bytecode, 8 bytes a slot (compiler/asm encode()). */
  insns: Buffer;
  license: string; // "GPL" unlocks GPL-only helpers
  name?: string;
  flags?: number; // prog_flags: BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS, …
  expectedAttachType?: number;
  ifindex?: number; // offload
  /** BTF for func_info/line_info, from btfLoad. */
  btfFd?: FdLike;
  /** struct bpf_func_info records ({insn_off, type_id}), funcInfoRecSize bytes each. */
  funcInfo?: Buffer;
  funcInfoRecSize?: number; // default 8
  /** struct bpf_line_info records ({insn_off, file_name_off, line_off, line_col}). */
  lineInfo?: Buffer;
  lineInfoRecSize?: number; // default 16
  attachBtfId?: number;
  /** attach_prog_fd (freplace, fentry on a BPF prog) or attach_btf_obj_fd (module BTF). */
  attachFd?: FdLike;
  /** int[]: fds that BPF_PSEUDO_MAP_IDX / kfunc offsets index into. */
  fdArray?: readonly FdLike[];
  /** Verifier log: level 0 (default) logs only after a failure; 1 or 2 log always. */
  logLevel?: number;
  logSize?: number;
}

export interface LoadedProgram {
  fd: FD;
  /** The verifier log when logLevel > 0 was asked for; empty otherwise. */
  log: string[];
}

const FUNC_INFO_REC_SIZE = 8; // sizeof(struct bpf_func_info)
const LINE_INFO_REC_SIZE = 16; // sizeof(struct bpf_line_info)

/** The attr for BPF_PROG_LOAD with the log fields left to the caller (offsets 24, 28, 32). */
export function progLoadAttr(o: ProgLoadOptions): Buffer {
  if (o.insns.length === 0 || o.insns.length % 8 !== 0) throw new RangeError(`program bytecode is ${o.insns.length} bytes, not a non-zero multiple of 8`);
  // 144 = offsetofend(log_true_size) (6.4). Older kernels accept the longer attr because we leave
  // the tail zero; 6.4+ write the log's full size there, which sizes the retry exactly.
  const attr = Buffer.alloc(144);
  const license = Buffer.from(`${o.license}\0`, 'latin1');
  const funcRec = o.funcInfoRecSize ?? FUNC_INFO_REC_SIZE;
  const lineRec = o.lineInfoRecSize ?? LINE_INFO_REC_SIZE;
  attr.writeUInt32LE(o.type, 0); //                                   prog_type
  attr.writeUInt32LE(o.insns.length / 8, 4); //                       insn_cnt
  writePointer(attr, 8, o.insns); //                                  insns
  writePointer(attr, 16, license); //                                 license
  // 24 log_level u32, 28 log_size u32, 32 log_buf u64: set per attempt
  // 40 kern_version: only checked for kprobes before 5.0
  attr.writeUInt32LE(o.flags ?? 0, 44); //                            prog_flags
  writeObjectName(attr, 48, o.name); //                               prog_name[16]
  attr.writeUInt32LE(o.ifindex ?? 0, 64); //                          prog_ifindex
  attr.writeUInt32LE(o.expectedAttachType ?? 0, 68); //               expected_attach_type
  attr.writeUInt32LE(o.btfFd === undefined ? 0 : fdValue(o.btfFd), 72); // prog_btf_fd
  if (o.funcInfo && o.funcInfo.length > 0) {
    attr.writeUInt32LE(funcRec, 76); //                               func_info_rec_size
    writePointer(attr, 80, o.funcInfo); //                            func_info
    attr.writeUInt32LE(o.funcInfo.length / funcRec, 88); //           func_info_cnt
  }
  if (o.lineInfo && o.lineInfo.length > 0) {
    attr.writeUInt32LE(lineRec, 92); //                               line_info_rec_size
    writePointer(attr, 96, o.lineInfo); //                            line_info
    attr.writeUInt32LE(o.lineInfo.length / lineRec, 104); //          line_info_cnt
  }
  attr.writeUInt32LE(o.attachBtfId ?? 0, 108); //                     attach_btf_id
  attr.writeUInt32LE(o.attachFd === undefined ? 0 : fdValue(o.attachFd), 112); // attach_prog_fd / attach_btf_obj_fd
  // 116 core_relo_cnt: CO-RE is resolved in user space here
  if (o.fdArray && o.fdArray.length > 0) {
    const fds = Buffer.alloc(4 * o.fdArray.length);
    o.fdArray.forEach((fd, i) => fds.writeInt32LE(fdValue(fd), 4 * i));
    writePointer(attr, 120, fds); //                                  fd_array
  }
  // 128 core_relos u64, 136 core_relo_rec_size u32, 140 log_true_size u32 (out)
  return attr;
}

/** BPF_PROG_LOAD with libbpf's log protocol (see log.ts). Throws VerifierError with the log when
 *  the verifier rejects the program, BpfError otherwise. */
export function progLoad(o: ProgLoadOptions): LoadedProgram {
  const attr = progLoadAttr(o);
  const { result, log } = withLog(
    'BPF_PROG_LOAD',
    { level: o.logLevel ?? 0, size: o.logSize },
    ({ level, buffer }) => {
      attr.writeUInt32LE(level, 24); //           log_level
      attr.writeUInt32LE(buffer?.length ?? 0, 28); // log_size
      writePointer(attr, 32, buffer); //          log_buf
      attr.writeUInt32LE(0, 140); //              log_true_size
      try {
        return { result: bpf(BPF_PROG_LOAD, attr), trueSize: 0 };
      } catch (e) {
        if (!(e instanceof BpfError)) throw e;
        return { error: e, trueSize: attr.readUInt32LE(140) };
      }
    },
    o.name ? `program ${o.name}` : undefined,
  );
  return { fd: new FD(result), log };
}

// ---- test run ------------------------------------------------------------------------------------

export interface TestRunOptions {
  /** Packet (or other input) the program sees. */
  dataIn?: Buffer;
  /** Room for the output packet; default dataIn + 4 KiB so a grown packet fits. On ENOSPC the
   *  run is repeated once with the size the kernel reported. */
  dataSizeOut?: number;
  ctxIn?: Buffer;
  ctxSizeOut?: number;
  repeat?: number;
  flags?: number; // BPF_F_TEST_RUN_ON_CPU, BPF_F_TEST_XDP_LIVE_FRAMES, …
  cpu?: number;
  batchSize?: number; // XDP live frames
}

export interface TestRunResult {
  retval: number;
  /** Mean ns per run. */
  duration: number;
  dataOut: Buffer;
  ctxOut: Buffer | null;
}

const TEST_RUN_HEADROOM = 4096;

/** BPF_PROG_TEST_RUN. Note a retry after ENOSPC runs the program again: side effects (map
 *  writes) happen twice. Size dataSizeOut for the expected output to avoid that. */
export function progTestRun(prog: FdLike, o: TestRunOptions = {}): TestRunResult {
  let dataCap = o.dataSizeOut ?? (o.dataIn?.length ?? 0) + TEST_RUN_HEADROOM;
  let ctxCap = o.ctxSizeOut ?? o.ctxIn?.length ?? 0;
  for (let attempt = 0; ; attempt++) {
    const dataOut = Buffer.alloc(dataCap);
    const ctxOut = ctxCap > 0 ? Buffer.alloc(ctxCap) : null;
    // attr.test:
    //	 0 prog_fd | 4 retval (out) | 8 data_size_in | 12 data_size_out (in/out)
    //	16 data_in u64 | 24 data_out u64 | 32 repeat | 36 duration (out)
    //	40 ctx_size_in | 44 ctx_size_out (in/out) | 48 ctx_in u64 | 56 ctx_out u64
    //	64 flags | 68 cpu | 72 batch_size | 76 pad | 80
    const attr = Buffer.alloc(80);
    attr.writeUInt32LE(fdValue(prog), 0);
    attr.writeUInt32LE(o.dataIn?.length ?? 0, 8);
    attr.writeUInt32LE(dataOut.length, 12);
    writePointer(attr, 16, o.dataIn);
    writePointer(attr, 24, dataOut);
    attr.writeUInt32LE(o.repeat ?? 0, 32);
    attr.writeUInt32LE(o.ctxIn?.length ?? 0, 40);
    attr.writeUInt32LE(ctxOut?.length ?? 0, 44);
    writePointer(attr, 48, o.ctxIn);
    writePointer(attr, 56, ctxOut);
    attr.writeUInt32LE(o.flags ?? 0, 64);
    attr.writeUInt32LE(o.cpu ?? 0, 68);
    attr.writeUInt32LE(o.batchSize ?? 0, 72);
    try {
      bpf(BPF_PROG_TEST_RUN, attr);
    } catch (e) {
      // ENOSPC: an output did not fit; the kernel wrote the sizes it needed.
      if (e instanceof BpfError && e.code === 'ENOSPC' && attempt === 0) {
        dataCap = Math.max(dataCap, attr.readUInt32LE(12));
        ctxCap = Math.max(ctxCap, attr.readUInt32LE(44));
        continue;
      }
      throw e;
    }
    const dataSize = attr.readUInt32LE(12);
    const ctxSize = attr.readUInt32LE(44);
    return {
      retval: attr.readUInt32LE(4),
      duration: attr.readUInt32LE(36),
      dataOut: dataOut.subarray(0, Math.min(dataSize, dataOut.length)),
      ctxOut: ctxOut ? ctxOut.subarray(0, Math.min(ctxSize, ctxOut.length)) : null,
    };
  }
}
