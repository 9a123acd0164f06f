// The demo backend's non-plain-HTTP services with the sample clients a lab pod runs: the WebSocket
// echo (ws-client, plus raw frames for the protocol edges), gRPC (grpc-client) and the server-first
// banner service (banner-client).
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonLines, runApp, startBackend, type Backend } from "./harness.ts";

let backend: Backend;
beforeAll(async () => {
  backend = await startBackend("pod-b");
});
afterAll(async () => {
  await backend?.stop();
});

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";

/** Opens a raw socket, sends a handshake, and returns the socket and everything read so far. */
/** `read(n)` resolves once at least `n` bytes arrived (TCP may split the server's frames), or on close. */
async function rawHandshake(
  headers: string,
): Promise<{ socket: Socket; read: (minBytes?: number) => Promise<Buffer> }> {
  const socket = connect(backend.http, "127.0.0.1");
  let buffered = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  socket.on("data", (c: Buffer) => {
    buffered = Buffer.concat([buffered, c]);
    wake?.();
  });
  socket.on("close", () => wake?.());
  socket.write(`GET /ws HTTP/1.1\r\nhost: backend\r\n${headers}\r\n`);
  let closed = false;
  socket.once("close", () => (closed = true));
  const read = async (minBytes = 1): Promise<Buffer> => {
    const deadline = Date.now() + 5_000;
    while (buffered.length < minBytes && !closed && Date.now() < deadline) {
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
    const out = buffered;
    buffered = Buffer.alloc(0);
    return out;
  };
  return { socket, read };
}

const WS_HEADERS = `upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: ${KEY}\r\n`;

/** A masked client frame with a short payload. */
function frame(opcode: number, payload: string | Buffer, fin = true): Buffer {
  const key = [1, 2, 3, 4];
  const data = Buffer.from(payload);
  const masked = data.map((b, i) => b ^ key[i & 3]!);
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | data.length, ...key]), masked]);
}

describe("WebSocket echo on /ws", () => {
  it("echoes text and binary messages up to 64-bit lengths, greeting with the pod (ws-client)", async () => {
    const r = await runApp("ws-client.ts", [`127.0.0.1:${backend.http}`, "--count", "6", "--size", "70000"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = jsonLines(r.stdout);
    expect(lines[0]).toMatchObject({ pod: "pod-b" });
    expect(lines.slice(1, 7).map((l) => [l.type, l.bytes, l.ok])).toEqual(
      [0, 1, 2, 3, 4, 5].map((i) => [i % 2 ? "binary" : "text", 70000, true]),
    );
    expect(lines.at(-1)).toEqual({ summary: { pod: "pod-b", sent: 6, matched: 6, closeCode: 1000 } });
  });

  it("fails the ws-client when nothing listens", async () => {
    const r = await runApp("ws-client.ts", ["127.0.0.1:1", "--count", "1"]);
    expect(r.code).toBe(1);
    expect(jsonLines(r.stdout).at(-1)).toMatchObject({ summary: { pod: null, matched: 0 } });
  });

  it("joins a fragmented message, answers a ping between the fragments, and closes with the peer's code", async () => {
    const { socket, read } = await rawHandshake(WS_HEADERS);
    const head = (await read()).toString("latin1");
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    expect(head).toMatch(/sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);
    expect(head).toMatch(/x-served-by: pod-b\r\n/);
    socket.write(Buffer.concat([frame(0x1, "hel", false), frame(0x9, "are you there"), frame(0x0, "lo")]));
    const got = await read(22);
    // pong (0x8a) with the ping's payload, then one final text frame (0x81) with the joined message
    expect(got.subarray(0, 15)).toEqual(
      Buffer.concat([Buffer.from([0x8a, 13]), Buffer.from("are you there")]),
    );
    expect(got.subarray(15)).toEqual(Buffer.concat([Buffer.from([0x81, 5]), Buffer.from("hello")]));
    socket.write(frame(0x8, Buffer.from([0x0f, 0xa0, ...Buffer.from("bye")])));
    expect((await read()).subarray(0, 4)).toEqual(Buffer.from([0x88, 2, 0x0f, 0xa0]));
    socket.destroy();
  });

  it("closes with 1002 on an unmasked frame", async () => {
    const { socket, read } = await rawHandshake(WS_HEADERS);
    await read();
    socket.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));
    const got = await read();
    expect(got.subarray(0, 4)).toEqual(Buffer.from([0x88, got[1]!, 0x03, 0xea]));
    expect(got.subarray(4).toString()).toMatch(/not masked/);
    socket.destroy();
  });

  it("refuses a handshake with the wrong version, naming the header", async () => {
    const { socket, read } = await rawHandshake(WS_HEADERS.replace("version: 13", "version: 8"));
    const reply = (await read()).toString();
    expect(reply).toMatch(/^HTTP\/1\.1 426 Upgrade Required\r\n/);
    expect(reply).toMatch(/sec-websocket-version must be 13/);
    socket.destroy();
  });
});

