// Web server certificates made with the openssl CLI, as an operator would make them for an ingress:
// a leaf with DNS SANs (serverAuth) signed by a CA root from openssl-certs.ts.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PemPair } from "./openssl-certs.ts";

/** A leaf for `dnsNames` (the first is also the CN), valid for `days`, signed by `ca`. */
export function opensslServerCert(
  dir: string,
  name: string,
  dnsNames: readonly string[],
  ca: PemPair,
  days = 2,
): PemPair {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    `subjectAltName=${dnsNames.map((d) => `DNS:${d}`).join(",")}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`,
  );
  execFileSync(
    "openssl",
    [
      "req",
      "-new",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      key,
      "-subj",
      `/CN=${dnsNames[0] ?? name}`,
      "-out",
      csr,
    ],
    { stdio: "ignore" },
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
      String(days),
      "-extfile",
      ext,
      "-out",
      cert,
    ],
    { stdio: "ignore" },
  );
  return { key, cert };
}
