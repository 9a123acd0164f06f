// Gateways and TLS Secrets on Kubernetes: the pure mapping (Secret refs become TLSCertificate refs,
// only nodemesh.io annotations kept, another class skipped), the Secret checks (type, keys, PEM,
// key match), the Accepted/Programmed verdict and status, and where the key material goes: the
// TLSCertificate schema with inline PEMs, only to the nodes that run a Gateway naming it (model and
// hub), loaded by the agent's store without ever appearing in its dump.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Secret } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CertificateStore } from "../../../agent/gateway/certs.ts";
import { createLogger } from "../../../agent/log.ts";
import { formatIssue, validateDocument } from "../../../controller/api/index.ts";
import type { Resource } from "../../../controller/api/index.ts";
import { ConfigHub } from "../../../controller/distribution/hub.ts";
import { buildModel, sourced } from "../../../controller/model/model.ts";
import {
  gatewayVerdict,
  mapGateway,
  mapTlsSecret,
  secretRefsOf,
  tlsSecretProblem,
} from "../../../controller/sources/kube/gateway.ts";
import { kindsFor } from "../../../controller/sources/kube/kinds.ts";
import type { KubeObject } from "../../../controller/sources/kube/map.ts";
import { gatewayStatus } from "../../../controller/sources/kube/status.ts";
import { opensslRoot, type PemPair } from "../../helpers/openssl-certs.ts";
import { opensslServerCert } from "../../helpers/server-certs.ts";

let dir: string;
let shop: { cert: string; key: string };
let other: { cert: string; key: string };
const pems = (p: PemPair) => ({ cert: readFileSync(p.cert, "utf8"), key: readFileSync(p.key, "utf8") });
const b64 = (s: string) => Buffer.from(s).toString("base64");

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "kube-gw-"));
  const ca = opensslRoot(dir, "ca", "/CN=test ingress CA");
  shop = pems(opensslServerCert(dir, "shop", ["shop.example.com"], ca));
  other = pems(opensslServerCert(dir, "other", ["other.example.com"], ca));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const gateway = (
  over: Record<string, unknown> = {},
  annotations: Record<string, string> = {},
): KubeObject => ({
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "Gateway",
  metadata: {
    name: "ingress",
    namespace: "edge",
    generation: 3,
    annotations: {
      "nodemesh.io/gateway-nodes": "n1",
      "kubectl.kubernetes.io/last-applied-configuration": "{}",
      ...annotations,
    },
  },
  spec: {
    gatewayClassName: "nodemesh",
    listeners: [
      { name: "http", port: 8080, protocol: "HTTP", allowedRoutes: { namespaces: { from: "Same" } } },
      {
        name: "https",
        port: 8443,
        protocol: "HTTPS",
        hostname: "shop.example.com",
        tls: { mode: "Terminate", certificateRefs: [{ kind: "Secret", name: "shop-tls" }] },
      },
    ],
    ...over,
  },
});
const secret = (data: Record<string, string>, type = "kubernetes.io/tls"): V1Secret => ({
  metadata: { name: "shop-tls", namespace: "edge" },
  type,
  data,
});
const goodSecret = () => secret({ "tls.crt": b64(shop.cert), "tls.key": b64(shop.key) });

function valid(doc: unknown): Resource {
  const r = validateDocument(doc, "k", 1);
  if (!r.ok) throw new Error(r.issues.map(formatIssue).join("\n"));
  return r.resource;
}
const docOf = (m: ReturnType<typeof mapGateway>) => {
  if ("skip" in m) throw new Error(m.skip);
  return m.doc;
};

