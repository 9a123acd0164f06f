// Observability as an operator meets it, on the lab with real agents under HTTP and TCP traffic:
// - a real Prometheus (in the lab's root namespace) scrapes every agent and the controller and loads the
//   shipped alert rules: EVERY PromQL expression of the dashboards returns data, every rule evaluates
//   without error and each selector inside it has data, and the alerts for a failing service and a
//   rejected config fire;
// - the operator commands (`nodemesh stat|tap|check|explain|config`), run as a user runs them, answer
//   the JSON the docs promise: explain for a captured, a not-enrolled and a denied connection.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  DEMO_MESH,
  DEMO_ROUTES,
  DEMO_VIP,
  WEB_VIP,
  meshConfigForLab,
  type LabMeshSpec,
} from "../../../demo/mesh-config.ts";
import { expressions } from "../../../dashboards/grafana.ts";
import { APPS, eventually, meshFixture, type MeshFixture } from "../../helpers/mesh-fixture.ts";
import { startPrometheus, type Prometheus } from "../../helpers/prometheus.ts";

const ROOT = join(import.meta.dirname, "../../..");
const RULES = join(ROOT, "alerts/nodemesh-rules.yaml");
const FLAKY_VIP = "10.96.0.21";
const VOID_VIP = "10.96.0.22";
const LAB = "obs";

const BASE = {
  ...DEMO_MESH,
  services: [
    ...DEMO_MESH.services,
    // Own breakers and outlier state: its failures do not leak into web's v2 share.
    {
      name: "flaky",
      vip: FLAKY_VIP,
      port: 80,
      targetPort: 8080,
      app: "echo",
      selector: { version: "v2" },
      appProtocol: "http",
    },
    { name: "void", vip: VOID_VIP, port: 80, targetPort: 8080, app: "nothing" },
  ],
  extra: DEMO_ROUTES,
} satisfies LabMeshSpec;
/** n2p1 out of the mesh first (the not-enrolled case), then enrolled as legacy and denied. */
const { n2p1: _legacy, ...withoutLegacy } = BASE.pods;
const legacyRole = { app: "legacy", serviceAccount: "legacy" };
const NO_LEGACY: LabMeshSpec = { ...BASE, pods: withoutLegacy };
const DENY_LEGACY = {
  apiVersion: "nodemesh.io/v1alpha1",
  kind: "AuthorizationPolicy",
  metadata: { name: "deny-legacy", namespace: "default" },
  spec: {
    selector: { matchLabels: { app: "echo" } },
    action: "DENY",
    rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/legacy"] } }] }],
  },
};
const WITH_LEGACY: LabMeshSpec = {
  ...BASE,
  pods: { ...withoutLegacy, n2p1: legacyRole },
  extra: [...DEMO_ROUTES, DENY_LEGACY],
};

let fx: MeshFixture;
let prom: Prometheus;

