// The pure parts of the load generator (bench/loadgen.ts): argument parsing, the open-loop send
// schedule, quantiles, and a minimal HTTP/1.1 response framer. No I/O here, so the unit tests
// (test/unit/bench/loadgen.test.ts) drive them directly.
//
// Open loop, as wrk2 does it: request k is *scheduled* at start + k * interval whatever happened to
// the previous ones, and its latency is measured from that scheduled time. A stalled path therefore
// shows up as latency instead of silently lowering the send rate ("coordinated omission").

export type LoadMode = "open" | "closed" | "hold";
export type ConnMode = "keepalive" | "new";

export interface LoadgenArgs {
  mode: LoadMode;
  conn: ConnMode;
  host: string;
  port: number;
  /** open loop: requests per second */
  rate: number;
  /** seconds measured (after the warm-up) */
  duration: number;
  /** seconds sent at the same rate before measuring */
  warmup: number;
  /** open loop, keep-alive: connections in the pool */
  pool: number;
  /** closed loop: concurrent connections, each sending its next request on the last reply */
  concurrency: number;
  /** hold: connections to open and keep */
  connections: number;
  /** request body bytes (the server answers with the same size) */
  body: number;
  /** a request not answered within this many ms counts as an error */
  timeoutMs: number;
  /** HTTPS: the CA file that verifies the server's certificate (`--ca`); undefined = plain HTTP */
  ca: string | undefined;
}

export const DEFAULT_ARGS: Readonly<Omit<LoadgenArgs, "host" | "port" | "ca">> = Object.freeze({
  mode: "open",
  conn: "keepalive",
  rate: 1000,
  duration: 5,
  warmup: 1,
  // 8 connections: at 1k rps and sub-millisecond replies one is usually enough; the rest absorb
  // stalls so that queueing in the generator does not dominate p99.
  pool: 8,
  concurrency: 32,
  connections: 1000,
  body: 1024,
  timeoutMs: 5000,
});

export class LoadgenArgsError extends Error {
  readonly code = "NODEMESH_ERR_BENCH_ARGS";
}

const NUMERIC = ["rate", "duration", "warmup", "pool", "concurrency", "connections", "body", "timeoutMs"];

/** Parses `--target host:port --mode open --conn keepalive --rate 1000 ...` (also `--x=y`). */
export function parseLoadgenArgs(argv: readonly string[]): LoadgenArgs {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? "";
    if (!a.startsWith("--")) throw new LoadgenArgsError(`unexpected argument ${a}; options are --name value`);
    const eq = a.indexOf("=");
    if (eq > 0) values.set(a.slice(2, eq), a.slice(eq + 1));
    else {
      const v = argv[++i];
      if (v === undefined) throw new LoadgenArgsError(`option ${a} needs a value`);
      values.set(a.slice(2), v);
    }
  }
  const target = values.get("target");
  const m = target ? /^([^:]+):(\d+)$/.exec(target) : null;
  if (!m) throw new LoadgenArgsError(`--target host:port is required (got ${target ?? "nothing"})`);
  const args: LoadgenArgs = { ...DEFAULT_ARGS, host: m[1] ?? "", port: Number(m[2]), ca: undefined };
  for (const [k, v] of values) {
    if (k === "target") continue;
    if (k === "ca") {
      // Checked here, read by the caller: a relative path would depend on the lab's working directory.
      if (!v.startsWith("/"))
        throw new LoadgenArgsError(`--ca ${v}: expected the absolute path of a PEM CA file`);
      args.ca = v;
      continue;
    }
    if (k === "mode") {
      if (v !== "open" && v !== "closed" && v !== "hold")
        throw new LoadgenArgsError(`--mode ${v}: use open, closed or hold`);
      args.mode = v;
    } else if (k === "conn") {
      if (v !== "keepalive" && v !== "new") throw new LoadgenArgsError(`--conn ${v}: use keepalive or new`);
      args.conn = v;
    } else if (NUMERIC.includes(k)) {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new LoadgenArgsError(`--${k} ${v}: expected a number >= 0`);
      (args as unknown as Record<string, number>)[k] = n;
    } else throw new LoadgenArgsError(`unknown option --${k}`);
  }
  if (args.mode === "open" && args.rate <= 0) throw new LoadgenArgsError("--rate must be > 0 in open mode");
  if (args.port < 1 || args.port > 65535) throw new LoadgenArgsError(`port ${args.port} is out of range`);
  return args;
}

