// Runs the measurements of one path (direct, mesh or HAProxy) from the client pod: open-loop
// fixed-rate runs, closed-loop maximum throughput (wrk), and the proxies' CPU time and RSS read
// from /proc around each run. It knows nothing about how the path was built.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Lab, LabHost } from "../lab/index.ts";
import type { ConnMode } from "./loadgen-core.ts";
import type { LoadgenResult } from "./loadgen.ts";
import { rssBytes, totalCpuSeconds } from "./proc-stats.ts";

const LOADGEN = fileURLToPath(new URL("./loadgen.ts", import.meta.url));
const MiB = 1024 * 1024;

export interface PathUnderTest {
  name: string;
  /** host:port the client dials */
  target: string;
  /** the proxies on the path (none for direct) */
  proxies: { node: string; pid: number }[];
  /** connection modes to run (default CONN_MODES); the L7 paths run keep-alive only */
  conns?: readonly ConnMode[];
  /** HTTPS to `target`, its certificate verified against this CA file (the ingress bench) */
  tls?: { readonly ca: string };
  /** fixed rates to run (default FIXED_RATES) */
  rates?: readonly number[];
  /** false: skip the held-connections RSS step (default true for paths with proxies) */
  hold?: boolean;
}

export interface Durations {
  warmup: number;
  duration: number;
  maxDuration: number;
  connections: number;
}

export interface FixedRun {
  conn: ConnMode;
  rate: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  achievedRps: number;
  errors: number;
  sendLagP99: number;
  /** CPU seconds of all the path's proxies per 10k requests; NaN without proxies */
  cpuPer10k: number;
}

export interface MaxRun {
  conn: ConnMode;
  rps: number;
  errors: number;
  proxyCpuS: number;
  /** requests per CPU-second of the proxies together; NaN without proxies */
  perCoreRps: number;
}

export interface PathResult {
  name: string;
  available: boolean;
  reason?: string;
  fixed: FixedRun[];
  max: MaxRun[];
  /** per proxy, MiB */
  rssIdleMiB: number[];
  rssAfterLoadMiB: number[];
  rssHeldMiB: number[];
  held: number;
  /** Extra keep-alive rounds run alternately with another path (`Measurer.round`), for close comparisons. */
  rounds?: Round[];
}

/** One keep-alive round: p50 at a fixed rate and the closed-loop maximum. */
export interface Round {
  fixed: FixedRun;
  max: MaxRun;
}

/** A path result with no figures yet (`available` false until the path really ran). */
export function emptyResult(name: string, available = false): PathResult {
  return {
    name,
    available,
    fixed: [],
    max: [],
    rssIdleMiB: [],
    rssAfterLoadMiB: [],
    rssHeldMiB: [],
    held: 0,
  };
}

export const FIXED_RATES = [500, 1000] as const;
export const CONN_MODES: readonly ConnMode[] = ["keepalive", "new"];

/** bench/loadgen.ts in `host` until it exits; its one JSON line (LoadgenResult), or an error naming `what`. */
export async function runLoadgen(
  lab: Lab,
  host: LabHost,
  what: string,
  args: readonly string[],
): Promise<LoadgenResult> {
  const proc = lab.spawn(host, [process.execPath, "--disable-warning=ExperimentalWarning", LOADGEN, ...args]);
  const exit = await proc.exited;
  const line = proc.output
    .trim()
    .split("\n")
    .findLast((l) => l.startsWith("{"));
  if (exit.code !== 0 || !line) {
    throw new Error(`loadgen on ${what} failed (${exit.code ?? exit.signal}): ${proc.output.slice(-400)}`);
  }
  return JSON.parse(line) as LoadgenResult;
}

export class Measurer {
  readonly #lab: Lab;
  readonly #client: LabHost;
  readonly #d: Durations;
  readonly #tmp: string;
  readonly #log: (line: string) => void;

