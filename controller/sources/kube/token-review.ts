// Node authentication on Kubernetes: an agent presents its projected service-account token
// (audience "nodemesh", bound to its pod); the API server checks it (TokenReview) and we read the
// node from the bound pod, so an agent is trusted only for its own node, as a bootstrap token is on
// plain hosts. Kubernetes 1.30+ puts the node name in the token's extra claims; older servers only
// name the pod, whose spec.nodeName we then read (checking the pod's uid, so a recreated pod with
// the same name cannot inherit a stolen token).
//
// Fail closed: only tokens of the agent's own ServiceAccount count (any pod may mint a token with
// audience "nodemesh"), and any API error refuses. Results are cached briefly by the token's hash:
// agents reconnect and sign CSRs often, and a TokenReview per request would load the API server.
import { createHash } from "node:crypto";
import { AuthenticationV1Api, CoreV1Api } from "@kubernetes/client-node";
import type { KubeConfig } from "@kubernetes/client-node";
import { describe } from "./informers.ts";

export const NODE_AUDIENCE = "nodemesh";
const POD_NAME = "authentication.kubernetes.io/pod-name";
const POD_UID = "authentication.kubernetes.io/pod-uid";
const NODE_NAME = "authentication.kubernetes.io/node-name";

/** header.payload.signature, base64url; a projected token is about 1 KB. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_TOKEN_LENGTH = 16 * 1024;

export type NodeAuthResult = { node: string } | { reason: string; message: string };

export interface TokenReviewOptions {
  kubeConfig: KubeConfig;
  /** The agents' ServiceAccount, "namespace/name". */
  agentServiceAccount: string;
  audience?: string;
  /** How long an accepted token is trusted without a new review; default 60s. */
  cacheMs?: number;
  /** How long a refused token stays refused; default 5s. */
  negativeCacheMs?: number;
  now?: () => number;
}

export class TokenReviewAuthenticator {
  readonly #auth: AuthenticationV1Api;
  readonly #core: CoreV1Api;
  readonly #opts: TokenReviewOptions;
  readonly #username: string;
  readonly #cache = new Map<string, { at: number; result: NodeAuthResult }>();
  readonly #now: () => number;

  constructor(opts: TokenReviewOptions) {
    const [ns, name] = opts.agentServiceAccount.split("/");
    if (!ns || !name)
      throw new Error(`agentServiceAccount must be "namespace/name", got "${opts.agentServiceAccount}"`);
    this.#opts = opts;
    this.#username = `system:serviceaccount:${ns}:${name}`;
    this.#auth = opts.kubeConfig.makeApiClient(AuthenticationV1Api);
    this.#core = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.#now = opts.now ?? Date.now;
  }

  async authenticate(token: string): Promise<NodeAuthResult> {
    if (!token) return { reason: "unknown_token", message: "no bearer token" };
    // Anyone who can open a TLS connection can send a token: what is not even a JWT costs no
    // review (and no cache entry), so junk cannot be turned into API server load.
    if (!JWT_SHAPE.test(token) || token.length > MAX_TOKEN_LENGTH)
      return {
        reason: "token_rejected",
        message: "the token is not a service-account JWT; mount a projected token (audience nodemesh)",
      };
    const key = createHash("sha256").update(token).digest("hex");
    const hit = this.#cache.get(key);
    const now = this.#now();
    if (hit) {
      const ttl =
        "node" in hit.result ? (this.#opts.cacheMs ?? 60_000) : (this.#opts.negativeCacheMs ?? 5_000);
      if (now - hit.at < ttl) return hit.result;
      this.#cache.delete(key);
    }
    const result = await this.#review(token).catch((err: unknown): NodeAuthResult => ({
      reason: "review_failed",
      message: `TokenReview failed: ${describe(err)}`,
    }));
    if (this.#cache.size > 10_000) this.#cache.clear(); // bounded: a flood of bad tokens cannot grow it
    this.#cache.set(key, { at: now, result });
    return result;
  }

  async #review(token: string): Promise<NodeAuthResult> {
    const audience = this.#opts.audience ?? NODE_AUDIENCE;
    const review = await this.#auth.createTokenReview({
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenReview",
        spec: { token, audiences: [audience] },
      },
    });
    const st = review.status;
    if (!st?.authenticated)
      return {
        reason: "token_rejected",
        message: `the API server rejected the token: ${st?.error ?? "not authenticated"}`,
      };
    if (!(st.audiences ?? []).includes(audience))
      return { reason: "wrong_audience", message: `token audience is not "${audience}"` };
    if (st.user?.username !== this.#username)
      return {
        reason: "not_an_agent",
        message: `token of ${st.user?.username ?? "?"}, not of the agent ServiceAccount (${this.#username})`,
      };
    const extra = st.user.extra ?? {};
    const node = extra[NODE_NAME]?.[0];
    if (node) return { node };
    return this.#nodeOfPod(extra[POD_NAME]?.[0], extra[POD_UID]?.[0]);
  }

  async #nodeOfPod(name: string | undefined, uid: string | undefined): Promise<NodeAuthResult> {
    if (!name || !uid)
      return {
        reason: "unbound_token",
        message: "token is not bound to a pod; use a projected service-account token",
      };
    const ns = this.#opts.agentServiceAccount.split("/")[0] ?? "";
    let pod;
    try {
      pod = await this.#core.readNamespacedPod({ name, namespace: ns });
    } catch (err) {
      // Servers before 1.21 do not check that a bound token's pod still exists; we do.
      if ((err as { code?: unknown }).code === 404)
        return { reason: "pod_gone", message: `the token's pod ${ns}/${name} no longer exists` };
      throw err;
    }
    if (pod.metadata?.uid !== uid)
      return { reason: "pod_replaced", message: `pod ${ns}/${name} was replaced since the token was issued` };
    const node = pod.spec?.nodeName;
    if (!node) return { reason: "pod_unscheduled", message: `pod ${ns}/${name} has no node` };
    return { node };
  }
}
