// One agent's config stream: writes a snapshot (or a resume delta), then deltas, and reads ACKs.
// Slow agents never block others: a session holds at most one unsent target, not a queue. When
// the stream is backed up (write() returned false), newer versions simply replace the target and
// the next write is one delta from what was last written to the latest version (coalescing).
//
// Invariants: `#sent` is the version the agent will hold once it has read everything written;
// at most one 'drain' listener is pending; nothing is written after close; with `deflate`, the
// zlib header is the first thing written and every write is whole encoded pieces; rate-limit shares
// go only to an agent that has reported demand (controller/api/global-ratelimit.ts: older agents
// would not parse them).
import type { ServerHttp2Stream } from "node:http2";
import type { Logger } from "pino";
import { ClientMessage } from "../api/index.ts";
import type { DemandReport, NodeAddressBook, NodeAddressReport, RateLimitShares } from "../api/index.ts";
import type { ConfigHub, StreamEncoding, Version } from "./hub.ts";
import { ZLIB_HEADER, storedBlocks } from "./deflate.ts";
import type { ControllerMetrics } from "../metrics.ts";

/**
 * Bounds the bytes of full snapshots being written at once, across all sessions: each is TLS
 * output buffered per connection (2.4 MB uncompressed for 10,000 workloads, ~0.1 MB deflated), so
 * 100 agents (re)connecting together would otherwise hold 100 copies. The CPU work is the same;
 * only the memory peak changes. A snapshot bigger than the whole budget goes alone.
 * Waiters are served in order (FIFO), so a big snapshot is not starved by small ones.
 */
export class SnapshotGate {
  readonly #budget: number;
  #used = 0;
  readonly #queue: { bytes: number; cb: () => void }[] = [];
  constructor(budgetBytes: number) {
    this.#budget = budgetBytes;
  }
  tryAcquire(bytes: number): boolean {
    if (this.#queue.length > 0 || !this.#fits(bytes)) return false;
    this.#used += bytes;
    return true;
  }
  /** `cb` runs holding `bytes` (granted by a release). */
  wait(bytes: number, cb: () => void): void {
    this.#queue.push({ bytes, cb });
  }
  release(bytes: number): void {
    this.#used -= bytes;
    for (let next = this.#queue[0]; next && this.#fits(next.bytes); next = this.#queue[0]) {
      this.#queue.shift();
      this.#used += next.bytes;
      next.cb();
    }
  }
  #fits(bytes: number): boolean {
    return this.#used === 0 || this.#used + bytes <= this.#budget;
  }
}

function sizeOf(parts: readonly (string | Buffer)[]): number {
  let n = 0;
  for (const p of parts) n += typeof p === "string" ? Buffer.byteLength(p) : p.length;
  return n;
}

/** Heartbeats a backed-up stream may miss before the session is closed. */
const STALL_TICKS = 6;

export interface SessionInfo {
  node: string;
  sentVersion: string | undefined;
  ackedVersion: string | undefined;
  connectedAt: string;
}

export class AgentSession {
  readonly node: string;
  readonly #stream: ServerHttp2Stream;
  readonly #hub: ConfigHub;
  readonly #metrics: ControllerMetrics;
  readonly #log: Logger;
  readonly #connectedAt = new Date().toISOString();
  #sent: Version | undefined;
  #resumeFrom: string | undefined;
  #acked: string | undefined;
  #blocked = false;
  #closed = false;
  #partial = "";
  #stalled = 0;
  #reportsDemand = false;
  #reportsAddresses = false;
  readonly #gate: SnapshotGate;
  readonly #encoding: StreamEncoding;
  readonly #workloadRows: boolean;
  readonly #unmeshedPods: boolean;
  #gateState: "none" | "waiting" | "held" = "none";
  /** Bytes held in the gate while in state "held". */
  #gateBytes = 0;
  readonly #onPublish = () => this.flush();
  readonly #heartbeat: NodeJS.Timeout;
  onAck: ((node: string, version: string, error: string | undefined) => void) | undefined;
  onDemand: ((node: string, report: DemandReport) => void) | undefined;
  onAddresses: ((node: string, report: NodeAddressReport) => void) | undefined;

