// WorkloadEntry.spec.ready: a not-ready workload is a valid, enrolled entry but no Service's endpoint
// (endpointsOf), while an absent field means ready, so plain-host YAML keeps working unchanged.
import { describe, expect, test } from "vitest";
import { endpointsOf, formatIssue, validateDocument } from "../../../controller/api/index.ts";
import type { Service, WorkloadEntry } from "../../../controller/api/index.ts";

function parse<T>(doc: Record<string, unknown>): T {
  const r = validateDocument(doc, "test.yaml", 1);
  if (!r.ok) throw new Error(r.issues.map(formatIssue).join("; "));
  return r.resource as T;
}

const service = parse<Service>({
  apiVersion: "nodemesh.io/v1alpha1",
  kind: "Service",
  metadata: { name: "web", namespace: "shop" },
  spec: { addresses: ["10.96.0.10"], ports: [{ port: 80, targetPort: 8080 }], selector: { app: "web" } },
});

function workload(name: string, address: string, ready?: unknown): Record<string, unknown> {
  return {
    apiVersion: "nodemesh.io/v1alpha1",
    kind: "WorkloadEntry",
    metadata: { name, namespace: "shop" },
    spec: {
      address,
      node: "n1",
      netns: name,
      labels: { app: "web" },
      ...(ready === undefined ? {} : { ready }),
    },
  };
}

describe("WorkloadEntry.spec.ready", () => {
  test("absent means ready: the workload is an endpoint", () => {
    const w = parse<WorkloadEntry>(workload("a", "10.1.0.1"));
    expect(w.spec.ready).toBeUndefined();
    expect(endpointsOf(service, [w]).map((e) => e.address)).toEqual(["10.1.0.1"]);
  });

  test("false: valid, but endpointsOf skips it; true: an endpoint", () => {
    const notReady = parse<WorkloadEntry>(workload("a", "10.1.0.1", false));
    const ready = parse<WorkloadEntry>(workload("b", "10.1.0.2", true));
    expect(endpointsOf(service, [notReady, ready]).map((e) => e.address)).toEqual(["10.1.0.2"]);
    expect(endpointsOf(service, [notReady])).toEqual([]);
  });

  test("a non-boolean is refused with a message naming the field", () => {
    const r = validateDocument(workload("a", "10.1.0.1", "yes"), "test.yaml", 1);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const text = r.issues.map(formatIssue).join("\n");
    expect(text).toMatch(/spec\.ready/);
    expect(text).toMatch(/true or false/);
  });
});
