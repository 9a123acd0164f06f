// Rejected handshakes: classified by reason, every one counted, at most one log line per reason per
// interval, the rest summed up in one line when the interval is over.
import { afterEach, describe, expect, it, vi } from "vitest";
import { classifyTlsFailure, TlsFailureReporter } from "../../../../../agent/proxy/tunnel/tls-failures.ts";
import type { Logger } from "../../../../../agent/log.ts";

describe("classifyTlsFailure", () => {
  it("maps Node's codes and the certificate verdict to a reason", () => {
    expect(classifyTlsFailure({ code: "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE" }, null)).toBe(
      "no_certificate",
    );
    expect(classifyTlsFailure({ code: "ECONNRESET" }, "UNABLE_TO_VERIFY_LEAF_SIGNATURE")).toBe("unknown_ca");
    expect(classifyTlsFailure({ code: "ECONNRESET" }, "SELF_SIGNED_CERT_IN_CHAIN")).toBe("unknown_ca");
    expect(classifyTlsFailure({ code: "ECONNRESET" }, "CERT_HAS_EXPIRED")).toBe("expired");
    expect(classifyTlsFailure({ code: "ECONNRESET" }, new Error("CERT_NOT_YET_VALID"))).toBe("expired");
    expect(classifyTlsFailure({ code: "ERR_SSL_UNSUPPORTED_PROTOCOL" }, null)).toBe("protocol");
    expect(classifyTlsFailure({ code: "ERR_SSL_HTTP_REQUEST" }, undefined)).toBe("protocol");
    expect(classifyTlsFailure({ code: "ECONNRESET" }, null)).toBe("other");
    expect(classifyTlsFailure({}, null)).toBe("other");
  });
});

describe("TlsFailureReporter", () => {
  afterEach(() => void vi.useRealTimers());

  function reporter() {
    const lines: { obj: Record<string, unknown>; msg: string }[] = [];
    const log = {
      info: (obj: Record<string, unknown>, msg: string) => lines.push({ obj, msg }),
    } as unknown as Logger;
    const counted: string[] = [];
    const r = new TlsFailureReporter({ log, count: (reason) => counted.push(reason), intervalMs: 1000 });
    return { r, lines, counted };
  }
  const event = (reason: "unknown_ca" | "protocol", peer: string) =>
    ({ reason, code: "ECONNRESET", verdict: undefined, peer, workload: "default/echo" }) as const;

  it("counts every failure, logs the first of a reason at once and sums up the rest after the interval", () => {
    vi.useFakeTimers();
    const { r, lines, counted } = reporter();
    for (let i = 0; i < 5; i++) r.report(event("unknown_ca", `10.0.0.${i}`));
    r.report(event("protocol", "10.0.0.9"));
    expect(counted).toEqual([
      "unknown_ca",
      "unknown_ca",
      "unknown_ca",
      "unknown_ca",
      "unknown_ca",
      "protocol",
    ]);
    expect(lines.map((l) => [l.obj["reason"], l.obj["count"]])).toEqual([
      ["unknown_ca", 1],
      ["protocol", 1],
    ]);
    vi.advanceTimersByTime(1000);
    expect(lines[2]?.obj).toMatchObject({ reason: "unknown_ca", count: 4, peer: "10.0.0.4" });
    expect(lines[2]?.msg).toBe("rejected 4 TLS handshakes at tunnel listeners: unknown_ca (last shown)");
    expect(lines).toHaveLength(3);
  });

  it("close() writes what is still pending", () => {
    vi.useFakeTimers();
    const { r, lines } = reporter();
    r.report(event("protocol", "a"));
    r.report(event("protocol", "b"));
    r.close();
    expect(lines.map((l) => l.obj["count"])).toEqual([1, 1]);
    vi.advanceTimersByTime(5000);
    expect(lines).toHaveLength(2);
  });
});
