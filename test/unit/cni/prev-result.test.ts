// The pod's address from the previous plugin's result (cni/prev-result.ts) and what ADD sends the
// agent with it; every malformed result is a CNI error that names the field (ADD fails closed).
import { describe, expect, test } from "vitest";
import { podIPv4 } from "../../../cni/prev-result.ts";
import { CniError } from "../../../cni/protocol.ts";
import { runPlugin, type Send } from "../../../cni/nodemesh-cni.ts";
import type { CniAnswer, CniRequest } from "../../../cni/wire.ts";
import { parseRequest } from "../../../cni/wire.ts";

describe("prevResult", () => {
  test("the first IPv4 on a sandbox interface, else the first IPv4; 0.3.x and 1.x shapes", () => {
    expect(podIPv4({ ips: [{ address: "10.1.0.5/24" }] })).toBe("10.1.0.5");
    expect(
      podIPv4({
        interfaces: [{ name: "veth1" }, { name: "eth0", sandbox: "/var/run/netns/x" }],
        ips: [
          { address: "fd00::5/64", interface: 1 },
          { version: "4", address: "192.168.0.1/32", interface: 0 },
          { version: "4", address: "10.244.1.7/24", interface: 1 },
        ],
      }),
    ).toBe("10.244.1.7");
    expect(
      podIPv4({ interfaces: [{ name: "cali0" }], ips: [{ address: "10.9.0.1/32", interface: 0 }] }),
    ).toBe("10.9.0.1");
  });

  test.each([
    [undefined, /there is none/],
    [{}, /prevResult.ips is missing/],
    [{ ips: [] }, /prevResult.ips is empty/],
    [{ ips: ["10.0.0.1"] }, /prevResult.ips\[0\] must be an object/],
    [
      { ips: [{ address: "10.0.0.1" }] },
      /prevResult.ips\[0\].address "10.0.0.1" is not an IP address with a prefix/,
    ],
    [{ ips: [{ address: "10.0.0.300/24" }] }, /is not an IP address/],
    [{ ips: [{ address: "fd00::1/64" }] }, /no IPv4 address \(fd00::1\); nodemesh meshes IPv4 pods only/],
  ])("%j → CNI error", (prev, message) => {
    expect(() => podIPv4(prev)).toThrow(CniError);
    expect(() => podIPv4(prev)).toThrow(message);
  });
});

describe("ADD sends the address and the pod's names; a bad result fails ADD", () => {
  const env = {
    CNI_COMMAND: "ADD",
    CNI_CONTAINERID: "c1",
    CNI_NETNS: "/var/run/netns/p",
    CNI_IFNAME: "eth0",
    CNI_ARGS:
      "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1;K8S_POD_UID=0b9e2c3a-1111-2222-3333-444455556666",
  };
  const stdin = (prevResult: unknown) =>
    JSON.stringify({ cniVersion: "1.0.0", name: "k8s", type: "nodemesh-cni", prevResult });

  test("the request carries facts, and the agent's parser accepts it", async () => {
    const sent: CniRequest[] = [];
    const send: Send = async (_s, req) => {
      sent.push(req);
      return { ok: true };
    };
    const out = await runPlugin(env, stdin({ cniVersion: "1.0.0", ips: [{ address: "10.1.0.9/24" }] }), send);
    expect(out.exitCode).toBe(0);
    expect(sent[0]).toMatchObject({
      op: "add",
      facts: { address: "10.1.0.9", namespace: "shop", name: "web-1" },
    });
    expect(parseRequest(JSON.stringify(sent[0]))).toEqual(sent[0]);
  });

  test("no IPv4 in prevResult: the agent decides; a refusal is error 7 naming the address", async () => {
    const sent: CniRequest[] = [];
    let answer: CniAnswer = { ok: true, notMeshed: true };
    const send: Send = async (_s, req) => {
      sent.push(req);
      return answer;
    };
    const v6 = stdin({ cniVersion: "1.0.0", ips: [{ address: "fd00::9/64" }] });
    // Not meshed (an IPv6-only pod of an unlabelled namespace): the address does not matter.
    expect((await runPlugin(env, v6, send)).exitCode).toBe(0);
    expect(sent[0]).toMatchObject({ op: "add", facts: { namespace: "shop", name: "web-1" } });
    expect(sent[0]?.op === "add" && sent[0].facts?.address).toBe(undefined);
    answer = { ok: false, error: "not enrolled after 10000 ms: no address" };
    const out = await runPlugin(env, v6, send);
    expect(out.exitCode).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({
      code: 7,
      msg: expect.stringMatching(/cannot be enrolled in the mesh: .*no IPv4 address/),
      details: "not enrolled after 10000 ms: no address",
    });
  });

  test("the agent's parser refuses bad facts", () => {
    const base = { op: "add", podUid: "ab-12", netns: "/n", waitMs: 0 };
    expect(() => parseRequest(JSON.stringify({ ...base, facts: { address: "10.0.0.256" } }))).toThrow(
      /facts.address must be an IPv4 address/,
    );
    expect(() => parseRequest(JSON.stringify({ ...base, facts: { name: "Bad_Name" } }))).toThrow(
      /facts.name must be a Kubernetes name/,
    );
    expect(() => parseRequest(JSON.stringify({ ...base, facts: { serviceAccount: "admin" } }))).toThrow(
      /facts.serviceAccount is not known/,
    );
  });
});
