// An in-test certificate authority (node-forge), for identity, TLS and tunnel tests: a self-signed root,
// SVIDs issued for a SPIFFE ID (directly or from a CSR), with a chosen lifetime. Keys come from
// node:crypto (fast, native) and are converted for forge.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import forge from "node-forge";

export interface IssuedSvid {
  keyPem: string;
  certPem: string;
}

export interface TestCa {
  readonly certPem: string;
  /** Signs a CSR; the certificate carries the CSR's URI SANs (or `uriOverride`). */
  signCsr(csrPem: string, opts?: { lifetimeMs?: number; uriOverride?: string }): string;
  /** Issues a key + certificate for a SPIFFE ID (leaf, client and server auth). */
  issue(spiffeId: string, opts?: { lifetimeMs?: number }): IssuedSvid;
  /** A `signCsr` shaped as the controller client's, counting calls; `fail` makes it reject. */
  signer(opts?: { lifetimeMs?: number }): {
    signCsr(csrPem: string): Promise<{ certChain: string[]; trustBundle: string[] }>;
    calls: number;
    fail: boolean;
  };
}

function rsaKeys(): {
  privateKey: forge.pki.rsa.PrivateKey;
  publicKey: forge.pki.rsa.PublicKey;
  keyPem: string;
} {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
  });
  return {
    privateKey: forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey,
    publicKey: forge.pki.publicKeyFromPem(publicKey) as forge.pki.rsa.PublicKey,
    keyPem: privateKey,
  };
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f; // positive
  return b.toString("hex");
}

export function createTestCa(name = "nodemesh test ca"): TestCa {
  const root = rsaKeys();
  const ca = forge.pki.createCertificate();
  ca.publicKey = root.publicKey;
  ca.serialNumber = serial();
  ca.validity.notBefore = new Date(Date.now() - 60_000);
  ca.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  const subject = [{ name: "organizationName", value: name }];
  ca.setSubject(subject);
  ca.setIssuer(subject);
  ca.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  ca.sign(root.privateKey, forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(ca);

  function leaf(publicKey: forge.pki.PublicKey, uris: string[], lifetimeMs: number): string {
    const c = forge.pki.createCertificate();
    c.publicKey = publicKey;
    c.serialNumber = serial();
    // Backdate a little for clock skew; expiry is exact (to the second, X.509 granularity).
    c.validity.notBefore = new Date(Date.now() - 5_000);
    c.validity.notAfter = new Date(Date.now() + lifetimeMs);
    c.setSubject([]);
    c.setIssuer(subject);
    c.setExtensions([
      { name: "basicConstraints", cA: false, critical: true },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      { name: "extKeyUsage", serverAuth: true, clientAuth: true },
      { name: "subjectAltName", critical: true, altNames: uris.map((value) => ({ type: 6, value })) },
      { name: "authorityKeyIdentifier", keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
    ]);
    c.sign(root.privateKey, forge.md.sha256.create());
    return forge.pki.certificateToPem(c);
  }

  const self: TestCa = {
    certPem,
    signCsr(csrPem, opts = {}) {
      const csr = forge.pki.certificationRequestFromPem(csrPem);
      if (!csr.verify()) throw new Error("csr signature does not verify");
      const ext = csr.getAttribute({ name: "extensionRequest" }) as {
        extensions?: { name: string; altNames?: { type: number; value: string }[] }[];
      } | null;
      const uris =
        opts.uriOverride !== undefined
          ? [opts.uriOverride]
          : (ext?.extensions?.find((e) => e.name === "subjectAltName")?.altNames ?? [])
              .filter((a) => a.type === 6)
              .map((a) => a.value);
      if (!csr.publicKey) throw new Error("csr has no public key");
      return leaf(csr.publicKey, uris, opts.lifetimeMs ?? 3600_000);
    },
    issue(spiffeId, opts = {}) {
      const k = rsaKeys();
      return { keyPem: k.keyPem, certPem: leaf(k.publicKey, [spiffeId], opts.lifetimeMs ?? 3600_000) };
    },
    signer(opts = {}) {
      const s = {
        calls: 0,
        fail: false,
        async signCsr(csrPem: string) {
          s.calls++;
          if (s.fail) throw new Error("test ca: signing disabled");
          return { certChain: [self.signCsr(csrPem, opts)], trustBundle: [certPem] };
        },
      };
      return s;
    },
  };
  return self;
}
