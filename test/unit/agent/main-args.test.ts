import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAgentArgs } from "../../../agent/main.ts";

describe("nodemesh agent arguments", () => {
  it("reads flags, with env fallbacks and defaults", () => {
    const a = parseAgentArgs(
      ["--node", "n1", "--controller", "10.0.0.254:15012", "--token", "t".repeat(20)],
      {},
    );
    expect(a).toMatchObject({
      node: "n1",
      controller: "10.0.0.254:15012",
      token: "t".repeat(20),
      pinDir: "/sys/fs/bpf/nodemesh",
      uninstall: false,
    });
    const b = parseAgentArgs([], {
      NODEMESH_NODE_NAME: "n2",
      NODEMESH_PIN_DIR: "/sys/fs/bpf/x",
      NODEMESH_CA_FILE: "/ca.pem",
    });
    expect(b).toMatchObject({
      node: "n2",
      pinDir: "/sys/fs/bpf/x",
      caFile: "/ca.pem",
      controller: "127.0.0.1:15012",
    });
  });

  it("reads the node token from a file, and says which file it cannot read", () => {
    const dir = mkdtempSync(join(tmpdir(), "nm-args-"));
    try {
      writeFileSync(join(dir, "token"), "secret-token-0123456789\n");
      expect(parseAgentArgs(["--token-file", join(dir, "token")], {}).token).toBe("secret-token-0123456789");
      expect(() => parseAgentArgs(["--token-file", join(dir, "missing")], {})).toThrow(
        /cannot read the node token file .*missing/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rejects an unknown option with a pointer to --help", () => {
    expect(() => parseAgentArgs(["--bogus"], {})).toThrow(
      /Unknown option '--bogus'; see nodemesh agent --help/,
    );
  });
});
