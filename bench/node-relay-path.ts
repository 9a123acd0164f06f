// Starts the node-relay paths (bench/node-relay.ts): its client side in node 1, its server side in node 2,
// with the HAProxy paths' throw-away certificates, on the same ports HAProxy uses.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AGENT_NODE_FLAGS } from "../demo/mesh.ts";
import type { Lab, LabProcess } from "../lab/index.ts";
import { agentEnvFor } from "./mesh-path.ts";
import { HAPROXY_FRONT_PORT, HAPROXY_TUNNEL_PORT, makeCerts, type HaproxyPath } from "./haproxy.ts";

const RELAY = fileURLToPath(new URL("./node-relay.ts", import.meta.url));
// The agents' V8 flags, so the floor and the mesh are compared alike.
const NODE_FLAGS = ["--disable-warning=ExperimentalWarning", ...AGENT_NODE_FLAGS];

/** `mode`: http (the L7 rows: node-relay) or tcp (the L4 rows: node-relay-tcp). */
export async function startNodeRelay(lab: Lab, server: string, mode: "http" | "tcp"): Promise<HaproxyPath> {
  const dir = await mkdtemp(join(tmpdir(), "nodemesh-bench-relay-"));
  const procs: LabProcess[] = [];
  const stop = async () => {
    for (const p of procs) p.kill("SIGTERM");
    await Promise.all(procs.map((p) => p.exited));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await makeCerts(dir);
    // Profiled as the agents are (NODEMESH_BENCH_CPU_PROF), so the two profiles compare.
    const opts = { env: { ...process.env, ...agentEnvFor(process.env) } };
    const front = `${lab.node(1).address}:${HAPROXY_FRONT_PORT}`;
    const tunnel = `${lab.node(2).address}:${HAPROXY_TUNNEL_PORT}`;
    const n2 = lab.spawn(
      lab.node(2),
      [process.execPath, ...NODE_FLAGS, RELAY, "server", mode, tunnel, server, dir],
      opts,
    );
    procs.push(n2);
    await n2.waitForOutput("listening", 10_000);
    const n1 = lab.spawn(
      lab.node(1),
      [process.execPath, ...NODE_FLAGS, RELAY, "client", mode, front, tunnel, dir],
      opts,
    );
    procs.push(n1);
    await n1.waitForOutput("listening", 10_000);
    return {
      target: front,
      proxies: [
        { node: lab.node(1).name, pid: n1.pid },
        { node: lab.node(2).name, pid: n2.pid },
      ],
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
