// Regression (found by test/fuzz/http.fuzz.test.ts): a reason with a lone UTF-16 surrogate made
// localReply throw URIError while percent-encoding grpc-message, so the agent's own answer failed.
import { describe, expect, test } from "vitest";
import { localReply } from "../../../../agent/http/exchange.ts";

describe("localReply", () => {
  test("a gRPC reply percent-encodes any reason, a lone surrogate as U+FFFD", () => {
    const r = localReply(503, "NoHealthyUpstream", "no route for a\uD800b", true);
    expect(r.status).toBe(200);
    expect(r.headers["grpc-status"]).toBe("14");
    expect(r.headers["grpc-message"]).toBe("no%20route%20for%20a%EF%BF%BDb");
    expect(decodeURIComponent(String(r.headers["grpc-message"]))).toBe("no route for a\uFFFDb");
  });

  test("an HTTP reply keeps its status and carries the reason as the body", () => {
    const r = localReply(503, "NoHealthyUpstream", "no endpoint \uDFFF", false);
    expect(r.status).toBe(503);
    expect(r.headers["content-type"]).toBe("text/plain; charset=utf-8");
  });
});
