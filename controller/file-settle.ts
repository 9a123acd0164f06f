// Watching a config path so that a write in progress is never taken for the configuration. A
// writer that does not rename atomically (`cat > mesh.yaml`, `writeFileSync`, an editor saving in
// place) first truncates the file, then writes it in pieces; reading in between gives an empty or
// cut file. So a change is reported only once the path has been quiet (no watch event) for the
// settle time AND its signature (the file list, and each file's size, mtime and inode) is the same
// at the end of that time as at its start. Every further event or signature change restarts the
// wait. A writer that pauses longer than the settle time mid-file can still be read early; what
// it leaves is caught by the other rules (a cut document does not parse, an empty file is refused,
// a mass removal is held: see file-source.ts and config-guard.ts).
//
// Invariants: onChange runs only after a settled check, never twice for one settled signature;
// at most one timer is pending; nothing runs after close().
import { readdirSync, statSync, watch } from "node:fs";
import type { FSWatcher } from "node:fs";
import { basename, dirname, join } from "node:path";

/** Default settle time: one `cat > file` of a 10,000-workload file takes under 10 ms here. */
export const DEFAULT_SETTLE_MS = 50;

/** Checks of a still-changing path before the first "still being written" warning (≈ 5 s). */
const UNSTABLE_CHECKS = 100;

export const CONFIG_FILE = /\.(ya?ml|json)$/;

/** The config files under `path` (itself when it is a file), in name order. Throws when unreadable. */
export function listConfigFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { recursive: true, encoding: "utf8" })
    .filter((f) => CONFIG_FILE.test(f) && !basename(f).startsWith("."))
    .map((f) => join(path, f))
    .filter((f) => statSync(f).isFile())
    .sort();
}

/** What changes whenever a config file is created, removed, written, truncated or replaced. */
export function pathSignature(path: string): string {
  let files: string[];
  try {
    files = listConfigFiles(path);
  } catch (err) {
    return `unreadable:${(err as NodeJS.ErrnoException).code ?? ""}`;
  }
  const parts: string[] = [];
  for (const f of files) {
    try {
      const s = statSync(f, { bigint: true });
      parts.push(`${f}\0${s.size}\0${s.mtimeNs}\0${s.ino}`);
    } catch {
      parts.push(`${f}\0missing`);
    }
  }
  return parts.join("\n");
}

export interface SettledWatcherOptions {
  settleMs: number;
  /** Called once when a path keeps changing for UNSTABLE_CHECKS settle periods. */
  onUnstable?: (waitedMs: number) => void;
}

export class SettledWatcher {
  readonly #path: string;
  readonly #opts: SettledWatcherOptions;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Signature at the start of the current wait; undefined when no change is pending. */
  #start: string | undefined;
  #checks = 0;

  constructor(path: string, opts: SettledWatcherOptions) {
    this.#path = path;
    this.#opts = opts;
  }

  /** Starts watching; `onChange` runs after every settled change. */
  watch(onChange: () => void): void {
    if (this.#watcher) return;
    let isDir = false;
    try {
      isDir = statSync(this.#path).isDirectory();
    } catch {
      isDir = false;
    }
    const event = () => this.#event(onChange);
    if (isDir) {
      this.#watcher = watch(this.#path, { recursive: true }, event);
    } else {
      // Watch the directory: editors and `kubectl`-style tools replace the file by rename.
      const name = basename(this.#path);
      this.#watcher = watch(dirname(this.#path), (_ev, f) => {
        if (f === null || f === name) event();
      });
    }
  }

  /** Resolves once the path's signature has not changed for one settle time. */
  async settled(): Promise<void> {
    let before = pathSignature(this.#path);
    for (;;) {
      await new Promise((r) => setTimeout(r, this.#opts.settleMs));
      const now = pathSignature(this.#path);
      if (now === before) return;
      before = now;
    }
  }

  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#start = undefined;
  }

  #event(onChange: () => void): void {
    if (!this.#watcher) return;
    this.#start ??= pathSignature(this.#path);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#check(onChange), this.#opts.settleMs);
  }

  #check(onChange: () => void): void {
    this.#timer = undefined;
    if (!this.#watcher) return;
    const now = pathSignature(this.#path);
    if (now !== this.#start) {
      this.#start = now;
      this.#checks += 1;
      if (this.#checks === UNSTABLE_CHECKS) this.#opts.onUnstable?.(this.#checks * this.#opts.settleMs);
      this.#timer = setTimeout(() => this.#check(onChange), this.#opts.settleMs);
      return;
    }
    this.#start = undefined;
    this.#checks = 0;
    onChange();
  }
}
