// The socket keeper: a small process per node that holds a copy of every in-pod listening socket
// of the agent, so that the sockets outlive an agent crash. While no agent runs, the kernel keeps
// completing the handshakes of new connections into the listeners' accept queues (the eBPF
// redirect is pinned and keeps sending pods' connects there); the next agent copies the listeners
// back and accepts them — a crash costs those connections a delay, not a failure. This is
// systemd's file-descriptor store and Envoy's hot-restart socket passing, reduced to what we need.
//
// Bounded: with no agent connected for `graceMs` the keeper closes every listener (new connects are
// then refused, as with no mesh agent at all — never sent around the mesh) and exits. It never
// accepts a connection itself and never reads application bytes.
import { closeSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { copyFdFrom, listenerAddress } from "../../../native/index.ts";
import {
  keeperSocketName,
  LineReader,
  parseRequest,
  type KeeperReply,
  type KeeperRequest,
} from "./protocol.ts";

export interface KeeperOptions {
  socketName: string;
  graceMs: number;
  /** Called when the keeper has released everything and should exit. */
  onExit: (reason: string) => void;
}

export class SocketKeeperServer {
  readonly #opts: KeeperOptions;
  readonly #held = new Map<string, number>();
  readonly #clients = new Map<Socket, number>();
  readonly #server: Server;
  #grace: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(opts: KeeperOptions) {
    this.#opts = opts;
    this.#server = createServer((s) => this.#accept(s));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.#opts.socketName, () => {
        this.#server.off("error", reject);
        this.#armGrace();
        resolve();
      });
    });
  }

  get held(): number {
    return this.#held.size;
  }

  #accept(s: Socket): void {
    this.#clients.set(s, 0);
    this.#disarmGrace();
    s.setEncoding("utf8");
    const reader = new LineReader((line) => this.#reply(s, this.#handle(s, line)));
    s.on("data", (chunk: string) => {
      try {
        reader.push(chunk);
      } catch {
        s.destroy();
      }
    });
    s.on("error", () => {});
    s.on("close", () => {
      this.#clients.delete(s);
      if (this.#clients.size === 0) this.#armGrace();
    });
  }

  #reply(s: Socket, reply: KeeperReply): void {
    if (!s.destroyed) s.write(`${JSON.stringify(reply)}\n`);
  }

  #handle(s: Socket, line: string): KeeperReply {
    const req = parseRequest(line);
    if ("error" in req) return { ok: false, error: req.error };
    try {
      return this.#apply(s, req);
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }

  #apply(s: Socket, req: KeeperRequest): KeeperReply {
    switch (req.op) {
      case "hello": {
        this.#clients.set(s, req.pid);
        const held = [...this.#held].map(([key, fd]) => ({ key, fd }));
        return { ok: true, pid: process.pid, held, graceMs: this.#opts.graceMs };
      }
      case "hold": {
        const pid = this.#clients.get(s) ?? 0;
        if (pid === 0) return { ok: false, error: "say hello first" };
        const copy = copyFdFrom(pid, req.fd);
        try {
          listenerAddress(copy); // only listening TCP sockets are kept
        } catch (err) {
          closeSync(copy);
          throw err;
        }
        const old = this.#held.get(req.key);
        this.#held.set(req.key, copy);
        if (old !== undefined) closeSync(old);
        return { ok: true };
      }
      case "drop": {
        const fd = this.#held.get(req.key);
        this.#held.delete(req.key);
        if (fd !== undefined) closeSync(fd);
        return { ok: true };
      }
      case "stop":
        setImmediate(() => this.stop("asked to stop"));
        return { ok: true };
    }
  }

  #armGrace(): void {
    this.#disarmGrace();
    this.#grace = setTimeout(() => this.stop(`no agent for ${this.#opts.graceMs} ms`), this.#opts.graceMs);
  }

  #disarmGrace(): void {
    if (this.#grace) clearTimeout(this.#grace);
    this.#grace = undefined;
  }

  /** Closes every held listener (their queued connections are reset) and the control socket. */
  stop(reason: string): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#disarmGrace();
    for (const fd of this.#held.values()) closeSync(fd);
    this.#held.clear();
    for (const s of this.#clients.keys()) s.destroy();
    this.#server.close();
    this.#opts.onExit(reason);
  }
}

/** `nodemesh keeper --pin-dir <dir> [--grace-ms <n>]`: started by the agent, not by people. */
export async function keeperMain(argv: string[]): Promise<number> {
  const pinDir = valueOf(argv, "--pin-dir");
  if (!pinDir) throw new Error("keeper: --pin-dir is required (the agent starts the keeper itself)");
  const graceRaw = valueOf(argv, "--grace-ms") ?? "30000";
  const graceMs = Number(graceRaw);
  if (!Number.isInteger(graceMs) || graceMs < 0)
    throw new Error(`keeper: --grace-ms ${graceRaw}: not a whole number`);
  let exit: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => (exit = resolve));
  const keeper = new SocketKeeperServer({
    socketName: keeperSocketName(pinDir),
    graceMs,
    onExit: () => exit(0),
  });
  await keeper.listen();
  process.once("SIGTERM", () => keeper.stop("SIGTERM"));
  return done;
}

function valueOf(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}
