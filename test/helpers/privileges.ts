// Tests that build namespaces or load BPF need root. They never skip: on a machine without the
// privilege they fail at once with a message that says what is missing.
import { readFileSync } from "node:fs";

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    throw new Error(`${what} needs root (network namespaces, cgroups, BPF); run the suite as root`);
  }
}

/** The cgroup v2 mount point, read from /proc/mounts (never assumed). */
export function cgroup2Mount(): string {
  const line = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .find((l) => l.split(" ")[2] === "cgroup2");
  const mount = line?.split(" ")[1];
  if (!mount) throw new Error("no cgroup2 filesystem is mounted (see /proc/mounts)");
  return mount;
}
