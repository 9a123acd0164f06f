// Seed corpus for the config fuzzers: every valid resource in the YAML examples of docs/*.md (they
// cover every kind), so mutations start from documents an operator would really write, and the
// corpus grows by itself when the docs gain an example.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { validateDocument } from "../../controller/api/index.ts";

const DOCS = join(import.meta.dirname, "../../docs");

export interface SeedDocument {
  /** The plain JSON value of the document as written in the docs. */
  readonly value: Record<string, unknown>;
  /** Its YAML text, ending with a newline. */
  readonly yaml: string;
}

function load(): SeedDocument[] {
  const out: SeedDocument[] = [];
  for (const f of readdirSync(DOCS).filter((n) => n.endsWith(".md"))) {
    const md = readFileSync(join(DOCS, f), "utf8");
    for (const m of md.matchAll(/^```yaml\n([\s\S]*?)^```/gm)) {
      for (const doc of parseAllDocuments(m[1] ?? "")) {
        if (doc.errors.length > 0) continue;
        const value: unknown = doc.toJS();
        if (!validateDocument(value, f, 1).ok) continue; // fragments and deliberately bad examples
        out.push({ value: value as Record<string, unknown>, yaml: stringify(value) });
      }
    }
  }
  if (new Set(out.map((s) => s.value.kind)).size < 12)
    throw new Error(`expected a resource of every kind in docs/*.md, found ${out.length} documents`);
  return out;
}

export const SEEDS: readonly SeedDocument[] = load();

/** Every path (keys and indices) to a value inside `v`, the root excluded. */
export function pathsOf(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (typeof v !== "object" || v === null) return [];
  const out: (string | number)[][] = [];
  const entries: [string | number, unknown][] = Array.isArray(v)
    ? v.map((x, i) => [i, x])
    : Object.entries(v as Record<string, unknown>);
  for (const [k, x] of entries) {
    const p = [...prefix, k];
    out.push(p, ...pathsOf(x, p));
  }
  return out;
}

export type Mutation =
  | { readonly op: "replace"; readonly value: unknown }
  | { readonly op: "delete" }
  | { readonly op: "addKey"; readonly key: string; readonly value: unknown };

/** A deep copy of `root` with `m` applied at `path` (addKey applies to the object at the path). */
export function mutate(root: unknown, path: readonly (string | number)[], m: Mutation): unknown {
  const copy: unknown = structuredClone(root);
  const parentPath = path.slice(0, -1);
  let parent = copy as Record<string | number, unknown>;
  for (const k of parentPath) parent = parent[k] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (m.op === "replace") parent[last] = m.value;
  else if (m.op === "delete") {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else {
    const target = parent[last];
    if (typeof target === "object" && target !== null && !Array.isArray(target)) {
      (target as Record<string, unknown>)[m.key] = m.value;
    } else parent[last] = { [m.key]: m.value };
  }
  return copy;
}
