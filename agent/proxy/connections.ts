// Live inbound connections, so that a policy change can close the ones it no longer allows (ztunnel's
// ConnectionManager + PolicyWatcher: "late rejection"). Each entry knows what authorization needs and
// how to cut its connection; the app calls `recheck` after every config change.
import type { AuthzDecision, AuthzRequest } from "../policy/authz.ts";

export interface TrackedConnection {
  /** Local workload uid the connection terminates at. */
  readonly uid: string;
  readonly request: AuthzRequest;
  /** Destroys both sides and records `reason` in the access log. */
  close(reason: string): void;
}

export class ConnectionManager {
  readonly #live = new Set<TrackedConnection>();

  add(c: TrackedConnection): void {
    this.#live.add(c);
  }

  remove(c: TrackedConnection): void {
    this.#live.delete(c);
  }

  get size(): number {
    return this.#live.size;
  }

  /** Re-evaluates every live connection; closes and returns the number of those now denied. */
  recheck(decide: (c: TrackedConnection) => AuthzDecision): number {
    let closed = 0;
    for (const c of [...this.#live]) {
      const d = decide(c);
      if (d.allowed) continue;
      this.#live.delete(c);
      c.close(`connection closed by policy change: ${d.reason}`);
      closed++;
    }
    return closed;
  }

  /** Closes everything (release of a workload, or shutdown). */
  closeWhere(pred: (c: TrackedConnection) => boolean, reason: string): void {
    for (const c of [...this.#live]) {
      if (!pred(c)) continue;
      this.#live.delete(c);
      c.close(reason);
    }
  }

  dump(): { uid: string; principal: string | undefined; sourceIp: string; port: number }[] {
    return [...this.#live].map((c) => ({
      uid: c.uid,
      principal: c.request.principal,
      sourceIp: c.request.sourceIp,
      port: c.request.destinationPort,
    }));
  }
}
