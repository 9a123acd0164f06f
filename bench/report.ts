// Turns the data-plane results into tables, one for L4 and one for L7: one row per figure, one
// column per path, then every figure as a ratio against the baselines of the same run (direct for
// latency and throughput, HAProxy in the same mode for what only proxies have: CPU, RSS, throughput
// per core), and the issues' targets. Pure: no I/O, so the layout can be checked without a lab.
import type { ConnMode } from "./loadgen-core.ts";
import { emptyResult, type PathResult, type Round } from "./measure.ts";

export interface Row {
  label: string;
  /** value per path name; NaN or missing = not applicable */
  values: Record<string, number>;
}

/** One table: a baseline (direct), the mesh path and the peer proxy path of the same run. */
export interface TableSpec {
  title: string;
  baseline: string;
  mesh: string;
  peer: string;
  conns: readonly ConnMode[];
  /** requests per CPU figure: 10k for the L4 table (its historic rows), 1k for L7 (the unit) */
  cpuPer: number;
}

export const L4_TABLE: TableSpec = {
  title: "L4: opaque TCP (port declared tcp; HAProxy in TCP mode)",
  baseline: "direct",
  mesh: "mesh",
  peer: "haproxy",
  conns: ["keepalive", "new"],
  cpuPer: 10_000,
};
export const L7_TABLE: TableSpec = {
  title: "L7: HTTP/1.1 keep-alive (appProtocol http + one HTTPRoute; HAProxy in HTTP mode, h2 between hops)",
  baseline: "direct",
  mesh: "mesh-http",
  peer: "haproxy-http",
  conns: ["keepalive"],
  cpuPer: 1_000,
};

/**
 * The L7 floor: the mesh beside two bare Node relays (bench/node-relay.ts: node:http -> node:http2 over
 * mTLS -> node:http, no mesh logic). mesh-http/node-relay is what the mesh's own code costs; node-relay
 * against haproxy-http (L7 table of the same run) is what Node's HTTP stacks cost.
 */
export const L7_FLOOR_TABLE: TableSpec = {
  title:
    "L7 floor: the mesh beside bare Node relays (node:http -> node:http2 + mTLS -> node:http, no mesh logic)",
  baseline: "direct",
  mesh: "mesh-http",
  peer: "node-relay",
  conns: ["keepalive"],
  cpuPer: 1_000,
};

/** The L4 floor: the mesh beside the same bare relays carrying TCP in HTTP/2 CONNECT streams. */
export const L4_FLOOR_TABLE: TableSpec = {
  title:
    "L4 floor: the mesh beside bare Node relays (node:net -> HTTP/2 CONNECT + mTLS -> node:net, no mesh logic)",
  baseline: "direct",
  mesh: "mesh",
  peer: "node-relay-tcp",
  conns: ["keepalive", "new"],
  cpuPer: 10_000,
};

/** Issue 8's cost of the resilience layers: the same route with every layer configured, none firing. */
export const LAYERS_TABLE: TableSpec = {
  title:
    "L7 layers: the route of mesh-http plus timeout, retries, circuit breaker and a rate limit, none firing (mesh-http-layers), beside the bare route (mesh-http)",
  baseline: "direct",
  mesh: "mesh-http-layers",
  peer: "mesh-http",
  conns: ["keepalive"],
  cpuPer: 1_000,
};

/** The ingress bench (bench/ingress.ts): HTTPS into the mesh through the Gateway, beside HAProxy. */
export const INGRESS_TABLE: TableSpec = {
  title:
    "Ingress: HTTPS keep-alive from outside (mesh-gateway = gateway agent n1 + backend agent n2; haproxy-ingress = one HAProxy, TLS terminated, plain to the pod; direct = plain HTTP to the pod)",
  baseline: "direct",
  mesh: "mesh-gateway",
  peer: "haproxy-ingress",
  conns: ["keepalive"],
  cpuPer: 1_000,
};

const CONN_LABEL = { keepalive: "keep-alive", new: "new conn" } as const;
const pathsOf = (t: TableSpec) => [t.baseline, t.mesh, t.peer];
const ratiosOf = (t: TableSpec): [string, string][] => [
  [t.mesh, t.baseline],
  [t.peer, t.baseline],
  [t.mesh, t.peer],
];
const per = (n: number) => (n >= 10_000 ? `${n / 1000}k` : n === 1000 ? "1k" : String(n));

const get = (results: readonly PathResult[], name: string) =>
  results.find((r) => r.name === name && r.available);

