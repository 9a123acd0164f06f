// Agents authenticated by TokenReview against a real API server (etcd + kube-apiserver 1.20, see
// cluster.ts), through the controller's agent endpoint as the chart runs it (`--node-auth
// tokenreview`, no bootstrap tokens): an agent whose token file holds its pod-bound projected token
// receives its node's config and certificates for its node's pods only; another node's name, a
// wrong audience and another ServiceAccount are refused with the 401/403 answers and metrics of
// bootstrap tokens; the agent re-reads the file on reconnect, so a rotated token takes effect.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ControlError, ControllerClient } from "../../../agent/control/client.ts";
import { generateKeyAndCsr } from "../../../agent/identity/csr.ts";
import { ControllerApp } from "../../../controller/app.ts";
import { KubeSource } from "../../../controller/sources/kube/source.ts";
import { TokenReviewAuthenticator } from "../../../controller/sources/kube/token-review.ts";
import { silent, until, waitForConfig } from "../controller/harness.ts";
import { KubeCluster } from "./cluster.ts";

const cluster = new KubeCluster();
const dir = mkdtempSync(join(tmpdir(), "nodemesh-kube-auth-"));
const NS = "nodemesh-system";
const SA = "nodemesh-agent";
const tokenFile = join(dir, "token");
const clients: ControllerClient[] = [];
let app: ControllerApp | undefined;
let port = 0;

async function startController(listenPort = 0): Promise<ControllerApp> {
  const source = new KubeSource({
    kubeConfig: cluster.kubeConfig(),
    log: silent,
    instance: "test",
    debounceMs: 20,
    backoffMs: { initial: 100, max: 1000 },
  });
  const reviewer = new TokenReviewAuthenticator({
    kubeConfig: cluster.kubeConfig(),
    agentServiceAccount: `${NS}/${SA}`,
    negativeCacheMs: 0,
  });
  const a = new ControllerApp({
    source,
    listen: { host: "127.0.0.1", port: listenPort },
    monitoring: undefined,
    ca: { dir: join(dir, "ca") },
    trustDomain: "cluster.local",
    rootNamespace: NS,
    svidTtlMs: 60_000,
    nodeTokens: new Map(),
    nodeAuthenticator: (t) => reviewer.authenticate(t),
    serverNames: { dns: ["localhost"], ips: ["127.0.0.1"] },
    heartbeatMs: 500,
    log: silent,
    defaultMetrics: false,
  });
  await a.start();
  return a;
}

function client(node: string, auth: { token: string } | { tokenFile: string }): ControllerClient {
  const c = new ControllerClient({
    address: `127.0.0.1:${port}`,
    node,
    ...auth,
    trustBundle: app?.ca.trustBundle ?? [],
    log: silent,
    backoffMinMs: 50,
    backoffMaxMs: 200,
    idleTimeoutMs: 2000,
  });
  clients.push(c);
  return c;
}

/** A projected-style token: audience nodemesh, bound to the pod, as the DaemonSet's volume has it. */
async function token(sa: string, pod: string, audience = "nodemesh"): Promise<string> {
  const args = ["-n", NS, "create", "token", sa, "--duration=10m", `--audience=${audience}`];
  return (await cluster.kubectl([...args, "--bound-object-kind=Pod", `--bound-object-name=${pod}`])).trim();
}

