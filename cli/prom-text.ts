// A parser for the Prometheus text exposition format (0.0.4), enough for the agent's own /metrics page:
// samples with their labels, label values unescaped (\\, \", \n), `# HELP`/`# TYPE` skipped, NaN and ±Inf
// values, optional timestamps ignored. A line it cannot read is an error naming the line, never a guess.
import { CliError } from "./errors.ts";

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export function parsePromText(text: string, source = "metrics"): Sample[] {
  const out: Sample[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === "" || line.startsWith("#")) continue;
    const s = parseLine(line);
    if (!s)
      throw new CliError(
        "NODEMESH_ERR_CLI_METRICS",
        `${source} line ${i + 1} is not a Prometheus sample: ${line.slice(0, 120)}`,
      );
    out.push(s);
  }
  return out;
}

function parseLine(line: string): Sample | undefined {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
  if (!m) return undefined;
  const name = m[1] as string;
  let pos = name.length;
  const labels: Record<string, string> = {};
  if (line[pos] === "{") {
    const end = parseLabels(line, pos + 1, labels);
    if (end < 0) return undefined;
    pos = end;
  }
  const rest = line.slice(pos).trim().split(/\s+/);
  const value = parseValue(rest[0] ?? "");
  if (value === undefined) return undefined;
  return { name, labels, value };
}

/** Reads `a="x",b="y"}` from `pos`; returns the index after "}", or -1. */
function parseLabels(line: string, pos: number, into: Record<string, string>): number {
  while (pos < line.length) {
    if (line[pos] === "}") return pos + 1;
    const m = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"/.exec(line.slice(pos));
    if (!m) return -1;
    pos += m[0].length;
    let value = "";
    for (;;) {
      const c = line[pos];
      if (c === undefined) return -1;
      pos++;
      if (c === '"') break;
      if (c === "\\") {
        const e = line[pos++];
        value += e === "n" ? "\n" : (e ?? "");
      } else value += c;
    }
    into[m[1] as string] = value;
    while (line[pos] === " ") pos++;
    if (line[pos] === ",") pos++;
  }
  return -1;
}

function parseValue(raw: string): number | undefined {
  // Prometheus parses values with Go's ParseFloat: NaN and Inf in any case (prom-client prints "Nan").
  const word = raw.toLowerCase();
  if (word === "nan") return NaN;
  if (word === "+inf" || word === "inf") return Infinity;
  if (word === "-inf") return -Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) return undefined;
  return Number(raw);
}
