// A mesh-wide RateLimitPolicy `global` of R rps as real clients see it, on the lab with the real eBPF
// capture: the `api` Service is served by one pod on each node (n1p2, n2p2), and two load clients in pods
// offer 3:1 unequal load (n1p1 at 60 rps, n2p1 at 20 rps: 80 rps = 2.7 R), each request on a new
// connection. Each client's requests carry a header value that the Service's consistent hash sends to a
// different backend, so the two destination nodes see 3:1 demand, steadily (PEAK_EWMA, the default,
// chases whichever node answers its 429s faster, and the whole load flips between nodes every few
// seconds: a fine test of the rebalancing lag, a poor one of the split). The destination agents split R between them as the controller rebalances (every 2 s) and
// answer the rest 429. After a warm-up of several rebalances the test measures, over 20 s of real elapsed
// time, what both destination agents admitted (their own counters, read at the start and the end) and
// asserts the total rate within [0.9 R, 1.05 R]; the clients' own counts must show the 429s, and the
// shares the agents enforce (metrics, config dump) must add up to at most R.
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_MESH, type LabMeshSpec } from "../../../demo/mesh-config.ts";
import type { LabProcess } from "../../../lab/index.ts";
import {
  APPS,
  eventually,
  meshFixture,
  type LoadWindow,
  type MeshFixture,
} from "../../helpers/mesh-fixture.ts";

const R = 30;
const API_VIP = "10.96.0.20";
const POLICY = "RateLimitPolicy/default/api-global";
const WARMUP_MS = 10_000;
const MEASURE_MS = 20_000;

const SPEC: LabMeshSpec = {
  ...DEMO_MESH,
  services: [
    ...DEMO_MESH.services,
    { name: "api", vip: API_VIP, port: 80, targetPort: 8080, app: "echo", appProtocol: "http" },
  ],
};
const GLOBAL = {
  apiVersion: "nodemesh.io/v1alpha1",
  kind: "RateLimitPolicy",
  metadata: { name: "api-global", namespace: "default" },
  spec: { targetRefs: [{ kind: "Service", name: "api" }], global: { requestsPerSecond: R } },
};

const SHARD = "x-shard";
const HASHED = {
  apiVersion: "nodemesh.io/v1alpha1",
  kind: "TrafficPolicy",
  metadata: { name: "api-hash", namespace: "default" },
  spec: {
    targetRefs: [{ kind: "Service", name: "api" }],
    loadBalancer: { consistentHash: { httpHeaderName: SHARD } },
  },
};

let fx: MeshFixture;
/** pod → the x-shard value whose requests from that pod land on the given backend. */
const shardOf: Record<string, string> = {};
const clients: { proc: LabProcess; windows: LoadWindow[] }[] = [];

function load(pod: string, rate: number): { proc: LabProcess; windows: LoadWindow[] } {
  const env = {
    TARGET_URL: `http://${API_VIP}/`,
    RATE: String(rate),
    REPORT_MS: "1000",
    HEADER: `${SHARD}: ${shardOf[pod]}`,
  };
  const proc = fx.lab.spawn(pod, [process.execPath, join(APPS, "load-client.ts")], {
    env: { ...process.env, ...env },
  });
  const windows: LoadWindow[] = [];
  createInterface({ input: proc.stdout }).on("line", (l) => windows.push(JSON.parse(l) as LoadWindow));
  const c = { proc, windows };
  clients.push(c);
  return c;
}

/** One sample of a node agent's metrics for the api limit (0 when absent). */
async function sample(node: string, name: string, extra = ""): Promise<number> {
  const text = await fx.mesh.agentHttp(node, 15020, "/metrics");
  const labels = `destination_service="api.default",policy="${POLICY}"${extra}`;
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && sameLabels(l, labels));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

/** prom-client orders labels as declared; compare them as sets. */
function sameLabels(line: string, want: string): boolean {
  const got = line
    .slice(line.indexOf("{") + 1, line.indexOf("}"))
    .split(",")
    .sort();
  return got.join(",") === want.split(",").sort().join(",");
}

const admitted = (node: string) =>
  sample(node, "nodemesh_global_ratelimit_requests_total", ',result="admitted"');
const share = (node: string) => sample(node, "nodemesh_global_ratelimit_share_requests_per_second");

