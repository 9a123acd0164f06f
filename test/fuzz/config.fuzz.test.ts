// Fuzzing the config documents an operator (or an attacker with write access to the config) feeds
// the controller: arbitrary text and mutated valid files through parseFile (the whole-file parse),
// parseChangedDocuments (the per-document fast path) and validateDocument. Each must end in entries
// or issues that name file, document and field, never in another exception; the fast path must
// agree with the whole-file parse; YAML syntax errors must carry a real line and column.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { formatIssue, validateDocument } from "../../controller/api/index.ts";
import type { ConfigIssue } from "../../controller/api/index.ts";
import { parseFile } from "../../controller/file-source.ts";
import { parseChangedDocuments } from "../../controller/yaml-documents.ts";
import type { ParsedDocuments } from "../../controller/yaml-documents.ts";
import { SEEDS, mutate, pathsOf, type Mutation } from "./corpus.ts";
import { FUZZ_TIMEOUT_MS, fuzz } from "./params.ts";

const FILE = "mesh.yaml";

/** YAML's meaningful pieces, so random text reaches the parser's corners and not only plain scalars. */
const yamlToken = fc.constantFrom(
  "---\n",
  "--- ",
  "...\n",
  "%YAML 1.2\n",
  "%TAG ! tag:x,2000:\n",
  "\n",
  "\r\n",
  "  ",
  "\t",
  "- ",
  ": ",
  "? ",
  "{",
  "}",
  "[",
  "]",
  ",",
  "&a ",
  "*a",
  "*b",
  "<<: *a\n",
  "!!str ",
  "!!binary ",
  "!!int ",
  "!!map ",
  "!!set ",
  "!foo ",
  "|\n",
  ">-\n",
  '"',
  "'",
  "\\",
  "#",
  "kind: ",
  "Service",
  "WorkloadEntry",
  "apiVersion: nodemesh.io/v1alpha1\n",
  "metadata:\n  name: x\n",
  "spec:\n",
  "ports:\n",
  "port: 80\n",
  "0x1F",
  "1e400",
  "-.inf",
  ".nan",
  "~",
  "null",
  "true",
  "2001-12-14",
  "\u0000",
  "\uFEFF",
  "\u2028",
);
const yamlText = fc.oneof(
  fc.array(fc.oneof(yamlToken, fc.string({ maxLength: 8 })), { maxLength: 40 }).map((p) => p.join("")),
  fc.string({ unit: "binary", maxLength: 200 }),
);

/** Character-level damage to a valid file: what a bad editor or a partial write produces. */
const seedText = fc
  .array(fc.constantFrom(...SEEDS.map((s) => s.yaml)), { minLength: 1, maxLength: 4 })
  .map((docs) => docs.join("---\n"));
const edit = fc.record({
  at: fc.nat(),
  cut: fc.nat({ max: 12 }),
  insert: fc.oneof(yamlToken, fc.string({ maxLength: 6 })),
});
const damagedText = fc.tuple(seedText, fc.array(edit, { maxLength: 4 })).map(([text, edits]) =>
  edits.reduce((t, e) => {
    const at = e.at % (t.length + 1);
    return t.slice(0, at) + e.insert + t.slice(at + e.cut);
  }, text),
);
const anyText = fc.oneof(yamlText, damagedText, seedText);

function expectWellFormed(issues: readonly ConfigIssue[], lines: number): void {
  for (const i of issues) {
    expect(i.file).toBe(FILE);
    expect(i.document).toBeGreaterThanOrEqual(1);
    expect(typeof i.path).toBe("string");
    expect(i.message.length).toBeGreaterThan(0);
    expect(formatIssue(i)).toContain(`${FILE}: document ${i.document}`);
    const pos = /at line (\d+), column (\d+)/.exec(i.message);
    if (i.message.startsWith("yaml")) expect(pos, i.message).not.toBeNull();
    if (pos) {
      expect(Number(pos[1])).toBeGreaterThanOrEqual(1);
      expect(Number(pos[1])).toBeLessThanOrEqual(lines + 1);
      expect(Number(pos[2])).toBeGreaterThanOrEqual(1);
    }
  }
}

/** What the model sees of a parse. */
const view = (entries: readonly { document: number; key: string; json: string }[]) =>
  entries.map((e) => [e.document, e.key, e.json]);

