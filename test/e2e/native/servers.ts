// Test servers for the native e2e tests, all owned by the test process through sockets opened
// inside the pods' namespaces (native listenInNetns), answering one HTTP response per connection.
import net from "node:net";
import * as nm from "../../../native/index.ts";
import type { Pod } from "./netns-fixture.ts";

function respond(socket: net.Socket, body: string): void {
  socket.on("error", () => {});
  socket.once("data", () => {
    socket.end(
      `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}

async function serve(fd: number, handler: (socket: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ fd }, () => resolve());
  });
  return server;
}

export interface CaptureReply {
  pod: string;
  orig: string;
  /** Original destination as the *other* instance sees it (must be "none"). */
  other?: string;
  peerPort: number;
}

/**
 * The in-pod capture listener (127.0.0.1:<port> in the pod): replies with the original destination
 * that `lookup()` finds for the accepted socket, read at accept time.
 */
export async function captureListener(
  pod: Pod,
  port: number,
  lookup: () => nm.Datapath | undefined,
  other?: () => nm.Datapath | undefined,
): Promise<net.Server> {
  const fd = await nm.listenInNetns(pod.netnsPath, "127.0.0.1", port);
  return serve(fd, (socket) => {
    const show = (dp: nm.Datapath | undefined): string => {
      const orig = dp?.originalDestination(socket);
      return orig ? `${orig.address}:${orig.port}` : dp ? "none" : "unknown";
    };
    const reply: CaptureReply = { pod: pod.name, orig: show(lookup()), peerPort: socket.remotePort ?? -1 };
    if (other) reply.other = show(other());
    respond(socket, JSON.stringify(reply));
  });
}

/** A plain server on 0.0.0.0:<port> in the pod: replies `direct:<pod>:<port>`. */
export async function directServer(pod: Pod, port: number): Promise<net.Server> {
  const fd = await nm.listenInNetns(pod.netnsPath, "0.0.0.0", port);
  return serve(fd, (socket) => respond(socket, `direct:${pod.name}:${port}`));
}

/** One HTTP GET over an already created (unconnected) socket fd; resolves with the body. */
export function getOverFd(fd: number, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new net.Socket({ fd, readable: true, writable: true });
    let data = "";
    socket.setTimeout(5000, () => socket.destroy(new Error("timeout")));
    socket.on("data", (d: Buffer) => (data += d.toString()));
    socket.on("error", reject);
    socket.on("close", () => resolve(data.split("\r\n\r\n")[1] ?? ""));
    socket.connect(port, host, () => socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`));
  });
}
