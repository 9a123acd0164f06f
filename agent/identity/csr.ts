// Keys and CSRs for workload identities. Keys are generated on the node (async, off the event loop) and
// never leave it; the CSR carries the SPIFFE ID as a URI SAN in an extensionRequest with an empty subject
// (X.509-SVID profile). RSA 2048 because node-forge, which builds the CSR here and parses it in the CA,
// only handles RSA keys.
import { generateKeyPair } from "node:crypto";
import { promisify } from "node:util";
import forge from "node-forge";

const generateKeyPairAsync = promisify(generateKeyPair);

export interface KeyAndCsr {
  /** PKCS#1 PEM: accepted by node:tls and node-forge alike. */
  readonly keyPem: string;
  readonly csrPem: string;
}

export async function generateKeyAndCsr(spiffeId: string): Promise<KeyAndCsr> {
  const { privateKey, publicKey } = await generateKeyPairAsync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
  });
  return { keyPem: privateKey, csrPem: buildCsr(spiffeId, privateKey, publicKey) };
}

export function buildCsr(spiffeId: string, privateKeyPem: string, publicKeyPem: string): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  csr.setSubject([]);
  csr.setAttributes([
    {
      name: "extensionRequest",
      extensions: [{ name: "subjectAltName", altNames: [{ type: 6, value: spiffeId }] }],
    },
  ]);
  csr.sign(forge.pki.privateKeyFromPem(privateKeyPem) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

/** The URI SANs a CSR asks for (used by tests and by a CA that re-checks requests). */
export function csrUris(csrPem: string): string[] {
  const csr = forge.pki.certificationRequestFromPem(csrPem);
  const ext = csr.getAttribute({ name: "extensionRequest" }) as {
    extensions?: { name: string; altNames?: { type: number; value: string }[] }[];
  } | null;
  const san = ext?.extensions?.find((e) => e.name === "subjectAltName");
  return (san?.altNames ?? []).filter((a) => a.type === 6).map((a) => a.value);
}
