// Regression (found by test/fuzz/agent-servers.fuzz.test.ts): an HTTP/1 request line saying
// "HTTP/2.0" passed node's HTTP/1 parser with httpVersionMajor 2, was taken for an HTTP/2 stream and
// rejected the request's promise with a TypeError (an unhandled rejection in the agent). It is
// answered 505 and the connection closed; the handler never sees it.
import { createServer, connect, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DownstreamServer, type DownstreamContext } from "../../../../agent/http/server.ts";
import type { MeshView, ServicePortInfo, WorkloadInfo } from "../../../../agent/state/view.ts";

let listener: Server;
let port = 0;
let handled = 0;

beforeAll(async () => {
  const server = new DownstreamServer({
    handler: async () => {
      handled++;
      return { status: 204, headers: {} };
    },
    onDone: () => {},
    onUpgrade: (_req, socket) => socket.destroy(),
  });
  listener = createServer((socket: Socket) => {
    const ctx: DownstreamContext = {
      // The handler above reads none of these: the request must be refused before any layer runs.
      view: () => ({}) as MeshView,
      source: {} as WorkloadInfo,
      servicePort: { service: { host: "web.default" } } as ServicePortInfo,
      socket,
    };
    server.accept(socket, "http1", ctx);
  });
  await new Promise<void>((r) => listener.listen(0, "127.0.0.1", r));
  port = (listener.address() as { port: number }).port;
});
afterAll(() => listener.close());

function send(text: string): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = connect({ host: "127.0.0.1", port }, () => s.write(text));
    s.on("data", (d: Buffer) => chunks.push(d));
    s.on("error", () => {});
    s.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
    setTimeout(() => s.end(), 500);
  });
}

describe("DownstreamServer and the HTTP version", () => {
  test("an HTTP/1 request line with HTTP/2.0 gets 505 and a close, not the handler", async () => {
    const reply = await send("GET / HTTP/2.0\r\nhost: web.default\r\n\r\n");
    expect(reply).toMatch(/^HTTP\/1\.1 505 /);
    expect(reply.toLowerCase()).toContain("connection: close");
    expect(handled).toBe(0);
  });

  test("an HTTP/1.1 request still reaches the handler", async () => {
    const reply = await send("GET / HTTP/1.1\r\nhost: web.default\r\nconnection: close\r\n\r\n");
    expect(reply).toMatch(/^HTTP\/1\.1 204 /);
    expect(handled).toBe(1);
  });
});
