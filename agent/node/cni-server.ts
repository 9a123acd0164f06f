// The node agent's end of the chained CNI plugin (cni/nodemesh-cni.ts): a unix socket on which
// the plugin says "pod U is being set up in netns N" (add), "forget U" (del) or "is U enrolled?"
// (check), one JSON line each way (cni/wire.ts). An add records the hint and waits, bounded by
// the plugin's waitMs, until the agent has enrolled the pod in that netns, or until the controller's
// config names the pod as not meshed (agent/node/membership.ts: then nothing is enrolled and the
// answer says so); either answer lets the runtime start the pod's containers. A pod the config does
// not name yet (the controller's watch lags the kubelet) is held like a meshed one: at the bound the
// answer is a refusal, never a guess that it is not meshed.
//
// Invariants: the socket is owned by root and mode 0600 (only the runtime's plugin may steer
// enrollment); a request line is at most MAX_LINE bytes and at most MAX_CONNECTIONS are open, so a
// flood cannot exhaust the agent; a connection closed by the plugin ends its wait.
import { chmod, lstat, mkdir, unlink } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { parseRequest, type CniAnswer, type CniRequest, type PodFacts } from "../../cni/wire.ts";
import type { PodMembership } from "./membership.ts";

/** What the server needs of the agent (app.ts implements it). */
export interface PodEnrollment {
  /**
   * Records where pod `podUid` lives (and, from the CNI result, its address and names) and enrolls it
   * now when the config already has it, as a workload or as a pod without an IP yet.
   */
  hintPod(podUid: string, netns: string, facts?: PodFacts): void;
  forgetPod(podUid: string): void;
  /** undefined when the pod is enrolled (in `netns`, when given); otherwise why not, for the plugin. */
  whyNotEnrolled(podUid: string, netns?: string): string | undefined;
  /** What the controller's config says of the pod: meshed, not meshed, or nothing (yet). */
  membership(podUid: string): PodMembership;
}

export interface CniServerOptions {
  readonly socketPath: string;
  readonly pods: PodEnrollment;
  readonly log: Logger;
  /** How often a waiting add looks again; default 20 ms (enrolment itself takes ~5-50 ms). */
  readonly pollMs?: number;
}

const MAX_LINE = 4096;
const MAX_CONNECTIONS = 256;

export class CniServer {
  readonly #opts: CniServerOptions;
  readonly #server: Server;
  readonly #open = new Set<Socket>();

  constructor(opts: CniServerOptions) {
    this.#opts = opts;
    this.#server = createServer((s) => this.#accept(s));
    this.#server.maxConnections = MAX_CONNECTIONS;
  }

  async listen(): Promise<void> {
    const path = this.#opts.socketPath;
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await removeStaleSocket(path);
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(path, () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
    await chmod(path, 0o600);
    this.#opts.log.info({ socket: path }, "listening for the CNI plugin");
  }

  async close(): Promise<void> {
    for (const s of this.#open) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: Socket): void {
    this.#open.add(socket);
    socket.on("close", () => this.#open.delete(socket));
    socket.on("error", () => socket.destroy());
    socket.setEncoding("utf8");
    let buf = "";
    const onData = (d: string): void => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl < 0 && buf.length <= MAX_LINE) return;
      socket.off("data", onData);
      if (nl < 0 || nl > MAX_LINE)
        return this.#answer(socket, { ok: false, error: `request longer than ${MAX_LINE} bytes` });
      void this.#serve(socket, buf.slice(0, nl));
    };
    socket.on("data", onData);
  }

  async #serve(socket: Socket, line: string): Promise<void> {
    let req: CniRequest;
    try {
      req = parseRequest(line);
    } catch (err) {
      return this.#answer(socket, { ok: false, error: `bad request: ${(err as Error).message}` });
    }
    const { pods, log } = this.#opts;
    if (req.op === "del") {
      pods.forgetPod(req.podUid);
      log.info({ podUid: req.podUid }, "CNI DEL: netns hint forgotten");
      return this.#answer(socket, { ok: true });
    }
    if (req.op === "check") {
      const why = pods.whyNotEnrolled(req.podUid);
      if (why === undefined) return this.#answer(socket, { ok: true });
      // ADD let a pod that is not meshed through with nothing enrolled: that is still its state.
      if (pods.membership(req.podUid).state === "unmeshed")
        return this.#answer(socket, { ok: true, notMeshed: true });
      return this.#answer(socket, { ok: false, error: why });
    }
    pods.hintPod(req.podUid, req.netns, req.facts);
    log.info(
      { podUid: req.podUid, netns: req.netns, ...req.facts, waitMs: req.waitMs },
      "CNI ADD: waiting for enrolment",
    );
    const started = Date.now();
    const out = await this.#waitAdd(socket, req.podUid, req.netns, started + req.waitMs);
    const ms = Date.now() - started;
    if (out === "enrolled") log.info({ podUid: req.podUid, ms }, "CNI ADD: pod enrolled");
    else if (out === "unmeshed")
      log.info({ podUid: req.podUid, ms }, "CNI ADD: pod not meshed (the controller says so); let through");
    else log.warn({ podUid: req.podUid, reason: out.why }, "CNI ADD refused: pod not enrolled in time");
    this.#answer(
      socket,
      out === "enrolled"
        ? { ok: true }
        : out === "unmeshed"
          ? { ok: true, notMeshed: true }
          : { ok: false, error: `not enrolled after ${req.waitMs} ms: ${out.why}` },
    );
  }

  /** Polls until the pod is enrolled in `netns`, is named not meshed, or the deadline passes. */
  async #waitAdd(
    socket: Socket,
    uid: string,
    netns: string,
    deadline: number,
  ): Promise<"enrolled" | "unmeshed" | { why: string }> {
    const poll = this.#opts.pollMs ?? 20;
    const { pods } = this.#opts;
    for (;;) {
      const why = pods.whyNotEnrolled(uid, netns);
      if (why === undefined) return "enrolled";
      const m = pods.membership(uid);
      if (m.state === "unmeshed") return "unmeshed";
      if (Date.now() >= deadline || socket.destroyed)
        return { why: (m.state === "unknown" ? m.why : undefined) ?? why };
      await new Promise((r) => setTimeout(r, Math.min(poll, Math.max(1, deadline - Date.now()))));
    }
  }

  #answer(socket: Socket, answer: CniAnswer): void {
    if (!socket.destroyed) socket.end(`${JSON.stringify(answer)}\n`);
  }
}

/** A socket left by a previous agent blocks listen(); anything else at that path is not ours. */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    const st = await lstat(path);
    if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}
