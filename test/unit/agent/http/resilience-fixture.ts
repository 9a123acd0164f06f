// Builds Exchanges for the resilience layers' unit tests: one destination service with endpoints, an
// optional TrafficPolicy, and a scripted upstream that answers each try from a list.
import type { Readable } from "node:stream";
import type { MeshView, ServiceInfo, ServicePortInfo } from "../../../../agent/state/view.ts";
import type { Exchange, ResponseHead } from "../../../../agent/http/exchange.ts";
import type { CompiledRule } from "../../../../agent/state/routes.ts";
import { TrafficPolicy } from "../../../../controller/api/index.ts";

export function destination(
  endpoints: string[],
  policySpec?: object,
): { view: MeshView; sp: ServicePortInfo } {
  const service: ServiceInfo = Object.freeze({
    name: "web",
    namespace: "default",
    host: "web.default",
    loadBalancer: undefined,
    balancerOptions: {},
    hashPolicy: undefined,
    connectTimeoutMs: undefined,
    outlier: {},
  });
  const svc = { metadata: { name: "web", namespace: "default" }, spec: {} };
  const policies = policySpec
    ? [
        TrafficPolicy.parse({
          apiVersion: "nodemesh.io/v1alpha1",
          kind: "TrafficPolicy",
          metadata: { name: "web", namespace: "default" },
          spec: { targetRefs: [{ kind: "Service", name: "web" }], ...policySpec },
        }),
      ]
    : [];
  const view = { config: { services: [svc], trafficPolicies: policies } } as unknown as MeshView;
  const sp = {
    key: "default/web:80",
    service,
    port: 80,
    protocol: "http",
    endpoints: endpoints.map((key) => ({ key, address: key.split(":")[0], port: 8080 })),
    endpointKeys: endpoints,
  } as unknown as ServicePortInfo;
  return { view, sp };
}

export function exchange(
  d: { view: MeshView; sp: ServicePortInfo },
  over: {
    method?: string;
    headers?: Record<string, string>;
    body?: Readable;
    rule?: Partial<CompiledRule>;
  } = {},
): Exchange {
  return {
    view: d.view,
    source: { name: "client", namespace: "default", labels: {}, spiffeId: "spiffe://x", address: "10.0.0.1" },
    servicePort: d.sp,
    request: {
      method: over.method ?? "GET",
      path: "/",
      authority: "web",
      headers: { ...over.headers },
      protocol: "HTTP/1.1",
      requestId: "r1",
    },
    body: over.body,
    signal: new AbortController().signal,
    start: performance.now(),
    requestBytes: 0,
    ...(over.rule ? { rule: { timeouts: {}, retry: undefined, ...over.rule } as CompiledRule } : {}),
  } as unknown as Exchange;
}

export const answer = (status: number, extra: Partial<ResponseHead> = {}): ResponseHead => ({
  status,
  headers: {},
  ...extra,
});

export function readAll(r: Readable | undefined): Promise<string> {
  if (!r) return Promise.resolve("");
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    r.on("data", (c: Buffer) => chunks.push(c));
    r.once("end", () => resolve(Buffer.concat(chunks).toString()));
    r.once("error", reject);
  });
}
