// Certificate rotation under traffic: SVIDs live ~3 s and rotate at half-life; connections keep flowing
// (new handshakes use the new certificate, pooled sessions are untouched) with zero failures.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Server } from "node:net";
import { echoApp, exchange, startHarness, type Harness } from "./harness.ts";

describe("certificate rotation under traffic", () => {
  let h: Harness;
  let apps: Server[];
  beforeAll(async () => {
    apps = [await echoApp("echo-a", "127.0.1.2"), await echoApp("echo-b", "127.0.2.2")];
    // idle release 300 ms: sessions are re-established (new handshakes) throughout the run
    h = await startHarness({ lifetimeMs: 3000, settings: { poolIdleMs: 300 } });
  });
  afterAll(async () => {
    await h?.stop();
    for (const a of apps ?? []) a.close();
  });

  it("rotates several times with zero failed connections", async () => {
    const certs = new Set<number>();
    const end = Date.now() + 7000;
    let ok = 0;
    let failed = 0;
    while (Date.now() < end) {
      const r = await exchange(h, "ping");
      if (r.error || !r.data.toString().endsWith("ping|bye")) failed++;
      else ok++;
      const svid = h.agents.a.identities.get("spiffe://cluster.local/ns/default/sa/client");
      if (svid) certs.add(svid.notAfter);
      if (ok % 20 === 0) await new Promise((r) => setTimeout(r, 350)); // let sessions idle out
    }
    expect(failed).toBe(0);
    expect(ok).toBeGreaterThan(50);
    expect(certs.size).toBeGreaterThanOrEqual(3);
  }, 30_000);
});
