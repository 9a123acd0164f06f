// The source address of a tunnel stream, authenticated, against two real agents on the loopback
// datapath: an impostor holding a real mesh certificate connects straight to a pod's 15008 from a
// chosen address (bound, as a node's agent would appear) and claims a `for=`. Also the TLS handshake
// failures the inbound listener counts, made with openssl s_client.
import { spawn } from "node:child_process";
import { constants, connect as h2connect } from "node:http2";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestCa } from "../../helpers/test-ca.ts";
import { echoApp, startHarness, type Harness } from "./harness.ts";

const ECHO_B = "127.0.2.2";
let h: Harness;
let app: Awaited<ReturnType<typeof echoApp>>;

beforeAll(async () => {
  h = await startHarness();
  app = await echoApp("echo-b", ECHO_B, 8080);
}, 30_000);
afterAll(async () => {
  await new Promise<void>((r) => app.close(() => r()));
  await h?.stop();
});

/** One CONNECT to echo-b's tunnel listener as `sa`, from `from`, claiming `forwardedFor`. */
async function connectAs(sa: string, from: string, forwardedFor?: string): Promise<number> {
  const peer = h.ca.issue(`spiffe://cluster.local/ns/default/sa/${sa}`);
  const session = h2connect(`https://${ECHO_B}:15008`, {
    createConnection: () =>
      tlsConnect({
        socket: netConnect({ host: ECHO_B, port: 15008, localAddress: from }),
        key: peer.keyPem,
        cert: peer.certPem,
        ca: [h.ca.certPem],
        ALPNProtocols: ["h2"],
        checkServerIdentity: () => undefined,
      }),
  });
  session.on("error", () => {});
  try {
    const headers: Record<string, string> = { ":method": "CONNECT", ":authority": `${ECHO_B}:8080` };
    if (forwardedFor) headers["forwarded"] = `for="${forwardedFor}"`;
    const s = session.request(headers, { endStream: false });
    s.on("error", () => {});
    const status = await new Promise<number>((r) => s.once("response", (hd) => r(Number(hd[":status"]))));
    s.close(constants.NGHTTP2_CANCEL);
    return status;
  } finally {
    session.destroy();
  }
}

async function metric(name: string, reason: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${h.agents.b.ports.metrics}/metrics`)).text();
  const m = text.match(new RegExp(`^${name}\\{reason="${reason}"\\} (\\d+)`, "m"));
  return m ? Number(m[1]) : NaN;
}

const refusals = (reason: string) =>
  h.logs.lines.filter(
    (l) => l["response_flags"] === "IdentityError" && String(l["error"]).includes(`(${reason})`),
  );

describe("the client's address, authenticated", () => {
  it("accepts the for= of the peer's own workload on the peer's node", async () => {
    expect(await connectAs("client", "127.0.1.1", "127.0.1.1")).toBe(200);
  });

  it("refuses a for= naming a workload of the same identity on another node (forged by a real agent)", async () => {
    const before = await metric("nodemesh_tunnel_source_refused_total", "forged_source_address");
    // sa/echo runs on node-a (echo-a, 127.0.1.2) and node-b (echo-b): node-a's agent claims node-b's pod.
    expect(await connectAs("echo", "127.0.1.2", ECHO_B)).toBe(401);
    expect(await metric("nodemesh_tunnel_source_refused_total", "forged_source_address")).toBe(before + 1);
    await expect.poll(() => refusals("forged_source_address").length).toBeGreaterThan(0);
    expect(refusals("forged_source_address")[0]).toMatchObject({
      "src.addr": "127.0.1.2",
      "src.identity": "spiffe://cluster.local/ns/default/sa/echo",
    });
  });

  it("refuses a peer identity with no workload on the calling node, and a stream without for=", async () => {
    // sa/client exists only on node-a; this tunnel comes from node-b's echo-b address.
    expect(await connectAs("client", ECHO_B, "127.0.1.1")).toBe(401);
    expect(await metric("nodemesh_tunnel_source_refused_total", "identity_not_on_node")).toBeGreaterThan(0);
    expect(await connectAs("client", "127.0.1.1")).toBe(401);
    expect(await metric("nodemesh_tunnel_source_refused_total", "no_source_address")).toBeGreaterThan(0);
    await expect.poll(() => refusals("no_source_address").length).toBeGreaterThan(0);
  });
});

/** openssl s_client against echo-b's tunnel listener; stdin held open so the server judges the cert. */
function sClient(args: string[]): Promise<void> {
  return new Promise((resolve) => {
    const p = spawn(
      "sh",
      ["-c", `sleep 1 | timeout 5 openssl s_client -connect ${ECHO_B}:15008 ${args.join(" ")}`],
      {
        stdio: "ignore",
      },
    );
    p.on("exit", () => resolve());
  });
}

describe("TLS handshake failures at the inbound tunnel", () => {
  it("names a certificate of a foreign CA, with the peer's address", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nm-tls-"));
    try {
      const foreign = createTestCa().issue("spiffe://cluster.local/ns/default/sa/client");
      writeFileSync(join(dir, "k.pem"), foreign.keyPem);
      writeFileSync(join(dir, "c.pem"), foreign.certPem);
      await sClient(["-tls1_3", "-alpn", "h2", "-key", join(dir, "k.pem"), "-cert", join(dir, "c.pem")]);
      await expect.poll(() => metric("nodemesh_tls_handshake_failures_total", "unknown_ca")).toBe(1);
      await expect
        .poll(() => h.logs.lines.find((l) => l["reason"] === "unknown_ca" && l["level"] === 30))
        .toMatchObject({ peer: "127.0.0.1", verdict: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("counts them by reason and logs them at info", async () => {
    const base = await metric("nodemesh_tls_handshake_failures_total", "no_certificate");
    await sClient(["-tls1_3", "-alpn", "h2"]);
    await sClient(["-tls1_2", "-alpn", "h2"]);
    await expect.poll(() => metric("nodemesh_tls_handshake_failures_total", "no_certificate")).toBe(base + 1);
    await expect.poll(() => metric("nodemesh_tls_handshake_failures_total", "protocol")).toBeGreaterThan(0);
    const lines = h.logs.lines.filter((l) => String(l["msg"]).startsWith("rejected a TLS handshake"));
    expect(lines.map((l) => l["reason"])).toEqual(expect.arrayContaining(["no_certificate", "protocol"]));
    expect(lines[0]).toMatchObject({ level: 30, workload: "default/echo-b" });
  });
});
