#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// The one command-line entry: `nodemesh <command> ...`. Each command lives with the part it runs;
// this file only dispatches, so importing it loads nothing a command does not need.

const USAGE = `usage: nodemesh <command> [options]

commands:
  demo [--duration <s>]          the local demo mesh: lab hosts, controller, one agent per node, traffic
  controller [flags]             run the controller (config source, CA, config stream)
  agent [flags]                  run the per-node agent (proxy + eBPF datapath)
  lab up|down|status|exec ...    build or tear down local hosts from network namespaces
  stat [service|workload|route]  golden signals from the agents' metrics over a window
  tap <workload|service>         live stream of requests and connections (bounded, sampled)
  check [--pre]                  pre-flight and health checks, each with a fix hint
  explain <pod> <dest[:port]>    would this connection be captured, routed, allowed, and why
  config <node> [section]        an agent's config dump
  (the operator commands find agents with --agent, or use the one lab; see <command> --help)
  help                           this text
`;

type Command = (argv: string[]) => Promise<number | void>;

const commands: Record<string, () => Promise<Command>> = {
  demo: async () => (await import("../demo/demo.ts")).demoMain,
  controller: async () => (await import("../controller/main.ts")).controllerMain,
  agent: async () => (await import("../agent/main.ts")).agentMain,
  // Internal: started by the agent (agent/datapath/keeper/keeper.ts), not listed in the help.
  keeper: async () => (await import("../agent/datapath/keeper/keeper.ts")).keeperMain,
  // Internal: the agent pod's CNI installer containers (charts/nodemesh, cni.enabled).
  "cni-install": async () => (await import("../cni/installer/main.ts")).cniInstallMain,
  lab: async () => (await import("../lab/cli.ts")).labCli,
  stat: async () => (await import("../cli/stat.ts")).statMain,
  tap: async () => (await import("../cli/tap.ts")).tapMain,
  check: async () => (await import("../cli/check.ts")).checkMain,
  explain: async () => (await import("../cli/explain.ts")).explainMain,
  config: async () => (await import("../cli/config.ts")).configMain,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    process.stdout.write(USAGE);
    return name === undefined ? 2 : 0;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`nodemesh: unknown command "${name}"\n${USAGE}`);
    return 2;
  }
  const run = await load();
  const code = await run(rest);
  return typeof code === "number" ? code : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as { code?: string; message?: string };
    process.stderr.write(`nodemesh: ${e.code ? `[${e.code}] ` : ""}${e.message ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
