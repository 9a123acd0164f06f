// pipeBoth with real sockets under backpressure (a slow reader must not lose or reorder bytes, and the
// source must be paused meanwhile), and AgentMetrics' aggregation (counts handed to prom-client at
// scrape time, one series per label set as the labels were at each event).
import { randomBytes } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { pipeBoth } from "../../../agent/proxy/pipe.ts";
import { AgentMetrics, unknownLabels } from "../../../agent/telemetry/metrics.ts";

/** A connected socket pair on 127.0.0.1: [client end, server end]. */
async function socketPair(server: Server): Promise<[Socket, Socket]> {
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => server.once("connection", r));
  const c = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
  await new Promise<void>((r) => c.once("connect", () => r()));
  return [c, await accepted];
}

describe("pipeBoth", () => {
  const server = createServer({ allowHalfOpen: true });
  const listening = new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  afterAll(() => server.close());

  it("carries 8 MiB to a slow reader unchanged, pausing the source, and forwards the half-close", async () => {
    await listening;
    const [client, proxyIn] = await socketPair(server);
    const [proxyOut, app] = await socketPair(server);
    app.pause(); // nobody reads: the kernel buffers fill and proxyOut.write() returns false
    const done = new Promise<Error | undefined>((r) => pipeBoth(proxyIn, proxyOut, r));
    const payload = randomBytes(8 * 1024 * 1024);
    client.end(payload);
    await new Promise((r) => setTimeout(r, 200));
    expect(proxyIn.isPaused()).toBe(true); // backpressure reached the source
    const got: Buffer[] = [];
    app.on("data", (d: Buffer) => got.push(d));
    app.resume();
    await new Promise<void>((r) => app.once("end", () => r())); // the client's FIN arrives as a FIN
    expect(Buffer.concat(got).equals(payload)).toBe(true);
    app.end("reply");
    const reply = await new Promise<string>((r) => {
      let s = "";
      client.on("data", (d: Buffer) => (s += d.toString()));
      client.on("end", () => r(s));
    });
    expect(reply).toBe("reply");
    expect(await done).toBeUndefined();
  });

  it("an error on one side resets the other and reports the error", async () => {
    await listening;
    const [client, proxyIn] = await socketPair(server);
    const [proxyOut, app] = await socketPair(server);
    const done = new Promise<Error | undefined>((r) => pipeBoth(proxyIn, proxyOut, r));
    const appErr = new Promise<NodeJS.ErrnoException>((r) => app.once("error", r));
    client.on("error", () => {});
    client.resetAndDestroy();
    expect((await done)?.message).toMatch(/ECONNRESET/);
    expect((await appErr).code).toBe("ECONNRESET");
  });
});

describe("AgentMetrics", () => {
  it("adds connections up per label set and exports them at scrape time", async () => {
    const lines: string[] = [];
    const access = pino(
      { level: "info" },
      new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }),
    );
    const m = new AgentMetrics({ version: "t", node: "n", access, defaultMetrics: false });
    for (const bytes of [100, 20]) {
      const labels = unknownLabels("source");
      const rec = m.record("outbound", labels, "1.1.1.1", "2.2.2.2:80");
      m.opened(rec);
      rec.received = bytes;
      rec.sent = bytes * 2;
      labels.response_flags = bytes === 20 ? "AuthorizationPolicyDenied" : "-";
      m.finish(rec, false);
    }
    const failed = m.record("outbound", unknownLabels("source"), "1.1.1.1", "2.2.2.2:80");
    failed.labels.response_flags = "NoHealthyUpstream";
    m.finish(failed, true);
    const text = await m.text();
    const value = (metric: string, flags: string) =>
      new RegExp(`^${metric}\\{reporter="source",[^}]*response_flags="${flags}"\\} (\\d+)$`, "m").exec(
        text,
      )?.[1];
    expect(value("nodemesh_tcp_connections_opened_total", "-")).toBe("2"); // labels when opened
    expect(value("nodemesh_tcp_connections_closed_total", "-")).toBe("1");
    expect(value("nodemesh_tcp_connections_closed_total", "AuthorizationPolicyDenied")).toBe("1");
    expect(value("nodemesh_tcp_received_bytes_total", "-")).toBe("100");
    expect(value("nodemesh_tcp_sent_bytes_total", "AuthorizationPolicyDenied")).toBe("40");
    expect(value("nodemesh_tcp_connections_failed_total", "NoHealthyUpstream")).toBe("1");
    expect(value("nodemesh_tcp_connections_opened_total", "NoHealthyUpstream")).toBeUndefined();
    // A second scrape without new connections reports the same totals (nothing counted twice).
    expect(await m.text()).toBe(text);
    expect(lines).toHaveLength(3);
  });
});
