// The agent's side of the controller API: the config stream and CSR signing, over one HTTP/2+TLS
// connection to the controller (verified with the trust bundle; the node proves itself with its
// bootstrap token, or a token file re-read on every reconnect: node-token.ts). It reconnects with
// jittered exponential backoff forever, resumes from the last version it holds (the controller
// answers with a delta or, if it does not know that version, a full snapshot), ACKs every version
// it applies, and keeps the last config when the controller is gone. Consumers get whole
// immutable MeshConfig snapshots, never deltas.
// The stream is requested with `accept-encoding: deflate`; a controller that answers with
// `content-encoding: deflate` sends one endless zlib stream (controller/distribution/deflate.ts),
// inflated here with sync flushes; one that does not sends plain NDJSON, handled as before.
// The stream is also requested with `nodemesh-features: workload-rows`: a controller that knows it
// sends a snapshot's workloads as compact rows (controller/api/workload-rows.ts), expanded here
// into the same WorkloadEntry objects before validation; an older one sends `workloads`.
// The same stream carries the global rate limit: `sendDemand` writes this node's demand report, and
// the controller's shares arrive as "shares" events (controller/api/global-ratelimit.ts).
// Imports nothing from the controller but controller/api (the shared wire schema).
//
// Invariants: at most one connection attempt or open stream at a time; `config` only changes by a
// snapshot or a delta whose fromVersion equals its version; a stream is considered dead after
// 3 heartbeat intervals of silence.
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import type { ClientHttp2Session, ClientHttp2Stream } from "node:http2";
import { StringDecoder } from "node:string_decoder";
import { constants as zlibConstants, createInflate } from "node:zlib";
import type { Logger } from "pino";
import {
  CsrResponse,
  DeltaMismatchError,
  ErrorBody,
  HEADER_NODE,
  HEADER_VERSION,
  HEARTBEAT_INTERVAL_MS,
  MAX_NODE_ADDRESSES,
  NDJSON,
  PATH_CSR,
  PATH_STREAM,
  ServerMessage,
} from "../../controller/api/index.ts";
import type {
  DemandReport,
  MeshConfig,
  NodeAddressBook,
  RateLimitShares,
} from "../../controller/api/index.ts";
import {
  FEATURE_UNMESHED_PODS,
  FEATURE_WORKLOAD_ROWS,
  HEADER_FEATURES,
} from "../../controller/api/features.ts";
import { expandWorkloadRows } from "../../controller/api/workload-rows.ts";
import { NodeToken } from "./node-token.ts";
import { WorkloadPositions } from "./workload-positions.ts";

const STREAM_WINDOW = 1 << 20;
const SESSION_WINDOW = 2 << 20;
const MAX_FRAME = (1 << 24) - 1;
/** Inflater output buffer: a 2.4 MB snapshot in ~10 chunks instead of ~150 of the 16 KiB default. */
const INFLATE_CHUNK = 256 << 10;

export interface ControllerClientOptions {
  /** host:port of the controller (default port 15012). */
  address: string;
  node: string;
  /** The node's bootstrap token; or `tokenFile`. */
  token?: string;
  /** File holding the token, re-read on every (re)connect (projected service-account tokens rotate). */
  tokenFile?: string;
  /** PEM roots that verify the controller; or `caFile`. Roots pushed in the stream are added. */
  trustBundle?: string[];
  caFile?: string;
  /** Name checked against the controller certificate; default: the host of `address`. */
  servername?: string;
  log: Logger;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** Silence after which the stream is presumed dead; default 3 heartbeats. */
  idleTimeoutMs?: number;
  /** Validate every message with the zod schemas (default true; the benchmark turns it off). */
  validate?: boolean;
  /** Ask for the deflate-encoded stream (default true; false: plain NDJSON). */
  compression?: boolean;
  /** Ask for snapshots with `workloadRows` (default true; false: `workloads` objects, as older agents). */
  workloadRows?: boolean;
}

export interface ConfigChange {
  version: string;
  /** true for a snapshot (first sync or resync), false for a delta. */
  full: boolean;
}

