// `nodemesh agent`: builds the real parts — the eBPF datapath (native addon), the controller client
// (config stream + CSR signing) — hands them to createAgent, and owns the process: signals, exit codes.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { networkInterfaces } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { NODE_ADDRESS_RESCAN_MS, reportableAddress } from "../controller/api/index.ts";
import { createAgent, type Agent } from "./app.ts";
import { agentSettingsFromEnv, parseAgentSettings, type AgentSettingsInput } from "./config.ts";
import { ControllerClient } from "./control/client.ts";
import { EbpfDatapath } from "./datapath/ebpf.ts";
import { KeptListeners } from "./datapath/kept-listeners.ts";
import { KeeperClient } from "./datapath/keeper/client.ts";
import { ConfigError } from "./errors.ts";
import { createLogger, type Logger } from "./log.ts";
import { CniServer } from "./node/cni-server.ts";
import { configSourceOf } from "./state/source.ts";
import { loadTracer, tracingSettingsFromEnv, type MeshTracer } from "./telemetry/tracing/index.ts";

/** The CLI that starts the socket keeper (`nodemesh keeper`, internal). */
const BIN = join(dirname(fileURLToPath(import.meta.url)), "../bin/nodemesh.js");

export const USAGE = `usage: nodemesh agent --node <name> --controller <host:port> --token-file <f> --ca-file <pem> [options]

  --node <name>            this node's name (workloads whose spec.node matches are enrolled)  env NODEMESH_NODE_NAME
  --controller <host:port> controller endpoint [127.0.0.1:15012]                 env NODEMESH_CONTROLLER
  --token <t> | --token-file <f>   this node's bootstrap token                  env NODEMESH_NODE_TOKEN(_FILE)
  --ca-file <pem>          trust bundle that verifies the controller             env NODEMESH_CA_FILE
  --pin-dir <dir>          bpffs directory of this agent's programs [/sys/fs/bpf/nodemesh]  env NODEMESH_PIN_DIR
  --cgroup <dir>           cgroup v2 directory to attach at [the cgroup2 mount]  env NODEMESH_CGROUP
  --cni-socket <path>      listen there for the chained CNI plugin (off when unset)  env NODEMESH_CNI_SOCKET
  --uninstall              remove this agent's BPF programs, links and maps, then exit
  --log-level <level>      [info]                                                env LOG_LEVEL
  --otlp-endpoint <url>    export request spans over OTLP/gRPC, e.g. http://jaeger:4317 (off when unset)
                           env OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT
  Tracing: OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
  OTEL_BSP_* (see docs/tracing.md).
  Ports and timeouts: NODEMESH_ADMIN_PORT (15000), NODEMESH_METRICS_PORT (15020), NODEMESH_HEALTH_PORT (15021),
  NODEMESH_HBONE_PORT (15008), NODEMESH_OUTBOUND_PORT (15001), NODEMESH_CONNECT_TIMEOUT_MS, NODEMESH_DRAIN_MS,
  NODEMESH_KEEPER_GRACE_MS (30000: how long the node's socket keeper holds the in-pod listeners for the next agent).
  NODEMESH_SOCKMAP (false: pod-local legs socket to socket in the kernel; see docs/capture.md "Sockmap shortcut").
`;

export interface AgentArgs {
  readonly node: string | undefined;
  readonly controller: string;
  readonly token: string | undefined;
  /** Set when the token came from a file: the client re-reads it on every reconnect (rotation). */
  readonly tokenFile: string | undefined;
  readonly caFile: string | undefined;
  readonly pinDir: string;
  readonly cgroup: string | undefined;
  /** Unix socket for the CNI plugin (cni/nodemesh-cni.ts); no server when unset. */
  readonly cniSocket: string | undefined;
  readonly uninstall: boolean;
  readonly logLevel: string | undefined;
  readonly otlpEndpoint: string | undefined;
}

