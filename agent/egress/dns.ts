// DNS for ExternalServices with `resolution: DNS`: the agent resolves their hosts itself, because capture
// and REGISTRY_ONLY decide by the address an application connects to, and that address came from the
// application's own lookup of the same name. Answers are refreshed on a period and handed to the view
// (MeshViewOptions.resolved) whenever they change.
//
// Invariants: a failed lookup keeps the host's last good answer (a DNS outage does not cut traffic that
// was known); a host never answered has no address, so it is neither captured nor allowed (fail closed);
// hosts no longer wanted are forgotten at the next `want()`.
import type { Logger } from "../log.ts";

/** IPv4 addresses of a host; what the application's getaddrinfo() would give (so /etc/hosts counts). */
export type Lookup = (host: string) => Promise<string[]>;

// getBuiltinModule keeps node:dns out of the module graph of tests that inject a lookup.
const defaultLookup: Lookup = async (host) => {
  const { lookup } = process.getBuiltinModule("node:dns").promises;
  const answers = await lookup(host, { all: true, family: 4 });
  return answers.map((a) => a.address);
};

export interface HostResolverOptions {
  readonly lookup?: Lookup;
  /** How often answers are refreshed; resolvers cache by TTL, so this bounds staleness, not load. */
  readonly refreshMs?: number;
  readonly log: Logger;
  /** Called when any host's answer changed (not on every refresh). */
  readonly onChange: () => void;
}

/** Istio's DNS proxy and Envoy's STRICT_DNS clusters refresh every 5 s by default; we are less eager. */
export const DEFAULT_DNS_REFRESH_MS = 30_000;

export class HostResolver {
  readonly #lookup: Lookup;
  readonly #opts: HostResolverOptions;
  readonly #answers = new Map<string, readonly string[]>();
  #hosts: readonly string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(opts: HostResolverOptions) {
    this.#opts = opts;
    this.#lookup = opts.lookup ?? defaultLookup;
  }

  /** The current answers, by host (shared, read-only: copy before keeping across changes). */
  get answers(): ReadonlyMap<string, readonly string[]> {
    return this.#answers;
  }

  /** Sets the hosts to keep resolved; resolves new ones at once. Resolves when that round is done. */
  want(hosts: readonly string[]): Promise<void> {
    const wanted = new Set(hosts);
    let changed = false;
    for (const h of this.#answers.keys())
      if (!wanted.has(h)) {
        this.#answers.delete(h);
        changed = true;
      }
    this.#hosts = [...wanted];
    if (changed) this.#opts.onChange();
    this.#schedule();
    const fresh = this.#hosts.filter((h) => !this.#answers.has(h));
    return fresh.length > 0 ? this.refresh(fresh) : Promise.resolve();
  }

  /** Resolves `hosts` (default: every wanted host) once; rounds never overlap. */
  async refresh(hosts: readonly string[] = this.#hosts): Promise<void> {
    while (this.#running) await this.#running;
    this.#running = this.#round(hosts);
    try {
      await this.#running;
    } finally {
      this.#running = undefined;
    }
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #round(hosts: readonly string[]): Promise<void> {
    let changed = false;
    await Promise.all(
      hosts.map(async (host) => {
        try {
          const got = [...new Set(await this.#lookup(host))].sort();
          if (this.#closed || !this.#hosts.includes(host)) return;
          const had = this.#answers.get(host);
          if (had && had.length === got.length && had.every((a, i) => a === got[i])) return;
          this.#answers.set(host, Object.freeze(got));
          changed = true;
        } catch (err) {
          this.#opts.log.warn(
            { host, err: (err as Error).message, kept: this.#answers.get(host) ?? [] },
            "cannot resolve external service host; keeping its last addresses (none: its connections are refused)",
          );
        }
      }),
    );
    if (changed && !this.#closed) this.#opts.onChange();
  }

  #schedule(): void {
    if (this.#closed) return;
    if (this.#hosts.length === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.refresh(), this.#opts.refreshMs ?? DEFAULT_DNS_REFRESH_MS);
    this.#timer.unref();
  }
}
