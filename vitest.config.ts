import { defineConfig } from "vitest/config";

// e2e tests build network namespaces and load BPF programs that attach at the cgroup v2 root:
// they must not run concurrently with each other, so files run one at a time.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    reporters: ["default"],
  },
});
