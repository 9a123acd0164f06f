// Node authentication by TokenReview against the real API server: a pod-bound token of the agent
// ServiceAccount gives that pod's node; a wrong audience, another ServiceAccount, an expired token,
// a token whose pod is gone and an unbound token are refused, each with its reason.
import { createSign, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { TokenReviewAuthenticator } from "../../../controller/sources/kube/token-review.ts";
import { KubeCluster } from "./cluster.ts";

const cluster = new KubeCluster();
const NS = "nodemesh-system";
let auth: TokenReviewAuthenticator;

const pod = (name: string, node: string, sa: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${NS}}
spec: {nodeName: ${node}, serviceAccountName: ${sa}, containers: [{name: agent, image: example.invalid/agent}]}
`;

async function token(sa: string, args: string[] = []): Promise<string> {
  return (await cluster.kubectl(["-n", NS, "create", "token", sa, "--duration=10m", ...args])).trim();
}

/** A token the API server's own key signed, already expired (TokenRequest cannot issue one). */
function expiredToken(podName: string, podUid: string): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: "RS256", typ: "JWT" })}.${b64({
    iss: "https://kubernetes.default.svc.cluster.local",
    aud: ["nodemesh"],
    sub: `system:serviceaccount:${NS}:nodemesh-agent`,
    iat: now - 7200,
    nbf: now - 7200,
    exp: now - 3600,
    "kubernetes.io": {
      namespace: NS,
      pod: { name: podName, uid: podUid },
      serviceaccount: { name: "nodemesh-agent", uid: randomUUID() },
    },
  })}`;
  const sig = createSign("RSA-SHA256")
    .update(body)
    .sign(readFileSync(join(cluster.dir, "sa.key")), "base64url");
  return `${body}.${sig}`;
}

describe("TokenReview node authentication", () => {
  beforeAll(async () => {
    await cluster.start();
    await cluster.kubectl(["create", "namespace", NS]);
    await cluster.kubectl(["-n", NS, "create", "serviceaccount", "nodemesh-agent"]);
    await cluster.kubectl(["-n", NS, "create", "serviceaccount", "intruder"]);
    await cluster.kubectl(
      ["apply", "-f", "-"],
      [
        pod("agent-a", "node-a", "nodemesh-agent"),
        pod("agent-b", "node-b", "nodemesh-agent"),
        pod("other", "node-a", "intruder"),
      ].join("---\n"),
    );
    auth = new TokenReviewAuthenticator({
      kubeConfig: cluster.kubeConfig(),
      agentServiceAccount: `${NS}/nodemesh-agent`,
      negativeCacheMs: 0,
    });
  }, 600_000);
  afterAll(() => cluster.stop());

  const bound = (p: string) => ["--audience=nodemesh", "--bound-object-kind=Pod", `--bound-object-name=${p}`];

  test("an agent's pod-bound token names its node", async () => {
    expect(await auth.authenticate(await token("nodemesh-agent", bound("agent-a")))).toEqual({
      node: "node-a",
    });
    expect(await auth.authenticate(await token("nodemesh-agent", bound("agent-b")))).toEqual({
      node: "node-b",
    });
  });

  test.each([
    [
      "a wrong audience",
      () =>
        token("nodemesh-agent", [
          "--audience=other",
          "--bound-object-kind=Pod",
          "--bound-object-name=agent-a",
        ]),
      "token_rejected",
    ],
    ["another ServiceAccount", () => token("intruder", bound("other")), "not_an_agent"],
    ["a token bound to no pod", () => token("nodemesh-agent", ["--audience=nodemesh"]), "unbound_token"],
    ["garbage", () => Promise.resolve("not-a-jwt"), "token_rejected"],
  ])("%s is refused", async (_what, make, reason) => {
    const r = await auth.authenticate(await make());
    expect(r).toMatchObject({ reason });
  });

  test("an expired token is refused", async () => {
    const uid = JSON.parse(await cluster.kubectl(["-n", NS, "get", "pod", "agent-a", "-o", "json"])).metadata
      .uid as string;
    expect(await auth.authenticate(expiredToken("agent-a", uid))).toMatchObject({ reason: "token_rejected" });
  });

  test("the token of a deleted agent pod stops working", async () => {
    const t = await token("nodemesh-agent", bound("agent-b"));
    expect(await auth.authenticate(t)).toEqual({ node: "node-b" });
    // No kubelet finishes a graceful delete here: remove the object at once.
    await cluster.kubectl(["-n", NS, "delete", "pod", "agent-b", "--grace-period=0", "--force"]);
    const fresh = new TokenReviewAuthenticator({
      kubeConfig: cluster.kubeConfig(),
      agentServiceAccount: `${NS}/nodemesh-agent`,
    });
    // Newer servers refuse it themselves; 1.20 still accepts it and our pod lookup refuses.
    expect((await fresh.authenticate(t)) as { reason?: string }).toMatchObject({
      reason: expect.stringMatching(/^(token_rejected|pod_gone)$/),
    });
  });
});
