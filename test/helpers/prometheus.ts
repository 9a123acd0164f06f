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
  stop(): Promise<void>;
}

export function startPrometheus(lab: Lab, node: LabHost, port = 19090): Prometheus {
  const dir = mkdtempSync(join(tmpdir(), "nm-prom-"));
  const config = join(dir, "prometheus.yml");
  writeFileSync(
    config,
    `global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: nodemesh-agent\n    static_configs: [{targets: ["127.0.0.1:15020"]}]\n`,
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
    async stop() {
      prom.kill("SIGTERM");
      await prom.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
