// Turns the data-plane results into tables: one row per figure, one column per path, then every
// figure as a ratio against the baselines of the same run (direct for latency and throughput,
// HAProxy for what only proxies have: CPU, RSS, throughput per core), and the targets.
// Pure: no I/O, so the layout can be checked without a lab.
import { emptyResult, type PathResult } from "./measure.ts";

export interface Row {
  label: string;
  /** value per path name; NaN or missing = not applicable */
  values: Record<string, number>;
}

const PATHS = ["direct", "mesh", "haproxy"] as const;
const RATIOS: [string, string][] = [
  ["mesh", "direct"],
  ["haproxy", "direct"],
  ["mesh", "haproxy"],
];
const CONN_LABEL = { keepalive: "keep-alive", new: "new conn" } as const;

const get = (results: readonly PathResult[], name: string) =>
  results.find((r) => r.name === name && r.available);

/** The figures of the data-plane run as rows (values by path name). */
export function dataplaneRows(results: readonly PathResult[]): Row[] {
  const rows: Row[] = [];
  const row = (label: string, pick: (r: PathResult) => number | undefined) => {
    const values: Record<string, number> = {};
    for (const p of PATHS) values[p] = pick(get(results, p) ?? emptyResult(p)) ?? Number.NaN;
    rows.push({ label, values });
  };
  const any = results.find((r) => r.available);
  for (const f of any?.fixed ?? []) {
    const pick = (r: PathResult) => r.fixed.find((x) => x.conn === f.conn && x.rate === f.rate);
    const tag = `${CONN_LABEL[f.conn]} ${f.rate} rps`;
    row(`${tag}: p50 ms`, (r) => pick(r)?.p50);
    row(`${tag}: p99 ms`, (r) => pick(r)?.p99);
    row(`${tag}: achieved rps`, (r) => pick(r)?.achievedRps);
    row(`${tag}: errors`, (r) => pick(r)?.errors);
    row(`${tag}: proxy CPU s / 10k req`, (r) => pick(r)?.cpuPer10k);
  }
  for (const m of any?.max ?? []) {
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

export function renderDataplane(results: readonly PathResult[]): string {
  const rows = dataplaneRows(results);
  const header = ["figure", ...PATHS, ...RATIOS.map(([a, b]) => `${a}/${b}`)];
  const body = rows.map((r) => [
    r.label,
    ...PATHS.map((p) => fmt(r.values[p])),
    ...RATIOS.map(([a, b]) => ratio(r.values[a], r.values[b])),
  ]);
  const notes = results
    .filter((r) => !r.available)
    .map((r) => `${r.name}: not available (${r.reason ?? "unknown"})`);
  return [table(header, body), ...notes].join("\n");
}

export interface TargetCheck {
  target: string;
  value: string;
  ok: boolean | undefined;
}

/** The targets for the mesh, each with the measured value; ok undefined = not measured. */
export function checkTargets(results: readonly PathResult[]): TargetCheck[] {
  const direct = get(results, "direct");
  const mesh = get(results, "mesh");
  const haproxy = get(results, "haproxy");
  const ka1k = (r: PathResult | undefined) => r?.fixed.find((f) => f.conn === "keepalive" && f.rate === 1000);
  const perCore = (r: PathResult | undefined) => r?.max.find((m) => m.conn === "keepalive")?.perCoreRps;
  const check = (target: string, v: number | undefined, ok: (v: number) => boolean, unit: string) => ({
    target,
    value: v === undefined || Number.isNaN(v) ? "not measured" : `${fmt(v)}${unit}`,
    ok: v === undefined || Number.isNaN(v) ? undefined : ok(v),
  });
  const d = ka1k(direct);
  const m = ka1k(mesh);
  const pc = perCore(mesh);
  const hc = perCore(haproxy);
  return [
    check(
      "mesh adds <= 0.25 ms p50 at 1k rps (keep-alive)",
      m && d ? m.p50 - d.p50 : undefined,
      (v) => v <= 0.25,
      " ms",
    ),
    check(
      "mesh adds <= 0.5 ms p99 at 1k rps (keep-alive)",
      m && d ? m.p99 - d.p99 : undefined,
      (v) => v <= 0.5,
      " ms",
    ),
    check(
      "throughput per core >= 0.7x HAProxy (aim 1.0x)",
      pc && hc ? pc / hc : undefined,
      (v) => v >= 0.7,
      "x",
    ),
    check(
      "both agents <= 0.15 CPU s per 1k requests (1k rps keep-alive)",
      m ? m.cpuPer10k / 10 : undefined,
      (v) => v <= 0.15,
      " s",
    ),
    check(
      "RSS idle <= 64 MiB per agent",
      mesh?.rssIdleMiB.length ? Math.max(...mesh.rssIdleMiB) : undefined,
      (v) => v <= 64,
      " MiB",
    ),
  ];
}

export function renderTargets(checks: readonly TargetCheck[]): string {
  const mark = (ok: boolean | undefined) => (ok === undefined ? "n/a" : ok ? "pass" : "FAIL");
  return table(
    ["target", "measured", "result"],
    checks.map((c) => [c.target, c.value, mark(c.ok)]),
  );
}
