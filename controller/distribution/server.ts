// The agent endpoint: HTTP/2 over TLS (default :15012). Agents authenticate per node with a
// bootstrap token (`authorization: Bearer <token>`; the token decides the node, a `nodemesh-node`
// header that disagrees is refused). Routes:
//   POST /v1/stream  → AgentSession (NDJSON both ways; see controller/api/stream.ts). An agent
//                      that sends `accept-encoding: deflate` gets `content-encoding: deflate`
//                      (deflate.ts); any other gets plain NDJSON, as before. One that sends
//                      `nodemesh-features: workload-rows` gets its snapshots' workloads as rows
//                      (controller/api/workload-rows.ts); any other gets `workloads`.
//   POST /v1/csr     → the CA, restricted to identities placed on the caller's node
// A connection must authenticate within a deadline, in a bounded pool (admission.ts); HTTP/2
// settings and connection counts are bounded (limits.ts); authenticated sessions are PINGed so a
// vanished agent is noticed (keepalive.ts).
import http2 from "node:http2";
import type {
  Http2SecureServer,
  IncomingHttpHeaders,
  ServerHttp2Session,
  ServerHttp2Stream,
} from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import type { Logger } from "pino";
import { CsrRequest, HEADER_VERSION, NDJSON, PATH_CSR, PATH_STREAM } from "../api/index.ts";
import type { CsrResponse, DemandReport, ErrorBody, NodeAddressBook, RateLimitShares } from "../api/index.ts";
import {
  FEATURE_UNMESHED_PODS,
  FEATURE_WORKLOAD_ROWS,
  HEADER_FEATURES,
  hasFeature,
} from "../api/features.ts";
import type { CertificateAuthority } from "../ca/ca.ts";
import { CsrRejectedError } from "../errors.ts";
import type { CsrRejectReason } from "../errors.ts";
import type { ControllerMetrics } from "../metrics.ts";
import type { MeshModel } from "../model/model.ts";
import { SessionGuard } from "./admission.ts";
import { DEFLATE } from "./deflate.ts";
import type { ConfigHub, StreamEncoding } from "./hub.ts";
import { startKeepalive } from "./keepalive.ts";
import { NodeBook } from "./node-book.ts";
import { authenticateNode } from "./node-auth.ts";
import type { NodeAuthDecision, NodeAuthenticator } from "./node-auth.ts";
import { resolveSessionLimits } from "./limits.ts";
import type { SessionLimits } from "./limits.ts";
import { AgentSession, SnapshotGate } from "./session.ts";
import type { SessionInfo } from "./session.ts";

const MAX_CSR_BODY = 64 * 1024;

/**
 * Bytes of full snapshots in flight across all sessions (SnapshotGate): 3 uncompressed
 * 10,000-workload snapshots, or about 80 deflated ones.
 */
const SNAPSHOT_BUDGET_BYTES = 8 << 20;

/** `deflate` when the agent's accept-encoding lists it with a non-zero q-value, else identity. */
export function negotiateEncoding(acceptEncoding: string | string[] | undefined): StreamEncoding {
  const list = Array.isArray(acceptEncoding) ? acceptEncoding.join(",") : (acceptEncoding ?? "");
  for (const item of list.split(",")) {
    const [name, ...params] = item.split(";").map((x) => x.trim().toLowerCase());
    if (name !== DEFLATE) continue;
    const q = params.find((p) => p.startsWith("q="));
    return q !== undefined && Number(q.slice(2)) === 0 ? "identity" : DEFLATE;
  }
  return "identity";
}

export interface StreamServerOptions {
  hub: ConfigHub;
  ca: CertificateAuthority;
  /** token → node name (bootstrap tokens). */
  tokens: ReadonlyMap<string, string>;
  /** Checks a token not in `tokens` (TokenReview); without it such a token is refused. */
  authenticate?: NodeAuthenticator;
  metrics: ControllerMetrics;
  log: Logger;
  tls: { certPem: string; keyPem: string };
  heartbeatMs: number;
  /** Defaults (limits.ts) for what is not given. */
  limits?: Partial<SessionLimits>;
}

const STATUS_OF: Record<CsrRejectReason, number> = {
  unknown_token: 401,
  malformed_csr: 400,
  bad_signature: 400,
  bad_identity: 400,
  san_mismatch: 400,
  extra_sans: 400,
  identity_not_on_node: 403,
};

export class StreamServer {
  readonly #opts: StreamServerOptions;
  readonly #server: Http2SecureServer;
  readonly #sessions = new Set<AgentSession>();
  readonly #conns = new Set<ServerHttp2Session>();
  readonly #gate = new SnapshotGate(SNAPSHOT_BUDGET_BYTES);
  readonly #limits: Readonly<SessionLimits>;
  readonly #guard: SessionGuard;
  /** Node addresses as the agents report them (node-book.ts), pushed to every agent that reports. */
  readonly #nodes = new NodeBook();
  onAck: ((node: string, version: string, error: string | undefined) => void) | undefined;
  /** An agent's global rate-limit demand (controller/ratelimit/balancer.ts). */
  onDemand: ((node: string, report: DemandReport) => void) | undefined;

