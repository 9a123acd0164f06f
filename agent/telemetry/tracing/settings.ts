// Tracing settings from the standard OpenTelemetry SDK environment variables (the names every OTel SDK
// and collector guide uses, so a Jaeger or Tempo how-to applies unchanged) plus the agent's own flag.
// Parsed once at startup, validated, frozen; a bad value is a ConfigError naming the variable, so the
// agent refuses to start rather than trace silently with a setting the operator did not mean.
// Pure: the caller passes the environment (agent/main.ts), nothing here reads process.env.
import { ConfigError } from "../../errors.ts";

export const OTEL_ENV = Object.freeze({
  sdkDisabled: "OTEL_SDK_DISABLED",
  exporter: "OTEL_TRACES_EXPORTER",
  endpoint: "OTEL_EXPORTER_OTLP_ENDPOINT",
  tracesEndpoint: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
  protocol: "OTEL_EXPORTER_OTLP_PROTOCOL",
  tracesProtocol: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
  timeout: "OTEL_EXPORTER_OTLP_TIMEOUT",
  tracesTimeout: "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
  sampler: "OTEL_TRACES_SAMPLER",
  samplerArg: "OTEL_TRACES_SAMPLER_ARG",
  serviceName: "OTEL_SERVICE_NAME",
  resourceAttributes: "OTEL_RESOURCE_ATTRIBUTES",
  scheduleDelay: "OTEL_BSP_SCHEDULE_DELAY",
  exportTimeout: "OTEL_BSP_EXPORT_TIMEOUT",
  maxQueueSize: "OTEL_BSP_MAX_QUEUE_SIZE",
  maxExportBatchSize: "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
});

export const SAMPLERS = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;
export type SamplerName = (typeof SAMPLERS)[number];

/** The SDK specification's default: follow the caller's decision, sample every new trace. */
export const DEFAULT_SAMPLER: SamplerName = "parentbased_always_on";
/** The agent's spans are the mesh's, not an application's: one service name per agent process. */
export const DEFAULT_SERVICE_NAME = "nodemesh-agent";
/**
 * The batch processor's bounds are the SDK specification's defaults (OTEL_BSP_*): 2048 spans queued at
 * most (a few MB), exported 512 at a time every 5 s. A collector that is down costs one export timeout
 * per batch, during which new spans past the bound are dropped, never waited for.
 */
export const DEFAULT_SCHEDULE_DELAY_MS = 5_000;
export const DEFAULT_BSP_EXPORT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_QUEUE_SIZE = 2_048;
export const DEFAULT_MAX_EXPORT_BATCH_SIZE = 512;
/** OTLP exporter request timeout (the specification's 10 s); bounds each export with its retries. */
export const DEFAULT_OTLP_TIMEOUT_MS = 10_000;

export interface TracingSettings {
  /** False when no endpoint is configured (or the SDK is disabled): nothing is loaded, nothing costs. */
  readonly enabled: boolean;
  /** `http://host:port` (plaintext gRPC) or `https://host:port` (TLS). */
  readonly endpoint: string;
  readonly sampler: SamplerName;
  /** The ratio of the `*traceidratio` samplers, in [0, 1]. */
  readonly ratio: number;
  readonly serviceName: string;
  readonly resourceAttributes: Readonly<Record<string, string>>;
  readonly scheduleDelayMs: number;
  /** How long one batch export may take before its spans are counted as dropped. */
  readonly exportTimeoutMs: number;
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  readonly otlpTimeoutMs: number;
}

