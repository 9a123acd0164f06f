// The mesh across restarts: the controller dies and comes back, an agent restarts under traffic.
// Redirection is pinned in the kernel, so it is the same programs before and after.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { meshConfigForLab } from "../../../demo/mesh-config.ts";
import {
  eventually,
  meshFixture,
  VIP,
  type LoadWindow,
  type MeshFixture,
} from "../../helpers/mesh-fixture.ts";

let fx: MeshFixture;

beforeAll(async () => {
  fx = await meshFixture("mlife");
}, 120_000);
afterAll(async () => {
  await fx?.close();
});

async function bpftoolLinks(pinDir: string): Promise<number[]> {
  const r = await fx.lab.exec(fx.lab.root, [
    "bpftool",
    "-j",
    "link",
    "show",
    "pinned",
    join(pinDir, "link_connect4"),
  ]);
  if (r.code !== 0) return [];
  const link = JSON.parse(r.stdout) as { id: number } | { id: number }[];
  return (Array.isArray(link) ? link : [link]).map((l) => l.id);
}

describe("controller outage", () => {
  it("keeps serving new connections with the last config, and resyncs after a restart", async () => {
    fx.mesh.controller.kill("SIGKILL");
    await fx.mesh.controller.exited;
    for (let i = 0; i < 10; i++) {
      const r = await fx.curl("n1p1", `http://${VIP}/`, ["--fail"]);
      expect(r.code).toBe(0);
    }
    await fx.mesh.startController();
    // A change made while agents reconnect reaches them: the resync works.
    fx.applyExtra([
      {
        apiVersion: "nodemesh.io/v1alpha1",
        kind: "AuthorizationPolicy",
        metadata: { name: "after-restart", namespace: "default" },
        spec: {
          selector: { matchLabels: { app: "echo" } },
          action: "DENY",
          rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/nobody"] } }] }],
        },
      },
    ]);
    for (const node of ["n1", "n2"]) {
      await eventually(`${node} holds the config written after the restart`, async () =>
        (await fx.mesh.agentHttp(node, 15000, "/config_dump")).includes("after-restart"),
      );
    }
    expect((await fx.curl("n2p1", `http://${VIP}/`, ["--fail"])).code).toBe(0);
  });
});

/** Runs a 20 rps load client in n1p1 around `action`; returns the windows from the action on. */
async function underLoad(
  action: () => Promise<void>,
  rate = 20,
): Promise<{ ok: number; failed: number; windows: LoadWindow[] }> {
  const load = fx.startLoad("n1p1", { rate, reportMs: 500 });
  const { windows } = load;
  try {
    await eventually("traffic before the action", () => windows.some((w) => w.ok > 0));
    const start = windows.length;
    await action();
    const doneAt = windows.length;
    await eventually(
      "three clean windows after the action",
      () => {
        const after = windows.slice(doneAt);
        return after.length >= 3 && after.slice(-3).every((w) => w.failed === 0 && w.ok > 0);
      },
      20_000,
    );
    const during = windows.slice(start);
    return {
      ok: during.reduce((n, w) => n + w.ok, 0),
      failed: during.reduce((n, w) => n + w.failed, 0),
      windows: during,
    };
  } finally {
    await load.stop();
  }
}

describe("agent upgrade (hand-over)", () => {
  it("starts the new agent beside the old one, then drains the old: no failed request", async () => {
    const agent = fx.mesh.agent("n1");
    const linksBefore = await bpftoolLinks(agent.pinDir);
    const oldPid = agent.process.pid;
    const r = await underLoad(async () => {
      await fx.mesh.upgradeAgent("n1");
    });
    console.info(`agent hand-over under 20 rps: ${r.failed} failed, ${r.ok} succeeded`);
    expect(agent.process.pid).not.toBe(oldPid);
    expect(r.failed, JSON.stringify(r.windows)).toBe(0);
    expect(r.ok).toBeGreaterThan(20);
    expect(await bpftoolLinks(agent.pinDir)).toEqual(linksBefore);
  });
});

