// The agent's loggers: one pino root (JSON lines to stdout, `LOG_LEVEL`), a child for access records
// (`{"log":"access"}` as ztunnel's `access` target). Callers guard hot-path lines with `isLevelEnabled`.
//
// Stdout is written in batches (up to BATCH_BYTES, at least every FLUSH_MS, and synchronously at exit):
// one access line per request each written on its own cost a system call and a buffer copy per line,
// about a tenth of the agent's CPU under load. Envoy buffers its access log the same way (flushed every
// second by default); a SIGKILL loses at most the last FLUSH_MS of lines.
import { pino, type Logger, type DestinationStream } from "pino";

export type { Logger };

const BATCH_BYTES = 8 * 1024;
const FLUSH_MS = 100;

export function createLogger(level = "info", destination?: DestinationStream): Logger {
  return pino({ level, base: { component: "agent" } }, destination ?? batchedStdout());
}

function batchedStdout(): DestinationStream {
  const dest = pino.destination({ fd: 1, sync: false, minLength: BATCH_BYTES });
  setInterval(() => dest.flush(), FLUSH_MS).unref();
  return dest;
}

/** Access log lines (one per closed connection) go through this child so they can be filtered by `log`. */
export function accessLogger(root: Logger): Logger {
  return root.child({ log: "access" });
}
