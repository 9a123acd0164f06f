// nodemesh-cni end to end without root: the plugin (run in-process and as the executable shim the
// runtime calls) against the agent's CniServer on a unix socket in a temp dir, with a fake agent
// whose enrolment the test controls. ADD blocks until enrolled, passes prevResult through, fails
// with CNI error JSON when the agent refuses, times out or is absent; DEL forgets; CHECK asks. A pod
// the controller names not meshed passes at once, with nothing enrolled, even without an IPv4 address.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CniServer, type PodEnrollment } from "../../../agent/node/cni-server.ts";
import type { PodMembership } from "../../../agent/node/membership.ts";
import { runPlugin } from "../../../cni/nodemesh-cni.ts";

const UID = "0b9e2c3a-1111-2222-3333-444455556666";
const NETNS = "/var/run/netns/cni-test";
const prevResult = {
  cniVersion: "1.0.0",
  interfaces: [{ name: "eth0", sandbox: NETNS }],
  ips: [{ address: "10.1.0.2/24" }],
};

class FakeAgent implements PodEnrollment {
  readonly hints = new Map<string, string>();
  readonly enrolled = new Map<string, string>();
  enrollAfterMs: number | undefined = 0;
  /** What the controller's config says of each pod; absent: nothing yet. */
  readonly named = new Map<string, PodMembership["state"]>();
  hintPod(uid: string, netns: string): void {
    this.hints.set(uid, netns);
    const after = this.enrollAfterMs;
    if (after !== undefined) setTimeout(() => this.enrolled.set(uid, netns), after);
  }
  forgetPod(uid: string): void {
    this.hints.delete(uid);
  }
  whyNotEnrolled(uid: string, netns?: string): string | undefined {
    const at = this.enrolled.get(uid);
    return at !== undefined && (netns === undefined || netns === at) ? undefined : "no workload for this pod";
  }
  membership(uid: string): PodMembership {
    const state = this.named.get(uid);
    return state === undefined || state === "unknown" ? { state: "unknown" } : { state };
  }
}

const dir = mkdtempSync(join(tmpdir(), "nm-cni-"));
const socket = join(dir, "run", "cni.sock");
const agent = new FakeAgent();
const server = new CniServer({ socketPath: socket, pods: agent, log: pino({ level: "silent" }), pollMs: 5 });
const config = (o: Record<string, unknown> = {}) =>
  JSON.stringify({
    cniVersion: "1.0.0",
    name: "k8s",
    type: "nodemesh-cni",
    agentSocket: socket,
    prevResult,
    ...o,
  });
const env = (command: string) => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: "c1",
  CNI_NETNS: NETNS,
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin",
  CNI_ARGS: `K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1;K8S_POD_UID=${UID}`,
});

