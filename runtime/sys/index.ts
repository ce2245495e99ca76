// runtime/sys: the bpf() syscall layer. Every bpf() call of the project passes through
// syscall.ts's bpf(); tests replace it with overrideSyscall(new FakeBpf()) or FakeBpf.install().
export * from './syscall.ts';
export * from './errors.ts';
export * from './fd.ts';
export * from './log.ts';
export * from './map.ts';
export * from './prog.ts';
export * from './btf.ts';
export * from './obj.ts';
export * from './info.ts';
export * from './link.ts';
export { FakeBpf, type FakeOptions, type FakeProgram, type VerifierVerdict, type RecordedCall } from './fake.ts';
