// The in-pod listeners, kept by the node's socket keeper (keeper/keeper.ts) so that they outlive
// this agent: each listener this agent opens is handed to the keeper as well, and at start the
// listeners the keeper still holds (after a crash, or beside a draining agent during a hand-over)
// are taken back instead of opening new ones. Connections that arrived while no agent ran are in
// their accept queues and are served as soon as the listener is taken back.
import type { Server } from "node:net";
import * as native from "../../native/index.ts";
import type { KeeperClient } from "./keeper/client.ts";
import { listenerKey } from "./keeper/protocol.ts";
import { serveListener } from "./native-layer.ts";

export interface KeptListenerEvents {
  /** The keeper refused or lost a listener: it will not survive a crash of this agent. */
  onKeepFailed(key: string, err: Error): void;
}

export class KeptListeners {
  readonly #keeper: KeeperClient;
  readonly #events: KeptListenerEvents;
  #adopted = 0;

  constructor(keeper: KeeperClient, events: KeptListenerEvents) {
    this.#keeper = keeper;
    this.#events = events;
  }

  /** Listeners taken back from the keeper so far. */
  get adopted(): number {
    return this.#adopted;
  }

  get keeperPid(): number {
    return this.#keeper.keeperPid;
  }

  /** A server on host:port in the namespace: the keeper's listener when it has one, else a new one. */
  async open(netnsPath: string, netnsCookie: bigint, host: string, port: number): Promise<Server> {
    const key = listenerKey(netnsCookie, host, port);
    const kept = this.#keeper.adopt(key, host, port);
    if (kept !== undefined) {
      this.#adopted += 1;
      return serveListener(kept);
    }
    const fd = await native.listenInNetns(netnsPath, host, port);
    const server = await serveListener(fd);
    await this.#keeper.hold(key, fd).catch((err: unknown) => this.#events.onKeepFailed(key, err as Error));
    return server;
  }

  /** The listener is going away for good (its workload left this node): the keeper lets it go too. */
  async release(netnsCookie: bigint, host: string, port: number): Promise<void> {
    const key = listenerKey(netnsCookie, host, port);
    await this.#keeper.drop(key).catch((err: unknown) => this.#events.onKeepFailed(key, err as Error));
  }

  /**
   * Lets the keeper close what this agent did not take back once its config is applied: listeners of
   * workloads no longer here, whose queued connections would otherwise wait for nobody.
   */
  async dropUnadopted(): Promise<number> {
    const keys = this.#keeper.unadopted();
    for (const key of keys) await this.#keeper.drop(key).catch(() => undefined);
    return keys.length;
  }

  /** Disconnects from the keeper, which keeps every listener for the next agent. */
  close(): void {
    this.#keeper.close();
  }

  /** Asks the keeper to close everything and exit (uninstall). */
  async stopKeeper(): Promise<void> {
    await this.#keeper.stop().catch(() => undefined);
    this.#keeper.close();
  }
}
