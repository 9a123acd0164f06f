// Fault injection and rate limits as a user sees them, on the lab with the real eBPF capture and curl in
// the pods: a FaultInjection attached by ExtensionRef to a header-matched HTTPRoute rule aborts about 10 %
// of 1,000 matching requests (within a bound computed below) and none of the others; a per-source
// RateLimitPolicy answers one client 429 with retry-after and the RateLimit-* fields while another
// client passes, and the destination agent counts it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WEB_V1_VIP, WEB_V2_VIP } from "../../../demo/mesh-config.ts";
import { eventually, meshFixture, type MeshFixture } from "../../helpers/mesh-fixture.ts";

const N = 1000;
const ABORT_PERCENT = 10;
const ABORT_STATUS = 418; // no backend answers it, so every one is the mesh's

/**
 * Acceptance bounds for X ~ Binomial(n, p) that a correct implementation misses with probability below
 * `alpha`, from the multiplicative Chernoff bounds (rigorous, no normal approximation):
 *   P(X ≤ (1−δ)μ) ≤ exp(−δ²μ/2)   and   P(X ≥ (1+δ)μ) ≤ exp(−δ²μ/(2+δ)),   μ = np,
 * each tail set to alpha/2. For n = 1000, p = 0.1, alpha = 1e-6: μ = 100, ln(2/alpha) = 14.5,
 * δ_low = 0.539 and δ_high = 0.616, i.e. X ≤ 46.1 or X ≥ 161.6 each happen with probability ≤ 5e-7:
 * the test accepts 46 ≤ X ≤ 162, rounded outwards (the normal approximation would give 54…146).
 */
function chernoffBounds(n: number, p: number, alpha: number): { low: number; high: number } {
  const mu = n * p;
  const l = Math.log(2 / alpha);
  const dLow = Math.sqrt((2 * l) / mu);
  const dHigh = (l + Math.sqrt(l * l + 8 * mu * l)) / (2 * mu);
  return { low: Math.floor((1 - dLow) * mu), high: Math.ceil((1 + dHigh) * mu) };
}

const meta = (name: string) => ({ metadata: { name, namespace: "default" } });
const CHAOS = [
  {
    apiVersion: "nodemesh.io/v1alpha1",
    kind: "FaultInjection",
    ...meta("chaos"),
    spec: { abort: { httpStatus: ABORT_STATUS, percentage: ABORT_PERCENT } },
  },
  {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    ...meta("web-v1-chaos"),
    spec: {
      parentRefs: [{ group: "", kind: "Service", name: "web-v1" }],
      rules: [
        {
          matches: [{ headers: [{ name: "x-chaos", value: "on" }] }],
          filters: [
            {
              type: "ExtensionRef",
              extensionRef: { group: "nodemesh.io", kind: "FaultInjection", name: "chaos" },
            },
          ],
          backendRefs: [{ name: "web-v1", port: 80 }],
        },
        { backendRefs: [{ name: "web-v1", port: 80 }] },
      ],
    },
  },
];
const PER_CLIENT = {
  apiVersion: "nodemesh.io/v1alpha1",
  kind: "RateLimitPolicy",
  ...meta("web-v2-per-client"),
  spec: {
    targetRefs: [{ group: "", kind: "Service", name: "web-v2" }],
    tokenBucket: { maxTokens: 5, fillInterval: "1m" },
    perSource: true,
  },
};

let fx: MeshFixture;

/** Status codes of `n` requests from one curl (one keep-alive connection), in order. */
async function codes(pod: string, url: string, n: number, args: string[] = []): Promise<number[]> {
  // curl's -o applies to the next URL only: one per URL, so no body reaches stdout.
  const urls = Array.from({ length: n }, () => ["-o", "/dev/null", url]).flat();
  const r = await fx.lab.exec(pod, [
    "curl",
    "-sS",
    "--max-time",
    "120",
    "-w",
    "%{http_code}\\n",
    ...args,
    ...urls,
  ]);
  expect(r.stderr).toBe("");
  return r.stdout
    .split("\n")
    .filter((l) => l !== "")
    .map(Number);
}

