// The installer's conflist edits (cni/installer/conflist.ts): which file is primary, our entry put
// last (a .conf turned into a list), an existing entry kept or moved, removal, and malformed input.
import { describe, expect, test } from "vitest";
import {
  ConflistError,
  conflistName,
  insertEntry,
  primaryConfName,
  removeEntry,
} from "../../../cni/installer/conflist.ts";

const entry = { agentSocket: "/var/run/nodemesh/cni.sock", enrollTimeoutMs: 15000 };
const flannel = JSON.stringify({
  cniVersion: "0.3.1",
  name: "cbr0",
  plugins: [{ type: "flannel", delegate: { isDefaultGateway: true } }, { type: "portmap" }],
});

describe("conflist edits", () => {
  test("the primary config is the lexically first .conflist/.conf/.json", () => {
    expect(primaryConfName(["99-x.conflist", "10-flannel.conflist", "README", ".tmp.conf"])).toBe(
      "10-flannel.conflist",
    );
    expect(primaryConfName(["10-b.conf", "10-b.conflist"])).toBe("10-b.conf");
    expect(primaryConfName(["README"])).toBeUndefined();
    expect(conflistName("10-b.conf")).toBe("10-b.conflist");
    expect(conflistName("10-b.conflist")).toBe("10-b.conflist");
  });

  test("inserted last, idempotently; an existing entry is replaced and moved last", () => {
    const once = insertEntry(flannel, "10-flannel.conflist", entry);
    expect(once.changed).toBe(true);
    const o = JSON.parse(once.text) as { plugins: { type: string }[]; name: string };
    expect(o.name).toBe("cbr0");
    expect(o.plugins.map((p) => p.type)).toEqual(["flannel", "portmap", "nodemesh-cni"]);
    expect(o.plugins[2]).toEqual({ ...entry, type: "nodemesh-cni" });
    expect(insertEntry(once.text, "10-flannel.conflist", entry)).toEqual({ text: once.text, changed: false });
    // An old entry first in the list, with other settings: one entry, ours, last.
    const stale = JSON.stringify({
      cniVersion: "1.0.0",
      name: "k8s",
      plugins: [{ type: "nodemesh-cni", enrollTimeoutMs: 1 }, { type: "ptp" }],
    });
    const fixed = JSON.parse(insertEntry(stale, "x.conflist", entry).text) as { plugins: object[] };
    expect(fixed.plugins).toEqual([{ type: "ptp" }, { ...entry, type: "nodemesh-cni" }]);
  });

  test("a single .conf becomes a conflist holding its plugin", () => {
    const conf = JSON.stringify({
      cniVersion: "0.4.0",
      name: "bridge",
      type: "bridge",
      ipam: { type: "host-local" },
    });
    const out = insertEntry(conf, "10-bridge.conf", entry);
    expect(JSON.parse(out.text)).toEqual({
      cniVersion: "0.4.0",
      name: "bridge",
      plugins: [
        { type: "bridge", ipam: { type: "host-local" } },
        { ...entry, type: "nodemesh-cni" },
      ],
    });
  });

  test("removal takes every entry of ours out and leaves other files as they are", () => {
    const with_ = insertEntry(flannel, "10-flannel.conflist", entry).text;
    const out = removeEntry(with_, "10-flannel.conflist");
    expect(out.changed).toBe(true);
    expect(JSON.parse(out.text)).toEqual(JSON.parse(flannel));
    expect(removeEntry(flannel, "10-flannel.conflist")).toEqual({ text: flannel, changed: false });
  });

  test.each([
    ["{not json", /10-x.conflist is not JSON/],
    ["[1]", /must hold a JSON object/],
    ['{"cniVersion":"1.0.0","name":"n","plugins":{}}', /"plugins" must be a list of objects/],
    ['{"cniVersion":"1.0.0","name":"n"}', /neither "plugins" nor a plugin "type"/],
  ])("malformed %s → a clear error", (text, message) => {
    expect(() => insertEntry(text, "10-x.conflist", entry)).toThrow(ConflistError);
    expect(() => insertEntry(text, "10-x.conflist", entry)).toThrow(message);
  });
});
