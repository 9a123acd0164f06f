// The controller's fail-closed and endpoint-limit flags (controller/main.ts): defaults, env
// equivalents, and an error naming the flag for every bad value.
import { describe, expect, test } from "vitest";
import { DEFAULT_MAX_REMOVAL_PERCENT } from "../../../controller/config-guard.ts";
import { DEFAULT_SETTLE_MS } from "../../../controller/file-settle.ts";
import { parseControllerArgs } from "../../../controller/main.ts";

const base = ["--config", "/etc/nodemesh/mesh.yaml", "--node-token", "n1=token-n1-0123456789abcdef"];
const parse = (args: string[], env: NodeJS.ProcessEnv = {}) => parseControllerArgs([...base, ...args], env);

describe("controller flags", () => {
  test("defaults: no limit overridden, documented removal percent and settle time", () => {
    const o = parse([]);
    expect(o.maxRemovalPercent).toBe(DEFAULT_MAX_REMOVAL_PERCENT);
    expect(o.settleMs).toBe(DEFAULT_SETTLE_MS);
    expect(o.sessionLimits).toEqual({});
  });

  test("every flag reaches its option; env works for the main ones", () => {
    const o = parse([
      ...["--max-removal-percent", "100", "--settle", "250ms", "--auth-timeout", "3s"],
      ...["--max-pending-sessions", "64", "--max-pending-per-address", "8", "--max-connections", "1000"],
      ...["--keepalive", "15s", "--keepalive-timeout", "5s"],
    ]);
    expect(o).toMatchObject({ maxRemovalPercent: 100, settleMs: 250 });
    expect(o.sessionLimits).toEqual({
      authTimeoutMs: 3000,
      maxPendingSessions: 64,
      maxPendingPerAddress: 8,
      maxConnections: 1000,
      keepaliveIntervalMs: 15_000,
      keepaliveTimeoutMs: 5000,
    });
    const e = parse([], {
      NODEMESH_CONTROLLER_MAX_REMOVAL_PERCENT: "20",
      NODEMESH_CONTROLLER_SETTLE: "1s",
      NODEMESH_CONTROLLER_AUTH_TIMEOUT: "500ms",
    });
    expect(e).toMatchObject({ maxRemovalPercent: 20, settleMs: 1000, sessionLimits: { authTimeoutMs: 500 } });
  });

  test.each([
    [["--max-removal-percent", "101"], '--max-removal-percent must be an integer from 0 to 100, got "101"'],
    [["--max-removal-percent", "half"], '--max-removal-percent must be an integer from 0 to 100, got "half"'],
    [["--settle", "soon"], "--settle: "],
    [["--auth-timeout", "10ms"], '--auth-timeout must be at least 100ms, got "10ms"'],
    [["--max-pending-sessions", "0"], '--max-pending-sessions must be an integer from 1 to 1048576, got "0"'],
    [["--max-connections=-5"], '--max-connections must be an integer from 1 to 1048576, got "-5"'],
    [
      ["--max-pending-sessions", "10", "--max-pending-per-address", "20"],
      "session limit maxPendingPerAddress (20) must not exceed maxPendingSessions (10)",
    ],
  ])("%j is refused", (args, message) => {
    expect(() => parse(args)).toThrow(message);
  });
});
