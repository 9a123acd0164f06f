// A weighted split is random per request, so a test of its share must allow for chance. These
// bounds are ±6 standard deviations of Binomial(n, p): a correct split fails them with a
// probability below 1e-8, while a wrong weight (or no split at all) still falls far outside.
import { expect } from "vitest";

export function expectBinomialShare(hits: number, n: number, p: number, what: string): void {
  const sigma = Math.sqrt(n * p * (1 - p));
  const low = Math.max(0, n * p - 6 * sigma);
  const high = Math.min(n, n * p + 6 * sigma);
  expect(
    hits,
    `${what}: ${hits} of ${n}, expected ${n * p} ± ${(6 * sigma).toFixed(1)}`,
  ).toBeGreaterThanOrEqual(low);
  expect(hits, `${what}: ${hits} of ${n}, expected ${n * p} ± ${(6 * sigma).toFixed(1)}`).toBeLessThanOrEqual(
    high,
  );
}
