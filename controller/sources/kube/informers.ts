// One list+watch per resource type, over @kubernetes/client-node's informer, with what it lacks
// for a controller that must not go blind: a restart with capped, jittered exponential backoff
// after any list or watch error (the client already relists on 410 Gone and reconnects after a
// clean watch end), a promise for the first complete list, and one change callback per event.
//
// Invariant: after `synced` resolves, `list()` holds every object of the last successful list
// plus the watch events since; a failed watch leaves the cache as it was (stale, never empty) until
// the relist replaces it, so a flapping API server never empties the mesh's configuration.
import { ListWatch, Watch } from "@kubernetes/client-node";
import type {
  Informer,
  KubeConfig,
  KubernetesListObject,
  KubernetesObject,
  ObjectCache,
} from "@kubernetes/client-node";
import type { Logger } from "pino";

export type ChangeKind = "add" | "update" | "delete";

export interface WatchedOptions<T extends KubernetesObject> {
  /** Short name for logs: "pods", "authorizationpolicies.nodemesh.io". */
  name: string;
  /** Collection path to watch, e.g. /api/v1/pods. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  onChange: (kind: ChangeKind, obj: T) => void;
  log: Logger;
  /** Server-side filter, e.g. "type=kubernetes.io/tls" (the cache then never holds other objects). */
  fieldSelector?: string;
  /** First and maximum restart delay; defaults 500ms and 30s (client-go's reflector uses ~1s..30s). */
  backoffMs?: { initial: number; max: number };
}

export class Watched<T extends KubernetesObject> {
  readonly name: string;
  readonly #informer: Informer<T> & ObjectCache<T>;
  readonly #opts: WatchedOptions<T>;
  #delay: number;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #synced = false;
  #attempt = 0;
  #failedAttempt = -1;
  #resolveSynced: (() => void) | undefined;
  readonly synced: Promise<void>;
  /** Consecutive failures since the last successful (re)start, for metrics and tests. */
  failures = 0;

  constructor(kc: KubeConfig, opts: WatchedOptions<T>) {
    this.name = opts.name;
    this.#opts = opts;
    this.#delay = opts.backoffMs?.initial ?? 500;
    this.synced = new Promise((resolve) => (this.#resolveSynced = resolve));
    // makeInformer() without its autostart, plus the field selector it does not pass on.
    this.#informer = new ListWatch(opts.path, new Watch(kc), opts.list, false, undefined, opts.fieldSelector);
    this.#informer.on("add", (o) => opts.onChange("add", o));
    this.#informer.on("update", (o) => opts.onChange("update", o));
    this.#informer.on("delete", (o) => opts.onChange("delete", o));
    this.#informer.on("error", (err: unknown) => this.#failed(err));
  }

  list(namespace?: string): readonly T[] {
    return this.#informer.list(namespace);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#informer.get(name, namespace);
  }

  start(): void {
    this.#stopped = false;
    this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#informer.stop();
  }

  #run(): void {
    const attempt = ++this.#attempt;
    // The informer's start() resolves once the list is in the cache and the watch is open, but also
    // after a failed list (which it reports through "error" only): hence the attempt numbers.
    this.#informer.start().then(
      () => {
        if (this.#stopped || this.#failedAttempt === attempt) return;
        this.failures = 0;
        this.#delay = this.#opts.backoffMs?.initial ?? 500;
        if (!this.#synced) {
          this.#synced = true;
          this.#resolveSynced?.();
        }
      },
      (err: unknown) => this.#failed(err),
    );
  }

  #failed(err: unknown): void {
    if (this.#stopped || this.#failedAttempt === this.#attempt) return;
    this.#failedAttempt = this.#attempt;
    this.failures += 1;
    const max = this.#opts.backoffMs?.max ?? 30_000;
    // Full jitter in the upper half: replicas that lost the server together do not return together.
    const wait = Math.round(this.#delay * (0.5 + Math.random() / 2));
    this.#delay = Math.min(this.#delay * 2, max);
    this.#opts.log.warn(
      { resource: this.name, failures: this.failures, retryInMs: wait, err: describe(err) },
      "kubernetes list/watch failed; keeping the last known objects and retrying",
    );
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#run(), wait);
    this.#timer.unref();
  }
}

/** A short message from the client's errors, which may be ApiException, fetch or abort errors. */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const first = err.message.split("\n")[0] ?? "";
    return code !== undefined ? `${String(code)}: ${first.slice(0, 300)}` : first.slice(0, 300);
  }
  return String(err);
}
