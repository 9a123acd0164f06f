// The controller's --global-ratelimit-interval flag (and its env twin): a duration of at least 100 ms,
// unset = the balancer's default; bad values are refused naming the flag.
import { describe, expect, test } from "vitest";
import { parseControllerArgs } from "../../../controller/main.ts";

const base = ["--config", "/etc/nodemesh/mesh.yaml", "--node-token", "n1=token-n1-0123456789abcdef"];
const parse = (args: string[], env: NodeJS.ProcessEnv = {}) => parseControllerArgs([...base, ...args], env);

describe("--global-ratelimit-interval", () => {
  test("takes a duration from the flag or the environment; unset leaves the default to the balancer", () => {
    expect(parse(["--global-ratelimit-interval", "5s"]).globalRateLimitIntervalMs).toBe(5000);
    expect(
      parse([], { NODEMESH_CONTROLLER_GLOBAL_RATELIMIT_INTERVAL: "500ms" }).globalRateLimitIntervalMs,
    ).toBe(500);
    expect(parse([]).globalRateLimitIntervalMs).toBeUndefined();
  });

  test("refuses a malformed or too short interval, naming the flag", () => {
    expect(() => parse(["--global-ratelimit-interval", "fast"])).toThrow(
      /^--global-ratelimit-interval: invalid duration/,
    );
    expect(() => parse(["--global-ratelimit-interval", "50ms"])).toThrow(
      '--global-ratelimit-interval must be at least 100ms, got "50ms"',
    );
  });
});
