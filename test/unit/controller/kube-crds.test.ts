// The chart's CRDs are the ones generated from the zod schemas (controller/sources/kube/crds.ts),
// and the generated schemas are structural: every node has a type, or says why it has none.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import {
  MESH_CRDS,
  ROUTE_CRDS,
  crdFileName,
  crdFor,
  crdYaml,
  structural,
} from "../../../controller/sources/kube/crds.ts";

const DIR = join(import.meta.dirname, "../../../charts/nodemesh/crds");

describe("CRDs", () => {
  test("charts/nodemesh/crds holds exactly the generated CRDs (regenerate: node controller/sources/kube/crds.ts charts/nodemesh/crds)", () => {
    expect(readdirSync(DIR).sort()).toEqual(MESH_CRDS.map(crdFileName).sort());
    for (const c of MESH_CRDS)
      expect(readFileSync(join(DIR, crdFileName(c)), "utf8"), crdFileName(c)).toBe(crdYaml(c));
  });

  function untyped(node: unknown, path: string, out: string[]): string[] {
    if (typeof node !== "object" || node === null) return out;
    const n = node as Record<string, unknown>;
    const ok =
      n.type !== undefined || n["x-kubernetes-int-or-string"] || n["x-kubernetes-preserve-unknown-fields"];
    if (!ok) out.push(path);
    for (const [k, v] of Object.entries((n.properties ?? {}) as Record<string, unknown>))
      untyped(v, `${path}.${k}`, out);
    if (n.items) untyped(n.items, `${path}[]`, out);
    if (typeof n.additionalProperties === "object") untyped(n.additionalProperties, `${path}{}`, out);
    for (const bad of ["anyOf", "oneOf", "$schema", "propertyNames", "const"])
      if (bad in n) out.push(`${path}: ${bad}`);
    if (n.additionalProperties === false) out.push(`${path}: additionalProperties false`);
    return out;
  }

  test.each([...MESH_CRDS, ...ROUTE_CRDS].map((c) => [c.kind, c] as const))("%s is structural", (_k, c) => {
    const crd = crdFor(c) as { spec: { versions: { schema: { openAPIV3Schema: unknown } }[] } };
    expect(untyped(crd.spec.versions[0]?.schema.openAPIV3Schema, "", [])).toEqual([]);
  });

  test("unions: integer-or-string, nullable, and anything else kept as unknown fields", () => {
    expect(structural({ anyOf: [{ type: "integer" }, { type: "string" }] })).toEqual({
      "x-kubernetes-int-or-string": true,
    });
    expect(structural({ anyOf: [{ type: "string" }, { type: "null" }] })).toEqual({
      type: "string",
      nullable: true,
    });
    expect(structural({ oneOf: [{ type: "object" }, { type: "object", properties: {} }] })).toEqual({
      type: "object",
      "x-kubernetes-preserve-unknown-fields": true,
    });
    expect(structural({ type: "integer", exclusiveMinimum: 0 })).toEqual({
      type: "integer",
      minimum: 0,
      exclusiveMinimum: true,
    });
    expect(structural({ const: "Service" })).toEqual({ enum: ["Service"] });
  });
});
