// Status write-back decisions (controller/sources/kube/status.ts): conditions carry
// observedGeneration and keep lastTransitionTime while their status holds; an unchanged status is
// not written again (our own writes come back as watch events); other controllers' route parents
// are kept. Also the controller's --source/--kubeconfig flags.
import { describe, expect, test } from "vitest";
import { parseControllerArgs } from "../../../controller/main.ts";
import { CONTROLLER_NAME, crdStatus, routeStatus } from "../../../controller/sources/kube/status.ts";
import { microTime } from "../../../controller/sources/kube/leader.ts";

const T0 = new Date("2026-01-01T00:00:00Z");
const T1 = new Date("2026-01-01T01:00:00Z");
const ok = { accepted: true, reason: "Accepted", message: "accepted by the nodemesh controller" };
const bad = { accepted: false, reason: "Invalid", message: "spec.action: nope" };

describe("CRD status", () => {
  const obj = (generation: number, status?: unknown) => ({
    metadata: { name: "p", namespace: "ns", generation },
    status,
  });

  test("a first verdict writes Accepted with observedGeneration", () => {
    expect(crdStatus(obj(3), ok, T0)).toEqual({
      conditions: [
        {
          type: "Accepted",
          status: "True",
          reason: "Accepted",
          message: ok.message,
          observedGeneration: 3,
          lastTransitionTime: "2026-01-01T00:00:00Z",
        },
      ],
    });
  });

  test("the same verdict on the same generation writes nothing", () => {
    const first = crdStatus(obj(3), ok, T0);
    expect(crdStatus(obj(3, first), ok, T1)).toBeUndefined();
  });

  test("a new generation with the same status keeps lastTransitionTime; a flip moves it", () => {
    const first = crdStatus(obj(3), ok, T0);
    expect(crdStatus(obj(4, first), ok, T1)?.conditions?.[0]).toMatchObject({
      observedGeneration: 4,
      lastTransitionTime: "2026-01-01T00:00:00Z",
    });
    expect(crdStatus(obj(4, first), bad, T1)?.conditions?.[0]).toMatchObject({
      status: "False",
      reason: "Invalid",
      lastTransitionTime: "2026-01-01T01:00:00Z",
    });
  });
});

describe("route status", () => {
  const other = {
    parentRef: { kind: "Gateway", name: "gw" },
    controllerName: "example.com/gateway",
    conditions: [],
  };
  const route = (status?: unknown) => ({
    metadata: { name: "r", namespace: "ns", generation: 1 },
    spec: {
      parentRefs: [
        { kind: "Gateway", name: "gw" },
        { group: "", kind: "Service", name: "web", port: 80 },
      ],
    },
    status,
  });

  test("one parent entry per Service parent with Accepted and ResolvedRefs; other controllers' kept", () => {
    const st = routeStatus(
      route({ parents: [other] }),
      { ...ok, refs: { resolved: false, reason: "BackendNotFound", message: "x" } },
      T0,
    );
    expect(st?.parents?.[0]).toEqual(other);
    expect(st?.parents?.[1]).toMatchObject({
      controllerName: CONTROLLER_NAME,
      parentRef: { group: "", kind: "Service", name: "web", port: 80 },
    });
    expect(st?.parents?.[1]?.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`)).toEqual([
      "Accepted=True/Accepted",
      "ResolvedRefs=False/BackendNotFound",
    ]);
    expect(
      routeStatus(
        route(st),
        { ...ok, refs: { resolved: false, reason: "BackendNotFound", message: "x" } },
        T1,
      ),
    ).toBeUndefined();
  });
});

describe("leases and flags", () => {
  test("MicroTime has six fractional digits", () => {
    expect(microTime(Date.UTC(2026, 0, 1, 0, 0, 0, 123))).toBe("2026-01-01T00:00:00.123000Z");
  });

  test("--source kube needs no --config and takes --kubeconfig; bad combinations name the flag", () => {
    const o = parseControllerArgs(["--source", "kube", "--kubeconfig", "/k"], {});
    expect(o).toMatchObject({ sourceKind: "kube", kubeconfig: "/k", configPath: undefined });
    expect(() => parseControllerArgs(["--source", "etcd"], {})).toThrow(/--source must be "file" or "kube"/);
    expect(() => parseControllerArgs(["--source", "kube", "--config", "m.yaml"], {})).toThrow(
      /--config and --source kube are exclusive/,
    );
    expect(() => parseControllerArgs(["--config", "m.yaml", "--kubeconfig", "/k"], {})).toThrow(
      /--kubeconfig needs --source kube/,
    );
    expect(parseControllerArgs(["--config", "m.yaml"], {}).sourceKind).toBe("file");
  });
});
