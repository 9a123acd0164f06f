// `nodemesh stat`'s arithmetic, pure: two scrapes of every agent's metrics, a window apart, become one row
// per service, workload or route with Linkerd's `viz stat` columns (SUCCESS, RPS, LATENCY_P50/P95/P99,
// TCP_CONN). Counters are differenced per series (a series new in the second scrape started at 0, one that
// went down was reset), histograms are differenced per bucket and summed, and quantiles are interpolated
// inside the bucket as PromQL's histogram_quantile does, so the numbers match the dashboards'.
import type { Sample } from "./prom-text.ts";

export const STAT_KINDS = ["service", "workload", "route"] as const;
export type StatKind = (typeof STAT_KINDS)[number];
export type Reporter = "source" | "destination";

/** Linkerd's view: a service as its clients see it, a workload as it serves, a route where it is matched. */
export const DEFAULT_REPORTER: Readonly<Record<StatKind, Reporter>> = {
  service: "source",
  workload: "destination",
  route: "source",
};

export interface StatRow {
  readonly name: string;
  readonly requests: number;
  readonly rps: number;
  /** undefined when there was no request in the window. */
  readonly successRate: number | undefined;
  readonly p50: number | undefined;
  readonly p95: number | undefined;
  readonly p99: number | undefined;
  /** Open now (opened - closed, in the second scrape); undefined for routes (connections have none). */
  readonly tcpConnections: number | undefined;
  readonly tcpBytesPerSecond: number | undefined;
}

/** One agent's two scrapes. */
export interface Scrapes {
  readonly agent: string;
  readonly before: readonly Sample[];
  readonly after: readonly Sample[];
}

interface Acc {
  requests: number;
  ok: number;
  buckets: Map<number, number>;
  opened: number;
  closed: number;
  bytes: number;
  tcp: boolean;
}

export function groupOf(kind: StatKind, l: Readonly<Record<string, string>>): string | undefined {
  if (kind === "service") return l["destination_service"];
  if (kind === "route") return l["route_name"] === undefined ? undefined : l["route_name"] || "(no route)";
  const ns = l["destination_workload_namespace"];
  const w = l["destination_workload"];
  return w === undefined ? undefined : `${ns ?? "unknown"}/${w}`;
}

/** Whether `name` selects the row (a service by "name" or "name.namespace", a workload by "name" or "ns/name"). */
export function selects(kind: StatKind, row: string, name: string | undefined): boolean {
  if (name === undefined) return true;
  if (row === name) return true;
  if (kind === "service") return row.startsWith(`${name}.`);
  if (kind === "workload") return row.endsWith(`/${name}`);
  return false;
}

/** A request counts as successful as Linkerd classifies it: a response, not 5xx, gRPC status OK or none. */
export function isSuccess(l: Readonly<Record<string, string>>): boolean {
  const code = Number(l["response_code"] ?? "0");
  const grpc = l["grpc_response_status"] ?? "";
  return code !== 0 && code < 500 && (grpc === "" || grpc === "0");
}

export function computeStats(
  kind: StatKind,
  reporter: Reporter,
  scrapes: readonly Scrapes[],
  windowSeconds: number,
  name?: string,
): StatRow[] {
  const groups = new Map<string, Acc>();
  const acc = (g: string): Acc => {
    let a = groups.get(g);
    if (!a)
      groups.set(
        g,
        (a = { requests: 0, ok: 0, buckets: new Map(), opened: 0, closed: 0, bytes: 0, tcp: false }),
      );
    return a;
  };
  for (const s of scrapes) {
    const before = new Map(s.before.map((x) => [seriesKey(x), x.value]));
    for (const x of s.after) {
      if (x.labels["reporter"] !== reporter) continue;
      const g = groupOf(kind, x.labels);
      if (g === undefined || !selects(kind, g, name)) continue;
      const prev = before.get(seriesKey(x));
      const delta = prev === undefined || x.value < prev ? x.value : x.value - prev;
      addSample(acc(g), x, delta);
    }
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([g, a]) => row(kind, g, a, windowSeconds));
}

function addSample(a: Acc, x: Sample, delta: number): void {
  switch (x.name) {
    case "nodemesh_requests_total":
      a.requests += delta;
      if (isSuccess(x.labels)) a.ok += delta;
      return;
    case "nodemesh_request_duration_seconds_bucket": {
      const le = x.labels["le"] === "+Inf" ? Infinity : Number(x.labels["le"]);
      a.buckets.set(le, (a.buckets.get(le) ?? 0) + delta);
      return;
    }
    case "nodemesh_tcp_connections_opened_total":
      a.tcp = true;
      a.opened += x.value;
      return;
    case "nodemesh_tcp_connections_closed_total":
      a.tcp = true;
      a.closed += x.value;
      return;
    case "nodemesh_tcp_sent_bytes_total":
    case "nodemesh_tcp_received_bytes_total":
      a.tcp = true;
      a.bytes += delta;
  }
}

function row(kind: StatKind, name: string, a: Acc, windowSeconds: number): StatRow {
  const sorted = [...a.buckets.entries()].sort(([x], [y]) => x - y);
  const tcp = kind !== "route" && a.tcp;
  return {
    name,
    requests: a.requests,
    rps: a.requests / windowSeconds,
    successRate: a.requests > 0 ? a.ok / a.requests : undefined,
    p50: quantile(0.5, sorted),
    p95: quantile(0.95, sorted),
    p99: quantile(0.99, sorted),
    tcpConnections: tcp ? Math.max(0, a.opened - a.closed) : undefined,
    tcpBytesPerSecond: tcp ? a.bytes / windowSeconds : undefined,
  };
}

/**
 * histogram_quantile over cumulative buckets (upper bound, count) sorted by bound: linear inside the
 * bucket the rank falls in, the lower bound of the first bucket being 0; a rank in +Inf answers the
 * highest finite bound. undefined when there were no observations.
 */
export function quantile(q: number, buckets: readonly (readonly [number, number])[]): number | undefined {
  const total = buckets[buckets.length - 1]?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const [bound, count] of buckets) {
    if (count >= rank) {
      if (bound === Infinity) return prevBound;
      if (count === prevCount) return bound;
      return prevBound + ((bound - prevBound) * (rank - prevCount)) / (count - prevCount);
    }
    prevBound = bound;
    prevCount = count;
  }
  return prevBound;
}

function seriesKey(x: Sample): string {
  const labels = Object.keys(x.labels)
    .sort()
    .map((k) => `${k}=${x.labels[k]}`)
    .join(",");
  return `${x.name}{${labels}}`;
}
