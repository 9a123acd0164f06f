// `nodemesh controller …`: flags (and NODEMESH_CONTROLLER_* env equivalents) → ControllerApp.
// SIGHUP re-reads the configuration as a forced reload (it applies an empty file or a mass removal
// that the watcher held back, config-guard.ts) and the CA files (root rotation); SIGTERM/SIGINT stop.
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import pino from "pino";
import type { Logger } from "pino";
import type { KubeConfig } from "@kubernetes/client-node";
import {
  CONTROLLER_MONITORING_PORT,
  CONTROLLER_PORT,
  DEFAULT_ROOT_NAMESPACE,
  DEFAULT_TRUST_DOMAIN,
  OUTBOUND_MODES,
  durationMs,
} from "./api/index.ts";
import type { OutboundTrafficPolicy } from "./api/index.ts";
import { ControllerApp } from "./app.ts";
import type { ControllerOptions } from "./app.ts";
import { DEFAULT_MAX_REMOVAL_PERCENT } from "./config-guard.ts";
import { DEFAULT_SESSION_LIMITS as L, resolveSessionLimits } from "./distribution/limits.ts";
import type { SessionLimits } from "./distribution/limits.ts";
import { ConfigError } from "./errors.ts";
// The Kubernetes modules are imported only with --source kube: @kubernetes/client-node keeps ~35 MiB
// of module text and code in the heap, a third of a file-source controller's RSS (bench/controller.ts).
import type { LeaderElector } from "./sources/kube/leader.ts";
import type { Source } from "./sources/source.ts";
import { DEFAULT_SETTLE_MS } from "./file-settle.ts";
import { DEFAULT_REBALANCE_MS } from "./ratelimit/balancer.ts";

export const USAGE = `usage: nodemesh controller (--config <file|dir> | --source kube) [options]

  --config <path>          YAML file or directory of resources         env NODEMESH_CONTROLLER_CONFIG
  --source <file|kube>     where resources come from [file]; kube: the Kubernetes API  env NODEMESH_CONTROLLER_SOURCE
  --kubeconfig <file>      with --source kube [KUBECONFIG, ~/.kube/config, in-cluster]  env NODEMESH_KUBECONFIG
                           env NODEMESH_TLS_SECRET_NAMESPACES=a,b: with --source kube, read Gateway TLS Secrets
                           of these namespaces only [every namespace]
  --listen <host:port>     agent endpoint (HTTP/2 + TLS)  [0.0.0.0:${CONTROLLER_PORT}]  env NODEMESH_CONTROLLER_LISTEN
  --monitoring <host:port> /metrics /healthz /readyz [127.0.0.1:${CONTROLLER_MONITORING_PORT}]  env NODEMESH_CONTROLLER_MONITORING
  --ca-dir <dir>           CA root, generated on first start [/var/lib/nodemesh/ca]  env NODEMESH_CA_DIR
  --ca-cert <pem> --ca-key <pem>   operator-provided root instead of --ca-dir  env NODEMESH_CA_CERT, NODEMESH_CA_KEY
  --ca-extra-roots <pem>   extra roots to trust (rotation)              env NODEMESH_CA_EXTRA_ROOTS
  --trust-domain <td>      [${DEFAULT_TRUST_DOMAIN}]                    env NODEMESH_TRUST_DOMAIN
  --root-namespace <ns>    mesh-wide policy namespace [${DEFAULT_ROOT_NAMESPACE}]  env NODEMESH_ROOT_NAMESPACE
  --outbound-traffic-policy <ALLOW_ANY|REGISTRY_ONLY>  destinations that are no service, workload or
                           ExternalService: passed by, or refused [ALLOW_ANY]  env NODEMESH_OUTBOUND_TRAFFIC_POLICY
  --svid-ttl <duration>    workload certificate lifetime [24h]          env NODEMESH_SVID_TTL
  --node-token <node=tok>  bootstrap token of a node (repeatable)
  --node-tokens-file <f>   lines "node token" or "node=token"           env NODEMESH_NODE_TOKENS_FILE
  --node-auth <tokens|tokenreview>  tokenreview (with --source kube): a token that is not a bootstrap token
                           is checked by a TokenReview (projected agent token, audience nodemesh) [tokens]  env NODEMESH_NODE_AUTH
  --agent-service-account <ns/name>  with tokenreview: the agents' ServiceAccount  env NODEMESH_AGENT_SERVICE_ACCOUNT
  --server-name <name>     DNS name or IP in the controller certificate (repeatable) [localhost, 127.0.0.1, hostname]
  --max-removal-percent <n>  a change removing more of the resources waits for SIGHUP [${DEFAULT_MAX_REMOVAL_PERCENT}]  env NODEMESH_CONTROLLER_MAX_REMOVAL_PERCENT
  --settle <duration>      quiet time before a changed file is read [${DEFAULT_SETTLE_MS}ms]  env NODEMESH_CONTROLLER_SETTLE
  --global-ratelimit-interval <duration>  how often global rate limits are re-split [${DEFAULT_REBALANCE_MS}ms]  env NODEMESH_CONTROLLER_GLOBAL_RATELIMIT_INTERVAL
  --auth-timeout <duration>  a connection without a valid token is closed after [${L.authTimeoutMs / 1000}s]  env NODEMESH_CONTROLLER_AUTH_TIMEOUT
  --max-pending-sessions <n>  unauthenticated connections in total; the oldest goes [${L.maxPendingSessions}]
  --max-pending-per-address <n>  unauthenticated connections per source address [${L.maxPendingPerAddress}]
  --max-connections <n>    connections to the agent endpoint [${L.maxConnections}]
  --keepalive <duration>   PING interval of agent sessions [${L.keepaliveIntervalMs / 1000}s]; --keepalive-timeout <duration> [${L.keepaliveTimeoutMs / 1000}s]
  --log-level <level>      [info]                                       env LOG_LEVEL

SIGHUP: reload the configuration, applying a change the watcher held back (empty file, mass removal),
and re-read the CA files.
`;

