// A TLS server certificate for a DNS name, signed by a throwaway root, made with the openssl CLI: what an
// "outside" HTTPS server presents in the egress tests (TLS origination verifies it against the root).
import { readFileSync } from "node:fs";
import { opensslRoot } from "./openssl-certs.ts";
import { opensslServerCert } from "./server-certs.ts";

export interface ServerCert {
  /** File paths. */
  readonly caFile: string;
  readonly keyFile: string;
  readonly certFile: string;
  /** PEM contents. */
  readonly key: string;
  readonly cert: string;
}

export function serverCert(dir: string, host: string): ServerCert {
  const root = opensslRoot(dir, "outside-root", "/O=outside test root");
  const leaf = opensslServerCert(dir, host, [host], root, 1);
  return {
    caFile: root.cert,
    keyFile: leaf.key,
    certFile: leaf.cert,
    key: readFileSync(leaf.key, "utf8"),
    cert: readFileSync(leaf.cert, "utf8"),
  };
}
