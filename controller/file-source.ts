// File source for plain hosts: a multi-document YAML file, or a directory of *.yaml/*.yml/*.json
// files (recursively, in name order), parsed and validated with controller/api. It watches the
// path and reports each change as a whole: either every document is valid (`entries`) or the
// issues name file, document, resource, field and reason. It never builds the model (app.ts does).
//
// Invariants: a file whose content did not change is not parsed again (its validated entries and
// their JSON are reused, which keeps big directories cheap to reload and keeps object identity for
// the distribution's diff); in a changed file, only the documents whose text changed are parsed
// again (see yaml-documents.ts; one edited workload among 100 costs one document, not 100); reads
// are debounced so an editor's write+rename yields one reload.
import { readFileSync, readdirSync, statSync, watch } from "node:fs";
import type { FSWatcher } from "node:fs";
import { basename, dirname, join } from "node:path";
import { parseAllDocuments } from "yaml";
import { keyOf, keyString, validateDocument } from "./api/index.ts";
import type { ConfigIssue } from "./api/index.ts";
import type { SourcedResource } from "./model/model.ts";
import { parseChangedDocuments } from "./yaml-documents.ts";
import type { ParsedDocuments } from "./yaml-documents.ts";

export interface FileReadResult {
  entries: SourcedResource[];
  issues: ConfigIssue[];
  files: string[];
}

interface CachedFile {
  content: string;
  entries: SourcedResource[];
  issues: ConfigIssue[];
  /** Per-document results of a valid file, for re-parsing only the documents that change. */
  documents?: ParsedDocuments;
}

const CONFIG_FILE = /\.(ya?ml|json)$/;

export class FileSource {
  readonly path: string;
  readonly #cache = new Map<string, CachedFile>();
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #debounceMs: number;

  constructor(path: string, opts: { debounceMs?: number } = {}) {
    this.path = path;
    this.#debounceMs = opts.debounceMs ?? 20;
  }

  /** Reads every file now. An unreadable path is an issue, not an exception. */
  read(): FileReadResult {
    let files: string[];
    try {
      files = this.#listFiles();
    } catch (err) {
      const message = `cannot read: ${(err as Error).message}; check --config`;
      return { entries: [], issues: [{ file: this.path, document: 0, path: "", message }], files: [] };
    }
    const entries: SourcedResource[] = [];
    const issues: ConfigIssue[] = [];
    const live = new Set(files);
    for (const f of this.#cache.keys()) if (!live.has(f)) this.#cache.delete(f);
    for (const f of files) {
      const got = this.#readFile(f);
      entries.push(...got.entries);
      issues.push(...got.issues);
    }
    return { entries, issues, files };
  }

  /** Calls `onChange` (debounced) whenever something under the path changes. */
  watch(onChange: () => void): void {
    if (this.#watcher) return;
    let isDir = false;
    try {
      isDir = statSync(this.path).isDirectory();
    } catch {
      isDir = false;
    }
    const fire = () => {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(onChange, this.#debounceMs);
    };
    if (isDir) {
      this.#watcher = watch(this.path, { recursive: true }, fire);
    } else {
      // Watch the directory: editors and `kubectl`-style tools replace the file by rename.
      const name = basename(this.path);
      this.#watcher = watch(dirname(this.path), (_ev, f) => {
        if (f === null || f === name) fire();
      });
    }
  }

  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    clearTimeout(this.#timer);
  }

  #listFiles(): string[] {
    if (!statSync(this.path).isDirectory()) return [this.path];
    return readdirSync(this.path, { recursive: true, encoding: "utf8" })
      .filter((f) => CONFIG_FILE.test(f) && !basename(f).startsWith("."))
      .map((f) => join(this.path, f))
      .filter((f) => statSync(f).isFile())
      .sort();
  }

  #readFile(file: string): CachedFile {
    let content: string;
    try {
      content = readFileSync(file, "utf8");
    } catch (err) {
      return {
        content: "",
        entries: [],
        issues: [{ file, document: 0, path: "", message: (err as Error).message }],
      };
    }
    const cached = this.#cache.get(file);
    if (cached && cached.content === content) return cached;
    // Fast path: document by document, reusing unchanged ones. It gives up (undefined) on anything
    // it cannot reproduce exactly (syntax or schema errors, directives), and the whole-file parse
    // below then produces the issues with their usual file, document, line and column.
    const fast = parseChangedDocuments(file, content, cached?.documents);
    const entry: CachedFile = fast
      ? { content, entries: fast.entries, issues: [], documents: fast.documents }
      : { content, ...parseFile(file, content) };
    this.#cache.set(file, entry);
    return entry;
  }
}

/** Parses and validates one file's text; pure, used by the source and by tests. */
export function parseFile(
  file: string,
  content: string,
): { entries: SourcedResource[]; issues: ConfigIssue[] } {
  const entries: SourcedResource[] = [];
  const issues: ConfigIssue[] = [];
  const docs = parseAllDocuments(content, { prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [docs];
  let n = 0;
  for (const doc of list) {
    n += 1;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const [line, col] = e.linePos?.[0] ? [e.linePos[0].line, e.linePos[0].col] : [0, 0];
        issues.push({
          file,
          document: n,
          path: "",
          message: `yaml syntax error at line ${line}, column ${col}: ${e.message.split("\n")[0]}`,
        });
      }
      continue;
    }
    const value: unknown = doc.toJS();
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
