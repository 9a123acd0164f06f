// The certificate authority: turns an agent's CSR into an X.509-SVID, and issues the controller's
// own serving certificate. Checks, in order, each with its own rejection reason:
//   malformed_csr (not a PKCS#10 RSA CSR) → bad_signature (CSR not signed by its key) →
//   extra_sans (more than one SAN of any type) → san_mismatch (the SAN is not the identity asked
//   for, or there is none) → bad_identity (not spiffe://<our td>/ns/<ns>/sa/<sa>) →
//   identity_not_on_node (no workload with that identity on the caller's node).
// (unknown_token is decided before, by the server, from the bearer token.)
// Leaf profile (SPIFFE X.509-SVID): empty subject, critical URI SAN only, cA=false, keyUsage
// digitalSignature+keyEncipherment (critical), EKU serverAuth+clientAuth, NotBefore now−5 min.
// Keys, signatures and their verification run in OpenSSL (node:crypto); the ASN.1 is a strict DER
// reader and writer of our own (der.ts, csr.ts, x509.ts). node-forge parsed, verified and encoded in
// JavaScript, and its garbage was 20–40 MiB of the controller's peak RSS in a 1,000-CSR burst.
import { X509Certificate, createPrivateKey, generateKeyPairSync } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { parseSpiffeId } from "../api/index.ts";
import { CsrRejectedError } from "../errors.ts";
import { parseCsr, verifyCsr } from "./csr.ts";
import type { GeneralName } from "./csr.ts";
import type { CaRoot } from "./root.ts";
import {
  authorityKeyIdentifier,
  basicConstraints,
  extKeyUsageServerClient,
  issuerInfo,
  keyUsage,
  name,
  signCertificate,
  subjectAltName,
} from "./x509.ts";
import type { IssuerInfo, San } from "./x509.ts";

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

const GN_URI = 6;
const EMPTY_NAME = name([]);
const OID_COMMON_NAME = "2.5.4.3";
/** Leaf key usage bits: digitalSignature (0) and keyEncipherment (2). */
const LEAF_KEY_USAGE = [0, 2];

export class CertificateAuthority {
  readonly trustDomain: string;
  readonly svidTtlMs: number;
  #root: CaRoot;
  #issuer: IssuerInfo;
  /** The root's key, parsed once (parsing the PEM per signature cost ~0.1 ms and garbage). */
  #key: KeyObject;

  constructor(root: CaRoot, opts: { trustDomain: string; svidTtlMs?: number }) {
    this.trustDomain = opts.trustDomain;
    this.svidTtlMs = opts.svidTtlMs ?? DEFAULT_SVID_TTL_MS;
    this.#root = root;
    this.#issuer = issuerInfo(root.certPem);
    this.#key = createPrivateKey(root.keyPem);
  }

  get trustBundle(): string[] {
    return [...this.#root.trustBundle];
  }
  get rootCertPem(): string {
    return this.#root.certPem;
  }

  /** Swaps the signing root and bundle (rotation); certificates already issued stay valid. */
  setRoot(root: CaRoot): void {
    const issuer = issuerInfo(root.certPem);
    const key = createPrivateKey(root.keyPem);
    this.#root = root;
    this.#issuer = issuer;
    this.#key = key;
  }

  signWorkload(req: SignRequest, placement: Placement, now = Date.now()): Issued {
    const csr = parseCsr(req.csrPem);
    verifyCsr(csr);
    const sans = csr.sans;
    if (sans.length > 1) {
      throw new CsrRejectedError(
        "extra_sans",
        `csr has ${sans.length} subject alternative names; an SVID has exactly one URI SAN`,
      );
    }
    const uri = uriOf(sans[0]);
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
    const pem = this.#issue(csr.spki, now, notAfter, EMPTY_NAME, [{ uri: identity }], true);
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
      publicKeyEncoding: { type: "spki", format: "der" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
    const sans: San[] = [...names.dns.map((dns) => ({ dns })), ...names.ips.map((ip) => ({ ip }))];
    const cn = names.dns[0] ?? names.ips[0] ?? "nodemesh-controller";
    const subject = name([{ oid: OID_COMMON_NAME, value: cn }]);
    const certPem = this.#issue(publicKey, now, new Date(now + ttlMs), subject, sans, false);
    return { certPem, keyPem: privateKey };
  }

  /** Leaf profile: CA:FALSE, digitalSignature+keyEncipherment, serverAuth+clientAuth, the SANs, AKI. */
  #issue(
    spki: Buffer,
    now: number,
    notAfter: Date,
    subject: Buffer,
    sans: San[],
    sanCritical: boolean,
  ): string {
    const keyId = this.#issuer.keyId;
    return signCertificate(
      {
        issuer: this.#issuer.subject,
        subject,
        spki,
        notBefore: new Date(now - NOT_BEFORE_BACKDATE_MS),
        notAfter,
        extensions: [
          basicConstraints(false),
          keyUsage(LEAF_KEY_USAGE),
          extKeyUsageServerClient(),
          subjectAltName(sans, sanCritical),
          ...(keyId ? [authorityKeyIdentifier(keyId)] : []),
        ],
      },
      this.#key,
    );
  }
}

/** The URI of a URI GeneralName (IA5String, checked ASCII by the parser); undefined for other types. */
function uriOf(gn: GeneralName | undefined): string | undefined {
  return gn?.type === GN_URI ? gn.value.toString("latin1") : undefined;
}

/** For tests and docs: a certificate's URI SANs via node:crypto. */
export function uriSans(certPem: string): string[] {
  const san = new X509Certificate(certPem).subjectAltName ?? "";
  return san
    .split(", ")
    .filter((s) => s.startsWith("URI:"))
    .map((s) => s.slice(4));
}
