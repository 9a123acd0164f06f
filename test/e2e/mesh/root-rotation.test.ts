// Rotating the mesh's root CA on a running mesh, following docs/identity.md: trust the new root, sign
// with it, all under continuous traffic — no failed request, and pods end up with certificates from the
// new root while those from the old one still verify.
import { appendFileSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { opensslLeaf, opensslRoot } from "../../helpers/openssl-certs.ts";
import { eventually, meshFixture, VIP, type MeshFixture } from "../../helpers/mesh-fixture.ts";

const FIXTURES = join(import.meta.dirname, "fixtures");
let fx: MeshFixture;
let dir: string;

beforeAll(async () => {
  // Short SVIDs, so that re-issuance under the new root happens within the test.
  fx = await meshFixture("mroot", { mesh: { svidTtl: "8s" } });
  dir = mkdtempSync(join(tmpdir(), "nm-root-"));
}, 120_000);
afterAll(async () => {
  await fx?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The issuer of the certificate pod n2p2 presents on its HBONE port, as openssl prints it. */
async function servedIssuer(clientKey: string, clientCert: string): Promise<string> {
  const pod = fx.lab.pod(2, 2);
  const r = await fx.lab.exec(fx.lab.node(1), [
    "sh",
    "-c",
    `timeout 5 openssl s_client -connect ${pod.address}:15008 -tls1_3 -alpn h2 -key ${clientKey} -cert ${clientCert} </dev/null 2>/dev/null | openssl x509 -noout -issuer`,
  ]);
  return r.stdout.trim();
}

describe("root CA rotation", () => {
  it("trusts a new root, then signs with it, under traffic, with no failed request", async () => {
    const ca = join(fx.mesh.dir, "ca");
    const oldCert = readFileSync(join(ca, "ca-cert.pem"), "utf8");
    const { key: newKey, cert: newCert } = opensslRoot(dir, "new-root", "/O=nodemesh rotated root");
    // A client certificate from the new root, to look at what pods serve (any mesh identity will do).
    const probe = opensslLeaf(dir, "c", "spiffe://cluster.local/ns/default/sa/client", {
      key: newKey,
      cert: newCert,
    });
    const load = fx.startLoad("n1p1", { rate: 10, reportMs: 1000 });
    const { windows } = load;
    const bothRoots = join(dir, "both-roots.pem");
    writeFileSync(bothRoots, oldCert + readFileSync(newCert, "utf8"));
    const connectWithNewRootCert = async (): Promise<string> => {
      const pod = fx.lab.pod(2, 2);
      const r = await fx.lab.exec(fx.lab.node(1), [
        process.execPath,
        join(FIXTURES, "hbone-client.ts"),
        `https://${pod.address}:15008`,
        `${pod.address}:8080`,
        probe.key,
        probe.cert,
        bothRoots,
        // sa/client's pod on node 1, where this probe connects from: the source check passes.
        fx.lab.pod(1, 1).address,
      ]);
      return r.stdout.trim();
    };
    try {
      await eventually("traffic", () => windows.some((w) => w.ok > 0));
      // Before: a certificate of the new root is refused by the pods' agents.
      expect(await connectWithNewRootCert()).toMatch(/^(error |closed by server)/);
      expect(await servedIssuer(probe.key, probe.cert)).not.toContain("rotated root");

      // 1. Trust the new root beside the old one: the bundle reaches the agents through the stream.
      appendFileSync(join(ca, "extra-roots.pem"), readFileSync(newCert, "utf8"));
      fx.mesh.controller.kill("SIGHUP");
      await eventually(
        "agents trusting the new root",
        async () => (await connectWithNewRootCert()) === "status 200",
        20_000,
      );

      // 2. Sign with the new root; the old one stays trusted.
      copyFileSync(newCert, join(ca, "ca-cert.pem"));
      copyFileSync(newKey, join(ca, "ca-key.pem"));
      writeFileSync(join(ca, "extra-roots.pem"), oldCert);
      fx.mesh.controller.kill("SIGHUP");
      await eventually(
        "pods serving certificates of the new root",
        async () => (await servedIssuer(probe.key, probe.cert)).includes("nodemesh rotated root"),
        30_000,
      );
      const settle = windows.length;
      await eventually("three more seconds of traffic", () => windows.length >= settle + 3, 10_000);
    } finally {
      await load.stop();
    }
    const failed = windows.filter((w) => w.failed > 0);
    expect(failed, JSON.stringify(failed)).toEqual([]);
    expect(windows.reduce((n, w) => n + w.ok, 0)).toBeGreaterThan(20);
    // Traffic kept flowing after the switch, on connections set up with certificates of the new root.
    expect(windows.slice(-3).every((w) => w.ok > 0)).toBe(true);
    // A request made now, after the switch, works end to end.
    expect((await fx.curl("n2p1", `http://${VIP}/`, ["--fail"])).code).toBe(0);
  });
});
