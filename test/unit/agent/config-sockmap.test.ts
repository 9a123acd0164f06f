// The agent setting of the sockmap shortcut (docs/capture.md "Sockmap shortcut"): off unless asked for.
import { describe, expect, it } from "vitest";
import { agentSettingsFromEnv, parseAgentSettings } from "../../../agent/config.ts";

describe("datapath.sockmap agent setting", () => {
  it("is off by default and parses the environment's true/false", () => {
    expect(parseAgentSettings({}).sockmap).toBe(false);
    expect(parseAgentSettings({ sockmap: "true" } as never).sockmap).toBe(true);
    expect(parseAgentSettings({ sockmap: "false" } as never).sockmap).toBe(false);
    expect(parseAgentSettings({ sockmap: true }).sockmap).toBe(true);
    expect(() => parseAgentSettings({ sockmap: "maybe" } as never)).toThrow(/sockmap/);
    expect(agentSettingsFromEnv({ NODEMESH_SOCKMAP: "true" }).sockmap).toBe(true);
  });
});
