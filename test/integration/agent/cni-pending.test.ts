// A pod enrolled at CNI ADD before its IP is in the API, as on a real kubelet (docs/kubernetes.md):
// the controller's config has only the pod's PendingWorkload; the real plugin executable is run as
// the runtime runs it (CNI_* env, the network config with prevResult on stdin) against the agent's
// CNI socket, and succeeds once the agent has enrolled the pod with the address from prevResult.
// Then the ordinary entry (the published IP) arrives and nothing is re-enrolled; a published IP
// that differs wins. ADD for a pod no identity arrives for fails with a CNI error (fail closed).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { MeshConfig, PendingWorkload, WorkloadEntry } from "../../../controller/api/index.ts";
import { CniServer } from "../../../agent/node/cni-server.ts";
import { StaticConfigSource } from "../../../agent/state/source.ts";
import { cniAdd } from "../../helpers/cni-plugin.ts";
import { createTestCa } from "../../helpers/test-ca.ts";
import { HEADER, baseConfig } from "./harness.ts";
import { RecordingDatapath, hintOnlyAgent } from "./cni-agent.ts";
import type { Agent } from "../../../agent/app.ts";

const UID = "7a7a7a7a-1111-2222-3333-444444444444";
const NETNS = "/var/run/netns/cni-pending";

const meta = {
  name: "late",
  namespace: "default",
  annotations: { "nodemesh.io/pod-uid": UID, "nodemesh.io/qos-class": "BestEffort" },
};
const pendingPod: PendingWorkload = {
  ...HEADER,
  kind: "PendingWorkload",
  metadata: meta,
  spec: {
    podUid: UID,
    serviceAccount: "late",
    labels: { app: "echo" },
    node: "node-a",
    cgroup: "/kubepods.slice/late",
  },
};
const entry = (address: string): WorkloadEntry => ({
  ...HEADER,
  kind: "WorkloadEntry",
  metadata: meta,
  spec: {
    address,
    serviceAccount: "late",
    labels: { app: "echo" },
    node: "node-a",
    cgroup: "/kubepods.slice/late",
    ready: true,
  },
});

const dir = mkdtempSync(join(tmpdir(), "nm-cni-pending-"));
const socket = join(dir, "cni.sock");
const ca = createTestCa();
const config = (version: string, o: Partial<MeshConfig>): MeshConfig => ({
  ...baseConfig(version, [ca.certPem]),
  ...o,
});
const source = new StaticConfigSource(config("1", { workloads: [], pendingWorkloads: [pendingPod] }));
const dp = new RecordingDatapath({ hbonePort: 0 });
const log = pino({ level: "silent" });
let agent: Agent;
let server: CniServer;

/** The plugin as the runtime runs it, for this file's pod (default/late). */
const add = (uid: string, address: string, enrollTimeoutMs: number) =>
  cniAdd({
    socket,
    netns: NETNS,
    address,
    pod: { uid, namespace: "default", name: "late" },
    enrollTimeoutMs,
  });

beforeAll(async () => {
  agent = hintOnlyAgent({
    datapath: dp,
    configSource: source,
    signer: ca.signer({ lifetimeMs: 3600_000 }),
    log,
  });
  await agent.start();
  server = new CniServer({ socketPath: socket, pods: agent.pods, log, pollMs: 5 });
  await server.listen();
});

afterAll(async () => {
  await server.close();
  await agent.stop();
  await dp.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("CNI ADD before the pod's IP is published", () => {
  test("ADD with only the pending identity succeeds once enrolled; the published entry re-enrolls nothing", async () => {
    expect(agent.pods.whyNotEnrolled(UID)).toMatch(
      /no IP in the API yet and the CNI plugin has not sent its address/,
    );
    const out = await add(UID, "127.0.9.7", 5_000);
    expect(out.code, out.stdout).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ ips: [{ address: "127.0.9.7/24" }] });
    expect(dp.enrolls).toEqual([{ uid: "default/late", address: "127.0.9.7", netns: NETNS }]);
    // Identity from the controller's PendingWorkload, certificate issued; not an endpoint yet.
    await agent.settled();
    expect(agent.configDump()).toMatchObject({
      workloads: [
        { uid: "default/late", address: "127.0.9.7", identity: "spiffe://cluster.local/ns/default/sa/late" },
      ],
    });
    for (let i = 0; i < 200 && !agent.identities.get("spiffe://cluster.local/ns/default/sa/late"); i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(agent.identities.get("spiffe://cluster.local/ns/default/sa/late")).toBeDefined();
    expect(agent.view()?.servicePort("default/echo:80")?.endpoints).toEqual([]);

    // The kubelet publishes the IP: the ordinary entry replaces the pending one, in place.
    source.set(config("2", { workloads: [entry("127.0.9.7")], pendingWorkloads: [] }));
    await agent.settled();
    expect(dp.enrolls).toHaveLength(1);
    expect(agent.pods.whyNotEnrolled(UID, NETNS)).toBeUndefined();
    expect(
      agent
        .view()
        ?.servicePort("default/echo:80")
        ?.endpoints.map((e) => e.address),
    ).toEqual(["127.0.9.7"]);
  });

  test("a published IP that differs from the CNI result's wins", async () => {
    source.set(config("3", { workloads: [entry("127.0.9.8")], pendingWorkloads: [] }));
    await agent.settled();
    expect(dp.enrolls.at(-1)).toEqual({ uid: "default/late", address: "127.0.9.8", netns: NETNS });
    expect(agent.configDump()).toMatchObject({ workloads: [{ uid: "default/late", address: "127.0.9.8" }] });
  });

  test("fail closed: no identity for the UID arrives in time → a CNI error, not success", async () => {
    const other = "7a7a7a7a-9999-9999-9999-444444444444";
    const t0 = Date.now();
    const out = await add(other, "127.0.9.9", 300);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(out.code, out.stdout).not.toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({
      code: 100,
      msg: expect.stringMatching(
        /pod default\/late \(uid 7a7a7a7a-9999.*\) is not enrolled in the mesh: not enrolled after 300 ms: the controller knows pod default\/late with uid 7a7a7a7a-1111/,
      ),
    });
    expect(dp.enrolls.some((e) => e.address === "127.0.9.9")).toBe(false);
  });
});
