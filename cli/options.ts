// Options every operator command shares (how to find agents, the output format) and one parser that
// names the bad flag. Each command adds its own options to the same table.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { CliError } from "./errors.ts";

export type Output = "table" | "json";

export const COMMON_OPTIONS = {
  agent: { type: "string", multiple: true },
  lab: { type: "string" },
  controller: { type: "string" },
  output: { type: "string", short: "o" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

export const COMMON_USAGE = `  --agent [node=]<url>   an agent's admin address (repeatable); default: every node of the one lab, or
                         http://127.0.0.1:15000 when no lab exists
  --lab <name>           the lab whose agents to ask (when several exist)
  --controller <url>     the controller's monitoring address (default in a lab: its 127.0.0.1:15014)
  -o, --output table|json`;

export interface Common {
  readonly agents: string[];
  readonly lab?: string;
  readonly controller?: string;
  readonly output: Output;
  readonly help: boolean;
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parses `argv` with the common options plus `extra`; unknown flags and bad values throw CliError. */
export function parseCommand<E extends Options>(
  command: string,
  argv: readonly string[],
  extra: E,
): {
  common: Common;
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
} {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...COMMON_OPTIONS, ...extra },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new CliError(
      "NODEMESH_ERR_CLI_ARGS",
      `${command}: ${(err as Error).message}; see \`nodemesh ${command} --help\``,
    );
  }
  const v = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const output = (v["output"] as string | undefined) ?? "table";
  if (output !== "table" && output !== "json")
    throw new CliError("NODEMESH_ERR_CLI_ARGS", `${command}: -o must be table or json, got "${output}"`);
  const common: Common = {
    agents: (v["agent"] as string[] | undefined) ?? [],
    output,
    help: v["help"] === true,
    ...(typeof v["lab"] === "string" ? { lab: v["lab"] } : {}),
    ...(typeof v["controller"] === "string" ? { controller: v["controller"] } : {}),
  };
  return { common, values: v, positionals: parsed.positionals };
}

/** A duration flag ("10s", "500ms", "2m", or plain seconds) in milliseconds, within [minMs, maxMs]. */
export function parseDuration(flag: string, value: string, minMs: number, maxMs: number): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value);
  const unit = m?.[2] ?? "s";
  const ms = m ? Number(m[1]) * (unit === "ms" ? 1 : unit === "s" ? 1000 : 60_000) : NaN;
  if (!(ms >= minMs && ms <= maxMs))
    throw new CliError(
      "NODEMESH_ERR_CLI_ARGS",
      `${flag} must be a duration between ${minMs / 1000}s and ${maxMs / 1000}s (e.g. 10s), got "${value}"`,
    );
  return ms;
}

/** A positive integer flag within [min, max]. */
export function parseCount(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max)
    throw new CliError(
      "NODEMESH_ERR_CLI_ARGS",
      `${flag} must be a whole number in ${min}..${max}, got "${value}"`,
    );
  return n;
}

/** Prints a command's usage for --help; returns the exit status 0. */
export function printUsage(text: string): number {
  process.stdout.write(text);
  return 0;
}
