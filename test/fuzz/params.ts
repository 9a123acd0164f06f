// Run counts for the property-based fuzz tests. In the normal suite each property runs its own small
// count, chosen so the whole fuzz set stays well under a minute on a 2-core machine; `npm run fuzz`
// sets FUZZ_RUNS to run every property that many times instead. FUZZ_SEED replays a failure that
// fast-check reported (it prints the seed and the counterexample's path).
import type { Parameters } from "fast-check";

function envInt(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return n;
}

const RUNS = envInt("FUZZ_RUNS");
const SEED = envInt("FUZZ_SEED");

if (RUNS !== undefined && RUNS < 1) throw new Error(`FUZZ_RUNS must be at least 1, got ${RUNS}`);

/** True under `npm run fuzz`: tests that scale a fixed budget (sockets, servers) may grow it. */
export const LONG_RUN = RUNS !== undefined;

/** fast-check parameters for one property: `runs` in the normal suite, FUZZ_RUNS in long runs. */
export function fuzz<T = unknown>(runs: number): Parameters<T> {
  return {
    numRuns: RUNS ?? runs,
    ...(SEED !== undefined && { seed: SEED }),
  };
}

/** The vitest timeout of one property: generous for long runs, the suite default otherwise. */
export const FUZZ_TIMEOUT_MS = LONG_RUN ? 0 : 60_000;
