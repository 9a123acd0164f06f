// The ingress bench's HAProxy config: HTTPS terminated with the given PEM, the gateway's ALPN offer,
// forwarding headers, reuse of the backend connections, one thread; bad inputs refused by field.
import { describe, expect, it } from "vitest";
import { ingressConfig } from "../../../bench/haproxy-config.ts";

const ing = { listen: "10.0.0.1:15443", certFile: "/tmp/b/ingress.pem", upstream: "10.1.2.2:8080" };

describe("the ingress HAProxy config", () => {
  it("terminates TLS on the edge node and forwards plain HTTP to the backend pod", () => {
    const c = ingressConfig(ing);
    expect(c).toContain("  nbthread 1\n");
    expect(c).toContain("  mode http\n");
    expect(c).toContain("  timeout http-keep-alive 600s\n");
    expect(c).toContain(
      "  bind 10.0.0.1:15443 ssl crt /tmp/b/ingress.pem ssl-min-ver TLSv1.2 alpn h2,http/1.1\n",
    );
    expect(c).toContain("  option forwardfor\n  http-request set-header X-Forwarded-Proto https\n");
    expect(c).toMatch(/backend to_backend\n {2}http-reuse always\n {2}server backend 10\.1\.2\.2:8080\n$/);
    // Plain to the backend, as the direct path: no TLS, no certificate checks on the server line.
    expect(c).not.toMatch(/server backend .*ssl/);
  });

  it("refuses inputs that would corrupt the config, naming the field", () => {
    expect(() => ingressConfig({ ...ing, listen: "10.0.0.1" })).toThrow(
      /haproxy ingress listen: expected host:port, got "10\.0\.0\.1"/,
    );
    expect(() => ingressConfig({ ...ing, upstream: "pod:80\n  bind *:1" })).toThrow(
      /haproxy ingress upstream/,
    );
    expect(() => ingressConfig({ ...ing, certFile: "ingress.pem" })).toThrow(/haproxy ingress certFile/);
    expect(() => ingressConfig({ ...ing, certFile: "/tmp/a b.pem" })).toThrow(/without spaces/);
  });
});
