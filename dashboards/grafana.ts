// Grafana dashboard JSON (schemaVersion 39, Grafana 10/11) from a compact description: rows of panels
// laid out left to right on the 24-column grid, every query on the `${datasource}` variable so the
// dashboards import into any Grafana with a Prometheus data source. Pure: build.ts writes the files,
// and a unit test checks that the committed JSON is what this produces.

export interface Query {
  readonly expr: string;
  readonly legend?: string;
}

export interface PanelSpec {
  readonly title: string;
  readonly type: "timeseries" | "stat" | "table";
  readonly queries: readonly Query[];
  readonly unit?: string;
  readonly description?: string;
  /** Grid columns (of 24); default: the row shares its width equally. */
  readonly width?: number;
  readonly height?: number;
  /** Stat thresholds, low to high: [value, color]; the first value is ignored (base). */
  readonly thresholds?: readonly (readonly [number | null, string])[];
}

export interface RowSpec {
  readonly title: string;
  readonly panels: readonly PanelSpec[];
}

export interface VariableSpec {
  readonly name: string;
  readonly label: string;
  /** `label_values(<selector>, <label>)` or `query_result(<expr>)`, as Grafana's Prometheus variables take them. */
  readonly query: string;
  /** Extracts the value from each query_result line, e.g. /workload="([^"]+)"/. */
  readonly regex?: string;
  readonly includeAll?: boolean;
}

export interface DashboardSpec {
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly variables: readonly VariableSpec[];
  readonly rows: readonly RowSpec[];
  /** Other dashboards, linked in the header. */
  readonly links: readonly { title: string; uid: string }[];
}

const DATASOURCE = { type: "prometheus", uid: "${datasource}" } as const;

export function dashboard(spec: DashboardSpec): object {
  return {
    uid: spec.uid,
    title: spec.title,
    description: spec.description,
    tags: ["nodemesh"],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: "30s",
    time: { from: "now-1h", to: "now" },
    timezone: "browser",
    links: spec.links.map((l) => ({
      title: l.title,
      type: "link",
      url: `/d/${l.uid}`,
      keepTime: true,
      includeVars: true,
    })),
    templating: { list: [datasourceVariable(), ...spec.variables.map(variable)] },
    annotations: { list: [] },
    panels: layout(spec.rows),
  };
}

function datasourceVariable(): object {
  return {
    type: "datasource",
    name: "datasource",
    label: "Data source",
    query: "prometheus",
    current: {},
    hide: 0,
    refresh: 1,
    regex: "",
  };
}

function variable(v: VariableSpec): object {
  return {
    type: "query",
    name: v.name,
    label: v.label,
    datasource: DATASOURCE,
    definition: v.query,
    query: { query: v.query, refId: `${v.name}-values`, qryType: 1 },
    refresh: 2,
    sort: 1,
    multi: false,
    includeAll: v.includeAll === true,
    ...(v.includeAll ? { allValue: ".*" } : {}),
    current: {},
    hide: 0,
    regex: v.regex ?? "",
  };
}

/** Rows become collapsed-false row panels followed by their panels, placed on the grid. */
function layout(rows: readonly RowSpec[]): object[] {
  const out: object[] = [];
  let id = 1;
  let y = 0;
  for (const row of rows) {
    out.push({
      type: "row",
      id: id++,
      title: row.title,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y },
      panels: [],
    });
    y += 1;
    let x = 0;
    let rowHeight = 0;
    const share = Math.floor(24 / row.panels.length);
    for (const p of row.panels) {
      const w = p.width ?? share;
      const h = p.height ?? (p.type === "stat" ? 4 : 8);
      if (x + w > 24) {
        x = 0;
        y += rowHeight;
        rowHeight = 0;
      }
      out.push(panel(p, id++, { h, w, x, y }));
      x += w;
      rowHeight = Math.max(rowHeight, h);
    }
    y += rowHeight;
  }
  return out;
}

function panel(p: PanelSpec, id: number, gridPos: object): object {
  const table = p.type === "table";
  return {
    type: p.type,
    id,
    title: p.title,
    ...(p.description ? { description: p.description } : {}),
    datasource: DATASOURCE,
    gridPos,
    targets: p.queries.map((q, i) => ({
      datasource: DATASOURCE,
      refId: String.fromCharCode(65 + i),
      expr: q.expr,
      legendFormat: q.legend ?? "__auto",
      range: !table,
      instant: table,
      ...(table ? { format: "table" } : {}),
    })),
    fieldConfig: {
      defaults: {
        unit: p.unit ?? "short",
        ...(p.thresholds
          ? {
              thresholds: {
                mode: "absolute",
                steps: p.thresholds.map(([value, color]) => ({ value, color })),
              },
            }
          : {}),
      },
      overrides: [],
    },
    options: table
      ? { showHeader: true }
      : p.type === "stat"
        ? { reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false }, colorMode: "value" }
        : {
            legend: { displayMode: "list", placement: "bottom", showLegend: true },
            tooltip: { mode: "multi" },
          },
    ...(table ? { transformations: [{ id: "merge", options: {} }] } : {}),
  };
}

/** Every PromQL expression of a dashboard JSON: panel targets and variable queries (for the tests). */
export function expressions(json: unknown): { panel: string; expr: string }[] {
  const d = json as {
    panels?: { title?: string; targets?: { expr?: string }[] }[];
    templating?: { list?: { name?: string; definition?: string }[] };
  };
  const out: { panel: string; expr: string }[] = [];
  for (const p of d.panels ?? [])
    for (const t of p.targets ?? []) if (t.expr) out.push({ panel: p.title ?? "?", expr: t.expr });
  return out;
}
