// The agent's side of the socket keeper (keeper.ts): finds the node's keeper or starts it, takes
// back the listeners it holds (after a crash or during a hand-over), and gives it a copy of each
// listener the agent opens. The keeper is a convenience for crash safety, never a dependency: when
// it cannot be reached the agent serves as before (its listeners then die with it) and says so.
import { spawn } from "node:child_process";
import { closeSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { copyFdFrom, listenerAddress } from "../../../native/index.ts";
import {
  keeperSocketName,
  LineReader,
  type HeldListener,
  type KeeperReply,
  type KeeperRequest,
} from "./protocol.ts";

export interface KeeperClientOptions {
  /** The agent's pin directory: it names the keeper (one per agent instance set on a node). */
  pinDir: string;
  /** argv (after the node binary) that starts a keeper: `[bin/nodemesh.js, "keeper"]`. */
  command: readonly string[];
  /** How long the keeper holds listeners with no agent connected. */
  graceMs: number;
}

type Pending = (reply: KeeperReply) => void;

export class KeeperClient {
  readonly #socket: Socket;
  readonly #pending: Pending[] = [];
  readonly keeperPid: number;
  readonly graceMs: number;
  /** Listeners held when this agent said hello, by key; taken (and removed) by adopt(). */
  readonly #inherited: Map<string, number>;

  private constructor(socket: Socket, hello: { pid: number; held: HeldListener[]; graceMs: number }) {
    this.#socket = socket;
    this.keeperPid = hello.pid;
    this.graceMs = hello.graceMs;
    this.#inherited = new Map(hello.held.map((h) => [h.key, h.fd]));
    const reader = new LineReader((line) => this.#pending.shift()?.(JSON.parse(line) as KeeperReply));
    socket.on("data", (chunk: string) => reader.push(chunk));
    socket.on("close", () => {
      for (const p of this.#pending.splice(0)) p({ ok: false, error: "connection closed" });
    });
    socket.on("error", () => {});
  }

  /** Connects to a running keeper without starting one; undefined when none answers. */
  static async find(pinDir: string): Promise<KeeperClient | undefined> {
    const socket = await dial(keeperSocketName(pinDir)).catch(() => undefined);
    return socket ? new KeeperClient(socket, await handshake(socket)) : undefined;
  }

  /** Connects to the node's keeper, starting one when none answers. */
  static async open(opts: KeeperClientOptions): Promise<KeeperClient> {
    const name = keeperSocketName(opts.pinDir);
    let socket = await dial(name).catch(() => undefined);
    if (!socket) {
      const child = spawn(
        process.execPath,
        [...opts.command, "--pin-dir", opts.pinDir, "--grace-ms", String(opts.graceMs)],
        { detached: true, stdio: "ignore" },
      );
      child.unref();
      socket = await retryDial(name, 5_000);
    }
    const first = await handshake(socket);
    return new KeeperClient(socket, first);
  }

  /** Keys the keeper held at hello that adopt() has not taken. */
  unadopted(): string[] {
    return [...this.#inherited.keys()];
  }

  /** How many listeners the keeper held for this agent to take back. */
  get inheritedCount(): number {
    return this.#inherited.size;
  }

  /**
   * The keeper's listener for `key`, copied into this process, when it is still a listener on
   * host:port; undefined when there is none (or it is not what the key says: then it is dropped).
   */
  adopt(key: string, host: string, port: number): number | undefined {
    const theirs = this.#inherited.get(key);
    if (theirs === undefined) return undefined;
    this.#inherited.delete(key);
    let fd: number | undefined;
    try {
      fd = copyFdFrom(this.keeperPid, theirs);
      const at = listenerAddress(fd);
      if (at.host === host && at.port === port) return fd;
    } catch {
      /* fall through: open a fresh listener */
    }
    if (fd !== undefined) closeSync(fd);
    return undefined;
  }

  hold(key: string, fd: number): Promise<void> {
    return this.#call({ op: "hold", key, fd });
  }

  drop(key: string): Promise<void> {
    return this.#call({ op: "drop", key });
  }

  /** Asks the keeper to release everything and exit (uninstall). */
  stop(): Promise<void> {
    return this.#call({ op: "stop" });
  }

  /** Disconnects; the keeper keeps what it holds for the next agent (within its grace time). */
  close(): void {
    this.#socket.destroy();
  }

  async #call(req: KeeperRequest): Promise<void> {
    const reply = await this.#request(req);
    if (!reply.ok) throw new Error(`socket keeper: ${req.op} refused: ${reply.error}`);
  }

  #request(req: KeeperRequest): Promise<KeeperReply> {
    if (this.#socket.destroyed) return Promise.reject(new Error("socket keeper: connection closed"));
    return new Promise((resolve) => {
      this.#pending.push(resolve);
      this.#socket.write(`${JSON.stringify(req)}\n`);
    });
  }
}

function dial(name: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(name);
    s.once("connect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

async function retryDial(name: string, withinMs: number): Promise<Socket> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await dial(name);
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`socket keeper did not start: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

function handshake(socket: Socket): Promise<{ pid: number; held: HeldListener[]; graceMs: number }> {
  return new Promise((resolve, reject) => {
    socket.setEncoding("utf8");
    // The hello reply is the first line; the client's own reader takes over for the rest.
    const reader = new LineReader((line) => {
      socket.off("data", onData);
      const reply = JSON.parse(line) as KeeperReply;
      if (!reply.ok || !("pid" in reply)) reject(new Error("socket keeper refused hello"));
      else resolve(reply);
    });
    const onData = (chunk: string) => reader.push(chunk);
    socket.on("data", onData);
    socket.once("close", () => reject(new Error("socket keeper closed the connection")));
    socket.write(`${JSON.stringify({ op: "hello", pid: process.pid })}\n`);
  });
}
