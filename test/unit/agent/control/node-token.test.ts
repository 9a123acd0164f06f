// The agent's token (agent/control/node-token.ts): a fixed token stays; a token file is read at
// start (a missing or empty one fails, naming the file) and re-read on refresh, keeping the last
// good token when the file is briefly unreadable or empty.
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, test } from "vitest";
import { NodeToken } from "../../../../agent/control/node-token.ts";

const log = pino({ level: "silent" });
const dir = mkdtempSync(join(tmpdir(), "nodemesh-token-"));
const file = join(dir, "token");
afterEach(() => rmSync(file, { force: true }));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

describe("NodeToken", () => {
  test("a fixed token never changes", () => {
    const t = new NodeToken({ token: "fixed-token", log });
    expect(t.refresh()).toBe("fixed-token");
    expect(t.value).toBe("fixed-token");
  });

  test("a rotated file is picked up on refresh", () => {
    writeFileSync(file, "first-token\n");
    const t = new NodeToken({ file, log });
    expect(t.value).toBe("first-token");
    writeFileSync(file, "second-token");
    expect(t.value).toBe("first-token"); // only a refresh (a reconnect) reads it
    expect(t.refresh()).toBe("second-token");
    expect(t.value).toBe("second-token");
  });

  test("an unreadable or empty file keeps the last good token", () => {
    writeFileSync(file, "good-token");
    const t = new NodeToken({ file, log });
    unlinkSync(file);
    expect(t.refresh()).toBe("good-token");
    writeFileSync(file, "  \n");
    expect(t.refresh()).toBe("good-token");
    writeFileSync(file, "next-token");
    expect(t.refresh()).toBe("next-token");
  });

  test("at start a missing or empty file, or neither token nor file, is an error naming it", () => {
    expect(() => new NodeToken({ file, log })).toThrow(`cannot read the node token file ${file}`);
    writeFileSync(file, "\n");
    expect(() => new NodeToken({ file, log })).toThrow(`the node token file ${file} is empty`);
    expect(() => new NodeToken({ log })).toThrow("needs token or tokenFile");
  });
});