export interface TracingOverrides {
  /** `--otlp-endpoint`: wins over both endpoint variables. */
  readonly endpoint?: string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

export function tracingSettingsFromEnv(env: Env, overrides: TracingOverrides = {}): TracingSettings {
  const get = (name: string) => {
    const v = env[name]?.trim();
    return v === undefined || v === "" ? undefined : v;
  };
  const rawEndpoint = overrides.endpoint ?? get(OTEL_ENV.tracesEndpoint) ?? get(OTEL_ENV.endpoint);
  const endpointSource =
    overrides.endpoint !== undefined
      ? "--otlp-endpoint"
      : get(OTEL_ENV.tracesEndpoint) !== undefined
        ? OTEL_ENV.tracesEndpoint
        : OTEL_ENV.endpoint;
  const disabled = parseBoolean(get(OTEL_ENV.sdkDisabled), OTEL_ENV.sdkDisabled);
  const exporter = get(OTEL_ENV.exporter) ?? "otlp";
  if (exporter !== "otlp" && exporter !== "none") {
    throw new ConfigError(
      `${OTEL_ENV.exporter} must be "otlp" or "none", got ${JSON.stringify(exporter)}: the agent exports OTLP/gRPC only`,
    );
  }
  for (const name of [OTEL_ENV.tracesProtocol, OTEL_ENV.protocol]) {
    const p = get(name);
    if (p !== undefined && p !== "grpc") {
      throw new ConfigError(
        `${name} must be "grpc", got ${JSON.stringify(p)}: the agent speaks OTLP/gRPC (port 4317 on Jaeger, Tempo and the collector)`,
      );
    }
  }
  const sampler = parseSampler(get(OTEL_ENV.sampler));
  const queue = positiveInt(get(OTEL_ENV.maxQueueSize), OTEL_ENV.maxQueueSize, DEFAULT_MAX_QUEUE_SIZE);
  const batch = positiveInt(
    get(OTEL_ENV.maxExportBatchSize),
    OTEL_ENV.maxExportBatchSize,
    DEFAULT_MAX_EXPORT_BATCH_SIZE,
  );
  if (batch > queue) {
    throw new ConfigError(
      `${OTEL_ENV.maxExportBatchSize} (${batch}) must not exceed ${OTEL_ENV.maxQueueSize} (${queue})`,
    );
  }
  const attributes = parseResourceAttributes(get(OTEL_ENV.resourceAttributes));
  return Object.freeze({
    enabled: rawEndpoint !== undefined && !disabled && exporter === "otlp",
    endpoint: rawEndpoint === undefined ? "" : parseEndpoint(rawEndpoint, endpointSource),
    sampler,
    ratio: sampler.endsWith("traceidratio") ? parseRatio(get(OTEL_ENV.samplerArg)) : 1,
    serviceName: get(OTEL_ENV.serviceName) ?? attributes["service.name"] ?? DEFAULT_SERVICE_NAME,
    resourceAttributes: Object.freeze(attributes),
    scheduleDelayMs: positiveInt(
      get(OTEL_ENV.scheduleDelay),
      OTEL_ENV.scheduleDelay,
      DEFAULT_SCHEDULE_DELAY_MS,
    ),
    exportTimeoutMs: positiveInt(
      get(OTEL_ENV.exportTimeout),
      OTEL_ENV.exportTimeout,
      DEFAULT_BSP_EXPORT_TIMEOUT_MS,
    ),
    maxQueueSize: queue,
    maxExportBatchSize: batch,
    otlpTimeoutMs: positiveInt(
      get(OTEL_ENV.tracesTimeout) ?? get(OTEL_ENV.timeout),
      get(OTEL_ENV.tracesTimeout) !== undefined ? OTEL_ENV.tracesTimeout : OTEL_ENV.timeout,
      DEFAULT_OTLP_TIMEOUT_MS,
    ),
  });
}

/** A gRPC endpoint is a scheme, a host and a port; a path would be ignored by gRPC, so it is refused. */
export function parseEndpoint(raw: string, source: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(
      `${source} is not a URL: ${JSON.stringify(raw)}; write it as http://<collector>:4317 (https:// for TLS)`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(
      `${source} must start with http:// (plaintext gRPC) or https:// (TLS), got ${JSON.stringify(raw)}`,
    );
  }
  if (url.hostname === "") throw new ConfigError(`${source} has no host: ${JSON.stringify(raw)}`);
  if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "") {
    throw new ConfigError(
      `${source} must not have a path or query for OTLP/gRPC, got ${JSON.stringify(raw)}: use http://<collector>:4317 (/v1/traces is OTLP/HTTP's)`,
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw new ConfigError(
      `${source} must not carry credentials; set OTEL_EXPORTER_OTLP_HEADERS instead of user:password@`,
    );
  }
  return `${url.protocol}//${url.host}`;
}

export function parseSampler(raw: string | undefined): SamplerName {
  if (raw === undefined) return DEFAULT_SAMPLER;
  if ((SAMPLERS as readonly string[]).includes(raw)) return raw as SamplerName;
  throw new ConfigError(
    `${OTEL_ENV.sampler} must be one of ${SAMPLERS.join(", ")}, got ${JSON.stringify(raw)}`,
  );
}

/** The specification's default ratio is 1.0 when the argument is unset. */
export function parseRatio(raw: string | undefined): number {
  if (raw === undefined) return 1;
  const n = /^[0-9]*\.?[0-9]+(e-?[0-9]+)?$/i.test(raw) ? Number(raw) : NaN;
  if (!(n >= 0 && n <= 1)) {
    throw new ConfigError(
      `${OTEL_ENV.samplerArg} must be a sampling ratio between 0 and 1 (e.g. 0.1 for 10%), got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

/** `key1=value1,key2=value2`, values percent-encoded (W3C Baggage octets), as the specification says. */
export function parseResourceAttributes(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw === undefined) return out;
  for (const member of raw.split(",")) {
    const m = member.trim();
    if (m === "") continue;
    const eq = m.indexOf("=");
    const key = eq > 0 ? m.slice(0, eq).trim() : "";
    if (key === "" || !/^[\x21-\x7e]+$/.test(key)) {
      throw new ConfigError(
        `${OTEL_ENV.resourceAttributes} has a malformed member ${JSON.stringify(m)}: write key=value pairs separated by commas`,
      );
    }
    try {
      out[key] = decodeURIComponent(m.slice(eq + 1).trim());
    } catch {
      throw new ConfigError(
        `${OTEL_ENV.resourceAttributes}: the value of ${key} has a bad percent-escape: ${JSON.stringify(m)}`,
      );
    }
  }
  return out;
}

function parseBoolean(raw: string | undefined, name: string): boolean {
  if (raw === undefined) return false;
  const v = raw.toLowerCase();
  if (v === "true") return true;
  if (v === "false") return false;
  throw new ConfigError(`${name} must be "true" or "false", got ${JSON.stringify(raw)}`);
}

function positiveInt(raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
  if (!(Number.isSafeInteger(n) && n >= 1)) {
    throw new ConfigError(`${name} must be a whole number >= 1, got ${JSON.stringify(raw)}`);
  }
  return n;
}
