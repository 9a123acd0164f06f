import { describe, expect, it } from "vitest";
import * as check from "../../../native/validate.ts";

const invalid = expect.objectContaining({ code: "NODEMESH_ERR_NATIVE_INVALID_ARGUMENT" });

describe("input validation", () => {
  it.each(["10.96.0.10", "0.0.0.0", "255.255.255.255", "127.0.0.1"])("accepts ipv4 %s", (ip) => {
    expect(check.checkIpv4(ip, "address")).toBe(ip);
  });

  it.each(["10.96.0.300", "10.96.0", "010.1.1.1", "::1", "", " 10.0.0.1", 167772161, undefined])(
    "rejects address %j",
    (ip) => {
      expect(() => check.checkIpv4(ip, "meshed destination address")).toThrow(invalid);
      expect(() => check.checkIpv4(ip, "meshed destination address")).toThrow(
        /is not an ipv4 address; use dotted-quad/,
      );
    },
  );

  it("checks ports, with 0 only where it means every port", () => {
    expect(check.checkPort(1, "p")).toBe(1);
    expect(check.checkPort(65535, "p")).toBe(65535);
    expect(check.checkPort(0, "p", true)).toBe(0);
    for (const bad of [0, -1, 65536, 1.5, "80", Number.NaN])
      expect(() => check.checkPort(bad, "listen port")).toThrow(invalid);
    expect(() => check.checkPort(70000, "listen port", true)).toThrow(/from 0 to 65535/);
  });

  it("parses cidrs, a bare address being a /32", () => {
    expect(check.checkCidr("10.0.0.0/8")).toEqual({ address: "10.0.0.0", prefix: 8 });
    expect(check.checkCidr("10.1.2.3")).toEqual({ address: "10.1.2.3", prefix: 32 });
    for (const bad of ["10.0.0.0/33", "10.0.0.0/-1", "10.0.0/8", "10.0.0.0/8/1", "x/8", 8]) {
      expect(() => check.checkCidr(bad)).toThrow(invalid);
    }
  });

  it("accepts only absolute paths without '..'", () => {
    expect(check.checkAbsolutePath("/sys/fs/bpf/nodemesh", "pin directory")).toBe("/sys/fs/bpf/nodemesh");
    for (const bad of ["relative/dir", "/sys/fs/bpf/../etc", "", 3, "/a\0b"]) {
      expect(() => check.checkAbsolutePath(bad, "pin directory")).toThrow(invalid);
    }
  });

  it("checks marks, fds and backlogs", () => {
    expect(check.checkMark(0x539)).toBe(0x539);
    expect(() => check.checkMark(2 ** 32)).toThrow(invalid);
    expect(() => check.checkFd(-1)).toThrow(/pass socket._handle.fd/);
    expect(check.checkBacklog(511)).toBe(511);
    expect(() => check.checkBacklog(0)).toThrow(invalid);
  });
});
