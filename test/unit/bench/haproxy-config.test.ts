// HAProxy configurations of the peer-proxy paths: TCP mode unchanged, HTTP mode with HTTP/2 and
// connection reuse on the mTLS hop, and bad inputs refused with the field named.
import { describe, expect, it } from "vitest";
import { clientSideConfig, serverSideConfig } from "../../../bench/haproxy-config.ts";

const client = { certDir: "/tmp/c", listen: "10.0.0.1:15001", upstream: "10.0.0.2:15008" };
const server = { certDir: "/tmp/c", listen: "10.0.0.2:15008", upstream: "10.1.2.2:8080" };

describe("HAProxy configs", () => {
  it("TCP mode: mTLS to node 2, no HTTP settings", () => {
    const c = clientSideConfig("tcp", client);
    expect(c).toContain("  mode tcp\n");
    expect(c).toMatch(
      /server node2 10\.0\.0\.2:15008 ssl ssl-min-ver TLSv1\.3 crt \/tmp\/c\/n1\.pem ca-file \/tmp\/c\/ca\.pem verify required verifyhost n2\n/,
    );
    expect(c).not.toMatch(/alpn|proto h2|http-reuse|http-keep-alive/);
    const s = serverSideConfig("tcp", server);
    expect(s).toMatch(/bind 10\.0\.0\.2:15008 ssl .* verify required\n/);
    expect(s).toContain("server pod 10.1.2.2:8080\n");
  });

  it("HTTP mode: h2 over the TLS hop, reused across client connections, long keep-alive", () => {
    const c = clientSideConfig("http", client);
    expect(c).toContain("  mode http\n");
    expect(c).toContain("  timeout http-keep-alive 600s\n");
    expect(c).toMatch(/http-reuse always\n {2}server node2 .* verifyhost n2 alpn h2 proto h2\n/);
    const s = serverSideConfig("http", server);
    expect(s).toMatch(/bind 10\.0\.0\.2:15008 ssl .* verify required alpn h2\n/);
    expect(s).toMatch(/http-reuse always\n {2}server pod 10\.1\.2\.2:8080\n/);
    for (const cfg of [c, s]) expect(cfg).toContain("nbthread 1");
  });

  it("refuses addresses and directories that would corrupt the config, naming the field", () => {
    expect(() => clientSideConfig("http", { ...client, listen: "10.0.0.1" })).toThrow(
      /haproxy listen: .*"10\.0\.0\.1"/,
    );
    expect(() => serverSideConfig("tcp", { ...server, upstream: "pod:80\n  bind *:1" })).toThrow(
      /haproxy upstream/,
    );
    expect(() => clientSideConfig("tcp", { ...client, certDir: "certs" })).toThrow(/haproxy certDir/);
    expect(() => clientSideConfig("tcp", { ...client, certDir: "/tmp/a b" })).toThrow(/haproxy certDir/);
  });
});