describe("fuzz: config files", () => {
  test(
    "parseFile ends in valid entries or well-formed issues for any text",
    () => {
      fc.assert(
        fc.property(anyText, (text) => {
          const r = parseFile(FILE, text);
          expectWellFormed(r.issues, text.split(/\r\n|\r|\n/).length);
          for (const e of r.entries) {
            // An accepted resource must be valid as it is distributed (JSON), not only as parsed.
            expect(validateDocument(JSON.parse(e.json), FILE, e.document).ok).toBe(true);
          }
        }),
        fuzz(400),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "the per-document fast path agrees with the whole-file parse, fresh and incremental",
    () => {
      fc.assert(
        fc.property(anyText, anyText, (before, after) => {
          const whole = parseFile(FILE, after);
          const fresh = parseChangedDocuments(FILE, after, undefined);
          if (fresh) {
            expect(whole.issues).toEqual([]);
            expect(view(fresh.entries)).toEqual(view(whole.entries));
          }
          const previous: ParsedDocuments | undefined = parseChangedDocuments(
            FILE,
            before,
            undefined,
          )?.documents;
          const next = parseChangedDocuments(FILE, after, previous);
          expect(next === undefined).toBe(fresh === undefined);
          if (next && fresh) expect(view(next.entries)).toEqual(view(fresh.entries));
        }),
        fuzz(300),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "a tab-indented line is reported at its own line and column 1",
    () => {
      fc.assert(
        fc.property(seedText, fc.nat(), (text, pick) => {
          const lines = text.split("\n");
          // Before a top-level key, a tab can only be (forbidden) indentation, never scalar content.
          const tops = lines.flatMap((l, i) => (/^[a-z]/i.test(l) ? [i] : []));
          const at = tops[pick % tops.length] as number;
          lines.splice(at, 0, "\tbad: 1");
          const r = parseFile(FILE, lines.join("\n"));
          const first = r.issues[0];
          expect(first?.message).toMatch(new RegExp(`^yaml syntax error at line ${at + 1}, column 1: `));
        }),
        fuzz(100),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});

const leaf = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom("", " ", "-1", "0", "65536", "1e3", "0x50", "10.0.0.256", "::1", "*", "/", "a".repeat(300)),
  fc.constantFrom(-1, 0, 0.5, 65536, 2 ** 53, Number.MAX_VALUE, true, null),
  fc.constantFrom({}, [], [null], { "": "" }, { __proto__: "x" }, { constructor: 1 }),
);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("replace" as const), value: leaf }),
  fc.record({ op: fc.constant("delete" as const) }),
  fc.record({
    op: fc.constant("addKey" as const),
    key: fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom("__proto__", "constructor", "toString")),
    value: leaf,
  }),
);
const mutatedDocument = fc.tuple(fc.constantFrom(...SEEDS), fc.nat(), mutation).map(([seed, pick, m]) => {
  const paths = pathsOf(seed.value);
  const path = paths[pick % paths.length] as (string | number)[];
  return { doc: mutate(seed.value, path, m), path, m };
});

describe("fuzz: resource schemas", () => {
  test(
    "validateDocument judges any JSON value without throwing; what it accepts re-validates",
    () => {
      fc.assert(
        fc.property(
          fc.oneof(
            fc.jsonValue(),
            fc.anything(),
            mutatedDocument.map((x) => x.doc),
          ),
          (doc) => {
            const r = validateDocument(doc, FILE, 1);
            if (r.ok) {
              const again = validateDocument(JSON.parse(JSON.stringify(r.resource)), FILE, 1);
              expect(again.ok).toBe(true);
              if (again.ok) expect(again.resource).toEqual(r.resource);
            } else {
              expect(r.issues.length).toBeGreaterThan(0);
              expectWellFormed(r.issues, 0);
            }
          },
        ),
        fuzz(500),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "a refused mutation names a field on the mutated path (or the document itself)",
    () => {
      fc.assert(
        fc.property(mutatedDocument, ({ doc, path }) => {
          const r = validateDocument(doc, FILE, 1);
          if (r.ok) return;
          const top = String(path[0]);
          // A union or a cross-field rule may name the parent or a sibling; never an unrelated part.
          const related = r.issues.some((i) => i.path === "" || i.path.split(/[.[]/)[0] === top);
          expect(related, `${JSON.stringify(path)} → ${r.issues.map(formatIssue).join("; ")}`).toBe(true);
        }),
        fuzz(500),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});
