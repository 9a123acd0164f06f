// `--node-auth` and `--agent-service-account` (controller/main.ts): bootstrap tokens by default;
// tokenreview only with the Kubernetes source and the agents' ServiceAccount; every bad combination
// is refused naming the flag.
import { describe, expect, test } from "vitest";
import { parseControllerArgs } from "../../../controller/main.ts";

const kube = ["--source", "kube"];
const file = ["--config", "/etc/nodemesh/mesh.yaml"];

describe("--node-auth", () => {
  test("defaults to bootstrap tokens", () => {
    expect(parseControllerArgs(file, {}).nodeAuth).toEqual({ kind: "tokens" });
  });

  test("tokenreview with the agents' ServiceAccount, by flag or env", () => {
    const args = [
      ...kube,
      "--node-auth",
      "tokenreview",
      "--agent-service-account",
      "nodemesh-system/nm-agent",
    ];
    expect(parseControllerArgs(args, {}).nodeAuth).toEqual({
      kind: "tokenreview",
      agentServiceAccount: "nodemesh-system/nm-agent",
    });
    const env = { NODEMESH_NODE_AUTH: "tokenreview", NODEMESH_AGENT_SERVICE_ACCOUNT: "ns/agent" };
    expect(parseControllerArgs(kube, env).nodeAuth).toEqual({
      kind: "tokenreview",
      agentServiceAccount: "ns/agent",
    });
  });

  test.each([
    [[...kube, "--node-auth", "jwt"], /--node-auth must be "tokens" or "tokenreview", got "jwt"/],
    [[...file, "--node-auth", "tokenreview", "--agent-service-account", "a/b"], /needs --source kube/],
    [[...kube, "--node-auth", "tokenreview"], /needs --agent-service-account "<namespace>\/<name>".*got ""/],
    [[...kube, "--node-auth", "tokenreview", "--agent-service-account", "agent"], /got "agent"/],
    [[...kube, "--node-auth", "tokenreview", "--agent-service-account", "Ns/Agent"], /got "Ns\/Agent"/],
    [[...kube, "--agent-service-account", "a/b"], /--agent-service-account needs --node-auth tokenreview/],
  ])("%j is refused", (args, message) => {
    expect(() => parseControllerArgs(args, {})).toThrow(message);
  });
});
