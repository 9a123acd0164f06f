// How the operator commands find and reach the agents (and the controller's monitoring port).
//
// Order: `--agent [node=]<url>` (repeatable) names admin endpoints; otherwise `--lab <name>`, or the one
// lab that exists (the demo's, `nodemesh lab up`'s), gives one target per lab node, reached at
// 127.0.0.1:15000 inside the node's network namespace (where the agent's loopback admin listens); otherwise
// the agent of this host at http://127.0.0.1:15000. Inside a namespace the request is made by curl under
// `nsenter --net` (root, as the lab itself needs), so nothing is exposed outside the node.
import { spawn } from "node:child_process";
import { request } from "node:http";
import { createInterface } from "node:readline";
import { CliError } from "./errors.ts";

export const DEFAULT_ADMIN_URL = "http://127.0.0.1:15000";
export const DEFAULT_CONTROLLER_MONITORING = "http://127.0.0.1:15014";

export interface Endpoint {
  /** The agent's node name (or the controller), as printed. */
  readonly name: string;
  readonly url: string;
  /** Network namespace path to enter first; undefined = reachable from here. */
  readonly netns?: string;
  /** bpffs directory of this agent's pins, when known (the lab's naming). */
  readonly pinDir?: string;
}

export interface Targets {
  readonly agents: readonly Endpoint[];
  readonly controller?: Endpoint;
  /** How they were found, for messages. */
  readonly source: "--agent" | "lab" | "default";
}

export interface HttpAnswer {
  readonly status: number;
  /** The Date header, for clock-skew checks. */
  readonly date?: string;
  readonly body: string;
}

/** `[node=]url` → endpoint; the name defaults to the URL's host:port. */
export function parseAgentFlag(value: string): Endpoint {
  const eq = value.indexOf("=");
  const name = eq > 0 && !value.slice(0, eq).includes("/") ? value.slice(0, eq) : undefined;
  const raw = name === undefined ? value : value.slice(eq + 1);
  let url: URL;
  try {
    url = new URL(raw.includes("://") ? raw : `http://${raw}`);
  } catch {
    throw new CliError("NODEMESH_ERR_CLI_ARGS", `--agent must be [node=]http://host:port, got "${value}"`);
  }
  if (url.protocol !== "http:")
    throw new CliError("NODEMESH_ERR_CLI_ARGS", `--agent must be an http:// admin address, got "${value}"`);
  return { name: name ?? url.host, url: url.origin };
}

export async function discoverTargets(opts: {
  agents: readonly string[];
  lab?: string;
  controller?: string;
}): Promise<Targets> {
  const controllerFlag = opts.controller ? parseAgentFlag(`controller=${opts.controller}`) : undefined;
  if (opts.agents.length > 0) {
    const agents = opts.agents.map(parseAgentFlag);
    return { agents, source: "--agent", ...(controllerFlag ? { controller: controllerFlag } : {}) };
  }
  const { Lab } = await import("../lab/index.ts");
  let name = opts.lab;
  if (name === undefined) {
    const labs = await Lab.list().catch(() => [] as string[]);
    if (labs.length > 1)
      throw new CliError(
        "NODEMESH_ERR_CLI_ARGS",
        `${labs.length} labs exist (${labs.join(", ")}): pick one with --lab <name>, or name agents with --agent`,
      );
    name = labs[0];
  }
  if (name === undefined) {
    const agents = [{ name: "local", url: DEFAULT_ADMIN_URL }];
    return { agents, source: "default", ...(controllerFlag ? { controller: controllerFlag } : {}) };
  }
  const lab = await Lab.attach(name);
  const agents = lab.nodes.map((n) => ({
    name: n.name,
    url: DEFAULT_ADMIN_URL,
    netns: n.netnsPath,
    // mesh.ts's pinDirOf(): one pin directory per lab node.
    pinDir: `/sys/fs/bpf/nodemesh-${lab.name}-${n.name}`,
  }));
  const controller = controllerFlag ?? {
    name: "controller",
    url: DEFAULT_CONTROLLER_MONITORING,
    netns: lab.root.netnsPath,
  };
  return { agents, controller, source: "lab" };
}

