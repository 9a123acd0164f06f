// The agent's loggers: one pino root (JSON lines to stdout, `LOG_LEVEL`), a child for access records
// (`{"log":"access"}` as ztunnel's `access` target). Callers guard hot-path lines with `isLevelEnabled`.
import { pino, type Logger, type DestinationStream } from "pino";

export type { Logger };

export function createLogger(level = "info", destination?: DestinationStream): Logger {
  return pino(
    { level, base: { component: "agent" } },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/** Access log lines (one per closed connection) go through this child so they can be filtered by `log`. */
export function accessLogger(root: Logger): Logger {
  return root.child({ log: "access" });
}
