// A pod enrolled at CNI ADD before its IP is in the API, as on a real kubelet (docs/kubernetes.md):
// the controller's config has only the pod's PendingWorkload; the real plugin executable is run as
// the runtime runs it (CNI_* env, the network config with prevResult on stdin) against the agent's
// CNI socket, and succeeds once the agent has enrolled the pod with the address from prevResult.
// Then the ordinary entry (the published IP) arrives and nothing is re-enrolled; a published IP
// that differs wins. ADD for a pod no identity arrives for fails with a CNI error (fail closed).
// A pod the controller names not meshed (an UnmeshedPod) passes ADD at once and is not enrolled; one
// it has not named yet is held until it does (then passes, or is enrolled), or fails at the bound.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type {
  MeshConfig,
  PendingWorkload,
  UnmeshedPod,
  WorkloadEntry,
} from "../../../controller/api/index.ts";
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

const unmeshed = (uid: string, name: string, node = "node-a"): UnmeshedPod => ({
  ...HEADER,
  kind: "UnmeshedPod",
  metadata: { name, namespace: "default" },
  spec: { podUid: uid, node },
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
const sawHint = new Set<string>();
let server: CniServer;

/** The plugin as the runtime runs it, for pod default/<name> (this file's pod: default/late). */
const add = (uid: string, address: string, enrollTimeoutMs: number, name = "late") =>
  cniAdd({
    socket,
    netns: NETNS,
    address,
    pod: { uid, namespace: "default", name },
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
  // The agent's own PodEnrollment, with the ADDs that reached it recorded (so a test knows one is held).
  const pods = agent.pods;
  const spy = {
    ...pods,
    hintPod: (...a: Parameters<typeof pods.hintPod>) => (sawHint.add(a[0]), pods.hintPod(...a)),
  };
  server = new CniServer({ socketPath: socket, pods: spy, log, pollMs: 5 });
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

  test("a pod the controller names not meshed passes ADD at once and is not enrolled", async () => {
    const uid = "7a7a7a7a-0000-0000-0000-000000000001";
    source.set(config("4", { workloads: [entry("127.0.9.8")], unmeshedPods: [unmeshed(uid, "plain")] }));
    await agent.settled();
    const before = dp.enrolls.length;
    // A bound of a minute: only the "not meshed" answer can end ADD within the test's timeout.
    const out = await add(uid, "127.0.9.20", 60_000, "plain");
    expect(out.code, out.stdout).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ ips: [{ address: "127.0.9.20/24" }] });
    await agent.settled();
    expect(dp.enrolls).toHaveLength(before);
    expect(agent.configDump()).toMatchObject({ workloads: [{ uid: "default/late" }] });
    // Another node's UnmeshedPod opens nothing here: held, then refused at the bound.
    const other = "7a7a7a7a-0000-0000-0000-000000000002";
    source.set(
      config("5", { workloads: [entry("127.0.9.8")], unmeshedPods: [unmeshed(other, "else", "node-b")] }),
    );
    await agent.settled();
    const refused = await add(other, "127.0.9.21", 200, "else");
    expect(refused.code, refused.stdout).not.toBe(0);
    expect(JSON.parse(refused.stdout)).toMatchObject({
      code: 100,
      msg: expect.stringMatching(
        /not enrolled after 200 ms: the controller's config does not name this pod on node node-a yet/,
      ),
    });
  });

  test("a pod the controller has not named yet is held; named not meshed while ADD waits, it passes", async () => {
    const uid = "7a7a7a7a-0000-0000-0000-000000000003";
    source.set(config("6", { workloads: [entry("127.0.9.8")] }));
    await agent.settled();
    const pending = add(uid, "127.0.9.22", 60_000, "slow");
    let answered = false;
    void pending.then(() => (answered = true));
    // ADD reached the agent, which does not know the pod: it holds it (a minute's bound).
    await waitFor(() => sawHint.has(uid));
    expect(agent.pods.membership(uid)).toEqual({ state: "unknown" });
    expect(answered).toBe(false);
    source.set(config("7", { workloads: [entry("127.0.9.8")], unmeshedPods: [unmeshed(uid, "slow")] }));
    const out = await pending;
    expect(out.code, out.stdout).toBe(0);
  });

  test("a pod the controller has not named yet is held; named meshed while ADD waits, it is enrolled", async () => {
    const uid = "7a7a7a7a-0000-0000-0000-000000000004";
    const pendingAdd = add(uid, "127.0.9.23", 60_000, "joins");
    await waitFor(() => sawHint.has(uid));
    const p: PendingWorkload = {
      ...pendingPod,
      metadata: { ...meta, name: "joins", annotations: { ...meta.annotations, "nodemesh.io/pod-uid": uid } },
      spec: { ...pendingPod.spec, podUid: uid, cgroup: "/kubepods.slice/joins" },
    };
    source.set(config("8", { workloads: [entry("127.0.9.8")], pendingWorkloads: [p] }));
    const out = await pendingAdd;
    expect(out.code, out.stdout).toBe(0);
    expect(dp.enrolls.at(-1)).toEqual({ uid: "default/joins", address: "127.0.9.23", netns: NETNS });
  });
});

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}
