// Controller + two agent clients over the real TLS config stream (127.0.0.1, random ports):
// snapshot, delta on file change, ACK, reconnect and resume, controller restart with agents keeping
// their config, an invalid edit that changes nothing, and CSR signing on the same endpoint.
import { writeFileSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { generateKeyAndCsr } from "../../../agent/identity/csr.ts";
import { ControlError } from "../../../agent/control/client.ts";
import type { ConfigChange, ControllerClient } from "../../../agent/control/client.ts";
import { BASE_CONFIG, Harness, until, waitForConfig, workloadYaml } from "./harness.ts";

describe("controller config stream", () => {
  const h = new Harness();
  let a: ControllerClient;
  let b: ControllerClient;
  const changesA: ConfigChange[] = [];

  beforeAll(async () => {
    await h.startController();
    a = h.client("node-a");
    b = h.client("node-b");
    a.onConfig((_c, change) => changesA.push(change));
    a.start();
    b.start();
  });
  afterAll(() => h.close());

  test("each agent receives a snapshot of what its node needs", async () => {
    const ca = await waitForConfig(a, () => true);
    const cb = await waitForConfig(b, () => true);
    expect(ca.version).toBe(h.app?.hub.current?.id);
    expect(cb.version).toBe(ca.version);
    expect(ca.services.map((s) => s.metadata.name)).toEqual(["web"]);
    expect(ca.workloads.map((w) => w.metadata.name).sort()).toEqual(["db", "web"]);
    expect(ca.trustDomain).toBe("cluster.local");
    expect(ca.trustBundle).toEqual(h.app?.ca.trustBundle);
    // The policy selects app=db, which only runs on node-b.
    expect(ca.authorizationPolicies).toEqual([]);
    expect(cb.authorizationPolicies.map((p) => p.metadata.name)).toEqual(["db-readers"]);
    expect(changesA[0]).toEqual({ version: ca.version, full: true });
    expect(a.connected).toBe(true);
    expect(Object.isFrozen(ca)).toBe(true);
  });

  test("agents acknowledge the version they hold", async () => {
    const v = h.app?.hub.current?.id;
    await until(
      () =>
        (h.app?.stream.sessions() ?? []).every((s) => s.ackedVersion === v) &&
        h.app?.stream.sessions().length === 2,
    );
    const text = await h.metrics();
    expect(text).toMatch(/nodemesh_controller_connected_agents 2/);
    expect(text).toMatch(/nodemesh_controller_acks_total\{result="ack"\} [2-9]/);
    expect(text).toMatch(/nodemesh_controller_pushes_total\{type="snapshot"\} 2/);
    expect(text).toMatch(/nodemesh_controller_push_latency_seconds_count [2-9]/);
  });

  test("a file change reaches both agents as a delta", async () => {
    const before = a.config?.version;
    writeFileSync(
      h.configFile,
      `${BASE_CONFIG}---\n${workloadYaml("web-2", "10.1.0.4", "node-a", ", tier: x")}`,
    );
    const ca = await waitForConfig(a, (c) => c.workloads.length === 3);
    const cb = await waitForConfig(b, (c) => c.workloads.length === 3);
    expect(ca.version).not.toBe(before);
    expect(cb.version).toBe(ca.version);
    expect(changesA.at(-1)).toEqual({ version: ca.version, full: false });
    expect(ca.workloads.find((w) => w.metadata.name === "web-2")?.spec.labels).toEqual({
      app: "web-2",
      tier: "x",
    });
  });

  test("an invalid edit is rejected as a whole and changes nothing for the agents", async () => {
    const held = a.config;
    const bad = `${BASE_CONFIG}---\n${workloadYaml("evil", "10.1.0.2", "node-a")}---\napiVersion: nodemesh.io/v1alpha1\nkind: Service\nmetadata: {name: x, namespace: shop}\nspec: {addresses: [10.96.0.300], ports: [{port: 80}]}\n`;
    writeFileSync(h.configFile, bad);
    // The watcher picks the edit up and rejects it.
    for (let i = 0; i < 100; i++) {
      if (/nodemesh_controller_config_reloads_total\{result="rejected"\} [1-9]/.test(await h.metrics()))
        break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await h.metrics()).toMatch(/nodemesh_controller_config_reloads_total\{result="rejected"\} [1-9]/);
    const result = h.app?.reload();
    expect(result?.accepted).toBe(false);
    expect(result?.errors).toEqual([
      `${h.configFile}: document 6 (Service shop/x): spec.addresses[0]: must be an IPv4 address (a.b.c.d)`,
    ]);
    await new Promise((r) => setTimeout(r, 200));
    expect(a.config).toBe(held);
    expect(b.config?.version).toBe(held?.version);
    expect(h.app?.hub.current?.id).toBe(held?.version);
    // Fix the syntax error but keep the address conflict: still rejected, naming both documents.
    writeFileSync(h.configFile, `${BASE_CONFIG}---\n${workloadYaml("evil", "10.1.0.2", "node-a")}`);
    const r2 = h.app?.reload();
    expect(r2?.errors).toEqual([
      `${h.configFile}: document 5 (WorkloadEntry shop/evil): spec.address: address 10.1.0.2 is already claimed by WorkloadEntry shop/web (${h.configFile} document 2)`,
    ]);
    expect(a.config).toBe(held);
  });

  test("an agent that reconnects resumes from its version with a delta", async () => {
    await a.stop();
    expect(a.connected).toBe(false);
    writeFileSync(h.configFile, BASE_CONFIG); // web-2 removed while a is away
    await waitForConfig(b, (c) => c.workloads.length === 2);
    const n = changesA.length;
    a.start();
    const ca = await waitForConfig(a, (c) => c.workloads.length === 2);
    expect(ca.version).toBe(b.config?.version);
    expect(changesA.slice(n)).toEqual([{ version: ca.version, full: false }]);
  });

  test("agents keep their config while the controller restarts, then resync", async () => {
    const held = a.config;
    const port = h.port;
    await h.app?.stop();
    await until(() => !a.connected && !b.connected);
    expect(a.config).toBe(held);
    await new Promise((r) => setTimeout(r, 300));
    expect(a.config).toBe(held);
    const n = changesA.length;
    await h.startController(port); // same CA dir: same root, so the agents trust it
    const ca = await waitForConfig(a, (c) => c.version !== held?.version);
    await waitForConfig(b, (c) => c.version === ca.version);
    expect(ca.version).toBe(h.app?.hub.current?.id);
    expect(changesA.slice(n)).toEqual([{ version: ca.version, full: true }]);
    expect(ca.workloads).toEqual(held?.workloads);
  });

  test("CSRs are signed on the same endpoint, only for identities on the caller's node", async () => {
    const web = "spiffe://cluster.local/ns/shop/sa/web";
    const { csrPem } = await generateKeyAndCsr(web);
    const signed = await a.signCsr(csrPem, web);
    const cert = new X509Certificate(signed.certChain[0] ?? "");
    expect(cert.subjectAltName).toBe(`URI:${web}`);
    expect(signed.trustBundle).toEqual(h.app?.ca.trustBundle);
    const err = await b.signCsr(csrPem, web).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ControlError);
    expect((err as ControlError).status).toBe(403);
    expect((err as ControlError).reason).toBe("identity_not_on_node");
    const intruder = h.client("node-a", "not-a-valid-token-000000");
    const err2 = await intruder.signCsr(csrPem, web).catch((e: unknown) => e);
    expect((err2 as ControlError).reason).toBe("unknown_token");
    const text = await h.metrics();
    expect(text).toMatch(/nodemesh_controller_csr_signed_total 1/);
    expect(text).toMatch(/nodemesh_controller_csr_rejected_total\{reason="identity_not_on_node"\} 1/);
    expect(text).toMatch(/nodemesh_controller_csr_rejected_total\{reason="unknown_token"\} 1/);
  });

  test("health and readiness", async () => {
    const base = `http://127.0.0.1:${h.app?.monitoringAddress?.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.text()).toContain(h.app?.hub.current?.id ?? "?");
  });
});
