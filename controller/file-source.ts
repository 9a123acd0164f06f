// File source for plain hosts: a multi-document YAML file, or a directory of *.yaml/*.yml/*.json
// files (recursively, in name order), parsed and validated with controller/api. It watches the
// path and reports each change as a whole: either every document is valid (`entries`) or the
// issues name file, document, resource, field and reason, with the `reason` the metrics count. It
// never builds the model (app.ts does).
//
// Fail closed: a file that holds no resource (empty, blank, comments or empty documents only) is
// refused, since truncating a file is the first step of every non-atomic write; a file that
// changes while it is read is refused as `unstable` (the watcher reads it again once it settles,
// file-settle.ts); a directory with no config file is refused like an empty file. A forced read
// (SIGHUP) accepts empty files: that is how an operator really empties the mesh.
//
// Invariants: a file whose content did not change is not parsed again (its validated entries and
// their JSON are reused, which keeps big directories cheap to reload and keeps object identity for
// the distribution's diff); in a changed file, only the documents whose text changed are parsed
// again (see yaml-documents.ts; one edited workload among 100 costs one document, not 100).
import { readFileSync, statSync } from "node:fs";
import type { BigIntStats } from "node:fs";
import { LineCounter, parseAllDocuments } from "yaml";
import { keyOf, keyString, validateDocument } from "./api/index.ts";
import type { ConfigIssue } from "./api/index.ts";
import type { ConfigRejectReason } from "./errors.ts";
import { DEFAULT_SETTLE_MS, SettledWatcher, listConfigFiles } from "./file-settle.ts";
import type { SourcedResource } from "./model/model.ts";
import { parseChangedDocuments } from "./yaml-documents.ts";
import type { ParsedDocuments } from "./yaml-documents.ts";

export interface FileReadResult {
  entries: SourcedResource[];
  issues: ConfigIssue[];
  files: string[];
  /** Why the read is refused, when `issues` is not empty (the most fundamental one). */
  reason?: ConfigRejectReason;
}

interface CachedFile {
  content: string;
  entries: SourcedResource[];
  issues: ConfigIssue[];
  /** Per-document results of a valid file, for re-parsing only the documents that change. */
  documents?: ParsedDocuments;
}

/** A file's result for one read: the cached parse, or a refusal that is never cached. */
type FileResult = { entries: SourcedResource[]; issues: ConfigIssue[]; reason?: ConfigRejectReason };

/** Order of `reason` when several files are refused for different reasons. */
const PRIORITY: readonly ConfigRejectReason[] = ["unreadable", "unstable", "empty_file", "invalid"];

const EMPTY_HINT =
  "a truncated file is taken for a write in progress or a mistake, so the last good configuration " +
  "keeps serving; to remove this file's resources, delete the file (in a directory) or send SIGHUP " +
  "to the controller to apply it as it is";

export interface FileSourceOptions {
  /** Quiet time before a change is read (file-settle.ts). */
  settleMs?: number;
  onUnstable?: (waitedMs: number) => void;
}

export class FileSource {
  readonly path: string;
  readonly #cache = new Map<string, CachedFile>();
  readonly #watcher: SettledWatcher;

