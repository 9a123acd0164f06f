// Fuzzing the CLI's Prometheus text parser: it reads /metrics pages from agents, which the CLI does not
// control. Any text parses or is refused with a CliError naming the line; samples written in the
// exposition format (escaped label values, NaN/±Inf, timestamps, comments) read back exactly.
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { CliError } from "../../cli/errors.ts";
import { parsePromText } from "../../cli/prom-text.ts";
import { FUZZ_TIMEOUT_MS, fuzz } from "./params.ts";

const ident = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,15}$/);
const metricName = fc.stringMatching(/^[a-zA-Z_:][a-zA-Z0-9_:]{0,20}$/);
const sample = fc.record({
  name: metricName,
  labels: fc.dictionary(ident, fc.string({ unit: "binary", maxLength: 12 }), { maxKeys: 4 }),
  value: fc.oneof(fc.double(), fc.integer()),
  timestamp: fc.option(fc.integer({ min: 0 }), { nil: undefined }),
});
type Sample = typeof sample extends fc.Arbitrary<infer T> ? T : never;

const escape = (v: string) => v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
const num = (v: number) =>
  Object.is(v, -0)
    ? "-0"
    : Number.isNaN(v)
      ? "NaN"
      : v === Infinity
        ? "+Inf"
        : v === -Infinity
          ? "-Inf"
          : String(v);

function write(s: Sample): string {
  const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escape(v)}"`);
  const set = labels.length > 0 ? `{${labels.join(",")}}` : "";
  return `${s.name}${set} ${num(s.value)}${s.timestamp !== undefined ? ` ${s.timestamp}` : ""}`;
}

describe("fuzz: Prometheus text", () => {
  test(
    "what the exposition format writes reads back exactly, between comments and blank lines",
    () => {
      fc.assert(
        fc.property(
          fc.array(sample, { maxLength: 8 }),
          fc.array(fc.string(), { maxLength: 3 }),
          (samples, notes) => {
            const lines = samples.flatMap((s, i) => [
              ...(notes[i] !== undefined ? [`# HELP ${notes[i]}`, ""] : []),
              write(s),
            ]);
            const got = parsePromText(`${lines.join("\n")}\n`);
            expect(got.map((g) => [g.name, g.labels, g.value])).toEqual(
              samples.map((s) => [s.name, { ...s.labels }, s.value]),
            );
          },
        ),
        fuzz(500),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "any text parses into finite-named samples or is refused with a CliError naming the line",
    () => {
      const token = fc.constantFrom(
        "{",
        "}",
        '"',
        "\\",
        "=",
        ",",
        " ",
        "\n",
        "#",
        "NaN",
        "+Inf",
        "1e3",
        "-",
        ".",
        "a",
        "_",
        ":",
      );
      const text = fc.oneof(
        fc.string({ unit: "binary", maxLength: 200 }),
        fc.array(fc.oneof(token, metricName), { maxLength: 30 }).map((p) => p.join("")),
        fc.array(sample, { minLength: 1, maxLength: 3 }).chain((s) =>
          fc
            .tuple(
              fc.constant(s.map(write).join("\n")),
              fc.nat(),
              fc.nat({ max: 5 }),
              fc.string({ maxLength: 3 }),
            )
            .map(([t, at, cut, ins]) => {
              const i = at % (t.length + 1);
              return t.slice(0, i) + ins + t.slice(i + cut);
            }),
        ),
      );
      fc.assert(
        fc.property(text, (t) => {
          try {
            for (const s of parsePromText(t, "agent a")) {
              expect(s.name).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
              expect(typeof s.value).toBe("number");
            }
          } catch (err) {
            expect(err).toBeInstanceOf(CliError);
            expect((err as Error).message).toMatch(/^agent a line \d+ is not a Prometheus sample/);
          }
        }),
        fuzz(1000),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});
