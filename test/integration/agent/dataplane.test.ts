// Two agents, real TLS 1.3 + HTTP/2 CONNECT tunnels, real sockets, on 127.0.0.0/8.
import { randomBytes } from "node:crypto";
import { connect as netConnect, createServer, type Server } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { constants, connect as h2connect } from "node:http2";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backendOf, echoApp, exchange, startHarness, VIP, type Harness } from "./harness.ts";

describe("agent data plane (two agents, loopback datapath)", () => {
  let h: Harness;
  let apps: (Server & { seen: Buffer[] })[];

  beforeAll(async () => {
    apps = [await echoApp("echo-a", "127.0.1.2"), await echoApp("echo-b", "127.0.2.2")];
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.stop();
    for (const a of apps ?? []) a.close();
  });

  it("carries a connection through the tunnel unchanged, balanced over both backends, with half-close", async () => {
    const payload = randomBytes(256 * 1024);
    const backends = new Map<string, number>();
    for (let i = 0; i < 8; i++) {
      const r = await exchange(h, payload);
      expect(r.error).toBeUndefined();
      const name = backendOf(r.data);
      backends.set(name, (backends.get(name) ?? 0) + 1);
      const prefix = Buffer.from(`${name}|`);
      // reply = "<name>|" + echo of every byte + "|bye" (sent after the client's FIN: half-close works)
      expect(r.data.subarray(0, prefix.length).equals(prefix)).toBe(true);
      expect(r.data.subarray(prefix.length, prefix.length + payload.length).equals(payload)).toBe(true);
      expect(r.data.subarray(prefix.length + payload.length).toString()).toBe("|bye");
    }
    expect(backends.get("echo-a")).toBe(4);
    expect(backends.get("echo-b")).toBe(4);
  });

  it("pools HTTP/2 sessions: many connections, one TLS session per (source, destination)", async () => {
    await Promise.all(Array.from({ length: 20 }, () => exchange(h, "x")));
    const dump = h.agents.a.configDump() as { connections: { pool: { key: string }[] } };
    const keys = dump.connections.pool.map((p) => p.key);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.length).toBeLessThanOrEqual(2);
  });

  it("rejects an impostor: a certificate from another CA fails the handshake", async () => {
    const { createTestCa } = await import("../../helpers/test-ca.ts");
    const other = createTestCa("evil ca");
    const forged = other.issue("spiffe://cluster.local/ns/default/sa/client");
    const err = await new Promise<Error | undefined>((resolve) => {
      const s = tlsConnect({
        host: "127.0.2.2",
        port: 15008,
        key: forged.keyPem,
        cert: forged.certPem,
        ca: [h.ca.certPem],
        ALPNProtocols: ["h2"],
        checkServerIdentity: () => undefined,
      });
      s.on("secureConnect", () => s.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
      s.on("error", (e) => resolve(e));
      s.on("close", () => resolve(undefined));
    });
    // TLS 1.3: the server's rejection of the client certificate arrives as an alert after the handshake.
    expect(err?.message ?? "closed").toMatch(/alert|certificate|closed|ECONNRESET/i);
  });

  it("openssl s_client: a foreign certificate is cut off, a mesh certificate gets HTTP/2", async () => {
    const { createTestCa } = await import("../../helpers/test-ca.ts");
    const dir = mkdtempSync(join(tmpdir(), "nodemesh-impostor-"));
    try {
      const foreign = createTestCa("evil ca").issue("spiffe://cluster.local/ns/default/sa/client");
      const valid = h.ca.issue("spiffe://cluster.local/ns/default/sa/client");
      const bad = await sClient(dir, "foreign", foreign.keyPem, foreign.certPem);
      const good = await sClient(dir, "valid", valid.keyPem, valid.certPem);
      // The agent drops the foreign client right after the handshake (Node sends no alert for this);
      // the mesh client keeps its HTTP/2 connection until we stop it.
      expect(bad.cutByServer).toBe(true);
      expect(bad.output, bad.output).toMatch(/unexpected eof|alert|errno=104|reset|closed/i);
      expect(good.cutByServer).toBe(false);
      expect(good.output).toMatch(/ALPN protocol: h2/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rejects a valid certificate for the wrong identity when policy allows only the client", async () => {
    h.source.set({
      ...h.config,
      version: "allow-client",
      authorizationPolicies: [
        {
          apiVersion: "nodemesh.io/v1alpha1",
          kind: "AuthorizationPolicy",
          metadata: { name: "only-client", namespace: "default" },
          spec: {
            action: "ALLOW",
            rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/client"] } }] }],
          },
        },
      ],
    });
    await Promise.all([h.agents.a.settled(), h.agents.b.settled()]);
    const wrong = h.ca.issue("spiffe://cluster.local/ns/default/sa/intruder");
    const status = await new Promise<number>((resolve, reject) => {
      const session = h2connect("https://127.0.2.2:15008", {
        key: wrong.keyPem,
        cert: wrong.certPem,
        ca: [h.ca.certPem],
        checkServerIdentity: () => undefined,
      });
      session.on("error", reject);
      const req = session.request({ ":method": "CONNECT", ":authority": "127.0.2.2:8080" });
      req.on("response", (hd) => {
        resolve(Number(hd[":status"]));
        session.close();
      });
      req.on("error", () => {});
    });
    expect(status).toBe(401);
    // the real client still gets through
    const r = await exchange(h, "hello");
    expect(r.error).toBeUndefined();
    h.source.set({ ...h.config, version: "reset-1" });
    await Promise.all([h.agents.a.settled(), h.agents.b.settled()]);
  });

  it("a DENY policy refuses new connections and cuts a live one; the access log says why", async () => {
    // open a live connection first
    const addr = await h.dp.a.captureAddress("default/client", { address: VIP, port: 80 });
    const live = netConnect({ ...addr, allowHalfOpen: true });
    const got: Buffer[] = [];
    live.on("data", (d: Buffer) => got.push(d));
    live.on("error", () => {});
    await new Promise<void>((r) => live.once("data", () => r()));
    const closed = new Promise<void>((r) => live.once("close", () => r()));
    h.source.set({
      ...h.config,
      version: "deny",
      authorizationPolicies: [
        {
          apiVersion: "nodemesh.io/v1alpha1",
          kind: "AuthorizationPolicy",
          metadata: { name: "deny-client", namespace: "default" },
          spec: {
            action: "DENY",
            rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/client"] } }] }],
          },
        },
      ],
    });
    await Promise.all([h.agents.a.settled(), h.agents.b.settled()]);
    await closed;
    const r = await exchange(h, "after deny");
    expect(r.data.length).toBe(0);
    const cut = h.logs.lines.find(
      (l) => typeof l["error"] === "string" && /policy change.*deny-client/.test(l["error"] as string),
    );
    expect(cut).toBeDefined();
    const refused = h.logs.lines.find(
      (l) => l["direction"] === "outbound" && l["response_flags"] === "AuthorizationPolicyDenied",
    );
    expect(refused).toBeDefined();
    h.source.set({ ...h.config, version: "reset-2" });
    await Promise.all([h.agents.a.settled(), h.agents.b.settled()]);
    expect((await exchange(h, "ok again")).data.length).toBeGreaterThan(0);
  });

  it("releases and re-enrolls workloads live as the config changes", async () => {
    const probe = () =>
      new Promise<boolean>((resolve) => {
        const s = netConnect({ host: "127.0.2.2", port: 15008 });
        s.on("connect", () => (s.destroy(), resolve(true)));
        s.on("error", () => resolve(false));
      });
    expect(await probe()).toBe(true);
    h.source.set({
      ...h.config,
      version: "no-echo-b",
      workloads: h.config.workloads.filter((w) => w.metadata.name !== "echo-b"),
    });
    await Promise.all([h.agents.a.settled(), h.agents.b.settled()]);
    expect(await probe()).toBe(false);
    for (let i = 0; i < 4; i++) expect(backendOf((await exchange(h, "x")).data)).toBe("echo-a");
    h.source.set({ ...h.config, version: "echo-b-back" });
    await Promise.all([h.agents.a.settled(), h.agents.b.settled()]);
    await h.agents.b.whenReady(5000);
    expect(await probe()).toBe(true);
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(backendOf((await exchange(h, "x")).data));
    expect(seen).toEqual(new Set(["echo-a", "echo-b"]));
  });

  it("ejects a dead endpoint and keeps serving from the other; all dead → prompt reset", async () => {
    const b = apps[1]!;
    await new Promise<void>((r) => b.close(() => r()));
    for (let i = 0; i < 10; i++) {
      const r = await exchange(h, "ping");
      expect(r.error).toBeUndefined();
      expect(backendOf(r.data)).toBe("echo-a");
    }
    const dump = h.agents.a.configDump() as { balancing: { ejected: string[] }[] };
    expect(dump.balancing.flatMap((x) => x.ejected)).toContain("127.0.2.2:8080");
    const a = apps[0]!;
    await new Promise<void>((r) => a.close(() => r()));
    const r = await exchange(h, "ping");
    expect(r.data.length).toBe(0);
    expect(r.ms).toBeLessThan(1000);
    apps = [await echoApp("echo-a", "127.0.1.2"), await echoApp("echo-b", "127.0.2.2")];
  });

  it("admin: config dump, logging level, readiness", async () => {
    const base = `http://127.0.0.1:${h.agents.a.ports.admin}`;
    const dump = (await (await fetch(`${base}/config_dump`)).json()) as {
      workloads: { uid: string; identity: string }[];
      certificates: { spiffeId: string; notAfter: string }[];
      services: { host: string }[];
    };
    expect(dump.workloads.map((w) => w.uid).sort()).toEqual(["default/client", "default/echo-a"]);
    expect(dump.certificates.every((c) => Date.parse(c.notAfter) > Date.now())).toBe(true);
    expect(dump.services.map((s) => s.host)).toContain("echo.default");
    const set = await fetch(`${base}/logging?level=debug`, { method: "POST" });
    expect(await set.json()).toEqual({ level: "debug" });
    await fetch(`${base}/logging?level=info`, { method: "POST" });
    expect((await fetch(`${base}/logging?level=bogus`, { method: "POST" })).status).toBe(400);
    expect((await fetch(`${base}/healthz/ready`)).status).toBe(200);
  });

  it("serves Prometheus metrics with Istio labels that pass promtool check metrics", async () => {
    const res = await fetch(`http://127.0.0.1:${h.agents.a.ports.metrics}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/nodemesh_tcp_connections_opened_total\{reporter="source",source_workload="client"/);
    expect(text).toMatch(/nodemesh_tcp_received_bytes_total\{[^}]*destination_service="echo.default"/);
    expect(text).toMatch(/nodemesh_identity_cert_expiration_timestamp_seconds\{spiffe_id=/);
    const resB = await fetch(`http://127.0.0.1:${h.agents.b.ports.metrics}/metrics`);
    expect(await resB.text()).toMatch(
      /nodemesh_tcp_connections_closed_total\{reporter="destination",source_workload="client"/,
    );
    const check = await run("promtool", ["check", "metrics"], text);
    expect(check.output.trim()).toBe("");
    expect(check.code).toBe(0);
    const ready = await fetch(`http://127.0.0.1:${h.agents.a.ports.health}/healthz/ready`);
    expect(ready.status).toBe(200);
  });

  it("rapid reset: streams reset before an answer cost no application connection, and the session is closed", async () => {
    let appConnections = 0;
    const app = createServer((c) => {
      appConnections++;
      c.on("error", () => {});
      c.end();
    });
    await new Promise<void>((r) => app.listen(9099, "127.0.2.2", r));
    const peer = h.ca.issue("spiffe://cluster.local/ns/default/sa/client");
    // From the client workload's address and naming it, as its agent would: the source check passes and
    // only the resets are under test.
    const session = h2connect("https://127.0.2.2:15008", {
      createConnection: () =>
        tlsConnect({
          socket: netConnect({ host: "127.0.2.2", port: 15008, localAddress: "127.0.1.1" }),
          key: peer.keyPem,
          cert: peer.certPem,
          ca: [h.ca.certPem],
          ALPNProtocols: ["h2"],
          checkServerIdentity: () => undefined,
        }),
    });
    session.on("error", () => {});
    const goaway = new Promise<number>((r) => session.once("goaway", (code: number) => r(code)));
    const closed = new Promise<void>((r) => session.once("close", () => r()));
    await new Promise<void>((r, j) => session.once("connect", () => r()).once("error", j));
    // The CVE-2023-44487 pattern: HEADERS then RST_STREAM at once, over and over, never waiting.
    for (let i = 0; i < 1000 && !session.destroyed; i++) {
      const s = session.request({
        ":method": "CONNECT",
        ":authority": "127.0.2.2:9099",
        forwarded: 'for="127.0.1.1"',
      });
      s.on("error", () => {});
      s.close(constants.NGHTTP2_CANCEL);
    }
    expect(await goaway).toBe(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    await closed;
    await new Promise((r) => setTimeout(r, 200)); // app connects still in flight would land now
    expect(appConnections).toBeLessThan(20);
    await new Promise<void>((r) => app.close(() => r()));
    // An honest client on a new session is still served.
    const r = await exchange(h, "still served");
    expect(r.error).toBeUndefined();
  });
});

/** Async (the agents run in this process: a sync spawn would block them). */
function run(cmd: string, args: string[], input: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args);
    let output = "";
    p.stdout.on("data", (d: Buffer) => (output += d.toString()));
    p.stderr.on("data", (d: Buffer) => (output += d.toString()));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, output }));
    p.stdin.end(input);
  });
}

/** Runs s_client with stdin held open; `cutByServer` = it exited on its own within 2 s. */
async function sClient(dir: string, name: string, keyPem: string, certPem: string) {
  writeFileSync(join(dir, `${name}.key`), keyPem);
  writeFileSync(join(dir, `${name}.crt`), certPem);
  const args = ["s_client", "-connect", "127.0.2.2:15008", "-tls1_3", "-alpn", "h2"];
  args.push("-key", join(dir, `${name}.key`), "-cert", join(dir, `${name}.crt`));
  const p = spawn("openssl", args);
  let output = "";
  p.stdout.on("data", (d: Buffer) => (output += d.toString()));
  p.stderr.on("data", (d: Buffer) => (output += d.toString()));
  p.stdin.on("error", () => {});
  p.stdin.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  let cutByServer = true;
  const timer = setTimeout(() => {
    cutByServer = false;
    p.kill();
  }, 2000);
  await new Promise((r) => p.on("close", r));
  clearTimeout(timer);
  return { output, cutByServer };
}
