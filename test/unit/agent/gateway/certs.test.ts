// The gateway's certificates: checkCertificate's refusals (bad PEM, wrong key, expired, not yet
// valid), SNI selection across listeners and SANs, and the store's reloads: a bad, missing or expired
// replacement is logged with the reason and the last good certificate keeps serving.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  CertificateStore,
  checkCertificate,
  selectCertificate,
  type CertMaterial,
} from "../../../../agent/gateway/certs.ts";
import type { GatewayListenerInfo } from "../../../../agent/gateway/routes.ts";
import { createLogger } from "../../../../agent/log.ts";
import { opensslRoot, type PemPair } from "../../../helpers/openssl-certs.ts";
import { opensslServerCert } from "../../../helpers/server-certs.ts";

let dir: string;
let shop: PemPair;
let wild: PemPair;
const read = (p: string) => readFileSync(p, "utf8");
const DAY = 86_400_000;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gw-certs-"));
  const ca = opensslRoot(dir, "ca", "/CN=test ingress CA");
  shop = opensslServerCert(dir, "shop", ["shop.example.com"], ca);
  wild = opensslServerCert(dir, "wild", ["*.example.com", "example.com"], ca);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("checkCertificate", () => {
  test("a good pair gives its SANs, expiry and fingerprint", () => {
    const m = checkCertificate(read(shop.cert), read(shop.key), Date.now());
    expect(m.dnsNames).toEqual(["shop.example.com"]);
    expect(m.notAfter.getTime()).toBeGreaterThan(Date.now() + DAY);
    expect(m.fingerprint).toMatch(/^[0-9A-F:]{95}$/);
  });
  test.each<[string, () => [string, string, number], RegExp]>([
    [
      "garbage certificate",
      () => ["not a cert", read(shop.key), Date.now()],
      /^certFile is not a PEM certificate/,
    ],
    ["garbage key", () => [read(shop.cert), "nope", Date.now()], /^keyFile is not a PEM private key/],
    [
      "another certificate's key",
      () => [read(shop.cert), read(wild.key), Date.now()],
      /^keyFile does not match certFile$/,
    ],
    [
      "expired",
      () => [read(shop.cert), read(shop.key), Date.now() + 3 * DAY],
      /^the certificate expired on \d{4}-/,
    ],
    [
      "not yet valid",
      () => [read(shop.cert), read(shop.key), Date.now() - DAY],
      /^the certificate is not valid before \d{4}-/,
    ],
  ])("%s is refused with the reason", (_what, args, message) => {
    expect(() => checkCertificate(...args())).toThrow(message);
  });
});

describe("selectCertificate (SNI)", () => {
  const a = { dnsNames: ["shop.example.com"], fingerprint: "A" } as unknown as CertMaterial;
  const b = { dnsNames: ["*.example.com"], fingerprint: "B" } as unknown as CertMaterial;
  const c = { dnsNames: ["other.org"], fingerprint: "C" } as unknown as CertMaterial;
  const loaded: Record<string, CertMaterial> = { "e/a": a, "e/b": b, "e/c": c };
  const get = (ref: string) => loaded[ref];
  const l = (name: string, hostname: string | undefined, certificates: string[]): GatewayListenerInfo => ({
    name,
    hostname,
    certificates,
  });
  const listeners = [
    l("wild", "*.example.com", ["e/b", "e/a"]),
    l("exact", "shop.example.com", ["e/a"]),
    l("any", undefined, ["e/c", "e/b"]),
  ];

  test.each<[string | undefined, string | undefined]>([
    ["shop.example.com", "A"], // the exact listener beats the wildcard one
    ["Shop.Example.com", "A"],
    ["cart.example.com", "B"], // wildcard listener; its SAN-matching certificate
    ["deep.cart.example.com", "B"], // listener wildcard spans labels; no SAN fits: its first certificate
    ["other.org", "C"], // the listener without hostname, SAN fit
    ["elsewhere.net", "C"], // the listener without hostname, its first certificate
    [undefined, "C"], // no SNI: the listener without hostname
  ])("SNI %s → certificate %s", (sni, want) => {
    expect(selectCertificate(sni, listeners, get)?.fingerprint).toBe(want);
  });

  test("no SNI without a catch-all listener: the first listener; an unmatched SNI: none", () => {
    const two = listeners.slice(0, 2);
    expect(selectCertificate(undefined, two, get)?.fingerprint).toBe("B");
    expect(selectCertificate("elsewhere.net", two, get)).toBeUndefined();
    expect(
      selectCertificate("shop.example.com", [l("x", "shop.example.com", ["e/missing"])], get),
    ).toBeUndefined();
  });
});

