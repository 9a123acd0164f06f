// Argument helpers shared by the sample clients (grpc-client, ws-client, banner-client): a bad
// argument ends the process with exit code 2 and a message naming it, before any connection.

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** "host:port" or "[v6]:port" → its parts; the port must be 1..65535. */
export function parseTarget(raw: string | undefined): { host: string; port: number } {
  if (raw === undefined) throw new UsageError("missing <host:port>");
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(raw);
  const port = match ? Number(match[3]) : NaN;
  if (match === null || !(port >= 1 && port <= 65535)) {
    throw new UsageError(`<host:port> must look like 10.0.0.1:8080, got ${JSON.stringify(raw)}`);
  }
  return { host: (match[1] ?? match[2])!, port };
}

/** A whole number option within min..max; `name` is how the user spelled it, e.g. "--count". */
export function intOption(
  name: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return fallback;
  const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(value >= min && value <= max)) {
    throw new UsageError(`${name} must be a whole number ${min}..${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Runs a client's main; usage errors exit 2 with the usage text, anything else exits 1. */
export function runCli(usage: string, main: () => Promise<boolean>): void {
  main().then(
    (ok) => process.exit(ok ? 0 : 1),
    (err: Error) => {
      if (err instanceof UsageError) {
        process.stderr.write(`${err.message}\nusage: ${usage}\n`);
        process.exit(2);
      }
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
}