describe("agent restart", () => {
  it("keeps redirection pinned, re-adopts it, and traffic resumes", async () => {
    const agent = fx.mesh.agent("n1");
    const linksBefore = await bpftoolLinks(agent.pinDir);
    expect(linksBefore.length).toBe(1);

    const r = await underLoad(async () => {
      await fx.mesh.restartAgent("n1");
    });
    // Reported, not asserted: a plain stop-then-start loses what is sent while no agent listens (the
    // hand-over above is the zero-loss path).
    console.info(`agent restart under 20 rps: ${r.failed} failed, ${r.ok} succeeded`);
    expect(r.ok).toBeGreaterThan(0);
    // The same kernel link as before: re-adopted, not attached a second time.
    expect(await bpftoolLinks(agent.pinDir)).toEqual(linksBefore);
    await agent.process.waitForOutput("re-adopted pinned datapath"); // logs are written in batches
  });
});

/** Takes pod n2p1 out of the config and waits until node 2's agent has dropped it. */
async function withoutN2p1(): Promise<void> {
  const spec = {
    ...fx.spec,
    pods: Object.fromEntries(Object.entries(fx.spec.pods).filter(([p]) => p !== "n2p1")),
  };
  fx.mesh.writeConfig(meshConfigForLab(fx.lab, spec));
  await eventually("legacy-n2p1 released on n2", async () => {
    const dump = await fx.mesh.agentHttp("n2", 15000, "/config_dump");
    return !dump.includes("legacy-n2p1");
  });
}

