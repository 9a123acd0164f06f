// Node addresses over the real TLS config stream (in-process controller, real agent clients, no root
// needed): each agent reports its addresses and every reporting agent gets the whole book; an address
// two live nodes claim is in neither's list; a client that never reports gets no book line and keeps its
// stream; a node that disconnects keeps its uncontested addresses, and loses a contested one to the
// live claimant.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ControllerClient } from "../../../agent/control/client.ts";
import type { NodeAddressBook } from "../../../controller/api/index.ts";
import { BASE_CONFIG, Harness, until, waitForConfig } from "./harness.ts";

describe("node addresses over the config stream", () => {
  const h = new Harness(BASE_CONFIG);
  const got: Record<string, NodeAddressBook[]> = { a: [], b: [], c: [] };
  let a: ControllerClient;
  let b: ControllerClient;
  let c: ControllerClient;
  const addresses: Record<string, string[]> = {
    a: ["10.0.0.1", "10.244.1.0", "172.17.0.1"],
    b: ["10.0.0.2", "10.244.2.0", "172.17.0.1"],
  };
  const last = (k: string) => got[k]!.at(-1)?.nodes;

  beforeAll(async () => {
    await h.startController(0);
    a = h.client("node-a");
    b = h.client("node-b");
    c = h.client("node-b"); // a second, older agent of node-b that never reports
    for (const [k, cl] of [
      ["a", a],
      ["b", b],
      ["c", c],
    ] as const)
      cl.onNodes((m) => got[k]!.push(m));
    a.reportAddresses(() => addresses.a!, 100);
    b.reportAddresses(() => addresses.b!, 100);
    for (const cl of [a, b, c]) cl.start();
    for (const cl of [a, b, c]) await waitForConfig(cl, () => true);
  });
  afterAll(async () => {
    await h.close();
  });

  test("every reporting agent gets the book; an address both claim is nobody's", async () => {
    const want = { "node-a": ["10.0.0.1", "10.244.1.0"], "node-b": ["10.0.0.2", "10.244.2.0"] };
    await until(() => JSON.stringify(last("a")) === JSON.stringify(want), 5000);
    await until(() => JSON.stringify(last("b")) === JSON.stringify(want), 5000);
    expect(h.app!.stream.nodeAddresses).toEqual(want);
  });

  test("an agent that does not report gets no book line and keeps its stream", async () => {
    await new Promise((r) => setTimeout(r, 300));
    expect(got.c).toEqual([]);
    expect(c.connected).toBe(true);
  });

  test("a change of addresses is reported by the rescan and pushed to the others", async () => {
    addresses.a = ["10.0.0.1", "10.244.1.0", "172.17.0.1", "10.0.0.101"];
    await until(() => (last("b")?.["node-a"] ?? []).includes("10.0.0.101"), 5000);
  });

  test("a gone node keeps its own addresses and loses a contested one to the live claimant", async () => {
    await a.stop();
    // Still node-a's: nobody else claims them, and a restarting agent must not lose them.
    await new Promise((r) => setTimeout(r, 300));
    expect(last("b")?.["node-a"]).toContain("10.244.1.0");
    // 172.17.0.1 was contested; with node-a gone, it is node-b's (the one live claimant).
    await until(() => (last("b")?.["node-b"] ?? []).includes("172.17.0.1"), 5000);
  });
});
