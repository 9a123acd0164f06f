import { X509Certificate } from "node:crypto";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { buildCsr, csrUris, generateKeyAndCsr } from "../../../agent/identity/csr.ts";
import { IdentityManager } from "../../../agent/identity/manager.ts";
import { inspectCertificate } from "../../../agent/tls/svid.ts";
import { until } from "../../helpers/until.ts";
import { createTestCa } from "../../helpers/test-ca.ts";

const ID = "spiffe://cluster.local/ns/default/sa/web";
const silent = pino({ level: "silent" });

describe("CSR builder", () => {
  it("puts the SPIFFE ID in a URI SAN with an empty subject, signed by the node's key", async () => {
    const { keyPem, csrPem } = await generateKeyAndCsr(ID);
    expect(keyPem).toMatch(/BEGIN RSA PRIVATE KEY/);
    expect(csrUris(csrPem)).toEqual([ID]);
    const ca = createTestCa();
    const cert = ca.signCsr(csrPem);
    expect(inspectCertificate(cert).spiffeId).toBe(ID);
    expect(
      new X509Certificate(cert).checkPrivateKey((await import("node:crypto")).createPrivateKey(keyPem)),
    ).toBe(true);
    expect(typeof buildCsr).toBe("function");
  });
});

describe("IdentityManager", () => {
  it("issues, rotates at half-life, and keeps the old certificate while the CA is down", async () => {
    const ca = createTestCa();
    // Rotation is due at half of the life left; 3 s leaves room for a slow RSA key generation.
    const signer = ca.signer({ lifetimeMs: 3000 });
    const m = new IdentityManager(
      signer,
      { rotateFraction: 0.5, csrRetryMinMs: 100, csrRetryMaxMs: 200 },
      silent,
    );
    const bundles: number[] = [];
    m.on("bundle", (b) => bundles.push(b.length));
    m.want(ID);
    const first = await m.ready(ID);
    expect(first.spiffeId).toBe(ID);
    expect(m.bundle).toEqual([ca.certPem]);
    expect(bundles).toEqual([1]);
    const rotated = await new Promise<number>((r) => m.once("svid", (_id, s) => r(s.notAfter)));
    expect(rotated).toBeGreaterThanOrEqual(first.notAfter);
    expect(signer.calls).toBe(2);
    signer.fail = true;
    // The next rotation (about 1 s away, after a key generation) fails and is retried with backoff.
    await until(() => signer.calls > 3 && m.dump()[0]?.lastError !== undefined, 10_000);
    expect(m.get(ID)).toBeDefined(); // still valid, still served
    expect(m.dump()[0]?.lastError).toMatch(/signing disabled/);
    signer.fail = false;
    m.close();
  }, 15_000);

  it("rejects a certificate for another identity", async () => {
    const ca = createTestCa();
    const m = new IdentityManager(
      {
        signCsr: async (csr) => ({
          certChain: [ca.signCsr(csr, { uriOverride: "spiffe://cluster.local/ns/x/sa/y" })],
          trustBundle: [ca.certPem],
        }),
      },
      { rotateFraction: 0.5, csrRetryMinMs: 10_000, csrRetryMaxMs: 10_000 },
      silent,
    );
    m.want(ID);
    await new Promise((r) => setTimeout(r, 500));
    expect(m.get(ID)).toBeUndefined();
    expect(m.dump()[0]?.lastError).toMatch(/issued spiffe:\/\/cluster.local\/ns\/x\/sa\/y/);
    m.close();
  });
});