function hostPort(s: string, flag: string): { host: string; port: number } {
  const i = s.lastIndexOf(":");
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`${flag} must be host:port, got "${s}"`);
  }
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ""), port };
}

function duration(value: string | undefined, flag: string, minMs: number): number | undefined {
  if (value === undefined) return undefined;
  let ms: number;
  try {
    ms = durationMs(value);
  } catch (err) {
    throw new ConfigError(`${flag}: ${(err as Error).message}`);
  }
  if (ms < minMs) throw new ConfigError(`${flag} must be at least ${minMs}ms, got "${value}"`);
  return ms;
}

function integer(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < min || n > max)
    throw new ConfigError(`${flag} must be an integer from ${min} to ${max}, got "${value}"`);
  return n;
}

/** The endpoint limit flags; anything not given keeps its default (limits.ts). */
function sessionLimits(
  v: Readonly<Record<string, string | boolean | string[] | undefined>>,
  env: NodeJS.ProcessEnv,
): Partial<SessionLimits> {
  const str = (k: string) => (typeof v[k] === "string" ? v[k] : undefined);
  const max = 1 << 20;
  const out: Partial<SessionLimits> = {
    authTimeoutMs: duration(
      str("auth-timeout") ?? env.NODEMESH_CONTROLLER_AUTH_TIMEOUT,
      "--auth-timeout",
      100,
    ),
    maxPendingSessions: integer(str("max-pending-sessions"), "--max-pending-sessions", 1, max),
    maxPendingPerAddress: integer(str("max-pending-per-address"), "--max-pending-per-address", 1, max),
    maxConnections: integer(str("max-connections"), "--max-connections", 1, max),
    keepaliveIntervalMs: duration(str("keepalive"), "--keepalive", 100),
    keepaliveTimeoutMs: duration(str("keepalive-timeout"), "--keepalive-timeout", 100),
  };
  for (const k of Object.keys(out) as (keyof SessionLimits)[]) if (out[k] === undefined) delete out[k];
  resolveSessionLimits(out); // fails here, with the flag's field named, rather than at start
  return out;
}

