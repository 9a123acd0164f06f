// What the Kubernetes source keeps per object: its last valid mapping (what the mesh serves) and
// the object as the server last sent it (what status and Events are written against).
import { keyOf, keyString } from "../../api/index.ts";
import type { ValidationResult } from "../../api/index.ts";
import type { SourcedResource } from "../../model/model.ts";
import type { KubeObject } from "./map.ts";
import type { CustomKind } from "./status.ts";

export interface Tracked {
  entry: SourcedResource | undefined;
  /** Object key → its source document, for mapping verdicts back to Kubernetes objects. */
  obj: KubeObject;
  kind: CustomKind | undefined;
}

/** The entry for a valid result: the previous object when nothing changed (the hub diffs by identity). */
export function entryOf(
  r: Extract<ValidationResult, { ok: true }>,
  key: string,
  prev: SourcedResource | undefined,
): SourcedResource {
  const json = JSON.stringify(r.resource);
  if (prev?.json === json) return prev;
  return { resource: r.resource, file: key, document: 1, json, key: keyString(keyOf(r.resource)) };
}
