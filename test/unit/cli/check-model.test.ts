// `nodemesh check` decisions: each check's ok / warn / fail from its facts, with a hint when not ok.
import { describe, expect, it } from "vitest";
import {
  btfCheck,
  certificatesCheck,
  clockCheck,
  controllerCheck,
  controllerFromAgent,
  featureCheck,
  humanDuration,
  kernelCheck,
  mountChecks,
  pinsCheck,
  portsCheck,
  readyCheck,
} from "../../../cli/check-model.ts";

const NOW = Date.parse("2026-01-01T12:00:00Z");

describe("check model", () => {
  it.each([
    ["6.1.0-13-amd64", "ok"],
    ["5.15.0", "ok"],
    ["5.10.0", "fail"],
    ["garbage", "fail"],
  ])("kernel %s: %s", (release, status) => expect(kernelCheck(release).status).toBe(status));

  it("mounts: cgroup2 and bpffs from /proc/mounts, each with a fix when missing", () => {
    const good = "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\nbpf /sys/fs/bpf bpf rw 0 0\n";
    expect(mountChecks(good).map((c) => c.status)).toEqual(["ok", "ok"]);
    const bad = mountChecks("proc /proc proc rw 0 0\n");
    expect(bad.map((c) => c.status)).toEqual(["fail", "fail"]);
    expect(bad[0]?.hint).toMatch(/mount -t cgroup2/);
    expect(bad[1]?.hint).toMatch(/mount -t bpf bpf \/sys\/fs\/bpf/);
  });

  it("btf, features, pins, readiness and ports", () => {
    expect(btfCheck(false)).toMatchObject({
      status: "fail",
      hint: expect.stringMatching(/CONFIG_DEBUG_INFO_BTF/),
    });
    expect(featureCheck([])).toMatchObject({ status: "ok" });
    expect(featureCheck([{ feature: "CAP_BPF", hint: "run as root" }])).toMatchObject({
      status: "fail",
      detail: "missing CAP_BPF",
      hint: "run as root",
    });
    expect(featureCheck("cannot load the native addon: x").hint).toMatch(/bootstrap/);
    expect(pinsCheck("n1", "/sys/fs/bpf/x", undefined)).toMatchObject({
      status: "fail",
      detail: "/sys/fs/bpf/x does not exist",
    });
    expect(pinsCheck("n1", "/sys/fs/bpf/x", ["connect4", "maps"]).status).toBe("ok");
    expect(readyCheck("n1", { status: 503, body: "not ready: waiting for config\n" })).toMatchObject({
      status: "fail",
      detail: "not ready: waiting for config",
    });
    expect(readyCheck("n1", "connection refused").hint).toMatch(/--agent/);
    expect(portsCheck("n1", { 15020: 200, 15021: "refused" })).toMatchObject({
      status: "fail",
      detail: "15020: 200, 15021: unreachable",
    });
  });

  it("controller: the agent has its config; the controller is ready and holds the agents", () => {
    expect(controllerFromAgent("n1", { version: "7", pending: [] }).status).toBe("ok");
    expect(controllerFromAgent("n1", { pending: ["config"] })).toMatchObject({
      status: "fail",
      hint: expect.stringMatching(/15012/),
    });
    expect(controllerCheck({ status: 200, body: "ok" }, 2, 2).status).toBe("ok");
    expect(controllerCheck({ status: 200, body: "ok" }, 1, 2).status).toBe("warn");
    expect(controllerCheck({ status: 503, body: "leader?" }, 2, 2).status).toBe("fail");
    expect(controllerCheck("refused", undefined, 2).status).toBe("fail");
  });

  it("certificates: missing or expired fail, rotation overdue warns", () => {
    const iso = (ms: number) => new Date(NOW + ms).toISOString();
    const h = 3_600_000;
    expect(
      certificatesCheck("n1", [{ spiffeId: "a", notBefore: iso(-h), notAfter: iso(23 * h) }], NOW),
    ).toMatchObject({ status: "ok", detail: "1 certificate(s), the next expires in 23h" });
    expect(
      certificatesCheck("n1", [{ spiffeId: "a", notBefore: iso(-20 * h), notAfter: iso(4 * h) }], NOW).status,
    ).toBe("warn");
    expect(
      certificatesCheck("n1", [{ spiffeId: "a", notBefore: iso(-2 * h), notAfter: iso(-h) }], NOW).status,
    ).toBe("fail");
    expect(certificatesCheck("n1", [{ spiffeId: "a", lastError: "csr refused" }], NOW).detail).toMatch(
      /a: no certificate \(csr refused\)/,
    );
    expect(certificatesCheck("n1", [], NOW).status).toBe("ok");
  });

  it("clock: the Date header within 5 s", () => {
    expect(clockCheck("n1", new Date(NOW + 2000).toUTCString(), NOW)).toMatchObject({
      status: "ok",
      detail: "skew +2 s",
    });
    expect(clockCheck("n1", new Date(NOW - 60_000).toUTCString(), NOW)).toMatchObject({
      status: "fail",
      hint: expect.stringMatching(/NTP/),
    });
    expect(clockCheck("n1", undefined, NOW).status).toBe("warn");
  });

  it("humanDuration", () => {
    expect([90_000, 600_000, 36_000_000, 864_000_000].map(humanDuration)).toEqual([
      "90s",
      "10m",
      "10h",
      "10d",
    ]);
  });
});