function addToken(tokens: Map<string, string>, spec: string, where: string): void {
  const m = /^\s*([^\s=]+)\s*[=\s]\s*(\S+)\s*$/.exec(spec);
  if (!m) throw new ConfigError(`${where}: expected "node=token", got "${spec}"`);
  const [, node, token] = m as unknown as [string, string, string];
  if (token.length < 16)
    throw new ConfigError(
      `${where}: the token of node ${node} is shorter than 16 characters; use a random one`,
    );
  if (tokens.has(token)) throw new ConfigError(`${where}: two nodes share one token`);
  tokens.set(token, node);
}

/** How agents authenticate: bootstrap tokens only, or also TokenReview for the agents' ServiceAccount. */
export type NodeAuthKind = { kind: "tokens" } | { kind: "tokenreview"; agentServiceAccount: string };

function nodeAuthOf(
  flag: string | undefined,
  serviceAccount: string | undefined,
  sourceKind: "file" | "kube",
  env: NodeJS.ProcessEnv,
): NodeAuthKind {
  const kind = flag ?? env.NODEMESH_NODE_AUTH ?? "tokens";
  const sa = serviceAccount ?? env.NODEMESH_AGENT_SERVICE_ACCOUNT;
  if (kind === "tokens") {
    if (serviceAccount) throw new ConfigError("--agent-service-account needs --node-auth tokenreview");
    return { kind };
  }
  if (kind !== "tokenreview")
    throw new ConfigError(`--node-auth must be "tokens" or "tokenreview", got "${kind}"`);
  if (sourceKind !== "kube")
    throw new ConfigError("--node-auth tokenreview needs --source kube (the API server reviews the tokens)");
  if (!sa || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(sa))
    throw new ConfigError(
      `--node-auth tokenreview needs --agent-service-account "<namespace>/<name>" (the agents' ServiceAccount; only its tokens are accepted), got "${sa ?? ""}"`,
    );
  return { kind, agentServiceAccount: sa };
}

/** The mesh-wide outbound traffic policy; a typo must not silently leave the mesh open (or closed). */
function outboundPolicyOf(value: string | undefined): OutboundTrafficPolicy {
  if (value === undefined || value === "") return { mode: "ALLOW_ANY" };
  const mode = OUTBOUND_MODES.find((m) => m === value);
  if (!mode)
    throw new ConfigError(`--outbound-traffic-policy must be ${OUTBOUND_MODES.join(" or ")}, got "${value}"`);
  return { mode };
}

