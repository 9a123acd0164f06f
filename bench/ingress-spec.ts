// The pure parts of the ingress benchmark (bench/ingress.ts, issue 12 "Benchmark"): its paths, ports,
// rates and durations, the bench mesh with its Gateway, and the certificate's subjectAltName. No I/O,
// so test/unit/bench/ingress-spec.test.ts checks them without a lab.
//
// Three paths from the lab's `outside` host (in no mesh) to one backend pod (n2p1):
//   direct           plain HTTP keep-alive to the pod (a route to the pod's node, added for this run only)
//   haproxy-ingress  HTTPS to HAProxy in node n1 (TLS terminated, HTTP mode, one thread), plain to the pod
//   mesh-gateway     HTTPS to the agent of n1 in its Gateway role, one HTTP/2 stream per request on the
//                    pooled mTLS session to the agent of n2, keep-alive HTTP/1.1 to the pod
import type { Durations } from "./measure.ts";
import type { BenchMeshSpec } from "./mesh-path.ts";

export const INGRESS_PATHS = ["direct", "haproxy-ingress", "mesh-gateway"] as const;
export type IngressPathName = (typeof INGRESS_PATHS)[number];

/** The backend's port in pod n2p1 (bench/bench-server.ts). */
export const BACKEND_PORT = 8080;
/** The Gateway's HTTPS listener on node n1. */
export const GATEWAY_PORT = 443;
/** HAProxy's HTTPS frontend on node n1 (another port: the two never run at once, but a clear log helps). */
export const HAPROXY_INGRESS_PORT = 15443;
export const BACKEND_VIP = "10.96.0.82";
export const GATEWAY_NAME = "bench-ingress";
export const BACKEND_SERVICE = "bench-backend";
/** The node that runs the Gateway and HAProxy. */
export const EDGE_NODE = "n1";

/**
 * One fixed rate, moderate on purpose: at 1000 rps the two agents of the L7 path already need about one
 * CPU-second per second (docs/benchmarks.md), which on the 2-vCPU bench machine measures queueing, not
 * the proxy. Per-core throughput comes from the closed-loop max run.
 */
export const INGRESS_RATES: readonly number[] = [500];

export const INGRESS_DURATIONS: Durations = { warmup: 1, duration: 5, maxDuration: 5, connections: 0 };
export const INGRESS_QUICK_DURATIONS: Durations = {
  warmup: 0.5,
  duration: 2,
  maxDuration: 2,
  connections: 0,
};

/** The ingress certificate's subjectAltName: the edge node's address, which the clients dial. */
export function ingressSan(edgeAddress: string): string {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(edgeAddress)) {
    throw new Error(`ingress bench: the edge address must be an IPv4 address, got "${edgeAddress}"`);
  }
  return `IP:${edgeAddress},DNS:ingress.bench.example`;
}

export interface IngressCert {
  certFile: string;
  keyFile: string;
}

/**
 * The bench mesh: the backend pod as a workload of an `appProtocol: http` Service, and a Gateway on
 * n1 with one HTTPS listener (no hostname: the clients dial the address, so there is no SNI) whose
 * HTTPRoute sends every path to that Service, the work any routed request pays.
 */
export function ingressMeshSpec(cert: IngressCert, edgeAddress: string): BenchMeshSpec {
  for (const f of ["certFile", "keyFile"] as const) {
    if (!cert[f].startsWith("/"))
      throw new Error(`ingress bench ${f}: expected an absolute path, got "${cert[f]}"`);
  }
  const g = "gateway.networking.k8s.io/v1";
  const meta = (name: string) => ({ name, namespace: "default" });
  return {
    pods: { n2p1: { app: BACKEND_SERVICE } },
    services: [
      {
        name: BACKEND_SERVICE,
        vip: BACKEND_VIP,
        port: BACKEND_PORT,
        targetPort: BACKEND_PORT,
        app: BACKEND_SERVICE,
        appProtocol: "http",
      },
    ],
    extra: [
      {
        apiVersion: g,
        kind: "Gateway",
        metadata: { ...meta(GATEWAY_NAME), annotations: { "nodemesh.io/gateway-nodes": EDGE_NODE } },
        spec: {
          gatewayClassName: "nodemesh",
          addresses: [{ value: edgeAddress }],
          listeners: [
            {
              name: "https",
              port: GATEWAY_PORT,
              protocol: "HTTPS",
              tls: {
                certificateRefs: [{ group: "nodemesh.io", kind: "TLSCertificate", name: GATEWAY_NAME }],
              },
            },
          ],
        },
      },
      {
        apiVersion: "nodemesh.io/v1alpha1",
        kind: "TLSCertificate",
        metadata: meta(GATEWAY_NAME),
        spec: cert,
      },
      {
        apiVersion: g,
        kind: "HTTPRoute",
        metadata: meta(GATEWAY_NAME),
        spec: {
          parentRefs: [{ name: GATEWAY_NAME, sectionName: "https" }],
          rules: [
            {
              name: "all",
              matches: [{ path: { type: "PathPrefix", value: "/" } }],
              backendRefs: [{ name: BACKEND_SERVICE, port: BACKEND_PORT }],
            },
          ],
        },
      },
    ],
  };
}
