// The file source's fail-closed reads (controller/file-source.ts) and the settled watcher
// (controller/file-settle.ts): empty files and directories are refused unless forced, YAML errors
// carry their real line and column, and a file being written is reported only once it is stable.
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { formatIssue } from "../../../controller/api/index.ts";
import { SettledWatcher, pathSignature } from "../../../controller/file-settle.ts";
import { FileSource, parseFile } from "../../../controller/file-source.ts";

const wl = (name: string, address: string) => `apiVersion: nodemesh.io/v1alpha1
kind: WorkloadEntry
metadata: {name: ${name}, namespace: shop}
spec: {address: ${address}, serviceAccount: ${name}, node: n1, netns: /var/run/netns/${name}}
`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "nodemesh-fs-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("FileSource refuses what holds no resource", () => {
  test.each([
    ["an empty file", "", "is empty"],
    ["a whitespace-only file", "  \n\n\t\n", "is empty"],
    ["a comments-only file", "# all gone\n", "holds no resource (only comments or empty documents)"],
    ["only empty documents", "---\n---\n", "holds no resource (only comments or empty documents)"],
  ])("%s", (_name, content, what) => {
    const file = join(dir, "mesh.yaml");
    writeFileSync(file, content);
    const r = new FileSource(file).read();
    expect(r.reason).toBe("empty_file");
    expect(r.entries).toEqual([]);
    expect(r.issues.map(formatIssue)).toEqual([
      `${file}: document 0: ${what}; a truncated file is taken for a write in progress or a mistake, so ` +
        "the last good configuration keeps serving; to remove this file's resources, delete the file " +
        "(in a directory) or send SIGHUP to the controller to apply it as it is",
    ]);
    expect(new FileSource(file).read({ allowEmpty: true })).toMatchObject({ entries: [], issues: [] });
  });

  test("one empty file in a directory refuses the whole directory; deleting it is the way", () => {
    writeFileSync(join(dir, "a.yaml"), wl("a", "10.1.0.2"));
    writeFileSync(join(dir, "b.yaml"), "");
    const src = new FileSource(dir);
    const r = src.read();
    expect(r.reason).toBe("empty_file");
    expect(r.issues.map((i) => i.file)).toEqual([join(dir, "b.yaml")]);
    rmSync(join(dir, "b.yaml"));
    const ok = src.read();
    expect(ok.issues).toEqual([]);
    expect(ok.entries.map((e) => e.resource.metadata.name)).toEqual(["a"]);
  });

  test("a directory with no config file is empty; a missing path is unreadable", () => {
    const sub = join(dir, "conf.d");
    mkdirSync(sub);
    writeFileSync(join(sub, "notes.txt"), "not config");
    const r = new FileSource(sub).read();
    expect(r.reason).toBe("empty_file");
    expect(formatIssue(r.issues[0] as never)).toMatch(
      /^.*conf\.d: document 0: no \*\.yaml, \*\.yml or \*\.json file/,
    );
    expect(new FileSource(sub).read({ allowEmpty: true }).issues).toEqual([]);
    const gone = new FileSource(join(dir, "nope.yaml")).read();
    expect(gone.reason).toBe("unreadable");
    expect(gone.issues[0]?.message).toMatch(/^cannot read: ENOENT.*; check --config$/);
  });

  test("an invalid file is refused as invalid, and unreadable wins over it", () => {
    writeFileSync(join(dir, "a.yaml"), wl("a", "10.1.0.300"));
    expect(new FileSource(dir).read().reason).toBe("invalid");
    // The cached parse of a file is reused, but an empty result is refused on every read.
    const file = join(dir, "a.yaml");
    writeFileSync(file, "");
    const src = new FileSource(file);
    expect(src.read().reason).toBe("empty_file");
    expect(src.read().reason).toBe("empty_file");
  });
});

describe("YAML syntax errors", () => {
  test("carry the real line and column of the error", () => {
    const content = `${wl("a", "10.1.0.2")}---\napiVersion: nodemesh.io/v1alpha1\nkind: WorkloadEntry\nmetadata: {name: b\n`;
    const r = parseFile("m.yaml", content);
    expect(r.issues.length).toBeGreaterThan(0);
    expect(formatIssue(r.issues[0] as never)).toMatch(
      /^m\.yaml: document 2: yaml syntax error at line 9, column 1: Flow map in block collection/,
    );
    expect(r.issues.every((i) => !i.message.includes("line 0"))).toBe(true);
    const tab = parseFile("t.yaml", "kind: Service\n\tspec: {}\n");
    expect(tab.issues[0]?.message).toMatch(/^yaml syntax error at line 2, column 1: /);
  });
});

describe("SettledWatcher", () => {
  test("a write with a pause inside is reported once, after it completes", async () => {
    const file = join(dir, "mesh.yaml");
    writeFileSync(file, wl("a", "10.1.0.2"));
    const seen: string[] = [];
    const src = new FileSource(file, { settleMs: 60 });
    src.watch(() =>
      seen.push(
        src
          .read()
          .entries.map((e) => e.resource.metadata.name)
          .join(","),
      ),
    );
    try {
      const full = `${wl("a", "10.1.0.2")}---\n${wl("b", "10.1.0.3")}`;
      const fd = openSync(file, "w"); // truncates: what `cat > file` does first
      writeSync(fd, full.slice(0, full.length - 40));
      await sleep(30); // shorter than the settle time
      writeSync(fd, full.slice(full.length - 40));
      closeSync(fd);
      await sleep(400);
      expect(seen).toEqual(["a,b"]);
    } finally {
      src.close();
    }
  });

  test("waits while the path keeps changing, then reports; nothing after close", async () => {
    const file = join(dir, "mesh.yaml");
    writeFileSync(file, "a: 1\n");
    let calls = 0;
    let unstableAfter = 0;
    const w = new SettledWatcher(file, { settleMs: 20, onUnstable: (ms) => (unstableAfter = ms) });
    w.watch(() => (calls += 1));
    for (let i = 0; i < 10; i++) {
      writeFileSync(file, `a: ${i}\n${"x".repeat(i)}`);
      await sleep(10);
    }
    expect(calls).toBe(0);
    await sleep(200);
    expect(calls).toBe(1);
    expect(unstableAfter).toBe(0);
    w.close();
    writeFileSync(file, "b: 2\n");
    await sleep(100);
    expect(calls).toBe(1);
  });

  test("settled() resolves once the signature holds for one settle time", async () => {
    const file = join(dir, "mesh.yaml");
    writeFileSync(file, "a: 1\n");
    const before = pathSignature(file);
    const t0 = performance.now();
    await new SettledWatcher(file, { settleMs: 30 }).settled();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
    writeFileSync(file, "a: 22\n");
    expect(pathSignature(file)).not.toBe(before);
    expect(pathSignature(join(dir, "missing"))).toBe("unreadable:ENOENT");
  });
});
