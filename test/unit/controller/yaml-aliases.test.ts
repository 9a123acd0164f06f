// Regression (found by test/fuzz/config.fuzz.test.ts): YAML aliases that `toJS()` refuses, an alias to
// no anchor and an alias bomb, made parseFile throw a ReferenceError out of the controller's reload
// instead of refusing the file. Both are issues now, and the fast path leaves them to the whole file.
import { describe, expect, test } from "vitest";
import { parseFile } from "../../../controller/file-source.ts";
import { parseChangedDocuments } from "../../../controller/yaml-documents.ts";

const service = `apiVersion: nodemesh.io/v1alpha1
kind: Service
metadata: {name: web, namespace: shop}
spec: {addresses: [10.96.0.1], ports: [{port: 80}]}
`;

/** Each level repeats the previous one ten times: 10^6 nodes from a few hundred bytes. */
function aliasBomb(): string {
  const lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"];
  for (let i = 1; i <= 5; i++)
    lines.push(
      `a${i}: &a${i} [${Array(10)
        .fill(`*a${i - 1}`)
        .join(", ")}]`,
    );
  return `${lines.join("\n")}\n`;
}

describe("YAML aliases toJS() refuses", () => {
  test("an alias to no anchor is an issue at its document, not an exception", () => {
    const text = `${service}---\nkind: Service\nspec: *missing\n`;
    const r = parseFile("m.yaml", text);
    expect(r.entries.map((e) => e.key)).toEqual(["Service/shop/web"]);
    expect(r.issues).toEqual([
      {
        file: "m.yaml",
        document: 2,
        path: "",
        message: expect.stringMatching(/^yaml error in the document at line 6, column 1: Unresolved alias/),
      },
    ]);
    expect(parseChangedDocuments("m.yaml", text, undefined)).toBeUndefined();
  });

  test("an alias bomb is refused as a resource exhaustion attack", () => {
    const r = parseFile("m.yaml", aliasBomb());
    expect(r.issues).toHaveLength(1);
    expect(r.issues[0]?.message).toMatch(
      /^yaml error in the document at line 1, column 1: Excessive alias count/,
    );
    expect(parseChangedDocuments("m.yaml", aliasBomb(), undefined)).toBeUndefined();
  });

  test("aliases within the limit still work", () => {
    const text = `apiVersion: nodemesh.io/v1alpha1
kind: Service
metadata: {name: &name web, namespace: shop}
spec:
  addresses: [10.96.0.1]
  ports: [{port: 80}]
  selector: {app: *name}
`;
    const r = parseFile("m.yaml", text);
    expect(r.issues).toEqual([]);
    expect(r.entries[0]?.json).toContain('"selector":{"app":"web"}');
  });
});
