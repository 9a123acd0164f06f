// Benchmark: the cost of the connect4/sockops programs on connect(). In a throwaway network
// namespace, a client does N sequential TCP connects (timed from connect() to the 'connect'
// event) in three set-ups measured in the same run:
//   1. no nodemesh programs attached (baseline),
//   2. programs attached, pod not enrolled (every connect pays a map miss),
//   3. pod enrolled, destination meshed (connect is rewritten to the in-pod listener).
// Prints a table; run as root: node --disable-warning=ExperimentalWarning bench/connect-redirect.ts [N]
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import net from "node:net";
import { fileURLToPath } from "node:url";
import * as nm from "../native/index.ts";

const execFileAsync = promisify(execFile);
const DST = "10.77.0.1";
const PORT = 8080;

async function clientMain(n: number): Promise<void> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host: DST, port: PORT }, () => {
        samples.push(Number(process.hrtime.bigint() - start) / 1000);
        socket.destroy();
        resolve();
      });
      socket.on("error", reject);
    });
  }
  samples.sort((x, y) => x - y);
  const total = samples.reduce((s, x) => s + x, 0);
  const p = (q: number): number => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0;
  process.stdout.write(JSON.stringify({ meanUs: total / n, p50Us: p(0.5), p99Us: p(0.99) }));
}

interface Result {
  meanUs: number;
  p50Us: number;
  p99Us: number;
}

// Async on purpose: this process owns the servers, so its event loop must keep accepting.
async function runClient(ns: string, n: number): Promise<Result> {
  const self = fileURLToPath(import.meta.url);
  const args = [
    "netns",
    "exec",
    ns,
    process.execPath,
    "--disable-warning=ExperimentalWarning",
    self,
    "--client",
    String(n),
  ];
  const { stdout } = await execFileAsync("ip", args, { encoding: "utf8" });
  return JSON.parse(stdout) as Result;
}

async function serve(fd: number): Promise<net.Server> {
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve) => server.listen({ fd }, resolve));
  return server;
}

async function main(n: number): Promise<void> {
  const ns = `nmbench${process.pid}`;
  const pinDir = `/sys/fs/bpf/${ns}`;
  const servers: net.Server[] = [];
  let dp: nm.Datapath | undefined;
  execFileSync("ip", ["netns", "add", ns]);
  try {
    for (const args of [
      ["link", "set", "lo", "up"],
      ["addr", "add", `${DST}/32`, "dev", "lo"], // a local, non-127/8 "remote" (no dummy driver needed)
    ]) {
      execFileSync("ip", ["-n", ns, ...args]);
    }
    const netnsPath = `/var/run/netns/${ns}`;
    servers.push(await serve(await nm.listenInNetns(netnsPath, "0.0.0.0", PORT)));
    servers.push(await serve(await nm.listenInNetns(netnsPath, "127.0.0.1", 15001)));
    await runClient(ns, Math.min(n, 200)); // warm-up
    const rows: [string, Result][] = [["no programs attached", await runClient(ns, n)]];
    dp = await nm.install({ pinDir });
    dp.setMeshedDestinations([{ address: DST, port: PORT }]);
    rows.push(["attached, pod not enrolled", await runClient(ns, n)]);
    await dp.enrollNetns(netnsPath);
    rows.push(["enrolled, redirected", await runClient(ns, n)]);
    const base = rows[0]![1].meanUs;
    console.log(
      `connect() latency, ${n} sequential connects per row (kernel ${nm.probeFeatures().kernelRelease})`,
    );
    console.log("| set-up | mean µs | p50 µs | p99 µs | mean / baseline |");
    console.log("|---|---:|---:|---:|---:|");
    for (const [name, r] of rows) {
      console.log(
        `| ${name} | ${r.meanUs.toFixed(1)} | ${r.p50Us.toFixed(1)} | ${r.p99Us.toFixed(1)} | ${(r.meanUs / base).toFixed(2)} |`,
      );
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    dp?.uninstall();
    execFileSync("ip", ["netns", "del", ns]);
  }
}

const args = process.argv.slice(2);
if (args[0] === "--client") await clientMain(Number(args[1] ?? 1000));
else await main(Number(args[0] ?? 1000));
