// Which node a request of the agent endpoint speaks for, from its bearer token: first the static
// bootstrap tokens (plain hosts; a map lookup), then, when the controller runs with
// `--node-auth tokenreview`, an asynchronous authenticator (controller/sources/kube/token-review.ts,
// which caches its verdicts). This module knows nothing of Kubernetes: the authenticator is a
// function. A `nodemesh-node` header that disagrees with the token's node is refused either way.
//
// Fail closed: no token, an unknown token, an authenticator that refuses or throws → 401; a node
// mismatch → 403. Refusals from the authenticator keep its specific reason (`token_rejected`,
// `wrong_audience`, `not_an_agent`, …) so the operator sees why in the agent's log.
import type { IncomingHttpHeaders } from "node:http2";
import { HEADER_NODE } from "../api/index.ts";

/** A token's node, or why it does not name one. */
export type NodeAuthResult = { node: string } | { reason: string; message: string };

/** Checks a token that is not a bootstrap token (e.g. a TokenReview); must not throw, but may. */
export type NodeAuthenticator = (token: string) => Promise<NodeAuthResult>;

export type NodeAuthDecision = { node: string } | { status: number; reason: string; message: string };

const UNKNOWN_TOKEN_HINT =
  "unknown or missing bootstrap token; check the agent's --token and the controller's --node-token";

/** The token of `authorization: Bearer <token>`, or "" when there is none. */
export function bearerToken(headers: IncomingHttpHeaders): string {
  const auth = headers.authorization ?? "";
  return auth.startsWith("Bearer ") ? auth.slice(7).trim() : "";
}

/** Pure: applies the `nodemesh-node` header check to a token's verdict. */
export function decide(result: NodeAuthResult, claimed: string | string[] | undefined): NodeAuthDecision {
  if (!("node" in result)) return { status: 401, reason: result.reason, message: result.message };
  if (typeof claimed === "string" && claimed !== "" && claimed !== result.node) {
    return {
      status: 403,
      reason: "node_mismatch",
      message: `token belongs to node ${result.node}, not ${claimed}`,
    };
  }
  return { node: result.node };
}

/**
 * The decision for one request. Synchronous (no promise) for a bootstrap token or when there is no
 * authenticator, so the plain-host path stays as cheap as before.
 */
export function authenticateNode(
  headers: IncomingHttpHeaders,
  tokens: ReadonlyMap<string, string>,
  authenticator: NodeAuthenticator | undefined,
): NodeAuthDecision | Promise<NodeAuthDecision> {
  const token = bearerToken(headers);
  const claimed = headers[HEADER_NODE];
  const node = token ? tokens.get(token) : undefined;
  if (node) return decide({ node }, claimed);
  if (!authenticator) return decide({ reason: "unknown_token", message: UNKNOWN_TOKEN_HINT }, claimed);
  if (!token)
    return decide(
      { reason: "unknown_token", message: "no bearer token; the agent sends its --token-file (or --token)" },
      claimed,
    );
  return authenticator(token).then(
    (result) => decide(result, claimed),
    (err: unknown) =>
      decide(
        {
          reason: "review_failed",
          message: `cannot check the agent's token: ${(err as Error).message ?? String(err)}`,
        },
        claimed,
      ),
  );
}
