// Mesh configuration for a lab, as the YAML an operator of plain hosts would write: one WorkloadEntry
// per pod (its address, node, network namespace, service account, labels) and the Services over them.
import { stringify } from "yaml";
import type { Lab } from "../lab/index.ts";

export interface LabPodRole {
  /** The `app` label, which Services select. */
  readonly app: string;
  readonly serviceAccount?: string;
  /** Further labels (e.g. `version`), which Services may select on. */
  readonly labels?: Readonly<Record<string, string>>;
}

export interface LabService {
  readonly name: string;
  readonly vip: string;
  readonly port: number;
  readonly targetPort: number;
  /** Selects pods whose role has this app. */
  readonly app: string;
  /** Further labels the selected pods must carry (e.g. `{version: "v2"}`). */
  readonly selector?: Readonly<Record<string, string>>;
  /** The port's appProtocol (`http`, `grpc`, …); unset = a `tcp` port carried as opaque TCP. */
  readonly appProtocol?: string;
  /** No port name and no appProtocol: the agent detects the protocol from the client's first bytes. */
  readonly undeclared?: boolean;
  readonly loadBalancer?: "ROUND_ROBIN" | "LEAST_REQUEST" | "RANDOM" | "PEAK_EWMA";
}

export interface LabMeshSpec {
  readonly namespace?: string;
  /** Pod name ("n1p1") → role. Pods not listed are not in the mesh. */
  readonly pods: Record<string, LabPodRole>;
  readonly services: readonly LabService[];
  /** Further documents (policies), as objects. */
  readonly extra?: readonly object[];
}

export const API_VERSION = "nodemesh.io/v1alpha1";

/** The service VIP of the demo and the e2e tests: routed nowhere, reachable only through the mesh. */
export const DEMO_VIP = "10.96.0.10";

/** The L7 services' VIPs: `web` (routed), `web-v1` and `web-v2` (one backend each). */
export const WEB_VIP = "10.96.0.11";
export const WEB_V1_VIP = "10.96.0.12";
export const WEB_V2_VIP = "10.96.0.13";
/** gRPC (nodemesh.echo.v1.Echo on 9090) and a server-first line protocol on an undeclared port. */
export const GRPC_VIP = "10.96.0.14";
export const BANNER_VIP = "10.96.0.15";
/** gRPC served by v2 only (the GRPCRoute's canary backend). */
export const GRPC_V2_VIP = "10.96.0.16";

/**
 * The demo's (and the e2e tests') mesh on a 2 x 2 lab: client (n1p1, sa client) and legacy (n2p1,
 * sa legacy) call the echo service (opaque TCP), whose backends are n1p2 (same node as client, version
 * v1) and n2p2 (version v2). The same pods serve `web`, declared HTTP, with `web-v1` and `web-v2` over
 * one version each, so HTTPRoutes can split and route between them.
 */
export const DEMO_MESH: LabMeshSpec = {
  pods: {
    n1p1: { app: "client", serviceAccount: "client" },
    n2p1: { app: "legacy", serviceAccount: "legacy" },
    n1p2: { app: "echo", labels: { version: "v1" } },
    n2p2: { app: "echo", labels: { version: "v2" } },
  },
  services: [
    { name: "echo", vip: DEMO_VIP, port: 80, targetPort: 8080, app: "echo" },
    // Round robin, so that one client connection visibly spreads over both pods: the HTTP default,
    // PEAK_EWMA, rightly prefers the faster same-node pod.
    {
      name: "web",
      vip: WEB_VIP,
      port: 80,
      targetPort: 8080,
      app: "echo",
      appProtocol: "http",
      loadBalancer: "ROUND_ROBIN",
    },
    {
      name: "web-v1",
      vip: WEB_V1_VIP,
      port: 80,
      targetPort: 8080,
      app: "echo",
      selector: { version: "v1" },
      appProtocol: "http",
    },
    {
      name: "web-v2",
      vip: WEB_V2_VIP,
      port: 80,
      targetPort: 8080,
      app: "echo",
      selector: { version: "v2" },
      appProtocol: "http",
    },
    {
      name: "echo-grpc",
      vip: GRPC_VIP,
      port: 9090,
      targetPort: 9090,
      app: "echo",
      appProtocol: "grpc",
      loadBalancer: "ROUND_ROBIN",
    },
    {
      name: "echo-grpc-v2",
      vip: GRPC_V2_VIP,
      port: 9090,
      targetPort: 9090,
      app: "echo",
      selector: { version: "v2" },
      appProtocol: "grpc",
    },
    { name: "banner", vip: BANNER_VIP, port: 25, targetPort: 2525, app: "echo", undeclared: true },
  ],
};

