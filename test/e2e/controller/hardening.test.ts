// The agent endpoint under attack, with the controller in its own process so that its open files
// and RSS are its own (/proc/<pid>): 200 TLS + HTTP/2 sessions without a token from five source
// addresses are refused beyond the per-address cap, push the oldest out of a full pool, and are
// closed at the deadline; 1,000 from one address cost at most the per-address cap; an authenticated
// agent keeps receiving config throughout. Then dead peers: an agent whose packets stop (a
// partition: no FIN, no RST) is found by PING and closed, and so is a half-closed connection.
import http2 from "node:http2";
import type { ClientHttp2Session } from "node:http2";
import net from "node:net";
import tls from "node:tls";
import type { Socket } from "node:net";
import { writeFileSync } from "node:fs";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ControllerClient } from "../../../agent/control/client.ts";
import { ChildController } from "./child.ts";
import { BASE_CONFIG, TOKENS, until, waitForConfig, workloadYaml } from "./harness.ts";

const AUTH_TIMEOUT_MS = 2000;
const MAX_PENDING = 100;
const PER_ADDRESS = 40;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Hostile {
  session: ClientHttp2Session;
  /** TLS and the HTTP/2 preface went through: the server admitted it. */
  connected: boolean;
  openedAt: number;
  closedAt: number | undefined;
}

/** A TLS + HTTP/2 session that never sends a request, from `localAddress`. */
function hostile(port: number, localAddress: string): Hostile {
  const session = http2.connect(`https://127.0.0.1:${port}`, {
    createConnection: () =>
      tls.connect({
        socket: net.connect({ host: "127.0.0.1", port, localAddress }),
        rejectUnauthorized: false,
        ALPNProtocols: ["h2"],
      }),
  });
  const h: Hostile = { session, connected: false, openedAt: performance.now(), closedAt: undefined };
  session.on("connect", () => (h.connected = true));
  session.on("error", () => {});
  session.on("close", () => (h.closedAt = performance.now()));
  return h;
}

function agent(
  ctl: ChildController,
  node: keyof typeof TOKENS,
  address = `127.0.0.1:${ctl.port}`,
): ControllerClient {
  return new ControllerClient({
    address,
    node,
    token: TOKENS[node],
    trustBundle: [ctl.rootPem],
    servername: "localhost",
    log: pino({ level: "silent" }),
    backoffMinMs: 50,
    backoffMaxMs: 200,
    idleTimeoutMs: 30_000,
  });
}

