// Sample gRPC client (plain @grpc/grpc-js, no mesh code) that a test runs inside a pod:
//   grpc-client.ts <host:port> say <message> [--count K] [--status N] [--delay MS] [--metadata k=v]...
//   grpc-client.ts <host:port> count <n> [--metadata k=v]...
// All calls share one channel, so one HTTP/2 connection, as a real client's would. It prints one
// JSON line per reply ({pod, message, metadata} or {i, pod}; {code, details} on error) and then a
// {"summary": ...} line; it exits 0 when every call succeeded, 1 otherwise, 2 on bad arguments.
import { Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { parseArgs } from "node:util";
import {
  loadEchoProto,
  type EchoProto,
  type CountReply,
  type CountRequest,
  type SayReply,
  type SayRequest,
} from "./lib/echo-proto.ts";
import { intOption, parseTarget, printJson, runCli, UsageError } from "./lib/cli.ts";

const USAGE =
  "grpc-client.ts <host:port> (say <message> [--count K] [--status N] [--delay MS] | count <n>) " +
  "[--metadata k=v]... [--deadline MS]";

interface Summary {
  calls: number;
  ok: number;
  failed: number;
  pods: Record<string, number>;
  codes: Record<string, number>;
}

function metadataFrom(pairs: string[]): Metadata {
  const md = new Metadata();
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--metadata must be key=value, got ${JSON.stringify(pair)}`);
    try {
      md.add(pair.slice(0, eq).toLowerCase(), pair.slice(eq + 1));
    } catch (err) {
      throw new UsageError(`--metadata ${JSON.stringify(pair)}: ${(err as Error).message}`);
    }
  }
  return md;
}

function recordError(summary: Summary, err: ServiceError): void {
  summary.failed++;
  summary.codes[String(err.code)] = (summary.codes[String(err.code)] ?? 0) + 1;
  printJson({ code: err.code, details: err.details });
}

interface Call {
  client: Client;
  proto: EchoProto;
  md: Metadata;
  deadlineMs: number;
  summary: Summary;
}

function sayOnce({ client, proto, md, deadlineMs, summary }: Call, req: SayRequest): Promise<void> {
  const { say } = proto;
  return new Promise((resolve) => {
    const options = { deadline: Date.now() + deadlineMs };
    client.makeUnaryRequest(
      say.path,
      say.requestSerialize,
      say.responseDeserialize,
      req,
      md,
      options,
      (err, reply?: SayReply) => {
        summary.calls++;
        if (err) recordError(summary, err);
        else if (reply !== undefined) {
          summary.ok++;
          summary.pods[reply.pod] = (summary.pods[reply.pod] ?? 0) + 1;
          summary.codes["0"] = (summary.codes["0"] ?? 0) + 1;
          printJson({ pod: reply.pod, message: reply.message, metadata: reply.metadata });
        }
        resolve();
      },
    );
  });
}

function countStream({ client, proto, md, deadlineMs, summary }: Call, n: number): Promise<void> {
  const { count } = proto;
  const req: CountRequest = { n };
  const stream = client.makeServerStreamRequest(
    count.path,
    count.requestSerialize,
    count.responseDeserialize,
    req,
    md,
    {
      deadline: Date.now() + deadlineMs,
    },
  );
  return new Promise((resolve) => {
    let replies = 0;
    stream.on("data", (reply: CountReply) => {
      replies++;
      summary.pods[reply.pod] = (summary.pods[reply.pod] ?? 0) + 1;
      printJson({ i: reply.i, pod: reply.pod });
    });
    stream.on("error", (err: ServiceError) => {
      summary.calls = 1;
      recordError(summary, err);
      resolve();
    });
    stream.on("status", (s: { code: number }) => {
      if (s.code !== 0) return;
      summary.calls = 1;
      // A stream that ends OK but short is still a failure: the count is what the test asked for.
      if (replies === n) summary.ok = 1;
      else summary.failed = 1;
      summary.codes["0"] = 1;
      resolve();
    });
  });
}

async function main(): Promise<boolean> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      count: { type: "string" },
      status: { type: "string" },
      delay: { type: "string" },
      deadline: { type: "string" },
      metadata: { type: "string", multiple: true, default: [] },
    },
  });
  const [target, command, arg] = positionals;
  const { host, port } = parseTarget(target);
  const summary: Summary = { calls: 0, ok: 0, failed: 0, pods: {}, codes: {} };
  const client = new Client(
    `${host.includes(":") ? `[${host}]` : host}:${port}`,
    credentials.createInsecure(),
  );
  const call: Call = {
    client,
    proto: loadEchoProto(),
    md: metadataFrom(values.metadata),
    deadlineMs: intOption("--deadline", values.deadline, 10_000, 1, 3_600_000),
    summary,
  };
  if (command === "say") {
    if (arg === undefined) throw new UsageError("say needs a <message>");
    const calls = intOption("--count", values.count, 1, 1, 100_000);
    const req: SayRequest = {
      message: arg,
      status_code: intOption("--status", values.status, 0, 0, 16),
      delay_ms: intOption("--delay", values.delay, 0, 0, 300_000),
    };
    // Sequential on purpose: each call's line is printed in order, and a balancer that spreads
    // requests of one connection over endpoints shows as several pods in the summary.
    for (let i = 0; i < calls; i++) await sayOnce(call, req);
  } else if (command === "count") {
    if (arg === undefined) throw new UsageError("count needs <n>, the number of replies to stream");
    await countStream(call, intOption("count <n>", arg, 0, 0, 1_000_000));
  } else {
    throw new UsageError(`unknown command ${JSON.stringify(command ?? "")}: expected say or count`);
  }
  client.close();
  printJson({ summary });
  return summary.failed === 0 && summary.ok > 0;
}

runCli(USAGE, main);
