// The ingress gateway on the lab, as an external user sees it: curl in the lab's `outside` host (in no
// mesh) calls https://shop.example.com on node n1's address, checking the certificate against a CA the
// test makes; requests are routed by host and path and split by weight to pods on both nodes over the
// mesh's mTLS; plain HTTP is redirected to HTTPS; an AuthorizationPolicy denying the gateway's own
// identity stops it (403); the gateway reports with reporter="gateway"; behind a trusted load balancer
// (nodemesh.io/num-trusted-proxies) a DENY on remoteIpBlocks stops the client the balancer names.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DEMO_MESH,
  INGRESS_HOST,
  INGRESS_SERVICE_ACCOUNT,
  WEB_V2_VIP,
  ingressDocs,
} from "../../../demo/mesh-config.ts";
import { expectBinomialShare } from "../../helpers/binomial.ts";
import { eventually, meshFixture, type MeshFixture } from "../../helpers/mesh-fixture.ts";
import { opensslRoot, type PemPair } from "../../helpers/openssl-certs.ts";
import { opensslServerCert } from "../../helpers/server-certs.ts";

let fx: MeshFixture;
let dir: string;
let ca: PemPair;
let extra: object[];
let gatewayAddress: string;

interface Echo {
  pod: string;
  path: string;
  headers: Record<string, string>;
}

/** curl from the outside host; `n` URLs on one keep-alive connection, one JSON body per line. */
async function outside(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await fx.lab.exec("outside", ["curl", "-sS", "--max-time", "30", ...args]);
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function https(path: string, n = 1, host = INGRESS_HOST): Promise<Echo[]> {
  const url = `https://${host}${path}`;
  const r = await outside([
    "--cacert",
    ca.cert,
    "--resolve",
    `${host}:443:${gatewayAddress}`,
    "-w",
    "\\n",
    ...Array.from({ length: n }, () => url),
  ]);
  expect(r.stderr).toBe("");
  return r.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Echo);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "nodemesh-ingress-"));
  ca = opensslRoot(dir, "ca", "/CN=ingress e2e CA");
  const cert = opensslServerCert(dir, "shop", ["*.example.com"], ca);
  extra = ingressDocs(cert.cert, cert.key);
  fx = await meshFixture("ingr", { outside: true, spec: { ...DEMO_MESH, extra } });
  gatewayAddress = fx.lab.node(1).address;
  await eventually("the gateway to listen on n1", async () => {
    const r = await outside(["-o", "/dev/null", "-w", "%{http_code}", `http://${gatewayAddress}/`]);
    return r.stdout === "301";
  });
}, 180_000);

