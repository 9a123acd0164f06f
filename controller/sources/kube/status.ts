// Writes back what the controller made of an object, where Kubernetes users look for it:
// `status.conditions` (Accepted, with observedGeneration) on our CRDs, `status.parents[]` with
// Accepted and ResolvedRefs for Service parents on HTTPRoute/GRPCRoute (GAMMA), `status.conditions`
// Accepted and Programmed (observedGeneration) on our class's Gateways, and a Warning Event
// for each rejection. The pure builders decide; StatusWriter does the I/O, one write at a time.
//
// Invariants: a write happens only when the desired status differs from the object's (ignoring
// lastTransitionTime, which is kept while a condition's status stays), so our own status updates,
// which come back as watch events, converge instead of looping; other controllers' entries in
// `status.parents` are kept; one Event per object, generation and message.
import type { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { describe } from "./informers.ts";
import type { KubeObject } from "./map.ts";

export const CONTROLLER_NAME = "nodemesh.io/controller";

export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

/** The controller's judgement of one object. */
export interface Verdict {
  accepted: boolean;
  /** CamelCase reason: "Accepted", "Invalid", "Conflicted", "NoMatchingParent", ... */
  reason: string;
  message: string;
  /** Routes only: whether every backendRef resolved, and why not. */
  refs?: { resolved: boolean; reason: string; message: string };
  /** Gateways only: whether every listener can be served (its certificates resolved). */
  programmed?: { ok: boolean; reason: string; message: string };
}

export function condition(
  type: string,
  ok: boolean,
  reason: string,
  message: string,
  generation: number | undefined,
  previous: readonly Condition[] | undefined,
  now: Date,
): Condition {
  const status = ok ? "True" : "False";
  const prev = previous?.find((c) => c.type === type);
  return {
    type,
    status,
    reason,
    message: message.slice(0, 32_768),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    lastTransitionTime:
      prev?.status === status ? prev.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, "Z"),
  };
}

function sameConditions(a: readonly Condition[] | undefined, b: readonly Condition[]): boolean {
  if (!a || a.length !== b.length) return false;
  return b.every((c) => {
    const o = a.find((x) => x.type === c.type);
    return (
      o?.status === c.status &&
      o.reason === c.reason &&
      o.message === c.message &&
      o.observedGeneration === c.observedGeneration
    );
  });
}

interface StatusShape {
  conditions?: Condition[];
  parents?: ParentStatus[];
}

export interface ParentStatus {
  parentRef: Record<string, unknown>;
  controllerName: string;
  conditions: Condition[];
}

/** Desired `status` of one of our CRDs, or undefined when it already says this. */
export function crdStatus(obj: KubeObject, v: Verdict, now: Date): StatusShape | undefined {
  const status = (obj.status ?? {}) as StatusShape;
  const conditions = [
    condition("Accepted", v.accepted, v.reason, v.message, obj.metadata?.generation, status.conditions, now),
  ];
  return sameConditions(status.conditions, conditions) ? undefined : { ...status, conditions };
}

/** Desired Gateway status: Accepted and Programmed; other condition types and fields are kept. */
export function gatewayStatus(obj: KubeObject, v: Verdict, now: Date): StatusShape | undefined {
  const status = (obj.status ?? {}) as StatusShape;
  const gen = obj.metadata?.generation;
  const old = status.conditions ?? [];
  const p = v.programmed ?? { ok: false, reason: "Invalid", message: v.message };
  const ours = [
    condition("Accepted", v.accepted, v.reason, v.message, gen, old, now),
    condition("Programmed", v.accepted && p.ok, p.reason, p.message, gen, old, now),
  ];
  const others = old.filter((c) => c.type !== "Accepted" && c.type !== "Programmed");
  const mine = old.filter((c) => c.type === "Accepted" || c.type === "Programmed");
  return sameConditions(mine, ours) ? undefined : { ...status, conditions: [...others, ...ours] };
}

/** A parentRef that names a Service (GAMMA): group "" or "core", kind Service. */
function isServiceParent(ref: Record<string, unknown>): boolean {
  return (ref.group === undefined || ref.group === "" || ref.group === "core") && ref.kind === "Service";
}

