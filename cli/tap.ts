// `nodemesh tap <workload|service>`: a live stream of the requests and connections the agents finish,
// from every agent's admin /tap (bounded and sampled there, so a tap cannot hurt the data path). One line
// per event: a table row, or the agent's JSON object with `-o json` (NDJSON, for jq).
import { CliError } from "./errors.ts";
import { COMMON_USAGE, parseCommand, parseCount, parseDuration, printUsage } from "./options.ts";
import { discoverTargets, stream } from "./targets.ts";

export const TAP_USAGE = `usage: nodemesh tap [workload/|service/|route/]<name> [filters] [-o json]
  streams finished requests and connections of a workload (as source or destination), to a service, or
  matched by a route (a bare name matches any of the three: a routed request's service is its backend)
  -n, --namespace <ns>   only this namespace
  --kind http|tcp        requests only, or connections only
  --method <m>           requests with this method     --path <prefix>   requests under this path
  --max <n>              stop after n events in total (default 100, at most 10000)
  --duration <d>         stop after this long (default 30s, at most 10m)
  --sample <r>           deliver this fraction of matching events (0 < r <= 1, default 1)
  --rate <n>             at most n events per second per agent (default 100)
${COMMON_USAGE}
`;

export interface TapQuery {
  readonly query: URLSearchParams;
  readonly max: number;
  readonly durationMs: number;
}

/** The flags → the agents' /tap query (validated here too, so a typo fails before anything streams). */
export function tapQuery(target: string | undefined, values: Record<string, unknown>): TapQuery {
  if (!target)
    throw new CliError("NODEMESH_ERR_CLI_ARGS", "tap: name a workload or service, e.g. `nodemesh tap web`");
  const q = new URLSearchParams();
  const slash = target.indexOf("/");
  const kind = slash < 0 ? undefined : target.slice(0, slash);
  const name = slash < 0 ? target : target.slice(slash + 1);
  if (name === "")
    throw new CliError("NODEMESH_ERR_CLI_ARGS", `tap: "${target}" names no workload or service`);
  if (kind === "service" || kind === "svc") q.set("service", name);
  else if (kind === "route") q.set("route", name);
  else if (kind === "workload" || kind === "wl" || kind === undefined)
    q.set(kind ? "workload" : "target", name);
  else
    throw new CliError(
      "NODEMESH_ERR_CLI_ARGS",
      `tap: the kind must be workload/, service/ or route/, got "${kind}/"`,
    );
  const str = (k: string) => (typeof values[k] === "string" ? (values[k] as string) : undefined);
  const ns = str("namespace");
  if (ns) q.set("namespace", ns);
  const tkind = str("kind");
  if (tkind !== undefined && tkind !== "http" && tkind !== "tcp")
    throw new CliError("NODEMESH_ERR_CLI_ARGS", `tap: --kind must be http or tcp, got "${tkind}"`);
  if (tkind) q.set("kind", tkind);
  const method = str("method");
  if (method) q.set("method", method.toUpperCase());
  const path = str("path");
  if (path !== undefined && !path.startsWith("/"))
    throw new CliError("NODEMESH_ERR_CLI_ARGS", `tap: --path must start with "/", got "${path}"`);
  if (path) q.set("path", path);
  const max = parseCount("--max", str("max") ?? "100", 1, 10_000);
  const durationMs = parseDuration("--duration", str("duration") ?? "30s", 100, 600_000);
  const sample = Number(str("sample") ?? "1");
  if (!(sample > 0 && sample <= 1))
    throw new CliError(
      "NODEMESH_ERR_CLI_ARGS",
      `tap: --sample must be a fraction in (0, 1], got "${str("sample")}"`,
    );
  const rateN = parseCount("--rate", str("rate") ?? "100", 1, 1000);
  q.set("max", String(max));
  q.set("seconds", String(durationMs / 1000));
  q.set("sample", String(sample));
  q.set("rate", String(rateN));
  return { query: q, max, durationMs };
}

export async function tapMain(argv: string[]): Promise<number> {
  const { common, values, positionals } = parseCommand("tap", argv, {
    namespace: { type: "string", short: "n" },
    kind: { type: "string" },
    method: { type: "string" },
    path: { type: "string" },
    max: { type: "string" },
    duration: { type: "string" },
    sample: { type: "string" },
    rate: { type: "string" },
  });
  if (common.help) return printUsage(TAP_USAGE);
  if (positionals.length > 1)
    throw new CliError("NODEMESH_ERR_CLI_ARGS", `tap: one target only, got ${positionals.join(" ")}`);
  const tq = tapQuery(positionals[0], values);
  const targets = await discoverTargets(common);
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), tq.durationMs + 2000);
  let seen = 0;
  const emit = (agent: string, line: string) => {
    const e = JSON.parse(line) as Record<string, unknown>;
    if (e["type"] === "start" || e["type"] === "end" || seen >= tq.max) return;
    seen++;
    process.stdout.write(
      common.output === "json" ? `${JSON.stringify({ agent, ...e })}\n` : formatEvent(agent, e),
    );
    if (seen >= tq.max) abort.abort();
  };
  if (common.output === "table")
    process.stdout.write(`tapping ${targets.agents.map((a) => a.name).join(", ")} (Ctrl-C stops)\n`);
  try {
    await Promise.all(
      targets.agents.map((a) => stream(a, `/tap?${tq.query}`, (l) => emit(a.name, l), abort.signal)),
    );
  } finally {
    clearTimeout(timer);
  }
  return 0;
}

/** One human line: who called whom, what, the outcome, how long. */
export function formatEvent(agent: string, e: Record<string, unknown>): string {
  const s = (k: string) => (e[k] === undefined ? "" : String(e[k]));
  const who = `${s("src.namespace")}/${s("src.workload")} -> ${s("dst.service") !== "unknown" ? s("dst.service") : `${s("dst.namespace")}/${s("dst.workload")}`}`;
  const flags = s("flags") ? ` flags=${s("flags")}` : "";
  if (e["type"] === "request") {
    const grpc = s("grpc_status") ? ` grpc=${s("grpc_status")}` : "";
    const route = s("route") ? ` route=${s("route")}` : "";
    return `${s("time")} ${agent} ${s("reporter").padEnd(11)} req  ${who} ${s("method")} ${s("path")} :status=${s("status")}${grpc}${flags}${route} ${s("duration_ms")}ms\n`;
  }
  const err = s("error") ? ` error="${s("error")}"` : "";
  return `${s("time")} ${agent} ${s("reporter").padEnd(11)} conn ${who} ${s("outcome")} sent=${s("bytes_sent")}B recv=${s("bytes_received")}B${flags}${err} ${s("duration_ms")}ms\n`;
}
