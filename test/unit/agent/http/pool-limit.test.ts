// The connection-pool limit layer: requests in flight per destination up to http2MaxRequests (and, on an
// HTTP/1.1 port, tcp.maxConnections), waiting ones up to http1MaxPendingRequests, retries in flight up to
// maxRetries; beyond them a fast 503 UpstreamOverflow that never reaches the upstream, counted by limit.
// A slot is held until the response body ends, and given up when a waiting client leaves.
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import type { Exchange, ResponseHead } from "../../../../agent/http/exchange.ts";
import {
  OVERFLOW_FLAG,
  PoolLimits,
  poolLimitLayer,
  type PoolLimitName,
} from "../../../../agent/http/pool-limit.ts";
import type { ServicePortInfo } from "../../../../agent/state/view.ts";
import { answer, destination, exchange } from "./resilience-fixture.ts";

/** An upstream whose responses stream until the test ends them; counts what reached it. */
function streamingUpstream() {
  const bodies: PassThrough[] = [];
  let reached = 0;
  const handler = async (): Promise<ResponseHead> => {
    reached++;
    const body = new PassThrough();
    bodies.push(body);
    return answer(200, { body });
  };
  return { handler, bodies, reached: () => reached };
}

function setup(pool: object, protocol = "http") {
  const d = destination(["a:80"], { connectionPool: pool });
  const sp = { ...d.sp, protocol } as ServicePortInfo;
  const overflows: PoolLimitName[] = [];
  const pools = new PoolLimits();
  const up = streamingUpstream();
  const h = poolLimitLayer(pools, { upstreamOverflow: (_d, limit) => overflows.push(limit) })(up.handler);
  const send = (over: Parameters<typeof exchange>[1] = {}) => h(exchange({ view: d.view, sp }, over));
  return { send, up, overflows, pools };
}

const end = (b: PassThrough) => new Promise<void>((r) => (b.once("end", r), b.resume(), b.end()));

describe("poolLimitLayer", () => {
  it("passes everything through, keeping no counters, when no limit is configured", async () => {
    const { send, up, pools } = setup({ tcp: { connectTimeout: "1s" } });
    for (let i = 0; i < 50; i++) await send();
    expect(up.reached()).toBe(50);
    expect(pools.dump()).toEqual([]);
  });

  it("answers 503 UpstreamOverflow at once beyond http2MaxRequests, until a response ends", async () => {
    const { send, up, overflows, pools } = setup({ http: { http2MaxRequests: 2 } });
    await send();
    await send();
    const refused = await send();
    expect(refused.status).toBe(503);
    expect(refused.flag).toBe(OVERFLOW_FLAG);
    expect(refused.reason).toMatch(/http2MaxRequests \(2\) of web\.default:80/);
    expect(up.reached()).toBe(2);
    expect(overflows).toEqual(["http2MaxRequests"]);
    expect(pools.dump()).toEqual([{ destination: "default/web:80", active: 2, pending: 0, retries: 0 }]);
    await end(up.bodies[0]!);
    expect((await send()).status).toBe(200);
    expect(up.reached()).toBe(3);
  });

  it("lets http1MaxPendingRequests wait for a slot in order, and refuses the next", async () => {
    const { send, up, overflows } = setup({ http: { http2MaxRequests: 1, http1MaxPendingRequests: 1 } });
    await send();
    const waiting = send();
    const refused = await send();
    expect(refused.flag).toBe(OVERFLOW_FLAG);
    expect(overflows).toEqual(["http1MaxPendingRequests"]);
    expect(up.reached()).toBe(1);
    await end(up.bodies[0]!);
    expect((await waiting).status).toBe(200);
    expect(up.reached()).toBe(2);
  });

  it("bounds an HTTP/1.1 port by tcp.maxConnections (one connection per request) but not an h2c port", async () => {
    const h1 = setup({ tcp: { maxConnections: 1 } }, "http");
    await h1.send();
    expect((await h1.send()).flag).toBe(OVERFLOW_FLAG);
    expect(h1.overflows).toEqual(["maxConnections"]);
    const h2 = setup({ tcp: { maxConnections: 1 } }, "http2");
    for (let i = 0; i < 5; i++) expect((await h2.send()).status).toBe(200);
  });

  it("counts retries in flight against maxRetries, first tries not at all", async () => {
    const { send, up, overflows } = setup({ http: { maxRetries: 1 } });
    const retry = { headers: { "x-nodemesh-attempt": "2" } };
    for (let i = 0; i < 3; i++)
      expect((await send({ headers: { "x-nodemesh-attempt": "1" } })).status).toBe(200);
    expect((await send(retry)).status).toBe(200);
    expect((await send(retry)).flag).toBe(OVERFLOW_FLAG);
    expect(overflows).toEqual(["maxRetries"]);
    await end(up.bodies[3]!);
    expect((await send(retry)).status).toBe(200);
  });

  it("allows no retry at all with maxRetries 0", async () => {
    const { send } = setup({ http: { maxRetries: 0 } });
    expect((await send({ headers: { "x-nodemesh-attempt": "2" } })).flag).toBe(OVERFLOW_FLAG);
  });

  it("frees a slot at once for a response without a body, and when a waiting client leaves", async () => {
    const d = destination(["a:80"], {
      connectionPool: { http: { http2MaxRequests: 1, http1MaxPendingRequests: 1 } },
    });
    const pools = new PoolLimits();
    let calls = 0;
    const noBody = poolLimitLayer(pools)(async () => (calls++, answer(204)));
    for (let i = 0; i < 3; i++) expect((await noBody(exchange(d))).status).toBe(204);
    expect(calls).toBe(3);
    const up = streamingUpstream();
    const h = poolLimitLayer(new PoolLimits())(up.handler);
    await h(exchange(d));
    const ctl = new AbortController();
    const leaving = { ...exchange(d), signal: ctl.signal } as Exchange;
    const waiting = h(leaving);
    ctl.abort();
    expect((await waiting).flag).toBe(OVERFLOW_FLAG);
    expect(up.reached()).toBe(1);
    // The queue is free again: another request may wait.
    const next = h(exchange(d));
    await end(up.bodies[0]!);
    expect((await next).status).toBe(200);
  });
});
