// A real Prometheus inside a lab node's namespace, scraping that node's agent (127.0.0.1:15020), and a
// query helper that waits until the query returns samples. Nothing leaves the lab namespace.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Lab, LabHost } from "../../lab/index.ts";
import { eventually } from "./mesh-fixture.ts";

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface Prometheus {
  /** Polls `expr` until it returns at least one sample (or throws after `timeoutMs`). */
  query(expr: string, timeoutMs?: number): Promise<PromSample[]>;
  /** One GET of the HTTP API (e.g. "/api/v1/query?query=up"), its parsed JSON; no retry. */
  api(path: string): Promise<{ status: string; error?: string; data?: unknown }>;
  stop(): Promise<void>;
}

/** Scrape jobs and rule files; the default scrapes the node's own agent. */
export interface PrometheusOptions {
  readonly jobs?: readonly { name: string; targets: readonly string[] }[];
  /** Absolute paths of rule files to load (evaluated every second). */
  readonly ruleFiles?: readonly string[];
}

export function startPrometheus(
  lab: Lab,
  node: LabHost,
  port = 19090,
  opts: PrometheusOptions = {},
): Prometheus {
  const dir = mkdtempSync(join(tmpdir(), "nm-prom-"));
  const config = join(dir, "prometheus.yml");
  const jobs = opts.jobs ?? [{ name: "nodemesh-agent", targets: ["127.0.0.1:15020"] }];
  const scrape = jobs.map(
    (j) => `  - job_name: ${j.name}\n    static_configs: [{targets: ${JSON.stringify(j.targets)}}]\n`,
  );
  const rules = opts.ruleFiles?.length ? `rule_files: ${JSON.stringify(opts.ruleFiles)}\n` : "";
  writeFileSync(
    config,
    `global: {scrape_interval: 1s, evaluation_interval: 1s}\n${rules}scrape_configs:\n${scrape.join("")}`,
  );
  const prom = lab.spawn(node, [
    "prometheus",
    `--config.file=${config}`,
    `--storage.tsdb.path=${join(dir, "data")}`,
    `--web.listen-address=127.0.0.1:${port}`,
  ]);
  return {
    async query(expr, timeoutMs = 45_000) {
      let result: PromSample[] = [];
      await eventually(
        `prometheus to return ${expr}`,
        async () => {
          const q = encodeURIComponent(expr);
          const r = await lab.exec(node, ["curl", "-sS", `http://127.0.0.1:${port}/api/v1/query?query=${q}`]);
          if (r.code !== 0 || !r.stdout.startsWith("{")) return false; // not up yet ("Service Unavailable")
          const body = JSON.parse(r.stdout) as { data?: { result?: PromSample[] } };
          result = body.data?.result ?? [];
          return result.length > 0;
        },
        timeoutMs,
      );
      return result;
    },
    async api(path) {
      const r = await lab.exec(node, ["curl", "-sS", `http://127.0.0.1:${port}${path}`]);
      if (r.code !== 0 || !r.stdout.startsWith("{"))
        throw new Error(`prometheus ${path}: ${r.stderr || r.stdout}`);
      return JSON.parse(r.stdout) as { status: string; error?: string; data?: unknown };
    },
    async stop() {
      prom.kill("SIGTERM");
      await prom.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
