// The test backend's gRPC server (nodemesh.echo.v1.Echo over h2c): Say reports the serving pod and
// the metadata that arrived, and fails with the status a caller asks for; Count streams n replies.
// Both stop work when the call is cancelled, so a mesh timeout is visible as a cancel here.
import {
  Metadata,
  Server,
  ServerCredentials,
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import {
  loadEchoProto,
  type CountReply,
  type CountRequest,
  type SayReply,
  type SayRequest,
} from "./echo-proto.ts";

// Same bounds as the HTTP side (behaviour.ts): a typo must not park a call for hours or make the
// server stream without end.
const MAX_DELAY_MS = 300_000;
const MAX_COUNT = 100_000;

/** Request metadata as a flat map; binary (-bin) values are shown in base64 like grpcurl does. */
function metadataMap(md: Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(md.getMap())) {
    out[key] = Buffer.isBuffer(value) ? value.toString("base64") : value;
  }
  return out;
}

function servedBy(pod: string): Metadata {
  const md = new Metadata();
  md.set("x-served-by", pod);
  return md;
}

/** The first invalid field of a SayRequest, as an INVALID_ARGUMENT detail, or null. */
export function sayRequestError(req: SayRequest): string | null {
  if (!Number.isInteger(req.status_code) || req.status_code > 16) {
    return `status_code must be a gRPC status 0..16, got ${req.status_code}`;
  }
  if (req.delay_ms > MAX_DELAY_MS) return `delay_ms must be at most ${MAX_DELAY_MS}, got ${req.delay_ms}`;
  return null;
}

function say(pod: string, call: ServerUnaryCall<SayRequest, SayReply>, done: sendUnaryData<SayReply>): void {
  const req = call.request;
  const invalid = sayRequestError(req);
  if (invalid !== null)
    return done({ code: status.INVALID_ARGUMENT, details: invalid, metadata: servedBy(pod) });
  const timer = setTimeout(() => {
    call.sendMetadata(servedBy(pod));
    if (req.status_code !== 0) {
      const details = `${pod}: failing as requested with status ${req.status_code}`;
      return done({ code: req.status_code, details, metadata: servedBy(pod) });
    }
    done(null, { pod, message: req.message, metadata: metadataMap(call.metadata) });
  }, req.delay_ms);
  call.once("cancelled", () => clearTimeout(timer));
}

function count(pod: string, call: ServerWritableStream<CountRequest, CountReply>): void {
  const n = call.request.n;
  if (n > MAX_COUNT) {
    // grpc-js turns an 'error' event on a server stream into the call's final status.
    return void call.emit("error", {
      code: status.INVALID_ARGUMENT,
      details: `n must be at most ${MAX_COUNT}, got ${n}`,
    });
  }
  call.sendMetadata(servedBy(pod));
  let i = 0;
  let cancelled = false;
  call.once("cancelled", () => (cancelled = true));
  const pump = (): void => {
    while (i < n && !cancelled) {
      i++;
      if (!call.write({ i, pod })) return void call.once("drain", pump);
    }
    if (!cancelled) call.end();
  };
  pump();
}

/** Starts the Echo server on host:port (0 picks a free port); resolves to the bound port. */
export async function startGrpcEcho(
  pod: string,
  host: string,
  port: number,
): Promise<{ server: Server; port: number }> {
  const proto = loadEchoProto();
  const server = new Server();
  const impl: UntypedServiceImplementation = {
    Say: (call: ServerUnaryCall<SayRequest, SayReply>, done: sendUnaryData<SayReply>) => say(pod, call, done),
    Count: (call: ServerWritableStream<CountRequest, CountReply>) => count(pod, call),
  };
  server.addService(proto.service, impl);
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(new Error(`GRPC_PORT ${port}: cannot listen: ${err.message}`)) : resolve(p),
    );
  });
  return { server, port: bound };
}
