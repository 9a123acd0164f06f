// Sample client for the backend's server-first TCP service (lib/banner.ts), run inside a pod:
//   banner-client.ts <host:port> [--line TEXT] [--timeout MS]
// It connects and sends nothing until the "220 <pod> ready" banner arrives, prints
// {banner, ms_to_connect, ms_to_banner} (both from the start of connect(), so any wait a proxy adds
// while it tries to detect the protocol shows), then sends a line, checks the echo and says QUIT.
// Exits 0 iff the banner, the echo and the 221 goodbye all arrived as expected.
import { connect, type Socket } from "node:net";
import { parseArgs } from "node:util";
import { intOption, parseTarget, printJson, runCli, UsageError } from "./lib/cli.ts";

const USAGE = "banner-client.ts <host:port> [--line TEXT] [--timeout MS]";
const BANNER = /^220 (\S+) ready$/;

/** Yields the socket's lines (without CRLF) as they arrive; ends when the socket ends. */
async function* lines(socket: Socket): AsyncGenerator<string> {
  let pending = "";
  socket.setEncoding("utf8");
  for await (const chunk of socket as AsyncIterable<string>) {
    pending += chunk;
    for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
      yield pending.slice(0, nl).replace(/\r$/, "");
      pending = pending.slice(nl + 1);
    }
  }
}

async function talk(host: string, port: number, line: string): Promise<boolean> {
  const started = performance.now();
  const since = (): number => +(performance.now() - started).toFixed(2);
  const socket = connect({ host, port, noDelay: true });
  let msToConnect = -1;
  socket.once("connect", () => (msToConnect = since()));
  const reader = lines(socket);
  const next = async (): Promise<string | null> => {
    const r = await reader.next();
    return r.done ? null : r.value;
  };
  try {
    const banner = await next();
    printJson({ banner, ms_to_connect: msToConnect, ms_to_banner: since() });
    const match = banner === null ? null : BANNER.exec(banner);
    if (match === null) return false;
    socket.write(`${line}\r\n`);
    const echo = await next();
    printJson({ sent: line, echo, ok: echo === line });
    socket.write("QUIT\r\n");
    const bye = await next();
    const clean = bye !== null && bye.startsWith(`221 ${match[1]} `);
    printJson({ bye, ok: clean });
    return echo === line && clean;
  } finally {
    socket.destroy();
  }
}

async function main(): Promise<boolean> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { line: { type: "string", default: "hello through the mesh" }, timeout: { type: "string" } },
  });
  const { host, port } = parseTarget(positionals[0]);
  if (/[\r\n]/.test(values.line)) throw new UsageError("--line must be a single line (no CR or LF)");
  const timeoutMs = intOption("--timeout", values.timeout, 10_000, 1, 3_600_000);
  const timeout = new Promise<boolean>((resolve) =>
    setTimeout(() => {
      printJson({ error: `no complete exchange within ${timeoutMs} ms` });
      resolve(false);
    }, timeoutMs),
  );
  return Promise.race([talk(host, port, values.line), timeout]);
}

runCli(USAGE, main);
