// Fuzzing what an agent (or anyone who reaches :15012) sends the controller: CSRs (random text, damaged
// DER, forged SAN sets) must end in a CsrRejectedError with a known reason, or in a certificate for an
// identity placed on the caller's node, never in another exception (the CSR handler rethrows those,
// which would crash the controller); the stream and CSR bodies, the bearer token, the node claim and
// accept-encoding must be judged without throwing.
import { generateKeyPairSync } from "node:crypto";
import fc from "fast-check";
import forge from "node-forge";
import { describe, expect, test } from "vitest";
import { buildCsr } from "../../agent/identity/csr.ts";
import { ClientMessage, CsrRequest, formatSpiffeId, parseSpiffeId } from "../../controller/api/index.ts";
import { CertificateAuthority } from "../../controller/ca/ca.ts";
import { DerError, checkTree, readRoot } from "../../controller/ca/der.ts";
import { generateRoot, splitPemBundle } from "../../controller/ca/root.ts";
import { CSR_REJECT_REASONS, ConfigError, CsrRejectedError } from "../../controller/errors.ts";
import { bearerToken, decide } from "../../controller/distribution/node-auth.ts";
import { negotiateEncoding } from "../../controller/distribution/server.ts";
import { FUZZ_TIMEOUT_MS, fuzz } from "./params.ts";

const TD = "cluster.local";
const WEB = `spiffe://${TD}/ns/shop/sa/web`;
const root = generateRoot(TD);
const ca = new CertificateAuthority({ ...root, trustBundle: [root.certPem] }, { trustDomain: TD });
const placement = { identityOnNode: (id: string, node: string) => id === WEB && node === "node-a" };
const keys = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  publicKeyEncoding: { type: "spki", format: "pem" },
  privateKeyEncoding: { type: "pkcs1", format: "pem" },
});
const validDer = Buffer.from(
  buildCsr(WEB, keys.privateKey, keys.publicKey)
    .replace(/-----[^-]+-----/g, "")
    .replace(/\s+/g, ""),
  "base64",
);

const pem = (der: Buffer, label = "CERTIFICATE REQUEST") =>
  `-----BEGIN ${label}-----\n${der.toString("base64").replace(/.{64}/g, "$&\n")}\n-----END ${label}-----\n`;

/** Signs the CSR: true when it issued, false when it refused cleanly; anything else fails the property. */
function judge(csrPem: string, identity?: string): boolean {
  try {
    const issued = ca.signWorkload({ csrPem, identity, node: "node-a" }, placement);
    expect(issued.identity).toBe(WEB); // the only identity placed on node-a
    return true;
  } catch (err) {
    if (!(err instanceof CsrRejectedError)) throw err;
    expect(CSR_REJECT_REASONS).toContain(err.reason);
    expect(err.message.length).toBeGreaterThan(0);
    return false;
  }
}

const damagedDer = fc
  .array(
    fc.record({
      at: fc.nat(),
      byte: fc.integer({ min: 0, max: 255 }),
      op: fc.constantFrom("set", "cut", "insert"),
    }),
    {
      minLength: 1,
      maxLength: 6,
    },
  )
  .map((edits) => {
    let der = Buffer.from(validDer);
    for (const e of edits) {
      const at = e.at % der.length;
      if (e.op === "set") der[at] = e.byte;
      else if (e.op === "cut") der = Buffer.concat([der.subarray(0, at), der.subarray(at + 1)]);
      else der = Buffer.concat([der.subarray(0, at), Buffer.from([e.byte]), der.subarray(at)]);
    }
    return der;
  });

const san = fc.oneof(
  fc.record({
    type: fc.constant(6),
    value: fc.oneof(fc.constant(WEB), fc.webUrl(), fc.string({ maxLength: 40 })),
  }),
  fc.record({ type: fc.constant(2), value: fc.domain() }),
  fc.record({ type: fc.constant(7), ip: fc.ipV4() }),
  fc.record({ type: fc.constant(1), value: fc.emailAddress() }),
);

function csrWithSans(altNames: { type: number; value?: string; ip?: string }[]): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(keys.publicKey);
  csr.setSubject([]);
  const ext =
    altNames.length > 0
      ? [{ name: "extensionRequest", extensions: [{ name: "subjectAltName", altNames }] }]
      : [];
  csr.setAttributes(ext);
  csr.sign(
    forge.pki.privateKeyFromPem(keys.privateKey) as forge.pki.rsa.PrivateKey,
    forge.md.sha256.create(),
  );
  return forge.pki.certificationRequestToPem(csr);
}

