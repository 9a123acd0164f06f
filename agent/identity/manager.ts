// Workload certificates for the identities of the local workloads. Per identity: a key generated on the
// node, a CSR signed through the injected signer (the controller's CA), the SVID cached, and a rotation
// scheduled at `rotateFraction` of its remaining life. A failed CSR is retried with exponential backoff
// while the old certificate keeps serving as long as it is valid. Listeners get 'svid' and 'bundle' events
// so new handshakes use the new certificate; established connections are never touched.
//
// Invariants:
// - `#entries` has an entry for each identity with refs > 0 (workloads using it); release at 0;
// - at most one CSR in flight per identity (`inflight`), at most one timer per identity;
// - get() never returns an expired SVID.
import { EventEmitter } from "node:events";
import { IdentityError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { inspectCertificate, type Svid } from "../tls/svid.ts";
import { generateKeyAndCsr } from "./csr.ts";

export interface CsrSigner {
  /** `identity` is the SPIFFE ID the CSR asks for (the controller checks both agree). */
  signCsr(csrPem: string, identity: string): Promise<{ certChain: string[]; trustBundle: string[] }>;
}

export interface IdentitySettings {
  readonly rotateFraction: number;
  readonly csrRetryMinMs: number;
  readonly csrRetryMaxMs: number;
}

interface Entry {
  refs: number;
  svid: Svid | undefined;
  inflight: boolean;
  timer: NodeJS.Timeout | undefined;
  failures: number;
  waiters: { resolve: (s: Svid) => void; reject: (e: Error) => void }[];
  lastError: string | undefined;
}

export interface IdentityManagerEvents {
  svid: [spiffeId: string, svid: Svid];
  bundle: [bundle: readonly string[]];
}

export class IdentityManager extends EventEmitter<IdentityManagerEvents> {
  readonly #signer: CsrSigner;
  readonly #settings: IdentitySettings;
  readonly #log: Logger;
  readonly #entries = new Map<string, Entry>();
  #bundle: readonly string[] = [];
  #closed = false;

  constructor(signer: CsrSigner, settings: IdentitySettings, log: Logger) {
    super();
    this.#signer = signer;
    this.#settings = settings;
    this.#log = log;
  }

  /** Starts (or references) an identity; the first call requests its certificate. */
  want(spiffeId: string): void {
    const e = this.#entries.get(spiffeId);
    if (e) {
      e.refs++;
      return;
    }
    const entry: Entry = {
      refs: 1,
      svid: undefined,
      inflight: false,
      timer: undefined,
      failures: 0,
      waiters: [],
      lastError: undefined,
    };
    this.#entries.set(spiffeId, entry);
    void this.#refresh(spiffeId, entry);
  }

  release(spiffeId: string): void {
    const e = this.#entries.get(spiffeId);
    if (!e || --e.refs > 0) return;
    clearTimeout(e.timer);
    this.#entries.delete(spiffeId);
    for (const w of e.waiters) w.reject(new IdentityError(`identity ${spiffeId} was released`));
  }

  /** The current valid SVID, if any. */
  get(spiffeId: string): Svid | undefined {
    const svid = this.#entries.get(spiffeId)?.svid;
    return svid && svid.notAfter > Date.now() ? svid : undefined;
  }

  /** Resolves with a valid SVID as soon as there is one. */
  ready(spiffeId: string): Promise<Svid> {
    const e = this.#entries.get(spiffeId);
    if (!e) return Promise.reject(new IdentityError(`identity ${spiffeId} is not managed on this node`));
    const svid = this.get(spiffeId);
    if (svid) return Promise.resolve(svid);
    return new Promise((resolve, reject) => e.waiters.push({ resolve, reject }));
  }

  get bundle(): readonly string[] {
    return this.#bundle;
  }

  /** Applies a trust bundle pushed by the controller (or returned with a certificate). */
  setTrustBundle(bundle: readonly string[]): void {
    if (bundle.length === 0 || sameBundle(bundle, this.#bundle)) return;
    this.#bundle = Object.freeze([...bundle]);
    this.emit("bundle", this.#bundle);
  }

  /** Every identity has a valid certificate (readiness). */
  allReady(): boolean {
    for (const id of this.#entries.keys()) if (!this.get(id)) return false;
    return true;
  }

  dump(): { spiffeId: string; notBefore?: string; notAfter?: string; lastError?: string }[] {
    return [...this.#entries].map(([spiffeId, e]) => ({
      spiffeId,
      ...(e.svid && {
        notBefore: new Date(e.svid.notBefore).toISOString(),
        notAfter: new Date(e.svid.notAfter).toISOString(),
      }),
      ...(e.lastError && { lastError: e.lastError }),
    }));
  }

  identities(): IterableIterator<string> {
    return this.#entries.keys();
  }

  close(): void {
    this.#closed = true;
    for (const id of [...this.#entries.keys()]) {
      const e = this.#entries.get(id);
      if (e) e.refs = 1;
      this.release(id);
    }
  }

  async #refresh(spiffeId: string, e: Entry): Promise<void> {
    if (e.inflight || this.#closed) return;
    e.inflight = true;
    e.timer = undefined;
    try {
      const { keyPem, csrPem } = await generateKeyAndCsr(spiffeId);
      const { certChain, trustBundle } = await this.#signer.signCsr(csrPem, spiffeId);
      const leaf = certChain[0];
      if (!leaf) throw new IdentityError("the CA returned an empty certificate chain");
      const info = inspectCertificate(leaf);
      if (info.spiffeId !== spiffeId) {
        throw new IdentityError(
          `the CA issued ${info.spiffeId ?? "no SPIFFE ID"} for a request for ${spiffeId}`,
        );
      }
      const svid: Svid = Object.freeze({
        spiffeId,
        keyPem,
        certChain,
        notBefore: info.notBefore,
        notAfter: info.notAfter,
      });
      if (this.#entries.get(spiffeId) !== e) return; // released meanwhile
      this.setTrustBundle(trustBundle);
      e.svid = svid;
      e.failures = 0;
      e.lastError = undefined;
      this.#schedule(spiffeId, e, this.#rotationDelay(svid));
      for (const w of e.waiters.splice(0)) w.resolve(svid);
      this.emit("svid", spiffeId, svid);
      this.#log.info(
        { spiffeId, notAfter: new Date(svid.notAfter).toISOString() },
        "workload certificate issued",
      );
    } catch (err) {
      if (this.#entries.get(spiffeId) !== e) return;
      e.failures++;
      e.lastError = (err as Error).message;
      const delay = Math.min(
        this.#settings.csrRetryMaxMs,
        this.#settings.csrRetryMinMs * 2 ** (e.failures - 1),
      );
      // Keep the old certificate; try again before it expires when possible.
      const untilExpiry = e.svid ? e.svid.notAfter - Date.now() : Infinity;
      const next = Math.max(0, Math.min(delay, untilExpiry > 0 ? untilExpiry / 2 : delay));
      this.#log.warn(
        { spiffeId, err, retryInMs: next },
        "certificate request failed; keeping the current certificate while valid, check the controller",
      );
      this.#schedule(spiffeId, e, next);
    } finally {
      e.inflight = false;
    }
  }

  #rotationDelay(svid: Svid): number {
    const start = Math.max(svid.notBefore, Date.now() - 1000);
    return Math.max(0, start + (svid.notAfter - start) * this.#settings.rotateFraction - Date.now());
  }

  #schedule(spiffeId: string, e: Entry, delayMs: number): void {
    clearTimeout(e.timer);
    e.timer = setTimeout(() => void this.#refresh(spiffeId, e), delayMs);
    e.timer.unref();
  }
}

function sameBundle(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((p, i) => p === b[i]);
}
