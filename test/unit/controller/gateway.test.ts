// Gateway and TLSCertificate validation (field-named errors), HTTPRoute parentRefs to a Gateway, the
// pure attachment rules (listener hostnames, sectionName/port, allowedRoutes), and the model's part:
// the CA issues a Gateway's identity only to its nodes; port conflicts reject; dangling refs warn.
import { describe, expect, test } from "vitest";
import {
  attachToGateway,
  formatIssue,
  gatewayIdentity,
  hostnameMatches,
  intersectHostnames,
  validateDocument,
} from "../../../controller/api/index.ts";
import type { Gateway, HTTPRoute, Resource } from "../../../controller/api/index.ts";
import { buildModel, sourced } from "../../../controller/model/model.ts";

const G = "gateway.networking.k8s.io/v1";
const gatewayDoc = (spec: Record<string, unknown> = {}, annotations: Record<string, string> = {}) => ({
  apiVersion: G,
  kind: "Gateway",
  metadata: {
    name: "ingress",
    namespace: "edge",
    annotations: { "nodemesh.io/gateway-nodes": "n1", ...annotations },
  },
  spec: {
    gatewayClassName: "nodemesh",
    listeners: [
      { name: "http", port: 80, protocol: "HTTP" },
      {
        name: "https",
        port: 443,
        protocol: "HTTPS",
        hostname: "*.example.com",
        tls: { certificateRefs: [{ group: "nodemesh.io", kind: "TLSCertificate", name: "wild" }] },
      },
    ],
    ...spec,
  },
});
const certDoc = (spec: Record<string, unknown>) => ({
  apiVersion: "nodemesh.io/v1alpha1",
  kind: "TLSCertificate",
  metadata: { name: "wild", namespace: "edge" },
  spec,
});
const routeDoc = (spec: Record<string, unknown>, ns = "edge") => ({
  apiVersion: G,
  kind: "HTTPRoute",
  metadata: { name: "web", namespace: ns },
  spec: { parentRefs: [{ name: "ingress", namespace: "edge" }], ...spec },
});

function ok(d: unknown): Resource {
  const r = validateDocument(d, "m.yaml", 1);
  if (!r.ok) throw new Error(r.issues.map(formatIssue).join("\n"));
  return r.resource;
}
function errors(d: unknown): string[] {
  const r = validateDocument(d, "m.yaml", 1);
  return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
}
const listener = (patch: Record<string, unknown>) =>
  gatewayDoc({ listeners: [{ name: "l", port: 80, protocol: "HTTP", ...patch }] });