describe("gRPC nodemesh.echo.v1.Echo (grpc-client)", () => {
  const target = (): string => `127.0.0.1:${backend.grpc}`;

  it("answers Say with the pod, the message and the metadata it received", async () => {
    const r = await runApp("grpc-client.ts", [
      target(),
      "say",
      "hello",
      "--count",
      "3",
      "--metadata",
      "x-test=42",
    ]);
    expect(r.code).toBe(0);
    const lines = jsonLines(r.stdout);
    expect(lines).toHaveLength(4);
    for (const l of lines.slice(0, 3)) {
      expect(l).toMatchObject({ pod: "pod-b", message: "hello", metadata: { "x-test": "42" } });
    }
    expect(lines[3]).toEqual({
      summary: { calls: 3, ok: 3, failed: 0, pods: { "pod-b": 3 }, codes: { "0": 3 } },
    });
  });

  it("fails Say with the requested status and exits 1", async () => {
    const r = await runApp("grpc-client.ts", [target(), "say", "x", "--status", "7"]);
    expect(r.code).toBe(1);
    expect(jsonLines(r.stdout)[0]).toMatchObject({
      code: 7,
      details: expect.stringMatching(/pod-b.*status 7/),
    });
  });

  it("delays Say by delay_ms, so a shorter deadline ends it with DEADLINE_EXCEEDED", async () => {
    const r = await runApp("grpc-client.ts", [target(), "say", "x", "--delay", "3000", "--deadline", "300"]);
    expect(r.code).toBe(1);
    expect(jsonLines(r.stdout)[0]).toMatchObject({ code: 4 });
    expect(r.ms).toBeLessThan(2500);
  });

  it("streams Count replies 1..n from the pod", async () => {
    const r = await runApp("grpc-client.ts", [target(), "count", "5"]);
    expect(r.code).toBe(0);
    const lines = jsonLines(r.stdout);
    expect(lines.slice(0, 5)).toEqual([1, 2, 3, 4, 5].map((i) => ({ i, pod: "pod-b" })));
    expect(lines[5]).toMatchObject({ summary: { ok: 1, failed: 0 } });
  });

  it("rejects an oversized Count with INVALID_ARGUMENT naming n", async () => {
    const r = await runApp("grpc-client.ts", [target(), "count", "200000"]);
    expect(r.code).toBe(1);
    expect(jsonLines(r.stdout)[0]).toEqual({ code: 3, details: "n must be at most 100000, got 200000" });
  });

  it.each([
    [["say", "x", "--status", "17"], /--status must be a whole number 0\.\.16/],
    [["say"], /say needs a <message>/],
    [["shout", "x"], /unknown command "shout"/],
    [["say", "x", "--metadata", "novalue"], /--metadata must be key=value/],
  ])("exits 2 on bad arguments %j", async (args, message) => {
    const r = await runApp("grpc-client.ts", [target(), ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/usage: grpc-client\.ts/);
  });
});

describe("server-first banner service (banner-client)", () => {
  it("sends the banner before the client speaks, then echoes a line and says goodbye", async () => {
    const r = await runApp("banner-client.ts", [`127.0.0.1:${backend.banner}`, "--line", "EHLO lab"]);
    expect(r.code).toBe(0);
    const [banner, echo, bye] = jsonLines(r.stdout);
    expect(banner).toMatchObject({ banner: "220 pod-b ready" });
    expect(banner!.ms_to_banner as number).toBeLessThan(1000);
    expect(echo).toEqual({ sent: "EHLO lab", echo: "EHLO lab", ok: true });
    expect(bye).toEqual({ bye: "221 pod-b closing", ok: true });
  });

  it("exits 1 with the connect error when nothing listens, and 2 on a bad target", async () => {
    const refused = await runApp("banner-client.ts", ["127.0.0.1:1"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/ECONNREFUSED/);
    const bad = await runApp("banner-client.ts", ["localhost"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/<host:port> must look like/);
  });
});
