// Run inside a pod (ip netns exec): opens `count` concurrent TCP connections to dst:port, each
// bound to an explicit local port starting at `firstPort`, sends one HTTP request, and prints
// one JSON line per connection: { localPort, body } (or { localPort, error }).
import net from "node:net";

const [dst = "", portText = "", firstText = "", countText = ""] = process.argv.slice(2);
const first = Number(firstText);
const count = Number(countText);

function once(localPort: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: dst, port: Number(portText), localPort, localAddress: "0.0.0.0" });
    let data = "";
    socket.setTimeout(15_000, () => socket.destroy(new Error("timeout")));
    socket.on("connect", () => socket.write(`GET / HTTP/1.1\r\nHost: ${dst}\r\nConnection: close\r\n\r\n`));
    socket.on("data", (d: Buffer) => (data += d.toString()));
    socket.on("error", (e) => resolve(JSON.stringify({ localPort, error: e.message })));
    socket.on("close", () => resolve(JSON.stringify({ localPort, body: data.split("\r\n\r\n")[1] ?? "" })));
  });
}

const lines = await Promise.all(Array.from({ length: count }, (_, i) => once(first + i)));
process.stdout.write(lines.join("\n") + "\n");
