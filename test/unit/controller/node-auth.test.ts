// Node authentication of the agent endpoint (controller/distribution/node-auth.ts): bootstrap
// tokens decide synchronously, other tokens go to the authenticator (TokenReview) whose refusals
// keep their reason as 401s, a node header that disagrees is a 403 either way, and an
// authenticator that throws refuses.
import { describe, expect, test, vi } from "vitest";
import { authenticateNode, bearerToken, decide } from "../../../controller/distribution/node-auth.ts";
import type { NodeAuthenticator } from "../../../controller/distribution/node-auth.ts";

const TOKENS = new Map([["bootstrap-token-0123456789", "node-a"]]);
const h = (token: string | undefined, node?: string) => ({
  ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
  ...(node !== undefined ? { "nodemesh-node": node } : {}),
});

describe("bearerToken", () => {
  test.each([
    [{ authorization: "Bearer abc " }, "abc"],
    [{ authorization: "Basic abc" }, ""],
    [{}, ""],
  ])("%j → %j", (headers, token) => expect(bearerToken(headers)).toBe(token));
});

describe("decide", () => {
  test("a node header that disagrees is a 403 naming both nodes; an empty one is no claim", () => {
    expect(decide({ node: "node-a" }, "node-b")).toEqual({
      status: 403,
      reason: "node_mismatch",
      message: "token belongs to node node-a, not node-b",
    });
    expect(decide({ node: "node-a" }, "")).toEqual({ node: "node-a" });
    expect(decide({ node: "node-a" }, undefined)).toEqual({ node: "node-a" });
  });
});

describe("authenticateNode", () => {
  test("a bootstrap token is decided at once, without the authenticator", () => {
    const review = vi.fn<NodeAuthenticator>();
    expect(authenticateNode(h("bootstrap-token-0123456789", "node-a"), TOKENS, review)).toEqual({
      node: "node-a",
    });
    expect(authenticateNode(h("bootstrap-token-0123456789", "node-b"), TOKENS, review)).toMatchObject({
      status: 403,
    });
    expect(review).not.toHaveBeenCalled();
  });

  test("without an authenticator an unknown or missing token is a 401 unknown_token", () => {
    for (const token of ["other-token", undefined])
      expect(authenticateNode(h(token), TOKENS, undefined)).toMatchObject({
        status: 401,
        reason: "unknown_token",
        message: expect.stringContaining("--node-token"),
      });
  });

  test("no token never reaches the authenticator", () => {
    const review = vi.fn<NodeAuthenticator>();
    expect(authenticateNode(h(undefined), TOKENS, review)).toMatchObject({
      status: 401,
      reason: "unknown_token",
      message: expect.stringContaining("--token-file"),
    });
    expect(review).not.toHaveBeenCalled();
  });

  test("another token is reviewed: its node is admitted, subject to the node header", async () => {
    const review = vi.fn<NodeAuthenticator>(async () => ({ node: "node-b" }));
    expect(await authenticateNode(h("projected", "node-b"), TOKENS, review)).toEqual({ node: "node-b" });
    expect(review).toHaveBeenCalledWith("projected");
    expect(await authenticateNode(h("projected", "node-a"), TOKENS, review)).toEqual({
      status: 403,
      reason: "node_mismatch",
      message: "token belongs to node node-b, not node-a",
    });
  });

  test("a refusal keeps the authenticator's reason and message, as a 401", async () => {
    const review: NodeAuthenticator = async () => ({ reason: "wrong_audience", message: 'not "nodemesh"' });
    expect(await authenticateNode(h("projected", "node-a"), TOKENS, review)).toEqual({
      status: 401,
      reason: "wrong_audience",
      message: 'not "nodemesh"',
    });
  });

  test("an authenticator that throws refuses with review_failed", async () => {
    const review: NodeAuthenticator = () => Promise.reject(new Error("connect ECONNREFUSED"));
    expect(await authenticateNode(h("projected"), TOKENS, review)).toEqual({
      status: 401,
      reason: "review_failed",
      message: "cannot check the agent's token: connect ECONNREFUSED",
    });
  });
});