/** The figures of one table of the data-plane run as rows (values by path name). */
export function dataplaneRows(results: readonly PathResult[], spec: TableSpec = L4_TABLE): Row[] {
  const rows: Row[] = [];
  const paths = pathsOf(spec);
  const row = (label: string, pick: (r: PathResult) => number | undefined) => {
    const values: Record<string, number> = {};
    for (const p of paths) values[p] = pick(get(results, p) ?? emptyResult(p)) ?? Number.NaN;
    rows.push({ label, values });
  };
  const any = paths.map((p) => get(results, p)).find((r) => r !== undefined);
  const base = get(results, spec.baseline);
  for (const f of any?.fixed.filter((x) => spec.conns.includes(x.conn)) ?? []) {
    const pick = (r: PathResult) => r.fixed.find((x) => x.conn === f.conn && x.rate === f.rate);
    const tag = `${CONN_LABEL[f.conn]} ${f.rate} rps`;
    row(`${tag}: p50 ms`, (r) => pick(r)?.p50);
    const b = base && pick(base);
    row(`${tag}: p50 added over ${spec.baseline} ms`, (r) =>
      r.name === spec.baseline || !b ? undefined : (pick(r)?.p50 ?? Number.NaN) - b.p50,
    );
    row(`${tag}: p99 ms`, (r) => pick(r)?.p99);
    row(`${tag}: achieved rps`, (r) => pick(r)?.achievedRps);
    row(`${tag}: errors`, (r) => pick(r)?.errors);
    row(`${tag}: proxy CPU s / ${per(spec.cpuPer)} req`, (r) => {
      const v = pick(r)?.cpuPer10k;
      return v === undefined ? undefined : (v * spec.cpuPer) / 10_000;
    });
  }
  for (const m of any?.max.filter((x) => spec.conns.includes(x.conn)) ?? []) {
    const pick = (r: PathResult) => r.max.find((x) => x.conn === m.conn);
    row(`max ${CONN_LABEL[m.conn]}: rps`, (r) => pick(r)?.rps);
    row(`max ${CONN_LABEL[m.conn]}: rps per proxy core`, (r) => pick(r)?.perCoreRps);
    row(`max ${CONN_LABEL[m.conn]}: errors`, (r) => pick(r)?.errors);
  }
  const maxOf = (xs: number[]) => (xs.length ? Math.max(...xs) : Number.NaN);
  // Noise indicator: how late the generator itself sent (a busy machine shows here first).
  row("generator send lag p99, worst run ms", (r) => maxOf(r.fixed.map((f) => f.sendLagP99)));
  row("RSS idle, largest proxy MiB", (r) => maxOf(r.rssIdleMiB));
  row("RSS idle after load, largest proxy MiB", (r) => maxOf(r.rssAfterLoadMiB));
  row("RSS with held conns, largest proxy MiB", (r) => maxOf(r.rssHeldMiB));
  row("connections held", (r) => (r.rssHeldMiB.length ? r.held : Number.NaN));
  return rows;
}