describe("mapping a Gateway", () => {
  test("Secret refs (group '' by default) become TLSCertificate refs; only nodemesh.io annotations stay", () => {
    const g = valid(docOf(mapGateway(gateway())));
    expect(g.kind).toBe("Gateway");
    if (g.kind !== "Gateway") return;
    expect(g.metadata.annotations).toEqual({ "nodemesh.io/gateway-nodes": "n1" });
    expect(g.spec.listeners[1]?.tls?.certificateRefs).toEqual([
      { group: "nodemesh.io", kind: "TLSCertificate", name: "shop-tls" },
    ]);
    expect(secretRefsOf(gateway())).toEqual([
      {
        namespace: "edge",
        name: "shop-tls",
        listener: "https",
        path: "spec.listeners[1].tls.certificateRefs[0]",
      },
    ]);
  });

  test("a Gateway of another class is skipped (another implementation's: no status either)", () => {
    expect(mapGateway(gateway({ gatewayClassName: "istio" }))).toEqual({
      skip: 'gatewayClassName is not "nodemesh"',
    });
  });

  test("what the mesh cannot serve is refused naming the field", () => {
    const bad = (over: Record<string, unknown>, annotations: Record<string, string> = {}) => {
      const r = validateDocument(docOf(mapGateway(gateway(over, annotations))), "k", 1);
      return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
    };
    expect(
      bad({
        listeners: [
          {
            name: "tls",
            port: 8443,
            protocol: "HTTPS",
            tls: { certificateRefs: [{ group: "cert-manager.io", kind: "Certificate", name: "x" }] },
          },
        ],
      }).join("\n"),
    ).toMatch(
      /spec\.listeners\[0\]\.tls\.certificateRefs\[0\]\.group: group must be "nodemesh\.io".*on Kubernetes: a Secret/,
    );
    expect(bad({ listeners: [{ name: "t", port: 9000, protocol: "TCP" }] }).join("\n")).toMatch(
      /spec\.listeners\[0\]\.protocol: protocol must be HTTP or HTTPS/,
    );
    expect(bad({}, { "nodemesh.io/gateway-nodes": "Not A Node" }).join("\n")).toMatch(
      /metadata\.annotations\.nodemesh\.io\/gateway-nodes: "Not A Node" is not a node name/,
    );
  });
});

describe("TLS Secrets", () => {
  test("a good Secret maps to a TLSCertificate with its PEMs inline", () => {
    expect(tlsSecretProblem(goodSecret())).toBeUndefined();
    const m = mapTlsSecret(goodSecret());
    expect(valid("doc" in m ? m.doc : undefined)).toMatchObject({
      kind: "TLSCertificate",
      metadata: { name: "shop-tls", namespace: "edge" },
      spec: { certificatePem: shop.cert, privateKeyPem: shop.key },
    });
  });

  test.each<[string, V1Secret, RegExp]>([
    [
      "another type",
      secret({}, "Opaque"),
      /^Secret edge\/shop-tls is of type Opaque, not kubernetes\.io\/tls$/,
    ],
    ["no tls.crt", secret({ "tls.key": b64("k") }), /has no data\["tls\.crt"\]/],
    ["no tls.key", secret({ "tls.crt": b64("c") }), /has no data\["tls\.key"\]/],
    [
      "garbage certificate",
      secret({
        "tls.crt": b64("-----BEGIN CERTIFICATE-----\nno\n-----END CERTIFICATE-----\n"),
        "tls.key": b64("k"),
      }),
      /tls\.crt is not a PEM certificate/,
    ],
  ])("%s is refused with the reason", (_what, s, message) => {
    expect(tlsSecretProblem(s)).toMatch(message);
  });

  test("a key of another certificate is refused", () => {
    expect(tlsSecretProblem(secret({ "tls.crt": b64(shop.cert), "tls.key": b64(other.key) }))).toMatch(
      /tls\.key does not match tls\.crt/,
    );
  });

  test("the TLSCertificate schema: one pair or the other, each field named", () => {
    const cert = (spec: Record<string, unknown>) => {
      const r = validateDocument(
        { apiVersion: "nodemesh.io/v1alpha1", kind: "TLSCertificate", metadata: { name: "c" }, spec },
        "k",
        1,
      );
      return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
    };
    expect(cert({ certFile: "/a", keyFile: "/b" })).toEqual([]);
    expect(cert({ certificatePem: shop.cert, privateKeyPem: shop.key })).toEqual([]);
    expect(cert({ certificatePem: shop.cert })).toEqual([
      "spec.privateKeyPem: certificatePem needs privateKeyPem",
    ]);
    expect(
      cert({ certFile: "/a", keyFile: "/b", certificatePem: shop.cert, privateKeyPem: shop.key }),
    ).toEqual([
      "spec.certificatePem: give either certFile + keyFile or certificatePem + privateKeyPem, not both",
    ]);
    expect(cert({ certificatePem: "not pem", privateKeyPem: shop.key })).toEqual([
      "spec.certificatePem: certificatePem must be PEM text (-----BEGIN ...)",
    ]);
    expect(cert({})).toEqual([
      "spec.certFile: certFile is required (or certificatePem + privateKeyPem)",
      "spec.keyFile: keyFile is required (or certificatePem + privateKeyPem)",
    ]);
  });
});

