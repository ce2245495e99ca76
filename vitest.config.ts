import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Kernel tests share bpffs, namespaces and the verifier; two cores here.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