export function parseAgentArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): AgentArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      options: {
        node: { type: "string" },
        controller: { type: "string" },
        token: { type: "string" },
        "token-file": { type: "string" },
        "ca-file": { type: "string" },
        "pin-dir": { type: "string" },
        cgroup: { type: "string" },
        "cni-socket": { type: "string" },
        uninstall: { type: "boolean", default: false },
        "log-level": { type: "string" },
        "otlp-endpoint": { type: "string" },
      },
    });
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}; see nodemesh agent --help`);
  }
  const { values } = parsed;
  const tokenFile = values["token-file"] ?? env["NODEMESH_NODE_TOKEN_FILE"];
  let token = values.token ?? env["NODEMESH_NODE_TOKEN"];
  if (!token && tokenFile) {
    try {
      token = readFileSync(tokenFile, "utf8").trim();
    } catch (err) {
      throw new ConfigError(`cannot read the node token file ${tokenFile}: ${(err as Error).message}`);
    }
  }
  return {
    node: values.node ?? env["NODEMESH_NODE_NAME"],
    controller: values.controller ?? env["NODEMESH_CONTROLLER"] ?? "127.0.0.1:15012",
    token,
    tokenFile: (values.token ?? env["NODEMESH_NODE_TOKEN"]) ? undefined : tokenFile,
    caFile: values["ca-file"] ?? env["NODEMESH_CA_FILE"],
    pinDir: values["pin-dir"] ?? env["NODEMESH_PIN_DIR"] ?? "/sys/fs/bpf/nodemesh",
    cgroup: values.cgroup ?? env["NODEMESH_CGROUP"],
    cniSocket: values["cni-socket"] ?? (env["NODEMESH_CNI_SOCKET"] || undefined),
    uninstall: values.uninstall ?? false,
    logLevel: values["log-level"],
    otlpEndpoint: values["otlp-endpoint"],
  };
}

export async function agentMain(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return 0;
  }
  const args = parseAgentArgs(argv);
  const fromEnv = agentSettingsFromEnv();
  const settings = parseAgentSettings({
    ...(fromEnv as AgentSettingsInput),
    ...(args.node ? { nodeName: args.node } : {}),
    ...(args.logLevel ? { logLevel: args.logLevel as AgentSettingsInput["logLevel"] } : {}),
  });
  const log = createLogger(settings.logLevel);
  const datapathOpts = {
    pinDir: args.pinDir,
    outboundPort: settings.outboundPort,
    hbonePort: settings.hbonePort,
    sockmap: settings.sockmap,
    ...(args.cgroup ? { cgroupPath: args.cgroup } : {}),
  };
  if (args.uninstall) {
    const dp = await EbpfDatapath.open(datapathOpts);
    const keeper = await KeeperClient.find(args.pinDir).catch(() => undefined);
    if (keeper) dp.useKeptListeners(new KeptListeners(keeper, { onKeepFailed: () => {} }));
    await dp.uninstall();
    log.info({ pinDir: args.pinDir }, "datapath uninstalled");
    return 0;
  }
  if (!args.token)
    throw new ConfigError("no node token: pass --token-file <file> (or NODEMESH_NODE_TOKEN_FILE)");
  if (!args.caFile) throw new ConfigError("no trust bundle: pass --ca-file <pem> to verify the controller");
  // Validated before the datapath is installed (but not for --uninstall, which must always work): a bad
  // OTEL_* value stops the agent at startup.
  const tracing = tracingSettingsFromEnv(process.env, { endpoint: args.otlpEndpoint });

  const tracer: MeshTracer | undefined = tracing.enabled
    ? await loadTracer(tracing, {
        nodeName: settings.nodeName,
        version: "0.1.0",
        onExportState: (failing, err) =>
          failing
            ? log.warn(
                { err, endpoint: tracing.endpoint },
                "span export failing; spans are dropped (counted)",
              )
            : log.info({ endpoint: tracing.endpoint }, "span export recovered"),
      })
    : undefined;
  if (tracer)
    log.info({ endpoint: tracing.endpoint, sampler: tracing.sampler, ratio: tracing.ratio }, "tracing on");
  const datapath = await EbpfDatapath.open(datapathOpts);
  log.info(
    { pinDir: args.pinDir, adopted: datapath.adopted },
    datapath.adopted ? "re-adopted pinned datapath" : "datapath installed",
  );
  const sockmap = datapath.sockmapState();
  if (settings.sockmap && !sockmap.enabled)
    log.warn({ reason: sockmap.reason }, "sockmap shortcut unavailable; pod-local legs stay loopback TCP");
  const kept = await openKeeper(args.pinDir, settings.keeperGraceMs, log);
  if (kept) datapath.useKeptListeners(kept);
  const client = new ControllerClient({
    address: args.controller,
    node: settings.nodeName,
    token: args.token,
    tokenFile: args.tokenFile,
    caFile: args.caFile,
    log: log.child({ part: "control" }),
  });
  let quitting: Promise<void> | undefined;
  let cni: CniServer | undefined;
  const quit = (reason: string): Promise<void> =>
    (quitting ??= (async () => {
      log.info({ reason }, "agent stopping");
      datapath.keepEnrollmentOnRelease();
      await cni?.close();
      await agent.stop();
      await client.stop();
      await tracer?.shutdown();
      await datapath.close();
    })());
  const agent = createAgent({
    settings,
    datapath,
    configSource: configSourceOf(client),
    signer: client,
    rateLimitChannel: client,
    nodeBook: client,
    log,
    version: "0.1.0",
    tracer,
    onQuit: () => void quit("quitquitquit").then(() => process.exit(0)),
  });
  client.reportAddresses(nodeAddresses, NODE_ADDRESS_RESCAN_MS);
  client.start();
  await agent.start();
  if (args.cniSocket) {
    cni = new CniServer({ socketPath: args.cniSocket, pods: agent.pods, log: log.child({ part: "cni" }) });
    await cni.listen();
  }
  void agent.whenReady(120_000).then(
    async () => {
      await pruneStale(agent, datapath, log);
      if (kept) await reportKept(kept, log);
    },
    (err: unknown) => log.warn({ err }, "agent not ready yet"),
  );
  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => void quit(sig).then(resolve);
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  });
  return 0;
}

/**
 * The node's socket keeper (agent/datapath/keeper/), started when none runs. Without it the agent
 * serves as before, but a crash then refuses new connections until the next agent listens.
 */
async function openKeeper(pinDir: string, graceMs: number, log: Logger): Promise<KeptListeners | undefined> {
  try {
    const keeper = await KeeperClient.open({
      pinDir,
      command: [BIN, "keeper"],
      graceMs,
    });
    log.info(
      { keeperPid: keeper.keeperPid, held: keeper.inheritedCount, graceMs: keeper.graceMs },
      "socket keeper connected: the in-pod listeners outlive this agent",
    );
    return new KeptListeners(keeper, {
      onKeepFailed: (key, err) =>
        log.warn(
          { err, listener: key },
          "socket keeper did not take a listener; it will not outlive this agent",
        ),
    });
  } catch (err) {
    log.warn(
      { err },
      "no socket keeper: a crash of this agent refuses new connections until the next one listens",
    );
    return undefined;
  }
}

/** After readiness: what was taken back from the keeper, and what it may close now. */
async function reportKept(kept: KeptListeners, log: Logger): Promise<void> {
  const dropped = await kept.dropUnadopted();
  if (kept.adopted > 0 || dropped > 0)
    log.info(
      { adopted: kept.adopted, droppedStale: dropped, keeperPid: kept.keeperPid },
      "took over listeners from the socket keeper",
    );
}

/**
 * After readiness: removes a previous agent's enrollments of pods the config no longer places here. A
 * placed pod this agent could not enroll keeps its old enrollment (refused, never unmeshed).
 */
async function pruneStale(agent: Agent, datapath: EbpfDatapath, log: Logger): Promise<void> {
  try {
    const { pruned, kept, unresolved } = await datapath.pruneInherited(await agent.placedWorkloads());
    if (kept.length > 0 || unresolved.length > 0) {
      log.warn(
        { keptInheritedEnrollments: kept.length, workloads: kept.map((k) => k.uid), unresolved },
        "a previous agent's enrollment is kept for workloads this agent could not enroll: their traffic stays refused, not unmeshed",
      );
    }
    log.info({ ports: agent.ports, prunedStaleWorkloads: pruned }, "agent ready");
  } catch (err) {
    log.error(
      { err, ports: agent.ports },
      "agent ready, but pruning a previous agent's enrollments failed; they stay",
    );
  }
}

/** This node's own IPv4 addresses worth reporting (controller/api/node-addresses.ts). */
function nodeAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .filter((i) => i.family === "IPv4" && reportableAddress(i.address))
    .map((i) => i.address);
}
