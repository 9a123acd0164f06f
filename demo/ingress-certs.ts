// The demo ingress's certificates, made with the openssl CLI as an operator would: a throwaway CA and a
// `*.example.com` server certificate signed by it, in the demo's directory. The external client trusts
// the CA (curl --cacert); the Gateway serves the certificate through a TLSCertificate.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface IngressCerts {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export function makeIngressCerts(dir: string): IngressCerts {
  const f = (n: string) => join(dir, n);
  const run = (args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
  run([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    f("ingress-ca.key"),
    "-out",
    f("ingress-ca.crt"),
    "-days",
    "2",
    "-subj",
    "/CN=nodemesh demo ingress CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  writeFileSync(f("shop.ext"), "subjectAltName=DNS:*.example.com\nextendedKeyUsage=serverAuth\n");
  run([
    "req",
    "-new",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    f("shop.key"),
    "-subj",
    "/CN=*.example.com",
    "-out",
    f("shop.csr"),
  ]);
  run([
    "x509",
    "-req",
    "-in",
    f("shop.csr"),
    "-CA",
    f("ingress-ca.crt"),
    "-CAkey",
    f("ingress-ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    f("shop.ext"),
    "-out",
    f("shop.crt"),
  ]);
  return { caFile: f("ingress-ca.crt"), certFile: f("shop.crt"), keyFile: f("shop.key") };
}
