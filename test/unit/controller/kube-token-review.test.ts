// The TokenReview authenticator's own refusals, before any API call (controller/sources/kube/
// token-review.ts): no token, and what is not a JWT or is oversized, are refused without a review;
// a JWT-shaped token does reach the API server (here unreachable: review_failed, fail closed).
import { KubeConfig } from "@kubernetes/client-node";
import { describe, expect, test } from "vitest";
import { TokenReviewAuthenticator } from "../../../controller/sources/kube/token-review.ts";

function authenticator(): TokenReviewAuthenticator {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: "c", server: "https://127.0.0.1:1", skipTLSVerify: true }],
    users: [{ name: "u", token: "admin" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return new TokenReviewAuthenticator({ kubeConfig, agentServiceAccount: "nodemesh-system/agent" });
}

describe("TokenReviewAuthenticator pre-checks", () => {
  test.each([
    ["", "unknown_token"],
    ["not-a-jwt", "token_rejected"],
    ["a.b", "token_rejected"],
    ["a.b.c d", "token_rejected"],
    [`a.${"b".repeat(20_000)}.c`, "token_rejected"],
  ])("%j is refused without a review (%s)", async (token, reason) => {
    expect(await authenticator().authenticate(token)).toMatchObject({ reason });
  });

  test("a JWT-shaped token is reviewed; an unreachable API server refuses it", async () => {
    expect(await authenticator().authenticate("aGVhZGVy.cGF5bG9hZA.c2ln")).toMatchObject({
      reason: "review_failed",
      message: expect.stringContaining("TokenReview failed"),
    });
  });

  test("the agent ServiceAccount must be namespace/name", () => {
    expect(
      () => new TokenReviewAuthenticator({ kubeConfig: new KubeConfig(), agentServiceAccount: "agent" }),
    ).toThrow('agentServiceAccount must be "namespace/name", got "agent"');
  });
});