/** The caller's agent's count of aborts injected on web-v1 by a route rule's FaultInjection. */
async function abortsCounted(): Promise<number> {
  const text = await fx.mesh.agentHttp("n1", 15020, "/metrics");
  const m =
    /nodemesh_faults_injected_total\{destination_service="default\/web-v1:80",fault="abort",source="route"\} (\d+)/.exec(
      text,
    );
  return m ? Number(m[1]) : 0;
}

beforeAll(async () => {
  fx = await meshFixture("limits");
  fx.applyExtra([...CHAOS, PER_CLIENT]);
  await eventually(
    "the fault route to apply",
    async () => {
      const c = await codes("n1p1", `http://${WEB_V1_VIP}/probe`, 40, ["-H", "x-chaos: on"]);
      return c.includes(ABORT_STATUS);
    },
    30_000,
  );
}, 240_000);

afterAll(async () => {
  await fx?.close();
});

describe("fault injection on a header-matched route rule", () => {
  it(`aborts about ${ABORT_PERCENT} % of ${N} matching requests, within a bound that fails by chance < 1e-6`, async () => {
    const before = await abortsCounted();
    const got = await codes("n1p1", `http://${WEB_V1_VIP}/chaos`, N, ["-H", "x-chaos: on"]);
    expect(got).toHaveLength(N);
    const aborted = got.filter((c) => c === ABORT_STATUS).length;
    const { low, high } = chernoffBounds(N, ABORT_PERCENT / 100, 1e-6);
    expect([low, high]).toEqual([46, 162]);
    expect(aborted).toBeGreaterThanOrEqual(low);
    expect(aborted).toBeLessThanOrEqual(high);
    expect(got.every((c) => c === ABORT_STATUS || c === 200)).toBe(true);
    // Each abort was the mesh's answer: counted by the caller's agent one for one, and logged with the
    // flag (the lab keeps the last MiB of the agent's output, so only the latest lines are still there).
    expect((await abortsCounted()) - before).toBe(aborted);
    const flagged = fx
      .agentLog("n1")
      .filter((l) => l["path"] === "/chaos" && l["response_flags"] === "FaultInjected");
    expect(flagged.length).toBeGreaterThan(0);
  });

  it("injects nothing into requests the rule does not match", async () => {
    const got = await codes("n1p1", `http://${WEB_V1_VIP}/calm`, 300);
    expect(got.filter((c) => c !== 200)).toEqual([]);
  });
});

describe("a per-source RateLimitPolicy seen by real clients", () => {
  it("answers one client 429 with retry-after and RateLimit-* beyond its bucket while another passes", async () => {
    expect(await codes("n1p1", `http://${WEB_V2_VIP}/limited`, 7)).toEqual([
      200, 200, 200, 200, 200, 429, 429,
    ]);
    expect(await codes("n2p1", `http://${WEB_V2_VIP}/limited`, 5)).toEqual([200, 200, 200, 200, 200]);
    const r = await fx.curl("n1p1", `http://${WEB_V2_VIP}/limited`, ["-i"]);
    const head = r.body.split("\r\n\r\n")[0]!.toLowerCase();
    expect(head).toMatch(/^http\/1\.1 429/);
    expect(head).toMatch(/\r\nretry-after: \d+/);
    expect(head).toContain("\r\nratelimit-limit: 5");
    expect(head).toContain("\r\nratelimit-remaining: 0");
    expect(head).toContain("\r\nratelimit-policy: 5;w=60");
    const metrics = await fx.mesh.agentHttp("n2", 15020, "/metrics");
    expect(metrics).toMatch(
      /nodemesh_rate_limited_total\{destination_service="web-v2\.default",policy="RateLimitPolicy\/default\/web-v2-per-client",source_principal="spiffe:\/\/[^"]+\/ns\/default\/sa\/client"\} 3/,
    );
  });
});
