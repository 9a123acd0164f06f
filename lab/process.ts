// A long-lived process the lab started inside one of its hosts. Killed at the lab's teardown at
// the latest. Output is kept (its last MiB) so that tests can wait for a readiness line.
import type { ChildProcessByStdio } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { LabError } from "./errors.ts";
import type { LabHost } from "./plan.ts";

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const KEEP_OUTPUT = 1 << 20;

export class LabProcess {
  readonly host: LabHost;
  readonly argv: readonly string[];
  /** pid of the program itself: the lab's wrappers exec into it without forking */
  readonly pid: number;
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly exited: Promise<ProcessExit>;
  #child: ChildProcessByStdio<Writable, Readable, Readable>;
  #output = "";
  #exit: ProcessExit | undefined;
  #waiters = new Set<() => void>();

  constructor(
    host: LabHost,
    argv: readonly string[],
    child: ChildProcessByStdio<Writable, Readable, Readable>,
  ) {
    if (child.pid === undefined) {
      throw new LabError("NODEMESH_ERR_LAB_COMMAND", `cannot start ${argv.join(" ")} in ${host.netns}`);
    }
    this.host = host;
    this.argv = argv;
    this.pid = child.pid;
    this.stdin = child.stdin;
    this.stdout = child.stdout;
    this.stderr = child.stderr;
    this.#child = child;
    const keep = (d: Buffer) => {
      // `+=` makes a rope in O(1); trimming flattens it, so trim only at twice the limit (amortized O(1)
      // per byte). Slicing on every chunk copied a MiB per chunk: a chatty child (one access-log line per
      // chunk) then cost a whole core here and starved the processes under test.
      this.#output += d.toString("utf8");
      if (this.#output.length > 2 * KEEP_OUTPUT) this.#output = this.#output.slice(-KEEP_OUTPUT);
      for (const w of this.#waiters) w();
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.stdin.on("error", () => {});
    this.exited = new Promise((resolve) => {
      child.on("close", (code, signal) => {
        this.#exit = { code, signal };
        for (const w of this.#waiters) w();
        resolve(this.#exit);
      });
    });
  }

  /** stdout and stderr so far, interleaved as they arrived (last MiB). */
  get output(): string {
    return this.#output.length > KEEP_OUTPUT ? this.#output.slice(-KEEP_OUTPUT) : this.#output;
  }

  get exitStatus(): ProcessExit | undefined {
    return this.#exit;
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): boolean {
    return this.#exit === undefined && this.#child.kill(signal);
  }

  /** Resolves with the output once it matches `pattern`; rejects if the process exits first or on timeout. */
  waitForOutput(pattern: RegExp | string, timeoutMs = 10_000): Promise<string> {
    const matches = () =>
      typeof pattern === "string" ? this.#output.includes(pattern) : pattern.test(this.#output);
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        if (err) reject(err);
        else resolve(this.output);
      };
      const fail = (why: string) =>
        new LabError(
          "NODEMESH_ERR_LAB_COMMAND",
          `${this.argv.join(" ")} in ${this.host.netns} ${why} before printing ${String(pattern)}; output: ${this.#output.slice(-500) || "none"}`,
        );
      const check = () => {
        if (matches()) done();
        else if (this.#exit) done(fail(`exited (${this.#exit.code ?? this.#exit.signal})`));
      };
      const timer = setTimeout(() => done(fail(`timed out after ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }
}
