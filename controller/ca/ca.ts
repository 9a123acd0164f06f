// The certificate authority: turns an agent's CSR into an X.509-SVID, and issues the controller's
// own serving certificate. Checks, in order, each with its own rejection reason:
//   malformed_csr (not a PKCS#10 RSA CSR) → bad_signature (CSR not signed by its key) →
//   extra_sans (more than one SAN of any type) → san_mismatch (the SAN is not the identity asked
//   for, or there is none) → bad_identity (not spiffe://<our td>/ns/<ns>/sa/<sa>) →
//   identity_not_on_node (no workload with that identity on the caller's node).
// (unknown_token is decided before, by the server, from the bearer token.)
// Leaf profile (SPIFFE X.509-SVID): empty subject, critical URI SAN only, cA=false, keyUsage
// digitalSignature+keyEncipherment (critical), EKU serverAuth+clientAuth, NotBefore now−5 min.
import { X509Certificate, generateKeyPairSync } from "node:crypto";
import forge from "node-forge";
import { parseSpiffeId } from "../api/index.ts";
import { CsrRejectedError } from "../errors.ts";
import type { CaRoot } from "./root.ts";
import { randomSerial } from "./root.ts";
import { signTbs } from "./sign.ts";

/** Backdating absorbs clock skew between controller and agents (Istio uses 2 min; we allow 5). */
export const NOT_BEFORE_BACKDATE_MS = 5 * 60_000;
export const DEFAULT_SVID_TTL_MS = 24 * 3600_000;

export interface SignRequest {
  csrPem: string;
  /** Requested SPIFFE ID; when absent, the CSR's single URI SAN is the request. */
  identity?: string;
  /** Node proven by the caller's token. */
  node: string;
}

export interface Placement {
  identityOnNode(spiffeId: string, node: string): boolean;
}

export interface Issued {
  certChain: string[];
  trustBundle: string[];
  expiresAt: string;
  identity: string;
}

interface AltName {
  type: number;
  value?: string;
  ip?: string;
}

export class CertificateAuthority {
  readonly trustDomain: string;
  readonly svidTtlMs: number;
  #root: CaRoot;
  #issuer: forge.pki.Certificate;
  #skid: string | undefined;

  constructor(root: CaRoot, opts: { trustDomain: string; svidTtlMs?: number }) {
    this.trustDomain = opts.trustDomain;
    this.svidTtlMs = opts.svidTtlMs ?? DEFAULT_SVID_TTL_MS;
    this.#root = root;
    this.#issuer = forge.pki.certificateFromPem(root.certPem);
    this.#skid = this.#subjectKeyId();
  }

