// Which protocol a service port speaks, from what the operator declared: Kubernetes `appProtocol`
// (IANA names, `kubernetes.io/h2c`), else Istio's port-name convention (`http`, `http-*`, `grpc-*`, …)
// for those who migrate, else unknown (the agent detects it from the client's first bytes).

/** How the agent carries a port's connections. `detect` = undeclared: sniff, then L7 or opaque. */
export type PortProtocol = "tcp" | "http" | "http2" | "grpc" | "detect";

const BY_APP_PROTOCOL: Readonly<Record<string, PortProtocol>> = {
  tcp: "tcp",
  http: "http",
  "http/1.1": "http",
  http2: "http2",
  h2c: "http2",
  "kubernetes.io/h2c": "http2",
  grpc: "grpc",
  "grpc-web": "http",
  // TLS or other protocols the agent cannot read: opaque, never sniffed.
  https: "tcp",
  tls: "tcp",
  "kubernetes.io/ws": "http",
  "kubernetes.io/wss": "tcp",
  mongo: "tcp",
  mysql: "tcp",
  redis: "tcp",
};

/** Istio's port-name prefixes (`<protocol>[-<suffix>]`). */
const BY_NAME_PREFIX: Readonly<Record<string, PortProtocol>> = {
  http: "http",
  http2: "http2",
  grpc: "grpc",
  "grpc-web": "http",
  tcp: "tcp",
  https: "tcp",
  tls: "tcp",
  mongo: "tcp",
  mysql: "tcp",
  redis: "tcp",
};

export function portProtocol(port: { readonly name?: string; readonly appProtocol?: string }): PortProtocol {
  if (port.appProtocol !== undefined) {
    return BY_APP_PROTOCOL[port.appProtocol.toLowerCase()] ?? "tcp";
  }
  if (port.name !== undefined) {
    const name = port.name.toLowerCase();
    const prefix = name.startsWith("grpc-web") ? "grpc-web" : name.split("-")[0]!;
    const p = BY_NAME_PREFIX[prefix];
    if (p) return p;
  }
  return "detect";
}

/** True for the protocols the agent handles per request. */
export function isHttp(p: PortProtocol): p is "http" | "http2" | "grpc" {
  return p === "http" || p === "http2" || p === "grpc";
}
