// The exposition-format parser the CLI reads agents' /metrics with: escapes, special values, errors.
import { describe, expect, it } from "vitest";
import { parsePromText } from "../../../cli/prom-text.ts";

describe("parsePromText", () => {
  it("reads samples with labels, escapes, timestamps and special values; skips comments", () => {
    const text = [
      "# HELP x_total help",
      "# TYPE x_total counter",
      'x_total{a="1",b="q\\"uote\\\\back\\nline"} 42 1700000000000',
      "y 3.5e2",
      'h_bucket{le="+Inf"} +Inf',
      "z NaN",
      "nodejs_eventloop_lag_mean_seconds Nan",
      "",
    ].join("\n");
    const s = parsePromText(text);
    expect(s[0]).toEqual({ name: "x_total", labels: { a: "1", b: 'q"uote\\back\nline' }, value: 42 });
    expect(s[1]).toEqual({ name: "y", labels: {}, value: 350 });
    expect(s[2]?.value).toBe(Infinity);
    expect(s[3]?.value).toBeNaN();
    expect(s[4]?.value).toBeNaN(); // prom-client's spelling before the first event-loop sample
  });
  it.each([['x{a="1" 3'], ["x abc"], ['{a="1"} 3'], ["x{a=1} 3"]])("refuses %s naming the line", (line) => {
    expect(() => parsePromText(`ok 1\n${line}`, "n1 /metrics")).toThrow(
      /n1 \/metrics line 2 is not a Prometheus sample/,
    );
  });
});