/** Parses argv + env into options (exported for tests). */
export function parseControllerArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): Omit<ControllerOptions, "log" | "source"> & {
  logLevel: string;
  sourceKind: "file" | "kube";
  kubeconfig: string | undefined;
  nodeAuth: NodeAuthKind;
} {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      source: { type: "string" },
      kubeconfig: { type: "string" },
      listen: { type: "string" },
      monitoring: { type: "string" },
      "ca-dir": { type: "string" },
      "ca-cert": { type: "string" },
      "ca-key": { type: "string" },
      "ca-extra-roots": { type: "string" },
      "trust-domain": { type: "string" },
      "root-namespace": { type: "string" },
      "outbound-traffic-policy": { type: "string" },
      "svid-ttl": { type: "string" },
      "node-token": { type: "string", multiple: true },
      "node-tokens-file": { type: "string" },
      "node-auth": { type: "string" },
      "agent-service-account": { type: "string" },
      "server-name": { type: "string", multiple: true },
      "log-level": { type: "string" },
      "max-removal-percent": { type: "string" },
      settle: { type: "string" },
      "global-ratelimit-interval": { type: "string" },
      "auth-timeout": { type: "string" },
      "max-pending-sessions": { type: "string" },
      "max-pending-per-address": { type: "string" },
      "max-connections": { type: "string" },
      keepalive: { type: "string" },
      "keepalive-timeout": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) throw new ConfigError(USAGE);
  const sourceKind = values.source ?? env.NODEMESH_CONTROLLER_SOURCE ?? "file";
  if (sourceKind !== "file" && sourceKind !== "kube")
    throw new ConfigError(`--source must be "file" or "kube", got "${sourceKind}"`);
  const configPath = values.config ?? env.NODEMESH_CONTROLLER_CONFIG;
  if (sourceKind === "file" && !configPath) throw new ConfigError(`--config is required\n${USAGE}`);
  if (sourceKind === "kube" && values.config)
    throw new ConfigError("--config and --source kube are exclusive: the Kubernetes API is the source");
  const kubeconfig = values.kubeconfig ?? env.NODEMESH_KUBECONFIG;
  if (kubeconfig && sourceKind !== "kube") throw new ConfigError("--kubeconfig needs --source kube");
  const nodeAuth = nodeAuthOf(values["node-auth"], values["agent-service-account"], sourceKind, env);
  const tokens = new Map<string, string>();
  for (const t of values["node-token"] ?? []) addToken(tokens, t, "--node-token");
  const tokensFile = values["node-tokens-file"] ?? env.NODEMESH_NODE_TOKENS_FILE;
  if (tokensFile) {
    readFileSync(tokensFile, "utf8")
      .split("\n")
      .forEach((line, i) => {
        if (line.trim() && !line.trim().startsWith("#")) addToken(tokens, line, `${tokensFile}:${i + 1}`);
      });
  }
  const ttl = values["svid-ttl"] ?? env.NODEMESH_SVID_TTL ?? "24h";
  let svidTtlMs: number;
  try {
    svidTtlMs = durationMs(ttl);
  } catch (err) {
    throw new ConfigError(`--svid-ttl: ${(err as Error).message}`);
  }
  if (svidTtlMs < 1000) throw new ConfigError("--svid-ttl must be at least 1s");
  const names = values["server-name"] ?? ["localhost", "127.0.0.1", hostname()];
  const caCert = values["ca-cert"] ?? env.NODEMESH_CA_CERT;
  const caKey = values["ca-key"] ?? env.NODEMESH_CA_KEY;
  return {
    configPath: sourceKind === "file" ? configPath : undefined,
    sourceKind,
    kubeconfig,
    nodeAuth,
    listen: hostPort(
      values.listen ?? env.NODEMESH_CONTROLLER_LISTEN ?? `0.0.0.0:${CONTROLLER_PORT}`,
      "--listen",
    ),
    monitoring: hostPort(
      values.monitoring ?? env.NODEMESH_CONTROLLER_MONITORING ?? `127.0.0.1:${CONTROLLER_MONITORING_PORT}`,
      "--monitoring",
    ),
    ca: {
      ...(caCert || caKey
        ? { certFile: caCert, keyFile: caKey }
        : { dir: values["ca-dir"] ?? env.NODEMESH_CA_DIR ?? "/var/lib/nodemesh/ca" }),
      extraRootsFile: values["ca-extra-roots"] ?? env.NODEMESH_CA_EXTRA_ROOTS,
    },
    trustDomain: values["trust-domain"] ?? env.NODEMESH_TRUST_DOMAIN ?? DEFAULT_TRUST_DOMAIN,
    rootNamespace: values["root-namespace"] ?? env.NODEMESH_ROOT_NAMESPACE ?? DEFAULT_ROOT_NAMESPACE,
    outboundTrafficPolicy: outboundPolicyOf(
      values["outbound-traffic-policy"] ?? env.NODEMESH_OUTBOUND_TRAFFIC_POLICY,
    ),
    svidTtlMs,
    nodeTokens: tokens,
    serverNames: { dns: names.filter((n) => isIP(n) === 0), ips: names.filter((n) => isIP(n) !== 0) },
    logLevel: values["log-level"] ?? env.LOG_LEVEL ?? "info",
    maxRemovalPercent:
      integer(
        values["max-removal-percent"] ?? env.NODEMESH_CONTROLLER_MAX_REMOVAL_PERCENT,
        "--max-removal-percent",
        0,
        100,
      ) ?? DEFAULT_MAX_REMOVAL_PERCENT,
    settleMs: duration(values.settle ?? env.NODEMESH_CONTROLLER_SETTLE, "--settle", 0) ?? DEFAULT_SETTLE_MS,
    globalRateLimitIntervalMs: duration(
      values["global-ratelimit-interval"] ?? env.NODEMESH_CONTROLLER_GLOBAL_RATELIMIT_INTERVAL,
      "--global-ratelimit-interval",
      100,
    ),
    sessionLimits: sessionLimits(values, env),
  };
}

