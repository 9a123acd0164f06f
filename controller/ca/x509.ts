// X.509 v3 certificates (RFC 5280) written with der.ts and signed with node:crypto
// (sha256WithRSAEncryption, RSASSA-PKCS1-v1_5, in OpenSSL). The encodings are those node-forge
// produced for the same fields (compared byte for byte in test/unit/controller/ca-der.test.ts),
// except that a name that does not fit a PrintableString is a UTF8String, and serials are always
// 16 minimal bytes.
import { X509Certificate, createHash, randomBytes, sign } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";
import { ConfigError } from "../errors.ts";
import {
  DerError,
  TAG,
  bitString,
  bitStringBytes,
  body,
  booleanTrue,
  children,
  contextTag,
  expectTag,
  oid,
  oidString,
  readRoot,
  sequence,
  time,
  tlv,
  unsignedInteger,
  whole,
} from "./der.ts";
import type { Tlv } from "./der.ts";

const SHA256_WITH_RSA = sequence(oid("1.2.840.113549.1.1.11"), tlv(TAG.NULL));
const OID_SUBJECT_KEY_ID = "2.5.29.14";

export interface CertificateFields {
  /** The issuer's subject Name, DER, copied byte for byte (RFC 5280 §7.1 name chaining). */
  readonly issuer: Buffer;
  /** Subject Name, DER (an empty SEQUENCE for an SVID). */
  readonly subject: Buffer;
  /** SubjectPublicKeyInfo, DER. */
  readonly spki: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DER Extensions, in order (see the builders below). */
  readonly extensions: readonly Buffer[];
}

/** A signed certificate as PEM ("\n" line ends, 64 columns, as node-forge wrote them). */
export function signCertificate(fields: CertificateFields, key: KeyObject): string {
  const tbs = sequence(
    tlv(contextTag(0, true), unsignedInteger(Buffer.from([2]))), // v3
    unsignedInteger(randomSerial()),
    SHA256_WITH_RSA,
    fields.issuer,
    sequence(time(fields.notBefore), time(fields.notAfter)),
    fields.subject,
    fields.spki,
    tlv(contextTag(3, true), sequence(...fields.extensions)),
  );
  const der = sequence(tbs, SHA256_WITH_RSA, bitString(sign("sha256", tbs, key)));
  const b64 = der.toString("base64").replace(/.{1,64}/g, "$&\n");
  return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
}

/** 128 random bits with the top bit clear and the next set: positive and always 16 bytes (RFC 5280 ≤ 20). */
function randomSerial(): Buffer {
  const b = randomBytes(16);
  b[0] = ((b[0] ?? 0) & 0x7f) | 0x40;
  return b;
}

/** Name ::= SEQUENCE OF RDN, one attribute per RDN (O = 2.5.4.10, CN = 2.5.4.3). */
export function name(attrs: readonly { oid: string; value: string }[]): Buffer {
  return sequence(...attrs.map((a) => tlv(TAG.SET, sequence(oid(a.oid), directoryString(a.value)))));
}

/** PrintableString when it fits (what node-forge wrote), else UTF8String (RFC 5280 §4.1.2.6). */
function directoryString(s: string): Buffer {
  const printable = /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s);
  return tlv(printable ? TAG.PRINTABLE_STRING : TAG.UTF8_STRING, Buffer.from(s, "utf8"));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [booleanTrue()] : []), tlv(TAG.OCTET_STRING, value));
}

/** basicConstraints (critical); cA=false is the empty SEQUENCE (DER omits the DEFAULT). */
export const basicConstraints = (cA: boolean): Buffer =>
  extension("2.5.29.19", true, sequence(...(cA ? [booleanTrue()] : [])));

/** keyUsage (critical) from bit numbers: 0 digitalSignature, 2 keyEncipherment, 5 keyCertSign, 6 cRLSign. */
export function keyUsage(bits: readonly number[]): Buffer {
  let v = 0;
  for (const b of bits) v |= 0x80 >> b;
  // DER BIT STRING: trailing zero bits are dropped and counted as unused.
  let unused = 0;
  while (unused < 7 && ((v >> unused) & 1) === 0) unused++;
  return extension("2.5.29.15", true, tlv(TAG.BIT_STRING, Buffer.from([unused, v])));
}