/** The backend pod that answers `pod`'s request with this shard value (x-served-by). */
async function servedBy(pod: string, shard: string): Promise<string | undefined> {
  const r = await fx.curl(pod, `http://${API_VIP}/probe`, [
    "-D",
    "-",
    "-o",
    "/dev/null",
    "-H",
    `${SHARD}: ${shard}`,
  ]);
  return /\r\nx-served-by: (\S+)/i.exec(r.body)?.[1];
}

/** A shard value per client pod, sending n1p1 to one backend and n2p1 to the other. */
async function pickShards(): Promise<void> {
  const want = { n1p1: "n1p2", n2p1: "n2p2" } as const;
  for (const [pod, backend] of Object.entries(want)) {
    for (let i = 0; i < 64 && shardOf[pod] === undefined; i++)
      if ((await servedBy(pod, `s${i}`)) === backend) shardOf[pod] = `s${i}`;
    if (shardOf[pod] === undefined) throw new Error(`no ${SHARD} value sends ${pod} to ${backend}`);
  }
}

beforeAll(async () => {
  fx = await meshFixture("grl", { spec: SPEC });
  fx.applyExtra([HASHED]);
  await eventually("both client agents to hash api on x-shard", async () => {
    for (const node of ["n1", "n2"]) {
      const dump = JSON.parse(await fx.mesh.agentHttp(node, 15000, "/config_dump")) as {
        services?: { host: string; loadBalancer?: string }[];
      };
      if (dump.services?.find((x) => x.host === "api.default")?.loadBalancer !== "RING_HASH") return false;
    }
    return true;
  });
  await pickShards();
  fx.applyExtra([HASHED, GLOBAL]);
  await eventually(
    "both destination agents to enforce the global limit",
    async () => (await share("n1")) > 0 && (await share("n2")) > 0,
    30_000,
  );
}, 240_000);

afterAll(async () => {
  for (const c of clients) {
    c.proc.kill("SIGTERM");
    await c.proc.exited;
  }
  await fx?.close();
});

describe("a global rate limit across two serving nodes with unequal clients", () => {
  it(`admits between 0.9 R and 1.05 R in total (R = ${R} rps, 80 rps offered 3:1)`, async () => {
    const heavy = load("n1p1", 60);
    const light = load("n2p1", 20);
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    const t0 = performance.now();
    const before = (await admitted("n1")) + (await admitted("n2"));
    const w0 = [heavy.windows.length, light.windows.length];
    await new Promise((r) => setTimeout(r, MEASURE_MS));
    const after = (await admitted("n1")) + (await admitted("n2"));
    const seconds = (performance.now() - t0) / 1000;
    const rate = (after - before) / seconds;
    const seen = [heavy, light].flatMap((c, i) => c.windows.slice(w0[i]));
    const ok = seen.reduce((s, w) => s + (w.statuses["200"] ?? 0), 0);
    const refused = seen.reduce((s, w) => s + (w.statuses["429"] ?? 0), 0);
    const shares = [await share("n1"), await share("n2")];
    console.log(JSON.stringify({ rate, seconds, ok, refused, shares }));
    expect(rate).toBeGreaterThanOrEqual(0.9 * R);
    expect(rate).toBeLessThanOrEqual(1.05 * R);
    // The clients were offered far more than R and saw the refusals; nothing else failed.
    expect(refused).toBeGreaterThan(ok);
    expect(seen.reduce((s, w) => s + Object.values(w.errors).reduce((a, b) => a + b, 0), 0)).toBe(0);
    expect(shares[0]! + shares[1]!).toBeLessThanOrEqual(R + 1e-6);
  }, 120_000);

  it("shows each node's share, its source and the serving nodes in the config dump", async () => {
    const dump = JSON.parse(await fx.mesh.agentHttp("n1", 15000, "/config_dump")) as {
      globalRateLimits: {
        id: string;
        source: string;
        servingNodes: string[];
        shareRequestsPerSecond: number;
      }[];
    };
    const entry = dump.globalRateLimits.find((g) => g.id === `${POLICY}|api.default`);
    expect(entry).toMatchObject({ source: "controller", servingNodes: ["n1", "n2"] });
    expect(entry!.shareRequestsPerSecond).toBeGreaterThan(0);
    expect(entry!.shareRequestsPerSecond).toBeLessThan(R);
  });
});
