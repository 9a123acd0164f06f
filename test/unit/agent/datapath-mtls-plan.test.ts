// The per-port PeerAuthentication plan the datapath enforces: plaintextPlan() from the policies
// (agent/policy/peer-auth.ts), checkMtlsPlan() both datapaths apply, and the loopback datapath's
// handling of plans (checked and recorded like the eBPF one).
import { describe, expect, it } from "vitest";
import type { PeerAuthentication, WorkloadEntry } from "../../../controller/api/index.ts";
import { checkMtlsPlan, type MtlsPlan } from "../../../agent/datapath/datapath.ts";
import { LoopbackDatapath } from "../../../agent/datapath/loopback.ts";
import { plaintextPlan, samePlan } from "../../../agent/policy/peer-auth.ts";

const H = { apiVersion: "nodemesh.io/v1alpha1" as const };
const ROOT = "nodemesh-system";
const w: WorkloadEntry = {
  ...H,
  kind: "WorkloadEntry",
  metadata: { name: "db", namespace: "data" },
  spec: { address: "10.0.0.1", serviceAccount: "db", labels: { app: "db" }, node: "n1", netns: "x" },
};
type Mode = "STRICT" | "PERMISSIVE" | "UNSET";
const pa = (name: string, ns: string, mode: Mode, ports?: Record<string, Mode>): PeerAuthentication => ({
  ...H,
  kind: "PeerAuthentication",
  metadata: { name, namespace: ns },
  spec: {
    mtls: { mode },
    ...(ports
      ? {
          selector: { matchLabels: { app: "db" } },
          portLevelMtls: Object.fromEntries(Object.entries(ports).map(([p, m]) => [p, { mode: m }])),
        }
      : {}),
  },
});

describe("plaintextPlan", () => {
  it("defaults to STRICT with no exceptions", () => {
    expect(plaintextPlan([], w, ROOT)).toEqual({ strict: true, ports: [] });
  });

  it("a STRICT workload with a PERMISSIVE port opens that port only", () => {
    expect(plaintextPlan([pa("p", "data", "STRICT", { "8080": "PERMISSIVE" })], w, ROOT)).toEqual({
      strict: true,
      ports: [{ port: 8080, strict: false }],
    });
  });

  it("a PERMISSIVE workload with a STRICT port closes that port only", () => {
    expect(plaintextPlan([pa("p", "data", "PERMISSIVE", { "9090": "STRICT" })], w, ROOT)).toEqual({
      strict: false,
      ports: [{ port: 9090, strict: true }],
    });
  });

  it("lists only ports that differ from the default, sorted", () => {
    const p = pa("p", "data", "STRICT", {
      "9999": "STRICT",
      "443": "PERMISSIVE",
      "80": "PERMISSIVE",
      "81": "UNSET",
    });
    expect(plaintextPlan([p], w, ROOT)).toEqual({
      strict: true,
      ports: [
        { port: 80, strict: false },
        { port: 443, strict: false },
      ],
    });
  });

  it("the workload level decides over the namespace level, port by port as resolveMtlsMode does", () => {
    const ns = pa("ns", "data", "PERMISSIVE");
    const mesh = pa("default", ROOT, "PERMISSIVE");
    // UNSET at the workload level inherits the namespace's PERMISSIVE default; its STRICT port stays.
    expect(plaintextPlan([mesh, ns, pa("wl", "data", "UNSET", { "5432": "STRICT" })], w, ROOT)).toEqual({
      strict: false,
      ports: [{ port: 5432, strict: true }],
    });
  });

  it("ignores port keys that are not canonical ports (never matched by resolveMtlsMode)", () => {
    const p = pa("p", "data", "STRICT", { "0": "PERMISSIVE", "08080": "PERMISSIVE", "70000": "PERMISSIVE" });
    expect(plaintextPlan([p], w, ROOT)).toEqual({ strict: true, ports: [] });
  });

  it("a policy of another namespace does not apply", () => {
    expect(plaintextPlan([pa("other", "web", "PERMISSIVE", { "80": "STRICT" })], w, ROOT)).toEqual({
      strict: true,
      ports: [],
    });
  });

  it("samePlan compares the default and every exception", () => {
    const a: MtlsPlan = { strict: true, ports: [{ port: 80, strict: false }] };
    expect(samePlan(a, { strict: true, ports: [{ port: 80, strict: false }] })).toBe(true);
    expect(samePlan(a, { strict: false, ports: [{ port: 80, strict: false }] })).toBe(false);
    expect(samePlan(a, { strict: true, ports: [{ port: 81, strict: false }] })).toBe(false);
    expect(samePlan(a, { strict: true, ports: [] })).toBe(false);
  });
});

describe("checkMtlsPlan", () => {
  const bad = (plan: unknown) => () => checkMtlsPlan("ns/a", plan as MtlsPlan);
  it("names the workload and the field of a bad plan", () => {
    expect(bad({ strict: "yes", ports: [] })).toThrow(
      'workload ns/a: mtls.strict must be a boolean, got "yes"',
    );
    expect(bad({ strict: true })).toThrow("workload ns/a: mtls.ports must be an array");
    expect(bad({ strict: true, ports: [{ port: 0, strict: true }] })).toThrow(
      "workload ns/a: mtls.ports[0].port 0 is not a port 1-65535",
    );
    expect(bad({ strict: true, ports: [{ port: 80 }] })).toThrow(
      "workload ns/a: mtls.ports[0].strict must be a boolean",
    );
    expect(
      bad({
        strict: true,
        ports: [
          { port: 80, strict: false },
          { port: 80, strict: false },
        ],
      }),
    ).toThrow("workload ns/a: mtls.ports[1].port 80 is listed twice");
  });
});

describe("LoopbackDatapath plans", () => {
  it("checks and records the plan at enroll and on change, like the eBPF datapath", async () => {
    const dp = new LoopbackDatapath({ hbonePort: 0 });
    const plan: MtlsPlan = { strict: true, ports: [{ port: 8080, strict: false }] };
    await dp.enroll({ uid: "ns/a", address: "127.0.9.1", netns: undefined, cgroup: undefined, mtls: plan });
    try {
      expect(dp.mtlsPlan("ns/a")).toEqual(plan);
      await dp.setMtls("ns/a", { strict: false, ports: [] });
      expect(dp.mtlsPlan("ns/a")).toEqual({ strict: false, ports: [] });
      await expect(dp.setMtls("ns/a", { strict: true, ports: [{ port: -1, strict: true }] })).rejects.toThrow(
        "mtls.ports[0].port -1 is not a port",
      );
      expect(dp.mtlsPlan("ns/a")).toEqual({ strict: false, ports: [] });
      await expect(dp.setMtls("ns/b", plan)).rejects.toThrow("workload ns/b is not enrolled");
    } finally {
      await dp.close();
    }
  });
});
