// TrafficPolicy.spec.loadBalancer: simple kinds and consistentHash (Istio ConsistentHashLB), valid
// documents and each rejection message.
import { describe, expect, test } from "vitest";
import { formatIssue, validateDocument } from "../../../controller/api/index.ts";

const V = "nodemesh.io/v1alpha1";
const doc = (loadBalancer: unknown) => ({
  apiVersion: V,
  kind: "TrafficPolicy",
  metadata: { name: "web" },
  spec: { targetRefs: [{ kind: "Service", name: "web" }], loadBalancer },
});

function parse(loadBalancer: unknown) {
  return validateDocument(doc(loadBalancer), "mesh.yaml", 1);
}

function errors(loadBalancer: unknown): string[] {
  const r = parse(loadBalancer);
  return r.ok
    ? []
    : r.issues.map((i) => formatIssue(i).replace("mesh.yaml: document 1 (TrafficPolicy default/web): ", ""));
}

describe("valid loadBalancer settings", () => {
  test.each([
    { simple: "ROUND_ROBIN" },
    { simple: "LEAST_REQUEST" },
    { simple: "RANDOM" },
    { simple: "PEAK_EWMA" },
    { consistentHash: { httpHeaderName: "x-user" } },
    { consistentHash: { httpCookie: { name: "sid" } } },
    {
      consistentHash: { httpCookie: { name: "sid", path: "/shop", ttl: "1h" }, maglev: { tableSize: 65537 } },
    },
    { consistentHash: { httpCookie: { name: "sid", ttl: "0s" } } },
    { consistentHash: { useSourceIp: true, ringHash: { minimumRingSize: 4096 } } },
    { consistentHash: { httpQueryParameterName: "shard", ringHash: {} } },
    { consistentHash: { useSourceIp: true, maglev: {} } },
  ])("%j", (lb) => {
    const r = parse(lb);
    expect(r.ok ? [] : r.issues.map(formatIssue)).toEqual([]);
    if (!r.ok || r.resource.kind !== "TrafficPolicy") return;
    expect(r.resource.spec.loadBalancer).toEqual(lb);
    // Wire invariant: the parsed form parses to itself.
    expect(validateDocument(r.resource, "wire", 1)).toEqual(r);
  });
});

describe("rejected loadBalancer settings name the field", () => {
  test.each<[string, unknown, string[]]>([
    [
      "unknown simple",
      { simple: "LEAST_CONN" },
      [
        "spec.loadBalancer.simple: loadBalancer.simple must be ROUND_ROBIN, LEAST_REQUEST, RANDOM or PEAK_EWMA",
      ],
    ],
    ["empty", {}, ["spec.loadBalancer: loadBalancer needs simple or consistentHash"]],
    [
      "both",
      { simple: "RANDOM", consistentHash: { useSourceIp: true } },
      ["spec.loadBalancer.consistentHash: simple and consistentHash are mutually exclusive"],
    ],
    [
      "no hash key",
      { consistentHash: { ringHash: {} } },
      [
        "spec.loadBalancer.consistentHash: needs exactly one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName",
      ],
    ],
    [
      "two hash keys",
      { consistentHash: { httpHeaderName: "x-user", useSourceIp: true } },
      [
        "spec.loadBalancer.consistentHash: needs exactly one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName",
      ],
    ],
    [
      "ring hash and maglev",
      { consistentHash: { useSourceIp: true, ringHash: {}, maglev: {} } },
      ["spec.loadBalancer.consistentHash.maglev: ringHash and maglev are mutually exclusive"],
    ],
    [
      "bad header name",
      { consistentHash: { httpHeaderName: "x user" } },
      ["spec.loadBalancer.consistentHash.httpHeaderName: must be an HTTP header name (an RFC 9110 token)"],
    ],
    [
      "bad cookie name",
      { consistentHash: { httpCookie: { name: "s=id" } } },
      ["spec.loadBalancer.consistentHash.httpCookie.name: must be a cookie name (an RFC 6265 token)"],
    ],
    [
      "relative cookie path",
      { consistentHash: { httpCookie: { name: "sid", path: "shop" } } },
      [
        'spec.loadBalancer.consistentHash.httpCookie.path: must start with "/" and contain no ";" or control characters',
      ],
    ],
    [
      "cookie path with ;",
      { consistentHash: { httpCookie: { name: "sid", path: "/a;b" } } },
      [
        'spec.loadBalancer.consistentHash.httpCookie.path: must start with "/" and contain no ";" or control characters',
      ],
    ],
    [
      "bad cookie ttl",
      { consistentHash: { httpCookie: { name: "sid", ttl: "1 hour" } } },
      [
        'spec.loadBalancer.consistentHash.httpCookie.ttl: must be a duration such as "250ms", "1s", "1m30s" or "24h"',
      ],
    ],
    [
      "unknown cookie field",
      { consistentHash: { httpCookie: { name: "sid", secure: true } } },
      ['spec.loadBalancer.consistentHash.httpCookie: Unrecognized key: "secure"'],
    ],
    [
      "useSourceIp false",
      { consistentHash: { useSourceIp: false } },
      ["spec.loadBalancer.consistentHash.useSourceIp: must be true when set (omit it otherwise)"],
    ],
    [
      "empty query parameter",
      { consistentHash: { httpQueryParameterName: "" } },
      ["spec.loadBalancer.consistentHash.httpQueryParameterName: must not be empty"],
    ],
    [
      "ring too small",
      { consistentHash: { useSourceIp: true, ringHash: { minimumRingSize: 0 } } },
      ["spec.loadBalancer.consistentHash.ringHash.minimumRingSize: must be between 1 and 131072"],
    ],
    [
      "ring too large",
      { consistentHash: { useSourceIp: true, ringHash: { minimumRingSize: 8_388_608 } } },
      ["spec.loadBalancer.consistentHash.ringHash.minimumRingSize: must be between 1 and 131072"],
    ],
    [
      "fractional ring",
      { consistentHash: { useSourceIp: true, ringHash: { minimumRingSize: 10.5 } } },
      ["spec.loadBalancer.consistentHash.ringHash.minimumRingSize: must be an integer"],
    ],
    [
      "maglev not prime",
      { consistentHash: { useSourceIp: true, maglev: { tableSize: 65536 } } },
      ["spec.loadBalancer.consistentHash.maglev.tableSize: must be a prime number (e.g. 65537, the default)"],
    ],
    [
      "maglev too large",
      { consistentHash: { useSourceIp: true, maglev: { tableSize: 5_000_087 } } },
      ["spec.loadBalancer.consistentHash.maglev.tableSize: must be a prime of at most 5000011"],
    ],
    [
      "Istio's deprecated top-level minimumRingSize",
      { consistentHash: { useSourceIp: true, minimumRingSize: 1024 } },
      ['spec.loadBalancer.consistentHash: Unrecognized key: "minimumRingSize"'],
    ],
  ])("%s", (_name, lb, expected) => {
    expect(errors(lb)).toEqual(expected);
  });
});
