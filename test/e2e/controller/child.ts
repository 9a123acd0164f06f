// A controller in its own process (`node bin/nodemesh.js controller`, as an operator runs it), for
// tests that measure what the process holds: open files and RSS from /proc/<pid>, and its JSON log
// lines. Ports are random (127.0.0.1:0), read from the "controller started" log line.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { BASE_CONFIG, TOKENS } from "./harness.ts";

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), "../../../bin/nodemesh.js");

export class ChildController {
  readonly dir = mkdtempSync(join(tmpdir(), "nodemesh-ctlproc-"));
  readonly configFile = join(this.dir, "mesh.yaml");
  readonly logs: Record<string, unknown>[] = [];
  #proc: ChildProcess | undefined;
  port = 0;
  monitoringPort = 0;

  constructor(config = BASE_CONFIG) {
    writeFileSync(this.configFile, config);
  }

  get pid(): number {
    const pid = this.#proc?.pid;
    if (pid === undefined) throw new Error("controller not started");
    return pid;
  }

  /** The root certificate agents trust. */
  get rootPem(): string {
    return readFileSync(join(this.dir, "ca", "ca-cert.pem"), "utf8");
  }

  async start(extraArgs: string[] = []): Promise<void> {
    const tokens = Object.entries(TOKENS).flatMap(([node, token]) => ["--node-token", `${node}=${token}`]);
    const args = [
      BIN,
      "controller",
      ...["--config", this.configFile, "--ca-dir", join(this.dir, "ca")],
      ...["--listen", "127.0.0.1:0", "--monitoring", "127.0.0.1:0", "--log-level", "debug"],
      ...tokens,
      ...extraArgs,
    ];
    const proc = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    this.#proc = proc;
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      try {
        this.logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        this.logs.push({ msg: line });
      }
    });
    const started = await this.waitForLog((l) => l.msg === "controller started", 20_000);
    this.port = (started.listen as { port: number }).port;
    this.monitoringPort = (started.monitoring as { port: number }).port;
  }

  /** The first log line (already seen or to come) for which `pred` holds. */
  async waitForLog(
    pred: (l: Record<string, unknown>) => boolean,
    timeoutMs = 5000,
  ): Promise<Record<string, unknown>> {
    const start = Date.now();
    for (;;) {
      const found = this.logs.find(pred);
      if (found) return found;
      if (this.#proc?.exitCode !== null) throw new Error(`controller exited (${this.#proc?.exitCode})`);
      if (Date.now() - start > timeoutMs)
        throw new Error(`no matching controller log line in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  openFiles(): number {
    return readdirSync(`/proc/${this.pid}/fd`).length;
  }

  rssMiB(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
  }

  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.monitoringPort}/metrics`)).text();
  }

  /** One sample's value from /metrics, e.g. metric('nodemesh_controller_sessions_closed_total{reason="idle"}'). */
  async metric(series: string): Promise<number> {
    const text = await this.metrics();
    const line = text.split("\n").find((l) => l.startsWith(`${series} `));
    if (line === undefined) throw new Error(`no series ${series} in /metrics`);
    return Number(line.slice(series.length + 1));
  }

  signal(sig: NodeJS.Signals): void {
    this.#proc?.kill(sig);
  }

  async stop(): Promise<void> {
    const proc = this.#proc;
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
