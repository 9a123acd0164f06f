// TrafficPolicy.spec.timeout, retries and circuitBreaker: valid documents, and each rejection names
// the field.
import { describe, expect, test } from "vitest";
import { formatIssue, validateDocument } from "../../../controller/api/index.ts";

const doc = (spec: object) => ({
  apiVersion: "nodemesh.io/v1alpha1",
  kind: "TrafficPolicy",
  metadata: { name: "web" },
  spec: { targetRefs: [{ kind: "Service", name: "web" }], ...spec },
});

function errors(spec: object): string[] {
  const r = validateDocument(doc(spec), "mesh.yaml", 1);
  return r.ok
    ? []
    : r.issues.map((i) => formatIssue(i).replace("mesh.yaml: document 1 (TrafficPolicy default/web): ", ""));
}

describe("valid resilience settings", () => {
  test.each([
    { timeout: "10s" },
    { timeout: "0s" },
    { retries: { attempts: 0 } },
    {
      retries: {
        attempts: 3,
        codes: [429, 503],
        perTryTimeout: "500ms",
        backoff: { baseInterval: "100ms", maxInterval: "1s" },
        retryNonIdempotent: true,
        maxBodyBytes: 65536,
        budget: { retryRatio: 0.2, minRetriesPerSecond: 10, ttl: "10s" },
      },
    },
    {
      circuitBreaker: {
        consecutiveFailures: 5,
        failures: 5,
        interval: "10s",
        openTime: "30s",
        maxOpenTime: "5m",
        halfOpenSuccesses: 2,
      },
    },
  ])("%j", (spec) => expect(errors(spec)).toEqual([]));
});

describe("rejections name the field", () => {
  test.each<[object, RegExp]>([
    [{ timeout: "10" }, /spec\.timeout: must be a duration/],
    [{ retries: { attempts: 11 } }, /spec\.retries\.attempts: must be at most 10/],
    [{ retries: { attempts: -1 } }, /spec\.retries\.attempts: must be >= 0/],
    [{ retries: { attempts: 1.5 } }, /spec\.retries\.attempts: must be an integer/],
    [{ retries: { codes: [200] } }, /spec\.retries\.codes\[0\]: must be a 4xx or 5xx status/],
    [{ retries: { backoff: { base: "1s" } } }, /spec\.retries\.backoff: .*base/],
    [{ retries: { maxBodyBytes: 1e9 } }, /spec\.retries\.maxBodyBytes: must be at most 16777216/],
    [{ retries: { budget: { retryRatio: -0.1 } } }, /spec\.retries\.budget\.retryRatio: must be >= 0/],
    [{ retries: { retryOn: "5xx" } }, /spec\.retries: .*retryOn/],
    [
      { circuitBreaker: { halfOpenSuccesses: 0 } },
      /spec\.circuitBreaker\.halfOpenSuccesses: must be at least 1/,
    ],
    [{ circuitBreaker: { openTime: "soon" } }, /spec\.circuitBreaker\.openTime: must be a duration/],
  ])("%j", (spec, want) => {
    const errs = errors(spec);
    expect(errs.length).toBeGreaterThan(0);
    expect(errs.join("\n")).toMatch(want);
  });
});

describe("fault injection and local rate limit settings", () => {
  test.each([
    { fault: { delay: { fixedDelay: "2s", percentage: 10 } } },
    { fault: { abort: { httpStatus: 503, percentage: 5 } } },
    { fault: { abort: { grpcStatus: 14 } }, rateLimit: { maxTokens: 100, fillInterval: "1s" } },
    { rateLimit: { maxTokens: 10, tokensPerFill: 5, fillInterval: "500ms" } },
  ])("accepts %j", (spec) => expect(errors(spec)).toEqual([]));

  test.each([
    [{ fault: {} }, /spec\.fault.*fault needs delay or abort/],
    [{ fault: { abort: { percentage: 10 } } }, /spec\.fault\.abort.*abort needs httpStatus or grpcStatus/],
    [{ fault: { abort: { httpStatus: 700 } } }, /spec\.fault\.abort\.httpStatus.*HTTP status/],
    [
      { fault: { delay: { fixedDelay: "1s", percentage: 150 } } },
      /spec\.fault\.delay\.percentage.*percentage/,
    ],
    [{ rateLimit: { maxTokens: 0, fillInterval: "1s" } }, /spec\.rateLimit\.maxTokens.*at least 1/],
    [{ rateLimit: { maxTokens: 1, fillInterval: "0s" } }, /spec\.rateLimit\.fillInterval.*longer than 0s/],
  ])("rejects %j naming the field", (spec, message) => {
    expect(errors(spec).join("\n")).toMatch(message);
  });
});
