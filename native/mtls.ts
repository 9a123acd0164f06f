// Moves one workload's PeerAuthentication enforcement in the kernel (its nm_netns default and its
// nm_port_mtls entries) from what the maps hold now to a new plan, one map write at a time.
//
// Invariants: a port STRICT in both plans is never open, not even between two writes; and a failure
// leaves every port at least as strict as it was before the call. The move goes through the union of
// both plans (a port is STRICT there when it is STRICT in either): first tighten to the union (which
// may add entries and so meet a full map), then loosen to the target (updates of existing entries and
// deletes only). A failed tighten restores the previous state; a failed loosen re-tightens to the union.

/** A port whose mode differs from the workload's default. */
export interface PortMtls {
  port: number;
  strict: boolean;
}

/** One workload's enforcement: the default for every port, and the ports that differ from it. */
export interface MtlsState {
  strict: boolean;
  /** port → strict; an entry equal to the default is allowed (and kept as written). */
  ports: ReadonlyMap<number, boolean>;
}

/** The raw map writes for one workload; each returns 0 or -errno. */
export interface MtlsWrites {
  /** Writes the workload's nm_netns entry (enrolling it when absent) with this default. */
  writeDefault(strict: boolean): number;
  writePort(port: number, strict: boolean): number;
  deletePort(port: number): number;
}

/** What failed: the operation, the port it concerned (if any), and -errno. */
export interface MtlsFailure {
  op: string;
  port: number | undefined;
  errno: number;
}

const effective = (s: MtlsState, port: number): boolean => s.ports.get(port) ?? s.strict;

/** The union plan: STRICT wherever either plan is STRICT; an explicit entry for every port either names. */
export function unionOf(current: MtlsState, target: MtlsState): MtlsState {
  const ports = new Map<number, boolean>();
  for (const port of new Set([...current.ports.keys(), ...target.ports.keys()]))
    ports.set(port, effective(current, port) || effective(target, port));
  return { strict: current.strict || target.strict, ports };
}

/**
 * Moves the kernel from `from` to `target`. For a workload not enrolled yet, `from` has strict false
 * (nothing is filtered) and whatever stale port entries the map holds for it. `rewriteEntry` writes
 * the nm_netns entry even when the default does not change (enrolling, or a new outbound port); it
 * is written after the port entries. Returns undefined on success, else the first failure; see the
 * module invariant for what the kernel holds then.
 */
export function applyMtls(
  w: MtlsWrites,
  from: MtlsState,
  target: MtlsState,
  rewriteEntry: boolean,
): MtlsFailure | undefined {
  const union = unionOf(from, target);
  const failed = tighten(w, from, union, rewriteEntry);
  if (failed) {
    restore(w, from, union);
    return failed;
  }
  const loosened = loosen(w, union, target);
  if (loosened) {
    // Back to the union, which refuses plaintext wherever the current state did.
    tighten(w, target, union, false);
    return loosened;
  }
  return undefined;
}

function tighten(
  w: MtlsWrites,
  from: MtlsState,
  union: MtlsState,
  rewrite: boolean,
): MtlsFailure | undefined {
  for (const [port, strict] of union.ports) {
    if (from.ports.get(port) === strict) continue;
    const err = w.writePort(port, strict);
    if (err < 0) return { op: "add per-port PeerAuthentication entry", port, errno: err };
  }
  // The default last: ports the union names are already pinned, so raising it admits nothing.
  if (rewrite || from.strict !== union.strict) {
    const err = w.writeDefault(union.strict);
    if (err < 0) return { op: "update enrolled netns", port: undefined, errno: err };
  }
  return undefined;
}

function loosen(w: MtlsWrites, union: MtlsState, target: MtlsState): MtlsFailure | undefined {
  for (const [port, strict] of target.ports) {
    if (union.ports.get(port) === strict) continue;
    const err = w.writePort(port, strict);
    if (err < 0) return { op: "update per-port PeerAuthentication entry", port, errno: err };
  }
  // Deleted while the default is still the union's: such a port falls back to at least the target's.
  for (const port of union.ports.keys()) {
    if (target.ports.has(port)) continue;
    const err = w.deletePort(port);
    if (err < 0) return { op: "delete per-port PeerAuthentication entry", port, errno: err };
  }
  if (union.strict !== target.strict) {
    const err = w.writeDefault(target.strict);
    if (err < 0) return { op: "update enrolled netns", port: undefined, errno: err };
  }
  return undefined;
}

/**
 * Best effort back to `from` after a failed tighten: only entries the tighten may have written are
 * touched, each restored to its former value or deleted, and the default was not yet raised (it is
 * written last), so every step here returns a port to what `from` enforced. A failure here leaves
 * that port at the union's mode, which is stricter.
 */
function restore(w: MtlsWrites, from: MtlsState, union: MtlsState): void {
  for (const port of union.ports.keys()) {
    const before = from.ports.get(port);
    if (before === union.ports.get(port)) continue;
    if (before === undefined) w.deletePort(port);
    else w.writePort(port, before);
  }
}
