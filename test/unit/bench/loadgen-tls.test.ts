// HTTPS in the load generator's pure parts: `--ca` turns TLS on with an absolute CA path, and the
// URL that curl and wrk call follows the path's scheme.
import { describe, expect, it } from "vitest";
import { LoadgenArgsError, parseLoadgenArgs } from "../../../bench/loadgen-core.ts";
import { urlOf } from "../../../bench/measure.ts";

describe("HTTPS load", () => {
  it("--ca sets the CA file; without it the generator speaks plain HTTP", () => {
    expect(parseLoadgenArgs(["--target", "10.0.0.1:443", "--ca", "/tmp/x/ca.pem"]).ca).toBe("/tmp/x/ca.pem");
    expect(parseLoadgenArgs(["--target", "10.0.0.1:443", "--ca=/tmp/ca.pem"]).ca).toBe("/tmp/ca.pem");
    expect(parseLoadgenArgs(["--target", "10.1.2.2:8080"]).ca).toBeUndefined();
  });

  it("refuses a relative CA path, naming the option", () => {
    expect(() => parseLoadgenArgs(["--target", "x:1", "--ca", "ca.pem"])).toThrow(LoadgenArgsError);
    expect(() => parseLoadgenArgs(["--target", "x:1", "--ca", "ca.pem"])).toThrow(
      /--ca ca\.pem: expected the absolute path of a PEM CA file/,
    );
    expect(() => parseLoadgenArgs(["--target", "x:1", "--ca"])).toThrow(/--ca needs a value/);
  });

  it("curl and wrk call https:// for a TLS path, http:// otherwise", () => {
    expect(urlOf({ target: "10.0.0.1:443", tls: { ca: "/tmp/ca.pem" } })).toBe("https://10.0.0.1:443/");
    expect(urlOf({ target: "10.1.2.2:8080" })).toBe("http://10.1.2.2:8080/");
  });
});
