// HAProxy configurations of the peer-proxy paths (pure text, so the unit tests check them without a
// lab). Two modes on the same two-hop topology as the mesh, mTLS (TLS 1.3, client certificates)
// between the hops:
//   tcp   opaque TCP: each client connection is its own TLS connection between the nodes;
//   http  HTTP mode: HTTP/1.1 keep-alive from the client and to the server, HTTP/2 over the TLS hop
//         (`alpn h2` + `proto h2`), and `http-reuse always` so requests of all client connections
//         share the inter-node connections, as the mesh shares its pooled HTTP/2 sessions.
// And the ingress bench's HAProxy (bench/ingress.ts), an HTTPS edge proxy: TLS terminated with the
// same kind of certificate as the mesh's gateway, HTTP mode, plain keep-alive HTTP to the backend pod.
// One thread per HAProxy (`nbthread 1`): the agent is one Node event loop per node, so the two
// proxies get the same cores and the per-core figures compare like with like.

export type HaproxyMode = "tcp" | "http";

/** Where the certificates live: `<dir>/ca.pem`, `<dir>/n1.pem`, `<dir>/n2.pem` (cert + key). */
export interface HaproxyHop {
  certDir: string;
  /** host:port this HAProxy listens on */
  listen: string;
  /** host:port it forwards to */
  upstream: string;
}

// maxconn 8000: HAProxy needs about two descriptors per connection and the hard limit here is 20000.
// The long client/server/keep-alive timeouts keep the 1,000 held connections of the RSS step open.
function global(mode: HaproxyMode): string {
  return `global
  nbthread 1
  maxconn 8000
defaults
  mode ${mode}
  timeout connect 5s
  timeout client 600s
  timeout server 600s
${mode === "http" ? "  timeout http-keep-alive 600s\n" : ""}`;
}

const HOST_PORT = /^[0-9A-Za-z.-]+:\d{1,5}$/;

function checkHop(hop: HaproxyHop): void {
  for (const field of ["listen", "upstream"] as const) {
    if (!HOST_PORT.test(hop[field]))
      throw new Error(`haproxy ${field}: expected host:port, got "${hop[field]}"`);
  }
  if (!hop.certDir.startsWith("/") || /\s/.test(hop.certDir)) {
    throw new Error(`haproxy certDir: expected an absolute path without spaces, got "${hop.certDir}"`);
  }
}

/** Node 1's config: plain in from the client pod, mTLS out to node 2 (verified as `n2`). */
export function clientSideConfig(mode: HaproxyMode, hop: HaproxyHop): string {
  checkHop(hop);
  const d = hop.certDir;
  const tls = `ssl ssl-min-ver TLSv1.3 crt ${d}/n1.pem ca-file ${d}/ca.pem verify required verifyhost n2`;
  const h2 = mode === "http" ? " alpn h2 proto h2" : "";
  return `${global(mode)}frontend from_pods
  bind ${hop.listen}
  default_backend to_node2
backend to_node2
${mode === "http" ? "  http-reuse always\n" : ""}  server node2 ${hop.upstream} ${tls}${h2}
`;
}

/** Node 2's config: mTLS in (client certificate required), plain to the server pod. */
export function serverSideConfig(mode: HaproxyMode, hop: HaproxyHop): string {
  checkHop(hop);
  const d = hop.certDir;
  const h2 = mode === "http" ? " alpn h2" : "";
  return `${global(mode)}frontend from_nodes
  bind ${hop.listen} ssl ssl-min-ver TLSv1.3 crt ${d}/n2.pem ca-file ${d}/ca.pem verify required${h2}
  default_backend to_pod
backend to_pod
${mode === "http" ? "  http-reuse always\n" : ""}  server pod ${hop.upstream}
`;
}

/** The ingress HAProxy: HTTPS in (certificate and key in one PEM file), plain HTTP to the backend. */
export interface HaproxyIngress {
  /** host:port the external clients connect to */
  listen: string;
  /** PEM file with the certificate chain and its key (HAProxy's `crt`) */
  certFile: string;
  /** host:port of the backend pod */
  upstream: string;
}

/**
 * The edge's work, as the mesh's gateway does it: TLS 1.2+ with ALPN h2 and http/1.1 (the gateway's
 * offer), routing everything to one backend, `X-Forwarded-For` and `X-Forwarded-Proto` added, the
 * backend connections reused across clients (`http-reuse always`, as the gateway pools its sessions).
 */
export function ingressConfig(ing: HaproxyIngress): string {
  for (const field of ["listen", "upstream"] as const) {
    if (!HOST_PORT.test(ing[field]))
      throw new Error(`haproxy ingress ${field}: expected host:port, got "${ing[field]}"`);
  }
  if (!ing.certFile.startsWith("/") || /\s/.test(ing.certFile)) {
    throw new Error(
      `haproxy ingress certFile: expected an absolute path without spaces, got "${ing.certFile}"`,
    );
  }
  return `${global("http")}frontend ingress
  bind ${ing.listen} ssl crt ${ing.certFile} ssl-min-ver TLSv1.2 alpn h2,http/1.1
  option forwardfor
  http-request set-header X-Forwarded-Proto https
  default_backend to_backend
backend to_backend
  http-reuse always
  server backend ${ing.upstream}
`;
}
