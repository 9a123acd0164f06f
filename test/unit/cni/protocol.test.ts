// The CNI side of nodemesh-cni (cni/protocol.ts): the CNI_* environment, the network config on
// stdin, results and CNI error JSON; plus the plugin↔agent wire (cni/wire.ts).
import { describe, expect, test } from "vitest";
import {
  CniError,
  DEFAULT_ENROLL_TIMEOUT_MS,
  ERR,
  addResult,
  errorResult,
  parseCniArgs,
  parseConfig,
  parseInvocation,
  podToEnroll,
} from "../../../cni/protocol.ts";
import { parseAnswer, parseRequest } from "../../../cni/wire.ts";

const UID = "0b9e2c3a-1111-2222-3333-444455556666";
const ARGS = `IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=${UID}`;
const base = {
  CNI_CONTAINERID: "abc",
  CNI_NETNS: "/var/run/netns/cni-1",
  CNI_IFNAME: "eth0",
  CNI_ARGS: ARGS,
};

function codeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    if (err instanceof CniError) return err.code;
    throw err;
  }
  throw new Error("did not throw");
}

describe("environment", () => {
  test("CNI_ARGS pairs, with = inside values kept", () => {
    expect(parseCniArgs("A=1;B=x=y;bad;;").get("B")).toBe("x=y");
    expect(parseCniArgs(undefined).size).toBe(0);
  });

  test("ADD reads the netns and the pod from CNI_ARGS", () => {
    expect(parseInvocation({ ...base, CNI_COMMAND: "ADD" })).toEqual({
      command: "ADD",
      netns: "/var/run/netns/cni-1",
      pod: { uid: UID, namespace: "shop", name: "web-1" },
    });
  });

  test("a sandbox with no K8S_POD_UID is not a Kubernetes pod", () => {
    const inv = parseInvocation({ ...base, CNI_COMMAND: "CHECK", CNI_ARGS: "IgnoreUnknown=1" });
    expect(inv).toMatchObject({ command: "CHECK", pod: undefined });
  });

  test.each([
    [{ ...base, CNI_COMMAND: "ADD", CNI_NETNS: "" }, /CNI_NETNS is not set/],
    [{ ...base, CNI_COMMAND: "ADD", CNI_NETNS: "cni-1" }, /CNI_NETNS "cni-1" must be an absolute path/],
    [{ ...base, CNI_COMMAND: "CHECK", CNI_CONTAINERID: "" }, /CNI_CONTAINERID/],
    [{ ...base, CNI_COMMAND: "GC" }, /CNI_COMMAND "GC" is not supported/],
    [{ ...base }, /CNI_COMMAND "" is not supported/],
  ])("bad environment %# → code 4 naming the variable", (env, msg) => {
    expect(() => parseInvocation(env)).toThrow(msg);
    expect(codeOf(() => parseInvocation(env))).toBe(ERR.invalidEnv);
  });

  test("DEL needs no netns (the runtime may have removed it already)", () => {
    expect(parseInvocation({ CNI_COMMAND: "DEL", CNI_ARGS: ARGS })).toMatchObject({ command: "DEL" });
  });
});