/** extKeyUsage (not critical): serverAuth and clientAuth. */
export const extKeyUsageServerClient = (): Buffer =>
  extension("2.5.29.37", false, sequence(oid("1.3.6.1.5.5.7.3.1"), oid("1.3.6.1.5.5.7.3.2")));

export type San = { uri: string } | { dns: string } | { ip: string };

export function subjectAltName(sans: readonly San[], critical: boolean): Buffer {
  const names = sans.map((s) =>
    "uri" in s
      ? tlv(contextTag(6, false), ia5(s.uri, "URI"))
      : "dns" in s
        ? tlv(contextTag(2, false), ia5(s.dns, "DNS name"))
        : tlv(contextTag(7, false), ipBytes(s.ip)),
  );
  return extension("2.5.29.17", critical, sequence(...names));
}

/**
 * A SAN string as IA5String bytes. Buffer's "ascii" encoding would drop the high bit of anything else
 * without a word, issuing a certificate for another name than asked.
 */
function ia5(value: string, what: string): Buffer {
  if (!/^[\x21-\x7e]+$/.test(value))
    throw new ConfigError(
      `subjectAltName ${what} ${JSON.stringify(value)} must be printable ASCII without spaces (IA5String)`,
    );
  return Buffer.from(value, "ascii");
}

/** subjectKeyIdentifier: SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1). */
export function subjectKeyIdentifier(spki: Buffer): Buffer {
  return extension(OID_SUBJECT_KEY_ID, false, tlv(TAG.OCTET_STRING, keyIdOf(spki)));
}

export const authorityKeyIdentifier = (keyId: Buffer): Buffer =>
  extension("2.5.29.35", false, sequence(tlv(contextTag(0, false), keyId)));

export function keyIdOf(spki: Buffer): Buffer {
  const parts = children(spki, readRoot(spki));
  return createHash("sha1")
    .update(bitStringBytes(spki, parts[1] as Tlv, "subjectPublicKey"))
    .digest();
}

/** What a signing certificate contributes to the ones it issues: its subject and its key id. */
export interface IssuerInfo {
  readonly subject: Buffer;
  readonly keyId: Buffer | undefined;
}

export function issuerInfo(certPem: string): IssuerInfo {
  const der = new X509Certificate(certPem).raw; // OpenSSL has parsed and checked it
  try {
    const [tbsTlv] = children(der, readRoot(der));
    const tbs = children(der, expectTag(tbsTlv, TAG.SEQUENCE, "tbsCertificate"));
    const v3 = tbs[0]?.tag === contextTag(0, true) ? 1 : 0;
    const subject = Buffer.from(whole(der, expectTag(tbs[v3 + 4], TAG.SEQUENCE, "subject")));
    const exts = tbs.find((t) => t.tag === contextTag(3, true));
    let keyId: Buffer | undefined;
    for (const ext of exts
      ? children(der, expectTag(children(der, exts)[0], TAG.SEQUENCE, "extensions"))
      : []) {
      const parts = children(der, ext);
      if (oidString(der, expectTag(parts[0], TAG.OID, "extension id"), "extension id") !== OID_SUBJECT_KEY_ID)
        continue;
      const octets = expectTag(parts[parts.length - 1], TAG.OCTET_STRING, "subjectKeyIdentifier");
      const inner = readRoot(body(der, octets));
      keyId = Buffer.from(body(body(der, octets), expectTag(inner, TAG.OCTET_STRING, "keyIdentifier")));
    }
    return { subject, keyId };
  } catch (err) {
    if (!(err instanceof DerError)) throw err;
    throw new ConfigError(`the CA certificate cannot be read: ${err.message}`);
  }
}

/** The 4 or 16 bytes of an IP address (RFC 5280 §4.2.1.6 iPAddress). */
export function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split(".").map(Number));
  if (!isIPv6(ip)) throw new ConfigError(`${ip} is not an IP address; check --server-name`);
  let text = ip.replace(/%.*$/, "");
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const [a, b, c, d] = v4[1].split(".").map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