  constructor(path: string, opts: FileSourceOptions = {}) {
    this.path = path;
    this.#watcher = new SettledWatcher(path, {
      settleMs: opts.settleMs ?? DEFAULT_SETTLE_MS,
      onUnstable: opts.onUnstable,
    });
  }

  /**
   * Reads every file now. An unreadable path is an issue, not an exception. `allowEmpty` (a
   * forced reload) accepts files, or a directory, that hold no resource.
   */
  read(opts: { allowEmpty?: boolean } = {}): FileReadResult {
    let files: string[];
    try {
      files = listConfigFiles(this.path);
    } catch (err) {
      const message = `cannot read: ${(err as Error).message}; check --config`;
      return { ...refusal(this.path, "unreadable", message), files: [] };
    }
    if (files.length === 0 && !opts.allowEmpty) {
      const message = `no *.yaml, *.yml or *.json file in this directory; ${EMPTY_HINT}`;
      return { ...refusal(this.path, "empty_file", message), files };
    }
    const entries: SourcedResource[] = [];
    const issues: ConfigIssue[] = [];
    const reasons = new Set<ConfigRejectReason>();
    const live = new Set(files);
    for (const f of this.#cache.keys()) if (!live.has(f)) this.#cache.delete(f);
    for (const f of files) {
      const got = this.#readFile(f, opts.allowEmpty ?? false);
      entries.push(...got.entries);
      issues.push(...got.issues);
      if (got.issues.length > 0) reasons.add(got.reason ?? "invalid");
    }
    const reason = PRIORITY.find((r) => reasons.has(r));
    return { entries, issues, files, ...(reason && { reason }) };
  }

  /** Calls `onChange` after every change under the path, once it has settled (file-settle.ts). */
  watch(onChange: () => void): void {
    this.#watcher.watch(onChange);
  }

  /** Resolves once the path has not changed for one settle time (before the first read). */
  settled(): Promise<void> {
    return this.#watcher.settled();
  }

  close(): void {
    this.#watcher.close();
  }

  #readFile(file: string, allowEmpty: boolean): FileResult {
    let content: string;
    try {
      content = readStable(file);
    } catch (err) {
      const unstable = err instanceof UnstableRead;
      return refusal(file, unstable ? "unstable" : "unreadable", (err as Error).message);
    }
    let got: CachedFile | undefined = this.#cache.get(file);
    if (!got || got.content !== content) {
      // Fast path: document by document, reusing unchanged ones. It gives up (undefined) on
      // anything it cannot reproduce exactly (syntax or schema errors, directives), and the
      // whole-file parse then produces the issues with their usual file, document, line and column.
      const fast = parseChangedDocuments(file, content, got?.documents);
      got = fast
        ? { content, entries: fast.entries, issues: [], documents: fast.documents }
        : { content, ...parseFile(file, content) };
      this.#cache.set(file, got);
    }
    if (got.entries.length === 0 && got.issues.length === 0 && !allowEmpty) {
      const what =
        content.trim() === "" ? "is empty" : "holds no resource (only comments or empty documents)";
      return refusal(file, "empty_file", `${what}; ${EMPTY_HINT}`);
    }
    return got;
  }
}

class UnstableRead extends Error {}

/**
 * The file's text, refusing a read during which the file changed (size, mtime or inode) or that
 * returned fewer bytes than its size: both mean a writer is still at work.
 */
function readStable(file: string): string {
  const before = statSync(file, { bigint: true });
  const bytes = readFileSync(file);
  const after = statSync(file, { bigint: true });
  if (!sameFile(before, after) || BigInt(bytes.length) !== after.size) {
    throw new UnstableRead(
      "changed while being read (a write in progress); it is read again once it has settled",
    );
  }
  return bytes.toString("utf8");
}

function sameFile(a: BigIntStats, b: BigIntStats): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ino === b.ino;
}

function refusal(file: string, reason: ConfigRejectReason, message: string): FileResult {
  return { entries: [], issues: [{ file, document: 0, path: "", message }], reason };
}

/** Parses and validates one file's text; pure, used by the source and by tests. */
export function parseFile(
  file: string,
  content: string,
): { entries: SourcedResource[]; issues: ConfigIssue[] } {
  const entries: SourcedResource[] = [];
  const issues: ConfigIssue[] = [];
  // prettyErrors: false keeps messages one line; the LineCounter gives them their line and column.
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(content, { prettyErrors: false, lineCounter });
  const list = Array.isArray(docs) ? docs : [docs];
  let n = 0;
  for (const doc of list) {
    n += 1;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        issues.push({
          file,
          document: n,
          path: "",
          message: `yaml syntax error at line ${line}, column ${col}: ${e.message.split("\n")[0]}`,
        });
      }
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS();
    } catch (err) {
      // toJS() throws on an alias to no anchor and on an alias bomb ("billion laughs"), which the
      // parser leaves to it: refused like a syntax error, at the document's first line.
      const { line, col } = lineCounter.linePos(doc.contents?.range?.[0] ?? doc.range[0]);
      const message = `yaml error in the document at line ${line}, column ${col}: ${(err as Error).message}`;
      issues.push({ file, document: n, path: "", message });
      continue;
    }
    if (value === null || value === undefined) continue; // empty document, e.g. a trailing `---`
    const r = validateDocument(value, file, n);
    if (r.ok)
      entries.push({
        resource: r.resource,
        file,
        document: n,
        json: JSON.stringify(r.resource),
        key: keyString(keyOf(r.resource)),
      });
    else issues.push(...r.issues);
  }
  return { entries, issues };
}
