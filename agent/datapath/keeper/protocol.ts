// The socket keeper's wire protocol: one JSON object per line over a Unix socket in the node's
// network namespace (abstract, so nothing is left on disk and each lab node has its own). The
// agent says hello (its pid), asks the keeper to hold a copy of a listener (by fd number in the
// agent: the keeper copies it with pidfd_getfd), to drop one, or to stop. Every request gets one
// reply, in order. Pure: parsing and names only.

/** The keeper of the agent whose BPF objects are pinned in `pinDir`. */
export function keeperSocketName(pinDir: string): string {
  return `\0nodemesh-keeper:${pinDir}`;
}

export type KeeperRequest =
  | { op: "hello"; pid: number }
  | { op: "hold"; key: string; fd: number }
  | { op: "drop"; key: string }
  | { op: "stop" };

export interface HeldListener {
  key: string;
  /** The fd number in the keeper process (copy it with pidfd_getfd from `pid`). */
  fd: number;
}

export type KeeperReply =
  | { ok: true; pid: number; held: HeldListener[]; graceMs: number }
  | { ok: true }
  | { ok: false; error: string };

/** Keys name a listener: `<netns cookie>/<host>:<port>`. */
export function listenerKey(netnsCookie: bigint, host: string, port: number): string {
  return `${netnsCookie}/${host}:${port}`;
}

const KEY = /^\d{1,20}\/\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}$/;
const MAX_LINE = 64 * 1024;

function isFd(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 1 << 30;
}

/** One request line, or an error naming what is wrong with it. */
export function parseRequest(line: string): KeeperRequest | { error: string } {
  if (line.length > MAX_LINE) return { error: `request longer than ${MAX_LINE} bytes` };
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return { error: "request is not JSON" };
  }
  if (typeof v !== "object" || v === null) return { error: "request is not an object" };
  const r = v as Record<string, unknown>;
  switch (r["op"]) {
    case "hello":
      return isFd(r["pid"]) && r["pid"] > 0 ? { op: "hello", pid: r["pid"] } : { error: "hello needs a pid" };
    case "hold":
      if (typeof r["key"] !== "string" || !KEY.test(r["key"])) return { error: "hold needs a listener key" };
      return isFd(r["fd"]) ? { op: "hold", key: r["key"], fd: r["fd"] } : { error: "hold needs an fd" };
    case "drop":
      if (typeof r["key"] !== "string" || !KEY.test(r["key"])) return { error: "drop needs a listener key" };
      return { op: "drop", key: r["key"] };
    case "stop":
      return { op: "stop" };
    default:
      return { error: `unknown op ${JSON.stringify(r["op"])}` };
  }
}

/** Splits a stream into lines; a line over the limit is an error (the peer is not an agent). */
export class LineReader {
  #buf = "";
  readonly #onLine: (line: string) => void;

  constructor(onLine: (line: string) => void) {
    this.#onLine = onLine;
  }

  push(chunk: string): void {
    this.#buf += chunk;
    let nl: number;
    while ((nl = this.#buf.indexOf("\n")) >= 0) {
      const line = this.#buf.slice(0, nl);
      this.#buf = this.#buf.slice(nl + 1);
      if (line.length > 0) this.#onLine(line);
    }
    if (this.#buf.length > MAX_LINE) throw new Error(`line longer than ${MAX_LINE} bytes`);
  }
}
