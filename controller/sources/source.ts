// The controller's view of where configuration comes from. A Source turns some store (YAML files on
// a plain host, the Kubernetes API in a cluster) into validated, keyed resources; the model, the CA
// and the distribution only ever see a SourceSnapshot, never the store behind it.
//
// Contract: `start()` resolves once `read()` reflects the store's initial state (files read,
// informers listed), so the controller's first model is complete rather than empty; `onChange` is
// called, possibly batched, after every change that may alter `read()`; `read()` is cheap and
// returns what is known now. A snapshot with issues is rejected by the controller as a whole (the
// file source's all-or-nothing rule); a source that can judge objects one by one (Kubernetes)
// instead leaves a bad object out, keeps its last good version and reports it where users look.
import type { ConfigIssue } from "../api/index.ts";
import type { ConfigRejectReason } from "../errors.ts";
import type { SourcedResource } from "../model/model.ts";

export interface SourceSnapshot {
  readonly entries: readonly SourcedResource[];
  readonly issues: readonly ConfigIssue[];
  /** Why the snapshot is refused, when `issues` is not empty (the metrics count it). */
  readonly reason?: ConfigRejectReason;
}

/** What the controller made of the last snapshot it read; sources may surface it to users. */
export interface SourceVerdict {
  readonly accepted: boolean;
  /** The version being served after this reload (the previous one when rejected). */
  readonly version: string | undefined;
  /** Issues of the whole configuration (cross-object checks), each naming entry.file. */
  readonly errors: readonly ConfigIssue[];
  readonly warnings: readonly ConfigIssue[];
}

export interface Source {
  /** "file" or "kube": for logs and metrics. */
  readonly kind: string;
  start(onChange: () => void): Promise<void>;
  /** `force`: the operator asked (SIGHUP): a file source then accepts an emptied file. */
  read(opts?: { force?: boolean }): SourceSnapshot;
  /**
   * Whether a change that removes most resources is held back until SIGHUP (config-guard.ts): a
   * half-written file looks like a mass removal; an API server's list is complete or fails.
   */
  readonly holdsMassRemovals: boolean;
  /**
   * Node addresses the store declares (Kubernetes: Node objects' InternalIPs), node → IPv4
   * addresses: `onChange` gets the whole declaration at start and after every change. Sources
   * without node objects (files) leave it out; agents then are the only reporters.
   */
  watchNodeAddresses?(onChange: (nodes: Readonly<Record<string, readonly string[]>>) => void): void;
  /** Told after every reload; the Kubernetes source writes status conditions and Events from it. */
  report?(verdict: SourceVerdict): void;
  close(): Promise<void>;
}
