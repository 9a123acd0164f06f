// The CA's own ASN.1: the strict DER reader refuses BER and damaged lengths, the PKCS#10 reader
// refuses every malformed part with a specific malformed_csr message (or bad_signature), and the
// certificates written by x509.ts are, field for field, the bytes node-forge produced before.
import { X509Certificate, createPrivateKey, generateKeyPairSync, sign } from "node:crypto";
import forge from "node-forge";
import { describe, expect, test } from "vitest";
import { buildCsr } from "../../../agent/identity/csr.ts";
import { CertificateAuthority, NOT_BEFORE_BACKDATE_MS } from "../../../controller/ca/ca.ts";
import { parseCsr, verifyCsr } from "../../../controller/ca/csr.ts";
import {
  DerError,
  TAG,
  bitString,
  children,
  contextTag,
  oid,
  oidString,
  readRoot,
  readTlv,
  sequence,
  tlv,
  unsignedInteger,
  whole,
} from "../../../controller/ca/der.ts";
import { generateRoot } from "../../../controller/ca/root.ts";
import { ipBytes, subjectAltName } from "../../../controller/ca/x509.ts";
import { rejection } from "../../helpers/csr-rejection.ts";

const WEB = "spiffe://cluster.local/ns/shop/sa/web";
const rsa = (modulusLength: number) =>
  generateKeyPairSync("rsa", {
    modulusLength,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
  });
const keys = rsa(2048);
const pemDer = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");

const h = (s: string) => Buffer.from(s.replace(/\s/g, ""), "hex");
const uriSan = (uri: string) => tlv(contextTag(6, false), Buffer.from(uri, "latin1"));
const sanExt = (...names: Buffer[]) => sequence(oid("2.5.29.17"), tlv(TAG.OCTET_STRING, sequence(...names)));
const extReq = (...exts: Buffer[]) => sequence(oid("1.2.840.113549.1.9.14"), tlv(TAG.SET, sequence(...exts)));

interface CsrParts {
  version?: Buffer;
  spki?: Buffer;
  attributes?: Buffer[];
  algorithm?: Buffer;
  digest?: string;
  key?: string;
  /** Rewrites the whole DER before PEM (trailing bytes, BER lengths). */
  outer?: (der: Buffer) => Buffer;
}

/** A PKCS#10 request written field by field, so each test breaks exactly one part. */
function csr(p: CsrParts = {}): string {
  const info = sequence(
    p.version ?? unsignedInteger(Buffer.from([0])),
    sequence(),
    p.spki ?? pemDer(keys.publicKey),
    tlv(contextTag(0, true), ...(p.attributes ?? [extReq(sanExt(uriSan(WEB)))])),
  );
  const signature = sign(p.digest ?? "sha256", info, createPrivateKey(p.key ?? keys.privateKey));
  const algorithm = p.algorithm ?? sequence(oid("1.2.840.113549.1.1.11"), tlv(TAG.NULL));
  let der = sequence(info, algorithm, bitString(signature));
  if (p.outer) der = p.outer(der);
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
}

const malformed = (pem: string) => {
  const e = rejection(() => parseCsr(pem));
  expect(e.reason).toBe("malformed_csr");
  expect(e.message.startsWith("csr is not a PKCS#10 RSA request: ")).toBe(true);
  return e.message.slice("csr is not a PKCS#10 RSA request: ".length);
};

