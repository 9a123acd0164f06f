// Document-level YAML parsing: the same entries as the whole-file parse (differential), reuse of
// unchanged documents, renumbering, and giving up wherever the whole-file parse must decide.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { FileSource, parseFile } from "../../../controller/file-source.ts";
import { parseChangedDocuments, splitDocuments } from "../../../controller/yaml-documents.ts";

const wl = (name: string, address: string, extra = "") => `apiVersion: nodemesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: ${name}, namespace: shop}
spec:
  address: ${address}
  node: node-a
  netns: /var/run/netns/${name}
  labels: {app: ${name}${extra}}
`;
const a = wl("a", "10.1.0.2");
const b = wl("b", "10.1.0.3");
const c = wl("c", "10.1.0.4");

/** What the model sees of a parse: file, document number and JSON of each entry. */
const view = (r: { entries: { file: string; document: number; json: string; key: string }[] }) =>
  r.entries.map((e) => [e.file, e.document, e.key, e.json]);

describe("parseChangedDocuments agrees with parseFile", () => {
  const cases: [string, string][] = [
    ["one document", a],
    ["separated", `${a}---\n${b}---\n${c}`],
    ["leading marker", `---\n${a}---\n${b}`],
    ["leading comments", `# mesh\n\n---\n${a}---\n${b}`],
    ["content before the first marker", `${a}---\n${b}`],
    ["empty documents count", `${a}---\n---\n# nothing\n---\n${b}---\n`],
    ["marker with a comment", `${a}--- # second\n${b}`],
    [
      "flow document on the marker line",
      `--- {apiVersion: nodemesh.io/v1alpha1, kind: Service, metadata: {name: s}, spec: {addresses: [10.96.0.1], ports: [{port: 80}]}}\n---\n${a}`,
    ],
    ["CRLF line ends", `${a}---\n${b}`.replaceAll("\n", "\r\n")],
    [
      "a block scalar",
      `${a}---\napiVersion: nodemesh.io/v1alpha1\nkind: WorkloadEntry\nmetadata:\n  name: d\n  annotations:\n    note: |\n      x --- y\n      ---not a marker\nspec: {address: 10.1.0.9, node: n, netns: d}\n`,
    ],
    [
      "JSON",
      JSON.stringify({
        apiVersion: "nodemesh.io/v1alpha1",
        kind: "WorkloadEntry",
        metadata: { name: "j" },
        spec: { address: "10.1.0.7", node: "n", cgroup: "/j" },
      }),
    ],
  ];
  test.each(cases)("%s", (_name, content) => {
    const whole = parseFile("m.yaml", content);
    expect(whole.issues).toEqual([]);
    const fast = parseChangedDocuments("m.yaml", content, undefined);
    expect(fast).toBeDefined();
    expect(view(fast as never)).toEqual(view(whole));
  });
});

describe("parseChangedDocuments gives up where the whole file must be parsed", () => {
  test.each([
    ["a syntax error", `${a}---\nkind: [\n`],
    ["a schema error", `${a}---\n${wl("b", "10.1.0.300")}`],
    ["a directive", `%YAML 1.2\n---\n${a}`],
    ["an end marker", `${a}...\n---\n${b}`],
  ])("%s", (_name, content) => {
    expect(parseChangedDocuments("m.yaml", content, undefined)).toBeUndefined();
  });

  test("splitDocuments cuts before each marker line", () => {
    expect(splitDocuments("x: 1\n---\ny: 2\n--- z\n")).toEqual(["x: 1\n", "---\ny: 2\n", "--- z\n"]);
    expect(splitDocuments("---\nx: 1")).toEqual(["", "---\nx: 1"]);
    expect(splitDocuments("x: '---'\n----\n")).toEqual(["x: '---'\n----\n"]);
  });
});

describe("reuse", () => {
  test("unchanged documents keep their entry objects; shifted ones are renumbered", () => {
    const first = parseChangedDocuments("m.yaml", `${a}---\n${b}`, undefined);
    expect(first).toBeDefined();
    if (!first) return;
    const [ea, eb] = first.entries;
    const edited = parseChangedDocuments(
      "m.yaml",
      `${a}---\n${wl("b", "10.1.0.3", ", v: x")}`,
      first.documents,
    );
    expect(edited?.entries[0]).toBe(ea);
    expect(edited?.entries[1]).not.toBe(eb);
    expect(edited?.entries[1]?.resource).toMatchObject({ spec: { labels: { app: "b", v: "x" } } });
    const inserted = parseChangedDocuments("m.yaml", `${a}---\n${c}---\n${b}`, first.documents);
    expect(inserted?.entries.map((e) => [e.resource.metadata.name, e.document])).toEqual([
      ["a", 1],
      ["c", 2],
      ["b", 3],
    ]);
    expect(inserted?.entries[0]).toBe(ea);
    // b moved: a new entry with the new number, sharing the parsed resource and its JSON.
    expect(inserted?.entries[2]).not.toBe(eb);
    expect(inserted?.entries[2]?.resource).toBe(eb?.resource);
    expect(inserted?.entries[2]?.json).toBe(eb?.json);
  });

  test("FileSource: an edit re-parses one document, errors still come from the whole file", () => {
    const dir = mkdtempSync(join(tmpdir(), "nodemesh-docs-"));
    try {
      const file = join(dir, "mesh.yaml");
      writeFileSync(file, `${a}---\n${b}`);
      const src = new FileSource(file);
      const r1 = src.read();
      writeFileSync(file, `${a}---\n${wl("b", "10.1.0.3", ", v: x")}`);
      const r2 = src.read();
      expect(r2.entries[0]).toBe(r1.entries[0]);
      expect(r2.entries[1]?.json).toContain('"v":"x"');
      writeFileSync(file, `${a}---\n${wl("b", "10.1.0.300")}`);
      const r3 = src.read();
      expect(r3.entries.map((e) => e.resource.metadata.name)).toEqual(["a"]);
      expect(r3.issues.map((i) => [i.document, i.path])).toEqual([[2, "spec.address"]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