const yaml = (docs: string[]) => docs.join("---\n");
const pod = (ns: string, name: string, node: string, sa: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: {app: ${sa}}}
spec: {nodeName: ${node}, serviceAccountName: ${sa}, containers: [{name: c, image: example.invalid/c}]}
`;

async function markReady(name: string, ip: string): Promise<void> {
  const status = {
    phase: "Running",
    podIP: ip,
    podIPs: [{ ip }],
    conditions: [{ type: "Ready", status: "True" }],
  };
  const patch = ["-n", "shop", "patch", "pod", name, "--subresource=status", "--type=merge"];
  await cluster.kubectl([...patch, "-p", JSON.stringify({ status })]);
}

async function refusal(c: ControllerClient, identity: string): Promise<ControlError> {
  const { csrPem } = await generateKeyAndCsr(identity);
  const err = await c.signCsr(csrPem, identity).catch((e: unknown) => e);
  if (!(err instanceof ControlError)) throw new Error(`expected a refusal, got ${String(err)}`);
  return err;
}

const WEB = "spiffe://cluster.local/ns/shop/sa/web";
const DB = "spiffe://cluster.local/ns/shop/sa/db";

describe("agent authentication by TokenReview", () => {
  beforeAll(async () => {
    await cluster.start();
    await cluster.kubectl(["create", "namespace", NS]);
    await cluster.kubectl(["create", "namespace", "shop"]);
    await cluster.kubectl(["label", "namespace", "shop", "nodemesh.io/mesh=enabled"]);
    for (const sa of [SA, "intruder"]) await cluster.kubectl(["-n", NS, "create", "serviceaccount", sa]);
    await cluster.kubectl(
      ["apply", "-f", "-"],
      yaml([
        pod(NS, "agent-a", "node-a", SA),
        pod(NS, "agent-b", "node-b", SA),
        pod(NS, "other", "node-a", "intruder"),
        pod("shop", "web-a", "node-a", "web"),
        pod("shop", "db-b", "node-b", "db"),
      ]),
    );
    await markReady("web-a", "10.244.1.10");
    await markReady("db-b", "10.244.2.10");
    app = await startController();
    port = app.streamAddress?.port ?? 0;
  }, 600_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await app?.stop();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("an agent with its pod-bound token gets its node's config and certificates for its pods only", async () => {
    writeFileSync(tokenFile, `${await token(SA, "agent-a")}\n`);
    const a = client("node-a", { tokenFile });
    a.start();
    const cfg = await waitForConfig(a, (c) => c.workloads.length === 2, 15_000);
    expect(cfg.workloads.map((w) => `${w.metadata.name}@${w.spec.node}`).sort()).toEqual([
      "db-b@node-b",
      "web-a@node-a",
    ]);
    const { csrPem } = await generateKeyAndCsr(WEB);
    expect((await a.signCsr(csrPem, WEB)).certChain.length).toBeGreaterThan(0);
    // db runs only on node-b: node-a's agent cannot get its identity.
    expect(await refusal(a, DB)).toMatchObject({ status: 403, reason: "identity_not_on_node" });
    const b = client("node-b", { token: await token(SA, "agent-b") });
    const { csrPem: dbCsr } = await generateKeyAndCsr(DB);
    expect((await b.signCsr(dbCsr, DB)).certChain.length).toBeGreaterThan(0);
  });

  test("another node's name, a wrong audience and another ServiceAccount are refused", async () => {
    const before = await app?.metrics.csrRejected.get();
    const rejected = () => before?.values.find((v) => v.labels.reason === "unknown_token")?.value ?? 0;
    const start = rejected();
    const claimsB = client("node-b", { token: await token(SA, "agent-a") });
    expect(await refusal(claimsB, WEB)).toMatchObject({ status: 403, reason: "node_mismatch" });
    const audience = client("node-a", { token: await token(SA, "agent-a", "other") });
    expect(await refusal(audience, WEB)).toMatchObject({ status: 401, reason: "token_rejected" });
    const intruder = client("node-a", { token: await token("intruder", "other") });
    expect(await refusal(intruder, WEB)).toMatchObject({ status: 401, reason: "not_an_agent" });
    const after = await app?.metrics.csrRejected.get();
    expect(after?.values.find((v) => v.labels.reason === "unknown_token")?.value).toBe(start + 2);
  });

  test("the token file is re-read on reconnect: a rotated token takes effect", async () => {
    const a = client("node-a", { tokenFile });
    a.start();
    await until(() => a.connected, 10_000);
    // Rotate to a token that is not an agent's, restart the controller: the reconnect is refused.
    writeFileSync(tokenFile, await token("intruder", "other"));
    await app?.stop();
    app = await startController(port);
    await new Promise((r) => setTimeout(r, 1000));
    expect(a.connected).toBe(false);
    // The controller closes a refused session: a CSR sent while the client is between sessions fails
    // at the transport (status 0) before it can be judged, so ask again until an answer comes.
    let refused = await refusal(a, WEB);
    for (let i = 0; i < 40 && refused.status === 0; i++) {
      await new Promise((r) => setTimeout(r, 250));
      refused = await refusal(a, WEB);
    }
    expect(refused).toMatchObject({ status: 401, reason: "not_an_agent" });
    // A fresh agent token: the next reconnect is accepted.
    writeFileSync(tokenFile, await token(SA, "agent-a"));
    await until(() => a.connected, 10_000);
    await waitForConfig(a, (c) => c.workloads.length === 2, 10_000);
  });
});