export async function controllerMain(argv: string[]): Promise<void> {
  let opts: ReturnType<typeof parseControllerArgs>;
  try {
    opts = parseControllerArgs(argv);
  } catch (err) {
    process.stderr.write(`nodemesh controller: ${(err as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  const log = pino({
    level: opts.logLevel,
    base: { pid: process.pid, hostname: hostname(), component: "controller" },
  });
  if (opts.nodeTokens.size === 0 && opts.nodeAuth.kind === "tokens")
    log.warn("no --node-token given: no agent can authenticate");
  let kube: Awaited<ReturnType<typeof kubeSource>> | undefined;
  if (opts.sourceKind === "kube") {
    try {
      kube = await kubeSource(opts.kubeconfig, log);
    } catch (err) {
      log.error({ err: (err as Error).message }, "cannot load the kubeconfig; check --kubeconfig");
      process.exitCode = 2;
      return;
    }
  }
  const reviewer =
    kube && opts.nodeAuth.kind === "tokenreview"
      ? new (await import("./sources/kube/token-review.ts")).TokenReviewAuthenticator({
          kubeConfig: kube.kubeConfig,
          agentServiceAccount: opts.nodeAuth.agentServiceAccount,
        })
      : undefined;
  const app = new ControllerApp({
    ...opts,
    log,
    source: kube?.source,
    nodeAuthenticator: reviewer && ((token) => reviewer.authenticate(token)),
  });
  kube?.leader.start();
  await app.start();
  process.on("SIGHUP", () => {
    log.info("SIGHUP: reloading configuration (forced: held-back changes apply) and CA");
    app.reload({ force: true });
    try {
      app.reloadCa();
    } catch (err) {
      log.error({ err }, "CA reload failed; still signing with the previous root");
    }
  });
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info({ signal: sig }, "stopping");
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  await kube?.leader.stop();
  await app.stop();
}

/**
 * The Kubernetes source and its leader election: every replica watches and serves agents; only the
 * Lease holder writes status and Events. POD_NAME and POD_NAMESPACE come from the downward API.
 */
async function kubeSource(
  kubeconfig: string | undefined,
  log: Logger,
): Promise<{ source: Source; leader: LeaderElector; kubeConfig: KubeConfig }> {
  const { KubeSource, loadKubeConfig } = await import("./sources/kube/source.ts");
  const { LeaderElector } = await import("./sources/kube/leader.ts");
  const kubeConfig = loadKubeConfig(kubeconfig);
  const identity = process.env.POD_NAME ?? hostname();
  const source = new KubeSource({
    kubeConfig,
    log,
    instance: identity,
    // Called only once the controller runs, after `leader` exists.
    writeStatus: () => leader.leading,
    // The chart sets it with the Roles that grant exactly these namespaces' Secrets.
    secretNamespaces: (process.env.NODEMESH_TLS_SECRET_NAMESPACES ?? "")
      .split(",")
      .map((n) => n.trim())
      .filter((n) => n !== ""),
  });
  const leader: LeaderElector = new LeaderElector({
    kubeConfig,
    namespace: process.env.POD_NAMESPACE ?? DEFAULT_ROOT_NAMESPACE,
    identity,
    log,
    onChange: (leading) => {
      log.info({ leading }, leading ? "leading: writing status" : "standby: serving agents only");
      if (leading) source.reportAll();
    },
  });
  return { source, leader, kubeConfig };
}