  constructor(lab: Lab, client: LabHost, durations: Durations, tmp: string, log: (line: string) => void) {
    this.#lab = lab;
    this.#client = client;
    this.#d = durations;
    this.#tmp = tmp;
    this.#log = log;
  }

  /** Waits until an HTTP request through the path succeeds (curl from the client pod). */
  async waitReady(path: PathUnderTest, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      const r = await this.#lab.exec(this.#client, [
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "2",
        ...(path.tls ? ["--cacert", path.tls.ca] : []),
        urlOf(path),
      ]);
      if (r.stdout.trim() === "200") return;
      last = `curl exit ${r.code}, status ${r.stdout.trim() || "none"} ${r.stderr.trim()}`;
      await new Promise((res) => setTimeout(res, 200));
    }
    throw new Error(`path ${path.name} to ${path.target} is not answering after ${timeoutMs} ms (${last})`);
  }

  async measure(path: PathUnderTest): Promise<PathResult> {
    const pids = path.proxies.map((p) => p.pid);
    const rss = () => pids.map((pid) => Math.round((rssBytes(pid) / MiB) * 10) / 10);
    const result = emptyResult(path.name, true);
    await new Promise((r) => setTimeout(r, 500));
    result.rssIdleMiB = rss();
    for (const conn of path.conns ?? CONN_MODES) {
      for (const rate of path.rates ?? FIXED_RATES) {
        result.fixed.push(await this.#fixed(path, pids, conn, rate));
        await this.#settle(path, pids);
      }
      result.max.push(await this.#max(path, pids, conn));
      await this.#settle(path, pids);
    }
    await new Promise((r) => setTimeout(r, 1000));
    result.rssAfterLoadMiB = rss();
    if (pids.length && path.hold !== false) {
      const held = await this.#hold(path, rss);
      result.rssHeldMiB = held.rss;
      result.held = held.count;
    }
    return result;
  }

  /** One keep-alive round of `path` (see Round), settled after, to be alternated with another path's. */
  async round(path: PathUnderTest, rate: number): Promise<Round> {
    const pids = path.proxies.map((p) => p.pid);
    const fixed = await this.#fixed(path, pids, "keepalive", rate);
    await this.#settle(path, pids);
    const max = await this.#max(path, pids, "keepalive");
    await this.#settle(path, pids);
    return { fixed, max };
  }

  /**
   * Waits until the proxies are idle (< 2% CPU over 250 ms), at most 20 s: an overloaded run
   * (new connections beyond what a proxy can handshake) leaves a backlog that would otherwise
   * be charged to the next run.
   */
  async #settle(path: PathUnderTest, pids: number[]): Promise<void> {
    if (!pids.length) return;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const c0 = totalCpuSeconds(pids);
      await new Promise((r) => setTimeout(r, 250));
      if (totalCpuSeconds(pids) - c0 < 0.005) return;
      if (Date.now() > deadline) return this.#log(`${path.name}: proxies still busy after 20 s, going on`);
    }
  }

  async #fixed(path: PathUnderTest, pids: number[], conn: ConnMode, rate: number): Promise<FixedRun> {
    const cpu0 = totalCpuSeconds(pids);
    const r = await this.#loadgen(path, [
      "--mode",
      "open",
      "--conn",
      conn,
      "--rate",
      String(rate),
      "--duration",
      String(this.#d.duration),
      "--warmup",
      String(this.#d.warmup),
    ]);
    const cpu = totalCpuSeconds(pids) - cpu0;
    const errors = r.errors;
    this.#log(
      `${path.name} ${conn} ${rate} rps: p50 ${r.latencyMs.p50} ms p99 ${r.latencyMs.p99} ms, ${r.achievedRps} rps, ${errors} errors`,
    );
    return {
      conn,
      rate,
      p50: r.latencyMs.p50,
      p90: r.latencyMs.p90,
      p99: r.latencyMs.p99,
      max: r.latencyMs.max,
      achievedRps: r.achievedRps,
      errors,
      sendLagP99: r.sendLagMs.p99,
      cpuPer10k: pids.length && r.completedTotal ? (cpu / r.completedTotal) * 10_000 : Number.NaN,
    };
  }

  #loadgen(path: PathUnderTest, args: string[]): Promise<LoadgenResult> {
    const tls = path.tls ? ["--ca", path.tls.ca] : [];
    return runLoadgen(this.#lab, this.#client, path.name, ["--target", path.target, ...tls, ...args]);
  }

  /** Maximum throughput: wrk, one thread, 32 connections, closed loop, 1 KiB POSTs. */
  async #max(path: PathUnderTest, pids: number[], conn: ConnMode): Promise<MaxRun> {
    const script = join(this.#tmp, `wrk-${conn}.lua`);
    await writeFile(script, wrkScript(conn));
    const cpu0 = totalCpuSeconds(pids);
    const r = await this.#lab.exec(this.#client, [
      "wrk",
      "-t1",
      "-c32",
      `-d${this.#d.maxDuration}s`,
      "--timeout",
      "5s",
      "-s",
      script,
      urlOf(path),
    ]);
    const cpu = totalCpuSeconds(pids) - cpu0;
    const parsed = parseWrk(r.stdout);
    if (!parsed) throw new Error(`wrk on ${path.name} failed (${r.code}): ${r.stdout}${r.stderr}`);
    this.#log(
      `${path.name} max ${conn}: ${parsed.rps} rps, ${parsed.errors} errors, proxies ${cpu.toFixed(2)} CPU s`,
    );
    return {
      conn,
      rps: parsed.rps,
      errors: parsed.errors,
      proxyCpuS: Math.round(cpu * 100) / 100,
      perCoreRps: pids.length && cpu > 0 ? Math.round(parsed.requests / cpu) : Number.NaN,
    };
  }

  async #hold(path: PathUnderTest, rss: () => number[]): Promise<{ rss: number[]; count: number }> {
    const n = this.#d.connections;
    const proc = this.#lab.spawn(this.#client, [
      process.execPath,
      "--disable-warning=ExperimentalWarning",
      LOADGEN,
      "--target",
      path.target,
      ...(path.tls ? ["--ca", path.tls.ca] : []),
      "--mode",
      "hold",
      "--connections",
      String(n),
    ]);
    try {
      const out = await proc.waitForOutput(/holding \d+/, 60_000);
      const count = Number(/holding (\d+)/.exec(out)?.[1] ?? 0);
      await new Promise((r) => setTimeout(r, 1000));
      const held = rss();
      this.#log(`${path.name} holding ${count} connections: RSS ${held.join(" / ")} MiB`);
      return { rss: held, count };
    } finally {
      proc.stdin.end();
      proc.kill("SIGTERM");
      await proc.exited;
    }
  }
}

/** The URL curl and wrk call (wrk speaks TLS itself but verifies nothing: the loadgen runs verify). */
export function urlOf(path: Pick<PathUnderTest, "target" | "tls">): string {
  return `${path.tls ? "https" : "http"}://${path.target}/`;
}

export function wrkScript(conn: ConnMode): string {
  return [
    'wrk.method = "POST"',
    'wrk.body = string.rep("a", 1024)',
    'wrk.headers["Content-Type"] = "application/octet-stream"',
    ...(conn === "new" ? ['wrk.headers["Connection"] = "close"'] : []),
    "",
  ].join("\n");
}

/** Requests, rate and errors from wrk's text report; undefined if it has no summary. */
export function parseWrk(out: string): { requests: number; rps: number; errors: number } | undefined {
  const requests = /(\d+) requests in/.exec(out);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!requests || !rps) return undefined;
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const errors =
    (sock ? sock.slice(1).reduce((s, v) => s + Number(v), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0);
  return { requests: Number(requests[1]), rps: Math.round(Number(rps[1])), errors };
}
