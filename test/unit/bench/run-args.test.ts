// `npm run bench` options: the ingress bench is one of --only's choices, and bad options are named.
import { describe, expect, it } from "vitest";
import { BENCHES, parseRunArgs } from "../../../bench/run.ts";

describe("bench options", () => {
  it("--only ingress selects the ingress bench; no option runs every bench", () => {
    expect(BENCHES).toContain("ingress");
    expect(parseRunArgs(["--only", "ingress", "--quick"])).toEqual({
      quick: true,
      only: "ingress",
      json: undefined,
      paths: undefined,
    });
    expect(parseRunArgs([]).only).toBeUndefined();
  });

  it("refuses an unknown bench, a missing value and an unknown option", () => {
    expect(() => parseRunArgs(["--only", "ingres"])).toThrow(
      /--only ingres: use one of dataplane, ingress, controller, connect-redirect/,
    );
    expect(() => parseRunArgs(["--only"])).toThrow(/--only needs a value/);
    expect(() => parseRunArgs(["--paths", "direct,gateway"])).toThrow(/--paths gateway/);
    expect(() => parseRunArgs(["--fast"])).toThrow(/unknown option --fast/);
  });
});
