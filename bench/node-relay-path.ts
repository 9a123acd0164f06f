// Starts the node-relay paths (bench/node-relay.ts): its client side in node 1, its server side in node 2,
// with the HAProxy paths' throw-away certificates, on the same ports HAProxy uses.
import { fileURLToPath } from "node:url";
import { AGENT_NODE_FLAGS } from "../demo/mesh.ts";
import type { Lab, LabHost } from "../lab/index.ts";
import { agentEnvFor } from "./mesh-path.ts";
import {
  HAPROXY_FRONT_PORT,
  HAPROXY_TUNNEL_PORT,
  makeCerts,
  peerProcesses,
  type HaproxyPath,
} from "./haproxy.ts";

const RELAY = fileURLToPath(new URL("./node-relay.ts", import.meta.url));
// The agents' V8 flags, so the floor and the mesh are compared alike.
const NODE_FLAGS = ["--disable-warning=ExperimentalWarning", ...AGENT_NODE_FLAGS];

/** `mode`: http (the L7 rows: node-relay) or tcp (the L4 rows: node-relay-tcp). */
export async function startNodeRelay(lab: Lab, server: string, mode: "http" | "tcp"): Promise<HaproxyPath> {
  const { dir, procs, stop } = await peerProcesses("nodemesh-bench-relay-");
  try {
    await makeCerts(dir);
    // Profiled as the agents are (NODEMESH_BENCH_CPU_PROF), so the two profiles compare.
    const opts = { env: { ...process.env, ...agentEnvFor(process.env) } };
    const front = `${lab.node(1).address}:${HAPROXY_FRONT_PORT}`;
    const tunnel = `${lab.node(2).address}:${HAPROXY_TUNNEL_PORT}`;
    const start = async (host: LabHost, role: string, listen: string, upstream: string) => {
      const argv = [process.execPath, ...NODE_FLAGS, RELAY, role, mode, listen, upstream, dir];
      const p = lab.spawn(host, argv, opts);
      procs.push(p);
      await p.waitForOutput("listening", 10_000);
      return p;
    };
    const n2 = await start(lab.node(2), "server", tunnel, server);
    const n1 = await start(lab.node(1), "client", front, tunnel);
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