describe("Gateway schema", () => {
  test("a Gateway with HTTP and HTTPS listeners validates with the spec's defaults", () => {
    const g = ok(gatewayDoc()) as Gateway;
    expect(g.spec.listeners[0]?.allowedRoutes.namespaces.from).toBe("Same");
    expect(g.spec.listeners[1]?.tls?.mode).toBe("Terminate");
    expect(gatewayIdentity(g, "cluster.local")).toBe("spiffe://cluster.local/ns/edge/sa/ingress");
    const sa = ok(gatewayDoc({}, { "nodemesh.io/gateway-service-account": "edge-gw" })) as Gateway;
    expect(gatewayIdentity(sa, "td")).toBe("spiffe://td/ns/edge/sa/edge-gw");
  });

  test.each<[string, unknown, string]>([
    [
      "HTTPS without tls",
      listener({ protocol: "HTTPS" }),
      "spec.listeners[0].tls: an HTTPS listener needs tls.certificateRefs",
    ],
    [
      "tls on HTTP",
      listener({ tls: { certificateRefs: [{ group: "nodemesh.io", kind: "TLSCertificate", name: "x" }] } }),
      "spec.listeners[0].tls: tls must not be set on an HTTP listener",
    ],
    [
      "a Secret reference",
      listener({ protocol: "HTTPS", tls: { certificateRefs: [{ group: "", kind: "Secret", name: "x" }] } }),
      'spec.listeners[0].tls.certificateRefs[0].group: group must be "nodemesh.io": certificateRefs name a TLSCertificate (on Kubernetes: a Secret of type kubernetes.io/tls, group "" and kind Secret)',
    ],
    [
      "Passthrough",
      listener({
        protocol: "HTTPS",
        tls: {
          mode: "Passthrough",
          certificateRefs: [{ group: "nodemesh.io", kind: "TLSCertificate", name: "x" }],
        },
      }),
      'spec.listeners[0].tls.mode: tls.mode must be "Terminate" (Passthrough is not supported)',
    ],
    [
      "a TCP listener",
      listener({ protocol: "TCP" }),
      "spec.listeners[0].protocol: protocol must be HTTP or HTTPS (TLS, TCP and UDP listeners are not supported)",
    ],
    [
      "namespaces from Selector",
      listener({ allowedRoutes: { namespaces: { from: "Selector" } } }),
      "spec.listeners[0].allowedRoutes.namespaces.from: from must be Same or All (Selector needs namespace labels, which plain hosts do not have)",
    ],
    [
      "a port out of range",
      listener({ port: 0 }),
      "spec.listeners[0].port: must be a port between 1 and 65535",
    ],
    [
      "an uppercase hostname",
      listener({ hostname: "Example.com" }),
      "spec.listeners[0].hostname: must be a lowercase DNS hostname, optionally starting with *.",
    ],
    [
      "duplicate listener names",
      gatewayDoc({
        listeners: [
          { name: "a", port: 80, protocol: "HTTP" },
          { name: "a", port: 81, protocol: "HTTP" },
        ],
      }),
      'spec.listeners[1].name: duplicate listener name "a"',
    ],
    [
      "two protocols on one port",
      gatewayDoc({
        listeners: [
          { name: "a", port: 80, protocol: "HTTP", hostname: "a.org" },
          {
            name: "b",
            port: 80,
            protocol: "HTTPS",
            hostname: "b.org",
            tls: { certificateRefs: [{ group: "nodemesh.io", kind: "TLSCertificate", name: "x" }] },
          },
        ],
      }),
      "spec.listeners[1].protocol: port 80 is already an HTTP listener; listeners on one port share its protocol",
    ],
    [
      "two listeners for one host",
      gatewayDoc({
        listeners: [
          { name: "a", port: 80, protocol: "HTTP" },
          { name: "b", port: 80, protocol: "HTTP" },
        ],
      }),
      "spec.listeners[1].hostname: another listener already serves port 80 for every hostname",
    ],
    ["no listeners", gatewayDoc({ listeners: [] }), "spec.listeners: a Gateway needs at least one listener"],
    [
      "a bad address",
      gatewayDoc({ addresses: [{ value: "10.0.0" }] }),
      "spec.addresses[0].value: value must be an IPv4 address (a.b.c.d)",
    ],
    [
      "a bad node name",
      gatewayDoc({}, { "nodemesh.io/gateway-nodes": "n1,N_2" }),
      'metadata.annotations.nodemesh.io/gateway-nodes: "N_2" is not a node name (a lowercase DNS name); list nodes separated by commas',
    ],
    [
      "a bad service account",
      gatewayDoc({}, { "nodemesh.io/gateway-service-account": "A" }),
      "metadata.annotations.nodemesh.io/gateway-service-account: must be a service account name (a lowercase DNS label, at most 63 characters)",
    ],
  ])("%s is refused, naming the field", (_what, d, message) => {
    expect(errors(d)).toContain(message);
  });

  test("the nodes annotation is required", () => {
    const d = gatewayDoc();
    d.metadata.annotations = {} as typeof d.metadata.annotations;
    expect(errors(d)).toEqual([
      'metadata.annotations: annotation nodemesh.io/gateway-nodes must name the node(s) that run the Gateway ("n1" or "n1,n2")',
    ]);
  });

  test("TLSCertificate paths must be absolute", () => {
    expect(ok(certDoc({ certFile: "/etc/c.pem", keyFile: "/etc/k.pem" })).kind).toBe("TLSCertificate");
    expect(errors(certDoc({ certFile: "c.pem", keyFile: "k.pem" }))).toEqual([
      "spec.certFile: certFile must be an absolute path",
      "spec.keyFile: keyFile must be an absolute path",
    ]);
  });
});

describe("HTTPRoute parentRefs", () => {
  test("an omitted group and kind mean a Gateway, as in the CRD", () => {
    const r = ok(routeDoc({})) as HTTPRoute;
    expect(r.spec.parentRefs[0]).toMatchObject({ group: "gateway.networking.k8s.io", kind: "Gateway" });
  });
  test("another kind of parent is refused", () => {
    expect(errors(routeDoc({ parentRefs: [{ group: "example.org", kind: "Mesh", name: "m" }] }))).toEqual([
      'spec.parentRefs[0].kind: parentRef example.org/Mesh is not supported: a route attaches to a Service (group "", kind Service) or to a Gateway (group gateway.networking.k8s.io, kind Gateway; the defaults)',
    ]);
  });
  test("a Service and a Gateway of the same name are different parents", () => {
    expect(
      errors(routeDoc({ parentRefs: [{ name: "x" }, { group: "", kind: "Service", name: "x" }] })),
    ).toEqual([]);
  });
});