/** When the last applied message arrived and what applying it cost (benchmarks, diagnostics). */
export interface ApplyTiming {
  version: string;
  /** Wall clock (performance.timeOrigin + performance.now(), ms) when the whole line had arrived. */
  receivedAt: number;
  /** Milliseconds spent parsing, validating, applying and freezing it (not in `config` handlers). */
  applyMs: number;
  /** The same work in CPU time of this thread (what it costs when no other thread competes). */
  applyCpuMs: number;
}

export interface SignedCertificate {
  certChain: string[];
  trustBundle: string[];
  expiresAt: string;
}

export class ControlError extends Error {
  readonly code: string;
  readonly reason: string;
  readonly status: number;
  constructor(status: number, reason: string, message: string) {
    super(message);
    this.code = status === 0 ? "NODEMESH_ERR_CONTROLLER_UNREACHABLE" : "NODEMESH_ERR_CONTROLLER_REFUSED";
    this.status = status;
    this.reason = reason;
  }
}

interface Events {
  config: [config: MeshConfig, change: ConfigChange];
  shares: [message: RateLimitShares];
  nodes: [message: NodeAddressBook];
  connected: [];
  disconnected: [];
}

export class ControllerClient extends EventEmitter<Events> {
  readonly #opts: ControllerClientOptions;
  readonly #log: Logger;
  readonly #token: NodeToken;
  readonly #initialRoots: string[];
  #roots: string[];
  #config: MeshConfig | undefined;
  #session: ClientHttp2Session | undefined;
  #stream: ClientHttp2Stream | undefined;
  #connected = false;
  #running = false;
  #attempt = 0;
  #retry: NodeJS.Timeout | undefined;
  #idle: NodeJS.Timeout | undefined;
  #pieces: string[] = [];
  #resync = false;
  #decoder: { write(chunk: Buffer): void; close(): void } | undefined;
  #lastApply: ApplyTiming | undefined;
  /** Where each held workload sits, so a delta of changed workloads is no pass over all of them. */
  readonly #positions = new WorkloadPositions();
  #rescan: NodeJS.Timeout | undefined;

