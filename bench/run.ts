// `npm run bench`: runs the benchmarks and prints their tables. The data-plane benchmark
// (bench/dataplane.ts) and the ingress benchmark (bench/ingress.ts) run in this process; bench/controller.ts and bench/connect-redirect.ts,
// owned by their areas, run as child processes when present and print their own tables.
//   npm run bench -- [--quick] [--only dataplane|ingress|controller|connect-redirect|soak] [--json <file>]
// The soak (bench/soak.ts, 30 minutes; --quick 3) runs only with `--only soak`.
//                    [--paths direct,haproxy,haproxy-http,node-relay,mesh,mesh-http,mesh-http-layers]   (data-plane paths; default all)
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { PATH_NAMES, runDataplane } from "./dataplane.ts";
import type { PathName } from "./dataplane.ts";
import { runIngress } from "./ingress.ts";
import type { PathResult } from "./measure.ts";
import { checkAllTargets, renderDataplane, renderIngress, renderTargets } from "./report.ts";

export const BENCHES = ["dataplane", "ingress", "controller", "connect-redirect", "soak"] as const;
/** Run only when asked for by name (`--only soak`): it takes 30 minutes. */
const ON_REQUEST: readonly BenchName[] = ["soak"];
/** The benchmarks that run in this process; the others are child processes. */
const IN_PROCESS: readonly BenchName[] = ["dataplane", "ingress"];
export type BenchName = (typeof BENCHES)[number];

export interface RunArgs {
  quick: boolean;
  only: BenchName | undefined;
  json: string | undefined;
  paths: PathName[] | undefined;
}

export function parseRunArgs(argv: readonly string[]): RunArgs {
  const out: RunArgs = { quick: false, only: undefined, json: undefined, paths: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--quick") out.quick = true;
    else if (a === "--only" || a === "--json" || a === "--paths") {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      if (a === "--json") out.json = v;
      else if (a === "--paths") {
        const paths = v.split(",");
        const bad = paths.find((p) => !(PATH_NAMES as readonly string[]).includes(p));
        if (bad) throw new Error(`--paths ${bad}: use a comma-separated list of ${PATH_NAMES.join(", ")}`);
        out.paths = paths as PathName[];
      } else if ((BENCHES as readonly string[]).includes(v)) out.only = v as BenchName;
      else throw new Error(`--only ${v}: use one of ${BENCHES.join(", ")}`);
    } else throw new Error(`unknown option ${a}; use --quick, --only <bench>, --paths <list>, --json <file>`);
  }
  return out;
}

function runChild(name: BenchName, quick: boolean): boolean {
  const file = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
  if (!existsSync(file)) {
    process.stdout.write(`\n== ${name}: not present (bench/${name}.ts)\n`);
    return true;
  }
  process.stdout.write(`\n== ${name}\n`);
  const r = spawnSync(
    process.execPath,
    ["--disable-warning=ExperimentalWarning", file, ...(quick ? ["--quick"] : [])],
    { stdio: "inherit" },
  );
  if (r.status !== 0) process.stdout.write(`${name}: failed (${r.status ?? r.signal})\n`);
  return r.status === 0;
}

async function main(): Promise<number> {
  const args = parseRunArgs(process.argv.slice(2));
  const wanted = (b: BenchName) => (args.only === undefined ? !ON_REQUEST.includes(b) : args.only === b);
  let ok = true;
  const json: Record<string, PathResult[]> = {};
  if (wanted("dataplane")) {
    const started = Date.now();
    process.stdout.write(
      `== dataplane: 1 KiB HTTP/1.1, pod n1p1 -> pod n2p1, L4 and L7 paths${args.quick ? " (quick)" : ""}\n`,
    );
    const results = await runDataplane({ quick: args.quick, ...(args.paths ? { paths: args.paths } : {}) });
    process.stdout.write(`\n${renderDataplane(results)}\n\n${renderTargets(checkAllTargets(results))}\n`);
    process.stdout.write(`(dataplane took ${Math.round((Date.now() - started) / 1000)} s)\n`);
    json["dataplane"] = results;
  }
  if (wanted("ingress")) {
    const started = Date.now();
    process.stdout.write(
      `\n== ingress: 1 KiB HTTPS keep-alive, outside -> gateway on n1 or HAProxy on n1 -> pod n2p1${args.quick ? " (quick)" : ""}\n`,
    );
    const results = await runIngress({ quick: args.quick });
    process.stdout.write(`\n${renderIngress(results)}\n`);
    process.stdout.write(`(ingress took ${Math.round((Date.now() - started) / 1000)} s)\n`);
    json["ingress"] = results;
  }
  if (args.json) await writeFile(args.json, `${JSON.stringify(json, null, 2)}\n`);
  for (const b of BENCHES) if (!IN_PROCESS.includes(b) && wanted(b)) ok = runChild(b, args.quick) && ok;
  return ok ? 0 : 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // Ctrl-C: exit normally so the lab's exit hook removes the namespaces.
  process.once("SIGINT", () => process.exit(130));
  process.once("SIGTERM", () => process.exit(143));
  main().then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`bench: ${err.message}\n`);
      process.exit(1);
    },
  );
}
