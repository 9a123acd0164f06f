// HTTP/2 settings shared by both ends of the agent-to-agent sessions.

/** HTTP/2 flow control as ztunnel: 4 MiB per stream, 16 MiB per connection (bulk transfers at line rate). */
export const STREAM_WINDOW = 4 * 1024 * 1024;
/**
 * Without it the session window stays at HTTP/2's 64 KiB, and the receiver sends a WINDOW_UPDATE (one
 * more TLS record and write) for every ~32 KiB received across all streams of the session.
 */
export const CONNECTION_WINDOW = 16 * 1024 * 1024;
/** Streams one inbound session may have open: bounds a peer's share of the agent (Hyper's default is 200). */
export const MAX_CONCURRENT_STREAMS = 200;

/** An inbound session's idle limit: three missed PINGs of a peer that pings as we do, never under 30 s. */
export function sessionIdleMs(pingIntervalMs: number): number {
  return pingIntervalMs > 0 ? Math.max(3 * pingIntervalMs, 30_000) : 0;
}
