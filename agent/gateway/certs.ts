// The gateway's serving certificates: TLSCertificate file pairs read from this node's disk (or PEMs the
// controller sent, from a Kubernetes Secret), checked
// (PEM parses, key matches, valid now), and kept as TLS secure contexts. A pair that turns missing, bad
// or expired is refused with one clear log line and the last good one keeps serving (Envoy's SDS does
// the same with a bad Secret update); the files are re-read when their stat changes (polled: an
// operator's atomic rename would escape an fs.watch on the old inode) and on every snapshot.
// `selectCertificate` is the pure SNI decision the TLS listener calls per handshake.
//
// Invariants: `#entries` holds exactly the references of the last sync(); an entry's `good` only ever
// moves to another material that passed checkCertificate(); at most one reload runs at a time.
import { X509Certificate, createHash, createPrivateKey } from "node:crypto";
import { readFile as fsReadFile, stat as fsStat } from "node:fs/promises";
import { createSecureContext, type SecureContext } from "node:tls";
import { hostnameMatches } from "../../controller/api/index.ts";
import type { TLSCertificateSpec } from "../../controller/api/index.ts";
import { AgentError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { normalizeHost, type GatewayListenerInfo } from "./routes.ts";

export class GatewayCertError extends AgentError {
  constructor(message: string) {
    super("NODEMESH_ERR_GATEWAY_CERT", message);
  }
}

export interface CertMaterial {
  readonly context: SecureContext;
  readonly notAfter: Date;
  readonly dnsNames: readonly string[];
  /** SHA-256 fingerprint, for logs and the config dump. */
  readonly fingerprint: string;
  /** The PEMs, for a TLS server's default context (clients without SNI); never dumped. */
  readonly pem: { readonly cert: string; readonly key: string };
}

/** A TLSCertificate's spec: a certFile/keyFile pair, or the PEMs inline (certificatePem/privateKeyPem). */
export type CertFiles = TLSCertificateSpec;

/** Identifies where a pair comes from: the two paths, or a digest of the inline PEMs (never the PEMs). */
function sourceKey(f: CertFiles): string {
  if (f.certificatePem === undefined) return `file:${f.certFile}\0${f.keyFile}`;
  const h = createHash("sha256")
    .update(f.certificatePem)
    .update("\0")
    .update(f.privateKeyPem ?? "");
  return `pem:${h.digest("hex")}`;
}

/** For logs and the config dump: the file paths, or that the PEMs came with the config. */
function describeSource(f: CertFiles): { certFile: string; keyFile: string } | { source: string } {
  return f.certificatePem === undefined
    ? { certFile: f.certFile ?? "", keyFile: f.keyFile ?? "" }
    : { source: "inline PEM from the controller" };
}

/** Parses and checks one pair; throws GatewayCertError naming what is wrong. */
export function checkCertificate(certPem: string, keyPem: string, now: number): CertMaterial {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch (err) {
    throw new GatewayCertError(`certFile is not a PEM certificate (${(err as Error).message})`);
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new GatewayCertError(`keyFile is not a PEM private key (${(err as Error).message})`);
  }
  if (!x509.checkPrivateKey(key)) throw new GatewayCertError("keyFile does not match certFile");
  const notAfter = new Date(x509.validTo);
  if (notAfter.getTime() <= now)
    throw new GatewayCertError(`the certificate expired on ${notAfter.toISOString()}`);
  const notBefore = new Date(x509.validFrom);
  if (notBefore.getTime() > now)
    throw new GatewayCertError(`the certificate is not valid before ${notBefore.toISOString()}`);
  const dnsNames = (x509.subjectAltName ?? "")
    .split(", ")
    .filter((s) => s.startsWith("DNS:"))
    .map((s) => s.slice(4).toLowerCase());
  return Object.freeze({
    context: createSecureContext({ cert: certPem, key: keyPem, minVersion: "TLSv1.2" }),
    notAfter,
    dnsNames: Object.freeze(dnsNames),
    fingerprint: x509.fingerprint256,
    pem: Object.freeze({ cert: certPem, key: keyPem }),
  });
}

/** RFC 6125: a SAN `*.example.com` covers exactly one label (`a.example.com`, not `a.b.example.com`). */
function sanCovers(san: string, host: string): boolean {
  if (!san.startsWith("*.")) return san === host;
  const dot = host.indexOf(".");
  return dot > 0 && host.slice(dot) === san.slice(1);
}

/**
 * The certificate for a handshake: the listener whose hostname fits the SNI best (exact, longest
 * wildcard, then the one without a hostname; no SNI: the one without a hostname, else the first), then
 * among its loaded certificates the first whose SAN covers the name, else its first loaded one.
 */
export function selectCertificate(
  servername: string | undefined,
  listeners: readonly GatewayListenerInfo[],
  get: (ref: string) => CertMaterial | undefined,
): CertMaterial | undefined {
  const host = servername ? normalizeHost(servername) : undefined;
  const open = listeners.find((l) => l.hostname === undefined);
  let chosen: GatewayListenerInfo | undefined;
  if (host !== undefined) {
    chosen =
      listeners.find((l) => l.hostname === host) ??
      listeners
        .filter((l) => l.hostname?.startsWith("*.") && hostnameMatches(l.hostname, host))
        .sort((a, b) => (b.hostname?.length ?? 0) - (a.hostname?.length ?? 0))[0];
  }
  chosen ??= open ?? (host === undefined ? listeners[0] : undefined);
  if (!chosen) return undefined;
  const loaded = chosen.certificates.map(get).filter((m): m is CertMaterial => m !== undefined);
  if (host !== undefined) {
    const fit = loaded.find((m) => m.dnsNames.some((san) => sanCovers(san, host)));
    if (fit) return fit;
  }
  return loaded[0];
}

interface Entry {
  files: CertFiles;
  good: CertMaterial | undefined;
  /** stat signature of the pair last read (mtime, size, inode of both files). */
  seen: string;
  lastError: string | undefined;
}

export interface CertificateStoreDeps {
  readonly log: Logger;
  readonly now?: () => number;
  readonly readFile?: (path: string) => Promise<string>;
  /** A string that changes when the file changes; default: mtime, size and inode. */
  readonly signature?: (path: string) => Promise<string>;
  /** Called after a pair was (re)loaded, so listeners can refresh what they cached. */
  readonly onChange?: () => void;
}

export class CertificateStore {
  readonly #deps: Required<CertificateStoreDeps>;
  readonly #entries = new Map<string, Entry>();
  #reloading: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(deps: CertificateStoreDeps) {
    this.#deps = {
      now: Date.now,
      onChange: () => {},
      readFile: (p) => fsReadFile(p, "utf8"),
      signature: async (p) => {
        const s = await fsStat(p);
        return `${s.mtimeMs}/${s.size}/${s.ino}`;
      },
      ...deps,
    };
  }

  /** Sets the wanted pairs ("namespace/name" → files) and reads what changed. */
  sync(wanted: ReadonlyMap<string, CertFiles>): Promise<void> {
    for (const ref of this.#entries.keys()) if (!wanted.has(ref)) this.#entries.delete(ref);
    for (const [ref, files] of wanted) {
      const e = this.#entries.get(ref);
      if (!e) this.#entries.set(ref, { files, good: undefined, seen: "", lastError: undefined });
      else if (sourceKey(e.files) !== sourceKey(files)) {
        e.files = files;
        e.seen = "";
      }
    }
    return this.reload();
  }

  get(ref: string): CertMaterial | undefined {
    return this.#entries.get(ref)?.good;
  }

  /** Re-reads every pair whose files changed since the last read; concurrent calls share one pass. */
  reload(): Promise<void> {
    this.#reloading ??= this.#reloadAll().finally(() => (this.#reloading = undefined));
    return this.#reloading;
  }

  /** Polls the files every `intervalMs` (unref'd: never keeps the process alive). */
  watch(intervalMs: number): void {
    this.close();
    this.#timer = setInterval(() => void this.reload(), intervalMs);
    this.#timer.unref();
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  dump(): Record<string, object> {
    const out: Record<string, object> = {};
    for (const [ref, e] of this.#entries)
      out[ref] = {
        ...describeSource(e.files),
        serving: e.good ? { fingerprint: e.good.fingerprint, notAfter: e.good.notAfter.toISOString() } : null,
        error: e.lastError ?? null,
      };
    return out;
  }

  async #reloadAll(): Promise<void> {
    for (const [ref, e] of this.#entries) await this.#reloadOne(ref, e);
  }

  async #reloadOne(ref: string, e: Entry): Promise<void> {
    const { files } = e;
    let material: CertMaterial;
    let sig = "";
    try {
      sig = await this.#signature(files);
      if (sig === e.seen && e.good && e.good.notAfter.getTime() > this.#deps.now()) return;
      if (sig === e.seen && !e.good && e.lastError) return; // unchanged and still bad: said so already
      const [cert, key] =
        files.certificatePem !== undefined
          ? [files.certificatePem, files.privateKeyPem ?? ""]
          : await Promise.all([
              this.#read(files.certFile ?? "", "certFile"),
              this.#read(files.keyFile ?? "", "keyFile"),
            ]);
      material = checkCertificate(cert, key, this.#deps.now());
    } catch (err) {
      return this.#refuse(ref, e, sig, err);
    }
    e.seen = sig;
    e.lastError = undefined;
    const renewed = e.good !== undefined;
    e.good = material;
    this.#deps.log.info(
      { certificate: ref, fingerprint: material.fingerprint, notAfter: material.notAfter.toISOString() },
      renewed ? "gateway certificate reloaded" : "gateway certificate loaded",
    );
    this.#deps.onChange();
  }

  #refuse(ref: string, e: Entry, sig: string, err: unknown): void {
    const why = err instanceof GatewayCertError ? err.message : String((err as Error).message ?? err);
    const from = describeSource(e.files);
    const where = "source" in from ? from.source : `${from.certFile}, ${from.keyFile}`;
    const message = `TLSCertificate ${ref} (${where}): ${why}; ${
      e.good
        ? `the listener keeps serving the last good certificate (${e.good.fingerprint.slice(0, 23)}…, valid until ${e.good.notAfter.toISOString()})`
        : "the listener has no certificate for it, so TLS handshakes that need it fail"
    }`;
    if (e.lastError !== message || e.seen !== sig)
      this.#deps.log.error({ code: "NODEMESH_ERR_GATEWAY_CERT", certificate: ref }, message);
    e.seen = sig;
    e.lastError = message;
  }

  async #signature(files: CertFiles): Promise<string> {
    if (files.certificatePem !== undefined) return sourceKey(files); // changes only with a new config
    const one = (path: string, what: string) =>
      this.#deps.signature(path).catch((err: NodeJS.ErrnoException) => {
        throw new GatewayCertError(`cannot read ${what} ${path}: ${err.code ?? err.message}`);
      });
    const [a, b] = await Promise.all([
      one(files.certFile ?? "", "certFile"),
      one(files.keyFile ?? "", "keyFile"),
    ]);
    return `${a}|${b}`;
  }

  async #read(path: string, what: string): Promise<string> {
    try {
      return await this.#deps.readFile(path);
    } catch (err) {
      throw new GatewayCertError(
        `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }
}
