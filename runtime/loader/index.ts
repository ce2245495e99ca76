// runtime/loader: ELF objects into the kernel and back out, in libbpf's stages.
//
//	const obj = openObject('bpf-out/engine.o');          // parse; no kernel
//	obj.prepare({ pinDir });                            // BTF, maps (pinned by name), .rodata
//	obj.load();                                         // relocate + BPF_PROG_LOAD every program
//	obj.map('sa_map').update(key, value);               // MapHandle: bytes, or JSON via BTF
//	obj.program('create_ctx').run({ ctxIn });           // BPF_PROG_TEST_RUN (syscall programs)
//	attachTc(obj.program('egress').fd, { device, direction: 'egress', netns, pinDir, program });
//	detach(pinDir); unload(pinDir);
export { BpfObject, loadObject, openObject, ProgramHandle, verifierFailure, type LoadOptions, type OpenOptions, type PrepareOptions, type Stage } from './object.ts';
export { MapHandle, incompatibility, openPinned } from './maps.ts';
export { LoaderError, ProgramLoadError, formatPosition, type SourcePosition } from './errors.ts';
export { kernelBtf, setKernelBtf, kfuncId } from './kernel-btf.ts';
export { linkProgram, applyRelocations, extInfo, type LinkedProgram } from './relocate.ts';
export {
  attachTc,
  attachXdp,
  configureDevice,
  detach,
  unload,
  readRecords,
  type Attachment,
  type DetachFilter,
  type DetachResult,
  type DeviceSettings,
  type Direction,
  type TcAttachOptions,
  type XdpAttachOptions,
} from './attach.ts';
export { withNetns } from './netns.ts';
export { loadedObjects, objectStatus, openPinnedMap, resolvePinDir, kernelBtfById, type ObjectStatus } from './inspect.ts';
export { decode as decodeJson, encode as encodeJson, type Json } from './codec.ts';
export { DEFAULT_PIN_ROOT, objectNameOf } from './names.ts';
export { requireCapabilities } from './caps.ts';
