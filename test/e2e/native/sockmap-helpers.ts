// Helpers of the sockmap e2e test: sockets over fds made in a pod, an echo "agent", a full-duplex
// transfer with half-close, the pod's loopback byte counter, and waiting for a condition.
import net from "node:net";
import { sh } from "./netns-fixture.ts";
import type { Pod } from "./netns-fixture.ts";

/** Connects an unconnected socket fd (made in a pod) to host:port; resolves once connected. */
export function openSocket(fd: number, host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
    socket.once("error", reject);
    socket.connect(port, host, () => {
      socket.off("error", reject);
      resolve(socket);
    });
  });
}

/** The agent side of leg 1 in these tests: echoes every byte, FIN after the peer's FIN. */
export function echo(socket: net.Socket): void {
  socket.on("error", () => socket.destroy());
  socket.pipe(socket);
}

/** Writes `payload`, half-closes, and resolves with everything read until the peer's FIN. */
export function transfer(socket: net.Socket, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.once("error", reject);
    socket.once("end", () => {
      socket.end();
      resolve(Buffer.concat(chunks));
    });
    socket.end(payload);
  });
}

/** Bytes sent on the pod's loopback interface (every packet between two local sockets). */
export function loopbackBytes(pod: Pod): number {
  const [lo] = JSON.parse(sh("ip", ["-n", pod.name, "-s", "-j", "link", "show", "lo"])) as {
    stats64: { tx: { bytes: number } };
  }[];
  return lo!.stats64.tx.bytes;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until it holds; fails after `limitMs` (a hang guard, not a timing assertion). */
export async function untilTrue(cond: () => boolean, limitMs = 10_000): Promise<void> {
  for (let waited = 0; !cond(); waited += 10) {
    if (waited > limitMs) throw new Error(`condition not met within ${limitMs} ms: ${cond.toString()}`);
    await sleep(10);
  }
}

/** Polls `value` until it reads the same five times in a row; resolves with that value. */
export async function untilStable(value: () => number, limitMs = 10_000): Promise<number> {
  let last = value();
  let same = 0;
  for (let waited = 0; same < 5; waited += 20) {
    if (waited > limitMs) throw new Error(`value still changing after ${limitMs} ms`);
    await sleep(20);
    const v = value();
    same = v === last ? same + 1 : 0;
    last = v;
  }
  return last;
}