beforeAll(() => server.listen());
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("nodemesh-cni against the agent's socket", () => {
  test("ADD waits for enrolment, then prints prevResult", async () => {
    agent.enrolled.clear();
    agent.enrollAfterMs = 150;
    const t0 = Date.now();
    const out = await runPlugin(env("ADD"), config());
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(out.exitCode).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual(prevResult);
    expect(agent.hints.get(UID)).toBe(NETNS);
  });

  test("CHECK confirms enrolment; DEL forgets the hint and prints nothing", async () => {
    expect(await runPlugin(env("CHECK"), config())).toEqual({ stdout: "", exitCode: 0 });
    expect(await runPlugin(env("DEL"), config())).toEqual({ stdout: "", exitCode: 0 });
    expect(agent.hints.has(UID)).toBe(false);
  });

  test("ADD fails closed with a CNI error when the pod is not enrolled in time", async () => {
    agent.enrolled.clear();
    agent.enrollAfterMs = undefined;
    const out = await runPlugin(env("ADD"), config({ enrollTimeoutMs: 100 }));
    expect(out.exitCode).toBe(1);
    const err = JSON.parse(out.stdout) as Record<string, unknown>;
    expect(err).toMatchObject({ cniVersion: "1.0.0", code: 100 });
    expect(err["msg"]).toMatch(
      /pod shop\/web-1 \(uid .*\) is not enrolled in the mesh: not enrolled after 100 ms: no workload/,
    );
    const check = await runPlugin(env("CHECK"), config());
    expect(check.exitCode).toBe(1);
  });

  test("ADD fails with code 11 (try again later) when no agent listens; DEL still succeeds", async () => {
    const gone = config({ agentSocket: join(dir, "absent.sock") });
    const out = await runPlugin(env("ADD"), gone);
    expect(out.exitCode).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({
      code: 11,
      msg: expect.stringMatching(/cannot reach the nodemesh agent .*ENOENT/),
    });
    expect(await runPlugin(env("DEL"), gone)).toEqual({ stdout: "", exitCode: 0 });
  });

  test("excluded namespaces pass straight through without asking the agent", async () => {
    const e = {
      ...env("ADD"),
      CNI_ARGS: `K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=dns;K8S_POD_UID=${UID}`,
    };
    const out = await runPlugin(e, config({ agentSocket: join(dir, "absent.sock") }));
    expect(out.exitCode).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual(prevResult);
  });

  test("a pod the controller names not meshed passes ADD and CHECK at once, nothing enrolled, IPv4 or not", async () => {
    agent.enrolled.clear();
    agent.enrollAfterMs = undefined;
    agent.named.set(UID, "unmeshed");
    try {
      // The bound is far away: only the "not meshed" answer can end the wait this fast (no timing asserted).
      const out = await runPlugin(env("ADD"), config({ enrollTimeoutMs: 60_000 }));
      expect(out).toEqual({ stdout: `${JSON.stringify(prevResult)}\n`, exitCode: 0 });
      expect(agent.enrolled.has(UID)).toBe(false);
      expect(await runPlugin(env("CHECK"), config())).toEqual({ stdout: "", exitCode: 0 });
      const v6 = { ...prevResult, ips: [{ address: "fd00::5/64", interface: 0 }] };
      const out6 = await runPlugin(env("ADD"), config({ prevResult: v6, enrollTimeoutMs: 60_000 }));
      expect(out6.exitCode, out6.stdout).toBe(0);
      expect(JSON.parse(out6.stdout)).toEqual(v6);
    } finally {
      agent.named.delete(UID);
    }
  });

  test("a pod the controller has not named is held; at the bound ADD fails with the reason", async () => {
    agent.enrolled.clear();
    agent.enrollAfterMs = undefined;
    const out = await runPlugin(env("ADD"), config({ enrollTimeoutMs: 100 }));
    expect(out.exitCode).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({
      code: 100,
      msg: expect.stringMatching(/not enrolled after 100 ms/),
    });
    // Named later, while ADD waits: it then passes.
    setTimeout(() => agent.named.set(UID, "unmeshed"), 50);
    try {
      const late = await runPlugin(env("ADD"), config({ enrollTimeoutMs: 60_000 }));
      expect(late.exitCode, late.stdout).toBe(0);
    } finally {
      agent.named.delete(UID);
    }
  });

  test("a meshed pod without an IPv4 address fails with the address problem, the agent's reason in details", async () => {
    agent.enrolled.clear();
    agent.enrollAfterMs = undefined;
    agent.named.set(UID, "meshed");
    try {
      const v6 = { ...prevResult, ips: [{ address: "fd00::5/64", interface: 0 }] };
      const out = await runPlugin(env("ADD"), config({ prevResult: v6, enrollTimeoutMs: 100 }));
      expect(out.exitCode).toBe(1);
      expect(JSON.parse(out.stdout)).toMatchObject({
        code: 7,
        msg: expect.stringMatching(/pod shop\/web-1 .* cannot be enrolled in the mesh: .*no IPv4 address/),
        details: expect.stringMatching(/not enrolled after 100 ms: no workload/),
      });
    } finally {
      agent.named.delete(UID);
    }
  });

  test("VERSION lists the supported versions", async () => {
    const out = await runPlugin({ CNI_COMMAND: "VERSION" }, '{"cniVersion":"1.1.0"}');
    expect(JSON.parse(out.stdout)).toEqual({
      cniVersion: "1.1.0",
      supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    });
  });

  test("the executable shim runs the plugin as a runtime does (env + stdin → stdout, exit code)", async () => {
    agent.enrollAfterMs = 0;
    const shim = join(import.meta.dirname, "../../../cni/nodemesh-cni");
    const run = (command: string, stdin: string) =>
      new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
        const p = spawn(shim, [], { env: { ...env(command), NODEMESH_CNI_NODE: process.execPath } });
        let stdout = "";
        p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        p.on("error", reject);
        p.on("close", (code) => resolve({ code, stdout }));
        p.stdin.end(stdin);
      });
    const add = await run("ADD", config());
    expect(add.code, add.stdout).toBe(0);
    expect(JSON.parse(add.stdout)).toEqual(prevResult);
    const bad = await run("ADD", "{not json");
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ code: 6, msg: expect.stringMatching(/not JSON/) });
  });
});
