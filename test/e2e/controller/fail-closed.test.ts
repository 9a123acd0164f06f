// A running controller and two agents over the real TLS stream; the config file is broken in the
// ways a real operator or tool breaks it: emptied, truncated and left so, written in two pieces by a
// writer that does not rename, cut at a document boundary so that every workload goes. Each time
// the agents must keep the config they hold (the same object: nothing was pushed), the rejection
// is counted by reason and logged with the file; a forced reload (what SIGHUP does) applies an
// intended emptying, and so does a real SIGHUP to a controller process.
import { closeSync, openSync, writeFileSync, writeSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ControllerClient } from "../../../agent/control/client.ts";
import type { MeshConfig } from "../../../controller/api/index.ts";
import { ChildController } from "./child.ts";
import { BASE_CONFIG, Harness, waitForConfig, workloadYaml } from "./harness.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SETTLE_MS = 300;
const WITH_C = `${BASE_CONFIG}---\n${workloadYaml("cache", "10.1.0.5", "node-a")}`;

describe("the controller fails closed on a broken config file", () => {
  const h = new Harness();
  let a: ControllerClient;
  let b: ControllerClient;
  /** Every config agent a was given, in order. */
  const seenByA: MeshConfig[] = [];

  const rejections = (reason: string) => h.metric("nodemesh_controller_config_rejections_total", { reason });
  /** Writes `content`, waits for one more rejection of `reason`, and checks nobody moved. */
  async function expectRejected(content: string, reason: string): Promise<void> {
    const heldA = a.config;
    const heldB = b.config;
    const version = h.app?.hub.current?.id;
    const before = await rejections(reason);
    writeFileSync(h.configFile, content);
    for (let i = 0; i < 200 && (await rejections(reason)) === before; i++) await sleep(10);
    expect(await rejections(reason)).toBe(before + 1);
    await sleep(100); // anything pushed would have arrived by now
    expect(a.config).toBe(heldA);
    expect(b.config).toBe(heldB);
    expect(h.app?.hub.current?.id).toBe(version);
    expect(await h.metric("nodemesh_controller_config_last_reload_successful")).toBe(0);
  }

  beforeAll(async () => {
    await h.startController(0, { settleMs: SETTLE_MS });
    a = h.client("node-a");
    b = h.client("node-b");
    a.on("config", (c: MeshConfig) => seenByA.push(c));
    a.start();
    b.start();
    await waitForConfig(a, (c) => c.workloads.length === 2);
    await waitForConfig(b, (c) => c.workloads.length === 2);
  });
  afterAll(() => h.close());

  test("an empty file and a whitespace-only file are refused; the agents keep their config", async () => {
    await expectRejected("", "empty_file");
    await expectRejected("\n   \n\t\n", "empty_file");
    expect(a.config?.workloads.map((w) => w.metadata.name).sort()).toEqual(["db", "web"]);
    expect(a.config?.authorizationPolicies).toEqual([]);
    expect(b.config?.authorizationPolicies.map((p) => p.metadata.name)).toEqual(["db-readers"]);
    const r = h.app?.reload();
    expect(r).toMatchObject({ accepted: false, reason: "empty_file" });
    expect(r?.errors[0]).toMatch(new RegExp(`^${h.configFile}: document 0: is empty; a truncated file`));
  });

  test("a file truncated mid-document and left so is refused as invalid", async () => {
    const cut = BASE_CONFIG.slice(0, Math.floor(BASE_CONFIG.length * 0.6));
    await expectRejected(cut, "invalid");
  });

  test("a cut at a document boundary that drops every workload is held back", async () => {
    const serviceOnly = BASE_CONFIG.split("---\n")[0] as string;
    await expectRejected(serviceOnly, "mass_removal");
    const r = h.app?.reload();
    expect(r?.reason).toBe("mass_removal");
    expect(r?.errors).toEqual([
      "configuration held back: it removes 3 of 4 resources (2 WorkloadEntry, 1 AuthorizationPolicy) and " +
        "every WorkloadEntry (2) would leave the mesh; still serving the last good one. If the removal " +
        "is intended, send SIGHUP to the controller to apply it",
    ]);
  });

  test("a non-atomic write with a pause inside is applied once, whole, never half", async () => {
    writeFileSync(h.configFile, BASE_CONFIG); // back to what the agents hold: an unchanged reload
    await sleep(SETTLE_MS * 2);
    const invalidBefore = await rejections("invalid");
    const n = seenByA.length;
    const fd = openSync(h.configFile, "w");
    const cutAt = WITH_C.length - 60; // inside the new workload's document
    writeSync(fd, WITH_C.slice(0, cutAt));
    await sleep(SETTLE_MS / 5);
    writeSync(fd, WITH_C.slice(cutAt));
    closeSync(fd);
    const got = await waitForConfig(a, (c) => c.workloads.length === 3);
    await waitForConfig(b, (c) => c.version === got.version);
    expect(seenByA.slice(n).map((c) => c.workloads.length)).toEqual([3]);
    expect(await rejections("invalid")).toBe(invalidBefore);
    expect(await h.metric("nodemesh_controller_config_last_reload_successful")).toBe(1);
  });

  test("a forced reload (SIGHUP) applies an intended emptying; the next good file restores", async () => {
    await expectRejected("", "empty_file");
    const r = h.app?.reload({ force: true });
    expect(r).toMatchObject({ accepted: true, errors: [] });
    const empty = await waitForConfig(a, (c) => c.workloads.length === 0);
    expect(empty.services).toEqual([]);
    await waitForConfig(b, (c) => c.version === empty.version);
    // From nothing served, a full config is no removal at all.
    writeFileSync(h.configFile, WITH_C);
    await waitForConfig(a, (c) => c.workloads.length === 3);
    await waitForConfig(b, (c) => c.workloads.length === 3);
  });
});

describe("the operator's SIGHUP on a running controller process", () => {
  const ctl = new ChildController();
  beforeAll(() => ctl.start());
  afterAll(() => ctl.stop());

  test("the rejection log line names the file and the reason; SIGHUP applies the emptying", async () => {
    const rejected = "nodemesh_controller_config_rejections_total";
    writeFileSync(ctl.configFile, "");
    const line = await ctl.waitForLog((l) => l.reason === "empty_file");
    expect(line).toMatchObject({ level: 50, file: ctl.configFile, reason: "empty_file" });
    expect(line.msg).toBe("configuration rejected (empty_file, 1 error); still serving the last good one");
    expect(await ctl.metric(`${rejected}{reason="empty_file"}`)).toBe(1);
    expect(await ctl.metric("nodemesh_controller_config_last_reload_successful")).toBe(0);
    ctl.signal("SIGHUP");
    await ctl.waitForLog((l) => l.msg === "configuration accepted" && l.resources === 0);
    expect(await ctl.metric("nodemesh_controller_config_last_reload_successful")).toBe(1);
    expect(await ctl.metric('nodemesh_controller_config_resources{kind="WorkloadEntry"}')).toBe(0);
  });
});