describe("fuzz: the CA's CSR decoding", () => {
  test(
    "random text and random PEM bodies are refused as malformed or unsigned",
    () => {
      fc.assert(
        fc.property(
          fc.oneof(
            fc.string({ unit: "binary", maxLength: 300 }),
            fc.uint8Array({ maxLength: 600 }).map((b) => pem(Buffer.from(b))),
            fc.uint8Array({ maxLength: 200 }).map((b) => pem(Buffer.from(b), "CERTIFICATE")),
          ),
          (text) => {
            expect(judge(text)).toBe(false);
          },
        ),
        fuzz(300),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "a damaged DER CSR is refused cleanly (or, if the damage is harmless, issued for its own identity)",
    () => {
      fc.assert(
        fc.property(
          damagedDer,
          fc.option(fc.constantFrom(WEB, "spiffe://cluster.local/ns/shop/sa/db")),
          (der, id) => {
            judge(pem(der), id ?? undefined);
          },
        ),
        fuzz(300),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "the strict DER reader refuses damaged or random DER with a DerError only",
    () => {
      fc.assert(
        fc.property(
          fc.oneof(
            damagedDer,
            fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
          ),
          (der) => {
            try {
              checkTree(der, readRoot(der));
            } catch (err) {
              expect(err).toBeInstanceOf(DerError);
            }
          },
        ),
        fuzz(500),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "forged SAN sets get a certificate only for the one identity placed on the node",
    () => {
      fc.assert(
        fc.property(fc.array(san, { maxLength: 3 }), fc.option(fc.string({ maxLength: 40 })), (sans, id) => {
          const issued = judge(csrWithSans(sans), id ?? undefined);
          if (issued) expect(sans).toEqual([{ type: 6, value: WEB }]);
        }),
        fuzz(25),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "a trust bundle with damaged certificates is a ConfigError naming the file",
    () => {
      fc.assert(
        fc.property(fc.string({ maxLength: 200 }), fc.uint8Array({ maxLength: 300 }), (junk, der) => {
          const text = `${junk}${pem(Buffer.from(der), "CERTIFICATE")}${root.certPem}`;
          try {
            expect(splitPemBundle(text, "extra-roots.pem").length).toBeGreaterThanOrEqual(1);
          } catch (err) {
            expect(err).toBeInstanceOf(ConfigError);
            expect((err as Error).message).toContain("extra-roots.pem");
          }
        }),
        fuzz(200),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});

describe("fuzz: the agent endpoint's request decoding", () => {
  test(
    "stream lines and CSR bodies parse or fail with a SyntaxError or a schema error",
    () => {
      const body = fc.oneof(
        fc.string({ unit: "binary", maxLength: 200 }),
        fc.jsonValue().map((v) => JSON.stringify(v)),
        fc
          .record(
            {
              type: fc.constantFrom("ack", "demand", "x"),
              version: fc.oneof(fc.string(), fc.integer()),
              error: fc.option(fc.string()),
              csr: fc.string(),
              identity: fc.string(),
            },
            { requiredKeys: [] },
          )
          .map((v) => JSON.stringify(v)),
      );
      fc.assert(
        fc.property(body, (line) => {
          let value: unknown;
          try {
            value = JSON.parse(line);
          } catch (err) {
            expect(err).toBeInstanceOf(SyntaxError);
            return;
          }
          for (const schema of [ClientMessage, CsrRequest]) {
            const r = schema.safeParse(value);
            if (!r.success) expect(r.error.issues.length).toBeGreaterThan(0);
          }
        }),
        fuzz(500),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "bearer token, node claim and accept-encoding are judged for any header value",
    () => {
      const value = fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }), fc.constant(undefined));
      fc.assert(
        fc.property(value, value, value, (auth, claimed, enc) => {
          const token = bearerToken({ authorization: typeof auth === "string" ? auth : undefined });
          expect(typeof token).toBe("string");
          if (token !== "") expect(String(auth).startsWith("Bearer ")).toBe(true);
          const d = decide({ node: "node-a" }, claimed);
          if ("node" in d) expect(d.node).toBe("node-a");
          else expect(d.status).toBe(403);
          expect(["identity", "deflate"]).toContain(negotiateEncoding(enc));
        }),
        fuzz(500),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  test(
    "parseSpiffeId accepts only what formatSpiffeId writes back unchanged",
    () => {
      const id = fc.oneof(
        fc.string(),
        fc
          .tuple(fc.constantFrom("cluster.local", "Cluster.local", "", "a/b"), fc.string(), fc.string())
          .map(([td, ns, sa]) => `spiffe://${td}/ns/${ns}/sa/${sa}`),
      );
      fc.assert(
        fc.property(id, (uri) => {
          const parsed = parseSpiffeId(uri);
          if (parsed) expect(formatSpiffeId(parsed)).toBe(uri);
        }),
        fuzz(1000),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});
