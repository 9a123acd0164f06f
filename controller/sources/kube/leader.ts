// Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection does: the
// leader renews the Lease every retry period; a standby takes it over once the holder has not
// renewed for a whole lease duration, as measured by the standby's own clock since it last saw
// the record change (so clock skew between replicas does not matter). Every update carries the
// resourceVersion it read, so two replicas can never both win one round.
//
// Only the leader writes status and Events; every replica watches and serves agents (the
// standby "serves reads"). A leader that cannot renew within the renew deadline steps down first,
// so two replicas never both believe they lead for longer than the deadline's slack.
import { CoordinationV1Api } from "@kubernetes/client-node";
import type { KubeConfig, V1Lease } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { describe } from "./informers.ts";

export interface LeaderOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Lease name; default "nodemesh-controller". */
  name?: string;
  /** This replica's identity (pod name). */
  identity: string;
  log: Logger;
  /** client-go defaults: 15s lease, 10s renew deadline, 2s retry. */
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onChange?: (leading: boolean) => void;
  now?: () => number;
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits (the server insists). */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export class LeaderElector {
  readonly #api: CoordinationV1Api;
  readonly #opts: LeaderOptions;
  readonly #now: () => number;
  #leading = false;
  #timer: NodeJS.Timeout | undefined;
  #stopped = true;
  /** What we last saw of the record, and when (by our clock). */
  #observed: { key: string; at: number } | undefined;
  #lastRenew = 0;
  /** The round in flight, so that stop() releases only after it and never races its write. */
  #round: Promise<void> | undefined;

  constructor(opts: LeaderOptions) {
    this.#opts = opts;
    this.#api = opts.kubeConfig.makeApiClient(CoordinationV1Api);
    this.#now = opts.now ?? Date.now;
  }

  get leading(): boolean {
    return this.#leading;
  }

  start(): void {
    this.#stopped = false;
    this.#round = this.#tick();
  }

  /** Stops; a leader releases the Lease so a standby takes over at once, not after it expires. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#round;
    if (!this.#leading) return;
    this.#set(false);
    try {
      const lease = await this.#read();
      if (lease?.spec?.holderIdentity === this.#opts.identity) {
        lease.spec.holderIdentity = "";
        lease.spec.leaseDurationSeconds = 1;
        await this.#replace(lease);
      }
    } catch (err) {
      this.#opts.log.warn(
        { err: describe(err) },
        "could not release the leader lease; the standby waits for it to expire",
      );
    }
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    try {
      this.#set(await this.#tryAcquireOrRenew());
    } catch (err) {
      const deadline = this.#opts.renewDeadlineMs ?? 10_000;
      if (this.#leading && this.#now() - this.#lastRenew > deadline) {
        this.#opts.log.error(
          { err: describe(err) },
          "could not renew the leader lease in time; stepping down",
        );
        this.#set(false);
      } else this.#opts.log.warn({ err: describe(err) }, "leader lease round failed");
    }
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#round = this.#tick();
    }, this.#opts.retryPeriodMs ?? 2_000);
    this.#timer.unref();
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const now = this.#now();
    const durationS = Math.ceil((this.#opts.leaseDurationMs ?? 15_000) / 1000);
    const me = this.#opts.identity;
    const lease = await this.#read();
    if (!lease) {
      await this.#api.createNamespacedLease({
        namespace: this.#opts.namespace,
        body: {
          metadata: { name: this.#name(), namespace: this.#opts.namespace },
          spec: {
            holderIdentity: me,
            leaseDurationSeconds: durationS,
            acquireTime: microTime(now) as never,
            renewTime: microTime(now) as never,
            leaseTransitions: 0,
          },
        },
      });
      return this.#renewed(now, true);
    }
    const spec = lease.spec ?? {};
    const key = `${spec.holderIdentity}/${String(spec.renewTime)}`;
    if (this.#observed?.key !== key) this.#observed = { key, at: now };
    const holder = spec.holderIdentity ?? "";
    const expired = now - this.#observed.at > (spec.leaseDurationSeconds ?? durationS) * 1000;
    if (holder !== "" && holder !== me && !expired) return false;
    const taking = holder !== me;
    lease.spec = {
      ...spec,
      holderIdentity: me,
      leaseDurationSeconds: durationS,
      renewTime: microTime(now) as never,
      ...(taking
        ? { acquireTime: microTime(now) as never, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }
        : {}),
    };
    await this.#replace(lease);
    return this.#renewed(now, taking);
  }

  #renewed(now: number, acquired: boolean): boolean {
    this.#lastRenew = now;
    if (acquired)
      this.#opts.log.info({ lease: this.#name(), identity: this.#opts.identity }, "became the leader");
    return true;
  }

  #set(leading: boolean): void {
    if (leading === this.#leading) return;
    this.#leading = leading;
    this.#opts.onChange?.(leading);
  }

  #name(): string {
    return this.#opts.name ?? "nodemesh-controller";
  }

  async #read(): Promise<V1Lease | undefined> {
    try {
      return await this.#api.readNamespacedLease({ name: this.#name(), namespace: this.#opts.namespace });
    } catch (err) {
      if ((err as { code?: unknown }).code === 404) return undefined;
      throw err;
    }
  }

  async #replace(lease: V1Lease): Promise<void> {
    // Dates read back from the server must go out as MicroTime strings too.
    const spec = lease.spec ?? {};
    for (const k of ["acquireTime", "renewTime"] as const) {
      const v: unknown = spec[k];
      if (v instanceof Date) (spec as Record<string, unknown>)[k] = microTime(v.getTime());
    }
    await this.#api.replaceNamespacedLease({
      name: this.#name(),
      namespace: this.#opts.namespace,
      body: lease,
    });
  }
}
