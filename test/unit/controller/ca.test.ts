// The CA: root persistence, the issued SVID decoded by node:crypto and by `openssl x509`, lifetime,
// every rejection reason, and trust-bundle rotation.
import { execFileSync } from "node:child_process";
import { X509Certificate, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import forge from "node-forge";
import { afterAll, describe, expect, test } from "vitest";
import { buildCsr } from "../../../agent/identity/csr.ts";
import { CertificateAuthority } from "../../../controller/ca/ca.ts";
import { EXTRA_ROOTS_FILE, generateRoot, loadRoot } from "../../../controller/ca/root.ts";
import { rejection } from "../../helpers/csr-rejection.ts";

const dir = mkdtempSync(join(tmpdir(), "nodemesh-ca-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const caDir = join(dir, "ca");
const root = loadRoot({ dir: caDir }, "cluster.local");
const ca = new CertificateAuthority(root, { trustDomain: "cluster.local", svidTtlMs: 20_000 });
const WEB = "spiffe://cluster.local/ns/shop/sa/web";
const placement = { identityOnNode: (id: string, node: string) => id === WEB && node === "node-a" };

const keys = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  publicKeyEncoding: { type: "spki", format: "pem" },
  privateKeyEncoding: { type: "pkcs1", format: "pem" },
});
const csrFor = (id: string) => buildCsr(id, keys.privateKey, keys.publicKey);

function csrWithSans(altNames: { type: number; value?: string; ip?: string }[]): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(keys.publicKey);
  csr.setSubject([]);
  csr.setAttributes([{ name: "extensionRequest", extensions: [{ name: "subjectAltName", altNames }] }]);
  csr.sign(
    forge.pki.privateKeyFromPem(keys.privateKey) as forge.pki.rsa.PrivateKey,
    forge.md.sha256.create(),
  );
  return forge.pki.certificationRequestToPem(csr);
}

describe("root", () => {
  test("generated once with safe permissions, then loaded", () => {
    expect(statSync(caDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(caDir, "ca-key.pem")).mode & 0o777).toBe(0o600);
    const again = loadRoot({ dir: caDir }, "cluster.local");
    expect(again.certPem).toBe(root.certPem);
    const cert = new X509Certificate(root.certPem);
    expect(cert.ca).toBe(true);
    expect(root.trustBundle).toEqual([root.certPem]);
  });

  test("operator files: cert and key must match", () => {
    const other = generateRoot("cluster.local");
    writeFileSync(join(dir, "op-cert.pem"), other.certPem);
    writeFileSync(join(dir, "op-key.pem"), root.keyPem);
    expect(() =>
      loadRoot({ certFile: join(dir, "op-cert.pem"), keyFile: join(dir, "op-key.pem") }, "cluster.local"),
    ).toThrow(/the CA key does not match the CA certificate/);
  });
});

describe("issued SVID", () => {
  const now = Date.now();
  const issued = ca.signWorkload({ csrPem: csrFor(WEB), identity: WEB, node: "node-a" }, placement, now);
  const pem = issued.certChain[0] ?? "";

  test("node:crypto sees a URI SAN only, empty subject, the right lifetime, signed by the root", () => {
    const cert = new X509Certificate(pem);
    expect(cert.subjectAltName).toBe(`URI:${WEB}`);
    expect(cert.subject ?? "").toBe("");
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
    expect(Date.parse(cert.validFrom)).toBeLessThanOrEqual(now - 4 * 60_000);
    expect(Date.parse(cert.validTo) - now).toBeGreaterThan(18_000);
    expect(Date.parse(cert.validTo) - now).toBeLessThanOrEqual(20_000);
    expect(cert.verify(new X509Certificate(root.certPem).publicKey)).toBe(true);
    expect(issued.expiresAt).toBe(new Date(now + 20_000).toISOString());
    expect(issued.trustBundle).toEqual([root.certPem]);
  });

  test("openssl x509 agrees: critical SAN, critical key usage, serverAuth+clientAuth, CA:FALSE", () => {
    const file = join(dir, "leaf.pem");
    writeFileSync(file, pem);
    const text = execFileSync("openssl", ["x509", "-in", file, "-noout", "-text"], { encoding: "utf8" });
    expect(text).toMatch(
      /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/web\n/,
    );
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/);
    expect(text).toMatch(
      /X509v3 Extended Key Usage: \s*\n\s+TLS Web Server Authentication, TLS Web Client Authentication/,
    );
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/Subject: *\n/);
    writeFileSync(join(dir, "root.pem"), root.certPem);
    const verify = execFileSync("openssl", ["verify", "-CAfile", join(dir, "root.pem"), file], {
      encoding: "utf8",
    });
    expect(verify.trim()).toBe(`${file}: OK`);
  });

  test("the identity defaults to the CSR's SAN", () => {
    const r = ca.signWorkload({ csrPem: csrFor(WEB), node: "node-a" }, placement);
    expect(new X509Certificate(r.certChain[0] ?? "").subjectAltName).toBe(`URI:${WEB}`);
  });
});

