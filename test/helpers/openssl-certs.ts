// Certificates made with the openssl CLI, as an operator or an attacker would make them: roots, and
// SPIFFE leaf certificates signed by any root (the mesh's own, read from its CA directory, or a foreign one).
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface PemPair {
  readonly key: string;
  readonly cert: string;
}

/** A self-signed CA root (RSA 2048) in `dir`. */
export function opensslRoot(dir: string, name: string, subject: string): PemPair {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "2",
      "-subj",
      subject,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    { stdio: "ignore" },
  );
  return { key, cert };
}

/** A leaf certificate whose only SAN is `spiffeId`, signed by `ca`, usable as client and server. */
export function opensslLeaf(dir: string, name: string, spiffeId: string, ca: PemPair): PemPair {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, `subjectAltName=URI:${spiffeId}\nextendedKeyUsage=clientAuth,serverAuth\n`);
  execFileSync(
    "openssl",
    ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-subj", `/O=${name}`, "-out", csr],
    {
      stdio: "ignore",
    },
  );
  execFileSync(
    "openssl",
    [
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      ca.cert,
      "-CAkey",
      ca.key,
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      ext,
      "-out",
      cert,
    ],
    { stdio: "ignore" },
  );
  return { key, cert };
}
