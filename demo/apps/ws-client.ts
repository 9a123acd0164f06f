// Sample WebSocket client (Node's built-in WebSocket, no mesh code) that a test runs inside a pod:
//   ws-client.ts <host:port> [--count N] [--size BYTES] [--timeout MS]
// It opens ws://host:port/ws?hello=1, reads the server's {"pod"} greeting, then sends N messages,
// alternating text and binary, each after the previous echo, and prints one JSON line per echo and
// a summary. It exits 0 iff every echo came back identical and the close handshake completed.
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { intOption, parseTarget, printJson, runCli } from "./lib/cli.ts";

const USAGE = "ws-client.ts <host:port> [--count N] [--size BYTES] [--timeout MS]";

function message(i: number, size: number): string | Buffer {
  if (i % 2 === 1) return randomBytes(size);
  const head = `msg-${i}-`;
  return (
    head + "abcdefghijklmnopqrstuvwxyz".repeat(Math.ceil(size / 26)).slice(0, Math.max(0, size - head.length))
  );
}

function same(sent: string | Buffer, got: unknown): boolean {
  if (typeof sent === "string") return got === sent;
  return got instanceof ArrayBuffer && Buffer.from(got).equals(sent);
}

function preview(data: unknown): string {
  if (typeof data === "string") return data.length > 60 ? `${data.slice(0, 60)}...` : data;
  return data instanceof ArrayBuffer ? `<${data.byteLength} bytes binary>` : String(data);
}

interface Run {
  pod: string | null;
  matched: number;
  closeCode: number | null;
}

/** Drives one connection; resolves when it closes, with what was seen. */
function converse(url: string, count: number, size: number): Promise<Run> {
  const run: Run = { pod: null, matched: 0, closeCode: null };
  const started = performance.now();
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  let i = 0;
  let sent: string | Buffer = "";
  const sendNext = (): void => {
    if (i === count) return ws.close(1000, "done");
    sent = message(i, size);
    ws.send(sent);
  };
  return new Promise((resolve) => {
    ws.addEventListener("message", (event: MessageEvent) => {
      if (run.pod === null) {
        run.pod = String((JSON.parse(String(event.data)) as { pod?: unknown }).pod);
        printJson({ pod: run.pod, ms_to_greeting: +(performance.now() - started).toFixed(2) });
        return sendNext();
      }
      const ok = same(sent, event.data);
      if (ok) run.matched++;
      printJson({
        i,
        type: typeof sent === "string" ? "text" : "binary",
        bytes: sent.length,
        echo: preview(event.data),
        ok,
      });
      i++;
      if (!ok) return ws.close(1000, "mismatch");
      sendNext();
    });
    ws.addEventListener("error", (event: Event) => {
      printJson({
        error: `websocket error: ${(event as Event & { message?: string }).message ?? "connection failed"}`,
      });
    });
    ws.addEventListener("close", (event: CloseEvent) => {
      run.closeCode = event.code;
      resolve(run);
    });
  });
}

async function main(): Promise<boolean> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { count: { type: "string" }, size: { type: "string" }, timeout: { type: "string" } },
  });
  const { host, port } = parseTarget(positionals[0]);
  const count = intOption("--count", values.count, 5, 0, 100_000);
  // 16 MiB is the backend's message limit (lib/websocket.ts).
  const size = intOption("--size", values.size, 32, 16, 16 * 1024 * 1024);
  const timeoutMs = intOption("--timeout", values.timeout, 10_000, 1, 3_600_000);
  const authority = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  const timeout = new Promise<null>((resolve) => setTimeout(resolve, timeoutMs, null));
  const run = await Promise.race([converse(`ws://${authority}/ws?hello=1`, count, size), timeout]);
  if (run === null) {
    printJson({ error: `no close after ${timeoutMs} ms`, summary: { sent: count } });
    return false;
  }
  printJson({ summary: { pod: run.pod, sent: count, matched: run.matched, closeCode: run.closeCode } });
  return run.pod !== null && run.matched === count && run.closeCode === 1000;
}

runCli(USAGE, main);
