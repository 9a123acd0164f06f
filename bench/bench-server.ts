// The benchmark's backend, run in the server pod: a plain Node HTTP server that reads the request
// body and answers every request with BODY bytes (1 KiB by default) and a Content-Length.
//   PORT=8080 BODY=1024 node bench/bench-server.ts      prints "listening <port>" when ready
import { createServer } from "node:http";

const port = Number(process.env.PORT ?? 8080);
const reply = Buffer.alloc(Number(process.env.BODY ?? 1024), 0x62);

const server = createServer((req, res) => {
  req.on("data", () => {});
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": reply.length });
    res.end(reply);
  });
});
// Held connections (the RSS-with-1,000-connections step) stay idle for a while: keep them open.
server.keepAliveTimeout = 300_000;
server.headersTimeout = 310_000;
server.listen({ port, host: "0.0.0.0", backlog: 4096 }, () => {
  process.stdout.write(`listening ${port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