  constructor(opts: StreamServerOptions) {
    this.#opts = opts;
    const limits = resolveSessionLimits(opts.limits);
    this.#limits = limits;
    const guard = new SessionGuard(limits, opts.metrics, opts.log);
    this.#guard = guard;
    this.#server = http2.createSecureServer({
      cert: opts.tls.certPem,
      key: opts.tls.keyPem,
      minVersion: "TLSv1.3",
      handshakeTimeout: limits.handshakeTimeoutMs,
      maxSessionMemory: limits.maxSessionMemoryMb,
      settings: {
        maxConcurrentStreams: limits.maxStreamsPerSession,
        maxHeaderListSize: limits.maxHeaderListBytes,
      },
    });
    this.#server.maxConnections = limits.maxConnections;
    this.#server.on("connection", (socket: Socket) => guard.admit(socket));
    this.#server.on("drop", (d?: { remoteAddress?: string }) =>
      guard.refused(
        "connection_limit",
        { address: d?.remoteAddress },
        `more than ${limits.maxConnections} connections; dropping new ones`,
      ),
    );
    this.#server.on("tlsClientError", (err: NodeJS.ErrnoException, socket: { remoteAddress?: string }) => {
      // ECONNRESET is the peer leaving mid-handshake, or the guard closing a connection it already
      // counted (refused, evicted, timed out): not a failed handshake.
      if (err.code === "ECONNRESET") return;
      guard.closed(
        "handshake_failed",
        { address: socket.remoteAddress, code: err.code },
        `tls handshake failed: ${err.message}`,
      );
    });
    this.#server.on("stream", (stream, headers) => this.#route(stream, headers));
    this.#server.on("sessionError", (err) => opts.log.debug({ err }, "agent session error"));
    this.#server.on("session", (c) => {
      this.#conns.add(c);
      guard.session(c);
      c.on("close", () => this.#conns.delete(c));
    });
  }

  /** Connections that have not authenticated yet. */
  get pendingSessions(): number {
    return this.#guard.pending;
  }

  /** Replaces the serving certificate for new connections (controller cert renewal, root rotation). */
  setCertificate(tls: { certPem: string; keyPem: string }): void {
    this.#server.setSecureContext({ cert: tls.certPem, key: tls.keyPem, minVersion: "TLSv1.3" });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  sessions(): SessionInfo[] {
    return [...this.#sessions].map((s) => s.info());
  }

  /** Writes rate-limit shares on every stream of `node` that takes them; how many took them. */
  sendShares(node: string, message: RateLimitShares): number {
    let n = 0;
    for (const s of this.#sessions) if (s.node === node && s.sendShares(message)) n += 1;
    return n;
  }

  /** The node address book as agents are sent it. */
  get nodeAddresses(): Readonly<Record<string, readonly string[]>> {
    return this.#nodes.book;
  }

  /** The platform's node addresses (Kubernetes Node objects), sent to every reporting agent on change. */
  declareNodeAddresses(nodes: Readonly<Record<string, readonly string[]>>): void {
    if (this.#nodes.declare(nodes)) this.#publishNodes();
  }

  #nodeBook(): NodeAddressBook {
    return { type: "nodes", nodes: this.#nodes.book as Record<string, string[]> };
  }

  #publishNodes(): void {
    const message = this.#nodeBook();
    for (const s of this.#sessions) s.sendNodes(message);
  }

  /** Stops accepting, ends every agent stream and connection (agents keep their config). */
  async close(): Promise<void> {
    for (const s of this.#sessions) s.close();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const c of this.#conns) c.destroy();
    await closed;
  }

  #route(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on("error", () => {});
    const session = stream.session as ServerHttp2Session;
    const path = headers[":path"]?.split("?")[0];
    const method = headers[":method"];
    if (method !== "POST" || (path !== PATH_STREAM && path !== PATH_CSR)) {
      reply(stream, 404, {
        error: { code: "NODEMESH_ERR_NOT_FOUND", reason: "not_found", message: `no route ${method} ${path}` },
      });
      return this.#guard.unauthenticated(session, "not_found");
    }
    const who = authenticateNode(headers, this.#opts.tokens, this.#opts.authenticate);
    if (!(who instanceof Promise)) return this.#admit(stream, headers, path, who);
    // Only a token that is not a bootstrap token gets here; the session stays pending (and under
    // the auth deadline) while it is checked.
    void who.then((w) => {
      if (!stream.destroyed) this.#admit(stream, headers, path, w);
    });
  }

  #admit(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, path: string, who: NodeAuthDecision): void {
    const session = stream.session as ServerHttp2Session;
    if (!("node" in who)) {
      // The csr metric's reasons are a fixed set: every authentication refusal counts as unknown_token.
      if (path === PATH_CSR && who.status === 401)
        this.#opts.metrics.csrRejected.inc({ reason: "unknown_token" });
      this.#opts.log.warn({ path, reason: who.reason }, who.message);
      reply(stream, who.status, {
        error: { code: "NODEMESH_ERR_UNAUTHENTICATED", reason: who.reason, message: who.message },
      });
      return this.#guard.unauthenticated(session, who.reason);
    }
    if (this.#guard.authenticated(session, who.node, (cb) => stream.once("close", cb))) {
      const { keepaliveIntervalMs: intervalMs, keepaliveTimeoutMs: timeoutMs } = this.#limits;
      startKeepalive(session, { intervalMs, timeoutMs }, () =>
        this.#guard.closed(
          "keepalive_timeout",
          { node: who.node },
          `agent did not answer a PING within ${timeoutMs} ms (dead peer or half-closed connection); closing its session`,
        ),
      );
    }
    if (path === PATH_STREAM) this.#openStream(stream, headers, who.node);
    else this.#csr(stream, who.node);
  }

  #openStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, node: string): void {
    const { hub, metrics, log, heartbeatMs } = this.#opts;
    const resume = headers[HEADER_VERSION];
    const encoding = negotiateEncoding(headers["accept-encoding"]);
    stream.respond({
      ":status": 200,
      "content-type": NDJSON,
      "cache-control": "no-store",
      ...(encoding === "identity" ? {} : { "content-encoding": encoding }),
    });
    const session = new AgentSession(
      node,
      stream,
      { hub, metrics, log, heartbeatMs, gate: this.#gate },
      typeof resume === "string" && resume ? resume : undefined,
      encoding,
      hasFeature(headers[HEADER_FEATURES], FEATURE_WORKLOAD_ROWS),
      hasFeature(headers[HEADER_FEATURES], FEATURE_UNMESHED_PODS),
    );
    session.onAck = (n, v, e) => this.onAck?.(n, v, e);
    session.onDemand = (n, r) => this.onDemand?.(n, r);
    // The first report makes the session a live claimant of its node's addresses until it closes.
    let reported = false;
    session.onAddresses = (n, r) => {
      let changed = false;
      if (!reported) {
        reported = true;
        changed = this.#nodes.live(n, true);
      }
      changed = this.#nodes.report(n, r.addresses) || changed;
      if (changed) this.#publishNodes();
      else session.sendNodes(this.#nodeBook());
    };
    this.#sessions.add(session);
    metrics.connectedAgents.set(this.#sessions.size);
    log.info({ node, resume, encoding }, "agent connected");
    stream.on("close", () => {
      this.#sessions.delete(session);
      if (reported && this.#nodes.live(node, false)) this.#publishNodes();
      metrics.connectedAgents.set(this.#sessions.size);
      log.info({ node }, "agent disconnected");
    });
    session.flush();
  }

  #csr(stream: ServerHttp2Stream, node: string): void {
    const { ca, hub, metrics, log } = this.#opts;
    let body = "";
    stream.setEncoding("utf8");
    stream.on("data", (c: string) => {
      body += c;
      if (body.length > MAX_CSR_BODY) stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    });
    stream.on("end", () => {
      const model: MeshModel | undefined = hub.current?.model;
      if (!model) {
        return reply(stream, 503, {
          error: {
            code: "NODEMESH_ERR_NOT_READY",
            reason: "no_config",
            message: "the controller has no valid configuration yet; fix --config",
          },
        });
      }
      let req: CsrRequest;
      try {
        req = CsrRequest.parse(JSON.parse(body));
      } catch (err) {
        metrics.csrRejected.inc({ reason: "malformed_csr" });
        return reply(stream, 400, {
          error: {
            code: "NODEMESH_ERR_CSR_REJECTED",
            reason: "malformed_csr",
            message: `invalid csr request body: ${(err as Error).message}`,
          },
        });
      }
      try {
        const issued = ca.signWorkload({ csrPem: req.csr, identity: req.identity, node }, model);
        metrics.csrSigned.inc();
        log.info({ node, identity: issued.identity, expiresAt: issued.expiresAt }, "certificate issued");
        const res: CsrResponse = {
          certChain: issued.certChain,
          trustBundle: issued.trustBundle,
          expiresAt: issued.expiresAt,
        };
        reply(stream, 200, res);
      } catch (err) {
        if (!(err instanceof CsrRejectedError)) throw err;
        metrics.csrRejected.inc({ reason: err.reason });
        log.warn({ node, identity: req.identity, reason: err.reason }, err.message);
        reply(stream, STATUS_OF[err.reason], {
          error: { code: err.code, reason: err.reason, message: err.message },
        });
      }
    });
  }
}

function reply(stream: ServerHttp2Stream, status: number, body: CsrResponse | ErrorBody): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ":status": status, "content-type": "application/json" });
  stream.end(JSON.stringify(body));
}
