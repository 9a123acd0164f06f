// The agent's side of the CNI plugin (agent.pods, used by agent/node/cni-server.ts): a pod the
// agent cannot find by itself (no process in its cgroup yet, as while its sandbox is set up) is
// enrolled in the netns the plugin names, whether the hint comes before or after the controller's
// config; a recreated sandbox (new netns) re-enrolls; a not-ready entry is enrolled but no endpoint.
import { pino } from "pino";
import { afterEach, describe, expect, test } from "vitest";
import type { MeshConfig } from "../../../controller/api/index.ts";
import { StaticConfigSource } from "../../../agent/state/source.ts";
import { createTestCa } from "../../helpers/test-ca.ts";
import { HEADER, baseConfig } from "./harness.ts";
import { RecordingDatapath, hintOnlyAgent } from "./cni-agent.ts";
import type { Agent } from "../../../agent/app.ts";

const UID1 = "11111111-2222-3333-4444-555555555555";
const UID2 = "66666666-7777-8888-9999-000000000000";

function pod(name: string, uid: string, address: string, ready: boolean) {
  return {
    ...HEADER,
    kind: "WorkloadEntry" as const,
    metadata: { name, namespace: "default", annotations: { "nodemesh.io/pod-uid": uid } },
    spec: {
      address,
      serviceAccount: name,
      labels: { app: "echo" },
      node: "node-a",
      cgroup: `/kubepods.slice/${name}`,
      ready,
    },
  };
}

function config(version: string, bundle: string[], pods: ReturnType<typeof pod>[]): MeshConfig {
  const c = baseConfig(version, bundle);
  return { ...c, workloads: pods };
}

let agent: Agent | undefined;
const dp = new RecordingDatapath({ hbonePort: 0 });
afterEach(async () => {
  await agent?.stop();
  await dp.close();
});

describe("enrolment hinted by the CNI plugin", () => {
  test("hint after config, hint before config, and a recreated sandbox", async () => {
    const ca = createTestCa();
    const source = new StaticConfigSource(config("1", [ca.certPem], [pod("p1", UID1, "127.0.9.1", false)]));
    const log = pino({ level: "silent" });
    // The pod's cgroup has no process yet: the locator never finds it, only a hint can place it.
    agent = hintOnlyAgent({
      datapath: dp,
      configSource: source,
      signer: ca.signer({ lifetimeMs: 3600_000 }),
      log,
    });
    await agent.start();
    expect(agent.pods.whyNotEnrolled(UID1)).toMatch(/could not enroll it/);

    agent.pods.hintPod(UID1, "/var/run/netns/cni-p1");
    await agent.settled();
    expect(agent.pods.whyNotEnrolled(UID1, "/var/run/netns/cni-p1")).toBeUndefined();
    expect(dp.netnsOf.get("default/p1")).toBe("/var/run/netns/cni-p1");
    // Not ready: enrolled (captured) but not an endpoint of the echo Service.
    expect(agent.view()?.servicePort("default/echo:80")?.endpoints).toEqual([]);

    expect(agent.pods.whyNotEnrolled(UID2)).toMatch(
      /config does not name this pod on node node-a yet, neither as a workload nor as not meshed/,
    );
    agent.pods.hintPod(UID2, "/var/run/netns/cni-p2");
    await agent.settled();
    source.set(
      config("2", [ca.certPem], [pod("p1", UID1, "127.0.9.1", true), pod("p2", UID2, "127.0.9.2", false)]),
    );
    await agent.settled();
    expect(agent.pods.whyNotEnrolled(UID2, "/var/run/netns/cni-p2")).toBeUndefined();
    expect(dp.netnsOf.get("default/p2")).toBe("/var/run/netns/cni-p2");
    // p1 turned Ready: now an endpoint, and still enrolled where it was.
    expect(
      agent
        .view()
        ?.servicePort("default/echo:80")
        ?.endpoints.map((e) => e.address),
    ).toEqual(["127.0.9.1"]);

    expect(agent.pods.whyNotEnrolled(UID1, "/var/run/netns/cni-p1b")).toMatch(
      /enrolled in \/var\/run\/netns\/cni-p1, not yet in/,
    );
    agent.pods.hintPod(UID1, "/var/run/netns/cni-p1b");
    await agent.settled();
    expect(agent.pods.whyNotEnrolled(UID1, "/var/run/netns/cni-p1b")).toBeUndefined();
    expect(dp.netnsOf.get("default/p1")).toBe("/var/run/netns/cni-p1b");
    agent.pods.forgetPod(UID1);
  });
});
