// The native calls the eBPF datapath makes, behind one interface so that unit tests can run
// agent/datapath/ebpf.ts over a fake kernel (test/unit/native/fake-kernel.ts). NATIVE is the real one.
import { createServer, type Server } from "node:net";
import * as native from "../../native/index.ts";

/** The native calls this datapath makes (native/index.ts by default); unit tests pass a fake kernel. */
export interface NativeLayer {
  install(opts: native.InstallOptions): Promise<native.Datapath>;
  netnsCookieOf(netnsPath: string): Promise<bigint>;
  openNetns(
    netnsPath: string,
  ): Pick<native.NetnsHandle, "path" | "socket" | "routeDeliveryReplies" | "close">;
  /** IP_TRANSPARENT bind of a delivery socket to the client's address (native.bindSource). */
  bindSource(fd: number, ip: string): void;
  /** The mark of delivery sockets bound with bindSource (native.deliveryMark). */
  deliveryMark(): number;
  /** A net.Server listening on host:port inside the namespace, with no handler. */
  listen(netnsPath: string, host: string, port: number): Promise<Server>;
  removePins(pinDir: string): void;
}

export const NATIVE: NativeLayer = {
  install: native.install,
  netnsCookieOf: native.netnsCookieOf,
  openNetns: native.openNetns,
  bindSource: native.bindSource,
  deliveryMark: native.deliveryMark,
  listen: serverInNetns,
  removePins: native.removePins,
};

async function serverInNetns(netnsPath: string, host: string, port: number): Promise<Server> {
  return serveListener(await native.listenInNetns(netnsPath, host, port));
}

/** A net.Server over an in-pod listening socket (new, or taken back from the socket keeper). */
export async function serveListener(fd: number): Promise<Server> {
  const server = createServer({ allowHalfOpen: true, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ fd }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}
