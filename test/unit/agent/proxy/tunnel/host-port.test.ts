// "address:port" of a tunnel stream (CONNECT :authority, the per-request target): a plain decimal port.
import { describe, expect, it } from "vitest";
import { parseHostPort } from "../../../../../agent/proxy/tunnel/host-port.ts";

describe("parseHostPort", () => {
  it("takes address:port", () => {
    expect(parseHostPort("10.1.2.2:8080")).toEqual({ address: "10.1.2.2", port: 8080 });
    expect(parseHostPort("10.1.2.2:65535")).toEqual({ address: "10.1.2.2", port: 65535 });
  });

  it.each([
    "10.1.2.2:0x50",
    "10.1.2.2:+80",
    "10.1.2.2:080",
    "10.1.2.2: 80",
    "10.1.2.2:0",
    "10.1.2.2:65536",
    "10.1.2.2:",
    ":80",
    "10.1.2.2",
    undefined,
  ])("refuses %s", (a) => expect(parseHostPort(a)).toBeUndefined());
});
