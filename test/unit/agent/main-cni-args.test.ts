// The agent's CNI socket option: off unless --cni-socket or NODEMESH_CNI_SOCKET names a path.
import { describe, expect, it } from "vitest";
import { parseAgentArgs } from "../../../agent/main.ts";

describe("--cni-socket", () => {
  it("is off by default, read from the flag or the environment, the flag winning", () => {
    expect(parseAgentArgs([], {}).cniSocket).toBeUndefined();
    expect(parseAgentArgs([], { NODEMESH_CNI_SOCKET: "" }).cniSocket).toBeUndefined();
    expect(parseAgentArgs([], { NODEMESH_CNI_SOCKET: "/run/a.sock" }).cniSocket).toBe("/run/a.sock");
    expect(
      parseAgentArgs(["--cni-socket", "/run/b.sock"], { NODEMESH_CNI_SOCKET: "/run/a.sock" }).cniSocket,
    ).toBe("/run/b.sock");
  });
});
