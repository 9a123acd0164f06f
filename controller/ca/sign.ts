// Signing a node-forge certificate with node:crypto. node-forge builds the TBSCertificate; the
// RSA private-key operation runs in OpenSSL through node:crypto because forge's pure-JavaScript
// RSA takes tens of milliseconds per signature (bench/controller.ts measures the CSR rate).
import { sign } from "node:crypto";
import forge from "node-forge";

export function signTbs(cert: forge.pki.Certificate, keyPem: string): void {
  const c = cert as forge.pki.Certificate & {
    md: forge.md.MessageDigest;
    tbsCertificate: forge.asn1.Asn1;
    siginfo: { algorithmOid: string };
  };
  const oid = forge.pki.oids.sha256WithRSAEncryption as string;
  c.md = forge.md.sha256.create();
  c.signatureOid = oid;
  c.siginfo.algorithmOid = oid;
  // getTBSCertificate exists in node-forge but not in @types/node-forge.
  const pki = forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 };
  c.tbsCertificate = pki.getTBSCertificate(cert);
  const der = Buffer.from(forge.asn1.toDer(c.tbsCertificate).getBytes(), "binary");
  c.signature = sign("sha256", der, keyPem).toString("binary");
}
