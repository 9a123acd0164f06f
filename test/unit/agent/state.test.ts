import { describe, expect, it } from "vitest";
import { MeshView } from "../../../agent/state/view.ts";
import { StaticConfigSource } from "../../../agent/state/source.ts";
import { parseAgentSettings, agentSettingsFromEnv, DEFAULT_HBONE_PORT } from "../../../agent/config.ts";
import { baseConfig, VIP } from "../../integration/agent/harness.ts";

describe("MeshView", () => {
  const config = {
    ...baseConfig("7", ["pem"]),
    trafficPolicies: [
      {
        apiVersion: "nodemesh.io/v1alpha1" as const,
        kind: "TrafficPolicy" as const,
        metadata: { name: "echo", namespace: "default" },
        spec: {
          targetRefs: [{ group: "" as const, kind: "Service" as const, name: "echo" }],
          loadBalancer: { simple: "LEAST_REQUEST" as const },
          connectionPool: { tcp: { connectTimeout: "250ms" } },
          outlierDetection: { consecutiveGatewayErrors: 1, baseEjectionTime: "1m", maxEjectionPercent: 100 },
        },
      },
    ],
    authorizationPolicies: [
      {
        apiVersion: "nodemesh.io/v1alpha1" as const,
        kind: "AuthorizationPolicy" as const,
        metadata: { name: "echo-only", namespace: "default" },
        spec: { selector: { matchLabels: { app: "echo" } }, action: "ALLOW" as const, rules: [{}] },
      },
    ],
  };
  const view = new MeshView(config, { nodeName: "node-a" });

  it("resolves VIP:port to the service port with every endpoint (target port applied)", () => {
    const t = view.resolve(VIP, 80);
    expect(t?.kind).toBe("service");
    if (t?.kind !== "service") return;
    expect(t.servicePort.endpoints.map((e) => e.key).sort()).toEqual(["127.0.1.2:8080", "127.0.2.2:8080"]);
    expect(t.servicePort.service).toMatchObject({
      host: "echo.default",
      loadBalancer: "LEAST_REQUEST",
      connectTimeoutMs: 250,
      outlier: { consecutiveGatewayErrors: 1, baseEjectionTimeMs: 60_000, maxEjectionPercent: 100 },
    });
  });

  it("resolves a workload address on any port, and nothing else", () => {
    const t = view.resolve("127.0.2.2", 9999);
    expect(t).toMatchObject({ kind: "workload", endpoint: { key: "127.0.2.2:9999", port: 9999 } });
    expect(view.resolve(VIP, 81)).toBeUndefined();
    expect(view.resolve("8.8.8.8", 53)).toBeUndefined();
  });

  it("lists local workloads with SPIFFE IDs, their policies and the meshed destinations", () => {
    expect(view.localWorkloads().map((w) => w.uid)).toEqual(["default/client", "default/echo-a"]);
    expect(view.localWorkload("default/echo-a")?.spiffeId).toBe("spiffe://cluster.local/ns/default/sa/echo");
    expect(view.authorizationPoliciesFor("default/echo-a").map((p) => p.metadata.name)).toEqual([
      "echo-only",
    ]);
    expect(view.authorizationPoliciesFor("default/client")).toEqual([]);
    expect(view.meshedDestinations()).toContainEqual({ address: VIP, port: 80 });
    expect(view.meshedDestinations()).toContainEqual({ address: "127.0.2.2", port: 0 });
  });

  it("StaticConfigSource notifies subscribers", () => {
    const src = new StaticConfigSource();
    const seen: string[] = [];
    const off = src.onConfig((c) => seen.push(c.version));
    src.set(config);
    off();
    src.set({ ...config, version: "8" });
    expect(seen).toEqual(["7"]);
    expect(src.current()?.version).toBe("8");
  });
});

describe("agent settings", () => {
  it("defaults, frozen", () => {
    const s = parseAgentSettings({ nodeName: "n1" });
    expect(s.hbonePort).toBe(DEFAULT_HBONE_PORT);
    expect(s.adminHost).toBe("127.0.0.1");
    expect(Object.isFrozen(s)).toBe(true);
  });
  it("reads env names and coerces numbers", () => {
    const s = agentSettingsFromEnv({
      NODEMESH_NODE_NAME: "n2",
      NODEMESH_ADMIN_PORT: "0",
      LOG_LEVEL: "debug",
    });
    expect(s).toMatchObject({ nodeName: "n2", adminPort: 0, logLevel: "debug" });
  });
  it("rejects bad values with a code and the field name", () => {
    expect(() => parseAgentSettings({ adminPort: 70000 })).toThrow(/adminPort/);
    try {
      parseAgentSettings({ bogus: 1 } as never);
    } catch (e) {
      expect((e as { code: string }).code).toBe("NODEMESH_ERR_AGENT_CONFIG");
    }
    expect.assertions(2);
  });
});
