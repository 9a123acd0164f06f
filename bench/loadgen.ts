// Open-loop constant-rate HTTP/1.1 load generator, run inside the client pod by bench/dataplane.ts:
//   node bench/loadgen.ts --target 10.1.2.2:8080 --mode open --conn keepalive --rate 1000 --duration 5
// Prints one JSON line (LoadgenResult) on stdout when done. `--ca <file>` speaks HTTPS (TLS, the
// server's certificate verified against that CA, HTTP/1.1 by ALPN) instead of plain HTTP. Modes:
// - open:   request k is scheduled at k/rate; latency counts from the scheduled time (no
//           coordinated omission). keepalive = a pool of connections, a request waits for a free
//           one; new = one TCP connection per request, the server closes it (`Connection: close`).
// - closed: `concurrency` loops, each sends its next request when the last one is answered.
// - hold:   opens `connections` keep-alive connections, one request on each so the whole path is
//           set up, prints "holding <n>" and keeps them until stdin closes or SIGTERM.
//
// Timing: Node timers have 1 ms granularity, which would add up to 1 ms of send lag to every
// request at 1k rps. A worker thread sleeps with Atomics.wait (sub-millisecond timeouts) and wakes
// the main loop with postMessage when the next send is due; the lag is reported as `sendLagMs`.
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import type { Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { Worker } from "node:worker_threads";
import {
  buildRequest,
  dueCount,
  intervalNs,
  parseLoadgenArgs,
  ResponseFramer,
  scheduledAt,
  summarize,
} from "./loadgen-core.ts";
import type { LatencySummary, LoadgenArgs } from "./loadgen-core.ts";

export interface LoadgenResult {
  mode: string;
  conn: string;
  target: string;
  rate: number;
  durationS: number;
  /** requests measured (scheduled after the warm-up) */
  sent: number;
  completed: number;
  /** all answered requests, warm-up included: divide CPU time by this */
  completedTotal: number;
  errors: number;
  errorKinds: Record<string, number>;
  achievedRps: number;
  latencyMs: LatencySummary;
  sendLagMs: LatencySummary;
  held?: number;
}

const BASE = process.hrtime.bigint();
const now = (): number => Number(process.hrtime.bigint() - BASE);

// The ticker: sleeps until each scheduled time and pings the main thread. Plain JS (eval) so it
// needs no loader; hrtime shares its clock with the main thread.
const TICKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { base, startNs, interval, total } = workerData;
const cell = new Int32Array(new SharedArrayBuffer(4));
const now = () => Number(process.hrtime.bigint() - base);
for (let k = 0; k < total; k++) {
  const wait = startNs + k * interval - now();
  if (wait > 20000) Atomics.wait(cell, 0, 0, (wait - 20000) / 1e6);
  while (startNs + k * interval > now()) {}
  parentPort.postMessage(k);
}
`;

/** A new connection to the target, and the event after which a request can go (TLS: the handshake). */
function dial(
  args: LoadgenArgs,
  ca: Buffer | undefined,
): { socket: Socket; ready: "connect" | "secureConnect" } {
  if (!ca) return { socket: connect({ host: args.host, port: args.port, noDelay: true }), ready: "connect" };
  const socket = tlsConnect({ host: args.host, port: args.port, ca, ALPNProtocols: ["http/1.1"] });
  socket.setNoDelay(true);
  return { socket, ready: "secureConnect" };
}

class Recorder {
  latencies: number[] = [];
  lags: number[] = [];
  errors = 0;
  errorKinds: Record<string, number> = {};
  completedTotal = 0;
  sent = 0;
  error(kind: string, measured: boolean): void {
    if (measured) this.errors++;
    this.errorKinds[kind] = (this.errorKinds[kind] ?? 0) + 1;
  }
}

/** One keep-alive connection: one request in flight at a time. A lost connection answers its
 * pending request with status 0 and stays busy for good; `onDead` lets the owner replace it. */
class KeepAliveConn {
  readonly socket: Socket;
  readonly #readyEvent: "connect" | "secureConnect";
  busy = false;
  #dead = false;
  #framer = new ResponseFramer();
  #onReply: ((status: number) => void) | undefined;
  constructor(args: LoadgenArgs, onDead?: (c: KeepAliveConn) => void) {
    const { socket, ready } = dial(args, caOf(args));
    this.socket = socket;
    this.#readyEvent = ready;
    this.socket.on("data", (d: Buffer) => {
      for (const status of this.#framer.push(d)) {
        const cb = this.#onReply;
        this.#onReply = undefined;
        this.busy = false;
        cb?.(status);
      }
    });
    const die = () => {
      if (this.#dead) return;
      this.#dead = true;
      this.busy = true;
      const cb = this.#onReply;
      this.#onReply = undefined;
      cb?.(0);
      onDead?.(this);
    };
    this.socket.on("error", die);
    this.socket.on("close", die);
  }
  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once(this.#readyEvent, resolve);
      this.socket.once("error", reject);
    });
  }
  send(req: Buffer, onReply: (status: number) => void): void {
    if (this.#dead) return onReply(0);
    this.busy = true;
    this.#onReply = onReply;
    this.socket.write(req);
  }
}

/** One request on its own connection; resolves with the status (0 on error) once answered. */
function oneShot(args: LoadgenArgs, req: Buffer, onDone: (status: number, err?: string) => void): void {
  const { socket, ready } = dial(args, caOf(args));
  const framer = new ResponseFramer();
  let finished = false;
  const finish = (status: number, err?: string) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    onDone(status, err);
  };
  const timer = setTimeout(() => {
    finish(0, "timeout");
    socket.destroy();
  }, args.timeoutMs);
  socket.on(ready, () => socket.write(req));
  // The server closes after replying (Connection: close), so the TIME_WAIT stays on its side.
  socket.on("data", (d: Buffer) => {
    if (framer.push(d).length) finish(200);
  });
  socket.on("error", (e: NodeJS.ErrnoException) => finish(0, e.code ?? "error"));
  socket.on("close", () => finish(0, "closed before reply"));
}

async function openLoop(args: LoadgenArgs, rec: Recorder): Promise<void> {
  const interval = intervalNs(args.rate);
  const total = Math.round(args.rate * (args.warmup + args.duration));
  const warm = Math.round(args.rate * args.warmup);
  const keepAlive = args.conn === "keepalive";
  const req = buildRequest(args.host, args.port, args.body, keepAlive);
  const pool: KeepAliveConn[] = [];
  const queue: number[] = []; // scheduled indices waiting for a free connection
  let outstanding = 0;
  let stopping = false;

  const reply = (k: number, status: number, err?: string) => {
    outstanding--;
    rec.completedTotal++;
    if (status !== 200) rec.error(err ?? (status ? `status ${status}` : "connection lost"), k >= warm);
    else if (k >= warm) rec.latencies.push(now() - startNs - scheduledAt(k, interval));
  };
  const dispatch = () => {
    while (queue.length) {
      const conn = pool.find((c) => !c.busy);
      if (!conn) return;
      const k = queue.shift() ?? 0;
      conn.send(req, (status) => {
        reply(k, status);
        dispatch();
      });
    }
  };
  const onDead = (c: KeepAliveConn) => {
    const i = pool.indexOf(c);
    if (i < 0 || stopping) return;
    pool.splice(i, 1);
    const fresh = new KeepAliveConn(args, onDead);
    pool.push(fresh);
    fresh.ready().then(dispatch, () => {});
  };
  if (keepAlive) {
    for (let i = 0; i < args.pool; i++) pool.push(new KeepAliveConn(args, onDead));
    await Promise.all(pool.map((c) => c.ready()));
  }

  const startNs = now() + 5e6;
  const ticker = new Worker(TICKER, { eval: true, workerData: { base: BASE, startNs, interval, total } });
  await new Promise<void>((resolve) => {
    ticker.on("message", () => {
      const due = dueCount(now() - startNs, interval, total);
      for (; rec.sent < due; rec.sent++) {
        const k = rec.sent;
        if (k >= warm) rec.lags.push(now() - startNs - scheduledAt(k, interval));
        outstanding++;
        if (keepAlive) queue.push(k);
        else oneShot(args, req, (status, err) => reply(k, status, err));
      }
      if (keepAlive) dispatch();
      if (rec.sent >= total) resolve();
    });
  });
  await ticker.terminate();
  const deadline = now() + args.timeoutMs * 1e6;
  while (outstanding > 0 && now() < deadline) await sleep(10);
  for (let i = 0; i < outstanding; i++) rec.error("timeout", true);
  stopping = true;
  for (const c of pool) c.socket.destroy();
  rec.sent -= warm;
}

async function closedLoop(args: LoadgenArgs, rec: Recorder): Promise<number> {
  const keepAlive = args.conn === "keepalive";
  const req = buildRequest(args.host, args.port, args.body, keepAlive);
  const startNs = now();
  const measureFrom = startNs + args.warmup * 1e9;
  const endNs = measureFrom + args.duration * 1e9;
  const loop = async () => {
    let conn: KeepAliveConn | undefined;
    while (now() < endNs) {
      const t0 = now();
      const status = await new Promise<number>((resolve) => {
        if (!keepAlive) return oneShot(args, req, (s) => resolve(s));
        const c = (conn ??= new KeepAliveConn(args, () => {
          if (conn === c) conn = undefined;
        }));
        c.send(req, resolve);
      });
      rec.completedTotal++;
      if (t0 < measureFrom) continue;
      rec.sent++;
      if (status === 200) rec.latencies.push(now() - t0);
      else rec.error(status ? `status ${status}` : "connection lost", true);
    }
    conn?.socket.destroy();
  };
  await Promise.all(Array.from({ length: args.concurrency }, loop));
  return (now() - measureFrom) / 1e9;
}

async function hold(args: LoadgenArgs, rec: Recorder): Promise<number> {
  const req = buildRequest(args.host, args.port, args.body, true);
  const conns: KeepAliveConn[] = [];
  let holding = true;
  // Open in batches of 100 so as not to overflow listen backlogs along the path.
  for (let i = 0; i < args.connections; i += 100) {
    const batch = Array.from({ length: Math.min(100, args.connections - i) }, () => {
      const c = new KeepAliveConn(args, () => {
        if (holding) rec.error("connection lost", true);
      });
      conns.push(c);
      return c.ready().then(
        () => new Promise<number>((resolve) => c.send(req, resolve)),
        () => 0,
      );
    });
    for (const status of await Promise.all(batch)) if (status === 200) rec.completedTotal++;
  }
  process.stdout.write(`holding ${rec.completedTotal}\n`);
  await new Promise<void>((resolve) => {
    process.stdin.on("end", resolve).on("close", resolve).resume();
    process.once("SIGTERM", resolve);
  });
  holding = false;
  for (const c of conns) c.socket.destroy();
  return rec.completedTotal;
}

let caCache: { file: string; pem: Buffer } | undefined;
/** The CA of `--ca`, read once (thousands of connections per run). */
function caOf(args: LoadgenArgs): Buffer | undefined {
  if (!args.ca) return undefined;
  if (caCache?.file !== args.ca) caCache = { file: args.ca, pem: readFileSync(args.ca) };
  return caCache.pem;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const args = parseLoadgenArgs(process.argv.slice(2));
  caOf(args); // an unreadable --ca fails here, once, not on every connection
  const rec = new Recorder();
  let measuredS = args.duration;
  let held: number | undefined;
  if (args.mode === "open") await openLoop(args, rec);
  else if (args.mode === "closed") measuredS = await closedLoop(args, rec);
  else held = await hold(args, rec);
  const result: LoadgenResult = {
    mode: args.mode,
    conn: args.conn,
    target: `${args.host}:${args.port}`,
    rate: args.mode === "open" ? args.rate : 0,
    durationS: measuredS,
    sent: rec.sent,
    completed: rec.latencies.length,
    completedTotal: rec.completedTotal,
    errors: rec.errors,
    errorKinds: rec.errorKinds,
    achievedRps: Math.round(rec.latencies.length / measuredS),
    latencyMs: summarize(rec.latencies),
    sendLagMs: summarize(rec.lags),
    ...(held === undefined ? {} : { held }),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`loadgen: ${err.message}\n`);
    process.exit(1);
  },
);