afterAll(async () => {
  await fx?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("an external client through the ingress gateway", () => {
  it("HTTPS with a certificate the client verifies, routed by host and path", async () => {
    const [v2] = await https("/v2/items");
    expect(v2).toMatchObject({ pod: "n2p2", path: "/v2/items" });
    expect(v2!.headers["x-forwarded-for"]).toMatch(/^10\.0\.0\.250\b/);
    // No route serves another hostname of the listener: the gateway answers 404 itself.
    const other = await outside([
      "--cacert",
      ca.cert,
      "--resolve",
      `other.example.com:443:${gatewayAddress}`,
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "https://other.example.com/",
    ]);
    expect(other.stdout).toBe("404");
    // A client that does not trust the CA refuses the gateway's certificate.
    const untrusted = await outside([
      "--resolve",
      `${INGRESS_HOST}:443:${gatewayAddress}`,
      `https://${INGRESS_HOST}/`,
    ]);
    expect(untrusted.code).toBe(60);
  });

  it("splits 3:1 by weight over many requests on one connection", async () => {
    const n = 400;
    const replies = await https("/", n);
    expect(replies).toHaveLength(n);
    const v2 = replies.filter((r) => r.pod === "n2p2").length;
    expect(replies.every((r) => r.pod === "n1p2" || r.pod === "n2p2")).toBe(true);
    expectBinomialShare(v2, n, 0.25, "requests to n2p2");
  });

  it("redirects plain HTTP to HTTPS", async () => {
    const r = await outside([
      "--resolve",
      `${INGRESS_HOST}:80:${gatewayAddress}`,
      "-o",
      "/dev/null",
      "-w",
      "%{http_code} %{redirect_url}",
      `http://${INGRESS_HOST}/cart?id=7`,
    ]);
    expect(r.stdout).toBe(`301 https://${INGRESS_HOST}/cart?id=7`);
  });

  it('reports its requests with reporter="gateway" under its own identity', async () => {
    const metrics = await fx.mesh.agentHttp("n1", 15020, "/metrics");
    expect(metrics).toMatch(/nodemesh_requests_total\{[^}]*reporter="gateway"[^}]*source_workload="ingress"/);
    const line = fx.agentLog("n1").find((l) => l["reporter"] === "gateway" && l["path"] === "/v2/items");
    expect(line).toMatchObject({ response_code: 200 });
  });

  it("an AuthorizationPolicy denying the gateway's identity stops it with 403", async () => {
    fx.applyExtra([
      ...extra,
      {
        apiVersion: "nodemesh.io/v1alpha1",
        kind: "AuthorizationPolicy",
        metadata: { name: "no-ingress", namespace: "default" },
        spec: {
          selector: { matchLabels: { app: "echo" } },
          action: "DENY",
          rules: [
            {
              from: [{ source: { principals: [`cluster.local/ns/default/sa/${INGRESS_SERVICE_ACCOUNT}`] } }],
            },
          ],
        },
      },
    ]);
    const status = () =>
      outside([
        "--cacert",
        ca.cert,
        "--resolve",
        `${INGRESS_HOST}:443:${gatewayAddress}`,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `https://${INGRESS_HOST}/v2`,
      ]).then((r) => r.stdout);
    await eventually("the DENY to apply", async () => (await status()) === "403");
    // A pod of the mesh is not the gateway: it still gets through.
    const pod = await fx.curl("n1p1", `http://${WEB_V2_VIP}/`, ["-o", "/dev/null", "-w", "%{http_code}"]);
    expect(pod.body).toBe("200");
  });

  it("behind a trusted load balancer, remoteIpBlocks match the client it names in X-Forwarded-For", async () => {
    const [gateway, ...rest] = extra as [{ metadata: { annotations: Record<string, string> } }, ...object[]];
    const trusting = {
      ...gateway,
      metadata: {
        ...gateway.metadata,
        annotations: { ...gateway.metadata.annotations, "nodemesh.io/num-trusted-proxies": "1" },
      },
    };
    fx.applyExtra([
      trusting,
      ...rest,
      {
        apiVersion: "nodemesh.io/v1alpha1",
        kind: "AuthorizationPolicy",
        metadata: { name: "no-203", namespace: "default" },
        spec: {
          selector: { matchLabels: { app: "echo" } },
          action: "DENY",
          rules: [{ from: [{ source: { remoteIpBlocks: ["203.0.113.7/32"] } }] }],
        },
      },
    ]);
    const call = (xff: string, out: string[]) =>
      outside([
        "--cacert",
        ca.cert,
        "--resolve",
        `${INGRESS_HOST}:443:${gatewayAddress}`,
        "-H",
        `X-Forwarded-For: ${xff}`,
        ...out,
        `https://${INGRESS_HOST}/v2`,
      ]).then((r) => r.stdout);
    const code = ["-o", "/dev/null", "-w", "%{http_code}"];
    // The load balancer (here: curl itself, from the outside host) appended 203.0.113.7 as its client:
    // refused. An address further left was written by the client, not by the trusted proxy: not believed,
    // so that request passes (the earlier DENY on the gateway's identity is gone with this config).
    await eventually(
      "the DENY on the original client to apply",
      async () =>
        (await call("203.0.113.7", code)) === "403" &&
        (await call("203.0.113.7, 198.51.100.2", code)) === "200",
    );
    const passed = JSON.parse(await call("203.0.113.7, 198.51.100.2", [])) as Echo;
    expect(passed.pod).toBe("n2p2");
    expect(passed.headers["x-forwarded-for"]).toBe(
      `203.0.113.7, 198.51.100.2, ${fx.lab.host("outside").address}`,
    );
  });
});
