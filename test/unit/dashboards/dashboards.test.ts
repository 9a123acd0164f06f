// The committed dashboards are what the generator makes, are well formed for Grafana, query only
// metrics the mesh exports; the alert rules pass `promtool check rules` and their unit tests.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { render } from "../../../dashboards/build.ts";
import { expressions } from "../../../dashboards/grafana.ts";

const ROOT = join(import.meta.dirname, "../../..");
const run = promisify(execFile);

describe("dashboards", async () => {
  const files = await render();
  it.each([...files.keys()])("%s is up to date (node dashboards/build.ts)", (file) => {
    expect(readFileSync(join(ROOT, "dashboards", file), "utf8")).toBe(files.get(file));
  });
  it.each([...files.keys()])(
    "%s: unique panel ids, the datasource variable everywhere, known metrics only",
    (file) => {
      const d = JSON.parse(files.get(file) as string) as {
        panels: { id: number; datasource?: { uid: string }; type: string }[];
        templating: { list: { name: string }[] };
      };
      const ids = d.panels.map((p) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(d.templating.list[0]?.name).toBe("datasource");
      for (const p of d.panels.filter((x) => x.type !== "row"))
        expect(p.datasource?.uid).toBe("${datasource}");
      const exprs = expressions(d);
      expect(exprs.length).toBeGreaterThan(10);
      for (const { expr } of exprs)
        for (const m of expr.matchAll(/\b(nodemesh_[a-z_]+)/g)) expect(KNOWN, m[1]).toContain(m[1]);
    },
  );
});

/** Every metric the dashboards may use, as the agents and the controller export them. */
const KNOWN = [
  "nodemesh_requests_total",
  "nodemesh_request_duration_seconds_bucket",
  "nodemesh_request_duration_seconds_count",
  "nodemesh_tcp_connections_opened_total",
  "nodemesh_tcp_connections_closed_total",
  "nodemesh_tcp_connections_failed_total",
  "nodemesh_tcp_sent_bytes_total",
  "nodemesh_tcp_received_bytes_total",
  "nodemesh_request_retries_total",
  "nodemesh_circuit_breaker_state",
  "nodemesh_circuit_breaker_transitions_total",
  "nodemesh_build_info",
  "nodemesh_identity_cert_expiration_timestamp_seconds",
  "nodemesh_controller_connected_agents",
  "nodemesh_controller_config_last_reload_successful",
  "nodemesh_controller_pushes_total",
  "nodemesh_controller_acks_total",
  "nodemesh_controller_config_rejections_total",
  "nodemesh_controller_push_latency_seconds_bucket",
  "nodemesh_controller_csr_signed_total",
  "nodemesh_controller_csr_rejected_total",
];

describe("alert rules", () => {
  it("promtool check rules", async () => {
    const { stdout } = await run("promtool", ["check", "rules", join(ROOT, "alerts/nodemesh-rules.yaml")]);
    expect(stdout).toMatch(/SUCCESS: 11 rules found/);
  });
  it("promtool test rules (every alert fires on its failure, none on a healthy mesh)", async () => {
    const { stdout } = await run("promtool", ["test", "rules", "nodemesh-rules.test.yaml"], {
      cwd: join(ROOT, "alerts"),
    });
    expect(stdout).toMatch(/SUCCESS/);
  });
});
