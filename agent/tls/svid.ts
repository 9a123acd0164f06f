// X.509-SVIDs: the SPIFFE ID in a certificate's URI SAN, validity, and the TLS option sets for both ends
// of an HBONE tunnel (TLS 1.3 only, ALPN h2, client certificates required, chain checked against the
// trust bundle, peer identity checked against the expected SPIFFE ID).
import { X509Certificate } from "node:crypto";
import type { ConnectionOptions, PeerCertificate, SecureContextOptions } from "node:tls";
import { formatSpiffeId } from "../../controller/api/identity.ts";

/** A workload certificate with its private key, as the identity manager hands it to the proxy. */
export interface Svid {
  readonly spiffeId: string;
  readonly keyPem: string;
  /** Leaf first, then intermediates (PEM). */
  readonly certChain: readonly string[];
  readonly notBefore: number;
  readonly notAfter: number;
}

export function spiffeIdFromSan(subjectAltName: string | undefined): string | undefined {
  if (!subjectAltName) return undefined;
  for (const part of subjectAltName.split(", ")) {
    if (part.startsWith("URI:spiffe://")) return part.slice(4);
  }
  return undefined;
}

/** SPIFFE ID and validity of a PEM certificate (the leaf of a chain). */
export function inspectCertificate(pem: string): {
  spiffeId: string | undefined;
  notBefore: number;
  notAfter: number;
} {
  const x = new X509Certificate(pem);
  return {
    spiffeId: spiffeIdFromSan(x.subjectAltName),
    notBefore: Date.parse(x.validFrom),
    notAfter: Date.parse(x.validTo),
  };
}

export function peerSpiffeId(cert: PeerCertificate | undefined): string | undefined {
  if (!cert || Object.keys(cert).length === 0) return undefined;
  return spiffeIdFromSan(cert.subjectaltname);
}

export function spiffeIdFor(trustDomain: string, namespace: string, serviceAccount: string): string {
  return formatSpiffeId({ trustDomain, namespace, serviceAccount });
}

/**
 * TLS 1.3 only: the suites are TLS 1.3's own (AES-GCM and ChaCha20), as ztunnel. AES-128-GCM first
 * (OpenSSL's default order puts AES-256-GCM first): with AES-NI it does 10 AES rounds per block instead
 * of 14, and every byte of every tunnel pays it twice (both agents). Both suites stay offered.
 */
const TLS13 = {
  minVersion: "TLSv1.3",
  maxVersion: "TLSv1.3",
  ciphers: "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
} as const;

export function secureContextOptions(svid: Svid, bundle: readonly string[]): SecureContextOptions {
  return { ...TLS13, key: svid.keyPem, cert: svid.certChain.join("\n"), ca: [...bundle] };
}

/** Server side of 15008: certificate of the local workload, client certificate required and verified. */
export function serverTlsOptions(svid: Svid, bundle: readonly string[]) {
  return {
    ...secureContextOptions(svid, bundle),
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ["h2"],
  };
}

/**
 * Client side: presents the SOURCE workload's SVID; the chain must verify against the bundle and the
 * server's URI SAN must be exactly `expectedId` (no hostname check: SNI and names are not used by HBONE).
 */
export function clientTlsOptions(
  svid: Svid,
  bundle: readonly string[],
  expectedId: string,
): ConnectionOptions {
  return {
    ...secureContextOptions(svid, bundle),
    rejectUnauthorized: true,
    ALPNProtocols: ["h2"],
    checkServerIdentity: (_host: string, cert: PeerCertificate) => {
      const got = peerSpiffeId(cert);
      if (got === expectedId) return undefined;
      return new Error(`server identity ${got ?? "(none)"} is not the expected ${expectedId}`);
    },
  };
}