/** Desired route status: ours for each Service parent, other controllers' entries untouched. */
export function routeStatus(obj: KubeObject, v: Verdict, now: Date): StatusShape | undefined {
  const status = (obj.status ?? {}) as StatusShape;
  const spec = (obj.spec ?? {}) as { parentRefs?: Record<string, unknown>[] };
  const gen = obj.metadata?.generation;
  const old = status.parents ?? [];
  const ours = (spec.parentRefs ?? []).filter(isServiceParent).map((ref): ParentStatus => {
    const parentRef = { group: "", kind: "Service", ...ref };
    const prev = old.find((p) => p.controllerName === CONTROLLER_NAME && sameRef(p.parentRef, parentRef));
    const refs = v.refs ?? {
      resolved: true,
      reason: "ResolvedRefs",
      message: "all backend references resolved",
    };
    return {
      parentRef,
      controllerName: CONTROLLER_NAME,
      conditions: [
        condition("Accepted", v.accepted, v.reason, v.message, gen, prev?.conditions, now),
        condition("ResolvedRefs", refs.resolved, refs.reason, refs.message, gen, prev?.conditions, now),
      ],
    };
  });
  const others = old.filter((p) => p.controllerName !== CONTROLLER_NAME);
  const oldOurs = old.filter((p) => p.controllerName === CONTROLLER_NAME);
  const unchanged =
    oldOurs.length === ours.length &&
    ours.every(
      (p, i) =>
        sameRef(oldOurs[i]?.parentRef, p.parentRef) && sameConditions(oldOurs[i]?.conditions, p.conditions),
    );
  return unchanged ? undefined : { ...status, parents: [...others, ...ours] };
}

function sameRef(a: Record<string, unknown> | undefined, b: Record<string, unknown>): boolean {
  if (!a) return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => (a[k] ?? "") === (b[k] ?? ""));
}

export interface CustomKind {
  group: string;
  version: string;
  plural: string;
  kind: string;
  route: boolean;
  /** Gateway API Gateway: status conditions Accepted and Programmed (gatewayStatus). */
  gateway?: boolean;
}

export class StatusWriter {
  readonly #custom: CustomObjectsApi;
  readonly #core: CoreV1Api;
  readonly #log: Logger;
  readonly #instance: string;
  readonly #events = new Map<string, string>();
  #queue: Promise<void> = Promise.resolve();

  constructor(custom: CustomObjectsApi, core: CoreV1Api, log: Logger, instance: string) {
    this.#custom = custom;
    this.#core = core;
    this.#log = log;
    this.#instance = instance;
  }

  /** Queues the status write (when it changes anything) and the Event of a rejection. */
  report(kind: CustomKind, obj: KubeObject, v: Verdict): void {
    const now = new Date();
    const status = kind.route
      ? routeStatus(obj, v, now)
      : kind.gateway
        ? gatewayStatus(obj, v, now)
        : crdStatus(obj, v, now);
    const md = obj.metadata ?? {};
    if (status) this.#enqueue(() => this.#writeStatus(kind, obj, status));
    if (!v.accepted) this.warn(obj, kind.kind, v.reason, v.message);
    else if (v.programmed && !v.programmed.ok)
      this.warn(obj, kind.kind, v.programmed.reason, v.programmed.message);
    else this.#events.delete(md.uid ?? "");
  }

  /** A Warning Event on any object (also Pods and Services), once per object, generation and text. */
  warn(obj: KubeObject, kind: string, reason: string, message: string): void {
    const md = obj.metadata ?? {};
    const key = `${md.uid}/${md.generation ?? ""}`;
    if (!md.uid || !md.namespace || this.#events.get(md.uid) === `${key}:${message}`) return;
    this.#events.set(md.uid, `${key}:${message}`);
    const ts = new Date();
    this.#enqueue(async () => {
      await this.#core.createNamespacedEvent({
        namespace: md.namespace ?? "default",
        body: {
          metadata: { generateName: `${md.name}.`, namespace: md.namespace },
          involvedObject: {
            apiVersion: obj.apiVersion,
            kind,
            name: md.name,
            namespace: md.namespace,
            uid: md.uid,
            resourceVersion: md.resourceVersion,
          },
          type: "Warning",
          reason,
          message: message.slice(0, 1024),
          source: { component: "nodemesh-controller" },
          reportingComponent: CONTROLLER_NAME,
          reportingInstance: this.#instance,
          firstTimestamp: ts,
          lastTimestamp: ts,
          count: 1,
        },
      });
    });
  }

  /** Resolves when every queued write has been attempted (tests, shutdown). */
  flush(): Promise<void> {
    return this.#queue;
  }

  #enqueue(job: () => Promise<void>): void {
    this.#queue = this.#queue.then(job).catch((err: unknown) => {
      // A conflict (409) means the object changed; its watch event brings a fresh report.
      this.#log.warn({ err: describe(err) }, "kubernetes status or event write failed");
    });
  }

  async #writeStatus(kind: CustomKind, obj: KubeObject, status: StatusShape): Promise<void> {
    const md = obj.metadata ?? {};
    await this.#custom.replaceNamespacedCustomObjectStatus({
      group: kind.group,
      version: kind.version,
      plural: kind.plural,
      namespace: md.namespace ?? "default",
      name: md.name ?? "",
      body: { apiVersion: obj.apiVersion, kind: obj.kind, metadata: md, spec: obj.spec, status },
    });
  }
}