describe("CertificateStore", () => {
  function store(now = () => Date.now()) {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger("info", {
      write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>),
    });
    let changes = 0;
    return {
      lines,
      changes: () => changes,
      store: new CertificateStore({ log, now, onChange: () => changes++ }),
    };
  }
  const pairIn = (name: string, from: PemPair) => {
    const certFile = join(dir, `${name}-live.crt`);
    const keyFile = join(dir, `${name}-live.key`);
    copyFileSync(from.cert, certFile);
    copyFileSync(from.key, keyFile);
    return { certFile, keyFile };
  };

  test("loads a pair, then keeps it when its replacement is bad or missing, and takes a good one", async () => {
    const files = pairIn("a", shop);
    const s = store();
    await s.store.sync(new Map([["edge/shop", files]]));
    const first = s.store.get("edge/shop");
    expect(first?.dnsNames).toEqual(["shop.example.com"]);
    expect(s.changes()).toBe(1);

    writeFileSync(files.certFile, "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n");
    await s.store.reload();
    expect(s.store.get("edge/shop")).toBe(first);
    const err = s.lines.find((l) => l.level === 50);
    expect(err?.code).toBe("NODEMESH_ERR_GATEWAY_CERT");
    expect(String(err?.msg)).toMatch(
      /^TLSCertificate edge\/shop \(.*a-live\.crt, .*a-live\.key\): certFile is not a PEM certificate .*; the listener keeps serving the last good certificate \([0-9A-F:]{23}…, valid until \d{4}-/,
    );
    await s.store.reload(); // unchanged and still bad: said once
    expect(s.lines.filter((l) => l.level === 50)).toHaveLength(1);

    rmSync(files.keyFile);
    await s.store.reload();
    expect(s.store.get("edge/shop")).toBe(first);
    expect(String(s.lines.filter((l) => l.level === 50)[1]?.msg)).toMatch(
      /: cannot read keyFile .*a-live\.key: ENOENT; the listener keeps serving/,
    );

    copyFileSync(wild.cert, files.certFile);
    copyFileSync(wild.key, files.keyFile);
    await s.store.reload();
    expect(s.store.get("edge/shop")?.dnsNames).toEqual(["*.example.com", "example.com"]);
    expect(s.changes()).toBe(2);
    expect(s.lines.some((l) => l.msg === "gateway certificate reloaded")).toBe(true);
  });

  test("an expired pair is refused; with nothing good yet the log says handshakes fail", async () => {
    const s = store(() => Date.now() + 3 * DAY);
    await s.store.sync(new Map([["edge/old", pairIn("b", shop)]]));
    expect(s.store.get("edge/old")).toBeUndefined();
    expect(String(s.lines.find((l) => l.level === 50)?.msg)).toMatch(
      /: the certificate expired on \d{4}-.*; the listener has no certificate for it, so TLS handshakes that need it fail$/,
    );
    expect(s.store.dump()["edge/old"]).toMatchObject({ serving: null });
  });

  test("sync forgets pairs no longer referenced", async () => {
    const s = store();
    await s.store.sync(new Map([["edge/x", pairIn("c", shop)]]));
    expect(s.store.get("edge/x")).toBeDefined();
    await s.store.sync(new Map());
    expect(s.store.get("edge/x")).toBeUndefined();
    expect(s.store.dump()).toEqual({});
  });
});
