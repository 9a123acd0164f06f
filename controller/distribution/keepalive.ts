// Dead-peer detection for agent sessions: an HTTP/2 PING every interval, and the session is
// destroyed when one is not answered within the timeout. Heartbeats on the config stream do not
// do this: they are writes, and a write to a host that vanished (power loss, a partition, a peer
// that half-closed and stopped reading) sits in the kernel's send buffer until TCP gives up, about
// 15 minutes later. A PING answer needs the peer's HTTP/2 stack to read and write.
//
// Invariants: at most one PING of ours is outstanding; nothing runs after the session closes.
import type { Http2Session } from "node:http2";

export interface KeepaliveOptions {
  intervalMs: number;
  timeoutMs: number;
}

/** Starts PINGing `session`; `onDead` runs once, just before the session is destroyed. */
export function startKeepalive(
  session: Http2Session,
  opts: KeepaliveOptions,
  onDead: () => void,
): () => void {
  let deadline: NodeJS.Timeout | undefined;
  const stop = () => {
    clearInterval(tick);
    clearTimeout(deadline);
    deadline = undefined;
  };
  const tick = setInterval(() => {
    if (deadline || session.destroyed || session.closed) return;
    let sent = false;
    try {
      sent = session.ping(() => {
        clearTimeout(deadline);
        deadline = undefined;
      });
    } catch {
      return; // not connected yet or already closing: the next tick decides
    }
    if (!sent) return;
    deadline = setTimeout(() => {
      stop();
      onDead();
      session.destroy();
    }, opts.timeoutMs);
    deadline.unref();
  }, opts.intervalMs);
  tick.unref();
  session.once("close", stop);
  return stop;
}