export function fmt(v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return "-";
  if (Number.isInteger(v)) return String(v);
  if (Math.abs(v) >= 100) return String(Math.round(v));
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

/** a / b as "1.23x"; "-" when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || Number.isNaN(a) || Number.isNaN(b) || b === 0) return "-";
  return `${(a / b).toFixed(2)}x`;
}

/** A plain text table with the first column left-aligned and the others right-aligned. */
export function table(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

/** One table per spec that has a path in `results` (the L4 table always), with its notes. */
export function renderDataplane(results: readonly PathResult[]): string {
  return tablesFor(results)
    .map((t) => renderTable(results, t))
    .join("\n\n");
}

/** The tables whose mesh or peer path is in `results`; the L4 table when neither is (direct alone). */
export function tablesFor(results: readonly PathResult[]): TableSpec[] {
  const has = (t: TableSpec) => results.some((r) => r.name === t.mesh || r.name === t.peer);
  const l7 = has(L7_TABLE);
  const layers = results.some((r) => r.name === LAYERS_TABLE.mesh);
  const floor = results.some((r) => r.name === L7_FLOOR_TABLE.peer);
  const floor4 = results.some((r) => r.name === L4_FLOOR_TABLE.peer);
  return [
    ...(has(L4_TABLE) || !l7 ? [L4_TABLE] : []),
    ...(floor4 ? [L4_FLOOR_TABLE] : []),
    ...(l7 ? [L7_TABLE] : []),
    ...(floor ? [L7_FLOOR_TABLE] : []),
    ...(layers ? [LAYERS_TABLE] : []),
  ];
}

/** The ingress table; its "proxy" columns count every agent on the mesh path and the one HAProxy. */
export function renderIngress(results: readonly PathResult[]): string {
  return renderTable(results, INGRESS_TABLE);
}

function renderTable(results: readonly PathResult[], spec: TableSpec): string {
  const paths = pathsOf(spec);
  const ratios = ratiosOf(spec);
  const header = ["figure", ...paths, ...ratios.map(([a, b]) => `${a}/${b}`)];
  const body = dataplaneRows(results, spec).map((r) => [
    r.label,
    ...paths.map((p) => fmt(r.values[p])),
    ...ratios.map(([a, b]) => ratio(r.values[a], r.values[b])),
  ]);
  const notes = results
    .filter((r) => !r.available && paths.includes(r.name))
    .map((r) => `${r.name}: not available (${r.reason ?? "unknown"})`);
  return [spec.title, table(header, body), ...notes].join("\n");
}

export interface TargetCheck {
  target: string;
  value: string;
  ok: boolean | undefined;
}

const ka1k = (r: PathResult | undefined) => r?.fixed.find((f) => f.conn === "keepalive" && f.rate === 1000);
const perCore = (r: PathResult | undefined) => r?.max.find((m) => m.conn === "keepalive")?.perCoreRps;
const missing = (v: number | undefined): v is undefined => v === undefined || Number.isNaN(v);

function check(target: string, v: number | undefined, ok: (v: number) => boolean, unit: string): TargetCheck {
  return missing(v)
    ? { target, value: "not measured", ok: undefined }
    : { target, value: `${fmt(v)}${unit}`, ok: ok(v) };
}

/** The figures every target is about, for one table's paths. */
function keyFigures(results: readonly PathResult[], spec: TableSpec) {
  const d = ka1k(get(results, spec.baseline));
  const m = ka1k(get(results, spec.mesh));
  const pc = perCore(get(results, spec.mesh));
  const hc = perCore(get(results, spec.peer));
  return {
    addedP50: m && d ? m.p50 - d.p50 : undefined,
    addedP99: m && d ? m.p99 - d.p99 : undefined,
    perCoreVsPeer: pc && hc ? pc / hc : undefined,
    cpuPer1k: m ? m.cpuPer10k / 10 : undefined,
  };
}

/**
 * The L4 mesh's targets (issue 13, which tightened issue 4's), each with the measured value; ok undefined =
 * not measured. Per-core throughput is against HAProxy in TCP mode; a new connection's CPU is the fixed
 * 500 rps run with one request per connection, so CPU per request is CPU per connection there.
 */
export function checkTargets(results: readonly PathResult[]): TargetCheck[] {
  const k = keyFigures(results, L4_TABLE);
  const mesh = get(results, "mesh");
  const direct = get(results, L4_TABLE.baseline);
  const new500 = (r: PathResult | undefined) => r?.fixed.find((f) => f.conn === "new" && f.rate === 500);
  const m500 = new500(mesh);
  const d500 = new500(direct);
  const maxNew = mesh?.max.find((x) => x.conn === "new");
  const largest = (xs: readonly number[] | undefined) => (xs?.length ? Math.max(...xs) : undefined);
  return [
    check(
      "both agents <= 0.25 CPU s per 1k requests (1k rps keep-alive)",
      k.cpuPer1k,
      (v) => v <= 0.25,
      " s",
    ),
    check("mesh adds <= 0.25 ms p50 at 1k rps (keep-alive)", k.addedP50, (v) => v <= 0.25, " ms"),
    check("mesh adds <= 0.5 ms p99 at 1k rps (keep-alive)", k.addedP99, (v) => v <= 0.5, " ms"),
    check("throughput per core >= 1.0x HAProxy TCP mode", k.perCoreVsPeer, (v) => v >= 1.0, "x"),
    check(
      "new connection: both agents <= 0.3 ms CPU (500 rps)",
      m500 ? m500.cpuPer10k / 10 : undefined,
      (v) => v <= 0.3,
      " ms",
    ),
    check("new connections >= 1,500 per second (max)", maxNew?.rps, (v) => v >= 1500, "/s"),
    check(
      "new connection: mesh adds <= 1 ms p50 at 500 rps",
      m500 && d500 ? m500.p50 - d500.p50 : undefined,
      (v) => v <= 1,
      " ms",
    ),
    check("RSS idle <= 64 MiB per agent", largest(mesh?.rssIdleMiB), (v) => v <= 64, " MiB"),
    check("RSS after the load <= 96 MiB per agent", largest(mesh?.rssAfterLoadMiB), (v) => v <= 96, " MiB"),
  ];
}

/** Issue 7's targets for the L7 mesh (against HAProxy in HTTP mode); ok undefined = not measured. */
export function checkL7Targets(results: readonly PathResult[]): TargetCheck[] {
  const k = keyFigures(results, L7_TABLE);
  return [
    check(
      "L7 throughput per core >= 0.5x HAProxy HTTP mode (aim 1.0x)",
      k.perCoreVsPeer,
      (v) => v >= 0.5,
      "x",
    ),
    check("L7 mesh adds <= 0.5 ms p50 at 1k rps over direct", k.addedP50, (v) => v <= 0.5, " ms"),
    check("L7: both agents <= 0.4 CPU s per 1k requests (1k rps)", k.cpuPer1k, (v) => v <= 0.4, " s"),
  ];
}

/**
 * Issue 8's bound: the layers cost at most 10 % of throughput per core and of p50. From the alternating
 * rounds (bench/dataplane.ts pairedRounds) when they ran: the median of the per-round ratios, p50 at
 * their fixed rate; otherwise from the single measurement of each path (throughput, p50 at 1k rps).
 */
export function checkLayersTargets(results: readonly PathResult[]): TargetCheck[] {
  const layersR = get(results, LAYERS_TABLE.mesh)?.rounds ?? [];
  const bareR = get(results, LAYERS_TABLE.peer)?.rounds ?? [];
  const n = Math.min(layersR.length, bareR.length);
  if (n > 0) {
    const paired = (f: (l: Round, b: Round) => number) =>
      Array.from({ length: n }, (_, i) => f(layersR[i]!, bareR[i]!));
    const perCoreRatios = paired((l, b) => l.max.perCoreRps / b.max.perCoreRps);
    const p50Ratios = paired((l, b) => l.fixed.p50 / b.fixed.p50);
    const rate = per(bareR[0]!.fixed.rate);
    return [
      medianCheck(`L7 layers: throughput per core >= 0.9x the bare route`, perCoreRatios, (v) => v >= 0.9),
      medianCheck(`L7 layers: p50 at ${rate} rps <= 1.1x the bare route`, p50Ratios, (v) => v <= 1.1),
    ];
  }
  const k = keyFigures(results, LAYERS_TABLE);
  const layers = ka1k(get(results, LAYERS_TABLE.mesh));
  const bare = ka1k(get(results, LAYERS_TABLE.peer));
  return [
    check("L7 layers: throughput per core >= 0.9x the bare route", k.perCoreVsPeer, (v) => v >= 0.9, "x"),
    check(
      "L7 layers: p50 at 1k rps <= 1.1x the bare route",
      layers && bare ? layers.p50 / bare.p50 : undefined,
      (v) => v <= 1.1,
      "x",
    ),
  ];
}

/** The median of paired ratios against `ok`, the rounds' own ratios shown beside it. */
function medianCheck(target: string, ratios: readonly number[], ok: (v: number) => boolean): TargetCheck {
  const sorted = ratios.filter((r) => !Number.isNaN(r)).sort((a, b) => a - b);
  if (sorted.length === 0) return { target, value: "not measured", ok: undefined };
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const each = ratios.map((r) => fmt(r)).join(", ");
  return { target, value: `${fmt(median)}x (median of ${each})`, ok: ok(median) };
}

/** The targets of the tables that `tablesFor()` renders. */
export function checkAllTargets(results: readonly PathResult[]): TargetCheck[] {
  // The floor tables are for reading: the targets are the mesh's against HAProxy, checked once each.
  return tablesFor(results).flatMap((t) =>
    t === L7_TABLE
      ? checkL7Targets(results)
      : t === LAYERS_TABLE
        ? checkLayersTargets(results)
        : t === L4_TABLE
          ? checkTargets(results)
          : [],
  );
}

export function renderTargets(checks: readonly TargetCheck[]): string {
  const mark = (ok: boolean | undefined) => (ok === undefined ? "n/a" : ok ? "pass" : "FAIL");
  return table(
    ["target", "measured", "result"],
    checks.map((c) => [c.target, c.value, mark(c.ok)]),
  );
}
