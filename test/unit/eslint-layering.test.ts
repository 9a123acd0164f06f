// The layering rules of CONVENTIONS.md, as eslint.config.js enforces them: each row lints one import
// as if written in a file of that folder and expects the rule to reject it (with its reason) or not.
import { ESLint } from "eslint";
import { describe, expect, test } from "vitest";

const eslint = new ESLint({ cwd: new URL("../..", import.meta.url).pathname });

async function restriction(file: string, specifier: string): Promise<string | undefined> {
  const code = `import { v } from "${specifier}";\nexport const x = v;\n`;
  const [result] = await eslint.lintText(code, { filePath: file });
  return result?.messages.find((m) => m.ruleId === "no-restricted-imports")?.message;
}

describe("layering (no-restricted-imports per folder)", () => {
  const rejected: [string, string, RegExp][] = [
    ["agent/policy/x.ts", "../../controller/model/model.ts", /only controller\/api\//],
    ["agent/proxy/x.ts", "../../native/index.ts", /only agent\/datapath\/ imports native/],
    ["agent/proxy/x.ts", "../app.ts", /composition root/],
    ["agent/x.ts", "../test/helpers/mesh-fixture.ts", /never imports test\//],
    ["agent/x.ts", "../lab/index.ts", /never imports the lab/],
    ["agent/balance/x.ts", "../state/view.ts", /mechanisms know nothing of workloads/],
    ["agent/retry/x.ts", "../http/server.ts", /mechanisms know nothing of workloads/],
    ["agent/breaker/x.ts", "../policy/authz.ts", /mechanisms know nothing of workloads/],
    ["agent/stack/x.ts", "../../controller/api/index.ts", /mesh schema/],
    ["agent/state/x.ts", "../proxy/inbound.ts", /assemblies above it/],
    ["agent/policy/x.ts", "../http/inbound.ts", /assemblies above it/],
    ["agent/admin/x.ts", "../telemetry/metrics.ts", /admin depends on no feature/],
    ["controller/model/x.ts", "../../agent/config.ts", /never imports the agent/],
    ["controller/api/x.ts", "../model/model.ts", /imports nothing but itself/],
    ["controller/api/x.ts", "node:fs", /does no I\/O/],
    ["native/x.ts", "../agent/log.ts", /native\/ is a leaf/],
    ["lab/x.ts", "../controller/api/index.ts", /imports no mesh code/],
    ["demo/x.ts", "../agent/config.ts", /through its config/],
    ["demo/apps/x.ts", "../../controller/api/index.ts", /no mesh code/],
    ["bin/x.ts", "../test/helpers/mesh-fixture.ts", /never imports test\//],
  ];
  test.each(rejected)("%s may not import %s", async (file, specifier, reason) => {
    expect(await restriction(file, specifier)).toMatch(reason);
  });

  const allowed: [string, string][] = [
    ["agent/policy/x.ts", "../../controller/api/resources.ts"],
    ["agent/datapath/x.ts", "../../native/index.ts"],
    ["agent/main.ts", "./app.ts"],
    ["agent/balance/x.ts", "../health/outlier.ts"],
    ["agent/balance/x.ts", "./state.ts"],
    ["agent/proxy/x.ts", "../policy/authz.ts"],
    ["agent/state/x.ts", "../policy/authz.ts"],
    ["agent/admin/x.ts", "../log.ts"],
    ["controller/model/x.ts", "../api/index.ts"],
    ["controller/api/x.ts", "./resources.ts"],
    ["demo/x.ts", "../lab/index.ts"],
    ["demo/x.ts", "../controller/api/index.ts"],
    ["bin/x.ts", "../agent/main.ts"],
    ["test/unit/x.ts", "../../agent/proxy/inbound.ts"],
    ["bench/x.ts", "../lab/index.ts"],
  ];
  test.each(allowed)("%s may import %s", async (file, specifier) => {
    expect(await restriction(file, specifier)).toBeUndefined();
  });
});