describe("network config", () => {
  const prev = { cniVersion: "1.0.0", interfaces: [{ name: "eth0" }], ips: [{ address: "10.1.0.2/24" }] };
  const conf = (o: Record<string, unknown>) =>
    JSON.stringify({ cniVersion: "1.0.0", name: "k8s", type: "nodemesh-cni", ...o });

  test("defaults, and prevResult passed through with the runtime's version", () => {
    const c = parseConfig(conf({ prevResult: prev, cniVersion: "0.4.0" }), true);
    expect(c).toMatchObject({
      agentSocket: "/var/run/nodemesh/cni.sock",
      enrollTimeoutMs: DEFAULT_ENROLL_TIMEOUT_MS,
      excludeNamespaces: ["kube-system", "nodemesh-system"],
    });
    expect(addResult(c)).toEqual({ ...prev, cniVersion: "0.4.0" });
  });

  test("options are read", () => {
    const c = parseConfig(
      conf({
        prevResult: prev,
        agentSocket: "/run/x.sock",
        enrollTimeoutMs: 250,
        excludeNamespaces: ["infra"],
      }),
      true,
    );
    expect(c).toMatchObject({
      agentSocket: "/run/x.sock",
      enrollTimeoutMs: 250,
      excludeNamespaces: ["infra"],
    });
  });

  test.each([
    ["not json", "{", ERR.decode, /not JSON/],
    ["an array", "[]", ERR.decode, /JSON object/],
    ["no version", JSON.stringify({ prevResult: prev }), ERR.invalidConfig, /cniVersion is missing/],
    [
      "old version",
      conf({ cniVersion: "0.2.0", prevResult: prev }),
      ERR.incompatibleVersion,
      /0\.2\.0 is not supported/,
    ],
    ["relative socket", conf({ prevResult: prev, agentSocket: "x.sock" }), ERR.invalidConfig, /agentSocket/],
    ["bad timeout", conf({ prevResult: prev, enrollTimeoutMs: -1 }), ERR.invalidConfig, /enrollTimeoutMs/],
    [
      "bad excludes",
      conf({ prevResult: prev, excludeNamespaces: "a" }),
      ERR.invalidConfig,
      /excludeNamespaces/,
    ],
    ["no prevResult", conf({}), ERR.invalidConfig, /chained plugin .* prevResult/],
    ["bad prevResult", conf({ prevResult: [] }), ERR.invalidConfig, /prevResult must be an object/],
  ])("%s → code %i", (_n, stdin, code, msg) => {
    expect(() => parseConfig(stdin, true)).toThrow(msg);
    expect(codeOf(() => parseConfig(stdin, true))).toBe(code);
  });

  test("CHECK and DEL may come without prevResult", () => {
    expect(parseConfig(conf({}), false).prevResult).toBeUndefined();
  });

  test("excluded namespaces and non-pods pass through", () => {
    const c = parseConfig(conf({ prevResult: prev }), true);
    expect(podToEnroll({ uid: UID, namespace: "kube-system", name: "dns" }, c)).toBeUndefined();
    expect(podToEnroll(undefined, c)).toBeUndefined();
    expect(podToEnroll({ uid: UID, namespace: "shop", name: "w" }, c)).toMatchObject({ uid: UID });
  });

  test("errors are CNI error JSON; unknown failures are I/O failures", () => {
    expect(errorResult("1.0.0", new CniError(1, "m", "d"))).toEqual({
      cniVersion: "1.0.0",
      code: 1,
      msg: "m",
      details: "d",
    });
    expect(errorResult("1.0.0", new Error("boom"))).toEqual({
      cniVersion: "1.0.0",
      code: ERR.ioFailure,
      msg: "boom",
    });
  });
});

describe("agent wire", () => {
  test("requests round-trip and bad ones name the field", () => {
    expect(parseRequest(JSON.stringify({ op: "add", podUid: UID, netns: "/n", waitMs: 5 }))).toEqual({
      op: "add",
      podUid: UID,
      netns: "/n",
      waitMs: 5,
    });
    expect(parseRequest(JSON.stringify({ op: "del", podUid: UID }))).toEqual({ op: "del", podUid: UID });
    expect(() => parseRequest("x")).toThrow(/not JSON/);
    expect(() => parseRequest(JSON.stringify({ op: "add", podUid: "../x" }))).toThrow(
      /podUid "..\/x" is not a pod UID/,
    );
    expect(() => parseRequest(JSON.stringify({ op: "zap", podUid: UID }))).toThrow(/op must be/);
    expect(() => parseRequest(JSON.stringify({ op: "add", podUid: UID, netns: "n", waitMs: 1 }))).toThrow(
      /netns/,
    );
    expect(() => parseRequest(JSON.stringify({ op: "add", podUid: UID, netns: "/n", waitMs: 1e9 }))).toThrow(
      /waitMs/,
    );
  });

  test("a malformed answer is a refusal (fail closed)", () => {
    expect(parseAnswer('{"ok":true}')).toEqual({ ok: true });
    expect(parseAnswer("garbage")).toMatchObject({ ok: false });
    expect(parseAnswer('{"ok":"yes"}')).toMatchObject({ ok: false });
    expect(parseAnswer('{"ok":false,"error":"e"}')).toEqual({ ok: false, error: "e" });
  });
});
