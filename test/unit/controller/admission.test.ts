// Admission to the agent endpoint (controller/distribution/admission.ts) with fake sockets and
// fake time: the auth deadline, the per-address and total pending caps, authenticated sessions
// leaving the pool, idle closing, and rate-limited log lines; and the limits' validation.
import { EventEmitter } from "node:events";
import type { ServerHttp2Session } from "node:http2";
import type { Socket } from "node:net";
import { Writable } from "node:stream";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { SessionGuard } from "../../../controller/distribution/admission.ts";
import { DEFAULT_SESSION_LIMITS, resolveSessionLimits } from "../../../controller/distribution/limits.ts";
import { ControllerMetrics } from "../../../controller/metrics.ts";

class FakeSocket extends EventEmitter {
  destroyed = false;
  readonly remoteAddress: string;
  readonly remotePort: number;
  constructor(address: string, port: number) {
    super();
    this.remoteAddress = address;
    this.remotePort = port;
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit("close");
  }
}

class FakeSession extends EventEmitter {
  closed = false;
  destroyed = false;
  readonly socket: FakeSocket;
  constructor(socket: FakeSocket) {
    super();
    this.socket = socket;
  }
  close(): void {
    this.closed = true;
  }
}

let port = 40_000;
const sock = (address: string) => new FakeSocket(address, port++);
const asSocket = (s: FakeSocket) => s as unknown as Socket;
const asSession = (s: FakeSession) => s as unknown as ServerHttp2Session;

let logs: Record<string, unknown>[];
let metrics: ControllerMetrics;
const limits = resolveSessionLimits({ authTimeoutMs: 1000, maxPendingSessions: 4, maxPendingPerAddress: 2 });
const guard = () => {
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  return new SessionGuard(limits, metrics, pino({ level: "debug" }, out));
};
const count = async (name: string, reason: string) => {
  const m = await metrics.registry.getSingleMetric(name)?.get();
  return m?.values.find((v) => v.labels.reason === reason)?.value ?? 0;
};
const flush = () => new Promise((r) => setImmediate(r));

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
  logs = [];
  metrics = new ControllerMetrics({ defaultMetrics: false });
});
afterEach(() => vi.useRealTimers());

