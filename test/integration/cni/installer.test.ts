// `nodemesh cni-install --watch` against temp dirs standing in for the host's /opt/cni/bin and
// /etc/cni/net.d: it copies the plugin (wrapper, cni/*.ts, a Node binary) and chains its entry into
// the primary .conf (turned into a .conflist); the primary CNI rewriting its file is repaired; SIGTERM
// takes the entry and the files out. The installed wrapper runs (VERSION) with the copied Node.
import { execFile, spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, test } from "vitest";

const run = promisify(execFile);
const CLI = join(import.meta.dirname, "../../../bin/nodemesh.js");
const dir = mkdtempSync(join(tmpdir(), "nm-cni-install-"));
const bin = join(dir, "opt/cni/bin");
const conf = join(dir, "etc/cni/net.d");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bridge = { cniVersion: "1.0.0", name: "bridge", type: "bridge", ipam: { type: "host-local" } };
const types = (file: string) =>
  (JSON.parse(readFileSync(join(conf, file), "utf8")) as { plugins: { type: string }[] }).plugins.map(
    (p) => p.type,
  );

const installOnce = (binDir: string, confDir: string) =>
  run(process.execPath, [CLI, "cni-install", "--once", `--bin-dir=${binDir}`, `--conf-dir=${confDir}`]);

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("cni-install", () => {
  test("install, repair a rewrite by the primary CNI, remove on SIGTERM", async () => {
    mkdirSync(bin, { recursive: true });
    mkdirSync(conf, { recursive: true });
    writeFileSync(join(conf, "10-bridge.conf"), JSON.stringify(bridge));
    writeFileSync(
      join(conf, "99-other.conflist"),
      JSON.stringify({ cniVersion: "1.0.0", name: "o", plugins: [] }),
    );
    const p = spawn(process.execPath, [
      CLI,
      "cni-install",
      "--watch",
      `--bin-dir=${bin}`,
      `--conf-dir=${conf}`,
      "--enroll-timeout-ms=15000",
      "--exclude-namespaces=kube-system,nodemesh-system",
      "--interval-ms=500",
    ]);
    let log = "";
    p.stderr.on("data", (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((r) => p.on("close", r));
    try {
      await until("the conflist", () => existsSync(join(conf, "10-bridge.conflist")));
      expect(existsSync(join(conf, "10-bridge.conf"))).toBe(false);
      expect(types("10-bridge.conflist")).toEqual(["bridge", "nodemesh-cni"]);
      expect(JSON.parse(readFileSync(join(conf, "10-bridge.conflist"), "utf8"))).toMatchObject({
        plugins: [
          {},
          {
            type: "nodemesh-cni",
            enrollTimeoutMs: 15000,
            excludeNamespaces: ["kube-system", "nodemesh-system"],
          },
        ],
      });
      expect(types("99-other.conflist")).toEqual([]); // only the primary
      expect(readdirSync(join(bin, "nodemesh-cni.d")).sort()).toEqual(
        ["node", "nodemesh-cni.ts", "prev-result.ts", "protocol.ts", "wire.ts"].sort(),
      );
      // The installed plugin runs with the Node copied beside it (no node on PATH).
      // (stdin given and closed: the plugin reads its config to EOF.)
      const v = spawnSync(join(bin, "nodemesh-cni"), [], {
        input: "",
        env: { PATH: "/usr/bin:/bin", CNI_COMMAND: "VERSION" },
      });
      expect(JSON.parse(v.stdout.toString())).toMatchObject({
        supportedVersions: expect.arrayContaining(["1.0.0"]),
      });

      // The primary CNI writes its config again, as a .conflist without us: repaired.
      writeFileSync(
        join(conf, "10-bridge.conflist"),
        JSON.stringify({ cniVersion: "1.0.0", name: "bridge", plugins: [{ type: "bridge" }] }),
      );
      await until("the repair", () => types("10-bridge.conflist").includes("nodemesh-cni"));
      expect(types("10-bridge.conflist")).toEqual(["bridge", "nodemesh-cni"]);
      // A removed binary (another agent pod of a rolling update stopped) comes back too.
      rmSync(join(bin, "nodemesh-cni"));
      await until("the wrapper back", () => existsSync(join(bin, "nodemesh-cni")));
    } finally {
      p.kill("SIGTERM");
    }
    expect(await exited, log).toBe(0);
    expect(types("10-bridge.conflist")).toEqual(["bridge"]);
    expect(existsSync(join(bin, "nodemesh-cni"))).toBe(false);
    expect(existsSync(join(bin, "nodemesh-cni.d"))).toBe(false);
    expect(readdirSync(conf).sort()).toEqual(["10-bridge.conflist", "99-other.conflist"]);
  });

  test("a .conf left aside by an installer that stopped mid-conversion is restored and chained", async () => {
    const c3 = join(dir, "aside");
    mkdirSync(c3, { recursive: true });
    writeFileSync(join(c3, ".10-bridge.conf.nodemesh-cni-aside"), JSON.stringify(bridge));
    const r = await installOnce(join(dir, "bin3"), c3);
    expect(r.stderr).toMatch(/restored 10-bridge.conf, left aside/);
    expect(readdirSync(c3)).toEqual(["10-bridge.conflist"]);
    const list = JSON.parse(readFileSync(join(c3, "10-bridge.conflist"), "utf8")) as {
      plugins: { type: string }[];
    };
    expect(list.plugins.map((p) => p.type)).toEqual(["bridge", "nodemesh-cni"]);
  });

  test("a malformed primary config is reported and left alone; --once exits non-zero", async () => {
    const c2 = join(dir, "bad");
    mkdirSync(c2, { recursive: true });
    writeFileSync(join(c2, "05-bad.conflist"), "{oops");
    const r = await installOnce(join(dir, "bin2"), c2).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/05-bad.conflist is not JSON/);
    expect(readFileSync(join(c2, "05-bad.conflist"), "utf8")).toBe("{oops");
  });
});
