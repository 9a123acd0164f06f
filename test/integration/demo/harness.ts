// Helpers for the demo backend's integration tests: start demo/apps/echo-server.ts as a child
// process on free ports of 127.0.0.1, run the sample clients and curl, and collect what they print.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";

export const APPS = join(import.meta.dirname, "../../../demo/apps");

export interface Backend {
  readonly proc: ChildProcess;
  readonly pod: string;
  readonly http: number;
  readonly grpc: number | null;
  readonly banner: number | null;
  /** Sends SIGTERM and resolves to the exit code. */
  stop(): Promise<number | null>;
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function exited(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => proc.once("exit", (code) => resolve(code)));
}

/** Starts the backend with `env` on top of free ports; rejects with its stderr if it exits first. */
export function startBackend(pod: string, env: Record<string, string> = {}): Promise<Backend> {
  const proc = spawn(process.execPath, [join(APPS, "echo-server.ts")], {
    env: { ...process.env, POD_NAME: pod, PORT: "0", GRPC_PORT: "0", TCP_BANNER_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  return new Promise((resolve, reject) => {
    proc.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf("\n");
      if (nl < 0) return;
      const ready = JSON.parse(out.slice(0, nl)) as {
        listening: number;
        grpc: number | null;
        banner: number | null;
      };
      resolve({
        proc,
        pod,
        http: ready.listening,
        grpc: ready.grpc,
        banner: ready.banner,
        stop: () => {
          proc.kill("SIGTERM");
          return exited(proc);
        },
      });
    });
    proc.once("exit", (code) => reject(new Error(`echo-server exited ${code} before listening: ${err}`)));
  });
}

/** Runs a command to completion (no shell); never rejects, the exit code is in the result. */
export function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const started = performance.now();
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  proc.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => {
    proc.once("close", (code) => resolve({ code, stdout, stderr, ms: performance.now() - started }));
  });
}

/** Runs one of the sample clients in demo/apps. */
export function runApp(app: string, args: string[]): Promise<Run> {
  return run(process.execPath, [join(APPS, app), ...args]);
}

/** The JSON lines a client printed. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export interface CurlResult {
  status: number;
  version: string;
  headers: Record<string, string[]>;
  body: string;
  sizeDownload: number;
  timeTotal: number;
}

const MARK = "\n@@curl@@";

/** curl with its write-out JSON appended after a marker, so status and timing come with the body. */
export async function curl(args: string[]): Promise<CurlResult> {
  const format = `${MARK}{"status":%{http_code},"version":"%{http_version}","size":%{size_download},"time":%{time_total},"headers":%{header_json}}`;
  const r = await run("curl", ["-sS", "--max-time", "20", "-w", format, ...args]);
  const at = r.stdout.lastIndexOf(MARK);
  if (r.code !== 0 || at < 0) throw new Error(`curl ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  const meta = JSON.parse(r.stdout.slice(at + MARK.length)) as {
    status: number;
    version: string;
    size: number;
    time: number;
    headers: Record<string, string[]>;
  };
  return {
    status: meta.status,
    version: meta.version,
    headers: meta.headers,
    body: r.stdout.slice(0, at),
    sizeDownload: meta.size,
    timeTotal: meta.time,
  };
}
