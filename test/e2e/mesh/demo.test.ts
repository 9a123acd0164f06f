// The README's first command, run the way a new user runs it (with a short --duration): the demo
// mesh comes up, its clients are served, the external client enters through the ingress, the live
// DENY takes effect, and the bad canary of `checkout` is contained — the client keeps succeeding
// while the calling agent's metrics show retries and an opened circuit breaker — and everything
// the demo built is removed afterwards.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { netnsName, NETNS_DIR } from "../../../lab/plan.ts";
import { requireRoot } from "../../helpers/privileges.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const NAME = "dmtest";

function runDemo(seconds: number): Promise<{ code: number | null; out: string }> {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      [join(ROOT, "bin/nodemesh.js"), "demo", "--duration", String(seconds), "--name", NAME],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (out += b.toString()));
    child.on("error", fail);
    child.on("exit", (code) => done({ code, out }));
  });
}

interface Window {
  ok: number;
  failed: number;
  backends: Record<string, number>;
}

function windowsOf(out: string, client: string): Window[] {
  const re = new RegExp(
    `${client.replace(/[()]/g, "\\$&")}: ok (\\d+) failed (\\d+)  backends (\\S.*?)  p50`,
    "g",
  );
  return [...out.matchAll(re)].map((m) => ({
    ok: Number(m[1]),
    failed: Number(m[2]),
    backends: Object.fromEntries(
      (m[3] === "-" ? [] : (m[3] ?? "").split(" ")).map((kv) => {
        const [k = "", v = "0"] = kv.split("=");
        return [k, Number(v)];
      }),
    ),
  }));
}

describe("nodemesh demo", () => {
  it("serves its clients, denies legacy live, admits the external client and contains the bad canary", async () => {
    requireRoot("the demo");
    const { code, out } = await runDemo(26);
    expect(code, out).toBe(0);
    expect(out).toContain("clean.");
    const tail = out.slice(-4000);

    const checkout = windowsOf(out, "n1p1 http checkout (bad canary)");
    expect(checkout.length, out).toBeGreaterThanOrEqual(8);
    const ok = checkout.reduce((n, w) => n + w.ok, 0);
    const failed = checkout.reduce((n, w) => n + w.failed, 0);
    // Half of the canary's answers are 503; retried on the other pod, the client sees none of them.
    expect(ok, tail).toBeGreaterThan(200);
    expect(failed, tail).toBe(0);
    // Once the breaker is open the canary gets a probe now and then, not its round-robin half.
    const later = checkout.slice(2);
    const canary = later.reduce((n, w) => n + (w.backends["n2p2"] ?? 0), 0);
    const healthy = later.reduce((n, w) => n + (w.backends["n1p2"] ?? 0), 0);
    expect(canary * 10, tail).toBeLessThan(healthy);
    const evidence = [...out.matchAll(/(\d+) retries so far, breaker opened (\d+) times/g)].at(-1);
    expect(Number(evidence?.[1]), tail).toBeGreaterThan(0);
    expect(Number(evidence?.[2]), tail).toBeGreaterThanOrEqual(1);

    const web = windowsOf(out, "n1p1 http web (90/10)");
    expect(
      web.reduce((n, w) => n + w.failed, 0),
      tail,
    ).toBe(0);
    expect(out).toMatch(
      /external client \(outside\) → https:\/\/shop\.example\.com\/ via the ingress on n1: 200 from n[12]p2/,
    );
    // legacy is served before the DENY and refused after it.
    const legacy = windowsOf(out, "n2p1 tcp echo");
    expect(legacy[0]?.ok, tail).toBeGreaterThan(0);
    expect(legacy.at(-1)?.ok, tail).toBe(0);
    expect(out).toContain("denied by DENY policy default/deny-legacy");
    expect(existsSync(`${NETNS_DIR}/${netnsName(NAME, "n1")}`)).toBe(false);
  }, 150_000);
});
