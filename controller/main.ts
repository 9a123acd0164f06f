// `nodemesh controller …`: flags (and NODEMESH_CONTROLLER_* env equivalents) → ControllerApp.
// SIGHUP re-reads the configuration and the CA files (root rotation); SIGTERM/SIGINT stop.
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import pino from "pino";
import {
  CONTROLLER_MONITORING_PORT,
  CONTROLLER_PORT,
  DEFAULT_ROOT_NAMESPACE,
  DEFAULT_TRUST_DOMAIN,
  durationMs,
} from "./api/index.ts";
import { ControllerApp } from "./app.ts";
import type { ControllerOptions } from "./app.ts";
import { ConfigError } from "./errors.ts";

export const USAGE = `usage: nodemesh controller --config <file|dir> [options]

  --config <path>          YAML file or directory of resources         env NODEMESH_CONTROLLER_CONFIG
  --listen <host:port>     agent endpoint (HTTP/2 + TLS)  [0.0.0.0:${CONTROLLER_PORT}]  env NODEMESH_CONTROLLER_LISTEN
  --monitoring <host:port> /metrics /healthz /readyz [127.0.0.1:${CONTROLLER_MONITORING_PORT}]  env NODEMESH_CONTROLLER_MONITORING
  --ca-dir <dir>           CA root, generated on first start [/var/lib/nodemesh/ca]  env NODEMESH_CA_DIR
  --ca-cert <pem> --ca-key <pem>   operator-provided root instead of --ca-dir  env NODEMESH_CA_CERT, NODEMESH_CA_KEY
  --ca-extra-roots <pem>   extra roots to trust (rotation)              env NODEMESH_CA_EXTRA_ROOTS
  --trust-domain <td>      [${DEFAULT_TRUST_DOMAIN}]                    env NODEMESH_TRUST_DOMAIN
  --root-namespace <ns>    mesh-wide policy namespace [${DEFAULT_ROOT_NAMESPACE}]  env NODEMESH_ROOT_NAMESPACE
  --svid-ttl <duration>    workload certificate lifetime [24h]          env NODEMESH_SVID_TTL
  --node-token <node=tok>  bootstrap token of a node (repeatable)
  --node-tokens-file <f>   lines "node token" or "node=token"           env NODEMESH_NODE_TOKENS_FILE
  --server-name <name>     DNS name or IP in the controller certificate (repeatable) [localhost, 127.0.0.1, hostname]
  --log-level <level>      [info]                                       env LOG_LEVEL
`;

function hostPort(s: string, flag: string): { host: string; port: number } {
  const i = s.lastIndexOf(":");
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`${flag} must be host:port, got "${s}"`);
  }
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ""), port };
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

/** Parses argv + env into options (exported for tests). */
export function parseControllerArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): Omit<ControllerOptions, "log"> & { logLevel: string } {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      listen: { type: "string" },
      monitoring: { type: "string" },
      "ca-dir": { type: "string" },
      "ca-cert": { type: "string" },
      "ca-key": { type: "string" },
      "ca-extra-roots": { type: "string" },
      "trust-domain": { type: "string" },
      "root-namespace": { type: "string" },
      "svid-ttl": { type: "string" },
      "node-token": { type: "string", multiple: true },
      "node-tokens-file": { type: "string" },
      "server-name": { type: "string", multiple: true },
      "log-level": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) throw new ConfigError(USAGE);
  const configPath = values.config ?? env.NODEMESH_CONTROLLER_CONFIG;
  if (!configPath) throw new ConfigError(`--config is required\n${USAGE}`);
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
    configPath,
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
    svidTtlMs,
    nodeTokens: tokens,
    serverNames: { dns: names.filter((n) => isIP(n) === 0), ips: names.filter((n) => isIP(n) !== 0) },
    logLevel: values["log-level"] ?? env.LOG_LEVEL ?? "info",
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
  if (opts.nodeTokens.size === 0) log.warn("no --node-token given: no agent can authenticate");
  const app = new ControllerApp({ ...opts, log });
  await app.start();
  process.on("SIGHUP", () => {
    log.info("SIGHUP: reloading configuration and CA");
    app.reload();
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
  await app.stop();
}