/** The demo's routes on `web`: `x-canary: yes` goes to v2; everything else is split 90/10 v1/v2. */
export const DEMO_ROUTES: readonly object[] = [
  {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: { name: "web", namespace: "default" },
    spec: {
      parentRefs: [{ group: "", kind: "Service", name: "web", port: 80 }],
      rules: [
        {
          name: "canary-header",
          matches: [{ headers: [{ name: "x-canary", value: "yes" }] }],
          backendRefs: [{ name: "web-v2", port: 80 }],
        },
        {
          name: "split",
          backendRefs: [
            { name: "web-v1", port: 80, weight: 90 },
            { name: "web-v2", port: 80, weight: 10 },
          ],
        },
      ],
    },
  },
];

export function meshConfigForLab(lab: Lab, spec: LabMeshSpec): string {
  const namespace = spec.namespace ?? "default";
  const docs: object[] = [];
  for (const [podName, role] of Object.entries(spec.pods)) {
    const pod = lab.pods.find((p) => p.name === podName);
    if (!pod) throw new Error(`lab ${lab.name} has no pod ${podName}`);
    docs.push({
      apiVersion: API_VERSION,
      kind: "WorkloadEntry",
      metadata: { name: `${role.app}-${pod.name}`, namespace },
      spec: {
        address: pod.address,
        serviceAccount: role.serviceAccount ?? role.app,
        labels: { app: role.app, pod: pod.name, ...role.labels },
        node: `n${pod.node}`,
        netns: pod.netnsPath,
        cgroup: pod.cgroupPath,
      },
    });
  }
  for (const s of spec.services) {
    docs.push({
      apiVersion: API_VERSION,
      kind: "Service",
      metadata: { name: s.name, namespace },
      spec: {
        addresses: [s.vip],
        ports: [
          {
            ...(s.undeclared ? {} : { name: s.appProtocol ?? "tcp" }),
            port: s.port,
            targetPort: s.targetPort,
            protocol: "TCP",
            ...(s.appProtocol ? { appProtocol: s.appProtocol } : {}),
          },
        ],
        selector: { app: s.app, ...s.selector },
      },
    });
    if (s.loadBalancer) {
      docs.push({
        apiVersion: API_VERSION,
        kind: "TrafficPolicy",
        metadata: { name: s.name, namespace },
        spec: {
          targetRefs: [{ group: "", kind: "Service", name: s.name }],
          loadBalancer: { simple: s.loadBalancer },
        },
      });
    }
  }
  docs.push(...(spec.extra ?? []));
  return docs.map((d) => stringify(d)).join("---\n");
}

/** The demo's ingress: the Gateway's node, hostnames, and its service account (its SPIFFE ID's). */
export const INGRESS_NODE = "n1";
export const INGRESS_HOST = "shop.example.com";
export const INGRESS_SERVICE_ACCOUNT = "ingress";

/**
 * An ingress gateway on node n1 (docs/ingress.md): HTTPS on 443 for `*.example.com` with the given
 * certificate files, plain HTTP on 80 redirected to HTTPS; `shop.example.com` routes `/v2` to web-v2
 * and splits the rest 3:1 over web-v1 and web-v2.
 */
export function ingressDocs(certFile: string, keyFile: string): object[] {
  const gateway = "gateway.networking.k8s.io/v1";
  return [
    {
      apiVersion: gateway,
      kind: "Gateway",
      metadata: {
        name: "ingress",
        namespace: "default",
        annotations: {
          "nodemesh.io/gateway-nodes": INGRESS_NODE,
          "nodemesh.io/gateway-service-account": INGRESS_SERVICE_ACCOUNT,
        },
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
            tls: { certificateRefs: [{ group: "nodemesh.io", kind: "TLSCertificate", name: "shop" }] },
          },
        ],
      },
    },
    {
      apiVersion: API_VERSION,
      kind: "TLSCertificate",
      metadata: { name: "shop", namespace: "default" },
      spec: { certFile, keyFile },
    },
    {
      apiVersion: gateway,
      kind: "HTTPRoute",
      metadata: { name: "shop", namespace: "default" },
      spec: {
        parentRefs: [{ name: "ingress", sectionName: "https" }],
        hostnames: [INGRESS_HOST],
        rules: [
          {
            matches: [{ path: { type: "PathPrefix", value: "/v2" } }],
            backendRefs: [{ name: "web-v2", port: 80 }],
          },
          {
            backendRefs: [
              { name: "web-v1", port: 80, weight: 3 },
              { name: "web-v2", port: 80, weight: 1 },
            ],
          },
        ],
      },
    },
    {
      apiVersion: gateway,
      kind: "HTTPRoute",
      metadata: { name: "to-https", namespace: "default" },
      spec: {
        parentRefs: [{ name: "ingress", sectionName: "http" }],
        rules: [
          { filters: [{ type: "RequestRedirect", requestRedirect: { scheme: "https", statusCode: 301 } }] },
        ],
      },
    },
  ];
}
