// Human output: left-aligned columns sized to their widest cell, two spaces apart (kubectl's style).
// Cells are strings already formatted by the caller; `-` stands for "no data".

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

/** 0.98765 → "98.77%"; undefined → "-". */
export function percent(v: number | undefined): string {
  return v === undefined || Number.isNaN(v) ? "-" : `${(v * 100).toFixed(2)}%`;
}

/** Seconds → "12ms" / "1.25s"; undefined → "-". */
export function latency(seconds: number | undefined): string {
  if (seconds === undefined || Number.isNaN(seconds)) return "-";
  const ms = seconds * 1000;
  if (ms < 1) return `${ms.toFixed(2)}ms`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  return `${seconds.toFixed(2)}s`;
}

export function rate(v: number | undefined): string {
  return v === undefined || Number.isNaN(v) ? "-" : v.toFixed(1);
}
