// agent/node/cni-server.ts edges the plugin never sends: malformed and oversized requests are
// answered with a reason, the socket is private (0600), a stale socket is replaced and anything
// else at the path is refused, and a plugin that hangs up ends its wait.
import { spawnSync } from "node:child_process";
import { connect } from "node:net";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, describe, expect, test } from "vitest";
import { CniServer, type PodEnrollment } from "../../../../agent/node/cni-server.ts";

const UID = "0b9e2c3a-1111-2222-3333-444455556666";
const dir = mkdtempSync(join(tmpdir(), "nm-cnisrv-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pods(enrolled: () => boolean, calls: string[] = []): PodEnrollment {
  return {
    hintPod: (uid, netns) => void calls.push(`hint ${uid} ${netns}`),
    forgetPod: (uid) => void calls.push(`forget ${uid}`),
    whyNotEnrolled: () => (enrolled() ? undefined : "not yet"),
    membership: () => ({ state: "meshed" }),
  };
}

function ask(path: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let out = "";
    s.setEncoding("utf8");
    s.on("connect", () => s.write(line));
    s.on("data", (d: string) => (out += d));
    s.on("end", () => resolve(out));
    s.on("error", reject);
  });
}

const log = pino({ level: "silent" });

describe("CniServer", () => {
  test("answers bad requests with the reason; the socket is mode 0600", async () => {
    const path = join(dir, "a", "cni.sock");
    const server = new CniServer({ socketPath: path, pods: pods(() => true), log });
    await server.listen();
    try {
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(JSON.parse(await ask(path, "nope\n"))).toEqual({
        ok: false,
        error: "bad request: request is not JSON",
      });
      expect(JSON.parse(await ask(path, `{"op":"add","podUid":"${UID}"}\n`))).toMatchObject({
        ok: false,
        error: expect.stringMatching(/netns must be a non-empty string/),
      });
      expect(JSON.parse(await ask(path, "x".repeat(5000)))).toEqual({
        ok: false,
        error: "request longer than 4096 bytes",
      });
    } finally {
      await server.close();
    }
  });

  test("add hints then waits; del forgets; check answers at once", async () => {
    const path = join(dir, "b.sock");
    const calls: string[] = [];
    let ready = false;
    const server = new CniServer({ socketPath: path, pods: pods(() => ready, calls), log, pollMs: 5 });
    await server.listen();
    try {
      expect(JSON.parse(await ask(path, `{"op":"check","podUid":"${UID}"}\n`))).toEqual({
        ok: false,
        error: "not yet",
      });
      setTimeout(() => (ready = true), 60);
      const add = ask(path, `{"op":"add","podUid":"${UID}","netns":"/n","waitMs":2000}\n`);
      expect(JSON.parse(await add)).toEqual({ ok: true });
      expect(JSON.parse(await ask(path, `{"op":"del","podUid":"${UID}"}\n`))).toEqual({ ok: true });
      expect(calls).toEqual([`hint ${UID} /n`, `forget ${UID}`]);
      ready = false;
      const refused = JSON.parse(
        await ask(path, `{"op":"add","podUid":"${UID}","netns":"/n","waitMs":30}\n`),
      );
      expect(refused).toEqual({ ok: false, error: "not enrolled after 30 ms: not yet" });
    } finally {
      await server.close();
    }
  });

  test("replaces a stale socket and refuses to replace a regular file", async () => {
    const path = join(dir, "c.sock");
    // A crashed agent leaves its socket behind: a process killed while listening does exactly that.
    spawnSync(process.execPath, [
      "-e",
      `require("net").createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, "SIGKILL"))`,
    ]);
    expect(statSync(path).isSocket()).toBe(true);
    writeFileSync(join(dir, "file"), "x");
    const again = new CniServer({ socketPath: join(dir, "file"), pods: pods(() => true), log });
    await expect(again.listen()).rejects.toThrow(/exists and is not a socket; refusing to replace it/);
    const second = new CniServer({ socketPath: path, pods: pods(() => true), log });
    await second.listen();
    expect(JSON.parse(await ask(path, `{"op":"check","podUid":"${UID}"}\n`))).toEqual({ ok: true });
    await second.close();
  });
});
