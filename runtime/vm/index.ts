// runtime/vm: a userspace BPF interpreter (RFC 9669, cpu v4) with the kernel's helpers, maps
// and test-run contract, for running programs without a kernel.

export { VmError, VmLoadError } from './errors.ts';
export { Machine, type ContextKind, type MachineOptions, type Redirect, type RunOptions, type RunResult } from './machine.ts';
export { loadObject, runInstructions, link, contextKind, VmObject, type LoadedProgram, type RunInstructionsOptions } from './object.ts';
export { createMap, VmMap, HashMap, ArrayMap, LpmTrieMap, RingbufMap, MapError, Errno, UpdateFlags, type MapDefinition } from './maps.ts';
export { SkBuff, XdpMd } from './context.ts';
export { CryptoParams } from './crypto.ts';
export { conformancePlugin } from './conformance.ts';
