// The nodemesh.echo.v1.Echo service from proto/echo.proto, loaded at run time with
// @grpc/proto-loader and given TypeScript shapes, for the backend's server and the gRPC client.
import { loadSync, type MethodDefinition, type ServiceDefinition } from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";

export const ECHO_SERVICE = "nodemesh.echo.v1.Echo";
export const PROTO_FILE = fileURLToPath(new URL("../proto/echo.proto", import.meta.url));

export interface SayRequest {
  message: string;
  status_code: number;
  delay_ms: number;
}
export interface SayReply {
  pod: string;
  message: string;
  metadata: Record<string, string>;
}
export interface CountRequest {
  n: number;
}
export interface CountReply {
  i: number;
  pod: string;
}

export interface EchoProto {
  readonly service: ServiceDefinition;
  readonly say: MethodDefinition<SayRequest, SayReply>;
  readonly count: MethodDefinition<CountRequest, CountReply>;
}

/** Loads the proto; throws naming the file and service if either is missing or changed shape. */
export function loadEchoProto(): EchoProto {
  // keepCase keeps status_code as written in the proto; defaults fills absent scalars with 0 / ""
  // so the interfaces above hold for every decoded message, not only the ones that set each field.
  const definition = loadSync(PROTO_FILE, { keepCase: true, defaults: true, longs: Number, enums: String });
  const service = definition[ECHO_SERVICE];
  if (service === undefined || "format" in service) {
    throw new Error(`${PROTO_FILE}: service ${ECHO_SERVICE} not found`);
  }
  const say = service.Say;
  const count = service.Count;
  if (say === undefined || count === undefined || say.responseStream || !count.responseStream) {
    throw new Error(`${PROTO_FILE}: ${ECHO_SERVICE} must have unary Say and server-streaming Count`);
  }
  // The message shapes are fixed by the proto and the defaults option; the loader only types them
  // as `object`, so this is the one place that asserts the mapping.
  return {
    service,
    say: say as unknown as MethodDefinition<SayRequest, SayReply>,
    count: count as unknown as MethodDefinition<CountRequest, CountReply>,
  };
}
