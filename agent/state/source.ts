// Where the agent's MeshConfig comes from. The real source is the controller client
// (agent/control/client.ts: `config`, `onConfig(cb)`); tests and dev use StaticConfigSource.
import type { MeshConfig } from "../../controller/api/index.ts";

export interface ConfigSource {
  /** The latest snapshot, if one has arrived. */
  current(): MeshConfig | undefined;
  /** Called with every new snapshot; returns an unsubscribe function. */
  onConfig(cb: (config: MeshConfig) => void): () => void;
}

/** Adapts anything shaped like the controller client (`config` + `onConfig`) to a ConfigSource. */
export function configSourceOf(client: {
  readonly config: MeshConfig | undefined;
  onConfig(cb: (config: MeshConfig) => void): unknown;
}): ConfigSource {
  const subs = new Set<(c: MeshConfig) => void>();
  client.onConfig((c) => {
    for (const s of subs) s(c);
  });
  return {
    current: () => client.config,
    onConfig(cb) {
      subs.add(cb);
      return () => subs.delete(cb);
    },
  };
}

/** A source the caller pushes snapshots into (tests, `--config` dev mode). */
export class StaticConfigSource implements ConfigSource {
  #config: MeshConfig | undefined;
  readonly #subs = new Set<(c: MeshConfig) => void>();

  constructor(config?: MeshConfig) {
    this.#config = config;
  }
  current(): MeshConfig | undefined {
    return this.#config;
  }
  onConfig(cb: (config: MeshConfig) => void): () => void {
    this.#subs.add(cb);
    return () => this.#subs.delete(cb);
  }
  set(config: MeshConfig): void {
    this.#config = config;
    for (const s of this.#subs) s(config);
  }
}
