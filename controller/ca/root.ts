// The CA root: generated and persisted on first start (key 0600 in a 0700 directory), or loaded
// from files the operator gives. The trust bundle is the signing root plus any extra roots
// (`extra-roots.pem` in the CA directory, or --ca-extra-roots), which is how rotation works: trust
// the new root everywhere first, then sign with it, then drop the old one (docs/identity.md).
import { X509Certificate, createPrivateKey, generateKeyPairSync } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../errors.ts";
import {
  basicConstraints,
  keyUsage,
  name,
  signCertificate,
  subjectAltName,
  subjectKeyIdentifier,
} from "./x509.ts";

export const ROOT_CERT_FILE = "ca-cert.pem";
export const ROOT_KEY_FILE = "ca-key.pem";
export const EXTRA_ROOTS_FILE = "extra-roots.pem";
/** Ten years: the root is replaced by rotation, not by expiry. */
const ROOT_LIFETIME_MS = 10 * 365 * 24 * 3600_000;

export interface CaRoot {
  /** Signing root certificate and its private key (PEM). */
  readonly certPem: string;
  readonly keyPem: string;
  /** The signing root first, then extra roots; what agents trust. */
  readonly trustBundle: readonly string[];
}

export interface RootSource {
  /** Directory holding ca-cert.pem / ca-key.pem (created when missing) and optional extra-roots.pem. */
  dir?: string;
  /** Operator-provided root, instead of `dir`. */
  certFile?: string;
  keyFile?: string;
  /** PEM file of additional roots to trust (rotation). */
  extraRootsFile?: string;
}

/** Root key usage bits: digitalSignature (0), keyCertSign (5), cRLSign (6). */
const ROOT_KEY_USAGE = [0, 5, 6];

/** A self-signed RSA-2048 root (keys and signature from node:crypto, DER from x509.ts). */
export function generateRoot(trustDomain: string, now = Date.now()): { certPem: string; keyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "der" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const subject = name([
    { oid: "2.5.4.10", value: "nodemesh" },
    { oid: "2.5.4.3", value: `nodemesh root CA ${trustDomain} ${new Date(now).toISOString().slice(0, 10)}` },
  ]);
  const certPem = signCertificate(
    {
      issuer: subject,
      subject,
      spki: publicKey,
      notBefore: new Date(now - 5 * 60_000),
      notAfter: new Date(now + ROOT_LIFETIME_MS),
      extensions: [
        basicConstraints(true),
        keyUsage(ROOT_KEY_USAGE),
        subjectKeyIdentifier(publicKey),
        subjectAltName([{ uri: `spiffe://${trustDomain}` }], false),
      ],
    },
    createPrivateKey(privateKey),
  );
  return { certPem, keyPem: privateKey };
}

/** Splits a PEM bundle into certificates, each checked to parse. */
export function splitPemBundle(text: string, file: string): string[] {
  const out = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  for (const pem of out) {
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw new ConfigError(`${file}: not a valid certificate: ${(err as Error).message}`);
    }
  }
  return out.map((p) => `${p}\n`);
}

function readOrThrow(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(
      `cannot read the ${what} ${file}: ${(err as Error).message}; check the --ca-* flags`,
    );
  }
}

/** Loads the root (generating and persisting it in `dir` on first start). */
export function loadRoot(src: RootSource, trustDomain: string): CaRoot {
  let certPem: string;
  let keyPem: string;
  let extra = src.extraRootsFile;
  if (src.certFile || src.keyFile) {
    if (!src.certFile || !src.keyFile) throw new ConfigError("--ca-cert and --ca-key must be given together");
    certPem = readOrThrow(src.certFile, "CA certificate");
    keyPem = readOrThrow(src.keyFile, "CA key");
  } else if (src.dir) {
    const certFile = join(src.dir, ROOT_CERT_FILE);
    const keyFile = join(src.dir, ROOT_KEY_FILE);
    if (!existsSync(certFile) && !existsSync(keyFile)) {
      mkdirSync(src.dir, { recursive: true, mode: 0o700 });
      chmodSync(src.dir, 0o700);
      const root = generateRoot(trustDomain);
      writeFileSync(keyFile, root.keyPem, { mode: 0o600, flag: "wx" });
      writeFileSync(certFile, root.certPem, { mode: 0o644, flag: "wx" });
    }
    certPem = readOrThrow(certFile, "CA certificate");
    keyPem = readOrThrow(keyFile, "CA key");
    const extraFile = join(src.dir, EXTRA_ROOTS_FILE);
    if (!extra && existsSync(extraFile)) extra = extraFile;
  } else {
    throw new ConfigError("no CA configured; give --ca-dir, or --ca-cert with --ca-key");
  }
  const cert = new X509Certificate(certPem);
  if (!cert.ca) throw new ConfigError("the CA certificate is not a CA (basicConstraints cA=false)");
  if (!cert.checkPrivateKey(createPrivateKey(keyPem))) {
    throw new ConfigError("the CA key does not match the CA certificate; check --ca-cert/--ca-key");
  }
  if (createPrivateKey(keyPem).asymmetricKeyType !== "rsa") {
    throw new ConfigError("the CA key must be RSA (the CA signs with sha256WithRSAEncryption)");
  }
  const signing = splitPemBundle(certPem, "CA certificate")[0] ?? certPem;
  const extras = extra ? splitPemBundle(readOrThrow(extra, "extra roots file"), extra) : [];
  const trustBundle = [signing, ...extras.filter((p) => p.trim() !== signing.trim())];
  return { certPem: signing, keyPem, trustBundle };
}