  get trustBundle(): string[] {
    return [...this.#root.trustBundle];
  }
  get rootCertPem(): string {
    return this.#root.certPem;
  }

  /** Swaps the signing root and bundle (rotation); certificates already issued stay valid. */
  setRoot(root: CaRoot): void {
    this.#root = root;
    this.#issuer = forge.pki.certificateFromPem(root.certPem);
    this.#skid = this.#subjectKeyId();
  }

  signWorkload(req: SignRequest, placement: Placement, now = Date.now()): Issued {
    let csr: forge.pki.CertificateSigningRequest;
    try {
      csr = forge.pki.certificationRequestFromPem(req.csrPem);
    } catch (err) {
      throw new CsrRejectedError(
        "malformed_csr",
        `csr is not a PKCS#10 RSA request: ${(err as Error).message}`,
      );
    }
    let verified = false;
    try {
      verified = csr.verify();
    } catch {
      verified = false;
    }
    if (!verified)
      throw new CsrRejectedError("bad_signature", "csr signature does not verify with its public key");
    const sans = csrSans(csr);
    if (sans.length > 1) {
      throw new CsrRejectedError(
        "extra_sans",
        `csr has ${sans.length} subject alternative names; an SVID has exactly one URI SAN`,
      );
    }
    const uri = sans[0]?.type === 6 ? sans[0].value : undefined;
    if (uri === undefined)
      throw new CsrRejectedError("san_mismatch", "csr has no URI SAN; it must carry the SPIFFE ID");
    const identity = req.identity ?? uri;
    if (uri !== identity) {
      throw new CsrRejectedError(
        "san_mismatch",
        `csr SAN ${uri} does not match the requested identity ${identity}`,
      );
    }
    const id = parseSpiffeId(identity);
    if (!id || id.trustDomain !== this.trustDomain) {
      throw new CsrRejectedError(
        "bad_identity",
        `${identity} is not a workload identity of trust domain ${this.trustDomain} (spiffe://${this.trustDomain}/ns/<ns>/sa/<sa>)`,
      );
    }
    if (!placement.identityOnNode(identity, req.node)) {
      throw new CsrRejectedError(
        "identity_not_on_node",
        `no workload with identity ${identity} is placed on node ${req.node}; check WorkloadEntry spec.node`,
      );
    }
    const notAfter = new Date(now + this.svidTtlMs);
    const pem = this.#issue(csr.publicKey as forge.pki.PublicKey, now, notAfter, [
      { name: "basicConstraints", cA: false, critical: true },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
      { name: "extKeyUsage", serverAuth: true, clientAuth: true },
      { name: "subjectAltName", altNames: [{ type: 6, value: identity }], critical: true },
    ]);
    return { certChain: [pem], trustBundle: this.trustBundle, expiresAt: notAfter.toISOString(), identity };
  }

  /** The controller's serving certificate (key generated here: it is the controller's own). */
  issueServing(
    names: { dns: string[]; ips: string[] },
    ttlMs: number,
    now = Date.now(),
  ): { certPem: string; keyPem: string } {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
    const altNames: AltName[] = [
      ...names.dns.map((value) => ({ type: 2, value })),
      ...names.ips.map((ip) => ({ type: 7, ip })),
    ];
    const certPem = this.#issue(
      forge.pki.publicKeyFromPem(publicKey),
      now,
      new Date(now + ttlMs),
      [
        { name: "basicConstraints", cA: false, critical: true },
        { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
        { name: "extKeyUsage", serverAuth: true, clientAuth: true },
        { name: "subjectAltName", altNames },
      ],
      [{ name: "commonName", value: names.dns[0] ?? names.ips[0] ?? "nodemesh-controller" }],
    );
    return { certPem, keyPem: privateKey };
  }

  #issue(
    publicKey: forge.pki.PublicKey,
    now: number,
    notAfter: Date,
    extensions: object[],
    subject: forge.pki.CertificateField[] = [],
  ): string {
    const cert = forge.pki.createCertificate();
    cert.publicKey = publicKey;
    cert.serialNumber = randomSerial();
    cert.validity.notBefore = new Date(now - NOT_BEFORE_BACKDATE_MS);
    cert.validity.notAfter = notAfter;
    cert.setSubject(subject);
    cert.setIssuer(this.#issuer.subject.attributes);
    const aki = this.#skid ? [{ name: "authorityKeyIdentifier", keyIdentifier: this.#skid }] : [];
    cert.setExtensions([...extensions, ...aki]);
    signTbs(cert, this.#root.keyPem);
    return forge.pki.certificateToPem(cert).replace(/\r\n/g, "\n");
  }

  #subjectKeyId(): string | undefined {
    const ext = this.#issuer.getExtension("subjectKeyIdentifier") as { subjectKeyIdentifier?: string } | null;
    // forge exposes the id as hex; authorityKeyIdentifier wants the raw bytes.
    return ext?.subjectKeyIdentifier ? forge.util.hexToBytes(ext.subjectKeyIdentifier) : undefined;
  }
}

function csrSans(csr: forge.pki.CertificateSigningRequest): AltName[] {
  const attr = csr.getAttribute({ name: "extensionRequest" }) as {
    extensions?: { name: string; altNames?: AltName[] }[];
  } | null;
  return attr?.extensions?.find((e) => e.name === "subjectAltName")?.altNames ?? [];
}

/** For tests and docs: a certificate's URI SANs via node:crypto. */
export function uriSans(certPem: string): string[] {
  const san = new X509Certificate(certPem).subjectAltName ?? "";
  return san
    .split(", ")
    .filter((s) => s.startsWith("URI:"))
    .map((s) => s.slice(4));
}
