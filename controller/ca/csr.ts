// PKCS#10 (RFC 2986) requests, read with der.ts and verified with node:crypto (OpenSSL). Only what
// the CA needs is extracted: the signed CertificationRequestInfo, the RSA key, the signature, and
// the GeneralNames of the extensionRequest's subjectAltName; every other part must still be
// well-formed DER. Anything that is not a PEM "CERTIFICATE REQUEST" holding one strict DER
// PKCS#10 request with an RSA key is malformed_csr; a signature that does not verify, or an
// algorithm we do not accept, is bad_signature (the CA's order of checks, ca.ts).
import { constants, createPublicKey, verify } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { CsrRejectedError } from "../errors.ts";
import {
  DerError,
  TAG,
  bitStringBytes,
  body,
  checkTree,
  children,
  contextTag,
  expectTag,
  isConstructed,
  oidString,
  readRoot,
  readTlv,
  whole,
} from "./der.ts";
import type { Tlv } from "./der.ts";

export const OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1";
const OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14";
export const OID_SUBJECT_ALT_NAME = "2.5.29.17";
/** RSASSA-PKCS1-v1_5 with SHA-2 (what agents send is SHA-256; SHA-1 and MD5 are refused). */
const SIGNATURE_DIGESTS: ReadonlyMap<string, string> = new Map([
  ["1.2.840.113549.1.1.11", "sha256"],
  ["1.2.840.113549.1.1.12", "sha384"],
  ["1.2.840.113549.1.1.13", "sha512"],
]);
/** RSA key sizes the CA signs: 2048 is what agents generate (docs/identity.md); below is weak, above 8192 is only costly to verify. */
const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 8192;

/** A GeneralName (RFC 5280 §4.2.1.6): its context tag number (6 = URI) and its contents. */
export interface GeneralName {
  readonly type: number;
  readonly value: Buffer;
}

export interface ParsedCsr {
  /** The DER CertificationRequestInfo: the bytes the signature covers. */
  readonly info: Buffer;
  /** The DER SubjectPublicKeyInfo, copied as is into the certificate. */
  readonly spki: Buffer;
  readonly publicKey: KeyObject;
  readonly signatureOid: string;
  readonly signature: Buffer;
  /** Every GeneralName of the subjectAltName extension requested; [] when there is none. */
  readonly sans: readonly GeneralName[];
}

const PEM =
  /^\s*-----BEGIN CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END CERTIFICATE REQUEST-----\s*$/;

/** Parses a PEM PKCS#10 request; throws CsrRejectedError("malformed_csr") with what is wrong. */
export function parseCsr(pem: string): ParsedCsr {
  try {
    return parseDer(pemBody(pem));
  } catch (err) {
    if (!(err instanceof DerError)) throw err;
    throw new CsrRejectedError("malformed_csr", `csr is not a PKCS#10 RSA request: ${err.message}`);
  }
}

/** Throws CsrRejectedError("bad_signature") unless the request is signed by its own key. */
export function verifyCsr(csr: ParsedCsr): void {
  const digest = SIGNATURE_DIGESTS.get(csr.signatureOid);
  if (!digest) {
    throw new CsrRejectedError(
      "bad_signature",
      `csr is signed with algorithm ${csr.signatureOid}; the CA accepts sha256WithRSAEncryption (or SHA-384/512)`,
    );
  }
  let ok = false;
  try {
    ok = verify(
      digest,
      csr.info,
      { key: csr.publicKey, padding: constants.RSA_PKCS1_PADDING },
      csr.signature,
    );
  } catch {
    ok = false;
  }
  if (!ok) throw new CsrRejectedError("bad_signature", "csr signature does not verify with its public key");
}

function pemBody(pem: string): Buffer {
  const m = PEM.exec(pem);
  if (!m) throw new DerError('not one PEM block labelled "CERTIFICATE REQUEST"');
  const b64 = (m[1] ?? "").replace(/\r?\n/g, "");
  // Buffer.from(…, "base64") skips what is not base64; the check makes damaged text an error.
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64)) {
    throw new DerError("the PEM body is not base64");
  }
  return Buffer.from(b64, "base64");
}

function parseDer(der: Buffer): ParsedCsr {
  // CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature BIT STRING }
  const outer = children(der, expectTag(readRoot(der), TAG.SEQUENCE, "CertificationRequest"));
  if (outer.length !== 3) throw new DerError(`CertificationRequest has ${outer.length} parts, expected 3`);
  const [infoTlv, algTlv, sigTlv] = outer as [Tlv, Tlv, Tlv];
  const info = expectTag(infoTlv, TAG.SEQUENCE, "CertificationRequestInfo");
  const sigAlg = algorithm(der, algTlv, "signatureAlgorithm");
  // An algorithm we do not accept is bad_signature (verifyCsr); one we accept must be well-formed.
  if (SIGNATURE_DIGESTS.has(sigAlg.name)) expectNullParams(sigAlg, "signatureAlgorithm");
  const signature = bitStringBytes(der, sigTlv, "signature");

  // CertificationRequestInfo ::= SEQUENCE { version INTEGER (0), subject Name, subjectPKInfo, attributes [0] }
  const parts = children(der, info);
  if (parts.length !== 4)
    throw new DerError(`CertificationRequestInfo has ${parts.length} parts, expected 4`);
  const [version, subject, spkiTlv, attrs] = parts as [Tlv, Tlv, Tlv, Tlv];
  expectTag(version, TAG.INTEGER, "version");
  if (version.end - version.start !== 1 || der[version.start] !== 0)
    throw new DerError("version is not 0 (v1)");
  checkTree(der, expectTag(subject, TAG.SEQUENCE, "subject")); // not used: the SVID's subject is empty
  const { spki, publicKey } = rsaKey(der, expectTag(spkiTlv, TAG.SEQUENCE, "subjectPKInfo"));
  expectTag(attrs, contextTag(0, true), "attributes [0]");
  return {
    info: whole(der, info),
    spki,
    publicKey,
    signatureOid: sigAlg.name,
    signature,
    sans: requestedSans(der, attrs),
  };
}

/** AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }. */
function algorithm(der: Buffer, alg: Tlv, what: string): { name: string; params: Tlv | undefined } {
  const [id, params, ...extra] = children(der, expectTag(alg, TAG.SEQUENCE, what));
  const name = oidString(der, expectTag(id, TAG.OID, what), what);
  if (extra.length > 0) throw new DerError(`${what} has ${extra.length + 2} parts, expected at most 2`);
  return { name, params };
}

/** RSA algorithms take NULL parameters (RFC 4055 §5: absent is accepted too). */
function expectNullParams(a: { name: string; params: Tlv | undefined }, what: string): void {
  if (a.params && (a.params.tag !== TAG.NULL || a.params.end !== a.params.start)) {
    throw new DerError(`${what} ${a.name} has parameters other than NULL`);
  }
}

function rsaKey(der: Buffer, spkiTlv: Tlv): { spki: Buffer; publicKey: KeyObject } {
  const [alg, key, ...extra] = children(der, spkiTlv);
  if (extra.length > 0 || !key) throw new DerError("subjectPKInfo is not { algorithm, subjectPublicKey }");
  const keyAlg = algorithm(der, alg as Tlv, "subjectPKInfo algorithm");
  if (keyAlg.name !== OID_RSA_ENCRYPTION) {
    throw new DerError(`the key's algorithm is ${keyAlg.name}, not rsaEncryption`);
  }
  expectNullParams(keyAlg, "subjectPKInfo algorithm");
  bitStringBytes(der, key, "subjectPublicKey");
  const spki = Buffer.from(whole(der, spkiTlv)); // a copy: the certificate outlives the request
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spki, format: "der", type: "spki" });
  } catch (err) {
    throw new DerError(`the RSA key does not parse: ${(err as Error).message}`);
  }
  const bits = publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
  if (publicKey.asymmetricKeyType !== "rsa" || bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
    throw new DerError(
      `the key is RSA-${bits}; the CA signs RSA keys of ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits`,
    );
  }
  return { spki, publicKey };
}

/** The GeneralNames of the subjectAltName in the extensionRequest attribute (RFC 2985 §5.4.2). */
function requestedSans(der: Buffer, attrs: Tlv): GeneralName[] {
  let extensions: Tlv | undefined;
  for (const attr of children(der, attrs)) {
    // Attribute ::= SEQUENCE { type OID, values SET OF ANY }
    const [type, values, ...extra] = children(der, expectTag(attr, TAG.SEQUENCE, "attribute"));
    const name = oidString(der, expectTag(type, TAG.OID, "attribute type"), "attribute type");
    if (extra.length > 0) throw new DerError(`attribute ${name} has more than 2 parts`);
    checkTree(der, expectTag(values, TAG.SET, `attribute ${name} values`));
    if (name !== OID_EXTENSION_REQUEST) continue;
    if (extensions) throw new DerError("more than one extensionRequest attribute");
    const list = children(der, values as Tlv);
    if (list.length !== 1) throw new DerError(`extensionRequest has ${list.length} values, expected 1`);
    extensions = expectTag(list[0], TAG.SEQUENCE, "extensionRequest Extensions");
  }
  if (!extensions) return [];
  let sans: GeneralName[] | undefined;
  for (const ext of children(der, extensions)) {
    // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
    const parts = children(der, expectTag(ext, TAG.SEQUENCE, "extension"));
    const name = oidString(der, expectTag(parts[0], TAG.OID, "extension id"), "extension id");
    const critical = parts.length === 3 ? parts[1] : undefined;
    if (parts.length < 2 || parts.length > 3)
      throw new DerError(`extension ${name} has ${parts.length} parts`);
    if (critical) {
      expectTag(critical, TAG.BOOLEAN, `extension ${name} critical`);
      const v = der[critical.start];
      if (critical.end - critical.start !== 1 || (v !== 0 && v !== 0xff)) {
        throw new DerError(`extension ${name} critical flag is not a DER BOOLEAN`);
      }
    }
    const value = expectTag(parts[parts.length - 1], TAG.OCTET_STRING, `extension ${name} value`);
    if (name !== OID_SUBJECT_ALT_NAME) continue;
    if (sans) throw new DerError("more than one subjectAltName extension");
    sans = generalNames(der, value);
  }
  return sans ?? [];
}

/** Primitive GeneralName types; the others ([0] otherName, [3], [4], [5]) are constructed. */
const PRIMITIVE_NAMES = new Set([1, 2, 6, 7, 8]);

function generalNames(der: Buffer, octets: Tlv): GeneralName[] {
  const seq = readTlv(der, octets.start, octets.end);
  if (seq.end !== octets.end) throw new DerError("bytes after the subjectAltName GeneralNames");
  const out: GeneralName[] = [];
  for (const gn of children(der, expectTag(seq, TAG.SEQUENCE, "subjectAltName GeneralNames"))) {
    const type = gn.tag & 0x1f;
    if ((gn.tag & 0xc0) !== 0x80 || type > 8 || PRIMITIVE_NAMES.has(type) === isConstructed(gn.tag)) {
      throw new DerError(`subjectAltName entry with tag 0x${gn.tag.toString(16)} is not a GeneralName`);
    }
    checkTree(der, gn);
    const value = body(der, gn);
    if (type === 6 && value.some((b) => b > 0x7f))
      throw new DerError("a URI SAN is not an IA5String (ASCII)");
    out.push({ type, value });
  }
  return out;
}
