// `nodemesh explain <pod> <destination[:port]>`: would a connection from the pod be captured, and what would
// the mesh do with it (service, route, endpoints, breaker state, policy)? Asks every agent's /explain; the
// agent of the pod's node answers for it (the others say "elsewhere"), and a pod no agent knows is
// reported as not in the mesh. Exit status: 0 allowed, 1 otherwise, so scripts can assert on it.
import { CliError } from "./errors.ts";
import { COMMON_USAGE, parseCommand, printUsage } from "./options.ts";
import { table } from "./table.ts";
import { discoverTargets, get, type Endpoint } from "./targets.ts";

export const EXPLAIN_USAGE = `usage: nodemesh explain <pod> <destination[:port]> [--method M] [--path /p] [--header 'name: value'] [-o json]
  <pod>          a WorkloadEntry name, namespace/name, its address, or (in the lab) the pod name (n1p1)
  <destination>  a service (name, name.namespace) or an address, with :port for an address
  --method, --path, --header   the request to assume for HTTP routes and L7 policy rules
${COMMON_USAGE}
`;

export interface ExplainAnswer {
  readonly node: string;
  readonly verdict: string;
  readonly reasons: string[];
  readonly [k: string]: unknown;
}

export async function explainMain(argv: string[]): Promise<number> {
  const { common, values, positionals } = parseCommand("explain", argv, {
    method: { type: "string" },
    path: { type: "string" },
    header: { type: "string", multiple: true },
  });
  if (common.help) return printUsage(EXPLAIN_USAGE);
  const [pod, to, ...extra] = positionals;
  if (!pod || !to || extra.length > 0)
    throw new CliError(
      "NODEMESH_ERR_CLI_ARGS",
      "explain: give a pod and a destination, e.g. `nodemesh explain n1p1 web:80`",
    );
  const q = new URLSearchParams({ pod, to });
  if (typeof values["method"] === "string") q.set("method", values["method"]);
  if (typeof values["path"] === "string") q.set("path", values["path"]);
  for (const h of (values["header"] as string[] | undefined) ?? []) q.append("header", h);
  const targets = await discoverTargets(common);
  const answers = await Promise.all(targets.agents.map((a) => ask(a, q)));
  const answer = choose(answers);
  process.stdout.write(common.output === "json" ? `${JSON.stringify(answer, null, 2)}\n` : format(answer));
  return answer.verdict === "allowed" ? 0 : 1;
}

async function ask(agent: Endpoint, q: URLSearchParams): Promise<ExplainAnswer> {
  const r = await get(agent, `/explain?${q}`);
  if (r.status === 400) throw new CliError("NODEMESH_ERR_CLI_ARGS", r.body.trim());
  if (r.status !== 200)
    throw new CliError(
      "NODEMESH_ERR_CLI_AGENT",
      `${agent.name}: /explain answered ${r.status}: ${r.body.trim()}`,
    );
  return JSON.parse(r.body) as ExplainAnswer;
}

/** The pod's own agent decides; if none has the pod, any agent's "not captured" answer stands. */
export function choose(answers: readonly ExplainAnswer[]): ExplainAnswer {
  const own = answers.find(
    (a) => a.verdict !== "elsewhere" && (a["source"] as { local?: boolean } | undefined)?.local,
  );
  const any = own ?? answers.find((a) => a.verdict !== "elsewhere") ?? answers[0];
  if (!any) throw new CliError("NODEMESH_ERR_CLI_ARGS", "explain: no agent to ask");
  return any;
}

export function format(a: ExplainAnswer): string {
  const lines = [`verdict: ${a.verdict.toUpperCase()} (answered by the agent on ${a.node})`, "", "why:"];
  for (const r of a.reasons) lines.push(`  - ${r}`);
  const route = a["route"] as { route?: string; rule?: number; backends?: string[] } | undefined;
  if (route?.route)
    lines.push("", `route: ${route.route} rule ${route.rule ?? "?"} -> ${(route.backends ?? []).join(", ")}`);
  const eps = (a["endpoints"] as Record<string, unknown>[] | undefined) ?? [];
  let out = `${lines.join("\n")}\n`;
  if (eps.length > 0) {
    const authz = (e: Record<string, unknown>) => e["authz"] as { allowed: boolean; policy?: string };
    out += `\n${table(
      ["ENDPOINT", "WORKLOAD", "NODE", "MTLS", "EJECTED", "BREAKER", "POLICY"],
      eps.map((e) => [
        String(e["endpoint"]),
        String(e["workload"]),
        String(e["node"]),
        String(e["mtls"]),
        e["ejected"] ? "yes" : "no",
        String(e["breaker"]),
        `${authz(e).allowed ? "allow" : "DENY"}${authz(e).policy ? ` (${authz(e).policy})` : ""}`,
      ]),
    )}`;
  }
  return out;
}