  constructor(opts: ControllerClientOptions) {
    super();
    this.#opts = opts;
    this.#log = opts.log.child({ component: "controller-client" });
    this.#token = new NodeToken({ token: opts.token, file: opts.tokenFile, log: this.#log });
    this.#initialRoots = opts.trustBundle ?? (opts.caFile ? [readFileSync(opts.caFile, "utf8")] : []);
    if (this.#initialRoots.length === 0) throw new TypeError("ControllerClient needs trustBundle or caFile");
    this.#roots = [...this.#initialRoots];
  }

  get config(): MeshConfig | undefined {
    return this.#config;
  }
  get connected(): boolean {
    return this.#connected;
  }
  /** Timing of the last message that changed `config`. */
  get lastApply(): ApplyTiming | undefined {
    return this.#lastApply;
  }
  /** Roots currently trusted for the controller (configured ∪ pushed). */
  get trustBundle(): readonly string[] {
    return this.#roots;
  }

  onConfig(cb: (cfg: MeshConfig, change: ConfigChange) => void): void {
    this.on("config", cb);
  }

  /** Global rate-limit shares from the controller; returns an unsubscribe function. */
  onShares(cb: (message: RateLimitShares) => void): () => void {
    this.on("shares", cb);
    return () => this.off("shares", cb);
  }

  /**
   * Writes a demand report on the open stream; false (dropped) while disconnected or backed up: demand
   * is only worth its latest value, and the next report replaces it.
   */
  sendDemand(report: DemandReport): boolean {
    const stream = this.#stream;
    if (!this.#connected || !stream || stream.destroyed || stream.writableNeedDrain) return false;
    return stream.write(`${JSON.stringify(report)}\n`);
  }

  /** The controller's node address book (every reporting agent gets it); returns an unsubscribe function. */
  onNodes(cb: (message: NodeAddressBook) => void): () => void {
    this.on("nodes", cb);
    return () => this.off("nodes", cb);
  }

  /**
   * Reports this node's addresses (from `read`) on every connect, and again whenever they change
   * (looked at every `rescanMs`); the controller then sends the node book (onNodes).
   */
  reportAddresses(read: () => readonly string[], rescanMs: number): void {
    let last = "";
    const send = (force: boolean) => {
      const addresses = [...new Set(read())].sort().slice(0, MAX_NODE_ADDRESSES);
      const key = addresses.join(",");
      if (!force && key === last) return;
      const stream = this.#stream;
      if (!this.#connected || !stream || stream.destroyed) return;
      last = key;
      stream.write(`${JSON.stringify({ type: "addresses", addresses })}\n`);
    };
    this.on("connected", () => send(true));
    if (this.#connected) send(true);
    this.#rescan = setInterval(() => send(false), rescanMs);
    this.#rescan.unref();
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#connect();
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearInterval(this.#rescan);
    clearTimeout(this.#retry);
    clearTimeout(this.#idle);
    const s = this.#session;
    this.#session = undefined;
    this.#setConnected(false);
    const stream = this.#stream;
    this.#stream = undefined;
    if (stream && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
    if (s && !s.destroyed) {
      // The config stream never ends by itself; give the GOAWAY a moment, then cut.
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        s.close(() => {
          clearTimeout(t);
          resolve();
        });
      });
      s.destroy();
    }
  }

  /** Sends a CSR (PEM) for a workload identity; resolves with the signed chain and trust bundle. */
  async signCsr(csrPem: string, identity?: string): Promise<SignedCertificate> {
    const session = this.#session && !this.#session.destroyed ? this.#session : this.#newSession();
    const temporary = session !== this.#session;
    try {
      const { status, body } = await request(
        session,
        PATH_CSR,
        this.#headers(),
        JSON.stringify({ csr: csrPem, identity }),
      );
      if (status !== 200) {
        const parsed = ErrorBody.safeParse(safeJson(body));
        const e = parsed.success
          ? parsed.data.error
          : { reason: "http_" + status, message: body.slice(0, 200) };
        throw new ControlError(status, e.reason, `controller refused the csr (${e.reason}): ${e.message}`);
      }
      return CsrResponse.parse(JSON.parse(body));
    } finally {
      if (temporary) session.close();
    }
  }

  #headers(): http2.OutgoingHttpHeaders {
    return { authorization: `Bearer ${this.#token.value}`, [HEADER_NODE]: this.#opts.node };
  }

  #newSession(): ClientHttp2Session {
    const [host] = splitAddress(this.#opts.address);
    const s = http2.connect(`https://${this.#opts.address}`, {
      ca: this.#roots,
      servername: this.#opts.servername ?? (host.match(/^[\d.]+$|:/) ? undefined : host),
      minVersion: "TLSv1.3",
      // A snapshot is megabytes: big frames and windows cut per-frame work and WINDOW_UPDATE
      // round trips (the 64 KiB defaults made a 10,000-workload sync several times slower).
      settings: { initialWindowSize: STREAM_WINDOW, maxFrameSize: MAX_FRAME },
    });
    s.once("connect", () => s.setLocalWindowSize(SESSION_WINDOW));
    s.on("error", (err) => this.#log.debug({ err: err.message }, "controller connection error"));
    return s;
  }

  #connect(): void {
    if (!this.#running) return;
    this.#token.refresh();
    const session = this.#newSession();
    this.#session = session;
    session.on("close", () => this.#lost(session, "connection closed"));
    session.on("error", (err) => this.#lost(session, err.message));
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": PATH_STREAM,
      "content-type": NDJSON,
      ...this.#headers(),
    };
    if (this.#config && !this.#resync) headers[HEADER_VERSION] = this.#config.version;
    if (this.#opts.compression !== false) headers["accept-encoding"] = "deflate";
    headers[HEADER_FEATURES] =
      this.#opts.workloadRows !== false
        ? `${FEATURE_WORKLOAD_ROWS},${FEATURE_UNMESHED_PODS}`
        : FEATURE_UNMESHED_PODS;
    this.#resync = false;
    const stream = session.request(headers, { endStream: false });
    this.#stream = stream;
    this.#pieces = [];
    this.#decoder?.close();
    this.#decoder = undefined;
    stream.on("response", (h) => {
      const status = Number(h[":status"]);
      if (status === 200) {
        this.#decoder = this.#lineDecoder(stream, h["content-encoding"]);
        this.#attempt = 0;
        this.#setConnected(true);
        this.#log.info(
          { address: this.#opts.address, resume: headers[HEADER_VERSION] ?? null },
          "connected to the controller",
        );
        return;
      }
      let body = "";
      stream.setEncoding("utf8");
      stream.on("data", (c: string) => (body += c));
      stream.on("end", () => {
        const e = ErrorBody.safeParse(safeJson(body));
        this.#log.error(
          { status, reason: e.success ? e.data.error.reason : undefined },
          e.success ? e.data.error.message : `controller answered ${status}`,
        );
        session.destroy();
      });
    });
    stream.on("data", (chunk: Buffer | string) => {
      if (this.#connected && this.#stream === stream && typeof chunk !== "string")
        this.#decoder?.write(chunk);
    });
    stream.on("close", () => this.#lost(session, "stream closed"));
    stream.on("error", () => {});
    this.#armIdle(session);
  }

  /** Turns the response body into text for #onData: plain UTF-8, or inflated (deflate). */
  #lineDecoder(
    stream: ClientHttp2Stream,
    encoding: string | string[] | undefined,
  ): { write(chunk: Buffer): void; close(): void } {
    if (encoding === undefined || encoding === "identity") {
      const utf8 = new StringDecoder("utf8");
      return { write: (chunk) => this.#onData(utf8.write(chunk)), close: () => {} };
    }
    if (encoding !== "deflate") {
      this.#log.error({ encoding }, "controller sent an unknown content-encoding; reconnecting");
      stream.close(http2.constants.NGHTTP2_CANCEL);
      return { write: () => {}, close: () => {} };
    }
    // The stream never finishes: Z_SYNC_FLUSH yields every line as soon as its last byte is in,
    // and as the finish flush it tolerates the stream ending without a final block.
    const inflate = createInflate({
      flush: zlibConstants.Z_SYNC_FLUSH,
      finishFlush: zlibConstants.Z_SYNC_FLUSH,
      chunkSize: INFLATE_CHUNK,
    });
    inflate.setEncoding("utf8");
    inflate.on("data", (text: string) => {
      if (this.#stream === stream) this.#onData(text);
    });
    inflate.on("error", (err) => {
      if (this.#stream !== stream) return;
      this.#log.error({ err: err.message }, "corrupt compressed config stream; resyncing");
      this.#forceResync();
    });
    return { write: (chunk) => inflate.write(chunk), close: () => inflate.destroy() };
  }

  #lost(session: ClientHttp2Session, why: string): void {
    if (session !== this.#session) return;
    this.#session = undefined;
    this.#stream = undefined;
    this.#decoder?.close();
    this.#decoder = undefined;
    clearTimeout(this.#idle);
    if (!session.destroyed) session.destroy();
    this.#setConnected(false);
    if (!this.#running) return;
    const min = this.#opts.backoffMinMs ?? 200;
    const max = this.#opts.backoffMaxMs ?? 10_000;
    const delay = Math.min(max, min * 2 ** this.#attempt) * (0.5 + Math.random() / 2);
    this.#attempt += 1;
    this.#log.warn(
      { why, retryInMs: Math.round(delay), version: this.#config?.version ?? null },
      "controller stream lost; keeping the last config",
    );
    this.#retry = setTimeout(() => this.#connect(), delay);
  }

  #setConnected(c: boolean): void {
    if (this.#connected === c) return;
    this.#connected = c;
    this.emit(c ? "connected" : "disconnected");
  }

  #armIdle(session: ClientHttp2Session): void {
    clearTimeout(this.#idle);
    this.#idle = setTimeout(
      () => {
        this.#log.warn("no message from the controller for too long; reconnecting");
        this.#lost(session, "idle timeout");
      },
      this.#opts.idleTimeoutMs ?? 3 * HEARTBEAT_INTERVAL_MS,
    );
    this.#idle.unref();
  }

  #onData(chunk: string): void {
    if (this.#session) this.#armIdle(this.#session);
    // A snapshot line is megabytes long and arrives in many chunks: keep the pieces and scan only
    // the new chunk for the end of line (re-splitting the whole buffer each time is quadratic).
    let nl = chunk.indexOf("\n");
    if (nl < 0) {
      this.#pieces.push(chunk);
      return;
    }
    let start = 0;
    while (nl >= 0) {
      this.#pieces.push(chunk.slice(start, nl));
      const line = this.#pieces.join("");
      this.#pieces = [];
      if (line !== "") this.#handle(line, performance.now(), process.threadCpuUsage());
      start = nl + 1;
      nl = chunk.indexOf("\n", start);
    }
    if (start < chunk.length) this.#pieces.push(chunk.slice(start));
  }

  #handle(line: string, receivedAt: number, cpuAtReceipt: NodeJS.CpuUsage): void {
    let msg: ServerMessage;
    try {
      const raw: unknown = JSON.parse(line);
      expandWorkloadRows(raw);
      msg = this.#opts.validate === false ? (raw as ServerMessage) : ServerMessage.parse(raw);
    } catch (err) {
      this.#log.error({ err: (err as Error).message }, "invalid message from the controller; resyncing");
      return this.#forceResync();
    }
    if (msg.type === "heartbeat") return;
    if (msg.type === "shares") {
      this.emit("shares", msg);
      return;
    }
    if (msg.type === "nodes") {
      this.emit("nodes", msg);
      return;
    }
    let next: MeshConfig;
    let change: ConfigChange;
    if (msg.type === "snapshot") {
      next = msg.config;
      change = { version: next.version, full: true };
    } else {
      if (!this.#config) return this.#forceResync();
      try {
        next = this.#positions.apply(this.#config, msg.delta);
      } catch (err) {
        if (!(err instanceof DeltaMismatchError)) throw err;
        this.#log.warn({ err: err.message }, "delta does not apply; resyncing");
        return this.#forceResync();
      }
      change = { version: next.version, full: false };
    }
    this.#config = freeze(next);
    // With the snapshot, not on the first delta: 100 agents that synced together then each pay it
    // on their own sync, rather than all on the first change (bench/controller.ts).
    if (change.full) this.#positions.prepare(next.workloads);
    this.#lastApply = {
      version: next.version,
      receivedAt: performance.timeOrigin + receivedAt,
      applyMs: performance.now() - receivedAt,
      applyCpuMs: cpuMs(process.threadCpuUsage(cpuAtReceipt)),
    };
    this.#addRoots(next.trustBundle);
    this.#stream?.write(`${JSON.stringify({ type: "ack", version: next.version })}\n`);
    this.emit("config", this.#config, change);
  }

  #addRoots(pushed: readonly string[]): void {
    const set = new Set([...this.#initialRoots, ...pushed]);
    this.#roots = [...set];
  }

  #forceResync(): void {
    this.#resync = true;
    if (this.#session) this.#lost(this.#session, "resync");
  }
}

function cpuMs(u: NodeJS.CpuUsage): number {
  return (u.user + u.system) / 1000;
}

function freeze(c: MeshConfig): MeshConfig {
  for (const list of [
    c.services,
    c.workloads,
    c.authorizationPolicies,
    c.peerAuthentications,
    c.trafficPolicies,
    c.httpRoutes,
    c.grpcRoutes,
    c.faultInjections,
    c.rateLimitPolicies ?? [],
    c.trustBundle,
  ])
    Object.freeze(list);
  return Object.freeze(c);
}

function splitAddress(address: string): [string, string] {
  const i = address.lastIndexOf(":");
  return [address.slice(0, i).replace(/^\[|\]$/g, ""), address.slice(i + 1)];
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

function request(
  session: ClientHttp2Session,
  path: string,
  headers: http2.OutgoingHttpHeaders,
  body: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/json",
      ...headers,
    });
    let status = 0;
    let text = "";
    req.setEncoding("utf8");
    req.on("response", (h) => (status = Number(h[":status"])));
    req.on("data", (c: string) => (text += c));
    req.on("end", () => resolve({ status, body: text }));
    req.on("error", (err) =>
      reject(new ControlError(0, "unreachable", `cannot reach the controller: ${err.message}`)),
    );
    req.setTimeout(15_000, () => req.close(http2.constants.NGHTTP2_CANCEL));
    req.end(body);
  });
}