/** Interval between scheduled sends, in nanoseconds. */
export function intervalNs(rate: number): number {
  return 1e9 / rate;
}

/** Scheduled send time (ns since start) of request k. */
export function scheduledAt(k: number, interval: number): number {
  return k * interval;
}

/**
 * How many requests are due by `elapsedNs` (the ones scheduled at or before it), capped at
 * `total`. The sender calls this on each wake-up and sends requests [sent, due).
 */
export function dueCount(elapsedNs: number, interval: number, total: number): number {
  if (elapsedNs < 0) return 0;
  return Math.min(total, Math.floor(elapsedNs / interval) + 1);
}

/** Nanoseconds from `elapsedNs` until the next request after the `sent` ones is due (0 if due). */
export function untilNext(elapsedNs: number, sent: number, interval: number): number {
  return Math.max(0, scheduledAt(sent, interval) - elapsedNs);
}

/** Nearest-rank quantile of ascending `sorted` values (q in [0, 1]); NaN when empty. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const rank = Math.min(n, Math.max(1, Math.ceil(q * n)));
  return sorted[rank - 1] ?? Number.NaN;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Summary of latencies given in ns, reported in ms (3 decimals: microsecond resolution). */
export function summarize(latenciesNs: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(latenciesNs).sort();
  const ms = (ns: number) => (Number.isNaN(ns) ? Number.NaN : Math.round(ns / 1e3) / 1e3);
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    p50: ms(quantile(sorted, 0.5)),
    p90: ms(quantile(sorted, 0.9)),
    p99: ms(quantile(sorted, 0.99)),
    max: ms(quantile(sorted, 1)),
    mean: ms(sorted.length ? sum / sorted.length : Number.NaN),
  };
}

/** The bytes of one POST request with a body of `body` bytes. */
export function buildRequest(host: string, port: number, body: number, keepAlive: boolean): Buffer {
  const head =
    `POST / HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: application/octet-stream\r\n` +
    `Content-Length: ${body}\r\nConnection: ${keepAlive ? "keep-alive" : "close"}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), Buffer.alloc(body, 0x61)]);
}

const CRLFCRLF = Buffer.from("\r\n\r\n");

/**
 * Frames HTTP/1.1 responses that carry a Content-Length (the bench server always sends one).
 * `push()` returns the status codes of the responses completed by this chunk.
 */
export class ResponseFramer {
  #buf: Buffer = Buffer.alloc(0);
  /** body bytes still expected for the current response; -1 while reading the head */
  #remaining = -1;
  #status = 0;

  push(chunk: Buffer): number[] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    const done: number[] = [];
    for (;;) {
      if (this.#remaining < 0) {
        const end = this.#buf.indexOf(CRLFCRLF);
        if (end < 0) break;
        const head = this.#buf.subarray(0, end).toString("latin1");
        this.#buf = this.#buf.subarray(end + 4);
        this.#status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
        const len = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (!len) throw new Error(`response without content-length (status ${this.#status})`);
        this.#remaining = Number(len[1]);
      }
      if (this.#buf.length < this.#remaining) {
        this.#remaining -= this.#buf.length;
        this.#buf = Buffer.alloc(0);
        break;
      }
      this.#buf = this.#buf.subarray(this.#remaining);
      this.#remaining = -1;
      done.push(this.#status);
    }
    return done;
  }
}