describe("every rejection reason", () => {
  test("malformed_csr", () => {
    expect(rejection(() => ca.signWorkload({ csrPem: "garbage", node: "node-a" }, placement)).reason).toBe(
      "malformed_csr",
    );
  });
  test("bad_signature", () => {
    const good = csrFor(WEB);
    const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ""), "base64");
    der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0xff; // flip a signature byte
    const bad = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    const e = rejection(() => ca.signWorkload({ csrPem: bad, node: "node-a" }, placement));
    expect(e.reason).toBe("bad_signature");
    expect(e.message).toBe("csr signature does not verify with its public key");
  });
  test("san_mismatch", () => {
    const e = rejection(() =>
      ca.signWorkload(
        { csrPem: csrFor(WEB), identity: "spiffe://cluster.local/ns/shop/sa/db", node: "node-a" },
        placement,
      ),
    );
    expect(e.reason).toBe("san_mismatch");
    expect(e.message).toBe(
      `csr SAN ${WEB} does not match the requested identity spiffe://cluster.local/ns/shop/sa/db`,
    );
    expect(
      rejection(() => ca.signWorkload({ csrPem: csrWithSans([]), node: "node-a" }, placement)).reason,
    ).toBe("san_mismatch");
  });
  test("extra_sans", () => {
    const csr = csrWithSans([
      { type: 6, value: WEB },
      { type: 2, value: "evil.example" },
    ]);
    const e = rejection(() => ca.signWorkload({ csrPem: csr, identity: WEB, node: "node-a" }, placement));
    expect(e.reason).toBe("extra_sans");
    expect(e.message).toBe("csr has 2 subject alternative names; an SVID has exactly one URI SAN");
  });
  test("bad_identity", () => {
    const id = "spiffe://other.domain/ns/shop/sa/web";
    const e = rejection(() =>
      ca.signWorkload({ csrPem: csrFor(id), node: "node-a" }, { identityOnNode: () => true }),
    );
    expect(e.reason).toBe("bad_identity");
  });
  test("identity_not_on_node", () => {
    const e = rejection(() => ca.signWorkload({ csrPem: csrFor(WEB), node: "node-b" }, placement));
    expect(e.reason).toBe("identity_not_on_node");
    expect(e.code).toBe("NODEMESH_ERR_CSR_REJECTED");
    expect(e.message).toBe(
      `no workload with identity ${WEB} is placed on node node-b; check WorkloadEntry spec.node`,
    );
  });
});

describe("rotation", () => {
  test("a second root joins the bundle; switching the signing root keeps trusting the old one", () => {
    const next = generateRoot("cluster.local");
    // Step 1: trust the new root everywhere (extra-roots.pem), still signing with the old one.
    writeFileSync(join(caDir, EXTRA_ROOTS_FILE), next.certPem);
    const step1 = loadRoot({ dir: caDir }, "cluster.local");
    expect(step1.certPem).toBe(root.certPem);
    expect(step1.trustBundle).toEqual([root.certPem, next.certPem]);
    // Step 2: sign with the new root, keep the old one trusted.
    writeFileSync(join(dir, "next-cert.pem"), next.certPem);
    writeFileSync(join(dir, "next-key.pem"), next.keyPem);
    writeFileSync(join(dir, "old-roots.pem"), root.certPem);
    const step2 = loadRoot(
      {
        certFile: join(dir, "next-cert.pem"),
        keyFile: join(dir, "next-key.pem"),
        extraRootsFile: join(dir, "old-roots.pem"),
      },
      "cluster.local",
    );
    const rotated = new CertificateAuthority(step1, { trustDomain: "cluster.local" });
    rotated.setRoot(step2);
    const leaf = rotated.signWorkload({ csrPem: csrFor(WEB), node: "node-a" }, placement);
    expect(leaf.trustBundle).toEqual([next.certPem, root.certPem]);
    expect(
      new X509Certificate(leaf.certChain[0] ?? "").verify(new X509Certificate(next.certPem).publicKey),
    ).toBe(true);
    expect(readFileSync(join(caDir, "ca-cert.pem"), "utf8")).toBe(root.certPem);
  });
});