describe("the Gateway's verdict and status", () => {
  const now = new Date("2026-01-01T00:00:00Z");

  test("accepted and programmed when every certificateRef resolves", () => {
    const v = gatewayVerdict(gateway(), { ok: true }, () => undefined);
    expect(v).toMatchObject({
      accepted: true,
      reason: "Accepted",
      programmed: { ok: true, reason: "Programmed" },
    });
    const st = gatewayStatus(gateway(), v, now);
    expect(st?.conditions?.map((c) => [c.type, c.status, c.reason, c.observedGeneration])).toEqual([
      ["Accepted", "True", "Accepted", 3],
      ["Programmed", "True", "Programmed", 3],
    ]);
    // Written once: the same verdict on the object as written is no change.
    expect(gatewayStatus({ ...gateway(), status: st }, v, now)).toBeUndefined();
  });

  test("a missing or bad Secret: Accepted, not Programmed, naming the listener and the ref", () => {
    const v = gatewayVerdict(
      gateway(),
      { ok: true },
      (ns, n) => `Secret ${ns}/${n} of type kubernetes.io/tls does not exist`,
    );
    expect(v.accepted).toBe(true);
    expect(v.programmed).toEqual({
      ok: false,
      reason: "Invalid",
      message:
        "spec.listeners[1].tls.certificateRefs[0] (listener https): Secret edge/shop-tls of type kubernetes.io/tls does not exist",
    });
    const st = gatewayStatus(gateway(), v, now);
    expect(st?.conditions?.find((c) => c.type === "Programmed")).toMatchObject({
      status: "False",
      reason: "Invalid",
    });
  });

  test("a cross-namespace Secret needs a ReferenceGrant: refused", () => {
    const g = gateway({
      listeners: [
        {
          name: "https",
          port: 8443,
          protocol: "HTTPS",
          tls: { certificateRefs: [{ name: "shop-tls", namespace: "certs" }] },
        },
      ],
    });
    expect(gatewayVerdict(g, { ok: true }, () => undefined).programmed?.message).toMatch(
      /Secret certs\/shop-tls is in another namespace \(a ReferenceGrant would be needed/,
    );
  });

  test("an invalid Gateway: Accepted False with the schema's message, Programmed False; other conditions kept", () => {
    const v = gatewayVerdict(
      gateway(),
      { ok: false, message: "spec.listeners.0.protocol: bad" },
      () => undefined,
    );
    const old = {
      type: "Ready",
      status: "True",
      reason: "X",
      message: "",
      lastTransitionTime: "2025-01-01T00:00:00Z",
    };
    const st = gatewayStatus({ ...gateway(), status: { conditions: [old] } }, v, now);
    expect(st?.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ["Ready", "True", "X"],
      ["Accepted", "False", "Invalid"],
      ["Programmed", "False", "Invalid"],
    ]);
  });

  test("discovery watches Gateways beside the routes, and ExternalServices with our kinds", () => {
    const d = kindsFor(new Set(["nodemesh.io/v1alpha1", "gateway.networking.k8s.io/v1beta1"]));
    expect(d.kinds.find((k) => k.kind === "Gateway")).toEqual({
      kind: "Gateway",
      plural: "gateways",
      group: "gateway.networking.k8s.io",
      version: "v1beta1",
      route: false,
      gateway: true,
    });
    expect(d.kinds.find((k) => k.kind === "ExternalService")).toMatchObject({
      group: "nodemesh.io",
      route: false,
    });
  });
});

