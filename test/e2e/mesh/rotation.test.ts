// Certificate rotation under load: 20-second SVIDs, continuous traffic for two minutes across both
// nodes, several rotations on every agent, and not one failed request.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { meshFixture, type MeshFixture } from "../../helpers/mesh-fixture.ts";

const DURATION_MS = 120_000;
let fx: MeshFixture;

beforeAll(async () => {
  fx = await meshFixture("mrot", { mesh: { svidTtl: "20s" } });
}, 120_000);
afterAll(async () => {
  await fx?.close();
});

describe("SVID rotation", () => {
  it(
    "rotates 20 s certificates under two minutes of traffic with zero failed requests",
    async () => {
      const clients = ["n1p1", "n2p1"].map((pod) => fx.startLoad(pod, { rate: 10, reportMs: 1000 }));
      const notAfters = new Map<string, Set<string>>([
        ["n1", new Set()],
        ["n2", new Set()],
      ]);
      const end = Date.now() + DURATION_MS;
      try {
        while (Date.now() < end) {
          for (const node of ["n1", "n2"]) {
            const dump = JSON.parse(await fx.mesh.agentHttp(node, 15000, "/config_dump")) as {
              certificates: { spiffeId: string; notAfter?: string }[];
            };
            for (const c of dump.certificates)
              if (c.notAfter) notAfters.get(node)!.add(`${c.spiffeId} ${c.notAfter}`);
          }
          await new Promise((r) => setTimeout(r, 2000));
        }
      } finally {
        await Promise.all(clients.map((c) => c.stop()));
      }
      const windows = clients.flatMap((c) => c.windows);
      const ok = windows.reduce((n, w) => n + w.ok, 0);
      const failed = windows.filter((w) => w.failed > 0);
      expect(failed, JSON.stringify(failed)).toEqual([]);
      expect(ok).toBeGreaterThan(2000); // 2 clients x 10 rps x 120 s, give or take start-up
      // 20 s lifetime, rotated at half-life: ~12 certificates per identity in 2 minutes; demand several.
      for (const [node, certs] of notAfters) {
        const perIdentity = new Map<string, number>();
        for (const c of certs) {
          const id = c.split(" ")[0]!;
          perIdentity.set(id, (perIdentity.get(id) ?? 0) + 1);
        }
        expect(perIdentity.size, node).toBe(2);
        for (const [id, n] of perIdentity) expect(n, `${node} ${id}`).toBeGreaterThanOrEqual(5);
      }
    },
    DURATION_MS + 60_000,
  );
});