describe("DER reader", () => {
  test.each([
    ["indefinite length", "3080 0500 0000", /indefinite length/],
    ["long form for a short length", "3081 02 0500", /non-minimal length/],
    ["leading zero length byte", "3082 0002 0500", /non-minimal length/],
    ["length of 5 bytes", "3085 0000000002 0500", /length of 5 bytes/],
    ["value past the end", "3004 0500", /runs past its container/],
    ["truncated header", "30", /truncated DER/],
    ["truncated long length", "3082 01", /truncated DER length/],
    ["multi-byte tag", "1f8101 00", /multi-byte tag/],
    ["bytes after the value", "3000 00", /1 bytes after the DER value/],
  ])("%s is refused", (_what, hex, message) => {
    expect(() => readRoot(h(hex))).toThrow(DerError);
    expect(() => readRoot(h(hex))).toThrow(message);
  });

  test("a child that overruns its parent is refused, even when the buffer has the bytes", () => {
    const der = h("3002 0403 414243");
    expect(() => children(der, readTlv(der, 0))).toThrow(/runs past its container/);
  });

  test("lengths up to 4 bytes, OIDs with big arcs and the 2.x form round-trip", () => {
    const big = tlv(TAG.OCTET_STRING, Buffer.alloc(70_000));
    expect(readRoot(big).end).toBe(big.length);
    for (const dotted of ["1.2.840.113549.1.1.11", "2.5.29.17", "2.999.3", "1.3.6.1.4.1.311.2.1.14"]) {
      const der = oid(dotted);
      expect(oidString(der, readRoot(der), "oid")).toBe(dotted);
    }
    expect(() => oidString(h("0603 2a8001"), readRoot(h("0603 2a8001")), "x")).toThrow(/non-minimal OID arc/);
    expect(() => oidString(h("0602 2a86"), readRoot(h("0602 2a86")), "x")).toThrow(/ends inside an OID arc/);
  });

  test("INTEGERs are minimal and positive", () => {
    expect(unsignedInteger(h("0000ff")).toString("hex")).toBe("020200ff");
    expect(unsignedInteger(h("007f")).toString("hex")).toBe("02017f");
    expect(unsignedInteger(h("00")).toString("hex")).toBe("020100");
  });
});

