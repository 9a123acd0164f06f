// The cost of one pod-local leg with and without the sockmap shortcut, in the same run: an application
// socket in a network namespace, redirected by connect4 to an in-pod listener this process owns (the
// agent's leg 1), 1 KiB request/response round trips over one connection and one bulk transfer. CPU is
// this process's (both ends of the leg live in it; the kernel's loopback work is charged to it too).
// Needs root. Run: `flock /tmp/nodemesh-e2e.lock node bench/sockmap-legs.ts [--round-trips N] [--order on,off]`.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import net from "node:net";
import * as nm from "../native/index.ts";

const VIP = "10.96.0.99";
const arg = process.argv.indexOf("--round-trips");
const ROUND_TRIPS = arg > 0 ? Number(process.argv[arg + 1]) : 20_000;
const BULK = 256 * 1024 * 1024;
const orderArg = process.argv.indexOf("--order");
const ORDER = (orderArg > 0 ? process.argv[orderArg + 1]! : "off,on,off,on").split(",") as ("off" | "on")[];

interface Result {
  mode: string;
  cpuUsPerRoundTrip: number;
  wallUsPerRoundTrip: number;
  bulkCpuMsPerGiB: number;
  paired: number;
}

function connectIn(h: nm.NetnsHandle): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = new net.Socket({ fd: h.socket({ mark: 0 }), readable: true, writable: true });
    s.once("error", reject);
    s.connect(80, VIP, () => resolve(s));
  });
}

async function pingPong(client: net.Socket, n: number): Promise<void> {
  const msg = randomBytes(1024);
  let got = 0;
  let left = n;
  await new Promise<void>((resolve) => {
    client.on("data", (d: Buffer) => {
      got += d.length;
      if (got < msg.length) return;
      got -= msg.length;
      if (--left === 0) return resolve();
      client.write(msg);
    });
    client.write(msg);
  });
  client.removeAllListeners("data");
}

async function bulk(client: net.Socket, sink: () => Promise<void>): Promise<void> {
  const chunk = randomBytes(1024 * 1024);
  for (let sent = 0; sent < BULK; sent += chunk.length) {
    if (!client.write(chunk)) await new Promise((r) => client.once("drain", r));
  }
  client.end();
  await sink();
}

async function measure(mode: "off" | "on", netnsPath: string, pinDir: string): Promise<Result> {
  const dp = await nm.install({ pinDir, sockmap: mode === "on" });
  const h = nm.openNetns(netnsPath);
  let phase: "echo" | "sink" = "echo";
  let sinkDone: () => void = () => {};
  const server = net.createServer((s) => {
    if (phase === "echo") s.pipe(s);
    else {
      s.on("data", () => {});
      s.on("end", () => sinkDone());
    }
  });
  try {
    if (mode === "on" && !dp.sockmapState().enabled) throw new Error(`sockmap: ${dp.sockmapState().reason}`);
    const fd = await nm.listenInNetns(netnsPath, "127.0.0.1", 15001);
    await new Promise<void>((r) => server.listen({ fd }, r));
    await dp.enrollNetns(netnsPath);
    dp.setMeshedDestinations([{ address: VIP, port: 80 }]);
    const client = await connectIn(h);
    await pingPong(client, 1000); // warm-up
    const paired = dp.sockPairs().length;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await pingPong(client, ROUND_TRIPS);
    const wall = Number(process.hrtime.bigint() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    client.destroy();
    phase = "sink";
    const bulkClient = await connectIn(h);
    const bulk0 = process.cpuUsage();
    await bulk(bulkClient, () => new Promise<void>((r) => (sinkDone = r)));
    const bulkCpu = process.cpuUsage(bulk0);
    return {
      mode,
      cpuUsPerRoundTrip: (cpu.user + cpu.system) / ROUND_TRIPS,
      wallUsPerRoundTrip: wall / ROUND_TRIPS,
      bulkCpuMsPerGiB: (bulkCpu.user + bulkCpu.system) / 1000 / (BULK / 2 ** 30),
      paired,
    };
  } finally {
    server.close();
    h.close();
    dp.uninstall();
  }
}

const ns = `nmsmbench${process.pid}`;
execFileSync("ip", ["netns", "add", ns]);
try {
  execFileSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
  const results: Result[] = [];
  for (const mode of ORDER) results.push(await measure(mode, `/var/run/netns/${ns}`, `/sys/fs/bpf/${ns}`));
  console.log("mode  CPU us/round trip  wall us/round trip  bulk CPU ms/GiB  sockets paired");
  for (const r of results)
    console.log(
      `${r.mode.padEnd(4)}  ${r.cpuUsPerRoundTrip.toFixed(1).padStart(17)}  ${r.wallUsPerRoundTrip
        .toFixed(1)
        .padStart(18)}  ${r.bulkCpuMsPerGiB.toFixed(0).padStart(15)}  ${String(r.paired).padStart(14)}`,
    );
} finally {
  execFileSync("ip", ["netns", "del", ns]);
}
