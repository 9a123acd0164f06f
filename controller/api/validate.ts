// Turns one parsed YAML/JSON document into a typed Resource, or into issues that name the file,
// the document index, the resource (kind namespace/name), the field path and the reason.
// Pure: the file source reads files; this only judges values.
import type { z } from "zod";
import { KINDS, Resource } from "./resources.ts";

export interface ConfigIssue {
  file: string;
  /** 1-based position of the document in its file (YAML `---` separated). */
  document: number;
  /** "Kind namespace/name" when the document says that much, else undefined. */
  resource?: string;
  /** Dotted field path ("spec.ports[0].port"), empty for the document itself. */
  path: string;
  message: string;
}

/** `file: document 2 (WorkloadEntry default/web-1): spec.address: must be an IPv4 address`. */
export function formatIssue(i: ConfigIssue): string {
  const res = i.resource ? ` (${i.resource})` : "";
  const path = i.path ? `${i.path}: ` : "";
  return `${i.file}: document ${i.document}${res}: ${path}${i.message}`;
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out === "" ? String(p) : `.${String(p)}`;
  }
  return out;
}

/** Best-effort "Kind ns/name" of a possibly invalid document, for messages. */
export function describeDocument(doc: unknown): string | undefined {
  if (typeof doc !== "object" || doc === null) return undefined;
  const d = doc as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  const kind = typeof d.kind === "string" ? d.kind : "?";
  const name = typeof d.metadata?.name === "string" ? d.metadata.name : "?";
  const ns = typeof d.metadata?.namespace === "string" ? d.metadata.namespace : "default";
  return kind === "?" && name === "?" ? undefined : `${kind} ${ns}/${name}`;
}

function issueMessage(i: z.core.$ZodIssue): string {
  if (i.code === "invalid_union" && "discriminator" in i && i.discriminator === "kind") {
    return `unknown kind; expected one of ${KINDS.join(", ")}`;
  }
  return i.message;
}

export type ValidationResult = { ok: true; resource: Resource } | { ok: false; issues: ConfigIssue[] };

export function validateDocument(doc: unknown, file: string, document: number): ValidationResult {
  const r = Resource.safeParse(doc);
  if (r.success) return { ok: true, resource: r.data };
  const resource = describeDocument(doc);
  return {
    ok: false,
    issues: r.error.issues.map((i) => ({
      file,
      document,
      resource,
      path: formatPath(i.path),
      message: issueMessage(i),
    })),
  };
}
