// The config stream's deflate encoding over the real TLS stream: negotiated per agent, a plain
// client still gets plain NDJSON, both hold the same configuration through snapshot and deltas.
// Likewise the snapshot's workload rows (controller/api/workload-rows.ts): only for an agent that
// sends the feature header; the "plain" agent here is an older one (neither deflate nor rows).
import { writeFileSync } from "node:fs";
import http2 from "node:http2";
import { constants, createInflate } from "node:zlib";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ControllerClient } from "../../../agent/control/client.ts";
import { HEADER_NODE, PATH_STREAM } from "../../../controller/api/index.ts";
import { HEADER_FEATURES, expandWorkloadRows } from "../../../controller/api/workload-rows.ts";
import { BASE_CONFIG, Harness, TOKENS, waitForConfig, workloadYaml } from "./harness.ts";

/** Opens the stream by hand; resolves with the response headers and the first line, decoded. */
function firstLine(h: Harness, acceptEncoding: string | undefined, features?: string) {
  return new Promise<{ encoding: unknown; line: string }>((resolve, reject) => {
    const s = http2.connect(`https://127.0.0.1:${h.port}`, { ca: h.app?.ca.trustBundle ?? [] });
    s.on("error", reject);
    const req = s.request({
      ":method": "POST",
      ":path": PATH_STREAM,
      authorization: `Bearer ${TOKENS["node-a"]}`,
      [HEADER_NODE]: "node-a",
      ...(acceptEncoding ? { "accept-encoding": acceptEncoding } : {}),
      ...(features ? { [HEADER_FEATURES]: features } : {}),
    });
    req.on("response", (headers) => {
      const encoding = headers["content-encoding"];
      const body =
        encoding === "deflate"
          ? req.pipe(createInflate({ flush: constants.Z_SYNC_FLUSH, finishFlush: constants.Z_SYNC_FLUSH }))
          : req;
      let text = "";
      body.setEncoding("utf8");
      body.on("data", (c: string) => {
        text += c;
        const nl = text.indexOf("\n");
        if (nl < 0) return;
        resolve({ encoding, line: text.slice(0, nl) });
        s.destroy();
      });
    });
  });
}

describe("config stream encoding", () => {
  const h = new Harness();
  let zipped: ControllerClient;
  let plain: ControllerClient;

  beforeAll(async () => {
    await h.startController();
    zipped = h.client("node-a");
    plain = h.client("node-b", undefined, { compression: false, workloadRows: false });
    zipped.start();
    plain.start();
  });
  afterAll(() => h.close());

  test("deflate only for agents that ask for it; the same snapshot either way", async () => {
    const z = await firstLine(h, "gzip, deflate");
    const p = await firstLine(h, undefined);
    expect(z.encoding).toBe("deflate");
    expect(p.encoding).toBeUndefined();
    expect(z.line).toBe(p.line);
    expect(JSON.parse(z.line)).toMatchObject({
      type: "snapshot",
      config: { version: h.app?.hub.current?.id },
    });
  });

  test("workload rows only for agents that ask for them; the same config either way", async () => {
    const rows = await firstLine(h, "deflate", "workload-rows");
    const objects = await firstLine(h, "deflate");
    expect(rows.line).toContain(`"workloadRows":`);
    expect(objects.line).not.toContain(`"workloadRows":`);
    const expanded: unknown = JSON.parse(rows.line);
    expandWorkloadRows(expanded);
    expect(expanded).toEqual(JSON.parse(objects.line));
  });

  test("a compressed and a plain agent follow snapshot and deltas alike", async () => {
    const cz = await waitForConfig(zipped, () => true);
    const cp = await waitForConfig(plain, () => true);
    expect(cz.workloads).toEqual(cp.workloads);
    for (let k = 1; k <= 3; k++) {
      writeFileSync(
        h.configFile,
        `${BASE_CONFIG}---\n${workloadYaml("web-2", "10.1.0.4", "node-a", `, rev: "${k}"`)}`,
      );
      const pred = (c: { workloads: readonly { spec: { labels: Record<string, string> } }[] }) =>
        c.workloads.some((w) => w.spec.labels.rev === String(k));
      const [a, b] = await Promise.all([waitForConfig(zipped, pred), waitForConfig(plain, pred)]);
      expect(a.version).toBe(b.version);
      expect(a.workloads).toEqual(b.workloads);
      expect(zipped.lastApply?.version).toBe(a.version);
      expect(zipped.lastApply?.applyMs).toBeGreaterThanOrEqual(0);
    }
    const text = await h.metrics();
    expect(text).toMatch(/nodemesh_controller_pushes_total\{type="delta"\} [6-9]/);
  });
});
