// An application process for the sockmap e2e test, run inside a pod (nsenter --net): a TCP server on
// 0.0.0.0:<port> that tells each client the peer it sees (one line), then echoes every byte back,
// half-close included (allowHalfOpen: the client's FIN ends the echo, which then sends ours).
import net from "node:net";

const port = Number(process.argv[2]);
const server = net.createServer({ allowHalfOpen: true }, (socket) => {
  socket.on("error", () => socket.destroy());
  socket.write(`peer=${socket.remoteAddress}:${socket.remotePort}\n`);
  socket.pipe(socket);
});
server.listen(port, "0.0.0.0", () => console.log("up"));