describe("a hardened agent endpoint", () => {
  const ctl = new ChildController();
  let good: ControllerClient;

  beforeAll(async () => {
    await ctl.start([
      ...["--auth-timeout", `${AUTH_TIMEOUT_MS}ms`, "--max-pending-sessions", String(MAX_PENDING)],
      ...[
        "--max-pending-per-address",
        String(PER_ADDRESS),
        "--keepalive",
        "300ms",
        "--keepalive-timeout",
        "500ms",
      ],
    ]);
    good = agent(ctl, "node-a");
    good.start();
    await waitForConfig(good, (c) => c.workloads.length === 2);
  });
  afterAll(async () => {
    await good.stop();
    await ctl.stop();
  });

  test("200 unauthenticated sessions are capped, evicted oldest first, closed at the deadline", async () => {
    await sleep(200);
    const filesBefore = ctl.openFiles();
    const rssBefore = ctl.rssMiB();
    // 50 from one address: the per-address cap refuses 10 before TLS.
    const first = Array.from({ length: 50 }, () => hostile(ctl.port, "127.0.0.2"));
    await until(() => first.every((x) => x.connected || x.closedAt !== undefined), 10_000);
    expect(first.filter((x) => x.connected)).toHaveLength(PER_ADDRESS);
    expect(first.filter((x) => !x.connected)).toHaveLength(50 - PER_ADDRESS);
    // 150 more from three addresses: the pool (100) is full, so the oldest go.
    const more = ["127.0.0.3", "127.0.0.4", "127.0.0.5"].flatMap((a) =>
      Array.from({ length: 50 }, () => hostile(ctl.port, a)),
    );
    const all = [...first, ...more];
    await until(() => more.every((x) => x.connected || x.closedAt !== undefined), 10_000);
    await sleep(100);
    const open = all.filter((x) => x.closedAt === undefined).length;
    expect(open).toBeLessThanOrEqual(MAX_PENDING);
    expect(await ctl.metric("nodemesh_controller_pending_sessions")).toBeLessThanOrEqual(MAX_PENDING);
    expect(ctl.openFiles() - filesBefore).toBeLessThanOrEqual(MAX_PENDING + 5);
    const rssPending = ctl.rssMiB();
    // The authenticated agent still gets config changes during the flood.
    writeFileSync(ctl.configFile, `${BASE_CONFIG}---\n${workloadYaml("cache", "10.1.0.5", "node-a")}`);
    await waitForConfig(good, (c) => c.workloads.length === 3);
    // Every hostile session is gone by the deadline (plus scheduling slack), by the server's doing.
    await until(() => all.every((x) => x.closedAt !== undefined), AUTH_TIMEOUT_MS + 3000);
    const lifetimes = all.map((x) => (x.closedAt ?? Infinity) - x.openedAt);
    expect(Math.max(...lifetimes)).toBeLessThan(AUTH_TIMEOUT_MS + 1500);
    await until(() => ctl.openFiles() <= filesBefore + 2, 5000);
    const refused = await ctl.metric(
      'nodemesh_controller_sessions_refused_total{reason="per_address_limit"}',
    );
    const evicted = await ctl.metric('nodemesh_controller_sessions_closed_total{reason="evicted"}');
    const timedOut = await ctl.metric('nodemesh_controller_sessions_closed_total{reason="auth_timeout"}');
    expect(refused).toBeGreaterThanOrEqual(50 - PER_ADDRESS + 3 * (50 - PER_ADDRESS));
    expect(evicted).toBeGreaterThanOrEqual(1);
    expect(refused + evicted + timedOut).toBe(200);
    expect(await ctl.metric("nodemesh_controller_pending_sessions")).toBe(0);
    expect(await ctl.metric("nodemesh_controller_connected_agents")).toBe(1);
    expect(good.connected).toBe(true);
    const line = await ctl.waitForLog((l) => l.reason === "auth_timeout");
    expect(line.msg).toBe(`no valid node token within ${AUTH_TIMEOUT_MS} ms; closing the connection`);
    console.info(
      `100 pending hostile sessions: +${(rssPending - rssBefore).toFixed(1)} MiB RSS, ` +
        `${filesBefore} → ≤ ${filesBefore + MAX_PENDING} files`,
    );
  });

  test("1,000 sessions from one address cost at most the per-address cap", async () => {
    const filesBefore = ctl.openFiles();
    const rssBefore = ctl.rssMiB();
    const flood = Array.from({ length: 1000 }, () => hostile(ctl.port, "127.0.0.6"));
    let peakFiles = 0;
    let peakOpen = 0;
    await until(() => {
      peakFiles = Math.max(peakFiles, ctl.openFiles());
      peakOpen = Math.max(peakOpen, flood.filter((x) => x.connected && x.closedAt === undefined).length);
      return flood.every((x) => x.connected || x.closedAt !== undefined);
    }, 20_000);
    // Admitted ones that time out free their slot, so more than the cap may get in over time.
    expect(peakOpen).toBeLessThanOrEqual(PER_ADDRESS);
    expect(peakFiles - filesBefore).toBeLessThanOrEqual(PER_ADDRESS + 5);
    const rssGrowth = ctl.rssMiB() - rssBefore;
    console.info(
      `1,000 hostile sessions from one address: +${rssGrowth.toFixed(1)} MiB RSS, +${peakFiles - filesBefore} files at peak`,
    );
    expect(rssGrowth).toBeLessThan(20);
    await until(() => flood.every((x) => x.closedAt !== undefined), AUTH_TIMEOUT_MS + 3000);
    expect(good.connected).toBe(true);
  });

  test("plaintext and TLS 1.2 handshakes are refused, counted and logged", async () => {
    const series = 'nodemesh_controller_sessions_closed_total{reason="handshake_failed"}';
    const before = await ctl.metric(series);
    const plain = net.connect({ host: "127.0.0.1", port: ctl.port });
    plain.on("error", () => {});
    plain.end("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    await new Promise((r) => plain.once("close", r));
    const old = tls.connect({
      host: "127.0.0.1",
      port: ctl.port,
      maxVersion: "TLSv1.2",
      rejectUnauthorized: false,
    });
    const oldErr = await new Promise<Error>((r) => old.once("error", r));
    expect(oldErr.message).toMatch(/protocol version|alert/i);
    for (let i = 0; i < 100 && (await ctl.metric(series)) < before + 2; i++) await sleep(20);
    expect(await ctl.metric(series)).toBe(before + 2);
    const line = await ctl.waitForLog((l) => l.reason === "handshake_failed");
    expect(line).toMatchObject({ level: 40, address: "127.0.0.1" });
    expect(String(line.msg)).toMatch(/^tls handshake failed: /);
  });

  test("a wrong token closes the session after the reply", async () => {
    const s = http2.connect(`https://127.0.0.1:${ctl.port}`, { rejectUnauthorized: false });
    s.on("error", () => {});
    const closed = new Promise((r) => s.once("close", r));
    const req = s.request({
      ":method": "POST",
      ":path": "/v1/stream",
      authorization: "Bearer not-a-token-0000000000",
    });
    let status = 0;
    req.on("response", (h) => (status = Number(h[":status"])));
    req.on("error", () => {});
    req.resume();
    req.end();
    await closed;
    expect(status).toBe(401);
    expect(await ctl.metric('nodemesh_controller_sessions_closed_total{reason="unauthenticated"}')).toBe(1);
  });
});

/** A TCP relay to the controller that the test can cut like a network would. */
class Relay {
  readonly server: net.Server;
  readonly pairs: { down: Socket; up: Socket; upClosed: boolean }[] = [];
  port = 0;
  constructor(target: number) {
    this.server = net.createServer({ allowHalfOpen: true }, (down) => {
      const up = net.connect({ port: target, host: "127.0.0.1", allowHalfOpen: true });
      const pair = { down, up, upClosed: false };
      this.pairs.push(pair);
      up.on("close", () => (pair.upClosed = true));
      down.on("error", () => {});
      up.on("error", () => {});
      down.pipe(up);
      up.pipe(down);
    });
  }
  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }
  /** Packets stop both ways, and nothing is closed: a partition or a host that lost power. */
  blackhole(): void {
    for (const p of this.pairs) {
      p.down.unpipe(p.up);
      p.up.unpipe(p.down);
      p.up.pause();
      p.down.pause();
    }
  }
  close(): void {
    for (const p of this.pairs) {
      p.down.destroy();
      p.up.destroy();
    }
    this.server.close();
  }
}

