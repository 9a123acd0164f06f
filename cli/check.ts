// `nodemesh check`: pre-flight and health in one list. On this host: kernel, BTF, cgroup v2 and bpffs
// (/proc/mounts), the BPF features the datapath needs (the native probe). Per agent: its pins, readiness,
// operator ports, config from the controller, certificates and clock. The controller: ready, agents
// connected, clock. Each problem comes with a fix hint; the exit status is 1 when any check fails.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { release } from "node:os";
import {
  btfCheck,
  certificatesCheck,
  clockCheck,
  controllerCheck,
  controllerFromAgent,
  failed,
  featureCheck,
  kernelCheck,
  mountChecks,
  pinsCheck,
  portsCheck,
  readyCheck,
  type CertFacts,
  type CheckResult,
} from "./check-model.ts";
import { COMMON_USAGE, parseCommand, printUsage } from "./options.ts";
import { parsePromText } from "./prom-text.ts";
import { table } from "./table.ts";
import { discoverTargets, get, type Endpoint } from "./targets.ts";

export const CHECK_USAGE = `usage: nodemesh check [--pre] [-o json]
  checks this host's kernel (BPF, BTF, cgroup v2, bpffs), every agent (pins, readiness, ports, config from
  the controller, certificates, clock) and the controller; exit status 1 when a check fails
  --pre                  the host checks only (before installing)
  --pin-dir <dir>        the agent's bpffs directory when it is not a lab's (default /sys/fs/bpf/nodemesh)
${COMMON_USAGE}
`;

export async function checkMain(argv: string[]): Promise<number> {
  const { common, values } = parseCommand("check", argv, {
    pre: { type: "boolean" },
    "pin-dir": { type: "string" },
  });
  if (common.help) return printUsage(CHECK_USAGE);
  const results = await hostChecks();
  if (values["pre"] !== true) {
    const targets = await discoverTargets(common);
    const pinDir = (values["pin-dir"] as string | undefined) ?? "/sys/fs/bpf/nodemesh";
    for (const r of await Promise.all(targets.agents.map((a) => agentChecks(a, a.pinDir ?? pinDir))))
      results.push(...r);
    if (targets.controller)
      results.push(...(await controllerChecks(targets.controller, targets.agents.length)));
  }
  const bad = failed(results);
  if (common.output === "json")
    process.stdout.write(`${JSON.stringify({ ok: !bad, checks: results }, null, 2)}\n`);
  else process.stdout.write(format(results));
  return bad ? 1 : 0;
}

async function hostChecks(): Promise<CheckResult[]> {
  const out = [kernelCheck(release()), btfCheck(existsSync("/sys/kernel/btf/vmlinux"))];
  out.push(...mountChecks(readFileSync("/proc/mounts", "utf8")));
  try {
    const native = await import("../native/index.ts");
    out.push(featureCheck(native.probeFeatures().missing));
  } catch (err) {
    out.push(featureCheck(`cannot load the native addon: ${(err as Error).message}`));
  }
  return out;
}

async function agentChecks(a: Endpoint, pinDir: string): Promise<CheckResult[]> {
  const out = [pinsCheck(a.name, pinDir, existsSync(pinDir) ? readdirSync(pinDir) : undefined)];
  const ready = await get(a, "/healthz/ready").catch((err: Error) => err.message);
  out.push(readyCheck(a.name, ready));
  if (typeof ready === "string") return out;
  out.push(portsCheck(a.name, await siblingPorts(a)));
  const dump = await get(a, "/config_dump")
    .then((r) => JSON.parse(r.body) as { version?: unknown; pending?: unknown; certificates?: CertFacts[] })
    .catch(() => undefined);
  if (dump) {
    out.push(controllerFromAgent(a.name, dump));
    out.push(certificatesCheck(a.name, dump.certificates ?? [], Date.now()));
  }
  out.push(clockCheck(a.name, ready.date, Date.now()));
  return out;
}

/** The metrics (15020) and health (15021) ports beside the admin port, on the same host. */
async function siblingPorts(a: Endpoint): Promise<Record<number, number | string>> {
  const url = new URL(a.url);
  const probe = async (port: number, path: string) => {
    const ep = { ...a, url: `${url.protocol}//${url.hostname}:${port}` };
    return get(ep, path, 3000).then(
      (r) => r.status,
      (err: Error) => err.message,
    );
  };
  const [metrics, health] = await Promise.all([probe(15020, "/metrics"), probe(15021, "/healthz/ready")]);
  return { 15020: metrics, 15021: health };
}

async function controllerChecks(c: Endpoint, agents: number): Promise<CheckResult[]> {
  const readyz = await get(c, "/readyz").catch((err: Error) => err.message);
  if (typeof readyz === "string") return [controllerCheck(readyz, undefined, agents)];
  const connected = await get(c, "/metrics")
    .then(
      (r) =>
        parsePromText(r.body, "controller /metrics").find(
          (s) => s.name === "nodemesh_controller_connected_agents",
        )?.value,
    )
    .catch(() => undefined);
  return [controllerCheck(readyz, connected, agents), clockCheck(c.name, readyz.date, Date.now())];
}

export function format(results: readonly CheckResult[]): string {
  const mark = { ok: "√", warn: "!", fail: "×" } as const;
  const rows = results.map((r) => [mark[r.status], r.check, r.target, r.detail]);
  const hints = results
    .filter((r) => r.hint)
    .map((r) => `  ${mark[r.status]} ${r.check} (${r.target}): ${r.hint}`);
  const summary = failed(results) ? "some checks failed" : "all checks passed";
  return `${table(["", "CHECK", "TARGET", "DETAIL"], rows)}${hints.length ? `\nhow to fix:\n${hints.join("\n")}\n` : ""}\n${summary}\n`;
}
