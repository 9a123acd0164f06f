// The socket keeper in one process (pidfd_getfd of our own fds needs no privilege): a listener
// handed to the keeper outlives its server, queues the connections that arrive meanwhile, and the
// next client takes it back and serves them; a dropped one is closed; with no client for the grace
// time the keeper releases everything. Plus the protocol's parser on bad input.
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { KeeperClient } from "../../../../agent/datapath/keeper/client.ts";
import { SocketKeeperServer } from "../../../../agent/datapath/keeper/keeper.ts";
import { keeperSocketName, listenerKey, parseRequest } from "../../../../agent/datapath/keeper/protocol.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function fdOf(server: Server): number {
  return (server as unknown as { _handle: { fd: number } })._handle.fd;
}

async function listening(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return { server, port };
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
}

async function keeper(
  graceMs: number,
): Promise<{ pinDir: string; server: SocketKeeperServer; exited: Promise<string> }> {
  const pinDir = `/test/keeper-${process.pid}-${Math.random().toString(36).slice(2)}`;
  let exit: (r: string) => void = () => {};
  const exited = new Promise<string>((r) => (exit = r));
  const server = new SocketKeeperServer({ socketName: keeperSocketName(pinDir), graceMs, onExit: exit });
  await server.listen();
  cleanups.push(() => server.stop("test over"));
  return { pinDir, server, exited };
}

describe("socket keeper", () => {
  it("keeps a listener across its owner, queues connections, and hands it to the next client", async () => {
    const k = await keeper(10_000);
    const first = await KeeperClient.find(k.pinDir);
    expect(first).toBeDefined();
    const { server, port } = await listening();
    const key = listenerKey(42n, "127.0.0.1", port);
    await first!.hold(key, fdOf(server));
    expect(k.server.held).toBe(1);
    // The owner goes away: its server closes, the keeper's copy still listens.
    server.close();
    first!.close();
    const waiting = await dial(port); // completes in the kernel: the listener exists
    const next = await KeeperClient.find(k.pinDir);
    cleanups.push(() => next?.close());
    expect(next!.inheritedCount).toBe(1);
    expect(next!.adopt(listenerKey(42n, "127.0.0.1", port + 1), "127.0.0.1", port + 1)).toBeUndefined();
    const fd = next!.adopt(key, "127.0.0.1", port);
    expect(fd).toBeTypeOf("number");
    const adopted = createServer((s) => s.end("served by the next agent\n"));
    await new Promise<void>((r) => adopted.listen({ fd: fd! }, r));
    cleanups.push(() => adopted.close());
    const reply = await new Promise<string>((r) => {
      let out = "";
      waiting.on("data", (b: Buffer) => (out += b.toString()));
      waiting.on("end", () => r(out));
    });
    expect(reply).toBe("served by the next agent\n");
  });

  it("closes a dropped listener: new connects are refused", async () => {
    const k = await keeper(10_000);
    const c = await KeeperClient.find(k.pinDir);
    cleanups.push(() => c?.close());
    const { server, port } = await listening();
    const key = listenerKey(7n, "127.0.0.1", port);
    await c!.hold(key, fdOf(server));
    server.close();
    await c!.drop(key);
    expect(k.server.held).toBe(0);
    await expect(dial(port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("refuses to hold what is not a listener, and requests from a client that did not say hello", async () => {
    const k = await keeper(10_000);
    const c = await KeeperClient.find(k.pinDir);
    cleanups.push(() => c?.close());
    await expect(c!.hold(listenerKey(1n, "127.0.0.1", 1), 0)).rejects.toThrow(/hold refused/);
    expect(k.server.held).toBe(0);
  });

  it("with no client for the grace time, releases every listener and exits", async () => {
    const k = await keeper(300);
    const c = await KeeperClient.find(k.pinDir);
    const { server, port } = await listening();
    await c!.hold(listenerKey(9n, "127.0.0.1", port), fdOf(server));
    server.close();
    c!.close();
    expect(await k.exited).toMatch(/no agent for 300 ms/);
    await expect(dial(port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });
});

describe("keeper protocol", () => {
  it.each([
    ["not json", /not JSON/],
    ["[]", /unknown op/],
    ['{"op":"hello"}', /hello needs a pid/],
    ['{"op":"hold","key":"x","fd":3}', /listener key/],
    ['{"op":"hold","key":"1/127.0.0.1:80","fd":-1}', /needs an fd/],
    ['{"op":"drop","key":"1/127.0.0.1"}', /listener key/],
    ['{"op":"steal"}', /unknown op "steal"/],
  ])("%s is refused", (line, why) => {
    const r = parseRequest(line);
    expect("error" in r && r.error).toMatch(why);
  });

  it("accepts the four requests", () => {
    expect(parseRequest('{"op":"hello","pid":12}')).toEqual({ op: "hello", pid: 12 });
    expect(parseRequest('{"op":"hold","key":"5/0.0.0.0:15008","fd":21}')).toEqual({
      op: "hold",
      key: "5/0.0.0.0:15008",
      fd: 21,
    });
    expect(parseRequest('{"op":"drop","key":"5/0.0.0.0:15008"}')).toEqual({
      op: "drop",
      key: "5/0.0.0.0:15008",
    });
    expect(parseRequest('{"op":"stop"}')).toEqual({ op: "stop" });
  });
});
