// The client pod's address, authenticated, on the lab: AuthorizationPolicy ipBlocks see the source
// pod (not the node it runs on), the destination's access log names it, and an opaque-TCP application
// sees it as its peer. n1p1 (client) and n1p2 (echo) share node 1; both call n2p2 on node 2 by its pod
// address, so no balancing is involved.
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WEB_VIP } from "../../../demo/mesh-config.ts";
import { eventually, meshFixture, VIP, type MeshFixture } from "../../helpers/mesh-fixture.ts";

let fx: MeshFixture;

beforeAll(async () => {
  fx = await meshFixture("msrc");
}, 120_000);
afterAll(async () => {
  await fx?.close();
});

const denyFrom = (name: string, ipBlocks: string[]) => ({
  apiVersion: "nodemesh.io/v1alpha1",
  kind: "AuthorizationPolicy",
  metadata: { name, namespace: "default" },
  spec: {
    selector: { matchLabels: { app: "echo" } },
    action: "DENY",
    rules: [{ from: [{ source: { ipBlocks } }] }],
  },
});

async function policyOnNode2(name: string): Promise<void> {
  await eventually(`policy ${name} on node 2`, async () =>
    (await fx.mesh.agentHttp("n2", 15000, "/config_dump")).includes(name),
  );
}

const target = () => `http://${fx.lab.pod(2, 2).address}:8080/`;
const calls = async (pod: string, n: number) => {
  let ok = 0;
  for (let i = 0; i < n; i++) if ((await fx.curl(pod, target(), ["--fail"])).code === 0) ok++;
  return ok;
};

describe("ipBlocks match the client pod's address", () => {
  it("a DENY for one pod's address denies that pod and not its neighbour on the same node", async () => {
    const client = fx.lab.pod(1, 1).address;
    fx.applyExtra([denyFrom("deny-n1p1", [`${client}/32`])]);
    await policyOnNode2("deny-n1p1");
    expect(await calls("n1p1", 4)).toBe(0);
    expect(await calls("n1p2", 4)).toBe(4);
    // The destination's access log says who was denied: the pod, not node 1's address.
    await eventually("the denial in node 2's access log", () =>
      fx
        .agentLog("n2")
        .some(
          (l) =>
            l["log"] === "access" &&
            l["direction"] === "inbound" &&
            l["src.addr"] === client &&
            l["response_flags"] === "AuthorizationPolicyDenied" &&
            String(l["error"]).includes("deny-n1p1"),
        ),
    );
    // Access lines are written in batches (agent/log.ts): the served ones may come in a later one.
    const served = () =>
      fx
        .agentLog("n2")
        .filter((l) => l["log"] === "access" && l["direction"] === "inbound" && l["response_flags"] === "-");
    await eventually("n1p2's served calls in node 2's access log", () =>
      served().some((l) => l["src.addr"] === fx.lab.pod(1, 2).address),
    );
    expect(served().map((l) => l["src.addr"])).not.toContain(fx.lab.node(1).address);
  });

  it("a DENY for the nodes' addresses no longer denies their pods", async () => {
    // 10.0.0.1: node 1's address, where its tunnels come from; 10.1.2.1: node 2's address on its pods'
    // veths, where same-node tunnels come from.
    fx.applyExtra([denyFrom("deny-nodes", [fx.lab.node(1).address, "10.1.2.1"])]);
    await policyOnNode2("deny-nodes");
    expect(await calls("n1p1", 3)).toBe(3);
    expect(await calls("n1p2", 3)).toBe(3);
    expect(await calls("n2p1", 3)).toBe(3);
    fx.applyExtra([]);
  });
});