describe("dead and half-closed agent sessions", () => {
  const ctl = new ChildController();

  beforeAll(() => ctl.start(["--keepalive", "300ms", "--keepalive-timeout", "500ms"]));
  afterAll(() => ctl.stop());

  test("an agent that stops answering (no FIN, no RST) is closed by the PING timeout", async () => {
    const relay = new Relay(ctl.port);
    await relay.listen();
    const b = agent(ctl, "node-b", `127.0.0.1:${relay.port}`);
    try {
      b.start();
      await waitForConfig(b, () => true);
      await until(() => relay.pairs.length === 1);
      const t0 = performance.now();
      relay.blackhole();
      const series = 'nodemesh_controller_sessions_closed_total{reason="keepalive_timeout"}';
      // The relay no longer reads, so the controller's FIN is not seen there: ask the controller.
      for (let i = 0; i < 250 && (await ctl.metric(series)) === 0; i++) await sleep(20);
      expect(await ctl.metric(series)).toBe(1);
      expect(performance.now() - t0).toBeLessThan(300 + 500 + 1500);
      const agents = () => ctl.metric("nodemesh_controller_connected_agents");
      for (let i = 0; i < 100 && (await agents()) !== 0; i++) await sleep(20);
      expect(await agents()).toBe(0);
      const line = await ctl.waitForLog((l) => l.reason === "keepalive_timeout");
      expect(line).toMatchObject({ node: "node-b" });
    } finally {
      await b.stop();
      relay.close();
    }
  });

  test("a connection the agent half-closed is closed by the controller", async () => {
    const relay = new Relay(ctl.port);
    await relay.listen();
    const b = agent(ctl, "node-b", `127.0.0.1:${relay.port}`);
    try {
      b.start();
      await waitForConfig(b, () => true);
      await until(() => relay.pairs.length >= 1);
      const pair = relay.pairs.at(-1);
      pair?.down.unpipe(pair.up);
      pair?.up.end(); // the FIN of shutdown(SHUT_WR); the agent's side keeps reading
      await until(() => pair?.upClosed === true, 3000);
    } finally {
      await b.stop();
      relay.close();
    }
  });
});
