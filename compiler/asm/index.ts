// The BPF instruction set: model, builder, table, text in and out. `import * as asm from` this.
export * from './opcode.ts';
export * from './instruction.ts';
export * from './table.ts';
export * from './builder.ts';
export { formatInstruction, type FormatOptions } from './disassembler.ts';
export { formatListing, compareListings, type ListingOptions } from './listing.ts';
export { assemble, AssemblyError, type Assembled, type AssembleOptions, type Diagnostic } from './assembler.ts';
export { isLabel, LinkError, type Label } from './labels.ts';