describe("workloads joining and leaving", () => {
  it("releases a workload removed from the config and enrolls it again when it comes back", async () => {
    await withoutN2p1();
    // No longer enrolled: its connect to the VIP is not redirected, and the VIP is routed nowhere.
    const out = await fx.curl("n2p1", `http://${VIP}/`);
    expect(out.code).toBe(7);
    expect(out.stderr).toMatch(/unreachable|couldn't connect|failed to connect/i);

    fx.mesh.writeConfig(meshConfigForLab(fx.lab, fx.spec));
    await eventually(
      "legacy-n2p1 enrolled again",
      async () => (await fx.curl("n2p1", `http://${VIP}/`, ["--fail"])).code === 0,
    );
  });
});

describe("a workload whose in-pod listener port is taken", () => {
  const notEnrolled = async () =>
    (
      JSON.parse(await fx.mesh.agentHttp("n2", 15000, "/config_dump")) as {
        notEnrolled: { uid: string; held: boolean }[];
      }
    ).notEnrolled.filter((w) => w.uid.endsWith("legacy-n2p1"));
  /** The errno of a plain connect() from the pod to the VIP, or "connected". */
  const connectFromPod = async () => {
    const script = `require("node:net").connect(80, "${VIP}").on("connect", function () { console.log("connected"); this.destroy(); }).on("error", (e) => console.log(e.code))`;
    const r = await fx.lab.exec(fx.lab.host("n2p1"), [process.execPath, "-e", script]);
    return r.stdout.trim();
  };

  it("is held (its meshed connects refused, not unmeshed), released with the config, enrolled once the port frees", async () => {
    await withoutN2p1();
    // A process of the pod's own holds the agent's outbound capture port (no SO_REUSEPORT).
    const squatter = fx.lab.spawn("n2p1", [
      process.execPath,
      "-e",
      `require("node:net").createServer((s) => s.end("squatter\\n")).listen(15001, "127.0.0.1", () => console.log("squatting"))`,
    ]);
    try {
      await squatter.waitForOutput("squatting");
      fx.mesh.writeConfig(meshConfigForLab(fx.lab, fx.spec));
      await eventually("legacy-n2p1 held", async () => (await notEnrolled()).some((w) => w.held));
      // Refused in the kernel at connect(): neither sent around the mesh nor to the squatter.
      expect(await connectFromPod()).toBe("EPERM");
      const out = await fx.curl("n2p1", `http://${VIP}/`);
      expect(out.code).toBe(7);
      expect(out.body).not.toContain("squatter");

      // Taken out of the mesh by the config: the hold goes with it.
      await withoutN2p1();
      expect(await notEnrolled()).toEqual([]);
      expect(await connectFromPod()).not.toBe("EPERM");

      fx.mesh.writeConfig(meshConfigForLab(fx.lab, fx.spec));
      await eventually("legacy-n2p1 held again", async () => (await notEnrolled()).some((w) => w.held));
    } finally {
      squatter.kill("SIGKILL");
      await squatter.exited;
    }
    // The agent's retry enrolls it (no config change needed).
    await eventually(
      "legacy-n2p1 enrolled by the retry",
      async () => (await fx.curl("n2p1", `http://${VIP}/`, ["--fail"])).code === 0,
      30_000,
    );
    expect(await notEnrolled()).toEqual([]);
  });
});

describe("agent crash", () => {
  /** Tunnel sockets from node 1 (its address or its pods') on a pod's 15008 listener, by TCP state. */
  async function tunnelSockets(pod: string, state: "established" | "close-wait"): Promise<string[]> {
    const fromNode1 = [
      fx.lab.node(1).address,
      ...fx.lab.pods.filter((p) => p.node === 1).map((p) => p.address),
    ];
    const r = await fx.lab.exec(fx.lab.host(pod), ["ss", "-Htn", "state", state, "( sport = :15008 )"]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.split("\n").filter((l) => fromNode1.some((a) => l.includes(` ${a}:`)));
  }

  it("SIGKILL under 50 rps of new connections, the next agent a second later: none fails", async () => {
    const agent = fx.mesh.agent("n1");
    const r = await underLoad(async () => {
      await fx.mesh.crashAgent("n1", 1_000);
    }, 50);
    console.info(`agent SIGKILL + restart 1 s later under 50 rps: ${r.failed} failed, ${r.ok} succeeded`);
    // A request in flight inside the agent when it died is cut (ECONNRESET: at 50 rps and ~5 ms per
    // request, rarely more than one); every connection opened after the kill must succeed.
    const errors: Record<string, number> = {};
    for (const w of r.windows)
      for (const [e, n] of Object.entries(w.errors)) errors[e] = (errors[e] ?? 0) + n;
    const { ECONNRESET: cut = 0, ...others } = errors;
    expect(others, JSON.stringify(r.windows)).toEqual({});
    expect(cut, JSON.stringify(r.windows)).toBeLessThanOrEqual(3);
    expect(r.failed).toBe(cut);
    expect(r.ok).toBeGreaterThan(50);
    // The connections made while no agent ran waited in the kept listeners and were taken over.
    await agent.process.waitForOutput("took over listeners from the socket keeper");
  });

  it("closes the crashed agent's tunnel sessions on the peer instead of leaving them in CLOSE-WAIT", async () => {
    const backend = fx.lab.pod(2, 2);
    const r = await fx.curl("n1p1", `http://${backend.address}:8080/crash`, ["--fail"]);
    expect(r.code, r.stderr).toBe(0);
    expect((await tunnelSockets(backend.name, "established")).length).toBeGreaterThan(0);
    const agent = fx.mesh.agent("n1");
    agent.process.kill("SIGKILL");
    await agent.process.exited;
    // The kernel sends the dead agent's FIN; the peer must close its side, not wait for a timeout.
    await eventually(
      "no tunnel socket left on the peer",
      async () =>
        (await tunnelSockets(backend.name, "close-wait")).length === 0 &&
        (await tunnelSockets(backend.name, "established")).length === 0,
      5_000,
    );
    await fx.mesh.restartAgent("n1");
    await eventually(
      "traffic through the restarted agent",
      async () => (await fx.curl("n1p1", `http://${VIP}/`, ["--fail"])).code === 0,
    );
  });
});
