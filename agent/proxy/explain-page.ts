// The agent's admin page GET /explain?pod=<pod>&to=<destination[:port]>[&method=&path=&header=name:value]:
// gathers the live state explain.ts needs (enrollment, ejections, breakers) from the parts that own it and
// answers the Explanation as JSON. Bad queries get a 400 naming the parameter.
import type { AgentSettings } from "../config.ts";
import type { MeshView } from "../state/view.ts";
import { explainConnection, type ExplainRequest } from "./explain.ts";

export interface ExplainPageDeps {
  readonly node: string;
  readonly settings: Pick<AgentSettings, "connectTimeoutMs">;
  readonly view: () => MeshView | undefined;
  /** Whether this agent enrolled the workload (its listeners are open). */
  readonly enrolled: (uid: string) => boolean;
  /** The kernel's workload map entry; absent when the datapath cannot be read back. */
  readonly kernel?: (uid: string) => { enrolled: boolean; strict: boolean } | undefined;
  readonly balancing: () => readonly { destination: string; ejected: readonly string[] }[];
  readonly breakers: () => readonly { destination: string; endpoint: string; state: string }[];
}

type Page = { status?: number; body: string | object };

export function explainPage(deps: ExplainPageDeps): (req: unknown, url: URL) => Page {
  return (_req, url) => {
    const q = url.searchParams;
    const pod = q.get("pod");
    const to = q.get("to");
    if (!pod) return bad("pod is required (a WorkloadEntry name, namespace/name, address or pod label)");
    if (!to) return bad("to is required (a service host or address, with :port)");
    const port = portOf(to);
    if (port === "bad") return bad(`to has an invalid port: "${to}" (use host:1-65535)`);
    if (port === undefined && /^\d+\.\d+\.\d+\.\d+$/.test(to))
      return bad(`to is an address without a port: "${to}"`);
    const request = requestOf(q);
    if (typeof request === "string") return bad(request);
    const ejected = new Set(deps.balancing().flatMap((d) => d.ejected.map((e) => `${d.destination}|${e}`)));
    const breakers = new Map(deps.breakers().map((b) => [`${b.destination}|${b.endpoint}`, b.state]));
    const body = explainConnection(
      deps.view(),
      pod,
      to,
      {
        node: deps.node,
        settings: deps.settings,
        enrollment: (uid) => {
          const kernel = deps.kernel?.(uid);
          return kernel ? { agent: deps.enrolled(uid), kernel } : { agent: deps.enrolled(uid) };
        },
        ejected: (d, e) => ejected.has(`${d}|${e}`),
        breaker: (d, e) => breakers.get(`${d}|${e}`),
      },
      request,
    );
    return { body };
  };
}

function bad(message: string): Page {
  return { status: 400, body: `explain: ${message}\n` };
}

function portOf(to: string): number | undefined | "bad" {
  const i = to.lastIndexOf(":");
  if (i < 0) return undefined;
  const p = Number(to.slice(i + 1));
  return Number.isInteger(p) && p >= 1 && p <= 65535 ? p : "bad";
}

/** The hypothetical request for routes and L7 rules; undefined when none of its parameters is given. */
function requestOf(q: URLSearchParams): ExplainRequest | undefined | string {
  const method = q.get("method");
  const path = q.get("path");
  const headerParams = q.getAll("header");
  if (method === null && path === null && headerParams.length === 0) return undefined;
  if (path !== null && !path.startsWith("/")) return `path must start with "/", got "${path}"`;
  if (method !== null && !/^[A-Za-z]+$/.test(method))
    return `method must be a token like GET, got "${method}"`;
  const headers: Record<string, string> = {};
  for (const h of headerParams) {
    const i = h.indexOf(":");
    if (i <= 0) return `header must be "name: value", got "${h}"`;
    headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  return { method: (method ?? "GET").toUpperCase(), path: path ?? "/", headers };
}
