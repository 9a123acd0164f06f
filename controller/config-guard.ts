// The removal guard: whether a valid configuration may replace the one being served without the
// operator confirming it. Removing a WorkloadEntry releases the workload from the mesh (its DENY
// policies and STRICT mTLS stop applying), and removing a policy lifts it, so a change that
// removes every workload, or more than a set fraction of all resources at once, is held back: it
// is what a truncated file, a half-finished generator or a wrong directory looks like, far more
// often than an intended decommission. The operator applies a held change with SIGHUP (a forced
// reload). Pure: no I/O, the caller logs and counts.

/** Default of --max-removal-percent: a change removing more than half the resources waits. */
export const DEFAULT_MAX_REMOVAL_PERCENT = 50;

export interface RemovalHold {
  /** Resources served now that the new configuration does not have. */
  removed: number;
  /** Resources served now. */
  served: number;
  /** Removed resources by kind, e.g. { WorkloadEntry: 3 }. */
  byKind: Record<string, number>;
  /** One line for the log and the reload result. */
  message: string;
}

function kindOf(key: string): string {
  return key.slice(0, key.indexOf("/"));
}

function countWorkloads(keys: Iterable<string>): number {
  let n = 0;
  for (const k of keys) if (kindOf(k) === "WorkloadEntry") n += 1;
  return n;
}

/**
 * The hold, when replacing `served` (resource keys of the configuration being served; undefined
 * before the first one) by `next` must wait for the operator; undefined when it may go ahead.
 * `maxRemovalPercent` 100 turns the fraction rule off; removing every workload is always held.
 */
export function removalHold(
  served: ReadonlySet<string> | ReadonlyMap<string, unknown> | undefined,
  next: ReadonlySet<string> | ReadonlyMap<string, unknown>,
  maxRemovalPercent: number,
): RemovalHold | undefined {
  if (!served || served.size === 0) return undefined;
  const byKind: Record<string, number> = {};
  let removed = 0;
  for (const k of served.keys()) {
    if (next.has(k)) continue;
    removed += 1;
    const kind = kindOf(k);
    byKind[kind] = (byKind[kind] ?? 0) + 1;
  }
  if (removed === 0) return undefined;
  const servedWorkloads = countWorkloads(served.keys());
  const everyWorkload = servedWorkloads > 0 && countWorkloads(next.keys()) === 0;
  const percent = (removed / served.size) * 100;
  if (!everyWorkload && percent <= maxRemovalPercent) return undefined;
  const kinds = Object.entries(byKind)
    .map(([kind, n]) => `${n} ${kind}`)
    .join(", ");
  const why = everyWorkload
    ? `every WorkloadEntry (${servedWorkloads}) would leave the mesh`
    : `${percent.toFixed(0)}% is more than --max-removal-percent ${maxRemovalPercent}`;
  return {
    removed,
    served: served.size,
    byKind,
    message:
      `configuration held back: it removes ${removed} of ${served.size} resources (${kinds}) and ${why}; ` +
      `still serving the last good one. If the removal is intended, send SIGHUP to the controller to apply it`,
  };
}