describe("attachment", () => {
  test.each<[string, string, boolean]>([
    ["*.example.com", "a.example.com", true],
    ["*.example.com", "a.b.example.com", true],
    ["*.example.com", "example.com", false],
    ["*.example.com", "*.a.example.com", true],
    ["a.example.com", "a.example.com", true],
    ["a.example.com", "b.example.com", false],
  ])("%s covers %s: %s", (pattern, host, covers) => expect(hostnameMatches(pattern, host)).toBe(covers));

  test.each<[string | undefined, string[] | undefined, string[] | undefined]>([
    [undefined, undefined, []],
    [undefined, ["a.org"], ["a.org"]],
    ["a.org", undefined, ["a.org"]],
    ["*.example.com", ["a.example.com", "other.org"], ["a.example.com"]],
    ["a.example.com", ["*.example.com"], ["a.example.com"]],
    ["*.example.com", ["*.com"], ["*.example.com"]],
    ["a.org", ["b.org"], undefined],
  ])("listener %s with route hostnames %j → %j", (l, r, want) =>
    expect(intersectHostnames(l, r)).toEqual(want),
  );

  const g = ok(
    gatewayDoc({
      listeners: [
        ...gatewayDoc().spec.listeners,
        {
          name: "all",
          port: 8080,
          protocol: "HTTP",
          allowedRoutes: { namespaces: { from: "All" }, kinds: [{ kind: "GRPCRoute" }] },
        },
      ],
    }),
  ) as Gateway;
  const attach = (route: HTTPRoute) =>
    attachToGateway(route, route.spec.parentRefs[0]!, g).map((a) =>
      "refused" in a
        ? `${a.listener.name}: ${a.refused}`
        : `${a.listener.name} ${a.hostnames.join(",") || "*"}`,
    );

  test("sectionName and port select listeners; hostnames intersect", () => {
    expect(attach(ok(routeDoc({ hostnames: ["shop.example.com"] })) as HTTPRoute)).toEqual([
      "http shop.example.com",
      "https shop.example.com",
      "all: listener all does not allow HTTPRoute (allowedRoutes.kinds)",
    ]);
    expect(
      attach(
        ok(
          routeDoc({ parentRefs: [{ name: "ingress", sectionName: "https" }], hostnames: ["x.org"] }),
        ) as HTTPRoute,
      ),
    ).toEqual(["https: no route hostname is within listener https's hostname *.example.com"]);
    expect(attach(ok(routeDoc({ parentRefs: [{ name: "ingress", port: 80 }] })) as HTTPRoute)).toEqual([
      "http *",
    ]);
  });

  test("allowedRoutes Same refuses a route of another namespace", () => {
    const other = ok(
      routeDoc({ parentRefs: [{ name: "ingress", namespace: "edge", port: 80 }] }, "shop"),
    ) as HTTPRoute;
    expect(attach(other)).toEqual([
      "http: listener http allows routes from namespace edge only (allowedRoutes.namespaces.from: Same)",
    ]);
  });
});

describe("the model", () => {
  const build = (docs: unknown[]) => buildModel(docs.map((d) => sourced(ok(d))));

  test("the CA places a Gateway's identity on its nodes only", () => {
    const { model } = build([
      gatewayDoc({}, { "nodemesh.io/gateway-nodes": "n1, n3" }),
      certDoc({ certFile: "/c", keyFile: "/k" }),
    ]);
    const id = "spiffe://cluster.local/ns/edge/sa/ingress";
    expect(model?.identityOnNode(id, "n1")).toBe(true);
    expect(model?.identityOnNode(id, "n3")).toBe(true);
    expect(model?.identityOnNode(id, "n2")).toBe(false);
    expect(model?.identityOnNode("spiffe://cluster.local/ns/edge/sa/other", "n1")).toBe(false);
  });

  test("a Gateway of another class gets no identity and a warning", () => {
    const { model, warnings } = build([
      gatewayDoc({ gatewayClassName: "istio", listeners: [{ name: "h", port: 80, protocol: "HTTP" }] }),
    ]);
    expect(model?.identityOnNode("spiffe://cluster.local/ns/edge/sa/ingress", "n1")).toBe(false);
    expect(warnings.map((w) => w.message)).toEqual([
      'gatewayClassName istio is not "nodemesh": no agent runs this Gateway',
    ]);
  });

  test("two Gateways on one port of one node reject the config", () => {
    const second = {
      ...gatewayDoc(),
      metadata: { name: "second", namespace: "edge", annotations: { "nodemesh.io/gateway-nodes": "n2,n1" } },
    };
    const { model, errors: errs } = build([gatewayDoc(), certDoc({ certFile: "/c", keyFile: "/k" }), second]);
    expect(model).toBeUndefined();
    expect(errs.map(formatIssue)).toEqual([
      "<memory>: document 1 (Gateway edge/second): spec.listeners: port 80 on node n1 is already used by Gateway edge/ingress (<memory> document 1)",
      "<memory>: document 1 (Gateway edge/second): spec.listeners: port 443 on node n1 is already used by Gateway edge/ingress (<memory> document 1)",
    ]);
  });

  test("a missing certificate, Gateway or listener is a warning", () => {
    const { model, warnings } = build([
      gatewayDoc(),
      routeDoc({ parentRefs: [{ name: "ingress", sectionName: "nope" }] }),
      { ...routeDoc({ parentRefs: [{ name: "ghost" }] }), metadata: { name: "r2", namespace: "edge" } },
    ]);
    expect(model).toBeDefined();
    expect(warnings.map((w) => `${w.path}: ${w.message}`)).toEqual([
      "spec.listeners[1].tls.certificateRefs[0]: TLSCertificate edge/wild does not exist (the listener has no certificate until it does)",
      "spec.parentRefs[0]: gateway edge/ingress has no listener of that sectionName/port",
      "spec.parentRefs[0]: gateway edge/ghost does not exist (the route attaches to nothing yet)",
    ]);
  });
});
