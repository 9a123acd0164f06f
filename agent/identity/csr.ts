// Keys and CSRs for workload identities. Keys are generated on the node (async, off the event loop) and
// never leave it; the CSR carries the SPIFFE ID as a URI SAN in an extensionRequest with an empty subject
// (X.509-SVID profile). RSA 2048 because the controller's CA (controller/ca/csr.ts) accepts RSA keys only.
//
// The PKCS#10 DER is written by hand and signed with node:crypto (RSASSA-PKCS1-v1_5, deterministic, so
// the bytes are exactly those node-forge produced): node-forge cost an idle agent ~6 MiB of RSS for two
// SEQUENCEs and a signature (measured with /proc/<pid>/smaps on the lab agent).
import { createPrivateKey, createPublicKey, generateKeyPair, sign } from "node:crypto";

export interface KeyAndCsr {
  /** PKCS#1 PEM, as node:tls takes it. */
  readonly keyPem: string;
  readonly csrPem: string;
}

export async function generateKeyAndCsr(spiffeId: string): Promise<KeyAndCsr> {
  const { privateKey, publicKey } = await new Promise<{ privateKey: string; publicKey: string }>(
    (resolve, reject) =>
      generateKeyPair(
        "rsa",
        {
          modulusLength: 2048,
          publicKeyEncoding: { type: "spki", format: "pem" },
          privateKeyEncoding: { type: "pkcs1", format: "pem" },
        },
        (err, publicKey, privateKey) => (err ? reject(err) : resolve({ privateKey, publicKey })),
      ),
  );
  return { keyPem: privateKey, csrPem: buildCsr(spiffeId, privateKey, publicKey) };
}

// Object identifiers, DER-encoded contents (without tag and length).
const OID_EXTENSION_REQUEST = Buffer.from("2a864886f70d01090e", "hex"); // 1.2.840.113549.1.9.14
const OID_SUBJECT_ALT_NAME = Buffer.from("551d11", "hex"); // 2.5.29.17
const OID_SHA256_WITH_RSA = Buffer.from("2a864886f70d01010b", "hex"); // 1.2.840.113549.1.1.11

const SEQUENCE = 0x30;
const SET = 0x31;
const INTEGER = 0x02;
const BIT_STRING = 0x03;
const OCTET_STRING = 0x04;
const NULL = 0x05;
const OID = 0x06;
const CONTEXT_0_CONSTRUCTED = 0xa0;
const URI_NAME = 0x86; // GeneralName [6] IMPLICIT IA5String

function tlv(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else if (n < 0x100) len = Buffer.from([0x81, n]);
  else if (n < 0x10000) len = Buffer.from([0x82, n >> 8, n & 0xff]);
  else len = Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

/** A PKCS#10 request for `spiffeId` (URI SAN, empty subject), signed with SHA-256 and the RSA key. */
export function buildCsr(spiffeId: string, privateKeyPem: string, publicKeyPem: string): string {
  const spki = createPublicKey(publicKeyPem).export({ type: "spki", format: "der" });
  const san = tlv(SEQUENCE, tlv(URI_NAME, Buffer.from(spiffeId, "ascii")));
  const extensions = tlv(SEQUENCE, tlv(SEQUENCE, tlv(OID, OID_SUBJECT_ALT_NAME), tlv(OCTET_STRING, san)));
  const attribute = tlv(SEQUENCE, tlv(OID, OID_EXTENSION_REQUEST), tlv(SET, extensions));
  const info = tlv(
    SEQUENCE,
    tlv(INTEGER, Buffer.from([0])),
    tlv(SEQUENCE), // empty subject
    spki,
    tlv(CONTEXT_0_CONSTRUCTED, attribute),
  );
  const signature = sign("sha256", info, createPrivateKey(privateKeyPem));
  const algorithm = tlv(SEQUENCE, tlv(OID, OID_SHA256_WITH_RSA), tlv(NULL));
  const der = tlv(SEQUENCE, info, algorithm, tlv(BIT_STRING, Buffer.from([0]), signature));
  const b64 = der.toString("base64").replace(/.{1,64}/g, "$&\r\n");
  return `-----BEGIN CERTIFICATE REQUEST-----\r\n${b64}-----END CERTIFICATE REQUEST-----\r\n`;
}

interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

/** The TLV at `pos` of `der` (short and long definite lengths); throws on truncation. */
function readTlv(der: Buffer, pos: number): Tlv {
  const tag = der[pos];
  let len = der[pos + 1];
  if (tag === undefined || len === undefined) throw new Error("truncated DER");
  let start = pos + 2;
  if (len & 0x80) {
    const bytes = len & 0x7f;
    if (bytes === 0 || bytes > 3) throw new Error("unsupported DER length");
    len = 0;
    for (let i = 0; i < bytes; i++) len = (len << 8) | (der[start + i] ?? 0);
    start += bytes;
  }
  if (start + len > der.length) throw new Error("truncated DER");
  return { tag, start, end: start + len };
}

function children(der: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.start; p < parent.end;) {
    const t = readTlv(der, p);
    out.push(t);
    p = t.end;
  }
  return out;
}

function bodyOf(der: Buffer, t: Tlv | undefined): Buffer {
  return t ? der.subarray(t.start, t.end) : Buffer.alloc(0);
}

/** The URI SANs a CSR asks for (main.ts names the identity to the controller; tests). */
export function csrUris(csrPem: string): string[] {
  const b64 = csrPem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, "").replace(/\s+/g, "");
  const der = Buffer.from(b64, "base64");
  const [info] = children(der, readTlv(der, 0));
  if (!info) return [];
  const attrs = children(der, info).find((t) => t.tag === CONTEXT_0_CONSTRUCTED);
  if (!attrs) return [];
  const uris: string[] = [];
  for (const attr of children(der, attrs)) {
    const [oid, values] = children(der, attr);
    if (!values || !bodyOf(der, oid).equals(OID_EXTENSION_REQUEST)) continue;
    for (const exts of children(der, values)) {
      for (const ext of children(der, exts)) {
        const parts = children(der, ext);
        if (!bodyOf(der, parts[0]).equals(OID_SUBJECT_ALT_NAME)) continue;
        const value = parts[parts.length - 1];
        if (!value || value.tag !== OCTET_STRING) continue;
        const names = readTlv(der, value.start);
        for (const name of children(der, names)) {
          if (name.tag === URI_NAME) uris.push(bodyOf(der, name).toString("ascii"));
        }
      }
    }
  }
  return uris;
}