/** GET `path` on an endpoint; rejects with a CliError naming the endpoint when it cannot be reached. */
export function get(ep: Endpoint, path: string, timeoutMs = 5000): Promise<HttpAnswer> {
  return ep.netns ? curlGet(ep, path, timeoutMs) : nodeGet(ep, path, timeoutMs);
}

function unreachable(ep: Endpoint, path: string, why: string): CliError {
  return new CliError(
    "NODEMESH_ERR_CLI_UNREACHABLE",
    `cannot reach ${ep.name} at ${ep.url}${path}${ep.netns ? ` (in ${ep.netns})` : ""}: ${why}; is the agent running? (nodemesh check)`,
  );
}

function nodeGet(ep: Endpoint, path: string, timeoutMs: number): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(`${ep.url}${path}`, { timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const date = res.headers.date;
        const body = Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode ?? 0, body, ...(date ? { date } : {}) });
      });
      res.on("error", (err) => reject(unreachable(ep, path, err.message)));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on("error", (err) => reject(unreachable(ep, path, err.message)));
    req.end();
  });
}

function curlGet(ep: Endpoint, path: string, timeoutMs: number): Promise<HttpAnswer> {
  const argv = ["curl", "-sS", "-i", "--max-time", String(Math.ceil(timeoutMs / 1000)), `${ep.url}${path}`];
  return new Promise((resolve, reject) => {
    const p = spawn("nsenter", [`--net=${ep.netns}`, "--", ...argv], { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on("data", (c: Buffer) => out.push(c));
    p.stderr.on("data", (c: Buffer) => err.push(c));
    p.on("error", (e) => reject(unreachable(ep, path, `cannot run nsenter/curl: ${e.message}`)));
    p.on("close", (code) => {
      if (code !== 0)
        return reject(unreachable(ep, path, Buffer.concat(err).toString().trim() || `curl exit ${code}`));
      const answer = parseCurlResponse(Buffer.concat(out).toString("utf8"));
      if (!answer) return reject(unreachable(ep, path, "no HTTP response"));
      resolve(answer);
    });
  });
}

/** curl -i output: status line and headers, a blank line, the body. */
export function parseCurlResponse(text: string): HttpAnswer | undefined {
  const split = text.indexOf("\r\n\r\n");
  if (split < 0) return undefined;
  const [statusLine = "", ...headers] = text.slice(0, split).split("\r\n");
  const m = /^HTTP\/[\d.]+ (\d{3})/.exec(statusLine);
  if (!m) return undefined;
  const date = headers
    .find((h) => h.toLowerCase().startsWith("date:"))
    ?.slice(5)
    .trim();
  return { status: Number(m[1]), body: text.slice(split + 4), ...(date ? { date } : {}) };
}

/**
 * Streams the NDJSON lines of GET `path` to `onLine` until the agent ends the stream or `signal` aborts.
 * Rejects when the endpoint cannot be reached or answers an error status.
 */
export function stream(
  ep: Endpoint,
  path: string,
  onLine: (line: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const argv = ["curl", "-sS", "-N", "--fail-with-body", `${ep.url}${path}`];
  const [cmd, ...args] = ep.netns ? ["nsenter", `--net=${ep.netns}`, "--", ...argv] : argv;
  return new Promise((resolve, reject) => {
    const p = spawn(cmd as string, args, { stdio: ["ignore", "pipe", "pipe"], signal });
    const err: Buffer[] = [];
    const lines: string[] = [];
    p.stderr.on("data", (c: Buffer) => err.push(c));
    createInterface({ input: p.stdout }).on("line", (l) => {
      if (l.startsWith("{")) onLine(l);
      else lines.push(l);
    });
    p.on("error", (e) => (signal.aborted ? resolve() : reject(unreachable(ep, path, e.message))));
    p.on("close", (code) => {
      if (signal.aborted || code === 0) return resolve();
      // --fail-with-body: the agent's own refusal (a bad filter, too many taps) is in the body.
      if (lines.length > 0)
        return reject(new CliError("NODEMESH_ERR_CLI_AGENT", `${ep.name}: ${lines.join(" ")}`));
      reject(unreachable(ep, path, Buffer.concat(err).toString().trim() || `curl exit ${code}`));
    });
  });
}
