// PromQL and panel builders the dashboards share (definitions.ts): request rate, Istio's success ratio,
// histogram quantiles, TCP rates and open connections, and the stock rows (golden signals, per route).
import type { PanelSpec, Query } from "./grafana.ts";

export const RI = "[$__rate_interval]";
export const FAIL_CODES = `response_code=~"5..|0"`;
export const OK_CODES = `response_code!~"5..|0"`;

/** `nodemesh_requests_total` rate under `sel`, summed `by`. */
export const reqRate = (sel: string, by = "") =>
  `sum${by ? ` by (${by})` : ""} (rate(nodemesh_requests_total{${sel}}${RI}))`;
export const success = (sel: string, by = "") => `${reqRate(`${sel},${OK_CODES}`, by)} / ${reqRate(sel, by)}`;
export const quantile = (q: number, sel: string, by = "") =>
  `histogram_quantile(${q}, sum by (${by ? `${by}, ` : ""}le) (rate(nodemesh_request_duration_seconds_bucket{${sel}}${RI})))`;
export const tcp = (metric: string, sel: string, by: string) =>
  `sum by (${by}) (rate(nodemesh_tcp_${metric}_total{${sel}}${RI}))`;
export const openConns = (sel: string, by: string) =>
  `sum by (${by}) (nodemesh_tcp_connections_opened_total{${sel}}) - sum by (${by}) (nodemesh_tcp_connections_closed_total{${sel}})`;

export const q = (expr: string, legend?: string): Query => (legend ? { expr, legend } : { expr });
export const ts = (title: string, unit: string, ...queries: Query[]): PanelSpec => ({
  title,
  type: "timeseries",
  unit,
  queries,
});
export const stat = (
  title: string,
  unit: string,
  expr: string,
  thresholds?: PanelSpec["thresholds"],
): PanelSpec => ({
  title,
  type: "stat",
  unit,
  queries: [q(expr)],
  ...(thresholds ? { thresholds } : {}),
});
export const SUCCESS_COLORS: PanelSpec["thresholds"] = [
  [null, "red"],
  [0.95, "orange"],
  [0.99, "green"],
];

/** Rate, success, p50/p95/p99 as stats, for one selector. */
export function goldenStats(sel: string): PanelSpec[] {
  return [
    stat("Request rate", "reqps", reqRate(sel)),
    stat("Success rate", "percentunit", success(sel), SUCCESS_COLORS),
    stat("Latency p50", "s", quantile(0.5, sel)),
    stat("Latency p95", "s", quantile(0.95, sel)),
    stat("Latency p99", "s", quantile(0.99, sel)),
  ];
}

export function latencyPanel(title: string, sel: string): PanelSpec {
  return ts(
    title,
    "s",
    q(quantile(0.5, sel), "p50"),
    q(quantile(0.95, sel), "p95"),
    q(quantile(0.99, sel), "p99"),
  );
}

/** Per-route rate, success and p99 (route_name is "namespace/name" of the HTTPRoute or GRPCRoute). */
export function routePanels(sel: string): PanelSpec[] {
  const routed = `${sel},route_name!~"|unknown"`;
  return [
    ts("Requests by route", "reqps", q(reqRate(routed, "route_name"), "{{route_name}}")),
    ts("Success rate by route", "percentunit", q(success(routed, "route_name"), "{{route_name}}")),
    ts("p99 latency by route", "s", q(quantile(0.99, routed, "route_name"), "{{route_name}}")),
  ];
}
