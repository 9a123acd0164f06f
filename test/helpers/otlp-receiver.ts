// A real OTLP/gRPC trace endpoint for tests: the `opentelemetry.proto.collector.trace.v1.TraceService`
// served by @grpc/grpc-js, decoding with the protobufjs static module that the OpenTelemetry JS project
// generated from the official OTLP protocol definitions (the devDependency `otlp-proto-static`, an npm
// alias of @opentelemetry/otlp-transformer@0.52.1, whose build/src/generated/root.js is that module; later
// releases dropped it). So what the agent's exporter sends is decoded independently of the code that
// encoded it. Every span received is flattened (hex ids, plain attribute values, its resource).
//
// As a library: `startOtlpReceiver()` in the test process. As a program (the e2e tests run it inside a
// lab namespace, where the agents can reach it):
//   node test/helpers/otlp-receiver.ts --listen <host:port>
// prints {"listening":<port>} once bound, then one JSON line per span; SIGTERM stops it.
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import otlpRoot from "otlp-proto-static/build/src/generated/root.js";

const EXPORT_PATH = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
// Longs and enums as strings keep int64 attributes exact and kinds readable (SPAN_KIND_SERVER);
// `oneofs` names the AnyValue member that was set, so an explicit 0/false/"" is not mistaken for unset.
const TO_OBJECT = { longs: String, enums: String, defaults: true, oneofs: true } as const;

/** The protobufjs static-module API used here (its .d.ts only declares an untyped Root). */
interface StaticMessage<T> {
  decode(buf: Uint8Array): object;
  toObject(message: object, options: typeof TO_OBJECT): T;
  fromObject(obj: object): object;
  encode(message: object): { finish(): Uint8Array };
}
interface OtlpTraceV1 {
  ExportTraceServiceRequest: StaticMessage<ExportRequest>;
  ExportTraceServiceResponse: StaticMessage<object>;
}

export type AttributeValue = string | number | boolean | null | AttributeValue[];

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** "" for a root span. */
  readonly parentSpanId: string;
  readonly traceState: string;
  readonly name: string;
  /** SPAN_KIND_CLIENT, SPAN_KIND_SERVER, … (the proto enum's names). */
  readonly kind: string;
  readonly attributes: Record<string, AttributeValue>;
  readonly events: { name: string; attributes: Record<string, AttributeValue> }[];
  /** STATUS_CODE_UNSET, STATUS_CODE_OK or STATUS_CODE_ERROR. */
  readonly status: string;
  readonly resource: Record<string, AttributeValue>;
  readonly scope: string;
}

export interface OtlpReceiver {
  readonly port: number;
  readonly spans: ReceivedSpan[];
  /** Resolves with the spans once `predicate` holds for them (polled), or rejects after `timeoutMs`. */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

// Decoded message shapes: toObject with longs and enums as strings, defaults filled in, the oneof's
// member name in `value`, and bytes left as the Uint8Arrays (Buffers, on Node) that decode produced.
interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
  arrayValue?: { values: AnyValue[] };
  value?: string;
}
interface KeyValue {
  key: string;
  value?: AnyValue;
}
interface ProtoSpan {
  traceId: Uint8Array;
  spanId: Uint8Array;
  parentSpanId: Uint8Array;
  traceState: string;
  name: string;
  kind: string;
  attributes: KeyValue[];
  events: { name: string; attributes: KeyValue[] }[];
  status?: { code: string };
}
export interface ExportRequest {
  resourceSpans: {
    resource?: { attributes: KeyValue[] };
    scopeSpans: { scope?: { name: string }; spans: ProtoSpan[] }[];
  }[];
}

function value(v: AnyValue | undefined): AttributeValue {
  if (!v) return null;
  switch (v.value) {
    case "stringValue":
      return v.stringValue ?? "";
    case "boolValue":
      return v.boolValue ?? false;
    case "intValue":
      return Number(v.intValue);
    case "doubleValue":
      return v.doubleValue ?? 0;
    case "arrayValue":
      return (v.arrayValue?.values ?? []).map(value);
    default:
      return null;
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

function attributes(list: KeyValue[] | undefined): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const kv of list ?? []) out[kv.key] = value(kv.value);
  return out;
}

/** The spans of one ExportTraceServiceRequest, flattened. */
export function flatten(req: ExportRequest): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const resource = attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          traceState: s.traceState,
          name: s.name,
          kind: s.kind,
          attributes: attributes(s.attributes),
          events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attributes(e.attributes) })),
          status: s.status?.code ?? "STATUS_CODE_UNSET",
          resource,
          scope: ss.scope?.name ?? "",
        });
      }
    }
  }
  return out;
}

const traceV1 = (
  otlpRoot as unknown as { opentelemetry: { proto: { collector: { trace: { v1: OtlpTraceV1 } } } } }
).opentelemetry.proto.collector.trace.v1;

// Built by hand from the generated message codecs, as proto-loader would from the service's .proto:
// the only method, unary, with the exact path the OTLP exporters call.
function traceService(): grpc.ServiceDefinition {
  const { ExportTraceServiceRequest: Req, ExportTraceServiceResponse: Res } = traceV1;
  const emptyResponse = Buffer.from(Res.encode(Res.fromObject({})).finish());
  return {
    Export: {
      path: EXPORT_PATH,
      requestStream: false,
      responseStream: false,
      // A malformed body makes decode throw, which grpc-js answers with INTERNAL: the exporter sees it.
      requestDeserialize: (buf: Buffer): ExportRequest => Req.toObject(Req.decode(buf), TO_OBJECT),
      requestSerialize: (req: ExportRequest): Buffer => Buffer.from(Req.encode(Req.fromObject(req)).finish()),
      // Always the empty ExportTraceServiceResponse: no partial_success, every span accepted.
      responseSerialize: (): Buffer => emptyResponse,
      responseDeserialize: (buf: Buffer): object => Res.toObject(Res.decode(buf), TO_OBJECT),
    } satisfies grpc.MethodDefinition<ExportRequest, object>,
  };
}

export async function startOtlpReceiver(
  opts: { host?: string; port?: number; onSpan?: (span: ReceivedSpan) => void } = {},
): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const server = new grpc.Server();
  server.addService(traceService(), {
    Export: (call: grpc.ServerUnaryCall<ExportRequest, object>, callback: grpc.sendUnaryData<object>) => {
      for (const s of flatten(call.request)) {
        spans.push(s);
        opts.onSpan?.(s);
      }
      callback(null, {});
    },
  });
  const host = opts.host ?? "127.0.0.1";
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${opts.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    port,
    spans,
    async waitFor(predicate, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(spans)) {
        if (Date.now() > deadline) {
          throw new Error(
            `OTLP receiver: condition not met after ${timeoutMs} ms; ${spans.length} spans received`,
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      return spans;
    },
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { listen: { type: "string" } }, strict: true });
  const listen = values.listen ?? "127.0.0.1:4317";
  const i = listen.lastIndexOf(":");
  const port = Number(listen.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--listen must be <host>:<port>, got ${JSON.stringify(listen)}`);
  }
  const r = await startOtlpReceiver({
    host: listen.slice(0, i),
    port,
    onSpan: (s) => process.stdout.write(`${JSON.stringify(s)}\n`),
  });
  process.stdout.write(`${JSON.stringify({ listening: r.port })}\n`);
  process.once("SIGTERM", () => void r.close().then(() => process.exit(0)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`otlp-receiver: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