  constructor(
    node: string,
    stream: ServerHttp2Stream,
    deps: {
      hub: ConfigHub;
      metrics: ControllerMetrics;
      log: Logger;
      heartbeatMs: number;
      gate: SnapshotGate;
    },
    resumeFrom: string | undefined,
    encoding: StreamEncoding = "identity",
    /** The agent reads `workloadRows` in snapshots (controller/api/workload-rows.ts). */
    workloadRows = false,
    /** The agent knows UnmeshedPods (controller/api/features.ts); older ones must never see one. */
    unmeshedPods = false,
  ) {
    this.node = node;
    this.#stream = stream;
    this.#hub = deps.hub;
    this.#metrics = deps.metrics;
    this.#log = deps.log.child({ node });
    this.#resumeFrom = resumeFrom;
    this.#gate = deps.gate;
    this.#encoding = encoding;
    this.#workloadRows = workloadRows;
    this.#unmeshedPods = unmeshedPods;
    if (encoding !== "identity") stream.write(ZLIB_HEADER);
    this.#hub.on("publish", this.#onPublish);
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => this.#read(chunk));
    stream.on("close", () => this.close());
    stream.on("error", (err) => this.#log.debug({ err }, "agent stream error"));
    this.#heartbeat = setInterval(() => this.#tick(), deps.heartbeatMs);
    this.#heartbeat.unref();
  }

  info(): SessionInfo {
    return {
      node: this.node,
      sentVersion: this.#sent?.id,
      ackedVersion: this.#acked,
      connectedAt: this.#connectedAt,
    };
  }

  /** Sends whatever brings the agent to the hub's current version, unless the stream is backed up. */
  flush(): void {
    if (this.#closed || this.#blocked) return;
    const target = this.#hub.current;
    if (!target || target === this.#sent) return;
    let line: string | Buffer | (string | Buffer)[];
    if (this.#sent) {
      line = this.#hub.deltaBytes(this.#sent, target, this.node, this.#encoding, this.#unmeshedPods);
      this.#metrics.pushes.inc({ type: "delta" });
    } else if (this.#resumeFrom !== undefined && this.#hub.find(this.#resumeFrom)) {
      const from = this.#hub.find(this.#resumeFrom) as Version;
      this.#resumeFrom = undefined;
      if (from === target) {
        // Already current: confirm with a heartbeat carrying the version.
        this.#sent = target;
        this.#writeText(`{"type":"heartbeat","version":${JSON.stringify(target.id)}}`);
        this.#log.info({ version: target.id }, "agent resumed at the current version");
        return;
      }
      line = this.#hub.deltaBytes(from, target, this.node, this.#encoding, this.#unmeshedPods);
      this.#metrics.pushes.inc({ type: "delta" });
      this.#log.info({ from: from.id, to: target.id }, "agent resumed with a delta");
    } else {
      if (this.#gateState === "waiting") return;
      line = this.#hub.snapshotParts(
        target,
        this.node,
        this.#encoding,
        this.#workloadRows,
        this.#unmeshedPods,
      );
      if (this.#gateState === "none") {
        const bytes = sizeOf(line);
        if (!this.#gate.tryAcquire(bytes)) {
          this.#gateState = "waiting";
          this.#gate.wait(bytes, () => {
            this.#gateState = "held";
            this.#gateBytes = bytes;
            if (this.#closed) this.#releaseGate();
            else this.flush();
          });
          return;
        }
        this.#gateState = "held";
        this.#gateBytes = bytes;
      }
      if (this.#resumeFrom !== undefined)
        this.#log.info({ version: this.#resumeFrom }, "unknown agent version, full resync");
      this.#resumeFrom = undefined;
      this.#metrics.pushes.inc({ type: "snapshot" });
    }
    this.#sent = target;
    this.#write(line, () => this.#releaseGate());
  }

  #releaseGate(): void {
    if (this.#gateState !== "held") return;
    this.#gateState = "none";
    this.#gate.release(this.#gateBytes);
    this.#gateBytes = 0;
  }

  /** Heartbeat; a stream that stayed backed up for STALL_TICKS heartbeats is a dead agent: drop it. */
  #tick(): void {
    if (this.#blocked) {
      this.#stalled += 1;
      if (this.#stalled >= STALL_TICKS) {
        this.#log.warn("agent stopped reading its config stream; closing it (it resyncs on reconnect)");
        this.close();
      }
      return;
    }
    this.#stalled = 0;
    this.#writeText(`{"type":"heartbeat","version":${JSON.stringify(this.#sent?.id ?? "")}}`);
  }

  /**
   * Writes the node's rate-limit shares; false (nothing written) when its agent never reported demand,
   * or the stream is closed or backed up (the next split, a few seconds later, carries newer shares).
   */
  sendShares(message: RateLimitShares): boolean {
    if (!this.#reportsDemand || this.#closed || this.#blocked) return false;
    this.#writeText(JSON.stringify(message));
    return true;
  }

  /** Whether this session's agent reports its addresses (and so takes the book). */
  get reportsAddresses(): boolean {
    return this.#reportsAddresses;
  }

  /** Writes the node address book; false when the agent never reported addresses, or the stream is closed. */
  sendNodes(message: NodeAddressBook): boolean {
    if (!this.#reportsAddresses || this.#closed) return false;
    this.#writeText(JSON.stringify(message));
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#hub.off("publish", this.#onPublish);
    this.#releaseGate();
    if (!this.#stream.destroyed) this.#stream.close();
  }

  /** Writes a short control line (no newline), encoded for the session. */
  #writeText(line: string): void {
    this.#write(this.#encoding === "identity" ? `${line}\n` : storedBlocks(`${line}\n`));
  }

  /** Writes one encoded NDJSON line (newline included), whole or in pieces. */
  #write(line: string | Buffer | (string | Buffer)[], written?: () => void): void {
    if (this.#closed || this.#stream.destroyed) return written?.();
    let ok = true;
    const parts = Array.isArray(line) ? line : [line];
    parts.forEach((part, i) => {
      ok =
        i === parts.length - 1 && written
          ? this.#stream.write(part, () => written())
          : this.#stream.write(part);
    });
    if (!ok && !this.#blocked) {
      this.#blocked = true;
      this.#stream.once("drain", () => {
        this.#blocked = false;
        this.flush();
      });
    }
  }

  #read(chunk: string): void {
    const lines = (this.#partial + chunk).split("\n");
    this.#partial = lines.pop() ?? "";
    if (this.#partial.length > 65536) {
      this.#log.warn("agent sent an over-long line; closing its stream");
      this.close();
      return;
    }
    for (const line of lines) {
      if (line.trim() === "") continue;
      let msg: ClientMessage;
      try {
        msg = ClientMessage.parse(JSON.parse(line));
      } catch (err) {
        this.#log.warn({ err }, "invalid message from agent, ignored");
        continue;
      }
      if (msg.type === "demand") {
        this.#reportsDemand = true;
        this.onDemand?.(this.node, msg);
      } else if (msg.type === "addresses") {
        this.#reportsAddresses = true;
        this.onAddresses?.(this.node, msg);
      } else this.#ack(msg.version, msg.error);
    }
  }

  #ack(version: string, error: string | undefined): void {
    if (error !== undefined) {
      this.#metrics.acks.inc({ result: "nack" });
      this.#log.warn({ version, error }, "agent rejected a configuration version (NACK)");
    } else {
      this.#metrics.acks.inc({ result: "ack" });
      this.#acked = version;
      const v = this.#hub.find(version);
      if (v) this.#metrics.pushLatency.observe((performance.now() - v.createdAt) / 1000);
    }
    this.onAck?.(this.node, version, error);
  }
}
