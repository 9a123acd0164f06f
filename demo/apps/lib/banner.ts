// A server-first TCP service shaped like SMTP: on connect it writes "220 <pod> ready" before the
// client has sent anything, then echoes each line; "QUIT" ends the session with "221". The mesh's
// protocol detection must not wait for client bytes that never come: this is what shows it.
import { createServer, type Server, type Socket } from "node:net";

// SMTP (RFC 5321 section 4.5.3.1.6) limits a text line to 1000 octets; a longer line here is a
// client bug, and refusing it keeps the buffer bounded.
const MAX_LINE_BYTES = 1000;

export function bannerLine(pod: string): string {
  return `220 ${pod} ready\r\n`;
}

function serve(socket: Socket, pod: string): void {
  socket.setNoDelay(true);
  socket.on("error", () => socket.destroy());
  socket.write(bannerLine(pod));
  let pending = "";
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    pending += chunk;
    for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
      const line = pending.slice(0, nl).replace(/\r$/, "");
      pending = pending.slice(nl + 1);
      if (line.toUpperCase() === "QUIT") return void socket.end(`221 ${pod} closing\r\n`);
      socket.write(`${line}\r\n`);
    }
    if (Buffer.byteLength(pending) > MAX_LINE_BYTES) {
      socket.end(`500 line longer than ${MAX_LINE_BYTES} bytes\r\n`);
    }
  });
}

/** Starts the banner service on host:port (0 picks a free port); resolves to the bound port. */
export function startBanner(
  pod: string,
  host: string,
  port: number,
): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => serve(socket, pod));
  return new Promise((resolve, reject) => {
    server.once("error", (err) =>
      reject(new Error(`TCP_BANNER_PORT ${port}: cannot listen: ${err.message}`)),
    );
    server.listen(port, host, () => {
      const address = server.address();
      resolve({ server, port: typeof address === "object" && address !== null ? address.port : port });
    });
  });
}