describe("PKCS#10 reader", () => {
  test("the request the agent writes parses, verifies and yields its one URI SAN", () => {
    const parsed = parseCsr(buildCsr(WEB, keys.privateKey, keys.publicKey));
    verifyCsr(parsed);
    expect(parsed.sans.map((s) => [s.type, s.value.toString()])).toEqual([[6, WEB]]);
    expect(parsed.spki.equals(pemDer(keys.publicKey))).toBe(true);
  });

  test("PEM: one CERTIFICATE REQUEST block of strict base64, nothing else", () => {
    const good = csr();
    expect(malformed(good.replace(/CERTIFICATE REQUEST/g, "CERTIFICATE"))).toMatch(/not one PEM block/);
    expect(malformed(good + good)).toMatch(/not one PEM block/);
    expect(malformed(`junk\n${good}`)).toMatch(/not one PEM block/);
    expect(malformed(good.replace(/\n(.)/, "\n!$1"))).toMatch(/not one PEM block/);
    expect(malformed(good.replace(/\n(.)(.)/, "\n$1=$2"))).toMatch(/not base64/);
    expect(() => parseCsr(good.replace(/\n/g, "\r\n"))).not.toThrow();
  });

  test.each<[string, CsrParts, RegExp]>([
    ["trailing bytes", { outer: (d) => Buffer.concat([d, h("00")]) }, /1 bytes after the DER value/],
    [
      "an indefinite outer length",
      { outer: (d) => Buffer.concat([h("3080"), d.subarray(readTlv(d, 0).start), h("0000")]) },
      /indefinite length/,
    ],
    ["version 1", { version: unsignedInteger(Buffer.from([1])) }, /version is not 0/],
    ["an EC key", { spki: ecSpki() }, /the key's algorithm is 1\.2\.840\.10045\.2\.1, not rsaEncryption/],
    [
      "an RSA-1024 key",
      { spki: pemDer(rsa(1024).publicKey) },
      /the key is RSA-1024; the CA signs RSA keys of 2048/,
    ],
    [
      "a damaged RSA key",
      { spki: sequence(sequence(oid("1.2.840.113549.1.1.1"), tlv(TAG.NULL)), bitString(h("3003020101"))) },
      /the RSA key does not parse/,
    ],
    [
      "two subjectAltName extensions",
      { attributes: [extReq(sanExt(uriSan(WEB)), sanExt(uriSan(WEB)))] },
      /more than one subjectAltName extension/,
    ],
    [
      "two extensionRequest attributes",
      { attributes: [extReq(sanExt(uriSan(WEB))), extReq(sanExt(uriSan(WEB)))] },
      /more than one extensionRequest attribute/,
    ],
    ["a non-ASCII URI", { attributes: [extReq(sanExt(uriSan(`${WEB}\u00e9`)))] }, /not an IA5String/],
    [
      "a constructed URI",
      { attributes: [extReq(sanExt(tlv(contextTag(6, true), uriSan(WEB))))] },
      /tag 0xa6 is not a GeneralName/,
    ],
    [
      "a universal tag among the GeneralNames",
      { attributes: [extReq(sanExt(tlv(TAG.IA5_STRING, Buffer.from(WEB))))] },
      /tag 0x16 is not a GeneralName/,
    ],
    [
      "a critical flag that is not a DER BOOLEAN",
      {
        attributes: [
          extReq(
            sequence(
              oid("2.5.29.17"),
              tlv(TAG.BOOLEAN, h("01")),
              tlv(TAG.OCTET_STRING, sequence(uriSan(WEB))),
            ),
          ),
        ],
      },
      /critical flag is not a DER BOOLEAN/,
    ],
    [
      "bytes after the GeneralNames",
      {
        attributes: [
          extReq(
            sequence(
              oid("2.5.29.17"),
              tlv(TAG.OCTET_STRING, Buffer.concat([sequence(uriSan(WEB)), h("00")])),
            ),
          ),
        ],
      },
      /bytes after the subjectAltName GeneralNames/,
    ],
    [
      "signature algorithm parameters other than NULL",
      { algorithm: sequence(oid("1.2.840.113549.1.1.11"), tlv(TAG.OCTET_STRING)) },
      /has parameters other than NULL/,
    ],
  ])("%s is malformed_csr", (_what, parts, message) => {
    expect(malformed(csr(parts))).toMatch(message);
  });

  test("a signature BIT STRING with unused bits is malformed", () => {
    const der = pemDer(csr());
    const outer = children(der, readRoot(der));
    const sig = outer[2] as ReturnType<typeof readTlv>;
    const bad = Buffer.from(der);
    bad[sig.start] = 1;
    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${bad.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(malformed(pem)).toMatch(/signature is not a whole number of bytes/);
  });

  test("SHA-1 and MD5 signatures are refused; SHA-384 and SHA-512 verify", () => {
    const sha1 = parseCsr(
      csr({ digest: "sha1", algorithm: sequence(oid("1.2.840.113549.1.1.5"), tlv(TAG.NULL)) }),
    );
    const e = rejection(() => verifyCsr(sha1));
    expect(e.reason).toBe("bad_signature");
    expect(e.message).toMatch(
      /signed with algorithm 1\.2\.840\.113549\.1\.1\.5; the CA accepts sha256WithRSA/,
    );
    verifyCsr(parseCsr(csr({ digest: "sha512", algorithm: sequence(oid("1.2.840.113549.1.1.13")) })));
    verifyCsr(
      parseCsr(csr({ digest: "sha384", algorithm: sequence(oid("1.2.840.113549.1.1.12"), tlv(TAG.NULL)) })),
    );
  });

  test("a request signed by another key, or over other bytes, is bad_signature", () => {
    const e = rejection(() => verifyCsr(parseCsr(csr({ key: rsa(2048).privateKey }))));
    expect(e.reason).toBe("bad_signature");
    expect(e.message).toBe("csr signature does not verify with its public key");
    // The digest algorithm named differs from the one signed with.
    const mixed = parseCsr(csr({ digest: "sha512" }));
    expect(rejection(() => verifyCsr(mixed)).reason).toBe("bad_signature");
  });

  test("other attributes and extensions are read as DER and otherwise ignored", () => {
    const challenge = sequence(
      oid("1.2.840.113549.1.9.7"),
      tlv(TAG.SET, tlv(TAG.UTF8_STRING, Buffer.from("pw"))),
    );
    const ca = sequence(oid("2.5.29.19"), tlv(TAG.OCTET_STRING, sequence(tlv(TAG.BOOLEAN, h("ff")))));
    const parsed = parseCsr(csr({ attributes: [challenge, extReq(ca, sanExt(uriSan(WEB)))] }));
    verifyCsr(parsed);
    expect(parsed.sans).toHaveLength(1);
    expect(
      malformed(csr({ attributes: [sequence(oid("1.2.840.113549.1.9.7"), tlv(TAG.SET, h("0405")))] })),
    ).toMatch(/truncated DER|runs past/);
  });
});

/** node-forge's IP conversion (missing from @types/node-forge): what its certificates carried. */
const bytesFromIP = (ip: string): string =>
  (forge.util as unknown as { bytesFromIP(ip: string): string }).bytesFromIP(ip);

function ecSpki(): Buffer {
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return ec.publicKey.export({ type: "spki", format: "der" });
}

describe("certificates: the bytes node-forge wrote", () => {
  const root = generateRoot("cluster.local");
  const ca = new CertificateAuthority(
    { ...root, trustBundle: [root.certPem] },
    { trustDomain: "cluster.local" },
  );
  const forgeRoot = forge.pki.certificateFromPem(root.certPem);

  /** The TBSCertificate node-forge builds for the same serial, validity, key and extensions. */
  function forgeTbs(
    pem: string,
    extensions: object[],
    subject: forge.pki.CertificateField[],
    issuer = forgeRoot,
  ) {
    const mine = forge.pki.certificateFromPem(pem);
    const cert = forge.pki.createCertificate();
    cert.publicKey = mine.publicKey;
    cert.serialNumber = mine.serialNumber;
    cert.validity.notBefore = mine.validity.notBefore;
    cert.validity.notAfter = mine.validity.notAfter;
    cert.setSubject(subject);
    cert.setIssuer(issuer.subject.attributes);
    cert.setExtensions(extensions);
    (cert as unknown as { siginfo: { algorithmOid: string } }).siginfo.algorithmOid = forge.pki.oids
      .sha256WithRSAEncryption as string;
    const pki = forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 };
    return Buffer.from(forge.asn1.toDer(pki.getTBSCertificate(cert)).getBytes(), "binary");
  }
  const tbsOf = (pem: string) => {
    const der = new X509Certificate(pem).raw;
    return whole(der, children(der, readRoot(der))[0] as ReturnType<typeof readTlv>);
  };
  const skid = () => {
    const ext = forgeRoot.getExtension("subjectKeyIdentifier") as { subjectKeyIdentifier: string };
    return forge.util.hexToBytes(ext.subjectKeyIdentifier);
  };

  test("an SVID", () => {
    const now = Date.now();
    const pem = ca.signWorkload(
      { csrPem: buildCsr(WEB, keys.privateKey, keys.publicKey), node: "n" },
      {
        identityOnNode: () => true,
      },
      now,
    ).certChain[0] as string;
    const want = forgeTbs(
      pem,
      [
        { name: "basicConstraints", cA: false, critical: true },
        { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
        { name: "extKeyUsage", serverAuth: true, clientAuth: true },
        { name: "subjectAltName", altNames: [{ type: 6, value: WEB }], critical: true },
        { name: "authorityKeyIdentifier", keyIdentifier: skid() },
      ],
      [],
    );
    expect(tbsOf(pem).toString("hex")).toBe(want.toString("hex"));
    expect(Date.parse(new X509Certificate(pem).validFrom)).toBe(
      Math.floor((now - NOT_BEFORE_BACKDATE_MS) / 1000) * 1000,
    );
  });

  test("the serving certificate, with DNS names and IPv4 and IPv6 addresses", () => {
    const { certPem } = ca.issueServing(
      { dns: ["ctl.example", "localhost"], ips: ["127.0.0.1", "::1", "fd00::7"] },
      3600_000,
    );
    const want = forgeTbs(
      certPem,
      [
        { name: "basicConstraints", cA: false, critical: true },
        { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
        { name: "extKeyUsage", serverAuth: true, clientAuth: true },
        {
          name: "subjectAltName",
          altNames: [
            { type: 2, value: "ctl.example" },
            { type: 2, value: "localhost" },
            { type: 7, ip: "127.0.0.1" },
            { type: 7, ip: "::1" },
            { type: 7, ip: "fd00::7" },
          ],
        },
        { name: "authorityKeyIdentifier", keyIdentifier: skid() },
      ],
      [{ name: "commonName", value: "ctl.example" }],
    );
    expect(tbsOf(certPem).toString("hex")).toBe(want.toString("hex"));
  });

  test("the root", () => {
    const subject = forgeRoot.subject.attributes.map((a) => ({
      name: a.name as string,
      value: a.value as string,
    }));
    const want = forgeTbs(
      root.certPem,
      [
        { name: "basicConstraints", cA: true, critical: true },
        { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
        { name: "subjectKeyIdentifier" },
        { name: "subjectAltName", altNames: [{ type: 6, value: "spiffe://cluster.local" }] },
      ],
      subject,
    );
    expect(tbsOf(root.certPem).toString("hex")).toBe(want.toString("hex"));
    expect(new X509Certificate(root.certPem).verify(new X509Certificate(root.certPem).publicKey)).toBe(true);
  });

  test("serials are positive 16-byte INTEGERs, minimally encoded", () => {
    const csrPem = buildCsr(WEB, keys.privateKey, keys.publicKey);
    for (let i = 0; i < 100; i++) {
      const pem = ca.signWorkload({ csrPem, node: "n" }, { identityOnNode: () => true })
        .certChain[0] as string;
      const der = new X509Certificate(pem).raw;
      const tbs = children(der, readRoot(der))[0] as ReturnType<typeof readTlv>;
      const serial = children(der, tbs)[1] as ReturnType<typeof readTlv>;
      expect(serial.end - serial.start).toBe(16);
      expect((der[serial.start] ?? 0) & 0xc0).toBe(0x40);
    }
  });

  test("IP addresses as bytes, as node-forge converts them", () => {
    for (const ip of ["10.1.2.3", "::", "::1", "fd00::7", "2001:db8:0:1:2:3:4:5", "fe80::1:2"]) {
      expect(ipBytes(ip).toString("binary")).toBe(bytesFromIP(ip));
    }
    expect(ipBytes("::ffff:10.0.0.1").toString("hex")).toBe("00000000000000000000ffff0a000001");
    expect(() => ipBytes("not-an-ip")).toThrow(/not-an-ip is not an IP address/);
  });
});

describe("subjectAltName strings", () => {
  test("refuses a name that is not printable ASCII instead of mangling it", () => {
    expect(() => subjectAltName([{ dns: "bücher.example" }], false)).toThrow(
      'subjectAltName DNS name "bücher.example" must be printable ASCII without spaces (IA5String)',
    );
    expect(() => subjectAltName([{ uri: "spiffe://td/ns/a b" }], false)).toThrow(/URI .*\(IA5String\)/);
    const der = subjectAltName([{ uri: "spiffe://td/ns/a/sa/b" }, { dns: "x.example" }], false);
    expect(der.includes(Buffer.from("spiffe://td/ns/a/sa/b"))).toBe(true);
  });
});
