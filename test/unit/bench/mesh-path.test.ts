// The bench mesh's configuration: the L4 and the L7 service over the same server pod, the one
// HTTPRoute on the L7 one, and the profiling switch for the agents.
import { describe, expect, it } from "vitest";
import {
  agentEnvFor,
  BENCH_LAYERS,
  BENCH_ROUTE,
  benchMeshSpec,
  CPU_PROF_ENV,
  MESH_HTTP_VIP,
  MESH_VIP,
} from "../../../bench/mesh-path.ts";

describe("bench mesh spec", () => {
  it("declares the TCP service opaque and the HTTP one L7, on distinct VIPs over the same pod", () => {
    const spec = benchMeshSpec(8080);
    expect(spec.pods).toEqual({ n1p1: { app: "bench-client" }, n2p1: { app: "bench-server" } });
    const [tcp, http] = spec.services;
    expect(tcp).toMatchObject({ vip: MESH_VIP, port: 8080, app: "bench-server" });
    expect(tcp?.appProtocol).toBeUndefined();
    expect(http).toMatchObject({
      name: BENCH_ROUTE,
      vip: MESH_HTTP_VIP,
      appProtocol: "http",
      app: "bench-server",
    });
    expect(MESH_VIP).not.toBe(MESH_HTTP_VIP);
  });

  it("attaches one HTTPRoute to the HTTP service's port, routing every path back to it", () => {
    type Route = { apiVersion: string; kind: string; spec: { parentRefs: unknown; rules: unknown } };
    const [route, layersRoute, ...policies] = benchMeshSpec(9000).extra as Route[];
    expect(layersRoute?.spec.parentRefs).toEqual([
      { group: "", kind: "Service", name: BENCH_LAYERS, port: 9000 },
    ]);
    // The layers path: every issue-8 layer on its own service, the bare route's service has none.
    expect(policies.map((p) => p.kind)).toEqual(["TrafficPolicy", "RateLimitPolicy"]);
    expect(JSON.stringify(policies)).not.toContain(`"name":"${BENCH_ROUTE}"`);
    expect(route).toMatchObject({ apiVersion: "gateway.networking.k8s.io/v1", kind: "HTTPRoute" });
    expect(route?.spec.parentRefs).toEqual([{ group: "", kind: "Service", name: BENCH_ROUTE, port: 9000 }]);
    expect(route?.spec.rules).toEqual([
      {
        name: "all",
        matches: [{ path: { type: "PathPrefix", value: "/" } }],
        backendRefs: [{ name: BENCH_ROUTE, port: 9000 }],
      },
    ]);
  });
});

describe("agent profiling switch", () => {
  it("adds --cpu-prof only when asked, keeping NODE_OPTIONS already set", () => {
    expect(agentEnvFor({})).toEqual({});
    expect(agentEnvFor({ [CPU_PROF_ENV]: "" })).toEqual({});
    expect(agentEnvFor({ [CPU_PROF_ENV]: "/tmp/prof" })).toEqual({
      NODE_OPTIONS: "--cpu-prof --cpu-prof-dir=/tmp/prof",
    });
    expect(agentEnvFor({ [CPU_PROF_ENV]: "/tmp/prof", NODE_OPTIONS: "--trace-gc" })).toEqual({
      NODE_OPTIONS: "--trace-gc --cpu-prof --cpu-prof-dir=/tmp/prof",
    });
  });

  it("refuses a relative or spaced directory, naming the variable", () => {
    expect(() => agentEnvFor({ [CPU_PROF_ENV]: "prof" })).toThrow(
      new RegExp(`${CPU_PROF_ENV}: expected an absolute`),
    );
    expect(() => agentEnvFor({ [CPU_PROF_ENV]: "/tmp/my prof" })).toThrow(CPU_PROF_ENV);
  });
});
