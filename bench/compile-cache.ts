// Node's compile cache (bin/nodemesh.js enables it) spares a started process type stripping, whose
// WebAssembly compiler would otherwise stay in its RSS (18-27 MiB) for its whole life. The image
// warms the cache at build time (Dockerfile); a fresh clone has none, so the first mesh a benchmark
// starts would report that compiler in every agent's RSS. Warm it the same way first.
import { spawnSync } from "node:child_process";

export const CLI = new URL("../bin/nodemesh.js", import.meta.url).pathname;

/** Loads each command's modules once (`<command> --help`), as the Dockerfile does. */
export function warmCompileCache(commands: readonly string[]): void {
  for (const command of commands) {
    // --help exits non-zero for some commands by design; loading the modules is what counts.
    spawnSync(process.execPath, ["--disable-warning=ExperimentalWarning", CLI, command, "--help"], {
      stdio: "ignore",
    });
  }
}
