// `nodemesh stat [service|workload|route] [name]`: golden signals per service, workload or route over a
// window, from the agents' own /metrics (scraped twice, `--window` apart, and differenced): no Prometheus
// needed. Columns as Linkerd's `viz stat`.
import { setTimeout as sleep } from "node:timers/promises";
import { CliError } from "./errors.ts";
import { COMMON_USAGE, parseCommand, parseDuration, printUsage } from "./options.ts";
import { parsePromText, type Sample } from "./prom-text.ts";
import {
  computeStats,
  DEFAULT_REPORTER,
  STAT_KINDS,
  type Reporter,
  type StatKind,
  type StatRow,
} from "./stat-model.ts";
import { latency, percent, rate, table } from "./table.ts";
import { discoverTargets, get, type Endpoint } from "./targets.ts";

export const STAT_USAGE = `usage: nodemesh stat [service|workload|route] [name] [--window 10s] [--reporter source|destination]
  golden signals per row: SUCCESS RPS LATENCY_P50 LATENCY_P95 LATENCY_P99 TCP_CONN
  --window <d>           time between the two scrapes of every agent (default 10s, 1s..10m)
  --reporter <r>         whose view: source (client side; default for service and route) or
                         destination (server side; default for workload)
${COMMON_USAGE}
`;

export async function statMain(argv: string[]): Promise<number> {
  const { common, values, positionals } = parseCommand("stat", argv, {
    window: { type: "string" },
    reporter: { type: "string" },
  });
  if (common.help) return printUsage(STAT_USAGE);
  const [kindArg = "service", name, ...extra] = positionals;
  if (!(STAT_KINDS as readonly string[]).includes(kindArg))
    throw new CliError(
      "NODEMESH_ERR_CLI_ARGS",
      `stat: the kind must be one of ${STAT_KINDS.join(", ")}, got "${kindArg}"`,
    );
  if (extra.length > 0)
    throw new CliError("NODEMESH_ERR_CLI_ARGS", `stat: unexpected arguments ${extra.join(" ")}`);
  const kind = kindArg as StatKind;
  const reporter = parseReporter(values["reporter"], kind);
  const windowMs = parseDuration(
    "--window",
    (values["window"] as string | undefined) ?? "10s",
    1000,
    600_000,
  );
  const targets = await discoverTargets(common);
  const before = await scrapeAll(targets.agents);
  const t0 = performance.now();
  await sleep(windowMs);
  const after = await scrapeAll(targets.agents);
  const seconds = (performance.now() - t0) / 1000;
  const scrapes = targets.agents.map((a, i) => ({
    agent: a.name,
    before: before[i] ?? [],
    after: after[i] ?? [],
  }));
  const rows = computeStats(kind, reporter, scrapes, seconds, name);
  process.stdout.write(
    common.output === "json"
      ? JSON.stringify({ kind, reporter, windowSeconds: seconds, rows }, null, 2) + "\n"
      : format(kind, rows),
  );
  return 0;
}

function parseReporter(raw: unknown, kind: StatKind): Reporter {
  if (raw === undefined) return DEFAULT_REPORTER[kind];
  if (raw === "source" || raw === "destination") return raw;
  throw new CliError(
    "NODEMESH_ERR_CLI_ARGS",
    `stat: --reporter must be source or destination, got "${String(raw)}"`,
  );
}

async function scrapeAll(agents: readonly Endpoint[]): Promise<Sample[][]> {
  return Promise.all(
    agents.map(async (a) => {
      const r = await get(a, "/metrics");
      if (r.status !== 200)
        throw new CliError("NODEMESH_ERR_CLI_AGENT", `${a.name}: /metrics answered ${r.status}`);
      return parsePromText(r.body, `${a.name} /metrics`);
    }),
  );
}

export function format(kind: StatKind, rows: readonly StatRow[]): string {
  if (rows.length === 0) return `no ${kind} had traffic in the window\n`;
  const headers = [
    kind.toUpperCase(),
    "SUCCESS",
    "RPS",
    "LATENCY_P50",
    "LATENCY_P95",
    "LATENCY_P99",
    "TCP_CONN",
  ];
  const cells = rows.map((r) => [
    r.name,
    percent(r.successRate),
    rate(r.rps),
    latency(r.p50),
    latency(r.p95),
    latency(r.p99),
    r.tcpConnections === undefined ? "-" : String(r.tcpConnections),
  ]);
  return table(headers, cells);
}
