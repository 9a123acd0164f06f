// nodemesh-cni: a chained CNI plugin the container runtime runs while it sets up a pod's sandbox.
// ADD tells the node agent "pod U is in netns N, with address A" (A from the previous plugin's
// result: the kubelet publishes the pod's IP only after ADD) over its unix socket and waits until
// the agent says the pod is enrolled, or that the controller names it not meshed (its namespace is
// not labelled, or the pod opted out: nothing is enrolled, and the sandbox starts at once), then
// passes the previous plugin's result through; DEL tells it to forget; CHECK asks whether the pod is
// enrolled (or not meshed).
//
// Fail closed: when the agent does not confirm in time (not running, config not there yet, the
// controller has not said yet whether the pod is meshed), ADD
// fails with a CNI error and the kubelet tears the sandbox down and retries it, so an application
// never starts with its connections leaving unmeshed. Fail-open would let the pod start and be
// captured later, which is what running without the plugin already gives. DEL never fails on an
// absent agent: the spec wants DEL to succeed when there is nothing left to clean up.
import { createConnection } from "node:net";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  CniError,
  ERR,
  addResult,
  errorResult,
  parseConfig,
  parseInvocation,
  podToEnroll,
  versionResult,
} from "./protocol.ts";
import { podIPv4 } from "./prev-result.ts";
import { parseAnswer, type CniAnswer, type CniRequest } from "./wire.ts";

/** Sends one request to the agent; resolves with its answer or rejects on a socket failure. */
export type Send = (socket: string, req: CniRequest, timeoutMs: number) => Promise<CniAnswer>;

/** Headroom over the agent's own wait, so its "not enrolled after N ms" answer arrives first. */
const ANSWER_GRACE_MS = 2_000;

export const sendToAgent: Send = (socket, req, timeoutMs) =>
  new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    let buf = "";
    const timer = setTimeout(() => {
      conn.destroy();
      reject(
        new CniError(ERR.tryAgainLater, `the nodemesh agent on ${socket} did not answer in ${timeoutMs} ms`),
      );
    }, timeoutMs);
    conn.setEncoding("utf8");
    conn.on("connect", () => conn.write(`${JSON.stringify(req)}\n`));
    conn.on("data", (d: string) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      conn.end();
      resolve(parseAnswer(buf.slice(0, nl)));
    });
    conn.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new CniError(
          ERR.tryAgainLater,
          `cannot reach the nodemesh agent on ${socket} (${err.code ?? err.message}); is the agent running on this node?`,
        ),
      );
    });
    conn.on("end", () => {
      clearTimeout(timer);
      if (!buf.includes("\n"))
        reject(new CniError(ERR.ioFailure, `the nodemesh agent on ${socket} closed without an answer`));
    });
  });

export interface PluginOutput {
  readonly stdout: string;
  readonly exitCode: number;
}

async function handle(
  env: NodeJS.ProcessEnv,
  stdin: string,
  send: Send,
): Promise<Record<string, unknown> | undefined> {
  const inv = parseInvocation(env);
  if (inv.command === "VERSION") return versionResult(parseVersionOnly(stdin));
  const config = parseConfig(stdin, inv.command === "ADD");
  const pod = podToEnroll(inv.pod, config);
  if (inv.command === "DEL") {
    if (pod)
      await send(config.agentSocket, { op: "del", podUid: pod.uid }, ANSWER_GRACE_MS).catch(() => undefined);
    return undefined;
  }
  if (!pod) return inv.command === "ADD" ? addResult(config) : undefined;
  // A result without a usable IPv4 address matters only for a pod that must be enrolled: one that is
  // not meshed (an IPv6-only pod of an unlabelled namespace) passes. The agent decides which it is.
  const address = inv.command === "ADD" ? addressOrError(config.prevResult) : undefined;
  const req: CniRequest =
    inv.command === "ADD"
      ? {
          op: "add",
          podUid: pod.uid,
          netns: inv.netns,
          waitMs: config.enrollTimeoutMs,
          facts: {
            ...(typeof address === "string" ? { address } : {}),
            ...(pod.namespace ? { namespace: pod.namespace } : {}),
            ...(pod.name ? { name: pod.name } : {}),
          },
        }
      : { op: "check", podUid: pod.uid };
  const answer = await send(config.agentSocket, req, (req.op === "add" ? req.waitMs : 0) + ANSWER_GRACE_MS);
  if (!answer.ok) {
    const who = `pod ${pod.namespace ?? "?"}/${pod.name ?? "?"} (uid ${pod.uid})`;
    // The address problem is the cause the operator can fix; the agent's reason goes in details.
    if (address instanceof CniError)
      throw new CniError(
        address.code,
        `${who} cannot be enrolled in the mesh: ${address.message}`,
        answer.error,
      );
    throw new CniError(ERR.notEnrolled, `${who} is not enrolled in the mesh: ${answer.error}`);
  }
  return inv.command === "ADD" ? addResult(config) : undefined;
}

function addressOrError(prevResult: Record<string, unknown> | undefined): string | CniError {
  try {
    return podIPv4(prevResult);
  } catch (err) {
    if (err instanceof CniError) return err;
    throw err;
  }
}

/** VERSION may come with a config or with none; answer in its version when there is one. */
function parseVersionOnly(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return typeof v === "string" ? v : "1.1.0";
  } catch {
    return "1.1.0";
  }
}

/** The whole plugin as a function of its inputs: what to print and the exit code. */
export async function runPlugin(
  env: NodeJS.ProcessEnv,
  stdin: string,
  send: Send = sendToAgent,
): Promise<PluginOutput> {
  try {
    const out = await handle(env, stdin, send);
    return { stdout: out ? `${JSON.stringify(out)}\n` : "", exitCode: 0 };
  } catch (err) {
    return { stdout: `${JSON.stringify(errorResult(parseVersionOnly(stdin), err))}\n`, exitCode: 1 };
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function invokedDirectly(): boolean {
  const argv1 = process.argv[1];
  if (!argv1) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  const { stdout, exitCode } = await runPlugin(process.env, await readStdin());
  process.stdout.write(stdout);
  process.exitCode = exitCode;
}
