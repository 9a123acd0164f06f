// Tracing settings from the OTEL_* variables: off without an endpoint, the specification's defaults,
// and a clear error naming the variable for every bad value.
import { describe, expect, it } from "vitest";
import { tracingSettingsFromEnv } from "../../../../../agent/telemetry/tracing/settings.ts";

const EP = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4317" };

describe("tracingSettingsFromEnv", () => {
  it("is off unless an endpoint is configured, whatever else is set", () => {
    expect(tracingSettingsFromEnv({}).enabled).toBe(false);
    expect(tracingSettingsFromEnv({ OTEL_TRACES_SAMPLER: "always_on" }).enabled).toBe(false);
    expect(tracingSettingsFromEnv({ ...EP, OTEL_SDK_DISABLED: "true" }).enabled).toBe(false);
    expect(tracingSettingsFromEnv({ ...EP, OTEL_TRACES_EXPORTER: "none" }).enabled).toBe(false);
  });

  it("takes the specification's defaults", () => {
    const s = tracingSettingsFromEnv(EP);
    expect(s).toMatchObject({
      enabled: true,
      endpoint: "http://collector:4317",
      sampler: "parentbased_always_on",
      ratio: 1,
      serviceName: "nodemesh-agent",
      scheduleDelayMs: 5000,
      exportTimeoutMs: 30000,
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
      otlpTimeoutMs: 10000,
    });
    expect(Object.isFrozen(s)).toBe(true);
  });

  it("prefers the flag, then the traces endpoint, then the generic one", () => {
    const env = { ...EP, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://tempo:4317/" };
    expect(tracingSettingsFromEnv(env).endpoint).toBe("https://tempo:4317");
    expect(tracingSettingsFromEnv(env, { endpoint: "http://jaeger:4317" }).endpoint).toBe(
      "http://jaeger:4317",
    );
  });

  it("reads the sampler, its ratio, the service name and resource attributes", () => {
    const s = tracingSettingsFromEnv({
      ...EP,
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.25",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod, k8s.cluster.name=east%2C1,service.name=ignored",
      OTEL_SERVICE_NAME: "mesh-east",
      OTEL_BSP_MAX_QUEUE_SIZE: "100",
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "10",
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: "2000",
    });
    expect(s).toMatchObject({ sampler: "parentbased_traceidratio", ratio: 0.25, serviceName: "mesh-east" });
    expect(s.resourceAttributes).toEqual({
      "deployment.environment": "prod",
      "k8s.cluster.name": "east,1",
      "service.name": "ignored",
    });
    expect(s).toMatchObject({ maxQueueSize: 100, maxExportBatchSize: 10, otlpTimeoutMs: 2000 });
    // service.name in OTEL_RESOURCE_ATTRIBUTES applies when OTEL_SERVICE_NAME is unset.
    expect(tracingSettingsFromEnv({ ...EP, OTEL_RESOURCE_ATTRIBUTES: "service.name=x" }).serviceName).toBe(
      "x",
    );
    // The argument of a sampler that takes none is ignored, as the specification says.
    expect(
      tracingSettingsFromEnv({ ...EP, OTEL_TRACES_SAMPLER: "always_on", OTEL_TRACES_SAMPLER_ARG: "x" }).ratio,
    ).toBe(1);
  });

  it.each([
    [{ OTEL_TRACES_SAMPLER: "sometimes" }, /OTEL_TRACES_SAMPLER must be one of always_on, .*"sometimes"/],
    [{ OTEL_TRACES_SAMPLER: "jaeger_remote" }, /OTEL_TRACES_SAMPLER must be one of/],
    [
      { OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "1.5" },
      /OTEL_TRACES_SAMPLER_ARG must be a sampling ratio between 0 and 1/,
    ],
    [{ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "-0.1" }, /OTEL_TRACES_SAMPLER_ARG/],
    [
      { OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "ten percent" },
      /OTEL_TRACES_SAMPLER_ARG .*"ten percent"/,
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4317" },
      /OTEL_EXPORTER_OTLP_ENDPOINT must start with http:\/\/ .* or https:\/\//,
    ],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: "http://" }, /OTEL_EXPORTER_OTLP_ENDPOINT is not a URL/],
    [
      { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/v1/traces" },
      /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must not have a path/,
    ],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: "ftp://c:4317" }, /OTEL_EXPORTER_OTLP_ENDPOINT must start with http/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: "http://u:p@c:4317" }, /must not carry credentials/],
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" }, /OTEL_EXPORTER_OTLP_PROTOCOL must be "grpc"/],
    [{ OTEL_TRACES_EXPORTER: "zipkin" }, /OTEL_TRACES_EXPORTER must be "otlp" or "none"/],
    [{ OTEL_SDK_DISABLED: "yes" }, /OTEL_SDK_DISABLED must be "true" or "false"/],
    [{ OTEL_RESOURCE_ATTRIBUTES: "novalue" }, /OTEL_RESOURCE_ATTRIBUTES has a malformed member "novalue"/],
    [
      { OTEL_RESOURCE_ATTRIBUTES: "k=%zz" },
      /OTEL_RESOURCE_ATTRIBUTES: the value of k has a bad percent-escape/,
    ],
    [{ OTEL_BSP_MAX_QUEUE_SIZE: "0" }, /OTEL_BSP_MAX_QUEUE_SIZE must be a whole number >= 1/],
    [{ OTEL_BSP_SCHEDULE_DELAY: "1.5" }, /OTEL_BSP_SCHEDULE_DELAY must be a whole number/],
    [
      { OTEL_BSP_MAX_QUEUE_SIZE: "10", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "20" },
      /OTEL_BSP_MAX_EXPORT_BATCH_SIZE \(20\) must not exceed OTEL_BSP_MAX_QUEUE_SIZE \(10\)/,
    ],
  ])("refuses %j", (env, message) => {
    expect(() => tracingSettingsFromEnv({ ...EP, ...env })).toThrow(message);
  });

  it("names the flag when the flag's endpoint is bad, and errors carry the config code", () => {
    let caught: unknown;
    try {
      tracingSettingsFromEnv({}, { endpoint: "jaeger" });
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: "NODEMESH_ERR_AGENT_CONFIG" });
    expect(String(caught)).toMatch(/--otlp-endpoint/);
  });

  it("validates the sampler even while tracing is off, so a typo fails before the endpoint is added", () => {
    expect(() => tracingSettingsFromEnv({ OTEL_TRACES_SAMPLER: "always" })).toThrow(/OTEL_TRACES_SAMPLER/);
  });
});