describe("SessionGuard", () => {
  test("a connection that never authenticates is closed at the deadline", async () => {
    const g = guard();
    const s = sock("10.0.0.1");
    g.admit(asSocket(s));
    expect(g.pending).toBe(1);
    vi.advanceTimersByTime(999);
    expect(s.destroyed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(s.destroyed).toBe(true);
    expect(g.pending).toBe(0);
    expect(await count("nodemesh_controller_sessions_closed_total", "auth_timeout")).toBe(1);
    await flush();
    expect(logs.at(-1)).toMatchObject({
      level: 40,
      reason: "auth_timeout",
      address: "10.0.0.1",
      ageMs: 1000,
    });
    expect(logs.at(-1)?.msg).toBe("no valid node token within 1000 ms; closing the connection");
  });

  test("beyond the per-address cap new connections are refused before TLS; others still come in", async () => {
    const g = guard();
    const a = [sock("10.0.0.1"), sock("10.0.0.1"), sock("10.0.0.1")];
    for (const s of a) g.admit(asSocket(s));
    expect(a.map((s) => s.destroyed)).toEqual([false, false, true]);
    const b = sock("10.0.0.2");
    g.admit(asSocket(b));
    expect(b.destroyed).toBe(false);
    expect(g.pending).toBe(3);
    expect(await count("nodemesh_controller_sessions_refused_total", "per_address_limit")).toBe(1);
    // A closed connection frees its slot.
    (a[0] as FakeSocket).destroy();
    const again = sock("10.0.0.1");
    g.admit(asSocket(again));
    expect(again.destroyed).toBe(false);
  });

  test("a full pool closes the oldest pending connection, not the newest", async () => {
    const g = guard();
    const all = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"].map(sock);
    for (const s of all) {
      g.admit(asSocket(s));
      vi.advanceTimersByTime(10);
    }
    expect(all.map((s) => s.destroyed)).toEqual([true, true, false, false, false, false]);
    expect(g.pending).toBe(4);
    expect(await count("nodemesh_controller_sessions_closed_total", "evicted")).toBe(2);
    expect(
      await metrics.registry.getSingleMetric("nodemesh_controller_pending_sessions")?.get(),
    ).toMatchObject({
      values: [{ value: 4 }],
    });
  });

  test("an authenticated session leaves the pool, survives the deadline, and closes when idle", async () => {
    const g = guard();
    const s = sock("10.0.0.1");
    g.admit(asSocket(s));
    const session = new FakeSession(s);
    g.session(asSession(session));
    expect(g.nodeOf(asSession(session))).toBeUndefined();
    const streamClose = new EventEmitter();
    const first = g.authenticated(asSession(session), "n1", (cb) => streamClose.once("close", cb));
    expect(first).toBe(true);
    expect(g.nodeOf(asSession(session))).toBe("n1");
    expect(g.pending).toBe(0);
    vi.advanceTimersByTime(5000);
    expect(s.destroyed).toBe(false);
    expect(session.closed).toBe(false);
    // A second stream: not the first authentication; the session stays while any stream is open.
    const second = new EventEmitter();
    expect(g.authenticated(asSession(session), "n1", (cb) => second.once("close", cb))).toBe(false);
    streamClose.emit("close");
    vi.advanceTimersByTime(5000);
    expect(session.closed).toBe(false);
    second.emit("close");
    vi.advanceTimersByTime(999);
    expect(session.closed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(session.closed).toBe(true);
    expect(await count("nodemesh_controller_sessions_closed_total", "idle")).toBe(1);
    // The freed pool slot is not counted twice when the socket finally closes.
    s.destroy();
    expect(g.pending).toBe(0);
  });

  test("a failed authentication closes an unauthenticated session, never an authenticated one", async () => {
    const g = guard();
    const s1 = sock("10.0.0.1");
    g.admit(asSocket(s1));
    const bad = new FakeSession(s1);
    g.session(asSession(bad));
    g.unauthenticated(asSession(bad), "unknown_token");
    expect(bad.closed).toBe(true);
    const s2 = sock("10.0.0.2");
    g.admit(asSocket(s2));
    const good = new FakeSession(s2);
    g.session(asSession(good));
    g.authenticated(asSession(good), "n1", () => {});
    g.unauthenticated(asSession(good), "unknown_token");
    expect(good.closed).toBe(false);
    expect(await count("nodemesh_controller_sessions_closed_total", "unauthenticated")).toBe(1);
  });

  test("log lines of one reason are rate-limited and report how many were suppressed", async () => {
    const g = guard();
    for (let i = 0; i < 5; i++) g.admit(asSocket(sock("10.0.0.9")));
    await flush();
    const refusals = () => logs.filter((l) => l.reason === "per_address_limit");
    expect(refusals()).toHaveLength(1);
    vi.advanceTimersByTime(10_000);
    g.admit(asSocket(sock("10.0.0.9")));
    // The first two timed out meanwhile (logged under their own reason): two are admitted, the third refused.
    g.admit(asSocket(sock("10.0.0.9")));
    g.admit(asSocket(sock("10.0.0.9")));
    await flush();
    expect(refusals()).toHaveLength(2);
    expect(refusals()[1]).toMatchObject({ suppressed: 2, address: "10.0.0.9" });
    expect(await count("nodemesh_controller_sessions_refused_total", "per_address_limit")).toBe(4);
  });
});

describe("resolveSessionLimits", () => {
  test("defaults, overrides, and a clear error naming the field", () => {
    expect(resolveSessionLimits()).toEqual(DEFAULT_SESSION_LIMITS);
    expect(resolveSessionLimits({ authTimeoutMs: 2000 }).authTimeoutMs).toBe(2000);
    expect(() => resolveSessionLimits({ maxPendingSessions: 0 })).toThrow(
      "session limit maxPendingSessions must be a positive integer, got 0",
    );
    expect(() => resolveSessionLimits({ keepaliveTimeoutMs: 1.5 })).toThrow("keepaliveTimeoutMs");
    expect(() => resolveSessionLimits({ maxPendingSessions: 10, maxPendingPerAddress: 11 })).toThrow(
      "session limit maxPendingPerAddress (11) must not exceed maxPendingSessions (10)",
    );
  });
});
