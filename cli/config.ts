// `nodemesh config <node> [section]`: one agent's config dump (/config_dump): what it enrolled, the services
// and policies it holds, its certificates, balancing and breaker state. `-o json` prints the dump as is.
import { CliError } from "./errors.ts";
import { COMMON_USAGE, parseCommand, printUsage } from "./options.ts";
import { table } from "./table.ts";
import { discoverTargets, get, type Endpoint } from "./targets.ts";

export const CONFIG_SECTIONS = [
  "workloads",
  "services",
  "policies",
  "certificates",
  "balancing",
  "all",
] as const;

export const CONFIG_USAGE = `usage: nodemesh config <node> [${CONFIG_SECTIONS.join("|")}] [-o json]
  the config dump of the agent on <node> (a lab node name, or the name given with --agent node=url)
${COMMON_USAGE}
`;

export async function configMain(argv: string[]): Promise<number> {
  const { common, positionals } = parseCommand("config", argv, {});
  if (common.help) return printUsage(CONFIG_USAGE);
  const [node, section = "all", ...extra] = positionals;
  if (!node) throw new CliError("NODEMESH_ERR_CLI_ARGS", "config: name the node, e.g. `nodemesh config n1`");
  if (!(CONFIG_SECTIONS as readonly string[]).includes(section) || extra.length > 0)
    throw new CliError(
      "NODEMESH_ERR_CLI_ARGS",
      `config: the section must be one of ${CONFIG_SECTIONS.join(", ")}, got "${[section, ...extra].join(" ")}"`,
    );
  const targets = await discoverTargets(common);
  const dump = await fetchDump(pickAgent(targets.agents, node));
  process.stdout.write(
    common.output === "json"
      ? `${JSON.stringify(section === "all" ? dump : { [section]: dump[section] }, null, 2)}\n`
      : formatDump(dump, section),
  );
  return 0;
}

export function pickAgent(agents: readonly Endpoint[], node: string): Endpoint {
  const a = agents.find((x) => x.name === node);
  if (a) return a;
  if (agents.length === 1 && agents[0]?.name === "local") return agents[0];
  throw new CliError(
    "NODEMESH_ERR_CLI_ARGS",
    `no agent for node "${node}"; known: ${agents.map((x) => x.name).join(", ")} (name one with --agent ${node}=http://host:15000)`,
  );
}

export async function fetchDump(agent: Endpoint): Promise<Record<string, unknown>> {
  const r = await get(agent, "/config_dump");
  if (r.status !== 200)
    throw new CliError(
      "NODEMESH_ERR_CLI_AGENT",
      `${agent.name}: /config_dump answered ${r.status}: ${r.body.trim()}`,
    );
  return JSON.parse(r.body) as Record<string, unknown>;
}

type Row = Record<string, unknown>;
const rows = (v: unknown): Row[] => (Array.isArray(v) ? (v as Row[]) : []);
const cell = (v: unknown): string =>
  v === undefined || v === null ? "-" : Array.isArray(v) ? v.join(",") || "-" : String(v);

export function formatDump(d: Record<string, unknown>, section: string): string {
  const out: string[] = [];
  const want = (s: string) => section === "all" || section === s;
  if (section === "all")
    out.push(
      `node ${cell(d["node"])}  config version ${cell(d["version"])}  ready ${cell(d["ready"])}${rows(d["pending"]).length ? `  pending ${cell(d["pending"])}` : ""}\n`,
    );
  if (want("workloads"))
    out.push(
      table(
        ["WORKLOAD", "ADDRESS", "IDENTITY", "MTLS", "AUTHZ POLICIES"],
        rows(d["workloads"]).map((w) => [
          cell(w["uid"]),
          cell(w["address"]),
          cell(w["identity"]),
          cell(w["mtls"]),
          cell(w["authorizationPolicies"]),
        ]),
      ),
    );
  if (want("services"))
    out.push(
      table(
        ["SERVICE", "LOAD BALANCER", "CONNECT TIMEOUT"],
        rows(d["services"]).map((s) => [
          cell(s["host"]),
          cell(s["loadBalancer"] ?? "default"),
          s["connectTimeoutMs"] === undefined ? "default" : `${cell(s["connectTimeoutMs"])}ms`,
        ]),
      ),
    );
  if (want("policies")) {
    const p = (d["policies"] ?? {}) as Row;
    const list = [
      ...rows(p["authorization"]).map((x) => ["AuthorizationPolicy", cell(x)]),
      ...rows(p["peerAuthentication"]).map((x) => ["PeerAuthentication", cell(x)]),
    ];
    out.push(table(["KIND", "POLICY"], list));
  }
  if (want("certificates"))
    out.push(
      table(
        ["IDENTITY", "NOT BEFORE", "NOT AFTER", "ERROR"],
        rows(d["certificates"]).map((c) => [
          cell(c["spiffeId"]),
          cell(c["notBefore"]),
          cell(c["notAfter"]),
          cell(c["lastError"]),
        ]),
      ),
    );
  if (want("balancing")) {
    out.push(
      table(
        ["DESTINATION", "BALANCER", "ENDPOINTS", "EJECTED"],
        rows(d["balancing"]).map((b) => [
          cell(b["destination"]),
          cell(b["loadBalancer"]),
          cell(b["endpoints"]),
          cell(b["ejected"]),
        ]),
      ),
    );
    const open = rows(d["circuitBreakers"]).filter((b) => b["state"] !== "closed");
    if (open.length)
      out.push(
        table(
          ["DESTINATION", "ENDPOINT", "BREAKER"],
          open.map((b) => [cell(b["destination"]), cell(b["endpoint"]), cell(b["state"])]),
        ),
      );
  }
  return out.join("\n");
}
