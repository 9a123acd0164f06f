// Summarizes V8 CPU profiles (`node --cpu-prof` output, e.g. the agents' under
// NODEMESH_BENCH_CPU_PROF) into the top costs by self time, per function and per source file:
//   node bench/cpu-profile.ts <file.cpuprofile>... [--top 25]
// The pure parts (`summarizeProfile`, `parseProfileArgs`) are unit-tested; the rest reads and prints.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { table } from "./report.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Cost {
  name: string;
  selfMs: number;
  /** share of the non-idle time, 0..1 */
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  functions: Cost[];
  files: Cost[];
}

/** `fn file:line` with the path shortened to the project (or node:) part. */
function shortUrl(url: string): string {
  if (url === "") return "(native)";
  const i = url.search(/\/(agent|controller|bench|lab|demo|node_modules)\//);
  return i >= 0 ? url.slice(i + 1) : url.replace(/^file:\/\//, "");
}

function top(map: Map<string, number>, busyMs: number, n: number): Cost[] {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, ms]) => ({ name, selfMs: Math.round(ms * 10) / 10, share: busyMs ? ms / busyMs : 0 }));
}

/** Self time per function and per file; `(idle)` is left out of the shares. */
export function summarizeProfile(p: CpuProfile, n = 25): ProfileSummary {
  if (!Array.isArray(p.nodes) || !Array.isArray(p.samples) || !Array.isArray(p.timeDeltas)) {
    throw new Error("cpu profile: expected nodes, samples and timeDeltas arrays (a .cpuprofile file)");
  }
  if (p.samples.length !== p.timeDeltas.length) {
    throw new Error(`cpu profile: ${p.samples.length} samples but ${p.timeDeltas.length} timeDeltas`);
  }
  const byId = new Map(p.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  // A sample's time is the delta to the next sample (the last one's is unknown: left out).
  for (let i = 0; i + 1 < p.samples.length; i++) {
    const id = p.samples[i] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i + 1] ?? 0));
  }
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  let idleMs = 0;
  let totalMs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) throw new Error(`cpu profile: sample names node ${id}, which is not in nodes`);
    const ms = us / 1000;
    totalMs += ms;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") {
      idleMs += ms;
      continue;
    }
    const file = shortUrl(url);
    const key = url ? `${functionName || "(anonymous)"} ${file}:${lineNumber + 1}` : functionName;
    fns.set(key, (fns.get(key) ?? 0) + ms);
    files.set(file, (files.get(file) ?? 0) + ms);
  }
  const busy = totalMs - idleMs;
  return {
    totalMs: Math.round(totalMs),
    idleMs: Math.round(idleMs),
    functions: top(fns, busy, n),
    files: top(files, busy, n),
  };
}

export function renderSummary(s: ProfileSummary): string {
  const rows = (costs: Cost[]) =>
    costs.map((c) => [c.name, c.selfMs.toFixed(1), `${(c.share * 100).toFixed(1)}%`]);
  return [
    `profiled ${s.totalMs} ms, idle ${s.idleMs} ms, busy ${s.totalMs - s.idleMs} ms`,
    table(["function (self time)", "ms", "of busy"], rows(s.functions)),
    table(["file (self time)", "ms", "of busy"], rows(s.files)),
  ].join("\n\n");
}

/** `<file>... [--top <n>]`; undefined when the command line is not that. */
export function parseProfileArgs(argv: readonly string[]): { files: string[]; top: number } | undefined {
  const files: string[] = [];
  let top = 25;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? "";
    if (a === "--top") {
      const v = argv[++i] ?? "";
      if (!/^[1-9]\d*$/.test(v)) return undefined;
      top = Number(v);
    } else if (a.startsWith("--")) return undefined;
    else files.push(a);
  }
  return files.length ? { files, top } : undefined;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = parseProfileArgs(process.argv.slice(2));
  if (!args) {
    process.stderr.write("usage: node bench/cpu-profile.ts <file.cpuprofile>... [--top <n>]\n");
    process.exit(2);
  }
  for (const file of args.files) {
    const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
    process.stdout.write(`== ${file}\n${renderSummary(summarizeProfile(profile, args.top))}\n\n`);
  }
}