/** `nodemesh <args>` as an operator runs it (host namespace, root); exit code and output. */
function cli(args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--disable-warning=ExperimentalWarning", join(ROOT, "bin/nodemesh.ts"), ...args, "--lab", LAB],
      { timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}
async function cliJson<T>(args: string[], expectCode = 0): Promise<T> {
  const r = await cli([...args, "-o", "json"]);
  expect(r.code, `nodemesh ${args.join(" ")}: ${r.stderr}`).toBe(expectCode);
  return JSON.parse(r.stdout) as T;
}

function load(pod: string, url: string, rate: number): void {
  fx.lab.spawn(pod, [process.execPath, join(APPS, "load-client.ts")], {
    env: { ...process.env, TARGET_URL: url, RATE: String(rate), REPORT_MS: "5000" },
  });
}

beforeAll(async () => {
  fx = await meshFixture(LAB, { spec: NO_LEGACY });
  prom = startPrometheus(fx.lab, fx.lab.root, 19090, {
    jobs: [
      { name: "nodemesh-agent", targets: fx.lab.nodes.map((n) => `${n.address}:15020`) },
      { name: "nodemesh-controller", targets: ["127.0.0.1:15014"] },
    ],
    ruleFiles: [RULES],
  });
}, 180_000);

afterAll(async () => {
  await prom?.stop();
  await fx?.close();
}, 60_000);

interface Explanation {
  verdict: string;
  reasons: string[];
  capture?: { enrolled: boolean; kernel: string; meshed: boolean };
  route?: { route: string; backends: string[] };
  endpoints: { endpoint: string; workload: string; authz: { allowed: boolean; policy?: string } }[];
}

describe("before legacy joins: a pod outside the mesh", () => {
  test("explain: n2p1 is not enrolled, and STRICT echo pods drop its plaintext (as curl finds)", async () => {
    const e = await cliJson<Explanation>(["explain", "n2p1", "10.1.1.3:8080"], 1);
    expect(e.verdict).toBe("not-captured");
    expect(e.reasons.join("\n")).toMatch(/no WorkloadEntry matches "n2p1"/);
    expect(e.reasons.join("\n")).toMatch(
      /default\/echo-n1p2 are dropped by the kernel: PeerAuthentication STRICT/,
    );
    const curl = await fx.curl("n2p1", "http://10.1.1.3:8080/", ["--max-time", "2"]);
    expect(curl.code).not.toBe(0);
  });
});

describe("under traffic", () => {
  beforeAll(async () => {
    fx.mesh.writeConfig(meshConfigForLab(fx.lab, WITH_LEGACY));
    await eventually(
      "legacy enrolled on n2",
      async () => (await fx.mesh.agentHttp("n2", 15000, "/config_dump")).includes("default/legacy-n2p1"),
      30_000,
    );
    load("n1p1", `http://${DEMO_VIP}/`, 10); // opaque TCP, both echo pods
    load("n1p1", `http://${WEB_VIP}/`, 20); // HTTP, routed 90/10
    load("n1p1", `http://${FLAKY_VIP}/?status=503`, 3); // 5xx: retries, breaker
    load("n1p1", `http://${VOID_VIP}/`, 2); // no endpoint: failed connections
    load("n2p1", `http://${DEMO_VIP}/`, 3); // denied by deny-legacy
    await prom.query(`sum(rate(nodemesh_requests_total{route_name="default/web"}[30s])) > 5`, 60_000);
  }, 120_000);

  test("stat: golden signals per service, workload and route from the agents' metrics", async () => {
    type Stat = {
      rows: { name: string; rps: number; successRate?: number; p99?: number; tcpConnections?: number }[];
    };
    const svc = await cliJson<Stat>(["stat", "service", "--window", "3s"]);
    const row = (s: Stat, name: string) => s.rows.find((r) => r.name === name);
    // A routed request's service is the backend its route chose (Istio's destination_service).
    expect(row(svc, "web-v1.default")?.rps).toBeGreaterThan(8);
    expect(row(svc, "web-v1.default")?.successRate).toBeGreaterThan(0.95);
    expect(row(svc, "web-v1.default")?.p99).toBeGreaterThan(0);
    expect(row(svc, "flaky.default")?.successRate).toBeLessThan(0.2);
    expect(row(svc, "echo.default")?.tcpConnections).toBeGreaterThanOrEqual(0);
    const wl = await cliJson<Stat>(["stat", "workload", "echo-n1p2", "--window", "3s"]);
    expect(wl.rows.map((r) => r.name)).toEqual(["default/echo-n1p2"]);
    expect(wl.rows[0]?.rps).toBeGreaterThan(5);
    const route = await cliJson<Stat>(["stat", "route", "--window", "3s"]);
    expect(row(route, "default/web")?.rps).toBeGreaterThan(8);
  });

  test("tap: a bounded stream of the service's requests, and of a workload's connections", async () => {
    const r = await cli(["tap", "web", "--max", "15", "--duration", "10s", "-o", "json"]);
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events).toHaveLength(15);
    for (const e of events) expect(e).toMatchObject({ type: "request", route: "default/web", method: "GET" });
    expect(events.some((e) => e["status"] === 200 && e["src.workload"] === "client-n1p1")).toBe(true);
    const tcp = await cli([
      "tap",
      "workload/legacy-n2p1",
      "--kind",
      "tcp",
      "--max",
      "3",
      "--duration",
      "10s",
      "-o",
      "json",
    ]);
    const conns = tcp.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(conns.length).toBe(3);
    for (const c of conns)
      expect(c).toMatchObject({ type: "connection", outcome: "failed", "src.workload": "legacy-n2p1" });
    const bad = await cli(["tap", "web", "--sample", "2"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--sample must be a fraction in \(0, 1\]/);
  });

  test("explain: captured and routed, and denied by name", async () => {
    const ok = await cliJson<Explanation>(["explain", "n1p1", "web:80"]);
    expect(ok.verdict).toBe("allowed");
    expect(ok.capture).toEqual({ enrolled: true, kernel: "enrolled", meshed: true });
    expect(ok.route?.route).toBe("default/web");
    expect(ok.endpoints.map((e) => e.workload).sort()).toEqual(["default/echo-n1p2", "default/echo-n2p2"]);
    const denied = await cliJson<Explanation>(["explain", "legacy-n2p1", "echo.default:80"], 1);
    expect(denied.verdict).toBe("denied");
    expect(denied.endpoints.every((e) => !e.authz.allowed && e.authz.policy === "default/deny-legacy")).toBe(
      true,
    );
    const human = await cli(["explain", "n2p1", "echo:80"]);
    expect(human.stdout).toMatch(/verdict: DENIED/);
  });

  test("config and check", async () => {
    const dump = await cliJson<{ node: string; workloads: { uid: string; mtls: string }[] }>([
      "config",
      "n1",
    ]);
    expect(dump.node).toBe("n1");
    expect(dump.workloads).toContainEqual(
      expect.objectContaining({ uid: "default/client-n1p1", mtls: "STRICT" }),
    );
    const check = await cliJson<{ ok: boolean; checks: { check: string; target: string; status: string }[] }>(
      ["check"],
    );
    expect(check.checks.filter((c) => c.status === "fail")).toEqual([]);
    const ids = new Set(check.checks.map((c) => `${c.check}@${c.target}`));
    for (const id of [
      "kernel@host",
      "btf@host",
      "cgroup2@host",
      "bpffs@host",
      "bpf-features@host",
      "pins@n1",
      "agent-ready@n2",
      "ports@n1",
      "controller@n2",
      "certificates@n1",
      "clock@n1",
      "controller@controller",
    ])
      expect(ids, id).toContain(id);
  });

  test("every dashboard expression returns data in Prometheus", async () => {
    const bindings: Record<string, string[]> = {
      service: ["web-v1.default", "echo.default", "flaky.default"],
      namespace: ["default"],
      workload: ["echo-n1p2", "client-n1p1", "echo-n2p2"],
    };
    for (const file of ["nodemesh-mesh.json", "nodemesh-service.json", "nodemesh-workload.json"]) {
      const json = JSON.parse(readFileSync(join(ROOT, "dashboards", file), "utf8")) as unknown;
      await checkVariables(json, bindings);
      for (const { panel, expr } of expressions(json)) {
        const candidates = substitute(expr, bindings);
        const ok = await anyReturnsData(candidates);
        expect(ok, `${file} "${panel}": ${expr}`).toBe(true);
      }
    }
  }, 240_000);

  test("the alert rules: every rule healthy, every selector has data, failures fire their alerts", async () => {
    // A rejected config (a Service without ports) keeps the last good one and must raise its alert.
    const good = meshConfigForLab(fx.lab, WITH_LEGACY);
    fx.mesh.writeConfig(
      `${good}---\napiVersion: nodemesh.io/v1alpha1\nkind: Service\nmetadata: {name: broken, namespace: default}\nspec: {addresses: [10.96.0.99], ports: []}\n`,
    );
    try {
      await prom.query("nodemesh_controller_config_last_reload_successful == 0", 30_000);
      const groups = parse(readFileSync(RULES, "utf8")) as {
        groups: { rules: { alert: string; expr: string }[] }[];
      };
      for (const rule of groups.groups.flatMap((g) => g.rules)) {
        const r = await prom.api(`/api/v1/query?query=${encodeURIComponent(rule.expr)}`);
        expect(r.status, `${rule.alert}: ${r.error ?? ""}`).toBe("success");
        for (const sel of selectors(rule.expr))
          expect(await anyReturnsData([sel]), `${rule.alert}: ${sel}`).toBe(true);
      }
      await eventually(
        "prometheus to evaluate every rule",
        async () => {
          const r = (await prom.api("/api/v1/rules")) as {
            data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
          };
          const rules = r.data.groups.flatMap((g) => g.rules);
          return rules.length === 11 && rules.every((x) => x.health === "ok");
        },
        30_000,
      );
      for (const alert of [
        `NodemeshHighErrorRate{destination_service="flaky.default"}`,
        "NodemeshConfigRejected",
        "NodemeshTcpConnectionFailures",
      ]) {
        const [name, labels = ""] = alert.split("{");
        await prom.query(`ALERTS{alertname="${name}"${labels ? `,${labels.slice(0, -1)}` : ""}}`, 30_000);
      }
    } finally {
      fx.mesh.writeConfig(good);
    }
  }, 180_000);
});

/** Each variable's values (its label_values or query_result query, as Grafana runs it) contain the bindings. */
async function checkVariables(json: unknown, bindings: Record<string, string[]>): Promise<void> {
  const vars = (json as { templating: { list: { name: string; definition?: string; regex?: string }[] } })
    .templating.list;
  for (const v of vars) {
    if (!v.definition) continue;
    const values = new Set(await variableValues(v.definition.replaceAll("$namespace", "default"), v.regex));
    expect(values.size, `${v.name}: ${v.definition}`).toBeGreaterThan(0);
    for (const want of bindings[v.name] ?? []) expect(values, `${v.name} has ${want}`).toContain(want);
  }
}

async function variableValues(definition: string, regex: string | undefined): Promise<string[]> {
  const lv = /^label_values\((.*), (\w+)\)$/.exec(definition);
  if (lv) {
    const r = (await prom.api(`/api/v1/series?match[]=${encodeURIComponent(lv[1] ?? "")}`)) as {
      data: Record<string, string>[];
    };
    return r.data.flatMap((s) => (s[lv[2] ?? ""] === undefined ? [] : [s[lv[2] ?? ""] as string]));
  }
  const qr = /^query_result\((.*)\)$/.exec(definition);
  expect(qr, `a label_values or query_result variable: ${definition}`).not.toBeNull();
  const r = (await prom.api(`/api/v1/query?query=${encodeURIComponent(qr?.[1] ?? "")}`)) as {
    data: { result: { metric: Record<string, string> }[] };
  };
  const re = new RegExp((regex ?? "/(.*)/").slice(1, -1));
  return r.data.result.flatMap((s) => {
    const line = `{${Object.entries(s.metric)
      .map(([k, val]) => `${k}="${val}"`)
      .join(",")}}`;
    const m = re.exec(line);
    return m?.[1] === undefined ? [] : [m[1]];
  });
}

/** The expression under every combination of variable values (the rate interval fixed at 1m). */
function substitute(expr: string, bindings: Record<string, string[]>): string[] {
  let out = [expr.replaceAll("$__rate_interval", "1m")];
  for (const [name, values] of Object.entries(bindings)) {
    if (!out[0]?.includes(`$${name}`)) continue;
    out = out.flatMap((e) => values.map((v) => e.replaceAll(`$${name}`, v)));
  }
  return out;
}

async function anyReturnsData(exprs: string[]): Promise<boolean> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    for (const e of exprs) {
      const r = (await prom.api(`/api/v1/query?query=${encodeURIComponent(e)}`)) as {
        status: string;
        data?: { result: unknown[] };
      };
      if (r.status === "success" && (r.data?.result.length ?? 0) > 0) return true;
    }
    if (Date.now() > deadline) return false;
    await new Promise((res) => setTimeout(res, 1000));
  }
}

/** The vector selectors of a rule expression (metric name and matchers), as a user would query them. */
function selectors(expr: string): string[] {
  const found = new Set<string>();
  const re = /\b(up|nodemesh_[a-z_]+)(\{[^}]*\})?/g;
  for (const m of expr.matchAll(re)) found.add(`${m[1]}${m[2] ?? ""}`);
  return [...found];
}
