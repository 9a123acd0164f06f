// Sample client for the demo: plain HTTP with no mesh code. It sends requests at a fixed rate to
// one URL, each on a new connection (so per-connection balancing shows), and prints one JSON line
// per interval: successes, failures, requests per backend (from x-served-by) and latency.
// HEADER="name: value" adds one request header (the demo's canary client sends x-canary: yes).
import { request } from "node:http";

const url = new URL(process.env.TARGET_URL ?? "http://10.96.0.10/");
const rate = Number(process.env.RATE ?? 20);
const intervalMs = Number(process.env.REPORT_MS ?? 1000);
const extra = process.env.HEADER ? parseHeader(process.env.HEADER) : {};

function parseHeader(h: string): Record<string, string> {
  const i = h.indexOf(":");
  if (i <= 0) throw new Error(`HEADER must be "name: value", got ${JSON.stringify(h)}`);
  return { [h.slice(0, i).trim().toLowerCase()]: h.slice(i + 1).trim() };
}

interface Window {
  ok: number;
  failed: number;
  byBackend: Record<string, number>;
  statuses: Record<string, number>;
  errors: Record<string, number>;
  latencies: number[];
}
const fresh = (): Window => ({ ok: 0, failed: 0, byBackend: {}, statuses: {}, errors: {}, latencies: [] });
let win = fresh();

function once(): void {
  const start = performance.now();
  const req = request(
    url,
    { agent: false, headers: { connection: "close", ...extra }, timeout: 5000 },
    (res) => {
      res.resume();
      res.on("end", () => {
        const backend = String(res.headers["x-served-by"] ?? "?");
        win.statuses[String(res.statusCode)] = (win.statuses[String(res.statusCode)] ?? 0) + 1;
        if (res.statusCode === 200) {
          win.ok++;
          win.byBackend[backend] = (win.byBackend[backend] ?? 0) + 1;
          win.latencies.push(performance.now() - start);
        } else {
          win.failed++;
        }
      });
    },
  );
  req.on("timeout", () => req.destroy(new Error("timeout")));
  req.on("error", (err: NodeJS.ErrnoException) => {
    win.failed++;
    const key = err.code ?? err.message;
    win.errors[key] = (win.errors[key] ?? 0) + 1;
  });
  req.end();
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

setInterval(once, 1000 / rate);
setInterval(() => {
  const lat = win.latencies.sort((a, b) => a - b);
  const { latencies: _l, ...rest } = win;
  const line = { ...rest, p50ms: +quantile(lat, 0.5).toFixed(2), p99ms: +quantile(lat, 0.99).toFixed(2) };
  process.stdout.write(`${JSON.stringify(line)}\n`);
  win = fresh();
}, intervalMs);
process.on("SIGTERM", () => process.exit(0));
