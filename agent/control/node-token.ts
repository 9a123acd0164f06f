// The token the agent presents to the controller: a fixed bootstrap token, or a file re-read on
// every (re)connect. On Kubernetes the file is a projected service-account token that the kubelet
// rotates (by default at 80% of its lifetime), so a token read once at start would expire under a
// long-lived agent and every reconnect after that would be refused.
//
// Fail safe, not open: a read that fails or finds an empty file keeps the last good token (the
// kubelet swaps the file atomically, but an operator's editor may not) and says so once per change
// of error; the controller still decides whether that token is good.
import { readFileSync } from "node:fs";
import type { Logger } from "pino";

export class NodeToken {
  readonly #file: string | undefined;
  readonly #log: Logger;
  #token: string;
  #lastError = "";

  /** Needs `token` or `file`; reads `file` now and throws, naming it, when that fails. */
  constructor(opts: { token?: string; file?: string; log: Logger }) {
    this.#file = opts.file;
    this.#log = opts.log;
    if (opts.token) {
      this.#token = opts.token;
      return;
    }
    if (!opts.file) throw new TypeError("ControllerClient needs token or tokenFile");
    const first = read(opts.file);
    if (first instanceof Error) throw first;
    this.#token = first;
  }

  /** The token to present now. */
  get value(): string {
    return this.#token;
  }

  /** Re-reads the file (if any); returns the token to present. */
  refresh(): string {
    if (!this.#file) return this.#token;
    const next = read(this.#file);
    if (next instanceof Error) {
      if (next.message !== this.#lastError)
        this.#log.warn(
          { file: this.#file, err: next.message },
          "cannot re-read the node token; presenting the last one",
        );
      this.#lastError = next.message;
      return this.#token;
    }
    this.#lastError = "";
    if (next !== this.#token)
      this.#log.info({ file: this.#file }, "node token changed; presenting the new one");
    this.#token = next;
    return next;
  }
}

function read(file: string): string | Error {
  try {
    const t = readFileSync(file, "utf8").trim();
    return t ? t : new Error(`the node token file ${file} is empty`);
  } catch (err) {
    return new Error(`cannot read the node token file ${file}: ${(err as Error).message}`);
  }
}