describe("the application sees the client pod's address as its peer", () => {
  /** The echo server's own view of the connection (demo/apps/lib/http-handler.ts `peer`). */
  const peerSeen = async (pod: string, url: string) => {
    const r = await fx.curl(pod, url, ["--fail"]);
    expect(r.code, r.stderr).toBe(0);
    const body = JSON.parse(r.body) as { pod: string; peer: string; headers: Record<string, string> };
    return { backend: body.pod, peer: body.peer.slice(0, body.peer.lastIndexOf(":")), headers: body.headers };
  };

  it("over opaque TCP, from either node, to either backend: the peer is the client pod", async () => {
    // `echo` at the VIP is declared tcp: one delivery connection per client connection. Round robin is
    // not promised here, so enough calls that both backends (same node and other node) are seen.
    const backends = new Set<string>();
    for (const client of ["n1p1", "n2p1"]) {
      const address = fx.lab.host(client).address;
      for (let i = 0; i < 12; i++) {
        const seen = await peerSeen(client, `http://${VIP}/`);
        expect(seen.peer, `${client} -> ${seen.backend}`).toBe(address);
        backends.add(seen.backend);
      }
    }
    expect([...backends].sort()).toEqual(["n1p2", "n2p2"]);
  });

  it("over HTTP, where one pooled connection carries many clients: the pod's own address, the client in x-forwarded-for", async () => {
    const seen = await peerSeen("n1p1", `http://${WEB_VIP}/`);
    expect(seen.peer).toBe(fx.lab.host(seen.backend).address);
    expect(seen.headers["x-forwarded-for"]).toBe(fx.lab.pod(1, 1).address);
  });

  it("takes nothing else of the pod: one mark-matched rule and one route table", () => {
    const pod = fx.lab.pod(2, 2);
    const rules = execFileSync("ip", ["-n", pod.netns, "-4", "rule", "show"], { encoding: "utf8" });
    expect(rules).toMatch(/^1338:\s+from all fwmark 0x53a lookup 1338\s*$/m);
    const table = execFileSync("ip", ["-n", pod.netns, "-4", "route", "show", "table", "1338"], {
      encoding: "utf8",
    });
    expect(table.trim()).toBe("local default dev lo proto static scope host");
    // The pod's main table is untouched: its default route still leaves by its veth.
    const main = execFileSync("ip", ["-n", pod.netns, "-4", "route", "show"], { encoding: "utf8" });
    expect(main).toMatch(/^default via /m);
  });
});

describe("a tunnel from an address no route names (as on an encapsulating overlay)", () => {
  it("is placed by the node address book the agents report to the controller", async () => {
    // Node 1 sends its tunnels to node 2's pods from a second address, as a VXLAN or IPIP interface's
    // address would be: node 2's route to node 1's pods names 10.0.0.1, never 10.0.0.101.
    const n1 = fx.lab.node(1).netns;
    const ip = (...args: string[]) => execFileSync("ip", ["-n", n1, ...args], { encoding: "utf8" });
    ip("addr", "add", "10.0.0.101/32", "dev", "eth0");
    try {
      ip("route", "replace", "10.1.2.0/24", "via", "10.0.0.2", "dev", "eth0", "onlink", "src", "10.0.0.101");
      // A fresh agent: new tunnels (from the new address), and its report at connect.
      await fx.mesh.restartAgent("n1");
      await eventually("node 2 holds node 1's new address", async () => {
        const dump = JSON.parse(await fx.mesh.agentHttp("n2", 15000, "/config_dump")) as {
          nodeAddresses?: Record<string, string[]>;
        };
        return dump.nodeAddresses?.["n1"]?.includes("10.0.0.101") === true;
      });
      const refusedBefore = await unknownPeerRefusals();
      expect(await calls("n1p1", 4)).toBe(4);
      // The calls really came from the new address, and were placed, not refused.
      const tunnels = execFileSync(
        "ip",
        ["netns", "exec", n1, "ss", "-tnH", "state", "established", "dst", "10.1.2.0/24"],
        {
          encoding: "utf8",
        },
      );
      expect(tunnels).toContain("10.0.0.101:");
      expect(await unknownPeerRefusals()).toBe(refusedBefore);
    } finally {
      ip("route", "replace", "10.1.2.0/24", "via", "10.0.0.2", "dev", "eth0", "onlink");
      ip("addr", "del", "10.0.0.101/32", "dev", "eth0");
      await fx.mesh.restartAgent("n1");
    }
  });
});

async function unknownPeerRefusals(): Promise<number> {
  const text = await fx.mesh.agentHttp("n2", 15020, "/metrics");
  const line = text
    .split("\n")
    .find(
      (l) =>
        l.startsWith("nodemesh_tunnel_source_refused_total{") && l.includes('reason="unknown_peer_node"'),
    );
  return line ? Number(line.split(" ").at(-1)) : 0;
}
