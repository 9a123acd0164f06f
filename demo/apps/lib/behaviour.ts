// What a request asks the test backend to do, read from its query string. Pure: no I/O, so the
// parsing rules are table-tested. Unknown parameters are ignored on purpose: route-match tests add
// their own query parameters and must not trip the backend.

export interface Behaviour {
  /** Milliseconds to wait after the request body has arrived and before answering. */
  readonly delayMs: number;
  /** Status code of the answer. */
  readonly status: number;
  /** Probability (0..100) of answering 503 instead, for retry and outlier tests. */
  readonly failPercent: number;
  /** When set, the body is this many bytes of filler, streamed, instead of the JSON report. */
  readonly bytes: number | null;
  /** When set, the request body is streamed back as the response body. */
  readonly echo: boolean;
}

/** A query parameter that cannot be honoured; `field` names it so the caller sees which. */
export class BehaviourError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`query parameter ${field}: ${message}`);
    this.name = "BehaviourError";
    this.field = field;
  }
}

// Bounds keep a typo from parking a connection for hours or asking for terabytes: five minutes is
// longer than any timeout a test sets, and 1 GiB is larger than any body a size test sends.
export const MAX_DELAY_MS = 300_000;
export const MAX_BYTES = 1 << 30;

const DIGITS = /^\d+$/;
const PERCENT = /^(\d+(?:\.\d+)?)%?$/;

function integer(query: URLSearchParams, field: string, min: number, max: number): number | null {
  const raw = query.get(field);
  if (raw === null) return null;
  if (!DIGITS.test(raw))
    throw new BehaviourError(field, `expected a whole number, got ${JSON.stringify(raw)}`);
  const value = Number(raw);
  if (value < min || value > max)
    throw new BehaviourError(field, `must be within ${min}..${max}, got ${raw}`);
  return value;
}

function percent(query: URLSearchParams, field: string): number {
  const raw = query.get(field);
  return raw === null ? 0 : parsePercent(field, raw);
}

/** "25", "25%" or "2.5%" as a number 0..100; throws BehaviourError naming `field` otherwise. */
export function parsePercent(field: string, raw: string): number {
  const match = PERCENT.exec(raw);
  const value = match ? Number(match[1]) : NaN;
  if (!(value >= 0 && value <= 100)) {
    throw new BehaviourError(field, `expected a percentage 0..100 such as 25%, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function flag(query: URLSearchParams, field: string): boolean {
  const raw = query.get(field);
  if (raw === null || raw === "0" || raw === "false") return false;
  if (raw === "" || raw === "1" || raw === "true") return true;
  throw new BehaviourError(field, `expected 1, true, 0 or false, got ${JSON.stringify(raw)}`);
}

/** Reads ?delay=, ?status=, ?fail=, ?bytes= and ?echo=; throws BehaviourError naming the bad one. */
export function parseBehaviour(query: URLSearchParams): Behaviour {
  const behaviour: Behaviour = {
    delayMs: integer(query, "delay", 0, MAX_DELAY_MS) ?? 0,
    // 1xx are not final answers and would leave the client waiting, so the range starts at 200.
    status: integer(query, "status", 200, 599) ?? 200,
    failPercent: percent(query, "fail"),
    bytes: integer(query, "bytes", 0, MAX_BYTES),
    echo: flag(query, "echo"),
  };
  if (behaviour.echo && behaviour.bytes !== null) {
    throw new BehaviourError("echo", "cannot be combined with bytes: both choose the response body");
  }
  const bodyless = behaviour.status === 204 || behaviour.status === 304;
  if (bodyless && (behaviour.echo || behaviour.bytes !== null)) {
    throw new BehaviourError("status", `${behaviour.status} has no body, so it cannot carry bytes or echo`);
  }
  return behaviour;
}

/** Whether this request is one of the injected failures; `random` is injectable for tests. */
export function shouldFail(behaviour: Behaviour, random: () => number = Math.random): boolean {
  return behaviour.failPercent > 0 && random() * 100 < behaviour.failPercent;
}