describe("where a Gateway's key material goes", () => {
  const model = () => {
    const g = valid(docOf(mapGateway(gateway())));
    const m = mapTlsSecret(goodSecret());
    const c = valid("doc" in m ? m.doc : undefined);
    const unused = valid({
      apiVersion: "nodemesh.io/v1alpha1",
      kind: "TLSCertificate",
      metadata: { name: "unused", namespace: "edge" },
      spec: { certFile: "/a", keyFile: "/b" },
    });
    const built = buildModel([g, c, unused].map((r, i) => sourced(r, "k", i + 1)));
    if (!built.model) throw new Error(built.errors.map(formatIssue).join("\n"));
    return built.model;
  };

  test("only the gateway's nodes get the TLSCertificates it names, in snapshots and deltas", () => {
    const m = model();
    expect([...m.policyKeysForNode("n1")]).toEqual(["TLSCertificate/edge/shop-tls"]);
    expect([...m.policyKeysForNode("n2")]).toEqual([]);
    const hub = new ConfigHub();
    const v1 = hub.publish(m, []);
    const snapshot = (node: string) =>
      JSON.parse(hub.snapshotMessage(v1, node)) as {
        config: { tlsCertificates: { metadata: { name: string } }[] };
      };
    expect(snapshot("n1").config.tlsCertificates.map((c) => c.metadata.name)).toEqual(["shop-tls"]);
    expect(snapshot("n2").config.tlsCertificates).toEqual([]);
    expect(hub.snapshotMessage(v1, "n2")).not.toContain("PRIVATE KEY");
    const empty = buildModel([]).model;
    if (!empty) throw new Error("empty model");
    const v0 = hub.publish(empty, []);
    const v2 = hub.publish(m, []);
    expect(hub.deltaMessage(v0, v2, "n1")).toContain("PRIVATE KEY");
    expect(hub.deltaMessage(v0, v2, "n2")).not.toContain("PRIVATE KEY");
  });

  test("the agent's store loads inline PEMs and never dumps them", async () => {
    const store = new CertificateStore({ log: createLogger("silent") });
    await store.sync(new Map([["edge/shop-tls", { certificatePem: shop.cert, privateKeyPem: shop.key }]]));
    expect(store.get("edge/shop-tls")?.dnsNames).toEqual(["shop.example.com"]);
    const dump = JSON.stringify(store.dump());
    expect(dump).toContain("inline PEM from the controller");
    expect(dump).not.toContain("PRIVATE KEY");
    expect(dump).not.toContain("BEGIN CERTIFICATE");
    // A new Secret version replaces it; a bad one keeps the last good certificate serving.
    await store.sync(new Map([["edge/shop-tls", { certificatePem: other.cert, privateKeyPem: other.key }]]));
    expect(store.get("edge/shop-tls")?.dnsNames).toEqual(["other.example.com"]);
    await store.sync(new Map([["edge/shop-tls", { certificatePem: shop.cert, privateKeyPem: other.key }]]));
    expect(store.get("edge/shop-tls")?.dnsNames).toEqual(["other.example.com"]);
    expect(JSON.stringify(store.dump())).toMatch(
      /keyFile does not match certFile; the listener keeps serving/,
    );
  });
});
