// Sample backend for the demo and the end-to-end tests: a plain HTTP server with no mesh code.
// It answers every request with who it is and what it received, so a caller can see which pod
// served it and that the request arrived unchanged.
import { createServer } from "node:http";

const port = Number(process.env.PORT ?? 8080);
const name = process.env.POD_NAME ?? "unknown";

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = JSON.stringify({
      pod: name,
      method: req.method,
      url: req.url,
      headers: req.headers,
      bodyBytes: Buffer.concat(chunks).length,
      peer: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
    });
    res.writeHead(200, { "content-type": "application/json", "x-served-by": name });
    res.end(body);
  });
});

server.listen(port, "0.0.0.0", () => {
  process.stdout.write(`${JSON.stringify({ listening: port, pod: name })}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
