// The stream's deflate encoding (pieces that splice into one zlib stream), encoding negotiation,
// the snapshot byte budget, and the hub's per-view sharing of snapshots and deltas.
import { constants, inflateSync } from "node:zlib";
import { describe, expect, test } from "vitest";
import { validateDocument } from "../../../controller/api/index.ts";
import type { Resource } from "../../../controller/api/index.ts";
import {
  ZLIB_HEADER,
  deflatedSegment,
  encodePiece,
  storedBlocks,
} from "../../../controller/distribution/deflate.ts";
import { ConfigHub } from "../../../controller/distribution/hub.ts";
import { negotiateEncoding } from "../../../controller/distribution/server.ts";
import { SnapshotGate } from "../../../controller/distribution/session.ts";
import { buildModel, sourced } from "../../../controller/model/model.ts";

const inflate = (parts: (string | Buffer)[]) =>
  inflateSync(Buffer.concat([ZLIB_HEADER, ...parts.map((p) => Buffer.from(p))]), {
    finishFlush: constants.Z_SYNC_FLUSH,
  }).toString();

describe("deflate pieces", () => {
  test("stored blocks, compressed segments and both kinds of text splice into one stream", () => {
    const big = JSON.stringify(Array.from({ length: 3000 }, (_, i) => ({ name: `w-${i}`, x: "é" })));
    const long = "s".repeat(70_000); // more than one stored block
    const parts = [
      storedBlocks("{"),
      deflatedSegment(big),
      storedBlocks(long),
      encodePiece(big),
      encodePiece("}\n"),
    ];
    expect(inflate(parts)).toBe(`{${big}${long}${big}}\n`);
    expect(deflatedSegment(big).length).toBeLessThan(big.length / 5);
    // Every piece ends on a byte boundary after a sync flush or a stored block: no final block.
    expect(deflatedSegment(big).subarray(-4)).toEqual(Buffer.from([0, 0, 0xff, 0xff]));
    expect(storedBlocks("").equals(Buffer.from([0, 0, 0, 0xff, 0xff]))).toBe(true);
  });

  test("accept-encoding negotiation", () => {
    expect(negotiateEncoding(undefined)).toBe("identity");
    expect(negotiateEncoding("gzip, br")).toBe("identity");
    expect(negotiateEncoding("deflate")).toBe("deflate");
    expect(negotiateEncoding("gzip;q=1, Deflate;q=0.5")).toBe("deflate");
    expect(negotiateEncoding("deflate;q=0")).toBe("identity");
    expect(negotiateEncoding(["gzip", "deflate"])).toBe("deflate");
  });
});

describe("SnapshotGate", () => {
  test("holds at most the budget, serves waiters in order, lets an oversized one go alone", () => {
    const gate = new SnapshotGate(100);
    const got: string[] = [];
    expect(gate.tryAcquire(60)).toBe(true);
    expect(gate.tryAcquire(50)).toBe(false);
    gate.wait(50, () => got.push("b50"));
    expect(gate.tryAcquire(10)).toBe(false); // queued ones go first
    gate.wait(500, () => got.push("c500"));
    gate.wait(10, () => got.push("d10"));
    gate.release(60);
    expect(got).toEqual(["b50"]);
    gate.release(50);
    expect(got).toEqual(["b50", "c500"]); // alone: nothing else held
    gate.release(500);
    expect(got).toEqual(["b50", "c500", "d10"]);
    gate.release(10);
    expect(gate.tryAcquire(100)).toBe(true);
  });
});

const V = "nodemesh.io/v1alpha1";
function res(doc: object): Resource {
  const r = validateDocument({ apiVersion: V, ...doc }, "t", 1);
  if (!r.ok) throw new Error("invalid test resource");
  return r.resource;
}
const wl = (name: string, i: number, node: string, app: string, extra: Record<string, string> = {}) =>
  sourced(
    res({
      kind: "WorkloadEntry",
      metadata: { name, namespace: "shop" },
      spec: { address: `10.1.0.${i}`, node, netns: name, labels: { app, ...extra } },
    }),
  );
const policy = (app: string) =>
  sourced(
    res({
      kind: "AuthorizationPolicy",
      metadata: { name: `allow-${app}`, namespace: "shop" },
      spec: { selector: { matchLabels: { app } }, rules: [{}] },
    }),
  );

describe("ConfigHub", () => {
  const base = [wl("a1", 1, "node-a", "x"), wl("b1", 2, "node-b", "x"), wl("c1", 3, "node-c", "y")];
  const pols = [policy("x"), policy("y")];
  const hub = new ConfigHub({ epoch: "e" });
  const m1 = buildModel([...base, ...pols]).model;
  if (!m1) throw new Error("model");
  const v1 = hub.publish(m1, ["ROOT"]);

  test("a deflated snapshot inflates to the identity one; nodes of one view share it", () => {
    for (const node of ["node-a", "node-c"]) {
      const plain = hub
        .snapshotParts(v1, node)
        .map((p) => p.toString())
        .join("");
      expect(inflate(hub.snapshotParts(v1, node, "deflate"))).toBe(plain);
      expect(JSON.parse(plain).config.authorizationPolicies.length).toBe(1);
    }
    expect(hub.snapshotParts(v1, "node-a", "deflate")).toBe(hub.snapshotParts(v1, "node-b", "deflate"));
    expect(hub.snapshotParts(v1, "node-a", "deflate")).not.toBe(hub.snapshotParts(v1, "node-c", "deflate"));
  });

  test("deltas are built once per view and carry the same content in both encodings", () => {
    const changed = [wl("a1", 1, "node-a", "x", { rev: "2" }), ...base.slice(1)];
    const m2 = buildModel([...changed, ...pols], {}, m1).model;
    if (!m2) throw new Error("model");
    const v2 = hub.publish(m2, ["ROOT"]);
    const da = hub.deltaBytes(v1, v2, "node-a", "deflate");
    expect(hub.deltaBytes(v1, v2, "node-b", "deflate")).toBe(da);
    expect(inflate([da as Buffer])).toBe(`${hub.deltaMessage(v1, v2, "node-a")}\n`);
    expect(hub.deltaBytes(v1, v2, "node-a", "identity")).toBe(`${hub.deltaMessage(v1, v2, "node-a")}\n`);
    const delta = JSON.parse(hub.deltaMessage(v1, v2, "node-c")).delta;
    expect(delta.upserts.map((r: Resource) => r.metadata.name)).toEqual(["a1"]);
    expect(delta.removals).toEqual([]);
  });
});
