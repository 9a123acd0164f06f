// `connectionPool.http.maxRequestsPerConnection` (Istio; Envoy's max_requests_per_connection) where the
// mesh has a connection of its own to reuse: the destination agent's keep-alive HTTP/1.1 connections to
// the application (app-client.ts). After that many requests a connection is closed once its response
// ends, and the next request opens a new one (1 disables keep-alive). The calling agent's mTLS sessions
// carry every destination of a node at once, so recycling them per destination would mean nothing;
// h2c/gRPC applications share one multiplexed session per port and are not recycled either.
import type { ClientRequest } from "node:http";
import type { Socket } from "node:net";
import type { MeshView, ServiceInfo } from "../state/view.ts";
import { resilienceOf } from "./resilience-policy.ts";

/** Requests each application connection has carried (sockets are dropped with their connection). */
const served = new WeakMap<Socket, number>();
const byHost = new WeakMap<MeshView, Map<string, ServiceInfo>>();

function serviceOf(view: MeshView, host: string): ServiceInfo | undefined {
  let m = byHost.get(view);
  if (!m) {
    m = new Map(view.services().map((s) => [s.host, s]));
    byHost.set(view, m);
  }
  return m.get(host);
}

/** The limit for requests to `serviceHost` ("name.namespace"), 0 when there is none. */
export function maxRequestsPerConnection(view: MeshView, serviceHost: string | undefined): number {
  const service = serviceHost === undefined ? undefined : serviceOf(view, serviceHost);
  return service ? resilienceOf(view, service).pool.maxRequestsPerConnection : 0;
}

/** Counts `req` against its connection and, at the limit, has the connection closed after it. */
export function closeAfterRequests(
  req: ClientRequest,
  view: MeshView,
  serviceHost: string | undefined,
): void {
  const max = maxRequestsPerConnection(view, serviceHost);
  if (max <= 0) return;
  req.once("socket", (socket: Socket) => {
    const n = (served.get(socket) ?? 0) + 1;
    served.set(socket, n);
    if (n < max) return;
    // Tell the application when the headers are still ours to write; either way Node's client then
    // destroys the socket at the response's end instead of returning it to the agent's free list.
    if (!req.headersSent) req.setHeader("connection", "close");
    (req as ClientRequest & { shouldKeepAlive: boolean }).shouldKeepAlive = false;
  });
}
